"""Issue 10: the compiled path never gives a silently wrong result.

* unused intermediates of a traced function do not corrupt its gradients (no compiler table
  is keyed by ``id()`` of an object that can die: a freed node's id is reused by the nodes
  ``autodiff.gradient`` builds later);
* training vs prediction mode selects the same graph in forward and backward, for every
  mode-dependent op, compiled = eager = MXNet 1.9.1;
* an unused array argument of a jitted function inside ``record()`` behaves as in eager
  mode (its gradient is left alone, no error).

Thread safety of replays is in tests/test_threads.py.
"""
import gc

import numpy as np
import pytest

import agjit as mx
from symbol.graph import Node

nd, ag = mx.nd, mx.autograd


def _grad(fn, x_np, **kw):
    x = nd.array(x_np)
    x.attach_grad()
    with ag.record():
        loss = nd.sum(fn(x, **kw))
    loss.backward()
    return loss.asnumpy(), x.grad.asnumpy()


# ---------------------------------------------------------------------------------------
# 1. unused intermediates
# ---------------------------------------------------------------------------------------
def _with_dead_values(x):
    _ = nd.relu(x)
    a = nd.abs(x)
    _ = nd.sum(a, keepdims=True)
    return nd.softsign(x)


def test_unused_intermediates_do_not_corrupt_gradients():
    """The issue's reproducer, on fresh jitted functions: the dead relu/abs/sum nodes are
    freed after tracing and their ids come back for gradient nodes; before the fix ~1 in 3
    fresh traces gave x.grad a wrong broadcast ([0.44, 0.44, 0.44])."""
    x = np.array([[[0.5, -1.0, 2.0]]], dtype=np.float32)
    want_loss, want = _grad(_with_dead_values, x)
    np.testing.assert_allclose(want, 1.0 / (1.0 + np.abs(x)) ** 2, rtol=1e-6)
    for _ in range(12):
        got_loss, got = _grad(mx.jit(_with_dead_values), x)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6)
        np.testing.assert_allclose(got_loss, want_loss, rtol=1e-6)
        gc.collect()


def test_compiler_tables_are_keyed_by_entries():
    """Every shape/dtype table of a traced graph is keyed by ``(Node, index)`` and every
    buffer plan by its kernel object, never by an integer id."""
    f = mx.jit(_with_dead_values)
    x = nd.array(np.ones((2, 3), np.float32))
    x.attach_grad()
    with ag.record():
        y = nd.sum(f(x))
    y.backward(nd.array([2.0]))      # not ones: the ordinary train + backward kernels
    tr = f._last
    for table in (tr.shapes, tr.dtypes):
        assert table and all(isinstance(k, tuple) and isinstance(k[0], Node)
                             and isinstance(k[1], int) for k in table)
    assert all(isinstance(k, Node) for k in tr.provenance)
    assert not any(isinstance(k, int) or (isinstance(k, tuple) and isinstance(k[-1], int)
                                          and not isinstance(k[0], Node)) for k in tr.plans)
    np.testing.assert_allclose(x.grad.asnumpy(), np.full((2, 3), 0.5), rtol=1e-6)


def _mlp_loss(x, w1, b1, w2, b2):
    h = nd.relu(nd.FullyConnected(x, w1, b1, num_hidden=5))
    _ = nd.mean(h)                                   # an unused metric
    return nd.sum(nd.FullyConnected(h, w2, b2, num_hidden=3) ** 2)


def test_step_mode_then_other_head_gradient_on_fresh_traces():
    """A step-mode call whose backward asks for another head gradient drops the step kernel
    and builds the training kernels at once: the freed kernel's id came back for a new
    kernel, whose buffer plan (keyed by id) was the step kernel's -- a NumPy/Numba shape
    error or wrong gradients."""
    rs = np.random.RandomState(0)
    args = [nd.array(rs.randn(*s).astype(np.float32))
            for s in ((4, 6), (5, 6), (5,), (3, 5), (3,))]
    for a in args[1:]:
        a.attach_grad()
    with ag.record():
        ref = _mlp_loss(*args)
    ref.backward(nd.array([3.0]))
    want = [a.grad.asnumpy().copy() for a in args[1:]]
    for _ in range(3):
        f = mx.jit(_mlp_loss)
        with ag.record():
            y = f(*args)
        y.backward()                                 # step mode
        with ag.record():
            y = f(*args)
        y.backward(nd.array([3.0]))                  # step mode switched off
        for a, w in zip(args[1:], want):
            np.testing.assert_allclose(a.grad.asnumpy(), w, rtol=1e-5, atol=1e-6)
        gc.collect()


def test_executor_rebinding_with_other_ndim_relowers():
    """The lowering cache of hand-written op lowerings depends on the shapes too: the same
    symbol bound with 2-D and then 3-D data must not reuse the 2-D FullyConnected code
    (flatten=False reads the last axis, whose index depends on ndim)."""
    data = mx.sym.Variable("data")
    fc = mx.sym.FullyConnected(data, num_hidden=2, flatten=False, name="fc")
    rs = np.random.RandomState(1)
    w = rs.randn(2, 6).astype(np.float32)
    b = rs.randn(2).astype(np.float32)
    for shape in ((3, 6), (3, 4, 6)):
        x = rs.randn(*shape).astype(np.float32)
        ex = fc.bind(mx.cpu(), {"data": nd.array(x), "fc_weight": nd.array(w),
                                "fc_bias": nd.array(b)},
                     args_grad={"fc_weight": nd.zeros((2, 6))})
        for _ in range(3):                           # past the interpreted tier
            out = ex.forward(is_train=True)[0].asnumpy()
        np.testing.assert_allclose(out, x @ w.T + b, rtol=1e-5, atol=1e-5)
        ex.backward(nd.ones(shape[:-1] + (2,)))
        np.testing.assert_allclose(ex.grad_dict["fc_weight"].asnumpy(),
                                   np.ones((x.size // 6, 2)).T @ x.reshape(-1, 6),
                                   rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------
# 2. training vs prediction mode: forward and backward select the same graph
# ---------------------------------------------------------------------------------------
MODES = [(True, True), (True, False), (False, True), (False, False)]


def _dropout_loss(x, w):
    return nd.sum(nd.Dropout(x, p=0.5) * w)


def test_predict_mode_backward_does_not_apply_dropout():
    """The issue's reproducer: inside record(train_mode=False) a jitted sum(Dropout(x))
    is the identity forward AND backward (it returned 16.0 but wrote a dropout-masked
    gradient, [2,0,0,0,0,2,0,0]...; its forward was masked too)."""
    def f(x):
        return nd.sum(nd.Dropout(x, p=0.5))
    for fn in (f, mx.jit(f)):
        for _ in range(2):
            x = nd.ones((2, 8))
            x.attach_grad()
            with ag.record(train_mode=False):
                y = fn(x)
            y.backward(train_mode=False)
            assert y.asscalar() == 16.0
            np.testing.assert_array_equal(x.grad.asnumpy(), np.ones((2, 8)))


@pytest.mark.parametrize("fwd_train,bwd_train", MODES)
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
def test_dropout_modes_like_mxnet(fwd_train, bwd_train, compiled):
    """MXNet 1.9.1 (ag_dropout_* and observed): Dropout's gradient is the mask its forward
    drew, whatever backward's train_mode -- the identity after a predict-mode forward
    (also predict_mode() nested in record()), the scaled mask after a training one."""
    fn = mx.jit(_dropout_loss) if compiled else _dropout_loss
    w = nd.array(np.arange(1, 33, dtype=np.float32).reshape(4, 8))
    for nested in (False, True):
        for _ in range(2):              # the second call replays the cached kernels
            x = nd.ones((4, 8))
            x.attach_grad()
            if nested:
                with ag.record():
                    with (ag.train_mode() if fwd_train else ag.predict_mode()):
                        y = fn(x, w)
            else:
                with ag.record(train_mode=fwd_train):
                    y = fn(x, w)
            y.backward(train_mode=bwd_train)
            g = x.grad.asnumpy()
            if fwd_train:
                ratio = g / w.asnumpy()
                assert set(np.unique(ratio).tolist()) <= {0.0, 2.0}
                assert 0 < (ratio == 0).sum() < ratio.size
                np.testing.assert_allclose(y.asscalar(), g.sum(), rtol=1e-6)
            else:
                np.testing.assert_array_equal(g, w.asnumpy())
                assert y.asscalar() == w.asnumpy().sum()


def _bn(data, gamma, beta, mm, mv, fix_gamma=False, use_global_stats=False):
    return nd.BatchNorm(data, gamma, beta, mm, mv, fix_gamma=fix_gamma, momentum=0.9,
                        use_global_stats=use_global_stats)


# Observed in MXNet 1.9.1 (pip wheel, CPU): the data of ag_batchnorm_modes with moving
# statistics (0.5, 1, 1.5) / (1, 2, 3), head gradient rand(4, 3); key "<forward train>
# <backward train_mode>" as 0/1.  After a predict-mode forward, a training backward uses
# the batch formula over the moving statistics and moves nothing.
_BN_MXNET = {'11': {'y': [[1.57631, -0.17249, -0.69294],
              [1.49358, -1.00745, -0.17409],
              [-0.76505, 0.33324, 3.64857],
              [-1.90484, 0.0467, -1.58155]],
        'data': [[1.18764, 0.24353, -1.53774],
                 [-1.40685, -0.05385, 0.62168],
                 [0.49265, -0.00879, 0.09571],
                 [-0.27343, -0.18089, 0.82034]],
        'gamma': [-0.87686, 1.17382, 0.67155],
        'beta': [2.23249, 2.27731, 2.6628],
        'mm': [0.64147, 1.18223, 1.62412],
        'mv': [0.90802, 1.84867, 2.74413]},
 '10': {'y': [[1.57631, -0.17249, -0.69294],
              [1.49358, -1.00745, -0.17409],
              [-0.76505, 0.33324, 3.64857],
              [-1.90484, 0.0467, -1.58155]],
        'data': [[0.85164, 0.32717, 0.08201],
                 [0.13063, 0.00715, 0.96127],
                 [1.16665, 0.30752, 1.12982],
                 [1.19814, 0.16312, 0.90113]],
        'gamma': [2.90697, 3.51326, 2.16569],
        'beta': [2.23249, 2.27731, 2.6628],
        'mm': [0.5, 1.0, 1.5],
        'mv': [1.0, 2.0, 3.0]},
 '01': {'y': [[2.64161, 0.45771, 1.35182],
              [2.61804, 0.04552, 1.551],
              [1.97459, 0.70738, 3.01846],
              [1.64987, 0.56592, 1.01069]],
        'data': [[-1.8313, -0.28245, -1.01528],
                 [-2.53519, -0.34654, -0.19828],
                 [-1.03178, -0.45711, -0.48836],
                 [-0.76442, -0.51369, -0.08955]],
        'gamma': [2.90697, 3.51326, 2.16569],
        'beta': [2.23249, 2.27731, 2.6628],
        'mm': [0.5, 1.0, 1.5],
        'mv': [1.0, 2.0, 3.0]},
 '00': {'y': [[2.64161, 0.45771, 1.35182],
              [2.61804, 0.04552, 1.551],
              [1.97459, 0.70738, 3.01846],
              [1.64987, 0.56592, 1.01069]],
        'data': [[0.85164, 0.32717, 0.08201],
                 [0.13063, 0.00715, 0.96127],
                 [1.16665, 0.30752, 1.12982],
                 [1.19814, 0.16312, 0.90113]],
        'gamma': [2.90697, 3.51326, 2.16569],
        'beta': [2.23249, 2.27731, 2.6628],
        'mm': [0.5, 1.0, 1.5],
        'mv': [1.0, 2.0, 3.0]},
 'fixgamma11': {'y': [[1.08421, -0.14499, -0.19647],
                      [1.02905, -1.81491, 0.06296],
                      [-0.4767, 0.86649, 1.97428],
                      [-1.23656, 0.29341, -0.64077]],
                'data': [[0.79176, 0.48706, -0.76887],
                         [-0.9379, -0.10769, 0.31084],
                         [0.32843, -0.01759, 0.04786],
                         [-0.18229, -0.36178, 0.41017]],
                'gamma': [0.0, 0.0, 0.0],
                'beta': [2.23249, 2.27731, 2.6628],
                'mm': [0.64147, 1.18223, 1.62412],
                'mv': [0.90802, 1.84867, 2.74413]},
 'ugs11': {'y': [[2.64161, 0.45771, 1.35182],
                 [2.61804, 0.04552, 1.551],
                 [1.97459, 0.70738, 3.01846],
                 [1.64987, 0.56592, 1.01069]],
           'data': [[0.85164, 0.32717, 0.08201],
                    [0.13063, 0.00715, 0.96127],
                    [1.16665, 0.30752, 1.12982],
                    [1.19814, 0.16312, 0.90113]],
           'gamma': [2.90697, 3.51326, 2.16569],
           'beta': [2.23249, 2.27731, 2.6628],
           'mm': [0.5, 1.0, 1.5],
           'mv': [1.0, 2.0, 3.0]}}


def _bn_case(fn, fwd_train, bwd_train, **kw):
    rs = np.random.RandomState(0)
    data = nd.array(rs.rand(4, 3) * 4)
    gamma = nd.array([1.5, 0.5, 2.0])
    beta = nd.array([0.1, -0.2, 0.3])
    mm = nd.array([0.5, 1.0, 1.5])
    mv = nd.array([1.0, 2.0, 3.0])
    for a in (data, gamma, beta):
        a.attach_grad()
    with ag.record(train_mode=fwd_train):
        y = fn(data, gamma, beta, mm, mv, **kw)
    y.backward(nd.array(rs.rand(4, 3)), train_mode=bwd_train)
    return {"y": y, "data": data.grad, "gamma": gamma.grad, "beta": beta.grad, "mm": mm,
            "mv": mv}


@pytest.mark.parametrize("fwd_train,bwd_train", MODES)
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "jit"])
def test_batchnorm_modes_like_mxnet(fwd_train, bwd_train, compiled):
    """BatchNorm's output, gradients and moving statistics for every (forward mode,
    backward train_mode), eager and compiled, equal MXNet 1.9.1's."""
    fn = mx.jit(_bn) if compiled else _bn
    want = _BN_MXNET["%d%d" % (fwd_train, bwd_train)]
    for _ in range(2):
        got = _bn_case(fn, fwd_train, bwd_train)
        for k, v in want.items():
            np.testing.assert_allclose(got[k].asnumpy(), v, rtol=1e-4, atol=2e-5,
                                       err_msg="%s (forward train=%s, backward train=%s)"
                                               % (k, fwd_train, bwd_train))


@pytest.mark.parametrize("case,kw", [("fixgamma11", {"fix_gamma": True}),
                                     ("ugs11", {"use_global_stats": True})])
def test_batchnorm_variants_like_mxnet(case, kw):
    """Eager only: compiled = eager for these attributes is in tests/test_jit.py's registry
    table (BatchNorm's samples)."""
    for fn in (_bn,):
        got = _bn_case(fn, True, True, **kw)
        for k, v in _BN_MXNET[case].items():
            np.testing.assert_allclose(got[k].asnumpy(), v, rtol=1e-4, atol=2e-5,
                                       err_msg="%s %s" % (case, k))


def test_step_mode_in_predict_mode():
    """A graph without mode-dependent ops keeps step mode in record(train_mode=False) and
    with backward(train_mode=False); graphs with Dropout or BatchNorm never use it."""
    def f(x):
        return nd.sum(nd.tanh(x) * 2)
    jf = mx.jit(f)
    xs = np.linspace(-2, 2, 6).astype(np.float32)
    for fwd_train, bwd_train in MODES:
        x = nd.array(xs)
        x.attach_grad()
        with ag.record(train_mode=fwd_train):
            y = jf(x)
        y.backward(train_mode=bwd_train)
        np.testing.assert_allclose(x.grad.asnumpy(), 2 * (1 - np.tanh(xs) ** 2), rtol=1e-5)
    assert "step mode (one forward+backward kernel" in jf.explain()
    jd = mx.jit(_dropout_loss)
    x = nd.ones((2, 2))
    x.attach_grad()
    with ag.record():
        y = jd(x, nd.ones((2, 2)))
    y.backward()
    assert "step mode is off for graphs with Dropout" in jd.explain()


def _mode_dependent_ops():
    from symbol.registry import all_ops
    return [op for op in all_ops() if op.train_dependent]


def test_mode_dependent_ops_are_flagged():
    """Every registered op whose forward or gradient differs between training and
    prediction mode is ``train_dependent`` (what the compiler keys its backward kernels
    and step mode on): each op's samples run in both modes, seeded."""
    from symbol.registry import all_ops
    from agjit.ndarray.ndarray import OpCtx, GRAD_CTX, _wrap
    rs = np.random.RandomState(5)
    found = set()
    for op in all_ops():
        if op.samples is None:
            continue
        for sample in op.samples(rs):
            given = dict(sample.attrs)
            if op.variadic and op.variadic not in given:
                given[op.variadic] = len(sample.inputs)
            parsed = op.parse_attrs(given)
            outs = {}
            for train in (True, False):
                mx.random.seed(11)
                try:
                    outs[train] = op.forward(parsed, [np.array(a, copy=True)
                                                      for a in sample.inputs], OpCtx(train))
                except Exception:
                    outs = None
                    break
            if outs is None:
                continue
            if any(not np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
                   for a, b in zip(outs[True], outs[False])):
                found.add(op.name)
                continue
            if not op.differentiable or op.gradient is None:
                continue
            ins = [_wrap(np.array(a, copy=True)) for a in sample.inputs]
            res = [_wrap(np.asarray(o)) for o in outs[True]]
            og = [_wrap(np.ones_like(np.asarray(o))) for o in outs[True]]
            grads = []
            for key in ((True, True), (False, False)):
                try:
                    gs = op.gradient(nd, parsed, ins, res, og, GRAD_CTX[key])
                except Exception:
                    grads = None
                    break
                grads.append([None if g is None else g.asnumpy() for g in gs])
            if grads and any((a is None) != (b is None) or (a is not None and not
                             np.array_equal(a, b, equal_nan=True))
                             for a, b in zip(*grads)):
                found.add(op.name)
    flagged = {op.name for op in _mode_dependent_ops()}
    assert found <= flagged, "mode-dependent but not train_dependent: %s" % (found - flagged)
    assert {"Dropout", "BatchNorm"} <= found


def _mode_op_fn(op, sample):
    given = dict(sample.attrs)
    nvis = op.num_visible(op.parse_attrs(given))

    def fn(*xs):
        outs = nd.invoke(op, list(xs), dict(given))
        outs = outs if isinstance(outs, list) else [outs]
        ws = [nd.array(np.linspace(0.5, 1.5, o.size).reshape(o.shape)) for o in outs]
        return nd.add_n(*[nd.sum(o * w) for o, w in zip(outs[:nvis], ws)])
    return fn


def _mode_op_case(f, sample, fwd_train, bwd_train):
    xs = [nd.array(a) for a in sample.inputs]
    for a in xs:
        a.attach_grad()
    mx.random.seed(21)
    with ag.record(train_mode=fwd_train):
        y = f(*xs)
    y.backward(train_mode=bwd_train)
    return [y.asnumpy()] + [a.grad.asnumpy() for a in xs] + [a.asnumpy() for a in xs]


@pytest.mark.parametrize("op", _mode_dependent_ops(), ids=lambda op: op.name)
def test_mode_dependent_op_compiled_equals_eager_in_every_mode(op):
    """Every mode-dependent op (its first registry sample), every (forward mode, backward
    mode) in turn, twice, through ONE jitted function: the compiled call equals the eager
    one (same seed, so the same Dropout mask), including the in-place moving statistics,
    and the kernels cached for one mode combination never serve another."""
    sample = op.samples(np.random.RandomState(9))[0]
    fn = _mode_op_fn(op, sample)
    jf = mx.jit(fn)
    for fwd_train, bwd_train in MODES + MODES[::-1]:
        e = _mode_op_case(fn, sample, fwd_train, bwd_train)
        c = _mode_op_case(jf, sample, fwd_train, bwd_train)
        for k, (a, b) in enumerate(zip(e, c)):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6,
                                       err_msg="%s %s item %d (fwd %s, bwd %s)" % (
                                           op.name, sample.attrs, k, fwd_train, bwd_train))


def test_executor_backward_is_train_like_mxnet():
    """Executor.backward(is_train=) picks the backward's mode as in MXNet 1.9.1 (it was
    ignored: always the training backward): same numbers as autograd's train_mode."""
    data = mx.sym.Variable("data")
    ex = mx.sym.BatchNorm(data, fix_gamma=False, momentum=0.9, name="bn").simple_bind(
        mx.cpu(), data=(4, 3))
    rs = np.random.RandomState(0)
    ex.arg_dict["data"][:] = rs.rand(4, 3) * 4
    hg = nd.array(rs.rand(4, 3))
    ex.arg_dict["bn_gamma"][:] = np.array([1.5, 0.5, 2.0])
    ex.arg_dict["bn_beta"][:] = np.array([0.1, -0.2, 0.3])
    for bwd_train in (True, False):
        ex.aux_dict["bn_moving_mean"][:] = np.array([0.5, 1.0, 1.5])
        ex.aux_dict["bn_moving_var"][:] = np.array([1.0, 2.0, 3.0])
        ex.forward(is_train=True)
        ex.backward(hg, is_train=bwd_train)
        want = _BN_MXNET["1%d" % bwd_train]
        for k, name in (("data", "data"), ("gamma", "bn_gamma"), ("beta", "bn_beta")):
            np.testing.assert_allclose(ex.grad_dict[name].asnumpy(), want[k], rtol=1e-4,
                                       atol=2e-5, err_msg=k)
        np.testing.assert_allclose(ex.aux_dict["bn_moving_mean"].asnumpy(), want["mm"],
                                   rtol=1e-4, atol=2e-5)
        np.testing.assert_allclose(ex.aux_dict["bn_moving_var"].asnumpy(), want["mv"],
                                   rtol=1e-4, atol=2e-5)
