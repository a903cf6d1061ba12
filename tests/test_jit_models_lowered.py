"""Every op of the model-zoo, RNN/LSTM language-model and Transformer-encoder graphs has a
lowering: what a hybridized block compiles (its forward, its training forward and its
backward, as :class:`agjit.compiler.program.CompiledGraph` lowers them) schedules with no
eager step -- checked on the lowered source only, with no Numba compile, for every
``gluon.model_zoo.vision`` constructor at its ImageNet input size (float32), gluon.rnn
LSTM / GRU / RNN layers (layers, directions, layouts, dropout) and unrolled cells, an
Embedding + LSTM + Dense language model with float32 and int32 tokens, and a Transformer
encoder block.

The ops lowered for these graphs -- the fused RNN op and its backward (agjit.compiler.
kernels_rnn), _rnn_param_concat, the N-D gradients of dot (FullyConnected with
flatten=False) and Embedding with integer indices -- run compiled against eager for every
registry sample in one shared jitted function (training forward with dropout drawn, and
backward), and a hybridized LSTM language model's training step equals eager with no eager
segment in explain().
"""
import numpy as np
import pytest

import agjit as mx
from agjit.compiler.program import CompiledGraph
from agjit.gluon import nn, rnn, HybridBlock
from agjit.gluon.model_zoo import vision
from symbol.graph import topo_order
from symbol.registry import get_op


class _Lowered:
    def __init__(self, low):
        self.lowered = low


class _LowerOnly:
    """KernelStats stand-in: keeps each kernel's lowering, loads (compiles) nothing."""

    def load(self, low, kind, key):
        return _Lowered(low)


_AUX = ("running_mean", "running_var", "moving_mean", "moving_var")


def _eager_steps(block, shape, dtypes=None, train=True):
    """The eager steps of the kernels a hybridized call of ``block`` on data of ``shape``
    would compile: forward, and with ``train`` the training forward and the backward for
    gradients of every parameter (float32; ``dtypes`` overrides by variable name)."""
    block.initialize()
    inputs, out = block._get_graph(mx.nd.zeros((1,)))
    data = inputs[0].name
    arg_shapes, _, aux_shapes = out.infer_shape(**{data: shape})
    names = out.list_arguments() + out.list_auxiliary_states()
    known = dict(zip(names, list(arg_shapes) + list(aux_shapes)))
    order = topo_order(out._outputs)
    var_nodes = [n for n in order if n.op is None]
    shapes = {(n, 0): tuple(known[n.name]) for n in var_nodes}
    types = {(n, 0): (dtypes or {}).get(n.name, "float32") for n in var_nodes}
    cg = CompiledGraph(_LowerOnly(), out._outputs, var_nodes, shapes, types)
    notes = list(cg.forward_kernel().lowered.eager_notes)
    if train:
        mask = [n.name != data and not n.name.endswith(_AUX) for n in var_nodes]
        fwd, _saved, bwd, _h, _hooks = cg.train_kernels(mask, True)
        notes += fwd.lowered.eager_notes + ["backward: " + x for x in bwd.lowered.eager_notes]
    return sorted(set(notes))


# the deepest members of each family add no op of their own: they are checked when the
# run includes slow tests
_DEEP = {"resnet101_v1", "resnet152_v1", "resnet101_v2", "resnet152_v2", "vgg16", "vgg19",
         "vgg16_bn", "vgg19_bn", "densenet161", "densenet169", "densenet201"}
_ZOO = ["resnet18_v1", "resnet34_v1", "resnet50_v1", "resnet101_v1", "resnet152_v1",
        "resnet18_v2", "resnet34_v2", "resnet50_v2", "resnet101_v2", "resnet152_v2",
        "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
        "alexnet", "densenet121", "densenet161", "densenet169", "densenet201",
        "squeezenet1.0", "squeezenet1.1", "inceptionv3",
        "mobilenet1.0", "mobilenet0.75", "mobilenet0.5", "mobilenet0.25",
        "mobilenetv2_1.0", "mobilenetv2_0.75", "mobilenetv2_0.5", "mobilenetv2_0.25"]


def test_the_list_is_get_models_table():
    from agjit.gluon.model_zoo.vision import _models
    assert sorted(_ZOO) == sorted(_models)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in _DEEP else n
                                  for n in _ZOO])
def test_model_zoo_graph_has_no_eager_step(name):
    side = 299 if name == "inceptionv3" else 224
    notes = _eager_steps(vision.get_model(name), (1, 3, side, side))
    assert notes == [], notes


_RNN_LAYERS = {
    "lstm-2-layers": lambda: (rnn.LSTM(8, num_layers=2, input_size=4), (5, 2, 4)),
    "lstm-bidirectional-NTC": lambda: (rnn.LSTM(6, bidirectional=True, layout="NTC",
                                                input_size=4), (2, 5, 4)),
    "lstm-dropout": lambda: (rnn.LSTM(6, num_layers=3, dropout=0.4, input_size=4), (3, 2, 4)),
    "gru-bidirectional-2-layers": lambda: (rnn.GRU(5, num_layers=2, bidirectional=True,
                                                   input_size=4), (3, 2, 4)),
    "rnn-relu": lambda: (rnn.RNN(8, activation="relu", input_size=4), (5, 2, 4)),
    "rnn-tanh": lambda: (rnn.RNN(8, input_size=4), (5, 2, 4)),
}


@pytest.mark.parametrize("name", sorted(_RNN_LAYERS))
def test_gluon_rnn_layer_graph_has_no_eager_step(name):
    layer, shape = _RNN_LAYERS[name]()
    assert _eager_steps(layer, shape) == []


class _Unroll(HybridBlock):
    def __init__(self, cell, steps, **kw):
        super().__init__(**kw)
        self.steps = steps
        with self.name_scope():
            self.cell = cell

    def hybrid_forward(self, F, x):
        return self.cell.unroll(self.steps, x, layout="TNC", merge_outputs=True)[0]


def _stack():
    s = rnn.HybridSequentialRNNCell()
    s.add(rnn.LSTMCell(6, input_size=4))
    s.add(rnn.DropoutCell(0.3))
    s.add(rnn.LSTMCell(6, input_size=6))
    return s


_CELLS = {"lstm": lambda: rnn.LSTMCell(6, input_size=4),
          "gru": lambda: rnn.GRUCell(6, input_size=4),
          "rnn": lambda: rnn.RNNCell(6, input_size=4),
          "stack-with-dropout": _stack,
          "bidirectional": lambda: rnn.BidirectionalCell(rnn.LSTMCell(3, input_size=4),
                                                         rnn.GRUCell(3, input_size=4)),
          "residual-zoneout": lambda: rnn.ResidualCell(rnn.ZoneoutCell(
              rnn.GRUCell(4, input_size=4), 0.2, 0.1))}


@pytest.mark.parametrize("name", sorted(_CELLS))
def test_unrolled_gluon_rnn_cell_graph_has_no_eager_step(name):
    assert _eager_steps(_Unroll(_CELLS[name](), 3), (3, 2, 4)) == []


class _LM(HybridBlock):
    def __init__(self, vocab=20, d=8, **kw):
        super().__init__(**kw)
        with self.name_scope():
            self.emb = nn.Embedding(vocab, d)
            self.rnn = rnn.LSTM(d, num_layers=2, dropout=0.3, input_size=d)
            self.out = nn.Dense(vocab, flatten=False, in_units=d)

    def hybrid_forward(self, F, x):
        return self.out(self.rnn(self.emb(x)))


class _Encoder(HybridBlock):
    """Post-norm Transformer encoder block: fused QKV projection, heads split by reshapes,
    scaled batch_dot attention with dropout, position-wise feed-forward."""

    def __init__(self, d=8, heads=2, **kw):
        super().__init__(**kw)
        self.h = heads
        with self.name_scope():
            self.qkv = nn.Dense(3 * d, flatten=False, in_units=d)
            self.proj = nn.Dense(d, flatten=False, in_units=d)
            self.ln1 = nn.LayerNorm(in_channels=d)
            self.ln2 = nn.LayerNorm(in_channels=d)
            self.ff1 = nn.Dense(4 * d, flatten=False, in_units=d, activation="relu")
            self.ff2 = nn.Dense(d, flatten=False, in_units=4 * d)
            self.drop = nn.Dropout(0.1)

    def hybrid_forward(self, F, x):
        q, k, v = F.split(self.qkv(x), num_outputs=3, axis=-1)

        def heads(t):
            t = F.transpose(F.reshape(t, shape=(0, 0, self.h, -1)), axes=(0, 2, 1, 3))
            return F.reshape(t, shape=(-3, 0, 0))
        q, k, v = heads(q), heads(k), heads(v)
        att = F.softmax(F.batch_dot(q, k, transpose_b=True) / 2.0, axis=-1)
        o = F.reshape(F.batch_dot(self.drop(att), v), shape=(-4, -1, self.h, 0, 0))
        o = F.reshape(F.transpose(o, axes=(0, 2, 1, 3)), shape=(0, 0, -1))
        x = self.ln1(x + self.drop(self.proj(o)))
        return self.ln2(x + self.drop(self.ff2(self.ff1(x))))


@pytest.mark.parametrize("tokens", ["float32", "int32"])
def test_lstm_language_model_graph_has_no_eager_step(tokens):
    assert _eager_steps(_LM(), (5, 2), dtypes={"data": tokens}) == []


def test_transformer_encoder_block_graph_has_no_eager_step():
    assert _eager_steps(_Encoder(), (2, 5, 8)) == []


# ------------------------------------------- the ops lowered for these graphs, compiled ---
_OPS = ["RNN", "_backward_RNN", "_rnn_param_concat", "dot", "_backward_dot_lhs",
        "_backward_dot_rhs", "Embedding", "_backward_Embedding", "_linalg_gemm", "_linalg_gemm2",
        "topk", "sort", "argsort", "_topk_scatter", "LeakyReLU", "_prelu_bcast", "_prelu_reduce",
        "batch_dot", "_contrib_div_sqrt_dim", "Pad", "_backward_Pad", "UpSampling",
        "_backward_UpSampling_nearest", "_upsampling_nearest_place"]


def _lowered_here(op, sample):
    """RNN's projection and state clipping run eagerly (rnn.py note *rnn-lowering*), as
    dot's 1-D operands and bilinear UpSampling."""
    a = sample.attrs
    if op.name in ("RNN", "_backward_RNN"):
        return not (a.get("projection_size") or a.get("lstm_state_clip_min") is not None)
    if op.name.startswith(("dot", "_backward_dot")):
        return min(np.ndim(x) for x in sample.inputs) >= 2
    if op.name == "UpSampling":
        return a.get("sample_type") == "nearest"
    return True


def _table():
    rs = np.random.RandomState(11)
    return [(op, k, s) for op in map(get_op, _OPS) for k, s in enumerate(op.samples(rs))]


TABLE = _table()
_IDS = ["%s-%d" % (op.name, k) for op, k, _s in TABLE]


def test_every_sample_of_these_ops_that_should_lower_lowers():
    import sys
    import os
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from test_jit_shape import _sample_graph
    from agjit.compiler import lower
    for op, k, s in TABLE:
        low = lower.lower_graph(*_sample_graph(op, s))
        assert (not low.eager_notes) == _lowered_here(op, s), (op.name, k, low.eager_notes)


def _as_array(a):
    a = np.asarray(a)
    return mx.nd.array(a, dtype="float64" if a.dtype.kind == "f" else a.dtype)


def _apply_all(*arrays):
    outs, j = [], 0
    for op, _k, s in TABLE:
        n = len(s.inputs)
        r = mx.nd.invoke(op, list(arrays[j:j + n]), dict(s.attrs))
        j += n
        outs.extend(r if isinstance(r, (list, tuple)) else [r])
    return tuple(outs)


def _differentiable(op, a):
    return op.differentiable and np.asarray(a).dtype.kind == "f"


@pytest.fixture(scope="module")
def runs():
    """Eager and compiled training runs of the table (the same seed: RNN's dropout masks
    are drawn in the kernel from mx.random like eager), outputs and input gradients."""
    jf = mx.jit(_apply_all)
    rs = np.random.RandomState(5)

    def run(fn):
        ins = [_as_array(a) for _op, _k, s in TABLE for a in s.inputs]
        diff = [_differentiable(op, a) for op, _k, s in TABLE for a in s.inputs]
        for a, d in zip(ins, diff):
            if d:
                a.attach_grad()
        mx.random.seed(42)
        with mx.autograd.record():
            outs = fn(*ins)
        heads = [mx.nd.array(rs.uniform(-1, 1, o.shape), dtype=o.dtype) for o in outs]
        keep = [o._entry is not None for o in outs]
        mx.autograd.backward([o for o, k in zip(outs, keep) if k],
                             head_grads=[h for h, k in zip(heads, keep) if k])
        return [o.asnumpy() for o in outs], [a.grad.asnumpy() if d else None
                                             for a, d in zip(ins, diff)]

    state = rs.get_state()
    eager = run(_apply_all)
    rs.set_state(state)
    comp = run(jf)
    rs.set_state(state)
    comp = run(jf)              # the compiled replay
    return eager, comp, jf.explain()


def test_table_outputs_and_gradients_equal_eager(runs):
    (eo, eg), (co, cg), _text = runs
    assert len(eo) == len(co)
    for k, (e, c) in enumerate(zip(eo, co)):
        np.testing.assert_allclose(c, e, rtol=1e-10, atol=1e-12, err_msg="output %d" % k)
    for k, (e, c) in enumerate(zip(eg, cg)):
        if e is not None:
            np.testing.assert_allclose(c, e, rtol=1e-10, atol=1e-12, err_msg="gradient %d" % k)


def test_table_runs_eagerly_only_what_is_not_lowered(runs):
    text = runs[2]
    eager = [ln for ln in text.splitlines() if "runs eagerly" in ln]
    # RNN's projection sample, dot's 1-D samples (and their backward), bilinear UpSampling
    ok = ("(RNN)", "(_backward_RNN)", "(dot)", "(_backward_dot_lhs)", "(_backward_dot_rhs)",
          "(UpSampling)")
    assert all(any(o in ln for o in ok) for ln in eager), "\n".join(eager)
    n_expected = sum(not _lowered_here(op, s) for op, _k, s in TABLE)
    assert len(eager) >= n_expected


def test_compiled_rnn_gradient_matches_finite_differences():
    """A 2-layer bidirectional LSTM with state outputs: the compiled backward (one rnn_bwd
    call) against central differences of the compiled forward."""
    rs = np.random.RandomState(3)
    T, N, C, H = 3, 2, 3, 2
    attrs = {"state_size": H, "num_layers": 2, "mode": "lstm", "bidirectional": True,
             "state_outputs": True}
    from symbol.ops.rnn import rnn_param_size, _ATTRS
    parsed = {k: attrs.get(k, a.default) for k, a in _ATTRS.items()}
    x = rs.uniform(-1, 1, (T, N, C))
    w = rs.uniform(-0.8, 0.8, rnn_param_size(parsed, C))
    h0 = rs.uniform(-0.5, 0.5, (4, N, H))
    c0 = rs.uniform(-0.5, 0.5, (4, N, H))
    wy = mx.nd.array(rs.standard_normal((T, N, 2 * H)), dtype="float64")
    wh = mx.nd.array(rs.standard_normal((4, N, H)), dtype="float64")

    def loss(x, w, h0, c0):
        y, hy, cy = mx.nd.RNN(x, w, h0, c0, **attrs)
        return mx.nd.sum(y * wy) + mx.nd.sum((hy + cy) * wh)

    f = mx.jit(loss)
    args = [mx.nd.array(a, dtype="float64") for a in (x, w, h0, c0)]
    for a in args:
        a.attach_grad()
    for _ in range(2):
        with mx.autograd.record():
            val = f(*args)
        val.backward()
    assert "every op of the last traced graph is compiled" in f.explain(), f.explain()
    eps = 1e-6
    for k, a in enumerate((x, w, h0, c0)):
        num = np.zeros(a.size)
        for i in range(a.size):
            up, dn = a.copy().reshape(-1), a.copy().reshape(-1)
            up[i] += eps
            dn[i] -= eps
            vals = []
            for v in (up, dn):
                ins = [mx.nd.array(b, dtype="float64") for b in (x, w, h0, c0)]
                ins[k] = mx.nd.array(v.reshape(a.shape), dtype="float64")
                vals.append(float(f(*ins).asnumpy().reshape(())))
            num[i] = (vals[0] - vals[1]) / (2 * eps)
        np.testing.assert_allclose(args[k].grad.asnumpy().reshape(-1), num, rtol=1e-6,
                                   atol=1e-8, err_msg="input %d" % k)


def test_hybridized_lstm_language_model_step_equals_eager_without_eager_segments():
    rs = np.random.RandomState(0)
    tokens = mx.nd.array(rs.randint(0, 20, (5, 3)), dtype="int32")
    labels = mx.nd.array(rs.randint(0, 20, (5, 3)).astype(np.float32))
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()

    def step(net):
        with mx.autograd.record():
            loss = loss_fn(net(tokens), labels)
        loss.backward()
        return [loss.asnumpy()] + [p.grad().asnumpy()
                                   for p in net.collect_params().values()]

    nets = []
    for hybrid in (False, True):
        mx.random.seed(7)
        net = _LM(prefix="lm_")
        net.initialize(mx.init.Uniform(0.3))
        if hybrid:
            net.hybridize()
        nets.append(net)
    want = None
    for _ in range(2):              # the trace, then the compiled replay
        mx.random.seed(1)
        want = step(nets[0])
        mx.random.seed(1)
        got = step(nets[1])
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
    text = nets[1]._jit.explain()
    assert "runs eagerly" not in text and "every op of the last traced graph is compiled" in text, text


def test_compiled_topk_sort_argsort_keep_eager_ties_and_nan_order():
    """Ties keep the lower index first in both directions and NaN sorts last in both, as
    the eager kernel's stable argsort; every ret_typ, axis=None, index dtypes."""
    nan = np.nan
    data = np.array([[1.0, nan, 1.0, 3.0, -0.0, 0.0],
                     [2.0, 2.0, nan, nan, 2.0, -1.0],
                     [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    cases = [("topk", dict(k=3, ret_typ="both")), ("topk", dict(k=4, ret_typ="both", is_ascend=True)),
             ("topk", dict(k=2, ret_typ="mask")), ("topk", dict(k=0, ret_typ="indices", dtype="int32")),
             ("topk", dict(k=2, axis=0, ret_typ="value")), ("topk", dict(k=5, axis=None, ret_typ="both")),
             ("sort", dict()), ("sort", dict(is_ascend=False, axis=None)), ("argsort", dict()),
             ("argsort", dict(is_ascend=False, axis=0, dtype="int64"))]

    def f(x):
        outs = []
        for name, kw in cases:
            r = getattr(mx.nd, name)(x, **kw)
            outs.extend(r if isinstance(r, (list, tuple)) else [r])
        return tuple(outs)
    jf = mx.jit(f)
    x = mx.nd.array(data, dtype="float64")
    want = f(x)
    for _ in range(2):
        got = jf(x)
    assert "runs eagerly" not in jf.explain(), jf.explain()
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype and g.shape == w.shape, k
        np.testing.assert_array_equal(g.asnumpy(), w.asnumpy(), err_msg="output %d" % k)


def test_compiled_3d_max_pooling_routes_ties_nan_inf_and_padding_as_eager():
    """3-D max pooling (agjit.compiler.kernels_nn3d): forward starting from the lowest
    finite value with NaN propagated, gradient to the FIRST maximum of each window in
    row-major window order (NaN skipped, padding -inf), whole-input windows by argmax,
    avg/sum with and without count_include_pad -- compiled equals eager exactly enough."""
    rs = np.random.RandomState(9)
    x = np.round(rs.uniform(-2, 2, (2, 2, 3, 4, 4)))        # many ties
    x[0, 0, 1, 1, 1] = np.nan
    x[0, 1, :2, :2, :2] = -np.inf
    x[1, 0, 0, 0, 0] = np.nan
    cases = [dict(kernel=(2, 2, 2), pool_type="max", stride=(1, 2, 2), pad=(1, 1, 0)),
             dict(kernel=(3, 4, 4), pool_type="max"),
             dict(kernel=(1, 1, 1), pool_type="max", global_pool=True),
             dict(kernel=(2, 3, 2), pool_type="avg", stride=(2, 2, 1), pad=(1, 1, 1),
                  count_include_pad=False, pooling_convention="full"),
             dict(kernel=(2, 2, 2), pool_type="avg", pad=(1, 0, 1)),
             dict(kernel=(2, 2, 3), pool_type="sum", stride=(1, 1, 2))]

    def f(x):
        return tuple(mx.nd.Pooling(x, **kw) for kw in cases)

    def run(fn):
        a = mx.nd.array(x, dtype="float64")
        a.attach_grad()
        with mx.autograd.record():
            outs = fn(a)
        heads = [mx.nd.array(np.arange(o.size).reshape(o.shape) + 1.0, dtype="float64")
                 for o in outs]
        mx.autograd.backward(list(outs), head_grads=heads)
        return [o.asnumpy() for o in outs] + [a.grad.asnumpy()]
    jf = mx.jit(f)
    want = run(f)
    for _ in range(2):
        got = run(jf)
    assert "runs eagerly" not in jf.explain(), jf.explain()
    for k, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg="output %d" % k)
