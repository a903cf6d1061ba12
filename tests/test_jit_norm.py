"""The normalisation / NN ops inside ``mx.jit``: compiled == eager for every registry sample
of the ops lowered by symbol/ops/nn_norm.py, nn_dense.py (Embedding), nn_softmax.py,
nn_extra.py, legacy.py, loss_heads.py, detection.py and math_extra.py, their gradients,
BatchNorm's moving statistics after a jitted training step, Dropout's mask drawn inside the
kernel (the same numbers as eager for the same ``mx.random.seed``), and a small
Embedding + LayerNorm + Dropout + softmax cross-entropy step with no eager segment.

Compiles are shared: ONE jitted function applies every sample (forward kernel, training
forward and backward kernels built once per module by fixtures); the whole run shares one
kernel cache directory (tests/conftest.py).
"""
import numpy as np
import pytest

import agjit as mx
from symbol.registry import get_op

# The samples of the lowered ops, by table.  tests/test_jit.py's registry table already runs
# the first sample of every op (forward and gradients, float64; Dropout excepted), so the
# forward table here runs the samples that take other paths through the lowerings (other
# axes, modes, ranks, label shapes) and every Dropout sample, in both modes; the gradient
# table the samples whose backward graphs take other paths (BatchNorm's axes and modes,
# Dropout's axes, grouped norms, LayerNorm on axis 1, L2Normalization by channel/spatial,
# softmax on axis 0).
# The elementwise templates (erf, erfinv, cbrt, rcbrt, smooth_l1, MakeLoss...) have one
# path: their first sample is the test.
FWD_SAMPLES = {"BatchNorm": (1, 2, 3, 4), "_backward_BatchNorm": (1, 2, 3), "LayerNorm": (1,),
               "InstanceNorm": (1,), "GroupNorm": (1, 2), "L2Normalization": (1, 2, 3),
               "Dropout": (0, 1, 2), "Embedding": (1,), "softmax": (1, 3), "log_softmax": (1, 3),
               "softmin": (1,), "SoftmaxActivation": (1,), "LinearRegressionOutput": (1,),
               "LogisticRegressionOutput": (1,), "MAERegressionOutput": (1,),
               "_regression_output_grad": (1,), "smooth_l1": (1,)}
GRAD_SAMPLES = {"BatchNorm": (1, 2, 3, 4), "Dropout": (1,), "GroupNorm": (1,), "LayerNorm": (1,),
                "L2Normalization": (2,), "softmax": (1,)}


def _table(which):
    rs = np.random.RandomState(5)
    out = []
    for name, ks in which.items():
        op = get_op(name)
        assert op.lowering is not None, name
        samples = op.samples(rs)
        for k in ks:
            out.append(("%s-%d" % (name, k), op, samples[k]))
    return out


class _Table:
    """One table of samples: the function applying them all, and where each sample's inputs
    and visible outputs are in the flat argument / result tuples."""

    def __init__(self, which):
        self.rows = _table(which)
        self.ids = [r[0] for r in self.rows]
        nvis = [op.num_visible(op.parse_attrs(dict(s.attrs))) for _i, op, s in self.rows]
        self.out_at = np.concatenate([[0], np.cumsum(nvis)]).astype(int)
        self.in_at = np.concatenate([[0], np.cumsum([len(s.inputs) for _i, _o, s in
                                                     self.rows])]).astype(int)

    def apply(self, *arrays):
        outs = []
        k = 0
        for _id, op, s in self.rows:
            n = len(s.inputs)
            r = mx.nd.invoke(op, list(arrays[k:k + n]), dict(s.attrs))
            k += n
            outs.extend(r if isinstance(r, list) else [r])
        return tuple(outs)

    def inputs(self):
        return [mx.nd.array(a, dtype="float64") for _i, _o, s in self.rows for a in s.inputs]


FWD, BWD = _Table(FWD_SAMPLES), _Table(GRAD_SAMPLES)


@pytest.fixture(scope="module")
def forward_runs():
    """Eager and compiled outputs, predict mode then training mode (Dropout draws from the
    same seed in both; the two traces share one kernel: the mode is a run-time argument)."""
    fn = mx.jit(FWD.apply)
    res = {}
    for train in (False, True):
        runs = []
        for f in (FWD.apply, fn):
            mx.random.seed(21)
            with (mx.autograd.train_mode() if train else mx.autograd.predict_mode()):
                runs.append([o.asnumpy() for o in f(*FWD.inputs())])
        res[train] = runs
    return res, fn.explain()


@pytest.fixture(scope="module")
def backward_runs():
    """Gradients of every real-valued input, inputs after the step (BatchNorm's moving
    statistics move in its backward), eager and compiled, from the same head gradients and
    the same seed."""
    fn = mx.jit(BWD.apply)
    diff = [op.differentiable and not np.all(np.asarray(a) == np.round(a))
            for _i, op, s in BWD.rows for a in s.inputs]
    runs = []
    keep = None
    for f in (BWD.apply, fn):
        rs = np.random.RandomState(9)
        ins = BWD.inputs()
        for a, d in zip(ins, diff):
            if d:
                a.attach_grad()
        with mx.autograd.record():
            mx.random.seed(33)
            outs = f(*ins)
        if keep is None:        # eager: the outputs that depend on a gradient input
            keep = [o._entry is not None for o in outs]
        heads = [mx.nd.array(rs.uniform(-1, 1, o.shape), dtype=o.dtype) for o in outs]
        mx.autograd.backward([o for o, k in zip(outs, keep) if k],
                             head_grads=[h for h, k in zip(heads, keep) if k])
        runs.append(([a.grad.asnumpy() if d else None for a, d in zip(ins, diff)],
                     [a.asnumpy() for a in ins], [o.asnumpy() for o in outs]))
    return runs, fn.explain()


@pytest.mark.parametrize("k", range(len(FWD.rows)), ids=FWD.ids)
@pytest.mark.parametrize("train", [False, True], ids=["predict", "train"])
def test_compiled_forward_equals_eager(forward_runs, k, train):
    runs, _ex = forward_runs
    eager, comp = runs[train]
    for i in range(FWD.out_at[k], FWD.out_at[k + 1]):
        np.testing.assert_allclose(comp[i], eager[i], rtol=1e-7, atol=1e-10,
                                   err_msg="%s output %d" % (FWD.ids[k], i - FWD.out_at[k]))


@pytest.mark.parametrize("k", range(len(BWD.rows)), ids=BWD.ids)
def test_compiled_gradients_and_aux_states_equal_eager(backward_runs, k):
    (g_e, in_e, out_e), (g_c, in_c, out_c) = backward_runs[0]
    for j in range(BWD.in_at[k], BWD.in_at[k + 1]):
        # BatchNorm's moving statistics (updated in place by its backward) and every input
        np.testing.assert_allclose(in_c[j], in_e[j], rtol=1e-7, atol=1e-12,
                                   err_msg="%s input %d after the step" % (BWD.ids[k],
                                                                          j - BWD.in_at[k]))
        if g_e[j] is not None:
            np.testing.assert_allclose(g_c[j], g_e[j], rtol=1e-6, atol=1e-9,
                                       err_msg="%s gradient %d" % (BWD.ids[k], j - BWD.in_at[k]))
    for i in range(BWD.out_at[k], BWD.out_at[k + 1]):
        np.testing.assert_allclose(out_c[i], out_e[i], rtol=1e-7, atol=1e-10)


def test_no_eager_segment_in_the_tables(forward_runs, backward_runs):
    """Every op of the tables, and of the gradient table's backward graph, is compiled."""
    for ex in (forward_runs[1], backward_runs[1]):
        assert "no eager segments" in ex, ex


def test_batchnorm_moving_statistics_move_as_eager():
    """Training steps move the moving statistics in the backward exactly as eager (the
    momentum update of the batch's biased variance); predict-mode forwards read them."""
    rs = np.random.RandomState(2)
    x = rs.randn(6, 3, 4, 4).astype(np.float32) * 2 + 1

    def step(x, g, b, mm, mv):
        y = mx.nd.BatchNorm(x, g, b, mm, mv, fix_gamma=False, momentum=0.8)
        return mx.nd.sum(mx.nd.relu(y) * y)

    jstep = mx.jit(step)
    g0, b0 = rs.rand(3) + 0.5, rs.randn(3)
    states = []
    for fn in (step, jstep):
        g = mx.nd.array(g0)
        b = mx.nd.array(b0)
        mm, mv = mx.nd.zeros(3), mx.nd.ones(3)
        xs = mx.nd.array(x)
        g.attach_grad()
        xs.attach_grad()
        for _ in range(2):
            with mx.autograd.record():
                loss = fn(xs, g, b, mm, mv)
            loss.backward()
        pred = fn(xs, g, b, mm, mv)
        states.append([a.asnumpy() for a in (mm, mv, xs.grad, g.grad, loss, pred)])
    np.testing.assert_allclose(states[0][0], x.mean(axis=(0, 2, 3)) * (1 - 0.8 ** 2), rtol=1e-5)
    for e, c, what in zip(states[0], states[1], ["moving_mean", "moving_var", "x.grad",
                                                  "gamma.grad", "loss", "predict"]):
        np.testing.assert_allclose(c, e, rtol=2e-5, atol=1e-5, err_msg=what)
    assert "no eager segments" in jstep.explain()


def test_dropout_mask_is_the_eager_mask_for_the_same_seed():
    x = mx.nd.array(np.linspace(-1, 1, 2 * 5 * 6).reshape(2, 5, 6).astype(np.float32))
    for attrs in ({"p": 0.4}, {"p": 0.5, "axes": (1,)}, {"p": 0.25, "axes": (0, 2)},
                  {"p": 1.0}):
        f = mx.jit(lambda x: mx.nd.Dropout(x, **attrs) * 1)
        got = []
        for fn in (lambda x: mx.nd.Dropout(x, **attrs) * 1, f):
            mx.random.seed(7)
            with mx.autograd.train_mode():
                a = fn(x).asnumpy()
                b = fn(x).asnumpy()        # the stream moves on: a second, different mask
            got.append((a, b))
        (ea, eb), (ca, cb) = got
        np.testing.assert_array_equal(ca, ea, err_msg=str(attrs))
        np.testing.assert_array_equal(cb, eb, err_msg=str(attrs))
        if attrs["p"] < 1.0:
            assert not np.array_equal(ca, cb)
        assert "no eager segments" in f.explain()
    # predict mode: identity, and nothing is drawn
    mx.random.seed(7)
    first = np.random.default_rng(7).random()
    assert np.array_equal(f(x).asnumpy(), x.asnumpy())
    assert mx.random.generator().random() == first
    # mode='always' draws in predict mode too
    g = mx.jit(lambda x: mx.nd.Dropout(x, p=0.5, mode="always"))
    mx.random.seed(3)
    e = mx.nd.Dropout(x, p=0.5, mode="always").asnumpy()
    mx.random.seed(3)
    np.testing.assert_array_equal(g(x).asnumpy(), e)


def _lm_step(tokens, labels, emb_w, gamma, beta, fc_w, fc_b):
    """An Embedding + LayerNorm + Dropout + dense + softmax cross-entropy step (the
    Transformer/LSTM language-model pattern)."""
    h = mx.nd.Embedding(tokens, emb_w, input_dim=emb_w.shape[0], output_dim=emb_w.shape[1])
    h = mx.nd.LayerNorm(h, gamma, beta)
    h = mx.nd.Dropout(h, p=0.2)
    h = mx.nd.Reshape(h, shape=(-1, emb_w.shape[1]))
    logits = mx.nd.FullyConnected(h, fc_w, fc_b, num_hidden=fc_w.shape[0])
    return mx.nd.softmax_cross_entropy(logits, labels) / labels.shape[0]


def test_language_model_step_has_no_eager_segment_and_matches_eager():
    rs = np.random.RandomState(4)
    V, D, B, T = 11, 8, 3, 5
    tokens = mx.nd.array(rs.randint(0, V, (B, T)).astype(np.float32))
    labels = mx.nd.array(rs.randint(0, V, (B * T,)).astype(np.float32))
    init = [rs.randn(V, D) * 0.5, rs.rand(D) + 0.5, rs.randn(D) * 0.1, rs.randn(V, D) * 0.3,
            rs.randn(V) * 0.1]
    jstep = mx.jit(_lm_step)
    res = []
    for fn in (_lm_step, jstep):
        params = [mx.nd.array(a.astype(np.float32)) for a in init]
        for p in params:
            p.attach_grad()
        mx.random.seed(5)
        losses = []
        for _ in range(2):
            with mx.autograd.record():
                loss = fn(tokens, labels, *params)
            loss.backward()
            losses.append(float(loss.asscalar()))
            for p in params:
                p[:] = p - 0.5 * p.grad
        res.append((losses, [p.asnumpy() for p in params]))
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-5)
    for c, e in zip(res[1][1], res[0][1]):
        np.testing.assert_allclose(c, e, rtol=1e-4, atol=1e-6)
    ex = jstep.explain()
    assert "no eager segments" in ex and "eager" not in ex.replace("no eager segments", ""), ex
