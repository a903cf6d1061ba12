"""Eager CNN / BatchNorm ops on the compiled kernels (agjit.eager_kernels note
*eager-kernels*): the compiled calls agree with the NumPy kernels over many geometries and
dtypes, their gradients with finite differences, the first call of a new signature runs
NumPy without waiting, and what the kernels do not cover falls back to NumPy."""
import numpy as np
import pytest

import agjit as mx
from agjit import eager_kernels as ek

nd = mx.nd


@pytest.fixture
def sync_mode():
    prev = ek.set_mode("sync")
    yield
    ek.set_mode(prev)


def _grads(fn, arrays, head_seed=7):
    """fn(*NDArrays) -> NDArray: its value and the gradients of sum(out * R) w.r.t. every
    input (R fixed random)."""
    xs = [nd.array(a, dtype=a.dtype) for a in arrays]
    for x in xs:
        x.attach_grad()
    with mx.autograd.record():
        y = fn(*xs)
    r = np.random.RandomState(head_seed).standard_normal(y.shape).astype(y.dtype)
    y.backward(nd.array(r, dtype=r.dtype))
    return [y.asnumpy()] + [x.grad.asnumpy() for x in xs]


def _both(fn, arrays):
    """(NumPy-kernel results, compiled-kernel results, compiled calls made)."""
    prev = ek.set_mode("0")
    try:
        ref = _grads(fn, arrays)
    finally:
        ek.set_mode(prev)
    prev = ek.set_mode("sync")
    try:
        n0 = ek.state()["compiled_calls"]
        got = _grads(fn, arrays)
        n = ek.state()["compiled_calls"] - n0
    finally:
        ek.set_mode(prev)
    return ref, got, n


def _close(ref, got, dtype):
    tol = 2e-5 if dtype == np.float32 else 1e-11
    for r, g in zip(ref, got):
        assert r.shape == g.shape and r.dtype == g.dtype
        scale = max(1.0, float(np.abs(r).max()))
        np.testing.assert_allclose(g, r, rtol=tol * 10, atol=tol * scale)


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


# (data shape, weight shape, attrs)
CONV_CASES = [
    ((2, 3, 9, 8), (4, 3, 3, 3), {}),
    ((2, 3, 9, 8), (4, 3, 3, 3), {"pad": (1, 1)}),
    ((2, 3, 11, 10), (6, 3, 3, 2), {"stride": (2, 3), "pad": (2, 1)}),
    ((1, 4, 12, 12), (4, 2, 3, 3), {"num_group": 2, "dilate": (2, 2), "pad": (1, 2)}),
    ((2, 6, 7, 7), (6, 1, 3, 3), {"num_group": 6, "pad": (1, 1)}),           # depthwise
    ((3, 5, 6, 6), (7, 5, 1, 1), {}),                                            # 1x1 direct
    ((3, 5, 6, 6), (7, 5, 1, 1), {"stride": (2, 2)}),
    ((2, 1, 28, 28), (6, 1, 5, 5), {"pad": (2, 2)}),                             # LeNet conv1
    ((2, 3, 13), (4, 3, 3), {"stride": (2,), "pad": (1,), "dilate": (2,)}),      # 1-D
    ((2, 4, 10), (6, 2, 4), {"num_group": 2}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_convolution_compiled_matches_numpy(case, dtype):
    xs, ws, attrs = CONV_CASES[case]
    rng = np.random.RandomState(case)
    arrays = [_rand(rng, xs, dtype), _rand(rng, ws, dtype), _rand(rng, (ws[0],), dtype)]
    fn = lambda x, w, b: nd.Convolution(x, w, b, kernel=ws[2:], num_filter=ws[0], **attrs)
    ref, got, n = _both(fn, arrays)
    assert n == 3                     # forward, data and weight gradients ran compiled
    _close(ref, got, dtype)


DECONV_CASES = [
    ((2, 3, 5, 4), (3, 4, 3, 3), {}),
    ((2, 3, 5, 4), (3, 2, 3, 3), {"stride": (2, 2), "pad": (1, 1), "adj": (1, 0)}),
    ((1, 4, 4, 5), (4, 3, 2, 3), {"num_group": 2, "dilate": (2, 1)}),
    ((2, 2, 6), (2, 3, 3), {"stride": (2,), "adj": (1,)}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(DECONV_CASES)))
def test_deconvolution_compiled_matches_numpy(case, dtype):
    xs, ws, attrs = DECONV_CASES[case]
    rng = np.random.RandomState(10 + case)
    g = attrs.get("num_group", 1)
    nf = ws[1] * g
    arrays = [_rand(rng, xs, dtype), _rand(rng, ws, dtype), _rand(rng, (nf,), dtype)]
    fn = lambda x, w, b: nd.Deconvolution(x, w, b, kernel=ws[2:], num_filter=nf,
                                          no_bias=False, **attrs)
    ref, got, n = _both(fn, arrays)
    assert n == 3
    _close(ref, got, dtype)


POOL_CASES = [
    ((2, 3, 8, 8), {"kernel": (2, 2), "stride": (2, 2), "pool_type": "max"}),
    ((2, 3, 9, 7), {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": "max"}),
    ((2, 3, 9, 7), {"kernel": (3, 2), "stride": (2, 1), "pad": (1, 1), "pool_type": "avg"}),
    ((1, 2, 7, 7), {"kernel": (3, 3), "stride": (2, 2), "pad": (1, 1), "pool_type": "avg",
                    "count_include_pad": False, "pooling_convention": "full"}),
    ((1, 2, 6, 5), {"kernel": (2, 2), "stride": (2, 2), "pool_type": "sum",
                    "pooling_convention": "full"}),
    ((2, 4, 5, 6), {"kernel": (1, 1), "global_pool": True, "pool_type": "avg"}),
    ((2, 4, 5, 6), {"kernel": (1, 1), "global_pool": True, "pool_type": "max"}),
    ((2, 3, 11), {"kernel": (3,), "stride": (2,), "pad": (1,), "pool_type": "max"}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(POOL_CASES)))
def test_pooling_compiled_matches_numpy(case, dtype):
    xs, attrs = POOL_CASES[case]
    x = np.random.RandomState(20 + case).permutation(np.prod(xs)).reshape(xs).astype(dtype)
    x /= x.size                       # distinct values: max pooling's argmax is unambiguous
    ref, got, n = _both(lambda a: nd.Pooling(a, **attrs), [x])
    assert n == 2
    _close(ref, got, dtype)


def test_max_pooling_ties_go_to_the_first_maximum(sync_mode):
    x = np.zeros((1, 1, 4, 4), np.float32)
    x[0, 0, 1, 1] = x[0, 0, 1, 2] = 1.0          # a tie in the windows at (0,0)/(0,1)
    ref, got, n = _both(lambda a: nd.Pooling(a, kernel=(2, 2), pool_type="max"), [x])
    assert n == 2
    _close(ref, got, np.float32)


def test_max_pool_second_order_select(sync_mode):
    """_pooling_max_select (max pooling's backward differentiated) runs compiled too."""
    rng = np.random.RandomState(3)
    x = nd.array(rng.permutation(2 * 2 * 6 * 6).reshape(2, 2, 6, 6).astype(np.float32))
    g = nd.array(rng.standard_normal((2, 2, 6, 6)).astype(np.float32))
    attrs = {"kernel": (2, 2), "stride": (2, 2), "pool_type": "max"}
    n0 = ek.state()["compiled_calls"]
    got = nd._pooling_max_select(g, x, **attrs).asnumpy()
    assert ek.state()["compiled_calls"] == n0 + 1
    prev = ek.set_mode("0")
    try:
        ref = nd._pooling_max_select(g, x, **attrs).asnumpy()
    finally:
        ek.set_mode(prev)
    np.testing.assert_array_equal(got, ref)


BN_CASES = [
    ((4, 3, 5, 5), {"fix_gamma": False}),
    ((4, 3, 5, 5), {}),                                   # fix_gamma=True (MXNet's default)
    ((6, 4), {"fix_gamma": False, "eps": 1e-4}),
    ((2, 5, 3), {"fix_gamma": False, "axis": -1}),
    ((3, 2, 4, 2, 2), {"fix_gamma": False}),
]


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(BN_CASES)))
def test_batchnorm_compiled_matches_numpy(case, dtype, train):
    xs, attrs = BN_CASES[case]
    ax = attrs.get("axis", 1) % len(xs)
    c = xs[ax]
    rng = np.random.RandomState(30 + case)
    arrays = [_rand(rng, xs, dtype) * 2 + 1, 1 + 0.1 * _rand(rng, (c,), dtype),
              0.1 * _rand(rng, (c,), dtype)]
    mm = (0.1 * rng.standard_normal(c)).astype(dtype)
    mv = (1 + 0.2 * rng.rand(c)).astype(dtype)

    def run():
        xs_ = [nd.array(a, dtype=a.dtype) for a in arrays]
        for x in xs_:
            x.attach_grad()
        st = [nd.array(mm, dtype=dtype), nd.array(mv, dtype=dtype)]
        with mx.autograd.record(train_mode=train):
            y, mean, var = nd.BatchNorm(*xs_, *st, output_mean_var=True, **attrs)
        r = np.random.RandomState(1).standard_normal(y.shape).astype(dtype)
        y.backward(nd.array(r, dtype=dtype), train_mode=train)
        return [y.asnumpy(), mean.asnumpy(), var.asnumpy()] + [x.grad.asnumpy() for x in xs_] \
            + [s.asnumpy() for s in st]           # the moving statistics the backward updated
    prev = ek.set_mode("0")
    try:
        ref = run()
    finally:
        ek.set_mode(prev)
    prev = ek.set_mode("sync")
    try:
        n0 = ek.state()["compiled_calls"]
        got = run()
        assert ek.state()["compiled_calls"] - n0 == 2
    finally:
        ek.set_mode(prev)
    _close(ref, got, dtype)


# -- gradients against central finite differences (float64) ---------------------------------
def _fd_check(fn, arrays, eps=1e-6, probes=6, seed=0):
    """Max relative error of the compiled gradients of sum(fn(...) * R) against central
    differences at a few entries of every input."""
    got = _grads(fn, arrays)
    rng = np.random.RandomState(seed)
    r = np.random.RandomState(7).standard_normal(got[0].shape)

    def loss():
        return float((fn(*[nd.array(a, dtype=a.dtype) for a in arrays]).asnumpy() * r).sum())
    worst = 0.0
    for k, a in enumerate(arrays):
        for _ in range(probes):
            i = tuple(rng.randint(0, s) for s in a.shape)
            old = a[i]
            a[i] = old + eps
            lp = loss()
            a[i] = old - eps
            lm = loss()
            a[i] = old
            fd = (lp - lm) / (2 * eps)
            worst = max(worst, abs(fd - got[k + 1][i]) / max(1e-3, abs(fd)))
    return worst


@pytest.mark.parametrize("case", [1, 2, 3, 8])
def test_convolution_gradients_match_finite_differences(case, sync_mode):
    xs, ws, attrs = CONV_CASES[case]
    rng = np.random.RandomState(40 + case)
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])]
    fn = lambda x, w, b: nd.Convolution(x, w, b, kernel=ws[2:], num_filter=ws[0], **attrs)
    assert _fd_check(fn, arrays) < 1e-6


def test_deconvolution_gradients_match_finite_differences(sync_mode):
    xs, ws, attrs = DECONV_CASES[1]
    rng = np.random.RandomState(50)
    arrays = [rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[1])]
    fn = lambda x, w, b: nd.Deconvolution(x, w, b, kernel=ws[2:], num_filter=ws[1],
                                          no_bias=False, **attrs)
    assert _fd_check(fn, arrays) < 1e-6


@pytest.mark.parametrize("case", [1, 2, 3])
def test_pooling_gradients_match_finite_differences(case, sync_mode):
    xs, attrs = POOL_CASES[case]
    x = np.random.RandomState(60).permutation(np.prod(xs)).reshape(xs).astype(np.float64)
    assert _fd_check(lambda a: nd.Pooling(a, **attrs), [x / 7.0]) < 1e-6


def test_batchnorm_gradients_match_finite_differences(sync_mode):
    rng = np.random.RandomState(70)
    arrays = [rng.standard_normal((4, 3, 3, 3)), 1 + 0.1 * rng.standard_normal(3),
              rng.standard_normal(3)]
    mm, mv = nd.zeros((3,), dtype=np.float64), nd.ones((3,), dtype=np.float64)

    def fn(x, g, b):
        with mx.autograd.train_mode():
            return nd.BatchNorm(x, g, b, mm, mv, fix_gamma=False)
    assert _fd_check(fn, arrays) < 1e-5


# -- dispatch: no wait on the first call, fallbacks ------------------------------------------
def test_first_call_runs_numpy_then_compiled_once_ready():
    """A new signature: the first call queues it and runs NumPy (never waits for Numba);
    once the worker has it ready the same call runs compiled, with the same numbers."""
    prev = ek.set_mode("1")
    try:
        rng = np.random.RandomState(80)
        x = nd.array(rng.standard_normal((2, 3, 10, 9)).astype(np.float32))
        w = nd.array(rng.standard_normal((5, 3, 4, 2)).astype(np.float32))
        kw = {"kernel": (4, 2), "num_filter": 5, "no_bias": True, "stride": (3, 1),
              "pad": (2, 0), "dilate": (1, 3)}          # a geometry no other test uses
        s0 = ek.state()
        first = nd.Convolution(x, w, **kw).asnumpy()
        s1 = ek.state()
        assert s1["numpy_calls"] == s0["numpy_calls"] + 1
        assert s1["compiled_calls"] == s0["compiled_calls"]
        assert ek.wait(600)
        assert ek.state()["failed"] == s0["failed"]
        again = nd.Convolution(x, w, **kw).asnumpy()
        assert ek.state()["compiled_calls"] == s1["compiled_calls"] + 1
        np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-5)
    finally:
        ek.set_mode(prev)


@pytest.mark.parametrize("what", ["float16", "int"])  # channel-last, 3-D, target_shape are lowered now
def test_uncovered_cases_run_numpy(what, sync_mode):
    rng = np.random.RandomState(90)
    if what == "float16":
        x = nd.array(rng.standard_normal((1, 2, 5, 5)), dtype="float16")
        w = nd.array(rng.standard_normal((3, 2, 3, 3)), dtype="float16")
        run = lambda: nd.Convolution(x, w, kernel=(3, 3), num_filter=3, no_bias=True)
    elif what == "channel_last":
        x = nd.array(rng.standard_normal((1, 5, 5, 2)))
        w = nd.array(rng.standard_normal((3, 3, 3, 2)))
        run = lambda: nd.Convolution(x, w, kernel=(3, 3), num_filter=3, no_bias=True,
                                     layout="NHWC")
    elif what == "3d":
        x = nd.array(rng.standard_normal((1, 2, 4, 4, 4)))
        run = lambda: nd.Pooling(x, kernel=(2, 2, 2), pool_type="max")
    elif what == "target_shape":
        x = nd.array(rng.standard_normal((1, 2, 4, 4)))
        w = nd.array(rng.standard_normal((2, 3, 3, 3)))
        run = lambda: nd.Deconvolution(x, w, kernel=(3, 3), num_filter=3, stride=(2, 2),
                                       target_shape=(8, 8))
    else:
        x = nd.array(rng.randint(0, 9, (1, 2, 4, 4)), dtype="int32")
        run = lambda: nd.Pooling(x, kernel=(2, 2), pool_type="max")
    s0 = ek.state()
    got = run().asnumpy()
    s1 = ek.state()
    assert s1["compiled_calls"] == s0["compiled_calls"]
    assert s1["numpy_calls"] == s0["numpy_calls"] + 1
    prev = ek.set_mode("0")
    try:
        np.testing.assert_array_equal(run().asnumpy(), got)
    finally:
        ek.set_mode(prev)


def test_strided_input_view_runs_compiled(sync_mode):
    """A non-contiguous input (a transposed view) is made contiguous first."""
    rng = np.random.RandomState(95)
    base = rng.standard_normal((2, 3, 8, 7)).astype(np.float32)
    xv = nd.array(base).transpose((0, 1, 3, 2))      # (2, 3, 7, 8), strided underneath?
    w = nd.array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32))
    n0 = ek.state()["compiled_calls"]
    got = nd.Convolution(xv, w, kernel=(3, 3), num_filter=4, no_bias=True).asnumpy()
    assert ek.state()["compiled_calls"] == n0 + 1
    prev = ek.set_mode("0")
    try:
        ref = nd.Convolution(xv, w, kernel=(3, 3), num_filter=4, no_bias=True).asnumpy()
    finally:
        ek.set_mode(prev)
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_mode_values():
    prev = ek.set_mode("0")
    try:
        assert ek.mode() == "0"
        with pytest.raises(ValueError):
            ek.set_mode("fast")
    finally:
        ek.set_mode(prev)
