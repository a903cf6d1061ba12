"""The BLAS (im2col/col2im) Convolution kernels and the windowed Pooling kernels against the
loop-over-kernel-offset kernels they replaced (tests/_kernel_reference.py), over random
geometries: 1-3-D, stride, pad, dilation, groups incl. depthwise, float16/32/64; forward
and every gradient op.  Also Deconvolution (built on the same kernels) and MXNet 1.9.1's
max-pooling tie rule (the first maximum in window order gets the gradient)."""
import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

import _kernel_reference as ref  # noqa: E402
from symbol.ops import nn_conv, nn_norm, nn_extra  # noqa: E402

TOL = {np.float64: 1e-10, np.float32: 2e-5, np.float16: 3e-3}


def _close(got, want, dtype):
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape, got.dtype, want.dtype)
    scale = max(1.0, float(np.max(np.abs(want.astype(np.float64)))) if want.size else 1.0)
    err = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if want.size else 0.0
    assert err <= TOL[dtype] * scale * 10, (err, scale)


@st.composite
def conv_case(draw):
    nsp = draw(st.integers(1, 3))
    G = draw(st.sampled_from([1, 1, 2, 3]))
    cg = draw(st.integers(1, 3))
    fg = draw(st.integers(1, 3))
    if draw(st.booleans()):          # depthwise (one input channel per group)
        G, cg = draw(st.integers(2, 4)), 1
    k = tuple(draw(st.integers(1, 3)) for _ in range(nsp))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nsp))
    d = tuple(draw(st.integers(1, 2)) for _ in range(nsp))
    p = tuple(draw(st.integers(0, 2)) for _ in range(nsp))
    maxsp = {1: 9, 2: 7, 3: 5}[nsp]
    sp = []
    for kk, dd, pp in zip(k, d, p):
        ext = dd * (kk - 1) + 1
        sp.append(draw(st.integers(max(1, ext - 2 * pp), max(ext - 2 * pp, 1) + maxsp)))
    n = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.float16]))
    attrs = {"kernel": k, "stride": s, "dilate": d, "pad": p, "num_group": G, "layout": None}
    return n, G * cg, G * fg, tuple(sp), attrs, dtype, draw(st.integers(0, 2 ** 31))


@settings(max_examples=120, deadline=None, derandomize=True)
@given(conv_case())
def test_conv_kernels_match_reference(case):
    n, c, f, sp, attrs, dtype, seed = case
    rng = np.random.default_rng(seed)
    G = attrs["num_group"]
    x = rng.uniform(-2, 2, (n, c) + sp).astype(dtype)
    w = rng.uniform(-2, 2, (f, c // G) + attrs["kernel"]).astype(dtype)
    y = nn_conv._conv_np(x, w, attrs)
    _close(y, ref.conv_np(x, w, attrs), dtype)
    g = rng.uniform(-2, 2, y.shape).astype(dtype)
    _close(nn_conv._conv_bwd_data_np(g, x, w, attrs), ref.conv_bwd_data_np(g, x, w, attrs), dtype)
    _close(nn_conv._conv_bwd_weight_np(g, x, w, attrs), ref.conv_bwd_weight_np(g, x, w, attrs), dtype)


def test_conv_kernels_noncontiguous_and_int_inputs():
    rng = np.random.default_rng(3)
    attrs = {"kernel": (3, 2), "stride": (2, 1), "dilate": (1, 2), "pad": (1, 0), "num_group": 2,
             "layout": None}
    x = rng.uniform(-2, 2, (2, 7, 9, 4)).transpose(0, 3, 1, 2)        # (2, 4, 7, 9) strided
    w = rng.uniform(-2, 2, (6, 4, 3, 6))[:, ::2, :, ::3]               # (6, 2, 3, 2) strided
    y = nn_conv._conv_np(x, w, attrs)
    np.testing.assert_allclose(y, ref.conv_np(x, w, attrs), rtol=1e-12, atol=1e-12)
    g = rng.uniform(-2, 2, y.shape)[..., ::-1]
    np.testing.assert_allclose(nn_conv._conv_bwd_data_np(g, x, w, attrs),
                               ref.conv_bwd_data_np(g, x, w, attrs), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(nn_conv._conv_bwd_weight_np(g, x, w, attrs),
                               ref.conv_bwd_weight_np(g, x, w, attrs), rtol=1e-12, atol=1e-12)
    xi = rng.integers(-3, 4, x.shape).astype(np.int32)
    wi = rng.integers(-3, 4, w.shape).astype(np.int32)
    yi = nn_conv._conv_np(xi, wi, attrs)
    assert yi.dtype == np.int32
    np.testing.assert_array_equal(yi, ref.conv_np(xi, wi, attrs))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(conv_case(), st.data())
def test_deconvolution_matches_reference(case, data):
    n, c, f, sp, attrs, dtype, seed = case
    rng = np.random.default_rng(seed)
    G = attrs["num_group"]
    k, s, dl = attrs["kernel"], attrs["stride"], attrs["dilate"]
    # Deconvolution of x (n, c, *sp) with weight (c, f/G, *k); pad kept small enough
    p = tuple(min(pp, (ss * (q - 1) + dd * (kk - 1)) // 2) for pp, ss, q, dd, kk in zip(attrs["pad"], s, sp, dl, k))
    adj = tuple(data.draw(st.integers(0, ss - 1)) for ss in s)
    da = {"kernel": k, "stride": s, "dilate": dl, "pad": p, "adj": adj, "target_shape": (),
          "num_filter": f, "num_group": G, "layout": None}
    x = rng.uniform(-2, 2, (n, c) + sp).astype(dtype)
    w = rng.uniform(-2, 2, (c, f // G) + k).astype(dtype)
    cattrs, osp = nn_extra._dc_conv_attrs(da, sp)
    like = np.broadcast_to(np.zeros((), dtype=dtype), (n, f) + osp)
    y = nn_extra._dc_np(x, w, da)
    _close(y, ref.conv_bwd_data_np(x, like, w, cattrs), dtype)
    g = rng.uniform(-2, 2, y.shape).astype(dtype)
    _close(nn_extra._dc_bwd_data_np(g, x, w, da), ref.conv_np(g, w, cattrs).astype(dtype), dtype)
    _close(nn_extra._dc_bwd_weight_np(g, x, w, da), ref.conv_bwd_weight_np(x, g, w, cattrs).astype(dtype),
           dtype)


@st.composite
def pool_case(draw):
    nsp = draw(st.integers(1, 3))
    k = tuple(draw(st.integers(1, 3)) for _ in range(nsp))
    s = tuple(draw(st.integers(1, 3)) for _ in range(nsp))
    p = tuple(draw(st.integers(0, kk - 1)) for kk in k)
    maxsp = {1: 9, 2: 6, 3: 4}[nsp]
    sp = tuple(draw(st.integers(max(1, kk - 2 * pp), max(1, kk - 2 * pp) + maxsp)) for kk, pp in zip(k, p))
    attrs = {"kernel": k, "stride": s, "pad": p, "pool_type": draw(st.sampled_from(["max", "avg", "sum"])),
             "global_pool": draw(st.sampled_from([False, False, False, True])),
             "pooling_convention": draw(st.sampled_from(["valid", "full"])),
             "count_include_pad": draw(st.booleans()), "layout": None, "p_value": None}
    if draw(st.booleans()):      # a kernel covering the whole input: the global fast path
        attrs.update(kernel=sp, pad=(0,) * nsp)
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) + sp
    dtype = draw(st.sampled_from([np.float64, np.float32, np.float16]))
    ties = draw(st.booleans())   # small integers: many tied maxima
    return shape, attrs, dtype, ties, draw(st.integers(0, 2 ** 31))


@settings(max_examples=150, deadline=None, derandomize=True)
@given(pool_case())
def test_pool_kernels_match_reference(case):
    shape, attrs, dtype, ties, seed = case
    rng = np.random.default_rng(seed)
    x = (rng.integers(-2, 3, shape) if ties else rng.uniform(-2, 2, shape)).astype(dtype)
    y = nn_conv._pool_fwd(attrs, [x], None)[0]
    _close(y, ref.pool_fwd(attrs, x), dtype)
    g = rng.uniform(-2, 2, y.shape).astype(dtype)
    _close(nn_conv._pool_bwd_np(g, x, attrs), ref.pool_bwd_np(g, x, attrs), dtype)
    if attrs["pool_type"] == "max":
        g2 = rng.uniform(-2, 2, x.shape).astype(dtype)
        _close(nn_conv._pool_select_np(g2, x, attrs), ref.pool_select_np(g2, x, attrs), dtype)


def _pool_attrs(**kw):
    a = {"kernel": (), "stride": (), "pad": (), "pool_type": "max", "global_pool": False,
         "pooling_convention": "valid", "count_include_pad": True, "layout": None, "p_value": None}
    a.update(kw)
    return a


def test_max_pool_ties_follow_mxnet():
    """Gradients recorded from MXNet 1.9.1 (mx.nd.Pooling under autograd): the first maximum
    of each window in row-major order gets the gradient, padding never does."""
    x = np.array([[[[1, 1, 0, 0], [1, 1, 0, 0], [2, 0, 3, 3], [0, 2, 3, 3]]]], np.float32)
    a = _pool_attrs(kernel=(2, 2), stride=(2, 2))
    gx = nn_conv._pool_bwd_np(np.ones((1, 1, 2, 2), np.float32), x, a)
    np.testing.assert_array_equal(gx[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    x = np.array([[[[1, 2, 2, 1, 2]]]], np.float32)
    a = _pool_attrs(kernel=(1, 3), stride=(1, 1))
    gx = nn_conv._pool_bwd_np(np.ones((1, 1, 1, 3), np.float32), x, a)
    np.testing.assert_array_equal(gx[0, 0, 0], [0, 2, 1, 0, 0])
    x = -np.ones((1, 1, 3, 3), np.float32)
    a = _pool_attrs(kernel=(3, 3), stride=(2, 2), pad=(1, 1))
    gx = nn_conv._pool_bwd_np(np.ones((1, 1, 2, 2), np.float32), x, a)
    np.testing.assert_array_equal(gx[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


class _Ctx:
    def __init__(self, train):
        self.is_train = train


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=4), st.data())
def test_batchnorm_forward_matches_reference(shape, data):
    shape = tuple(shape)
    ax = data.draw(st.integers(-len(shape), len(shape) - 1))
    dtype = data.draw(st.sampled_from([np.float64, np.float32, np.float16]))
    train = data.draw(st.booleans())
    attrs = {"axis": ax, "eps": data.draw(st.sampled_from([1e-3, 1e-5])),
             "fix_gamma": data.draw(st.booleans()), "use_global_stats": data.draw(st.booleans())}
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 31)))
    c = shape[ax]
    pt = np.float32 if dtype == np.float16 else dtype
    x = (rng.uniform(-2, 2, shape) * 3 + 1).astype(dtype)
    ins = [x, rng.uniform(0.5, 1.5, c).astype(pt), rng.uniform(-1, 1, c).astype(pt),
           rng.uniform(-0.5, 0.5, c).astype(pt), rng.uniform(0.5, 1.5, c).astype(pt)]
    got = nn_norm._bn_fwd(attrs, ins, _Ctx(train))
    want = ref.bn_fwd(attrs, ins, train and not attrs["use_global_stats"])
    for gv, wv in zip(got, want):
        _close(gv, wv, dtype)


@pytest.mark.parametrize("G,dil", [(1, 1), (2, 2), (4, 1)])
def test_conv_data_grad_full_convolution_path(monkeypatch, G, dil):
    """Stride 1 with 'same' padding takes the full-convolution route of the data gradient."""
    rng = np.random.default_rng(G)
    attrs = {"kernel": (3, 3), "stride": (1, 1), "dilate": (dil, dil), "pad": (dil, dil),
             "num_group": G, "layout": None}
    x = rng.uniform(-2, 2, (2, 4, 6, 5))
    w = rng.uniform(-2, 2, (4, 4 // G, 3, 3))
    g = rng.uniform(-2, 2, (2, 4, 6, 5))
    calls = []
    orig = nn_conv._conv_np
    monkeypatch.setattr(nn_conv, "_conv_np", lambda *a: calls.append(1) or orig(*a))
    got = nn_conv._conv_bwd_data_np(g, x, w, attrs)
    assert calls, "full-convolution path not taken"
    np.testing.assert_allclose(got, ref.conv_bwd_data_np(g, x, w, attrs), rtol=1e-12, atol=1e-12)
