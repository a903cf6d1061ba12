"""The user-facing Symbol API (FINDINGS §7): construction, naming, arithmetic, composition,
introspection, inference and export.  MXNet's expected values come from the oracle goldens."""
import copy
import json
import pickle

import numpy as np
import pytest

import agjit as mx
import symbol as S
from symbol.base import MXNetError
from symbol.name import NameManager, Prefix
from symbol.attribute import AttrScope


@pytest.fixture(autouse=True)
def fresh_names():
    """Every test starts with fresh per-hint counters (fullyconnected0 ...)."""
    with NameManager():
        yield


def nodes(sym):
    return json.loads(sym.tojson())["nodes"]


def node(sym, name):
    return next(n for n in nodes(sym) if n["name"] == name)


# -- construction --------------------------------------------------------------------------------
def test_variable_attrs():
    class Init:
        def dumps(self):
            return '["constant", {"value": 0.5}]'
    v = S.Variable("v", shape=(2, 3), dtype="float64", lr_mult=2.0, wd_mult=0.5,
                   init=Init(), attr={"mood": "calm"}, __extra__=7)
    assert node(v, "v")["attrs"] == {"__shape__": "(2, 3)", "__dtype__": "1", "__lr_mult__": "2.0",
                                     "__wd_mult__": "0.5", "__init__": '["constant", {"value": 0.5}]',
                                     "mood": "calm", "__extra__": "7"}
    assert S.var("w", dtype=np.int32).attr("__dtype__") == "4"
    assert S.Variable("s", init="zeros").attr("__init__") == "zeros"
    assert mx.sym.Variable is S.Variable


@pytest.mark.parametrize("bad", [lambda: S.Variable(3), lambda: S.Variable("x", foo=1),
                                 lambda: S.Variable("x", attr={"a": 1})])
def test_variable_errors(bad):
    with pytest.raises((TypeError, ValueError)):
        bad()


def test_op_autonaming_and_auto_arguments():
    data = S.Variable("data")
    fc1 = S.FullyConnected(data, num_hidden=8, name="fc1")
    auto = S.FullyConnected(data, num_hidden=4)
    auto2 = S.FullyConnected(auto, num_hidden=2, no_bias=True)
    act = S.Activation(auto2, act_type="relu")
    assert fc1.list_arguments() == ["data", "fc1_weight", "fc1_bias"]
    assert node(fc1, "fc1_weight")["attrs"] == {"num_hidden": "8"}
    assert (auto.name, auto2.name, act.name) == ("fullyconnected0", "fullyconnected1", "activation0")
    assert auto2.list_arguments() == ["data", "fullyconnected0_weight", "fullyconnected0_bias",
                                      "fullyconnected1_weight"]
    assert act.list_outputs() == ["activation0_output"]


def test_explicit_weight_shared_once_and_keyword_inputs():
    w = S.Variable("shared_w")
    d1 = S.FullyConnected(S.Variable("u"), weight=w, num_hidden=2, no_bias=True, name="d1")
    d2 = S.FullyConnected(data=S.Variable("v"), weight=w, num_hidden=2, no_bias=True, name="d2")
    assert (d1 + d2).list_arguments() == ["u", "shared_w", "v"]


def test_attr_values_are_str_of_given_value():
    x = S.Variable("x")
    c = S.Convolution(x, kernel=(3, 3), num_filter=4, pad=(1, 1), no_bias=True, name="c")
    assert node(c, "c")["attrs"] == {"kernel": "(3, 3)", "num_filter": "4", "pad": "(1, 1)",
                                     "no_bias": "True"}
    assert x.astype(np.float16).attr("dtype") == "float16"


def test_batchnorm_aux_init_and_versions():
    bn = S.BatchNorm(S.Variable("x"), fix_gamma=False, momentum=0.95, name="bn")
    assert bn.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    assert bn.list_arguments() == ["x", "bn_gamma", "bn_beta"]
    assert node(bn, "bn_gamma")["attrs"] == {"fix_gamma": "False", "momentum": "0.95"}
    assert node(bn, "bn_moving_mean")["attrs"]["__init__"] == '["zero", {}]'
    assert node(bn, "bn_moving_var")["attrs"]["__init__"] == '["one", {}]'
    assert [v for _n, _i, v in node(bn, "bn")["inputs"]] == [0, 0, 0, 1, 1]


def test_prefix_and_attrscope():
    x = S.Variable("x")
    with Prefix("blk_"):
        assert S.FullyConnected(x, num_hidden=2).name == "blk_fullyconnected0"
        assert S.exp(x, name="e").name == "blk_e"
    with mx.AttrScope(ctx_group="dev1"):
        w = S.Variable("w")
        fc = S.FullyConnected(w, num_hidden=2, name="fcx")
    assert w.attr("ctx_group") == "dev1"
    assert node(fc, "fcx_weight")["attrs"] == {"__ctx_group__": "dev1", "num_hidden": "2"}
    with mx.AttrScope(group="4"):
        with pytest.raises(MXNetError):
            S.FullyConnected(x, num_hidden=2)
    assert mx.name.Prefix is Prefix and mx.attribute.AttrScope is AttrScope


@pytest.mark.parametrize("bad, exc", [
    (lambda x: S.FullyConnected(x, num_hidden=3, bogus_arg=1), MXNetError),
    (lambda x: S.FullyConnected(x), MXNetError),                      # num_hidden required
    (lambda x: S.exp(3), AssertionError),                             # MXNet asserts Symbol inputs
    (lambda x: S.FullyConnected(x, num_hidden=2, nope=S.Variable("n")), MXNetError),
    (lambda x: S.Group([x, 3]), TypeError),
    (lambda x: S.Group([]), TypeError),
    (lambda x: S.FullyConnected(S.split(x, num_outputs=2), num_hidden=2), MXNetError),
])
def test_construction_errors(bad, exc):
    with pytest.raises(exc):
        bad(S.Variable("x"))


def test_variadic_sets_num_args():
    a, b = S.Variable("a"), S.Variable("b")
    c = S.Concat(a, b, dim=1)
    assert c.name == "concat0"
    assert node(c, "concat0")["attrs"] == {"dim": "1", "num_args": "2"}
    assert S.add_n(a, b, a).list_arguments() == ["a", "b"]


# -- arithmetic ----------------------------------------------------------------------------------
@pytest.mark.parametrize("expr, op, name, scalar", [
    (lambda a, b: a + b, "elemwise_add", "_plus0", None),
    (lambda a, b: a - b, "elemwise_sub", "_minus0", None),
    (lambda a, b: a * b, "elemwise_mul", "_mul0", None),
    (lambda a, b: a / b, "elemwise_div", "_div0", None),
    (lambda a, b: a ** b, "_power", "_power0", None),
    (lambda a, b: S.maximum(a, b), "_maximum", "_maximum0", None),
    (lambda a, b: S.minimum(a, b), "_minimum", "_minimum0", None),
    (lambda a, b: a + 1, "_plus_scalar", "_plusscalar0", "1"),
    (lambda a, b: 1 + a, "_plus_scalar", "_plusscalar0", "1"),
    (lambda a, b: a - 1, "_minus_scalar", "_minusscalar0", "1"),
    (lambda a, b: 2 - a, "_rminus_scalar", "_rminusscalar0", "2"),
    (lambda a, b: a * 2.5, "_mul_scalar", "_mulscalar0", "2.5"),
    (lambda a, b: a / 2, "_div_scalar", "_divscalar0", "2"),
    (lambda a, b: 2 / a, "_rdiv_scalar", "_rdivscalar0", "2"),
    (lambda a, b: a ** 2, "_power_scalar", "_powerscalar0", "2"),
    (lambda a, b: 2 ** a, "_rpower_scalar", "_rpower_scalar0", "2"),
    (lambda a, b: a % 3, "_mod_scalar", "_modscalar0", "3"),
    (lambda a, b: -a, "_mul_scalar", "_mulscalar0", "-1.0"),
    (lambda a, b: S.maximum(a, 1), "_maximum_scalar", "_maximumscalar0", "1"),
    (lambda a, b: S.minimum(1, a), "_minimum_scalar", "_minimumscalar0", "1"),
    (lambda a, b: a > 0, "_greater_scalar", "_greater_scalar0", "0"),
    (lambda a, b: a <= b, "_lesser_equal", "_lesser_equal0", None),
])
def test_operator_naming(expr, op, name, scalar):
    s = expr(S.Variable("a"), S.Variable("b"))
    head = nodes(s)[-1]
    assert (head["op"], head["name"]) == (op, name)
    assert head.get("attrs", {}).get("scalar") == scalar
    assert s.list_outputs() == [name + "_output"]


def test_arithmetic_type_errors_and_bool():
    a = S.Variable("a")
    with pytest.raises(TypeError):
        a + "x"
    with pytest.raises(TypeError):
        "x" - a
    with pytest.raises(MXNetError):
        bool(a)
    assert S.maximum(2, 3) == 3


# -- composition ---------------------------------------------------------------------------------
def test_compose_by_kwargs_returns_copy():
    x = S.Variable("x")
    net1 = S.FullyConnected(x, num_hidden=3, name="enc")
    net2 = S.Activation(S.Variable("h"), act_type="tanh", name="act")
    composed = net2(h=net1)
    assert composed.list_arguments() == ["x", "enc_weight", "enc_bias"]
    assert composed.list_outputs() == ["act_output"]
    assert net2.list_arguments() == ["h"]
    assert composed.infer_shape(x=(2, 5))[1] == [(2, 3)]


@pytest.mark.parametrize("bad, exc", [
    (lambda net, y: net(y), MXNetError),                  # positional on a graph
    (lambda net, y: net(nope=y), MXNetError),
    (lambda net, y: net(h=3), TypeError),
    (lambda net, y: y(y=net), MXNetError),                # a Variable cannot be composed
])
def test_compose_errors(bad, exc):
    net = S.exp(S.Variable("h")) + 1
    with pytest.raises(exc):
        bad(net, S.Variable("y"))


# -- introspection -------------------------------------------------------------------------------
def _mlp():
    data = S.Variable("data")
    fc1 = S.FullyConnected(data, num_hidden=6, name="fc1")
    a1 = S.Activation(fc1, act_type="relu", name="a1")
    fc2 = S.FullyConnected(a1, num_hidden=3, name="fc2")
    return data, fc2, S.softmax(fc2, name="sm")


def test_internals_children_indexing():
    data, fc2, out = _mlp()
    internals = out.get_internals()
    assert internals.list_outputs() == ["data", "fc1_weight", "fc1_bias", "fc1_output",
                                        "a1_output", "fc2_weight", "fc2_bias", "fc2_output",
                                        "sm_output"]
    sub = internals["a1_output"]
    assert sub.list_arguments() == ["data", "fc1_weight", "fc1_bias"]
    assert sub.infer_shape(data=(2, 4))[1] == [(2, 6)]
    assert internals[2].list_outputs() == ["fc1_bias"]
    assert internals[-1].list_outputs() == ["sm_output"]
    assert fc2.get_children().list_outputs() == ["a1_output", "fc2_weight", "fc2_bias"]
    assert data.get_children() is None
    with pytest.raises(IndexError):
        internals[99]
    with pytest.raises(ValueError):
        internals["nope"]
    with pytest.raises(TypeError):
        internals[1.5]


def test_group_len_iter_repr():
    data, fc2, out = _mlp()
    g = S.Group([out, fc2, data])
    assert len(g) == 3 and g.name is None
    assert [s.name for s in g] == ["sm", "fc2", "data"]
    assert repr(g) == "<Symbol group [sm, fc2, data]>" and repr(out) == "<Symbol sm>"
    assert g[1:].list_outputs() == ["fc2_output", "data"]
    sp = S.split(data, num_outputs=3, axis=1)
    assert len(sp) == 3 and sp.name == "split0"
    assert sp.list_outputs() == ["split0_output0", "split0_output1", "split0_output2"]


def test_attr_list_attr_attr_dict():
    v = S.Variable("v", lr_mult=2.0, attr={"mood": "calm"})
    assert v.attr("lr_mult") == "2.0" and v.attr("__lr_mult__") == "2.0"
    assert v.attr("mood") == "calm" and v.attr("nope") is None
    assert v.list_attr() == {"__lr_mult__": "2.0", "lr_mult": "2.0", "mood": "calm"}
    f2 = S.FullyConnected(v, num_hidden=3, name="f2", attr={"__mirror_stage__": "True"})
    d = f2.attr_dict()
    assert d["f2_weight"] == {"__mirror_stage__": "True", "mirror_stage": "True", "num_hidden": "3"}
    assert set(d) == {"v", "f2", "f2_weight", "f2_bias"}
    assert S.Group([v, f2]).attr("mood") is None
    with pytest.raises(DeprecationWarning):
        v.list_attr(recursive=True)


def test_debug_str_copy_pickle():
    _d, _f, out = _mlp()
    text = out.debug_str()
    assert "Op:FullyConnected, Name=fc1" in text and "\targ[1]=fc1_weight(0) version=0" in text
    assert S.Variable("q").debug_str() == "Variable:q\n"
    for c in (copy.copy(out), copy.deepcopy(out), pickle.loads(pickle.dumps(out))):
        assert c.tojson() == out.tojson()


def test_fluent_methods():
    x = S.Variable("x")
    assert x.reshape((2, -1)).name == "reshape0"
    assert x.sum(axis=1).list_outputs() == ["sum0_output"]
    assert abs(x).name == "abs0"


# -- inference -----------------------------------------------------------------------------------
def test_infer_shape_mlp_and_positional():
    data = S.Variable("data")
    h = S.FullyConnected(data, num_hidden=16, name="fc1")
    out = S.SoftmaxOutput(S.FullyConnected(h, num_hidden=10, name="fc2"), name="softmax")
    arg, outs, aux = out.infer_shape(data=(32, 784))
    assert arg == [(32, 784), (16, 784), (16,), (10, 16), (10,), (32,)]
    assert outs == [(32, 10)] and aux == []
    assert out.infer_shape((8, 20))[0][0] == (8, 20)


def test_infer_shape_conv_bn_aux():
    data = S.Variable("data")
    c = S.Convolution(data, kernel=(3, 3), num_filter=4, pad=(1, 1), name="conv1")
    b = S.BatchNorm(c, name="bn1")
    p = S.Pooling(S.Activation(b, act_type="relu"), kernel=(2, 2), stride=(2, 2), pool_type="avg")
    o = S.FullyConnected(S.Flatten(p), num_hidden=5, name="fc")
    arg, outs, aux = o.infer_shape(data=(2, 3, 8, 8))
    assert arg[1] == (4, 3, 3, 3) and arg[-2] == (5, 64)
    assert outs == [(2, 5)] and aux == [(4,), (4,)]


def test_infer_partial_and_unknown():
    a, b = S.Variable("a"), S.Variable("b")
    s = S.FullyConnected(a, num_hidden=3, name="fc") + b
    with pytest.warns(UserWarning, match="Cannot decide shape"):
        assert s.infer_shape() == (None, None, None)
    assert s.infer_shape_partial() == ([(), (), (), ()], [()], [])
    assert s.infer_shape_partial(a=(4, 7)) == ([(4, 7), (3, 7), (3,), (4, 3)], [(4, 3)], [])


def test_variable_attrs_seed_inference():
    v = S.Variable("v", shape=(2, 3), dtype="float64")
    assert v.infer_shape() == ([(2, 3)], [(2, 3)], [])
    assert v.infer_type() == ([np.float64], [np.float64], [])
    e = S.exp(v)
    assert e.infer_shape(v=(5, 3))[1] == [(5, 3)]           # the argument wins over the hint


def test_infer_type():
    a, b = S.Variable("a"), S.Variable("b")
    s = S.FullyConnected(a, num_hidden=3, name="fc") + b
    arg, out, aux = s.infer_type(a="float32")
    assert arg == [np.float32] * 4 and out == [np.float32] and aux == []
    assert s.infer_type(a=np.float64, b="float64")[1] == [np.float64]
    with pytest.warns(UserWarning):
        assert s.infer_type() == (None, None, None)
    assert s.infer_type_partial()[1] == [None]
    with pytest.raises(MXNetError):
        s.infer_type(a="float32", b="float64")


def test_infer_errors_name_node_op_and_shapes():
    d, w = S.Variable("d"), S.Variable("w")
    fc = S.FullyConnected(d, w, num_hidden=3, no_bias=True, name="myfc")
    with pytest.raises(MXNetError) as ei:
        fc.infer_shape(d=(2, 4), w=(3, 5))
    msg = str(ei.value)
    assert "myfc" in msg and "FullyConnected" in msg and "(3,5)" in msg
    with pytest.raises(MXNetError, match="cannot find argument"):
        fc.infer_shape(nope=(1, 2))
    with pytest.raises(MXNetError):
        fc.infer_shape((2, 4), (3, 4), (1,))              # more positional than arguments
    with pytest.raises(TypeError):
        fc.infer_shape(d=[2, 4])                          # MXNet wants tuples
    with pytest.raises(ValueError):
        fc.infer_shape((2, 4), w=(3, 4))
    with pytest.raises(MXNetError, match="elemwise_add|_plus"):
        (S.Variable("p") + S.Variable("q")).infer_shape(p=(2, 3), q=(2, 1))


def test_autograd_symbol_inference():
    x = mx.nd.ones((2, 3))
    w = mx.nd.ones((4, 3))
    x.attach_grad()
    w.attach_grad()
    with mx.autograd.record():
        y = mx.nd.relu(mx.nd.dot(x, w, transpose_b=True)) + 1
    s = mx.autograd.get_symbol(y)
    a0, a1 = s.list_arguments()
    assert s.infer_shape(**{a0: (5, 3), a1: (7, 3)})[1] == [(5, 7)]


# -- save / load / export ------------------------------------------------------------------------
def test_save_load_roundtrip(tmp_path):
    _d, _f, out = _mlp()
    f = tmp_path / "net-symbol.json"
    out.save(str(f))
    assert f.read_text() == out.tojson()
    assert S.load(str(f)).tojson() == out.tojson()
    assert S.load_json(out.tojson()).list_arguments() == out.list_arguments()
    assert [p.name for p in tmp_path.iterdir()] == ["net-symbol.json"]   # no temp file left
    with pytest.raises(TypeError):
        S.load_json(123)
    with pytest.raises(TypeError):
        out.save(42)


def test_to_networkx_and_dot():
    data = S.Variable("data")
    bn = S.BatchNorm(S.FullyConnected(data, num_hidden=4, name="fc"), name="bn")
    sq = bn * bn
    g = sq.to_networkx(shapes={"data": (2, 3)}, dtypes={"data": "float32"})
    assert g.nodes["fc"]["op"] == "FullyConnected" and g.nodes["fc"]["shape"] == [(2, 4)]
    assert g.nodes["fc_weight"]["shape"] == (4, 3) and g.nodes["fc_weight"]["kind"] == "variable"
    assert g.nodes["bn_moving_mean"]["kind"] == "aux"
    assert g.nodes["bn"]["dtype"] == ["float32"]
    assert g.edges["bn", "_mul0"]["slots"] == [(0, 0, 0), (0, 1, 0)]
    assert g.edges["bn_moving_var", "bn"]["slots"] == [(0, 4, 1)]
    assert g.graph["heads"] == [("_mul0", 0)]
    assert "shape" not in sq.to_networkx().nodes["fc"]             # unknown without shapes
    dot = sq.to_dot(shapes={"data": (2, 3)})
    assert dot.startswith("digraph") and '"fc" -> "bn" [label="(2, 4)"];' in dot
    assert dot.count('"bn" -> "_mul0"') == 2


def test_summary_table():
    _d, _f, out = _mlp()
    text = out.summary({"data": (2, 4)})
    assert "fc1" in text and "(2, 6)" in text
    assert text.splitlines()[-1] == "Total params: %d" % (6 * 4 + 6 + 3 * 6 + 3)


def test_draw_needs_matplotlib_or_draws():
    try:
        import matplotlib
        matplotlib.use("Agg")
    except ImportError:
        with pytest.raises(ImportError, match="matplotlib"):
            S.Variable("x").draw()
        return
    _d, _f, out = _mlp()
    import matplotlib.pyplot as plt
    ax = out.draw(shapes={"data": (2, 4)})
    assert [t.get_text().split("\n")[0] for t in ax.texts].count("fc1") == 1
    plt.close(ax.figure)


def test_set_attr_in_place_and_deepcopy_isolation():
    w = S.Variable("w")
    fc = S.FullyConnected(S.Variable("x"), weight=w, num_hidden=2, name="fc")
    deep = copy.deepcopy(fc)
    w._set_attr(lr_mult="3")                  # MXNet: every graph sharing the node sees it
    assert fc.attr_dict()["w"] == {"__lr_mult__": "3", "lr_mult": "3"}
    assert "w" not in deep.attr_dict()
    with pytest.raises(ValueError):
        w._set_attr(mood=1)


def test_compose_refuses_op_output_for_mutated_input():
    bn = S.BatchNorm(S.Variable("x"), name="bn")
    with pytest.raises(MXNetError):
        bn(bn_moving_mean=S.exp(S.Variable("q")))
    composed = bn(bn_moving_mean=S.Variable("q"))
    assert composed.list_auxiliary_states() == ["q", "bn_moving_var"]


def test_missing_names_speak_mxnet_namespaces():
    import agjit as mx
    with pytest.raises(AttributeError, match=r"mx\.sym has no attribute 'FullyConected'; did you mean mx\.sym\.FullyConnected\?"):
        mx.sym.FullyConected
    with pytest.raises(AttributeError, match=r"^mx\.nd has no attribute 'no_such_op_xyz'$"):
        mx.nd.no_such_op_xyz
    with pytest.raises(AttributeError, match=r"^mx has no attribute"):
        mx.no_such_module_xyz
