"""Training helpers: optimizers (fused compiled step vs NumPy vs hand formulas), lr
schedulers, metrics, NDArrayIter batching, initializers, Trainer."""
import doctest
import math
import pickle
import subprocess
import sys

import numpy as np
import pytest

import agjit as mx
from agjit.base import MXNetError

f32 = np.float32


def _param(values, dtype=np.float32, grad=None):
    p = mx.nd.array(values, dtype=dtype)
    p.attach_grad()
    if grad is not None:
        p.grad[:] = np.asarray(grad, dtype=dtype)
    return p


def _set_grad(p, g):
    p.grad[:] = np.asarray(g, dtype=p.asnumpy().dtype)


# -- optimizer: hand formulas ------------------------------------------------------------------

W0 = np.array([[0.5, -1.0, 2.0], [3.0, -0.25, 0.0]])
GRADS = [np.array([[1.0, -2.0, 30.0], [-4.0, 0.5, 6.0]]),
         np.array([[-3.0, 1.0, 2.0], [0.1, -0.2, 8.0]]),
         np.array([[0.5, 0.5, -9.0], [1.0, 1.0, -1.0]])]


def _sgd_ref(lr, momentum, wd, rescale, clip, steps=3):
    w = W0.copy()
    mom = np.zeros_like(w)
    for g in GRADS[:steps]:
        x = rescale * g
        if clip:
            x = np.clip(x, -clip, clip)
        x = x + wd * w
        if momentum:
            mom = momentum * mom - lr * x
            w = w + mom
        else:
            w = w - lr * x
    return w


@pytest.mark.parametrize("momentum,wd,rescale,clip", [
    (0.0, 0.0, 1.0, None), (0.0, 0.1, 0.5, None), (0.9, 0.0, 1.0, None),
    (0.9, 0.01, 0.25, None), (0.9, 0.01, 0.5, 1.0), (0.0, 0.01, 1.0, 2.0)])
def test_sgd_matches_hand_formula(momentum, wd, rescale, clip):
    p = _param(W0)
    kw = dict(learning_rate=0.1, momentum=momentum, wd=wd, clip_gradient=clip,
              rescale_grad=rescale)
    tr = mx.Trainer([p], 'sgd', kw)
    for g in GRADS:
        _set_grad(p, g)
        tr.step(1)
    np.testing.assert_allclose(p.asnumpy(), _sgd_ref(0.1, momentum, wd, rescale, clip),
                               rtol=1e-5, atol=1e-6)


def test_sgd_single_index_update_formula():
    """``optimizer.update(int, ...)`` without momentum is MXNet's sgd_update:
    ``w = (1 - lr*wd)*w - lr*rescale*grad`` in float32."""
    opt = mx.optimizer.SGD(learning_rate=0.1, wd=0.01, rescale_grad=0.5)
    w = mx.nd.array(W0)
    g = mx.nd.array(GRADS[0])
    opt.update(0, w, g, opt.create_state(0, w))
    lr, wd, r = f32(0.1), f32(0.01), f32(0.5)
    want = (f32(1) - lr * wd) * W0.astype(f32) - (lr * r) * GRADS[0].astype(f32)
    assert np.array_equal(w.asnumpy(), want)
    assert opt.num_update == 1
    # the Updater aggregates even one index (multi_sgd_update): w + (-(lr*wd)*w - lr*r*g)
    upd = mx.optimizer.get_updater(mx.optimizer.SGD(learning_rate=0.1, wd=0.01,
                                                    rescale_grad=0.5))
    w2 = mx.nd.array(W0)
    upd(0, g, w2)
    w0 = W0.astype(f32)
    want2 = w0 + (-((lr * wd) * w0) - (lr * r) * GRADS[0].astype(f32))
    assert np.array_equal(w2.asnumpy(), want2)


def _adam_ref(lr, b1, b2, eps, wd, rescale, clip):
    w = W0.copy()
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(GRADS, 1):
        x = rescale * g + wd * w
        if clip:
            x = np.clip(x, -clip, clip)
        m = b1 * m + (1 - b1) * x
        v = b2 * v + (1 - b2) * x * x
        lr_t = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        w = w - lr_t * m / (np.sqrt(v) + eps)
    return w


@pytest.mark.parametrize("wd,rescale,clip", [(0.0, 1.0, None), (0.01, 0.5, None),
                                             (0.01, 1.0, 3.0)])
def test_adam_three_steps_match_hand_formula(wd, rescale, clip):
    p = _param(W0)
    tr = mx.Trainer([p], 'adam', dict(learning_rate=0.05, wd=wd, rescale_grad=rescale,
                                      clip_gradient=clip))
    for g in GRADS:
        _set_grad(p, g)
        tr.step(1)
    want = _adam_ref(0.05, 0.9, 0.999, 1e-8, wd, rescale, clip)
    np.testing.assert_allclose(p.asnumpy(), want, rtol=1e-5, atol=1e-6)
    assert tr.optimizer._index_update_count == {0: 3}


def test_trainer_rescales_by_batch_size_and_keeps_objects():
    p = _param([1.0, 2.0], grad=[4.0, 8.0])
    buf = p._data
    tr = mx.Trainer({'w': p}, 'sgd', {'learning_rate': 0.5})
    tr.step(4)
    assert p._data is buf                      # in place: mx.jit captures parameters
    np.testing.assert_allclose(p.asnumpy(), [0.5, 1.0])
    assert tr.optimizer.rescale_grad == 0.25


def test_param_idx2name_zeroes_bias_weight_decay_and_lr_mult():
    opt = mx.optimizer.create('sgd', learning_rate=1.0, wd=0.5,
                              param_idx2name={0: 'fc_weight', 1: 'fc_bias'})
    upd = mx.optimizer.get_updater(opt)
    w = mx.nd.array([1.0, 1.0])
    b = mx.nd.array([1.0, 1.0])
    zero = mx.nd.zeros((2,))
    upd([0, 1], [zero, zero], [w, b])
    np.testing.assert_allclose(w.asnumpy(), [0.5, 0.5])    # decayed
    np.testing.assert_allclose(b.asnumpy(), [1.0, 1.0])    # bias: wd_mult 0
    opt.set_lr_mult({'fc_weight': 0.0})
    opt.set_wd_mult({})
    upd([0, 1], [zero, zero], [w, b])
    np.testing.assert_allclose(w.asnumpy(), [0.5, 0.5])    # lr_mult 0 now


def test_optimizer_registry_and_learning_rate_api():
    opt = mx.optimizer.create('SGD', learning_rate=0.1, momentum=0.9)
    assert isinstance(opt, mx.optimizer.SGD) and opt.momentum == 0.9
    assert mx.optimizer.create('adam').learning_rate == 0.001
    assert mx.optimizer.Optimizer.create_optimizer('sgd').learning_rate == 0.01
    with pytest.raises(ValueError):
        mx.optimizer.create('nosuchopt')

    @mx.optimizer.register
    class MyTestOpt(mx.optimizer.SGD):
        pass
    assert type(mx.optimizer.create('mytestopt')) is MyTestOpt
    opt.set_learning_rate(0.2)
    assert opt.learning_rate == 0.2
    sched = mx.lr_scheduler.FactorScheduler(step=1, factor=0.5, base_lr=1.0)
    opt2 = mx.optimizer.SGD(learning_rate=0.8, lr_scheduler=sched)
    assert sched.base_lr == 0.8
    with pytest.raises(UserWarning):
        opt2.set_learning_rate(0.1)


def test_lr_scheduler_drives_updates():
    sched = mx.lr_scheduler.FactorScheduler(step=2, factor=0.5, base_lr=1.0)
    p = _param([0.0], grad=[1.0])
    tr = mx.Trainer([p], mx.optimizer.SGD(lr_scheduler=sched))
    seen = []
    for _ in range(5):
        before = p.asnumpy()[0]
        tr.step(1)
        seen.append(before - p.asnumpy()[0])
    # updates 1..5 use sched(1..5): 1, 1, .5, .5, .25
    np.testing.assert_allclose(seen, [1, 1, .5, .5, .25], rtol=1e-6)
    assert tr.learning_rate == 0.25


def test_updater_states_pickle_round_trip():
    opt = mx.optimizer.Adam(learning_rate=0.1)
    upd = mx.optimizer.get_updater(opt)
    w = mx.nd.array([1.0, 2.0])
    g = mx.nd.array([0.5, -0.5])
    upd([0], [g], [w])
    blob = upd.get_states(dump_optimizer=True)
    w2 = w.copy()
    upd([0], [g], [w])
    upd2 = mx.optimizer.get_updater(mx.optimizer.Adam())
    upd2.set_states(blob)
    assert upd2.optimizer.learning_rate == 0.1
    upd2([0], [g], [w2])
    np.testing.assert_array_equal(w.asnumpy(), w2.asnumpy())
    pickle.loads(pickle.dumps(opt))           # param_dict is dropped, the rest pickles


def test_trainer_errors():
    p = mx.nd.array([1.0])
    tr = mx.Trainer([p], 'sgd')
    with pytest.raises(MXNetError, match="attach_grad"):
        tr.step(1)
    with pytest.raises(ValueError):
        mx.Trainer(p, 'sgd')
    with pytest.raises(AssertionError):
        mx.Trainer([p], mx.optimizer.SGD(), {'learning_rate': 0.1})
    q = _param([1.0, 2.0])
    with pytest.raises(MXNetError, match="shape"):
        mx.optimizer.SGD().update(0, q, mx.nd.zeros((3,)), None)
    frozen = _param([1.0, 2.0], grad=[1.0, 1.0])
    frozen.attach_grad(grad_req='null')
    live = _param([1.0], grad=[1.0])
    mx.Trainer([frozen, live], 'sgd', {'learning_rate': 1.0}).step(1)
    np.testing.assert_array_equal(frozen.asnumpy(), [1.0, 2.0])   # grad_req null: skipped
    np.testing.assert_array_equal(live.asnumpy(), [0.0])


# -- the fused compiled step -------------------------------------------------------------------

_FUSED_CASES = [
    ('sgd', dict(learning_rate=0.1)),
    ('sgd', dict(learning_rate=0.1, wd=0.01, clip_gradient=1.0)),
    ('sgd', dict(learning_rate=0.1, momentum=0.9, wd=0.01)),
    ('sgd', dict(learning_rate=0.1, momentum=0.9, wd=0.01, clip_gradient=0.5)),
    ('adam', dict(learning_rate=0.01, wd=0.001)),
    ('adam', dict(learning_rate=0.01, clip_gradient=0.5)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", _FUSED_CASES)
def test_fused_step_equals_numpy_fallback_bitwise(name, kw, dtype):
    rng = np.random.default_rng(7)
    shapes = [(3, 4), (5,), (2, 1, 3), (7, 2)]
    vals = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) * 3 for s in shapes] for _ in range(3)]
    fused = [_param(v, dtype) for v in vals]
    plain = [_param(v, dtype) for v in vals]
    t1 = mx.Trainer(fused, name, dict(kw))
    t2 = mx.Trainer(plain, name, dict(kw))
    t2.optimizer.fused = False
    for step in range(3):
        for a, b, g in zip(fused, plain, grads[step]):
            _set_grad(a, g)
            _set_grad(b, g)
        t1.step(2)
        t2.step(2)
    assert len(t1._plan.groups) == 1 and not t1._plan.slow      # all four in one call
    assert not t2._plan.groups
    for a, b in zip(fused, plain):
        assert a.asnumpy().dtype == dtype
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


# every other optimizer with a compiled kernel (agjit._optimizer_kernels): float32, and
# float64 where the kernel reads coefficients computed in the parameter dtype (FTML) or has
# the most branches (RMSProp centered); each (kernel, dtype) is one Numba compile
_FUSED_MORE = [
    ('nag', dict(learning_rate=0.1, momentum=0.9, wd=0.01), np.float32),
    ('nag', dict(learning_rate=0.1, wd=0.01, clip_gradient=0.5), np.float32),
    ('rmsprop', dict(learning_rate=0.01, wd=0.01, clip_weights=0.3), np.float32),
    ('rmsprop', dict(learning_rate=0.01, centered=True, clip_gradient=0.5), np.float32),
    ('rmsprop', dict(learning_rate=0.01, centered=True, wd=0.01), np.float64),
    ('adagrad', dict(learning_rate=0.1, wd=0.01, clip_gradient=1.0), np.float32),
    ('adadelta', dict(wd=0.01, rho=0.8), np.float32),
    ('adamax', dict(learning_rate=0.01, wd=0.01, clip_gradient=0.5), np.float32),
    ('signum', dict(learning_rate=0.01, wd=0.01, wd_lh=0.01), np.float32),
    ('signum', dict(learning_rate=0.01, momentum=0.0, wd=0.01), np.float32),
    ('ftml', dict(learning_rate=0.01, wd=0.01, clip_gradient=0.5), np.float32),
    ('ftml', dict(learning_rate=0.01), np.float64),
    ('ftrl', dict(learning_rate=0.1, wd=0.01, lamda1=0.05), np.float32),
    ('dcasgd', dict(learning_rate=0.1, wd=0.01), np.float32),
    ('dcasgd', dict(learning_rate=0.1, momentum=0.9, clip_gradient=0.5), np.float32),
]


@pytest.mark.parametrize("name,kw,dtype", _FUSED_MORE)
def test_fused_step_of_every_kernel_equals_numpy_bitwise(name, kw, dtype):
    """Weights and every state bit for bit, over 4 steps with per-parameter lr/wd multipliers
    (column-wise coefficients) and one parameter updated once more than the others
    (per-parameter update counts: Adamax, FTML)."""
    rng = np.random.default_rng(11)
    shapes = [(3, 4), (5,), (2, 1, 3)]
    vals = [rng.standard_normal(s) for s in shapes]
    grads = [[rng.standard_normal(s) * 3 for s in shapes] for _ in range(4)]
    runs = []
    for fused in (True, False):
        params = [_param(v, dtype) for v in vals]
        opt = mx.optimizer.create(name, **kw)
        opt.fused = fused
        opt.set_lr_mult({1: 0.5})
        opt.set_wd_mult({2: 2.0})
        upd = mx.optimizer.get_updater(opt)
        _set_grad(params[0], grads[0][0])
        upd([0], [params[0].grad], [params[0]])              # parameter 0 runs ahead
        for step in range(4):
            for p, g in zip(params, grads[step]):
                _set_grad(p, g)
            upd([0, 1, 2], [p.grad for p in params], params)
        plan = upd._plans[(0, 1, 2)]
        assert (len(plan.groups), len(plan.slow)) == ((1, 0) if fused else (0, 3)), name
        states = []
        for i in range(3):
            st = upd.states[i]
            st = [] if st is None else [st] if isinstance(st, mx.nd.NDArray) else list(st)
            states.append([x.asnumpy() for x in st])
        runs.append(([p.asnumpy() for p in params], states))
    for a, b in zip(runs[0][0], runs[1][0]):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)
    for sa, sb in zip(runs[0][1], runs[1][1]):
        assert len(sa) == len(sb)
        for a, b in zip(sa, sb):
            np.testing.assert_array_equal(a, b)


def test_a_state_the_kernel_does_not_expect_takes_the_numpy_path():
    """RMSProp switched to centered after its (one-buffer) states exist: the kernel, which
    would read three buffers, is not called; the NumPy update says what is wrong."""
    p = _param([1.0, 2.0], grad=[1.0, 1.0])
    opt = mx.optimizer.create('rmsprop', learning_rate=0.1)
    upd = mx.optimizer.get_updater(opt)
    upd([0], [p.grad], [p])
    opt.centered = True
    with pytest.raises(IndexError):
        upd([0], [p.grad], [p])
    assert not upd._plans[(0,)].groups


def test_fused_step_mixes_dtypes_and_noncontiguous_parameters():
    base = np.arange(12.0).reshape(3, 4) / 10
    nc = mx.nd.NDArray(np.asfortranarray(base).astype(np.float32))   # not C-contiguous
    nc.attach_grad()
    a32 = _param(base)
    a64 = _param(base, np.float64)
    for p in (nc, a32, a64):
        _set_grad(p, np.ones((3, 4)))
    tr = mx.Trainer([nc, a32, a64], 'sgd', {'learning_rate': 0.1, 'momentum': 0.5})
    tr.step(1)
    tr.step(1)
    plan = tr._plan
    assert len(plan.groups) == 2 and [s[0] for s in plan.slow] == [0]
    want = base - 0.1 - (0.5 * 0.1 + 0.1)        # mom: -0.1, then 0.5*-0.1 - 0.1
    for p in (nc, a32, a64):
        np.testing.assert_allclose(p.asnumpy(), want, rtol=1e-6)
    np.testing.assert_array_equal(nc.asnumpy(), a32.asnumpy())


def test_fused_plan_follows_reattached_gradients():
    p = _param([1.0, 1.0], grad=[1.0, 1.0])
    tr = mx.Trainer([p], 'sgd', {'learning_rate': 1.0})
    tr.step(1)
    p.attach_grad()                       # a new gradient buffer
    _set_grad(p, [2.0, 2.0])
    tr.step(1)
    np.testing.assert_array_equal(p.asnumpy(), [-2.0, -2.0])


def test_import_agjit_does_not_import_numba():
    code = "import sys, agjit; assert 'numba' not in sys.modules, 'numba imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- lr schedulers -------------------------------------------------------------------------------

def test_factor_scheduler():
    s = mx.lr_scheduler.FactorScheduler(step=2, factor=0.5, base_lr=1.0, stop_factor_lr=0.2)
    assert [s(n) for n in range(1, 9)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2]
    s = mx.lr_scheduler.FactorScheduler(step=3, factor=0.1, base_lr=1.0)
    assert s(10) == pytest.approx(1e-3)     # catches up with a while loop
    with pytest.raises(ValueError):
        mx.lr_scheduler.FactorScheduler(step=0)
    with pytest.raises(ValueError):
        mx.lr_scheduler.FactorScheduler(step=1, factor=2)


def test_multifactor_scheduler_and_warmup():
    s = mx.lr_scheduler.MultiFactorScheduler(step=[3, 5], factor=0.1, base_lr=1.0)
    got = [s(n) for n in range(1, 8)]
    np.testing.assert_allclose(got, [1, 1, 1, .1, .1, .01, .01])
    w = mx.lr_scheduler.MultiFactorScheduler(step=[10], factor=0.5, base_lr=1.0,
                                             warmup_steps=4, warmup_begin_lr=0.2)
    np.testing.assert_allclose([w(n) for n in range(0, 6)], [0.2, 0.4, 0.6, 0.8, 1.0, 1.0])
    c = mx.lr_scheduler.FactorScheduler(step=10, base_lr=1.0, warmup_steps=2,
                                        warmup_begin_lr=0.3, warmup_mode='constant')
    assert [c(0), c(1), c(2)] == [0.3, 0.3, 1.0]
    with pytest.raises(ValueError):
        mx.lr_scheduler.MultiFactorScheduler(step=[3, 3])
    with pytest.raises(ValueError):
        mx.lr_scheduler.LRScheduler(warmup_mode='cubic')


def test_poly_and_cosine_schedulers():
    p = mx.lr_scheduler.PolyScheduler(max_update=10, base_lr=1.0, pwr=2, final_lr=0.0)
    assert p(0) == 1.0 and p(5) == pytest.approx(0.25) and p(10) == 0.0 and p(20) == 0.0
    c = mx.lr_scheduler.CosineScheduler(max_update=10, base_lr=1.0, final_lr=0.0)
    assert c(0) == pytest.approx(1.0) and c(5) == pytest.approx(0.5) and c(10) == pytest.approx(0)


# -- metrics -----------------------------------------------------------------------------------

PRED = mx.nd.array([[0.3, 0.7], [0, 1.], [0.4, 0.6]])
LABEL = mx.nd.array([0, 1, 1])


def test_accuracy():
    acc = mx.metric.Accuracy()
    assert math.isnan(acc.get()[1])
    acc.update([LABEL], [PRED])
    assert acc.get() == ('accuracy', pytest.approx(2 / 3))
    acc.update(mx.nd.array([1.0, 0.0]), mx.nd.array([1.0, 1.0]))  # single arrays, same shape
    assert (acc.sum_metric, acc.num_inst) == (3, 5)
    acc.reset()
    assert acc.num_inst == 0 and acc.sum_metric == 0.0
    a0 = mx.metric.Accuracy(axis=0)
    a1 = mx.metric.Accuracy()
    for m in (a0, a1):
        m.update([mx.nd.array([1, 0])], [mx.nd.array([[0.1, 0.9], [0.2, 0.8]])])
    assert (a0.get()[1], a1.get()[1]) == (1.0, 0.5)
    with pytest.raises(ValueError):
        acc.update([LABEL, LABEL], [PRED])


def test_top_k_accuracy():
    m = mx.metric.create('top_k_accuracy', top_k=2)
    pred = mx.nd.array([[0.1, 0.5, 0.4], [0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])
    m.update([mx.nd.array([2, 2, 0])], [pred])
    assert m.get() == ('top_k_accuracy_2', pytest.approx(1 / 3))
    with pytest.raises(AssertionError):
        mx.metric.TopKAccuracy(top_k=1)


def test_cross_entropy_and_nll():
    ce = mx.metric.create('ce')
    ce.update([LABEL], [PRED])
    want = -(np.log(0.3 + 1e-12) + np.log(1 + 1e-12) + np.log(0.6 + 1e-12)) / 3
    assert ce.get()[0] == 'cross-entropy'
    assert ce.get()[1] == pytest.approx(want, rel=1e-6)
    assert ce.get()[1] == pytest.approx(0.57159948348999023, rel=1e-6)
    nll = mx.metric.create('nll_loss')
    nll.update([LABEL], [PRED])
    assert nll.get() == ('nll-loss', pytest.approx(want, rel=1e-6))


def test_regression_metrics_average_per_batch():
    label1, pred1 = mx.nd.array([1, 2]), mx.nd.array([1, 4])
    label2, pred2 = mx.nd.array([0, 0, 0, 0]), mx.nd.array([1, 1, 1, 1])
    mse, mae, rmse = (mx.metric.create(n) for n in ('mse', 'mae', 'rmse'))
    for m in (mse, mae, rmse):
        m.update([label1], [pred1])
        m.update([label2], [pred2])
        assert m.num_inst == 2
    assert mse.get() == ('mse', pytest.approx((2.0 + 1.0) / 2))     # not (8+4)/6
    assert mae.get() == ('mae', pytest.approx((1.0 + 1.0) / 2))
    assert rmse.get() == ('rmse', pytest.approx((math.sqrt(2.0) + 1.0) / 2))


def test_composite_create_and_loss():
    comp = mx.metric.create(['acc', 'ce'])
    assert isinstance(comp, mx.metric.CompositeEvalMetric)
    comp.update([LABEL], [PRED])
    names, values = comp.get()
    assert names == ['accuracy', 'cross-entropy']
    assert values[0] == pytest.approx(2 / 3)
    assert comp.get_name_value()[0] == ('accuracy', pytest.approx(2 / 3))
    assert isinstance(mx.metric.create('accuracy'), mx.metric.Accuracy)
    assert isinstance(mx.metric.create('top_k_acc', top_k=3), mx.metric.TopKAccuracy)
    loss = mx.metric.Loss()
    loss.update(None, [mx.nd.array([1.0, 3.0])])
    assert loss.get() == ('loss', 2.0)
    custom = mx.metric.create(lambda label, pred: float(np.abs(label - pred).sum()))
    custom.update([mx.nd.array([1.0])], [mx.nd.array([3.0])])
    assert custom.get() == ('custom(<lambda>)', 2.0)
    with pytest.raises(AssertionError):
        mx.metric.create('nosuchmetric')


# -- NDArrayIter -------------------------------------------------------------------------------

def _batches(it):
    return [(b.data[0].asnumpy()[:, 0].tolist(), b.label[0].asnumpy().tolist(), b.pad)
            for b in it]


DATA = np.arange(20).reshape(10, 2)
LAB = np.arange(10) * 10


def test_ndarrayiter_pad_wraps_to_start():
    it = mx.io.NDArrayIter(DATA, LAB, batch_size=3, last_batch_handle='pad')
    got = _batches(it)
    assert [g[2] for g in got] == [0, 0, 0, 2]
    assert got[3][0] == [18.0, 0.0, 2.0] and got[3][1] == [90.0, 0.0, 10.0]
    it.reset()
    assert len(_batches(it)) == 4
    small = mx.io.NDArrayIter(np.arange(2), batch_size=5)       # pad > num_data: tiled
    b = next(iter(small))
    assert b.data[0].asnumpy().tolist() == [0, 1, 0, 1, 0] and b.pad == 3


def test_ndarrayiter_discard():
    it = mx.io.NDArrayIter(DATA, LAB, batch_size=3, last_batch_handle='discard')
    got = _batches(it)
    assert [g[0] for g in got] == [[0, 2, 4], [6, 8, 10], [12, 14, 16]]
    assert all(g[2] == 0 for g in got)
    it.reset()
    assert len(_batches(it)) == 3


def test_ndarrayiter_roll_over_carries_leftover():
    it = mx.io.NDArrayIter(DATA, LAB, batch_size=3, last_batch_handle='roll_over')
    first = _batches(it)
    assert len(first) == 3                       # sample 9 is held back
    it.reset()
    second = _batches(it)
    assert second[0][0] == [18.0, 0.0, 2.0] and second[0][1] == [90.0, 0.0, 10.0]
    assert second[0][2] == 1                     # pad = number of carried samples
    assert [g[0] for g in second[1:]] == [[4, 6, 8], [10, 12, 14]]
    it.reset()                                   # samples 8, 9 roll over now
    third = _batches(it)
    assert third[0][0] == [16.0, 18.0, 0.0] and third[0][2] == 2
    assert [g[0] for g in third[1:]] == [[2, 4, 6], [8, 10, 12], [14, 16, 18]]
    it.hard_reset()
    assert _batches(it)[0][0] == [0, 2, 4]


def test_ndarrayiter_inputs_descs_and_shuffle():
    it = mx.io.NDArrayIter({'b': np.ones((4, 3)), 'a': np.zeros((4, 2))},
                           {'lab': np.arange(4)}, batch_size=2)
    assert [d.name for d in it.provide_data] == ['a', 'b']          # sorted
    assert it.provide_data[1].shape == (2, 3) and it.provide_data[1].dtype == np.float32
    assert it.provide_label[0] == ('lab', (2,))
    it2 = mx.io.NDArrayIter([np.ones((4, 3)), np.zeros((4, 3))], batch_size=2)
    assert [d.name for d in it2.provide_data] == ['_0_data', '_1_data']
    assert mx.io.NDArrayIter(mx.nd.ones((4, 1), dtype='float64')).provide_data[0].dtype \
        == np.float64
    np.random.seed(3)
    sh = mx.io.NDArrayIter(DATA, LAB, batch_size=5, shuffle=True)
    rows = [(b.data[0].asnumpy(), b.label[0].asnumpy()) for b in sh]
    d = np.concatenate([r[0] for r in rows])
    lab = np.concatenate([r[1] for r in rows])
    assert sorted(lab.tolist()) == LAB.tolist()
    np.testing.assert_array_equal(d[:, 0] * 5, lab)                  # rows stay paired
    with pytest.raises(MXNetError):
        mx.io.NDArrayIter(DATA, batch_size=2, last_batch_handle='wrap')
    batch = mx.io.DataBatch([mx.nd.ones((2, 2))], [mx.nd.ones((2,))], pad=0)
    assert "data shapes: [(2, 2)]" in str(batch)


# -- initializers ------------------------------------------------------------------------------

def test_initializer_dumps_and_create():
    assert mx.init.Uniform().dumps() == '["uniform", {"scale": 0.07}]'
    assert mx.init.Normal().dumps() == '["normal", {"sigma": 0.01}]'
    assert mx.init.Zero().dumps() == '["zero", {}]'
    assert mx.init.One().dumps() == '["one", {}]'
    assert mx.init.Constant(0.5).dumps() == '["constant", {"value": 0.5}]'
    assert mx.init.Xavier().dumps() == \
        '["xavier", {"rnd_type": "uniform", "factor_type": "avg", "magnitude": 3}]'
    for text in ('["uniform", {"scale": 0.3}]', 'zeros', '["constant", {"value": 2}]'):
        init = mx.initializer.create(text)
        assert isinstance(init, mx.init.Initializer)
    assert mx.initializer.create('["uniform", {"scale": 0.3}]').scale == 0.3
    assert mx.init.from_json('["xavier", {"magnitude": 2}]').magnitude == 2.0
    with pytest.raises(MXNetError):
        mx.init.from_json('["nosuchinit", {}]')


def test_initializer_statistics_and_seed():
    mx.random.seed(11)
    w = mx.nd.zeros((200, 100))
    mx.init.Uniform(0.5)(mx.init.InitDesc('fc_weight'), w)
    a = w.asnumpy()
    assert a.dtype == np.float32 and np.abs(a).max() <= 0.5
    assert abs(a.mean()) < 0.01 and a.std() == pytest.approx(0.5 / math.sqrt(3), rel=0.03)
    mx.random.seed(11)
    w2 = mx.nd.zeros((200, 100))
    mx.init.Uniform(0.5)(mx.init.InitDesc('fc_weight'), w2)
    np.testing.assert_array_equal(a, w2.asnumpy())
    mx.init.Normal(0.2)(mx.init.InitDesc('fc_weight'), w)
    assert w.asnumpy().std() == pytest.approx(0.2, rel=0.03)
    mx.init.Xavier()(mx.init.InitDesc('fc_weight'), w)               # fan avg 150
    bound = math.sqrt(3 / 150)
    assert np.abs(w.asnumpy()).max() <= bound
    assert w.asnumpy().std() == pytest.approx(bound / math.sqrt(3), rel=0.03)
    conv = mx.nd.zeros((16, 8, 3, 3))
    mx.init.Xavier('gaussian', 'in', 2)(mx.init.InitDesc('c_weight'), conv)
    assert conv.asnumpy().std() == pytest.approx(math.sqrt(2 / 72), rel=0.08)
    with pytest.raises(ValueError):
        mx.init.Xavier()(mx.init.InitDesc('v_weight'), mx.nd.zeros((5,)))


def test_initializer_dispatch_by_suffix_and_init_attr():
    init = mx.init.Uniform(1.0)
    arrs = {n: mx.nd.ones((3,)) * 7 for n in ('fc_bias', 'bn_gamma', 'bn_beta')}
    for n, a in arrs.items():
        init(mx.init.InitDesc(n), a)
    assert arrs['fc_bias'].asnumpy().tolist() == [0, 0, 0]
    assert arrs['bn_gamma'].asnumpy().tolist() == [1, 1, 1]
    assert arrs['bn_beta'].asnumpy().tolist() == [0, 0, 0]
    # MXNet 1.9.1: an InitDesc for an aux state carries its '["zero", {}]' / '["one", {}]' in
    # attrs (the symbol sets it); a bare InitDesc('bn_moving_mean') is "Unknown initialization
    # pattern" (ValueError), while the legacy plain-name call still knows the suffix.
    for n, val in (('bn_moving_mean', 0), ('bn_moving_var', 1)):
        a = mx.nd.ones((3,)) * 7
        with pytest.raises(ValueError, match='Unknown initialization pattern'):
            init(mx.init.InitDesc(n), a)
        init(n, a)
        assert a.asnumpy().tolist() == [val] * 3
        a[:] = 7
        attrs = mx.sym.BatchNorm(mx.sym.var('d'), name='bn').attr_dict()[n]
        init(mx.init.InitDesc(n, attrs), a)
        assert a.asnumpy().tolist() == [val] * 3
    w = mx.nd.zeros((2, 2))
    init(mx.init.InitDesc('fc_weight', {'__init__': '["constant", {"value": 0.5}]'}), w)
    assert w.asnumpy().tolist() == [[0.5, 0.5], [0.5, 0.5]]
    init('fc_bias', w)                                   # plain names work too
    assert w.asnumpy().tolist() == [[0, 0], [0, 0]]
    with pytest.raises(ValueError):
        init(mx.init.InitDesc('mystery'), w)
    v = mx.nd.zeros((2,))
    assert mx.init.init_array('x', v, {'__init__': '["one", {}]'})
    assert v.asnumpy().tolist() == [1.0, 1.0]
    assert not mx.init.init_array('x', v, {})


def test_variable_init_attr_round_trips_through_dumps():
    s = mx.sym.Variable('w', init=mx.init.Constant(0.25))
    text = s.attr('__init__')
    assert text == '["constant", {"value": 0.25}]'
    arr = mx.nd.zeros((2,))
    mx.init.Xavier()(mx.init.InitDesc('w', {'__init__': text}), arr)
    assert arr.asnumpy().tolist() == [0.25, 0.25]


# -- a tiny training loop ----------------------------------------------------------------------

@pytest.mark.parametrize("opt,params", [('sgd', {'learning_rate': 0.1, 'momentum': 0.9}),
                                        ('adam', {'learning_rate': 0.05})])
def test_trainer_training_loop_reduces_loss(opt, params):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    true_w = np.array([[1.5, -2.0, 0.5]], np.float32)
    y = x @ true_w.T[:, 0] + 0.3
    mx.random.seed(1)
    w = mx.nd.zeros((1, 3))
    b = mx.nd.zeros((1,))
    mx.init.Xavier()(mx.init.InitDesc('fc_weight'), w)
    mx.init.Xavier()(mx.init.InitDesc('fc_bias'), b)
    w.attach_grad()
    b.attach_grad()
    trainer = mx.Trainer({'fc_weight': w, 'fc_bias': b}, opt, params)
    it = mx.io.NDArrayIter(x, y, batch_size=16, shuffle=False)
    metric = mx.metric.MSE()
    losses = []
    for epoch in range(15):
        it.reset()
        metric.reset()
        for batch in it:
            with mx.autograd.record():
                pred = mx.nd.FullyConnected(batch.data[0], w, b, num_hidden=1)
                loss = mx.nd.square(pred.reshape((-1,)) - batch.label[0])
            loss.backward()
            trainer.step(batch.data[0].shape[0])
            metric.update([batch.label[0]], [pred.reshape((-1,))])
        losses.append(metric.get()[1])
    assert losses[-1] < 0.05 * losses[0]


@pytest.mark.parametrize("module", [mx.optimizer, mx.lr_scheduler, mx.metric, mx.io,
                                    mx.initializer])
def test_docstring_examples(module):
    res = doctest.testmod(module, extraglobs={'mx': mx, 'np': np})
    assert res.failed == 0 and res.attempted > 0
