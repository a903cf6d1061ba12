"""Graph JSON: exact text goldens, round trips, MXNet 0.8-1.9 legacy layouts, every refusal of
``load_json`` (MXNetError naming the node and field, TypeError for a non-str) and a
hypothesis fuzz over random documents and mutations of valid graphs."""
import copy
import json
import logging
import os
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

import agjit as mx  # noqa: F401  (the runtime registers everything the executor needs)
from symbol.base import MXNetError
from symbol.graph import Node
from symbol.json_io import load_json, load
from symbol.registry import get_op
from symbol.symbol import Symbol

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")


def golden(name):
    with open(os.path.join(GOLDEN, name), encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------------------------------------
# graphs built directly on the IR (independent of the Symbol front end)
# ---------------------------------------------------------------------------------------------
def g_elemwise_sum():
    x, y = Node(None, "x"), Node(None, "y")
    m = Node(get_op("elemwise_mul"), "m", {}, [(x, 0, 0), (y, 0, 0)])
    p = Node(get_op("_plus_scalar"), "p", {"scalar": "3"}, [(m, 0, 0)])
    s = Node(get_op("sum"), "s", {"axis": "1", "keepdims": "True"}, [(p, 0, 0)])
    return Symbol([(s, 0)])


def g_batchnorm_dropout_split():
    d = Node(None, "data")
    g = Node(None, "bn_gamma", {"fix_gamma": "False"})
    b = Node(None, "bn_beta", {"fix_gamma": "False"})
    mm = Node(None, "bn_moving_mean", {"__init__": '["zero", {}]', "fix_gamma": "False"})
    mv = Node(None, "bn_moving_var", {"__init__": '["one", {}]', "fix_gamma": "False"})
    bn = Node(get_op("BatchNorm"), "bn", {"fix_gamma": "False"},
              [(d, 0, 0), (g, 0, 0), (b, 0, 0), (mm, 0, 1), (mv, 0, 1)])
    dr = Node(get_op("Dropout"), "drop", {"p": "0.5"}, [(bn, 0, 0)])
    sp = Node(get_op("SliceChannel"), "sp", {"num_outputs": "3", "axis": "1"}, [(dr, 0, 0)])
    return Symbol([(sp, 2), (sp, 0)])


def g_long_chain():
    n = Node(None, "a")
    for k in range(11):
        n = Node(get_op("sin"), "sin%d" % k, {}, [(n, 0, 0)])
    return Symbol([(n, 0)])


GRAPHS = {
    "json_io_elemwise_sum.json": g_elemwise_sum,
    "json_io_batchnorm_dropout_split.json": g_batchnorm_dropout_split,
    "json_io_long_chain.json": g_long_chain,
}


@pytest.mark.parametrize("fname", sorted(GRAPHS))
def test_golden_text(fname):
    """tojson writes exactly MXNet 1.9.1's text (indentation, ', ' separators, wrapping of
    arrays longer than 10, sorted attr keys, node_row_ptr counting hidden outputs)."""
    assert GRAPHS[fname]().tojson() == golden(fname)


@pytest.mark.parametrize("fname", sorted(GRAPHS))
def test_golden_round_trip(fname):
    text = golden(fname)
    sym = load_json(text)
    assert sym.tojson() == text
    assert load_json(sym.tojson()).tojson() == text


def test_loaded_structure_batchnorm():
    sym = load_json(golden("json_io_batchnorm_dropout_split.json"))
    assert sym.list_arguments() == ["data", "bn_gamma", "bn_beta"]
    assert sym.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    assert sym.list_outputs() == ["sp_output2", "sp_output0"]
    bn = sym._outputs[0][0].inputs[0][0].inputs[0][0]
    assert bn.name == "bn" and [e[2] for e in bn.inputs] == [0, 0, 0, 1, 1]   # versions kept
    assert bn.inputs[3][0].attrs["__init__"] == '["zero", {}]'


def test_save_load_file(tmp_path):
    sym = g_elemwise_sum()
    fn = str(tmp_path / "net-symbol.json")
    sym.save(fn)
    with open(fn) as f:
        assert f.read() == sym.tojson()
    assert load(fn).tojson() == sym.tojson()


def test_load_missing_file_names_it(tmp_path):
    fn = str(tmp_path / "nope.json")
    with pytest.raises(MXNetError, match="nope.json"):
        load(fn)
    with pytest.raises(TypeError):
        load(123)


def test_frontend_round_trip():
    """The oracle's sym_json_roundtrip: FullyConnected + Activation through the Symbol API."""
    data = mx.sym.Variable("data")
    net = mx.sym.FullyConnected(data, num_hidden=3, name="fc")
    net = mx.sym.Activation(net, act_type="tanh", name="t")
    j = net.tojson()
    back = load_json(j)
    assert back.tojson() == j
    assert back.list_arguments() == ["data", "fc_weight", "fc_bias"]
    assert back.list_outputs() == ["t_output"]


HAND = """{
  "nodes": [
    {"op": "null", "name": "x", "inputs": []},
    {"op": "null", "name": "y", "inputs": []},
    {"op": "elemwise_mul", "name": "m", "inputs": [[0, 0, 0], [1, 0, 0]]},
    {"op": "_plus_scalar", "name": "p", "attrs": {"scalar": "3"}, "inputs": [[2, 0, 0]]},
    {"op": "sum", "name": "s", "attrs": {"axis": "1", "keepdims": "True"}, "inputs": [[3, 0, 0]]}
  ],
  "arg_nodes": [0, 1],
  "node_row_ptr": [0, 1, 2, 3, 4, 5],
  "heads": [[4, 0, 0]],
  "attrs": {"mxnet_version": ["int", 10901]}
}"""


def test_hand_written_loads_and_reformats():
    sym = load_json(HAND)
    assert sym.list_arguments() == ["x", "y"]
    assert sym.list_outputs() == ["s_output"]
    assert sym.tojson() == golden("json_io_elemwise_sum.json")


# ---------------------------------------------------------------------------------------------
# legacy layouts (MXNet 0.8 - 1.8)
# ---------------------------------------------------------------------------------------------
def doc(nodes, heads, version=10901, **extra):
    d = {"nodes": nodes, "arg_nodes": [i for i, n in enumerate(nodes)
                                       if isinstance(n, dict) and n.get("op") == "null"],
         "heads": heads}
    if version is not None:
        d["attrs"] = {"mxnet_version": ["int", version]}
    d.update(extra)
    return json.dumps(d)


def var(name, **kw):
    n = {"op": "null", "name": name, "inputs": []}
    n.update(kw)
    return n


def test_legacy_param_attr_two_entry_inputs_no_row_ptr(caplog):
    text = doc([var("x"), {"op": "_plus_scalar", "name": "p", "param": {"scalar": "2"},
                           "attr": {"ctx_group": "dev1"}, "inputs": [[0, 0]],
                           "control_deps": []}],
               [[1, 0]], version=None)
    with caplog.at_level(logging.INFO, logger="symbol.json_io"):
        sym = load_json(text)
    assert "v0.8.0" in caplog.text and "upgrade" in caplog.text
    node = sym._outputs[0][0]
    # param merged into attrs; a bare hidden key becomes __ctx_group__ (MXNet's FixParsing)
    assert node.attrs == {"scalar": "2", "__ctx_group__": "dev1"}
    assert node.inputs[0][2] == 0
    assert '"node_row_ptr": [0, 1, 2]' in sym.tojson()


def test_legacy_arg_lr_mult_moves_to_variable():
    text = doc([var("x"), var("w"), var("b"),
                {"op": "FullyConnected", "name": "fc",
                 "param": {"num_hidden": "2"}, "attr": {"weight_lr_mult": "0.5"},
                 "inputs": [[0, 0], [1, 0], [2, 0]]}], [[3, 0]], version=800)
    sym = load_json(text)
    fc = sym._outputs[0][0]
    assert fc.attrs == {"num_hidden": "2"}
    assert fc.inputs[1][0].attrs == {"__lr_mult__": "0.5"}


def test_legacy_080_adds_missing_aux_inputs():
    """Before 0.9.0 aux states were not stored: MXNet adds <node>_<input> variables."""
    text = doc([var("data"), var("g"), var("b"),
                {"op": "BatchNorm", "name": "bn", "param": {"eps": "0.001"},
                 "inputs": [[0, 0], [1, 0], [2, 0]]}], [[3, 0]], version=None)
    sym = load_json(text)
    assert sym.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    mm = sym._outputs[0][0].inputs[3][0]
    assert mm.attrs["__init__"] == '["zero", {}]' and mm.attrs["eps"] == "0.001"


def test_legacy_unmovable_hidden_suffix_is_kept():
    """``data_lr_mult`` names no variable input: MXNet keeps the key and still loads."""
    text = doc([var("x"), {"op": "exp", "name": "e", "attr": {"bogus_lr_mult": "2"},
                           "inputs": [[0, 0]]}], [[1, 0]], version=10400)
    sym = load_json(text)
    assert sym._outputs[0][0].attrs == {"bogus_lr_mult": "2"}
    out = sym.eval(x=mx.nd.array([0.0]))[0]
    assert out.asnumpy().tolist() == [1.0]
    # a current document keeps it too (exp has no parameter struct; MXNet 1.9.1 loads it)
    assert load_json(text.replace('"int", 10400', '"int", 10901')).list_attr() == {
        "bogus_lr_mult": "2"}
    with pytest.raises(MXNetError, match="bogus"):     # an op with attributes refuses it
        load_json(text.replace('"int", 10400', '"int", 10901').replace(
            '"op": "exp"', '"op": "_plus_scalar"').replace(
            '"bogus_lr_mult": "2"', '"bogus_lr_mult": "2", "scalar": "1"'))


def test_legacy_argmax_axis_minus_one_dropped():
    text = doc([var("x"), {"op": "argmax", "name": "a", "attrs": {"axis": "-1"},
                           "inputs": [[0, 0, 0]]}], [[1, 0, 0]], version=904)
    assert load_json(text)._outputs[0][0].attrs == {}


def test_older_1x_version_loads_and_is_rewritten_as_10901():
    text = doc([var("x"), {"op": "exp", "name": "e", "inputs": [[0, 0, 0]]}], [[1, 0, 0]],
               version=10600)
    sym = load_json(text)
    assert '"mxnet_version": ["int", 10901]' in sym.tojson()


def test_control_deps_ignored_and_user_attrs_kept():
    text = doc([var("x", attrs={"mood": "happy", "__lr_mult__": "2.0"}),
                {"op": "exp", "name": "e", "inputs": [[0, 0, 0]], "control_deps": [0]}],
               [[1, 0, 0]])
    sym = load_json(text)
    assert sym._outputs[0][0].inputs[0][0].attrs == {"mood": "happy", "__lr_mult__": "2.0"}


def test_unreachable_nodes_are_dropped():
    text = doc([var("x"), var("unused"), {"op": "exp", "name": "e", "inputs": [[0, 0, 0]]}],
               [[2, 0, 0]])
    assert load_json(text).list_arguments() == ["x"]


# ---------------------------------------------------------------------------------------------
# refusals
# ---------------------------------------------------------------------------------------------
def good_nodes():
    return [var("x"), var("y"), {"op": "elemwise_add", "name": "s", "inputs": [[0, 0, 0], [1, 0, 0]]}]


BAD = {
    "garbage": ("this is not json", None),
    "truncated": ('{"nodes": [', None),
    "bad_array": ('{"nodes": [}', None),
    "empty_text": ("", None),
    "nan": ('{"nodes": NaN}', None),
    "top_not_object": ("[1, 2]", "object"),
    "empty_object": ("{}", "missing field"),
    "missing_keys": ('{"foo": 1}', "foo"),
    "missing_heads": (json.dumps({"nodes": [], "arg_nodes": []}), "heads"),
    "missing_nodes": (json.dumps({"heads": [], "arg_nodes": []}), "nodes"),
    "nodes_not_list": (json.dumps({"nodes": {}, "arg_nodes": [], "heads": []}), "nodes"),
    "empty_heads": (doc([var("x")], []), "heads"),
    "node_not_object": (doc([3], [[0, 0, 0]]), "node 0"),
    "node_missing_op": (doc([{"name": "x", "inputs": []}], [[0, 0, 0]]), "node 0.*'op'"),
    "node_unknown_key": (doc([var("x", shape=[1])], [[0, 0, 0]]), "node 0.*shape"),
    "name_not_str": (doc([{"op": "null", "name": 5, "inputs": []}], [[0, 0, 0]]), "name"),
    "op_not_str": (doc([{"op": None, "name": "x", "inputs": []}], [[0, 0, 0]]), "op"),
    "unknown_op": (doc([var("a"), {"op": "no_such_op_xyz", "name": "b", "inputs": [[0, 0, 0]]}],
                       [[1, 0, 0]]), "Failed loading Op no_such_op_xyz"),
    "unknown_attr": (doc([var("a"), {"op": "_plus_scalar", "name": "p",
                                     "attrs": {"scalar": "1", "bogus": "1"},
                                     "inputs": [[0, 0, 0]]}], [[1, 0, 0]]), "node 1.*bogus"),
    "ill_typed_attr": (doc([var("a"), {"op": "_plus_scalar", "name": "p",
                                       "attrs": {"scalar": "(1, 2"}, "inputs": [[0, 0, 0]]}],
                           [[1, 0, 0]]), "node 1.*scalar"),
    "attr_not_string": (doc([var("a"), {"op": "_plus_scalar", "name": "p",
                                        "attrs": {"scalar": 2}, "inputs": [[0, 0, 0]]}],
                            [[1, 0, 0]]), "node 1.*scalar"),
    "var_attr_not_string": (doc([var("a", attrs={"k": [1]})], [[0, 0, 0]]), "node 0"),
    "missing_required_attr": (doc([var("a"), {"op": "FullyConnected", "name": "fc",
                                              "inputs": [[0, 0, 0], [0, 0, 0], [0, 0, 0]]}],
                                  [[1, 0, 0]]), "num_hidden"),
    "head_out_of_range": (doc([var("a")], [[5, 0, 0]]), "heads"),
    "head_output_out_of_range": (doc([var("a")], [[0, 1, 0]]), "heads"),
    "head_not_entry": (doc([var("a")], [0]), "heads"),
    "input_out_of_range": (doc([var("a"), {"op": "exp", "name": "e", "inputs": [[7, 0, 0]]}],
                               [[1, 0, 0]]), "node 1.*input 0"),
    "input_output_index": (doc([var("a"), {"op": "exp", "name": "e", "inputs": [[0, 1, 0]]}],
                               [[1, 0, 0]]), "node 1.*output 1"),
    "self_cycle": (doc([var("a"), {"op": "exp", "name": "e", "inputs": [[1, 0, 0]]}],
                       [[1, 0, 0]]), "node 1"),
    "forward_reference": (doc([{"op": "exp", "name": "e", "inputs": [[1, 0, 0]]}, var("a")],
                              [[0, 0, 0]]), "node 0"),
    "negative_index": (doc([var("a"), {"op": "exp", "name": "e", "inputs": [[-1, 0, 0]]}],
                           [[1, 0, 0]]), "node 1"),
    "bool_index": (doc([var("a"), {"op": "exp", "name": "e", "inputs": [[True, 0, 0]]}],
                       [[1, 0, 0]]), "node 1"),
    "negative_version": (doc([var("a"), {"op": "exp", "name": "e", "inputs": [[0, 0, -1]]}],
                             [[1, 0, 0]]), "node 1"),
    "entry_too_long": (doc([var("a"), {"op": "exp", "name": "e", "inputs": [[0, 0, 0, 0]]}],
                           [[1, 0, 0]]), "node 1"),
    "variable_with_inputs": (doc([var("a"), {"op": "null", "name": "b", "inputs": [[0, 0, 0]]}],
                                 [[1, 0, 0]]), "node 1"),
    "duplicate_variable": (doc([var("a"), var("a"), {"op": "elemwise_add", "name": "s",
                                                     "inputs": [[0, 0, 0], [1, 0, 0]]}],
                               [[2, 0, 0]]), "duplicate"),
    "too_few_inputs": (doc([var("a"), {"op": "elemwise_add", "name": "s",
                                       "inputs": [[0, 0, 0]]}], [[1, 0, 0]]), "expects 2 inputs"),
    "too_many_inputs": (doc([var("a"), {"op": "exp", "name": "e",
                                        "inputs": [[0, 0, 0], [0, 0, 0]]}], [[1, 0, 0]]), "node 1"),
    "num_args_mismatch": (doc([var("a"), {"op": "add_n", "name": "s", "attrs": {"num_args": "1000000000"},
                                          "inputs": [[0, 0, 0]]}], [[1, 0, 0]]), "num_args"),
    "version_bad": (json.dumps({"nodes": [var("a")], "arg_nodes": [0], "heads": [[0, 0, 0]],
                                "attrs": {"mxnet_version": ["str", "1.9"]}}), "mxnet_version"),
    "graph_attrs_not_object": (json.dumps({"nodes": [var("a")], "arg_nodes": [0],
                                           "heads": [[0, 0, 0]], "attrs": []}), "attrs"),
    "arg_nodes_not_var": (json.dumps({"nodes": good_nodes(), "arg_nodes": [2],
                                      "heads": [[2, 0, 0]]}), "arg_nodes"),
    "row_ptr_not_ints": (json.dumps({"nodes": [var("a")], "arg_nodes": [0], "node_row_ptr": "x",
                                     "heads": [[0, 0, 0]]}), "node_row_ptr"),
    "unknown_top_key": (json.dumps({"nodes": [var("a")], "arg_nodes": [0], "heads": [[0, 0, 0]],
                                    "extra": 1}), "extra"),
    "subgraphs": (doc([var("a", subgraphs=[{}])], [[0, 0, 0]]), "subgraphs"),
    "attr_key_unwritable": (doc([var("a", attrs={'say "hi"': "1"})], [[0, 0, 0]]), "node 0.*key"),
    "deep_nesting": ("[" * 100000 + "]" * 100000, None),
}


def test_parameterless_op_keeps_an_extra_attr_through_json():
    """MXNet 1.9.1 registers no parameter struct for exp/relu/...: its load_json takes
    ``{"op": "exp", "attrs": {"bogus": "1"}}``, keeps the key (list_attr) and evaluates; an op
    with a struct refuses one ("Cannot find argument 'bogus'", the refusal case above).
    A symbol written by a call with an extra keyword must load again."""
    text = doc([var("a"), {"op": "exp", "name": "e", "attrs": {"bogus": "1"},
                           "inputs": [[0, 0, 0]]}], [[1, 0, 0]])
    s = load_json(text)
    assert s.list_attr() == {"bogus": "1"}
    x = np.array([0.0, 1.0], dtype=np.float32)
    np.testing.assert_allclose(s.eval(a=mx.nd.array(x))[0].asnumpy(), np.exp(x), rtol=1e-6)
    r = mx.sym.relu(mx.sym.var("x"), foo=1)
    assert json.loads(r.tojson())["nodes"][1]["attrs"] == {"foo": "1"}
    again = load_json(r.tojson())
    assert again.tojson() == r.tojson()
    np.testing.assert_array_equal(again.eval(x=mx.nd.array([-1.0, 2.0]))[0].asnumpy(), [0, 2])
    with pytest.raises(MXNetError, match="Activation.*foo"):
        mx.sym.Activation(mx.sym.var("x"), act_type="relu", foo=1)


@pytest.mark.parametrize("case", sorted(BAD))
def test_refusals(case):
    text, pattern = BAD[case]
    with pytest.raises(MXNetError) as info:
        load_json(text)
    if pattern:
        import re
        assert re.search(pattern, str(info.value)), str(info.value)


@pytest.mark.parametrize("value", [123, None, b'{"nodes": []}', ["x"], 1.5])
def test_non_string_is_type_error(value):
    with pytest.raises(TypeError):
        load_json(value)


def test_attr_strings_are_never_evaluated():
    evil = "__import__('os').system('echo pwned')"
    text = doc([var("a"), {"op": "_plus_scalar", "name": "p", "attrs": {"scalar": evil},
                           "inputs": [[0, 0, 0]]}], [[1, 0, 0]])
    with pytest.raises(MXNetError, match="scalar"):
        load_json(text)


def test_valid_docs_still_load():
    sym = load_json(doc(good_nodes(), [[2, 0, 0]]))
    assert sym.list_arguments() == ["x", "y"] and sym.list_outputs() == ["s_output"]


# ---------------------------------------------------------------------------------------------
# fuzz: load_json raises only MXNetError / TypeError, and never hangs
# ---------------------------------------------------------------------------------------------
def check_load(text):
    # the CPU time of this thread, not the wall clock: on a loaded machine (the suite's two
    # workers beside other jobs) one load measured 3.0 s of wall time (a FlakyFailure
    # that did not reproduce); a load that loops still burns its 2 s here
    t0 = time.thread_time()
    try:
        sym = load_json(text)
    except (MXNetError, TypeError):
        sym = None
    assert time.thread_time() - t0 < 2.0
    if sym is not None:             # whatever loads is a valid graph that round-trips
        j = sym.tojson()
        assert load_json(j).tojson() == j


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20))
json_values = st.recursive(json_scalars,
                           lambda kids: st.one_of(st.lists(kids, max_size=5),
                                                  st.dictionaries(st.text(max_size=8), kids, max_size=5)),
                           max_leaves=10)

# 400 + 300 + 700 + 600 = 2,000 generated documents in all
FUZZ = settings(max_examples=700, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(json_values)
def test_fuzz_random_json(value):
    check_load(json.dumps(value))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_random_text(text):
    check_load(text)


def base_docs():
    return [json.loads(golden(f)) for f in sorted(GRAPHS)] + [json.loads(HAND)]


TRICKY_ATTRS = ["", "(", ")", "((((((((((((((((((((((((((((((((((((((((1", "1e999", "-1e999", "nan",
                "inf", "None", "True", "(1,)", "[2,3]", "(None, 1)", "'a'", '"', "1" * 400,
                "(" + ", ".join(["7"] * 200) + ")", "float64", "int3", "0x10", "-0", "1_000",
                "__import__('os')", "[[[[]]]]", "(,)", "\x00", "\u2603", "1000000000000"]

attr_text = st.one_of(st.sampled_from(TRICKY_ATTRS), st.text(max_size=30))
attr_key = st.one_of(st.sampled_from(["scalar", "axis", "keepdims", "num_outputs", "p",
                                      "fix_gamma", "eps", "num_args", "__init__", "__x__",
                                      "name", "shape", "act_type", "bogus"]),
                     st.text(max_size=10))


def paths(value, prefix=()):
    """Every path (tuple of keys/indices) inside a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, prefix + (i,))


def get_at(value, path):
    for p in path:
        value = value[p]
    return value


@st.composite
def mutated_docs(draw):
    d = draw(st.sampled_from(base_docs()))
    d = copy.deepcopy(d)
    for _ in range(draw(st.integers(1, 3))):
        all_paths = list(paths(d))
        path = draw(st.sampled_from(all_paths))
        kind = draw(st.sampled_from(["drop", "rename", "replace", "int", "cycle", "dup_name",
                                     "attr", "huge", "swap"]))
        if not path:
            continue
        parent, key = get_at(d, path[:-1]), path[-1]
        if kind == "drop":
            del parent[key]
        elif kind == "rename" and isinstance(parent, dict):
            parent[draw(st.text(max_size=8))] = parent.pop(key)
        elif kind == "replace":
            parent[key] = draw(json_values)
        elif kind == "int":
            parent[key] = draw(st.one_of(st.integers(-3, 40), st.integers(-2 ** 64, 2 ** 64)))
        elif kind == "cycle" and d.get("nodes") and isinstance(d["nodes"], list):
            i = draw(st.integers(0, len(d["nodes"]) - 1))
            j = draw(st.integers(i, len(d["nodes"]) + 1))
            node = d["nodes"][i]
            if isinstance(node, dict) and isinstance(node.get("inputs"), list):
                node["inputs"].append([j, 0, 0])
        elif kind == "dup_name" and isinstance(d.get("nodes"), list) and len(d["nodes"]) > 1:
            a, b = draw(st.permutations(range(len(d["nodes"]))))[:2]
            if isinstance(d["nodes"][a], dict) and isinstance(d["nodes"][b], dict):
                d["nodes"][a]["name"] = d["nodes"][b].get("name")
        elif kind == "attr" and isinstance(d.get("nodes"), list) and d["nodes"]:
            node = draw(st.sampled_from(d["nodes"]))
            if isinstance(node, dict):
                node.setdefault("attrs", {})
                if isinstance(node["attrs"], dict):
                    node["attrs"][draw(attr_key)] = draw(attr_text)
        elif kind == "huge":
            depth = draw(st.integers(1, 3000))
            parent[key] = json.loads("[" * depth + "]" * depth) if depth < 900 else [0] * depth
        elif kind == "swap" and isinstance(parent, list) and len(parent) > 1:
            parent.reverse()
    return json.dumps(d)


@FUZZ
@given(mutated_docs())
def test_fuzz_mutated_graphs(text):
    check_load(text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["exp", "_plus_scalar", "sum", "SliceChannel", "Dropout", "Reshape",
                        "FullyConnected", "Activation", "transpose", "add_n", "Concat",
                        "BatchNorm", "Cast", "clip", "slice"]),
       st.dictionaries(attr_key, attr_text, max_size=4),
       st.integers(0, 4))
def test_fuzz_op_attrs(opname, attrs, ninputs):
    nodes = [var("v%d" % i) for i in range(max(ninputs, 1))]
    nodes.append({"op": opname, "name": "op", "attrs": attrs,
                  "inputs": [[i, 0, 0] for i in range(ninputs)]})
    check_load(doc(nodes, [[len(nodes) - 1, 0, 0]]))


def test_identity_is_written_as_copy_and_underscore_identity_is_refused():
    a = mx.sym.Variable("a")
    js = json.loads(mx.sym.identity(a, name="i").tojson())
    assert [n["op"] for n in js["nodes"]] == ["null", "_copy"]
    # the alias name loads and is canonicalised; `_identity` is not an MXNet op
    aliased = mx.sym.identity(a, name="i").tojson().replace('"_copy"', '"identity"')
    assert [n["op"] for n in json.loads(load_json(aliased).tojson())["nodes"]] == ["null", "_copy"]
    with pytest.raises(MXNetError, match="_identity"):
        load_json(mx.sym.identity(a, name="i").tojson().replace('"_copy"', '"_identity"'))
    out = mx.sym.identity(a).eval(a=mx.nd.array([1.0, 2.0]))[0]
    assert out.asnumpy().tolist() == [1.0, 2.0]
