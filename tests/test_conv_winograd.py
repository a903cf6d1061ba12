"""The Winograd F(2x2, 3x3) kernels of agjit.compiler.kernels_nn (note *winograd*) against
a float64 NumPy reference: forward (with bias), data gradient and weight gradient, odd
sizes, padding 0/1/2, batch 1, channel counts that are not multiples of anything, and
blocks of tiles that split rows of tiles (a small WINO_BLOCK is not needed: shapes with
more tiles than one block are included)."""
import numpy as np
import pytest

from agjit.compiler import kernels_nn as K


def _ref_conv(x, w, ph, pw):
    n, c, H, W = x.shape
    f = w.shape[0]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    OH, OW = H + 2 * ph - 2, W + 2 * pw - 2
    out = np.zeros((n, f, OH, OW))
    for i in range(3):
        for j in range(3):
            out += np.einsum("fc,nchw->nfhw", w[:, :, i, j], xp[:, :, i:i + OH, j:j + OW])
    return out


def _ref_grads(x, w, gy, ph, pw):
    """d(sum(gy * conv(x, w))) / dx and / dw, by the same sums transposed."""
    n, c, H, W = x.shape
    OH, OW = gy.shape[2], gy.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for i in range(3):
        for j in range(3):
            gxp[:, :, i:i + OH, j:j + OW] += np.einsum("fc,nfhw->nchw", w[:, :, i, j], gy)
            gw[:, :, i, j] = np.einsum("nfhw,nchw->fc", gy, xp[:, :, i:i + OH, j:j + OW])
    return gxp[:, :, ph:ph + H, pw:pw + W], gw


SHAPES = [  # n, c, f, H, W, ph, pw
    (2, 8, 9, 7, 6, 1, 1),
    (1, 16, 8, 5, 9, 0, 0),
    (3, 9, 11, 8, 8, 2, 1),
    (2, 12, 10, 1, 3, 1, 1),
    (1, 13, 17, 3, 3, 0, 0),
    (5, 8, 8, 23, 19, 1, 0),      # 5 * 12 * 10 tiles: several blocks, split tile rows
]


@pytest.mark.parametrize("shape", SHAPES)
# float32 only: each dtype compiles the kernels (serial and sample-parallel variants) anew,
# minutes of the suite for kernels the dispatch does not take yet; float32 is the dtype
# they would serve, and a wrong transform shows as an O(1) error, far above the bound.
@pytest.mark.parametrize("dtype", [np.float32])
def test_winograd_matches_reference(shape, dtype):
    n, c, f, H, W, ph, pw = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal((n, c, H, W))
    w = rng.standard_normal((f, c, 3, 3))
    b = rng.standard_normal(f)
    OH, OW = H + 2 * ph - 2, W + 2 * pw - 2
    gy = rng.standard_normal((n, f, OH, OW))
    ref = _ref_conv(x, w, ph, pw) + b[None, :, None, None]
    rgx, rgw = _ref_grads(x, w, gy, ph, pw)
    # float64: the algebra is exact up to rounding; float32: measured <= 3e-7 of max |ref|
    # here (the bound of note *winograd*, 1e-5, holds with room)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    out = np.full((n, f, OH, OW), np.nan, dtype)
    K.wino_fwd(x.astype(dtype), w.astype(dtype), b.astype(dtype), out, ph, pw, 1)
    assert np.abs(out - ref).max() <= tol * np.abs(ref).max()
    out0 = np.full((n, f, OH, OW), np.nan, dtype)
    K.wino_fwd(x.astype(dtype), w.astype(dtype), b.astype(dtype), out0, ph, pw, 0)
    r0 = ref - b[None, :, None, None]
    assert np.abs(out0 - r0).max() <= tol * np.abs(r0).max()
    gx = np.full((n, c, H, W), np.nan, dtype)
    K.wino_bwd_data(gy.astype(dtype), w.astype(dtype), gx, ph, pw)
    assert np.abs(gx - rgx).max() <= tol * np.abs(rgx).max()
    gw = np.full((f, c, 3, 3), np.nan, dtype)
    K.wino_bwd_weight(gy.astype(dtype), x.astype(dtype), gw, ph, pw)
    assert np.abs(gw - rgw).max() <= tol * np.abs(rgw).max()


def test_wino_shapes():
    ok = K.wino_shape_ok
    assert ok(64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1)
    assert not ok(64, 64, 3, 3, 2, 2, 1, 1, 1, 1, 1)      # stride 2
    assert not ok(64, 64, 3, 3, 1, 1, 1, 1, 2, 2, 1)      # dilation 2
    assert not ok(64, 64, 3, 3, 1, 1, 1, 1, 1, 1, 2)      # groups
    assert not ok(64, 64, 5, 5, 1, 1, 2, 2, 1, 1, 1)      # 5x5
    assert not ok(64, 64, 3, 3, 1, 1, 3, 3, 1, 1, 1)      # padding 3
    assert not ok(3, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1)       # few input channels


def test_jit_dispatches_winograd():
    """mx.jit lowers a 3x3 stride-1 Convolution that wino_dispatch takes to wino_fwd (and
    its data gradient to wino_bwd_data; the weight gradient stays im2col), and the step's
    output and gradients match the float64 reference."""
    import agjit as mx
    n, c, f, H, W = 2, 8, 8, 24, 24           # 288 tiles >= WINO_DISPATCH_TILES: dispatched
    assert K.wino_dispatch("conv2d_fwd", n, c, f, H, W, (1, 1), (1, 1), (1, 1), 1)
    assert not K.wino_dispatch("conv2d_fwd", 1, c, f, H, W, (1, 1), (1, 1), (1, 1), 1)
    assert not K.wino_dispatch("conv2d_bwd_weight", n, c, f, H, W, (1, 1), (1, 1), (1, 1), 1)
    assert not K.wino_dispatch("conv2d_fwd", n, c, f, H, W, (2, 2), (1, 1), (1, 1), 1)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, c, H, W))
    w = rng.standard_normal((f, c, 3, 3))
    gy = rng.standard_normal((n, f, H, W))
    xa, wa = mx.nd.array(x.astype(np.float32)), mx.nd.array(w.astype(np.float32))
    xa.attach_grad()
    wa.attach_grad()
    fn = mx.jit(lambda a, b: mx.nd.Convolution(a, b, kernel=(3, 3), pad=(1, 1), num_filter=f,
                                               no_bias=True))
    with mx.autograd.record():
        y = fn(xa, wa)
    y.backward(mx.nd.array(gy.astype(np.float32)))
    src = fn.source()
    assert "wino_fwd(" in src and "wino_bwd_data(" in src and "conv2d_bwd_weight(" in src
    assert "conv2d_fwd(" not in src and "conv2d_bwd_data(" not in src
    ref = _ref_conv(x, w, 1, 1)
    rgx, rgw = _ref_grads(x, w, gy, 1, 1)
    for got, want in ((y.asnumpy(), ref), (xa.grad.asnumpy(), rgx), (wa.grad.asnumpy(), rgw)):
        assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
