"""symbol.infer.infer_graph, the one inference engine: tables keyed by entries (node,
output index), both directions, the callers' dicts left alone, the same answers as the
JIT's forward pass where everything is known, and MXNet's errors on inconsistency."""
import numpy as np
import pytest

import agjit as mx
from symbol import infer


def _mlp():
    x = mx.sym.Variable("x")
    h = mx.sym.Activation(mx.sym.FullyConnected(x, num_hidden=8, name="f1"), act_type="relu")
    return mx.sym.SoftmaxOutput(mx.sym.FullyConnected(h, num_hidden=3, name="f2"), name="sm")


def _vars(sym):
    order = sym._topo()
    return order, {n.name: n for n in order if n.op is None}


def test_forward_tables_keyed_by_entries_and_inputs_not_changed():
    sym = _mlp()
    order, v = _vars(sym)
    seed_s = {(v["x"], 0): (5, 4)}
    seed_t = {(v["x"], 0): np.float64}
    shapes, dtypes = infer.infer_graph(order, seed_s, seed_t)
    assert seed_s == {(v["x"], 0): (5, 4)} and seed_t == {(v["x"], 0): np.float64}
    assert shapes[(v["f1_weight"], 0)] == (8, 4) and shapes[(v["f2_bias"], 0)] == (3,)
    assert shapes[(v["sm_label"], 0)] == (5,)        # the label from the data
    head = sym._outputs[0]
    assert shapes[head] == (5, 3) and dtypes[head] == "float64"
    assert all(t == "float64" for (n, i), t in dtypes.items() if n.op is None)


def test_backward_from_an_output_entry():
    a = mx.sym.Variable("a")
    sym = mx.sym.FullyConnected(mx.sym.sin(a), num_hidden=4, name="fc")
    order, v = _vars(sym)
    head = sym._outputs[0]
    # only the output's batch and the data's feature size given
    shapes, _ = infer.infer_graph(order, {head: (6, 4), (v["a"], 0): (0, 3)}, want=("shape",))
    assert shapes[(v["a"], 0)] == (6, 3)
    assert shapes[(v["fc_weight"], 0)] == (4, 3)


def test_inconsistent_values_raise_mxnet_error_naming_the_op():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    sym = a + b
    order, v = _vars(sym)
    with pytest.raises(mx.MXNetError, match="elemwise_add|_plus|_Plus|add"):
        infer.infer_graph(order, {(v["a"], 0): (2, 3), (v["b"], 0): (3, 2)})
    with pytest.raises(mx.MXNetError):
        infer.infer_graph(order, dtypes={(v["a"], 0): "float16", (v["b"], 0): "float64"})


def _forward_only(order, shapes, dtypes):
    """Reference: one plain forward sweep of every op's own rules (what the JIT and the
    executors ran before they used the engine)."""
    import numpy as np
    for n in order:
        if n.op is None:
            continue
        ins = [shapes.get((s, i)) for (s, i, _v) in n.inputs]
        tys = [dtypes.get((s, i)) for (s, i, _v) in n.inputs]
        _, outs = n.op.infer_shape(n.parsed, ins)
        _, otys = n.op.infer_type(n.parsed, tys)
        for i, s in enumerate(outs):
            shapes[(n, i)] = tuple(s)
            dtypes[(n, i)] = np.dtype(otys[i] if i < len(otys) else otys[0]).name


def test_same_answers_as_a_plain_forward_pass_and_the_jit_uses_it():
    from agjit.compiler import shapes as jit_shapes
    x = mx.sym.Variable("x")
    c = mx.sym.Convolution(x, num_filter=4, kernel=(3, 3), pad=(1, 1), name="c")
    p = mx.sym.Pooling(mx.sym.BatchNorm(c, name="bn"), kernel=(2, 2), stride=(2, 2), pool_type="max")
    sym = mx.sym.FullyConnected(mx.sym.Flatten(p), num_hidden=5, name="fc")
    arg_shapes, _, aux_shapes = sym.infer_shape(x=(2, 3, 8, 8))
    order, v = _vars(sym)
    names = sym.list_arguments() + sym.list_auxiliary_states()
    known_s = {(v[n], 0): s for n, s in zip(names, arg_shapes + aux_shapes)}
    known_t = {(v[n], 0): "float32" for n in names}
    shapes, dtypes = infer.infer_graph(order, known_s, known_t)
    ref_s, ref_t = dict(known_s), dict(known_t)
    _forward_only(order, ref_s, ref_t)
    assert shapes == ref_s and dtypes == ref_t
    jit_s, jit_t = dict(known_s), dict(known_t)
    jit_shapes.infer_graph(order, jit_s, jit_t)      # the JIT's pass is the engine's
    assert jit_s == ref_s and jit_t == ref_t


def test_np_shape_scope_switches_the_conventions():
    net = mx.sym.sin(mx.sym.Variable("x"))
    assert net.infer_shape_partial() == ([()], [()], [])
    with mx.np_shape(True):
        assert mx.is_np_shape()
        assert net.infer_shape_partial() == ([None], [None], [])
        assert net.infer_shape_partial(x=(-1, 3)) == ([(-1, 3)], [(-1, 3)], [])
    assert not mx.is_np_shape()
    assert mx.util.set_np_shape(False) is False
