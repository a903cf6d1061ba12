"""The per-call fast paths of a jitted call (agjit.compiler.decorator note *dispatch*: the
last all-NDArray call is compared with first) and of a hybridized Gluon block: they must
never hide a retrace (new shape, dtype, mode, a captured array that changed) and must give
the numbers of the slow path.  Numbers only, never timing."""
import numpy as np

import agjit as mx
from agjit import autograd, gluon
from agjit.gluon import nn
from agjit.ndarray.ndarray import NDArray


def _f_plain():
    @mx.jit
    def disp_f(x, y):
        return mx.nd.tanh(x) * 2 + y
    return disp_f


def test_alternating_shapes_and_dtypes_retrace_once_each():
    f = _f_plain()
    r = np.random.RandomState(0)
    a32 = r.randn(3, 4).astype(np.float32)
    b32 = r.randn(5, 2).astype(np.float32)
    a64 = a32.astype(np.float64)
    cases = [(a32, a32), (b32, b32), (a32, a32), (b32, b32), (a64, a64), (a32, a32), (a64, a64)]
    for u, v in cases:
        got = f(mx.nd.array(u, dtype=u.dtype), mx.nd.array(v, dtype=v.dtype))
        assert got.dtype == u.dtype
        np.testing.assert_allclose(got.asnumpy(), np.tanh(u) * 2 + v, rtol=1e-6)
    info = f.cache_info()
    assert info.traces == 3                 # (3,4) f32, (5,2) f32, (3,4) f64
    assert info.hits == len(cases) - 3
    # one argument of another shape than the last call: no hit on a stale signature
    got = f(mx.nd.array(a32), mx.nd.array(a32[:, :1]))
    np.testing.assert_allclose(got.asnumpy(), np.tanh(a32) * 2 + a32[:, :1], rtol=1e-6)
    assert f.cache_info().traces == 4


def test_training_flag_and_recording_through_the_fast_path():
    f = _f_plain()
    x = mx.nd.array(np.linspace(-1, 1, 6).reshape(2, 3).astype(np.float32))
    y = mx.nd.ones((2, 3))
    x.attach_grad()
    for train in (True, False, True, False):
        with autograd.record(train_mode=train):
            out = f(x, y)
        out.backward()
        np.testing.assert_allclose(x.grad.asnumpy(), 2 * (1 - np.tanh(x.asnumpy()) ** 2),
                                   rtol=1e-5)
        assert autograd.is_training() is False
    assert f.cache_info().traces == 2      # one per training flag


def test_captured_array_changing_shape_retraces_after_fast_hits():
    w = mx.nd.ones((3,))

    @mx.jit
    def disp_g(x):
        return x * w

    x = mx.nd.array([1.0, 2.0, 3.0])
    for _ in range(3):
        np.testing.assert_allclose(disp_g(x).asnumpy(), [1, 2, 3])
    w._data = np.full((1,), 2.0, np.float32)          # same array object, new shape
    np.testing.assert_allclose(disp_g(x).asnumpy(), [2, 4, 6])
    assert disp_g.cache_info().traces == 2
    np.testing.assert_allclose(disp_g(x).asnumpy(), [2, 4, 6])
    assert disp_g.cache_info().traces == 2


def test_ndarray_subclass_argument_takes_the_full_path():
    class Sub(NDArray):
        __slots__ = ()

    f = _f_plain()
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = mx.nd.array(a)
    f(x, mx.nd.array(a))
    f(x, mx.nd.array(a))
    s = mx.nd.array(a + 1)
    s.__class__ = Sub
    got = f(s, x)
    np.testing.assert_allclose(got.asnumpy(), np.tanh(a + 1) * 2 + a, rtol=1e-6)


def _mlp(prefix):
    net = nn.HybridSequential(prefix=prefix)
    with net.name_scope():
        net.add(nn.Dense(6, activation="relu", in_units=4), nn.Dense(3, in_units=6))
    net.initialize(mx.init.Xavier())
    return net


def test_gluon_cached_path_new_shapes_modes_and_grad_req_add():
    mx.random.seed(7)
    h = _mlp("dfast_")
    e = _mlp("dfast_")
    for p, q in zip(h.collect_params().values(), e.collect_params().values()):
        q.set_data(p.data().copy())
        p.grad_req = q.grad_req = "add"
    hl, el = gluon.loss.SoftmaxCrossEntropyLoss(), gluon.loss.SoftmaxCrossEntropyLoss()
    h.hybridize()
    hl.hybridize()
    r = np.random.RandomState(3)
    # batch sizes and modes switch back and forth: each call must match the eager blocks
    for batch, train in [(4, True), (4, True), (6, True), (4, True), (4, False), (6, False),
                         (4, True)]:
        x = mx.nd.array(r.randn(batch, 4).astype(np.float32))
        y = mx.nd.array(r.randint(0, 3, size=batch).astype(np.float32))
        with autograd.record(train_mode=train):
            out = h(x)
            loss = hl(out, y)
        loss.backward()
        with autograd.record(train_mode=train):
            eout = e(x)
            eloss = el(eout, y)
        eloss.backward()
        np.testing.assert_allclose(loss.asnumpy(), eloss.asnumpy(), rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(out.asnumpy(), eout.asnumpy(), rtol=2e-5, atol=1e-6)
        # grad_req 'add': the gradients accumulate over all the steps, as eagerly
        for p, q in zip(h.collect_params().values(), e.collect_params().values()):
            np.testing.assert_allclose(p.grad().asnumpy(), q.grad().asnumpy(),
                                       rtol=2e-5, atol=1e-6)
    assert np.abs(next(iter(h.collect_params().values())).grad().asnumpy()).sum() > 0
