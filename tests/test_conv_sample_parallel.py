"""The convolution kernels' sample-parallel path (agjit.compiler.kernels_nn note
*sample-parallel*): samples split over Numba threads with OpenBLAS held at one thread.
Checked against a float64 direct convolution for odd batch sizes (blocks of unequal size),
groups, strides, padding, dilation and 1x1 kernels, on both paths (the serial one forced
by holding the flag), and OpenBLAS's thread count is restored afterwards."""
import numpy as np
import pytest

from agjit.compiler import kernels_nn as K

I = np.int64
# n, c, f, H, W, kh, kw, stride, pad, dilation, groups
CASES = [
    (3, 4, 6, 7, 8, 3, 3, 2, 1, 1, 2),
    (5, 6, 6, 9, 9, 1, 1, 1, 0, 1, 3),      # 1x1: no im2col
    (4, 3, 5, 8, 6, 5, 3, 1, 2, 1, 1),
    (1, 3, 4, 6, 6, 3, 3, 1, 1, 1, 1),      # one sample: serial
    (7, 8, 8, 11, 5, 3, 3, 1, 0, 2, 4),     # dilated
    (2, 2, 2, 1, 13, 1, 3, 1, 1, 1, 2),     # 1-D as H = 1
]


def _reference(x, w, b, gy, s, p, d, G):
    """float64 forward, data gradient and weight gradient of a direct convolution."""
    n, c, H, W = x.shape
    f, cg, kh, kw = w.shape
    fg = f // G
    OH, OW = gy.shape[2], gy.shape[3]
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
    w64, g64 = w.astype(np.float64), gy.astype(np.float64)
    out = np.zeros((n, f, OH, OW))
    gxp = np.zeros(xp.shape)
    gw = np.zeros(w.shape)
    for g in range(G):
        ci, fo = slice(g * cg, (g + 1) * cg), slice(g * fg, (g + 1) * fg)
        for i in range(kh):
            for j in range(kw):
                win = (slice(None), ci, slice(i * d, i * d + s * (OH - 1) + 1, s),
                       slice(j * d, j * d + s * (OW - 1) + 1, s))
                out[:, fo] += np.einsum("nchw,fc->nfhw", xp[win], w64[fo, :, i, j])
                gxp[win] += np.einsum("nfhw,fc->nchw", g64[:, fo], w64[fo, :, i, j])
                gw[fo, :, i, j] = np.einsum("nfhw,nchw->fc", g64[:, fo], xp[win])
    out += b[None, :, None, None]
    return out, gxp[:, :, p:p + H, p:p + W], gw


def _run(x, w, b, gy, s, p, d, G):
    out = np.empty(gy.shape, np.float32)
    gx, gw = np.empty_like(x), np.empty_like(w)
    K.conv2d_fwd(x, w, b, out, I(s), I(s), I(p), I(p), I(d), I(d), I(G), I(1))
    K.conv2d_bwd_data(gy, w, gx, I(s), I(s), I(p), I(p), I(d), I(d), I(G))
    K.conv2d_bwd_weight(gy, x, gw, I(s), I(s), I(p), I(p), I(d), I(d), I(G))
    return out, gx, gw


def _blas_threads():
    return K._BLAS[2].scipy_openblas_get_num_threads64_() if K.HAVE_BLAS_THREADS else None


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("serial", [False, True])
def test_conv_kernels_equal_a_float64_direct_convolution(case, serial):
    n, c, f, H, W, kh, kw, s, p, d, G = case
    rs = np.random.default_rng(sum(case))
    x = rs.standard_normal((n, c, H, W)).astype(np.float32)
    w = rs.standard_normal((f, c // G, kh, kw)).astype(np.float32)
    b = rs.standard_normal(f).astype(np.float32)
    ph = 0 if H == 1 else p
    OH = (H + 2 * ph - d * (kh - 1) - 1) // s + 1
    OW = (W + 2 * p - d * (kw - 1) - 1) // s + 1
    gy = rs.standard_normal((n, f, OH, OW)).astype(np.float32)
    before = _blas_threads()
    if serial:
        K._BLAS_STATE[0] = 1        # another call holds the flag: samples run serially
    try:
        if H == 1:
            out = np.empty(gy.shape, np.float32)
            gx, gw = np.empty_like(x), np.empty_like(w)
            K.conv2d_fwd(x, w, b, out, I(s), I(s), I(0), I(p), I(d), I(d), I(G), I(1))
            K.conv2d_bwd_data(gy, w, gx, I(s), I(s), I(0), I(p), I(d), I(d), I(G))
            K.conv2d_bwd_weight(gy, x, gw, I(s), I(s), I(0), I(p), I(d), I(d), I(G))
            xw = np.pad(x, ((0, 0), (0, 0), (0, 0), (p, p)))
            ref_out, ref_gx, ref_gw = _reference(xw, w, b, gy, s, 0, d, G)
            ref_gx = ref_gx[:, :, :, p:p + W]
        else:
            out, gx, gw = _run(x, w, b, gy, s, p, d, G)
            ref_out, ref_gx, ref_gw = _reference(x, w, b, gy, s, p, d, G)
    finally:
        if serial:
            K._BLAS_STATE[0] = 0
    assert _blas_threads() == before
    assert K._BLAS_STATE[0] == 0
    for got, ref in ((out, ref_out), (gx, ref_gx), (gw, ref_gw)):
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_blas_serial_holds_one_thread_and_shares_the_flag():
    """symbol.ops._common.blas_serial() (note *blas-serial*) as installed by kernels_nn: BLAS
    at one thread inside, restored after; nested or while a convolution holds the flag it
    changes nothing (and the convolution then runs its samples serially, still right)."""
    from symbol.ops._common import blas_serial
    if not K.HAVE_BLAS_THREADS:
        pytest.skip("NumPy without its own OpenBLAS")
    before = _blas_threads()
    with blas_serial() as outer:
        assert outer.held and _blas_threads() == 1 and K._BLAS_STATE[0] == 1
        with blas_serial() as inner:
            assert not inner.held and _blas_threads() == 1
        assert K._BLAS_STATE[0] == 1
        rs = np.random.default_rng(3)
        x = rs.standard_normal((4, 3, 6, 6)).astype(np.float32)
        w = rs.standard_normal((5, 3, 3, 3)).astype(np.float32)
        b = np.zeros(5, np.float32)
        gy = rs.standard_normal((4, 5, 6, 6)).astype(np.float32)
        out, gx, gw = _run(x, w, b, gy, 1, 1, 1, 1)
        ref_out, ref_gx, ref_gw = _reference(x, w, b, gy, 1, 1, 1, 1)
        np.testing.assert_allclose(out, ref_out, rtol=1e-4, atol=1e-4 * np.abs(ref_out).max())
        np.testing.assert_allclose(gw, ref_gw, rtol=1e-4, atol=1e-4 * np.abs(ref_gw).max())
        assert _blas_threads() == 1 and K._BLAS_STATE[0] == 1
    assert _blas_threads() == before and K._BLAS_STATE[0] == 0
