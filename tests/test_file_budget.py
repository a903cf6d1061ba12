"""A graph file may not make agjit allocate far beyond its size (issue 10, item 7; the note
*file-budget* in symbol/budget.py).

Every reproducer is a JSON document of a few hundred bytes whose attributes ask for 10^9 or
more array elements.  Loading it (``mx.sym.load``, ``load_checkpoint``, ``Module.load``,
``SymbolBlock.imports``), or inferring / binding what loaded, must be an MXNetError naming
the op, the attribute and the size -- at once and in bounded memory (measured with
tracemalloc) -- while exported model-zoo networks still load, infer and run.
"""
import json
import time
import tracemalloc

import numpy as np
import pytest

import agjit as mx
from agjit.base import MXNetError
from symbol import budget


def _doc(nodes):
    return json.dumps({"nodes": nodes,
                       "arg_nodes": [i for i, n in enumerate(nodes) if n["op"] == "null"],
                       "heads": [[len(nodes) - 1, 0, 0]],
                       "attrs": {"mxnet_version": ["int", 10901]}})


def _var(name, attrs=None):
    d = {"op": "null", "name": name, "inputs": []}
    if attrs:
        d["attrs"] = attrs
    return d


def _op(op, name, inputs, **attrs):
    return {"op": op, "name": name, "inputs": [[i, 0, 0] for i in inputs],
            "attrs": {k: str(v) for k, v in attrs.items()}}


def _unary(op, **attrs):
    return _doc([_var("x"), _op(op, "n", [0], **attrs)])


BIG = "(100000, 100000)"
# (document, the op and attribute text the message must name)
LOAD_BOMBS = {
    "zeros": (_doc([_op("_zeros", "n", [], shape=BIG)]), "_zeros attribute shape=(100000, 100000)"),
    "ones": (_doc([_op("_ones", "n", [], shape=BIG)]), "_ones attribute shape="),
    "full": (_doc([_op("_full", "n", [], shape=BIG, value=1)]), "_full attribute shape="),
    "uniform": (_doc([_op("_random_uniform", "n", [], shape=BIG)]), "_random_uniform attribute shape="),
    "normal": (_doc([_op("_random_normal", "n", [], shape=BIG)]), "_random_normal attribute shape="),
    "randint": (_doc([_op("_random_randint", "n", [], shape=BIG, low=0, high=5)]),
                "_random_randint attribute shape="),
    "arange": (_doc([_op("_arange", "n", [], start=0, stop=1e12)]), "_arange attributes start=0.0"),
    "arange_repeat": (_doc([_op("_arange", "n", [], start=0, stop=10, repeat=10 ** 10)]),
                      "repeat=10000000000"),
    "tile": (_unary("tile", reps=BIG), "tile attribute reps=(100000, 100000)"),
    "repeat": (_unary("repeat", repeats=10 ** 10), "repeat attribute repeats=10000000000"),
    "one_hot": (_unary("one_hot", depth=10 ** 10), "one_hot attribute depth=10000000000"),
    "broadcast_to": (_unary("broadcast_to", shape=BIG), "broadcast_to attribute shape="),
    "broadcast_axis": (_unary("broadcast_axis", axis="(0, 1)", size=BIG),
                       "broadcast_axis attribute size="),
    "upsampling": (_unary("UpSampling", scale=100000, sample_type="nearest", num_args=1),
                   "UpSampling attribute scale=100000"),
    "pad": (_unary("Pad", mode="constant", pad_width="(0, 0, 0, 0, 50000, 50000, 50000, 50000)"),
            "Pad attribute pad_width="),
    "pooling_pad": (_unary("Pooling", kernel="(1, 1)", pad="(50000, 50000)", pool_type="max"),
                    "Pooling attribute pad=(50000, 50000)"),
    "embedding": (_doc([_var("x"), _var("w"), _op("Embedding", "n", [0, 1], input_dim=10 ** 6,
                                                   output_dim=10 ** 5)]),
                  "Embedding attributes input_dim=1000000, output_dim=100000"),
    "fc": (_doc([_var("x"), _var("w"), _op("FullyConnected", "n", [0, 1], num_hidden=10 ** 10,
                                           no_bias=True)]),
           "FullyConnected attribute num_hidden=10000000000"),
    "conv": (_doc([_var("x"), _var("w"), _op("Convolution", "n", [0, 1], kernel="(1000, 1000)",
                                             num_filter=10 ** 4, no_bias=True)]),
             "Convolution attributes num_filter=10000, kernel=(1000, 1000)"),
    "deconv": (_doc([_var("x"), _var("w"), _op("Deconvolution", "n", [0, 1], kernel="(1, 1)",
                                               stride="(100000, 100000)", num_filter=1)]),
               "Deconvolution attributes num_filter=1, stride=(100000, 100000)"),
    "rnn": (_doc([_var("x"), _var("p"), _var("s"),
                  _op("RNN", "n", [0, 1, 2], state_size=10 ** 6, num_layers=1, mode="rnn_tanh")]),
            "RNN attributes state_size=1000000, num_layers=1"),
    "scatter_nd": (_doc([_var("x"), _var("i"), _op("scatter_nd", "n", [0, 1], shape=BIG)]),
                   "scatter_nd attribute shape="),
    "var_shape": (_doc([_var("x", {"__shape__": BIG}), _op("relu", "n", [0])]),
                  "variable attribute __shape__='(100000, 100000)'"),
    # many small asks add up: 1,000 nodes of 2^22 elements each in a ~100 KB file
    "many": (_doc([_var("x")] + [_op("_zeros", "z%d" % k, [], shape="(4096, 1024)")
                                 for k in range(1000)]),
             "(with the nodes before it: "),
}


def _measured(fn):
    """Run fn under tracemalloc; returns (exception, peak MiB, seconds)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        fn()
        err = None
    except Exception as e:          # noqa: BLE001 -- inspected by the caller
        err = e
    finally:
        dt = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    return err, peak, dt


@pytest.mark.parametrize("case", sorted(LOAD_BOMBS))
def test_load_refuses_attributes_that_ask_too_much(case, tmp_path):
    text, needle = LOAD_BOMBS[case]
    assert len(text) < 400 or case == "many"
    path = tmp_path / "bomb-symbol.json"
    path.write_text(text)
    err, peak, dt = _measured(lambda: mx.sym.load(str(path)))
    assert isinstance(err, MXNetError), (case, err)
    msg = str(err)
    assert needle in msg, msg
    assert "node " in msg and "array elements" in msg and budget.ENV in msg
    assert "at most %d elements" % budget.file_limit(len(text)) in msg
    assert peak < 16 and dt < 5, (peak, dt)


def test_load_checkpoint_module_and_symbolblock_refuse_a_bomb(tmp_path):
    prefix = str(tmp_path / "m")
    with open(prefix + "-symbol.json", "w") as f:
        f.write(_unary("tile", reps=BIG))
    mx.nd.save(prefix + "-0000.params", {})
    for load in (lambda: mx.model.load_checkpoint(prefix, 0),
                 lambda: mx.mod.Module.load(prefix, 0),
                 lambda: mx.gluon.SymbolBlock.imports(prefix + "-symbol.json", ["x"]),
                 lambda: mx.model.Model.load(prefix, 0)):
        err, peak, _dt = _measured(load)
        assert isinstance(err, MXNetError) and "tile attribute reps" in str(err), err
        assert peak < 16


def _fc_chain():
    """Each num_hidden is small, but the second weight is 60000 x 60000 = 3.6e9 elements."""
    return _doc([_var("x"), _var("w1"),
                 _op("FullyConnected", "f1", [0, 1], num_hidden=60000, no_bias=True),
                 _var("w2"), _op("FullyConnected", "f2", [2, 3], num_hidden=60000, no_bias=True)])


def _tile_chain():
    """Two tiles of 3000: each attribute is small, the output has 9e6 elements."""
    return _doc([_var("x"), _op("tile", "t1", [0], reps="(3000,)"),
                 _op("tile", "t2", [1], reps="(3000,)")])


def test_products_over_nodes_are_refused_at_inference_and_bind(tmp_path):
    sym = mx.sym.load_json(_fc_chain())           # every attribute on its own is fine
    for call in (lambda: sym.infer_shape(x=(1, 1)),
                 lambda: sym.infer_shape_partial(x=(1, 1)),
                 lambda: sym.simple_bind(mx.cpu(), x=(1, 1)),
                 lambda: sym.get_internals().infer_shape(x=(1, 1))):
        err, peak, dt = _measured(call)
        assert isinstance(err, MXNetError), err
        msg = str(err)
        assert "w2 of shape (60000, 60000), 3600000000 elements" in msg, msg
        assert budget.ENV in msg
        assert peak < 16 and dt < 5
    tiles = mx.sym.load_json(_tile_chain())
    err, peak, _ = _measured(lambda: tiles.bind(mx.cpu(), {"x": mx.nd.ones((1,))}))
    assert isinstance(err, MXNetError) and "t2 output 0 (tile) of shape (9000000,)" in str(err)
    assert peak < 16


def test_inference_allowance_grows_with_the_inputs():
    tiles = mx.sym.load_json(_tile_chain())
    # 3000 * 3000 = 9e6 elements per input element: more than 1024 per element given
    with pytest.raises(MXNetError, match="plus 1024 per element of the given inputs"):
        tiles.infer_shape(x=(100,))
    text = _doc([_var("x"), _op("tile", "t", [0], reps="(1000,)")])
    small = mx.sym.load_json(text)
    limit = budget.file_limit(len(text))
    # (1 + 1000) * 5000 elements: more than the file's limit alone, within limit + 1024 * 5000
    args, outs, _ = small.infer_shape(x=(5000,))
    assert outs == [(5000000,)] and 1001 * 5000 > limit


def test_module_and_symbolblock_paths_check_inference(tmp_path):
    prefix = str(tmp_path / "fc")
    with open(prefix + "-symbol.json", "w") as f:
        f.write(_fc_chain())
    mx.nd.save(prefix + "-0000.params", {})
    mod = mx.mod.Module.load(prefix, 0, data_names=["x"], label_names=None)
    err, peak, _ = _measured(lambda: mod.bind(data_shapes=[("x", (1, 1))], for_training=False))
    assert isinstance(err, MXNetError) and "3600000000 elements" in str(err), err
    assert peak < 16
    blk = mx.gluon.SymbolBlock.imports(prefix + "-symbol.json", ["x"])
    blk.initialize()
    err, peak, _ = _measured(lambda: blk(mx.nd.ones((1, 1))))
    assert "3600000000 elements" in str(err), err     # deferred init wraps it, as MXNet does
    assert peak < 16
    model = mx.model.Model.load(prefix, 0)
    err, peak, _ = _measured(lambda: model.predict(x=np.ones((1, 1), np.float32)))
    assert isinstance(err, MXNetError) and "3600000000 elements" in str(err), err
    assert peak < 16


def test_knob_lifts_or_sets_the_budget(monkeypatch):
    text = _unary("tile", reps="(3000, 3000)")       # 9e6 > 2^22
    with pytest.raises(MXNetError, match="tile attribute reps"):
        mx.sym.load_json(text)
    monkeypatch.setenv(budget.ENV, "0")
    sym = mx.sym.load_json(text)
    assert sym.infer_shape(x=(1, 1))[1] == [(3000, 3000)]
    assert mx.sym.load_json(_fc_chain()).infer_shape(x=(1, 1))[0][1] == (60000, 1)
    monkeypatch.setenv(budget.ENV, "1e7")
    assert mx.sym.load_json(text).infer_shape(x=(1, 1))[1] == [(3000, 3000)]
    monkeypatch.setenv(budget.ENV, "100")
    with pytest.raises(MXNetError, match="at most 100 elements"):
        mx.sym.load_json(_unary("tile", reps="(11, 10)"))
    monkeypatch.setenv(budget.ENV, "lots")
    with pytest.raises(MXNetError, match="AGJIT_MAX_FILE_ELEMENTS must be a number"):
        mx.sym.load_json(text)


def test_graphs_built_in_python_are_not_limited():
    x = mx.sym.var("x")
    y = mx.sym.tile(x, reps=(3000, 3000))
    assert y.infer_shape(x=(1, 1))[1] == [(3000, 3000)]
    z = mx.sym.zeros((5000, 1000))
    assert z.infer_shape()[1] == [(5000, 1000)]
    # a graph saved from Python and loaded again is a file like any other
    with pytest.raises(MXNetError, match="tile attribute reps"):
        mx.sym.load_json(y.tojson())


def test_reshape_targets_are_not_counted():
    # a reshape allocates nothing: its target must match its input, which inference checks
    sym = mx.sym.load_json(_unary("Reshape", shape="(100000, 100000)"))
    with pytest.raises(MXNetError):
        sym.infer_shape(x=(2, 3))


ZOO = ["resnet18_v1", "vgg16", "densenet121", "inceptionv3", "mobilenet1.0"]


def _with_param_shapes(sym, **shapes):
    """The graph JSON as an initialised network's export writes it: every parameter variable
    with its ``__shape__`` (without allocating the parameters)."""
    args, _, aux = sym.infer_shape(**shapes)
    doc = json.loads(sym.tojson())
    known = dict(zip(sym.list_arguments(), args))
    known.update(zip(sym.list_auxiliary_states(), aux))
    for n in doc["nodes"]:
        if n["op"] == "null" and n["name"] in known and n["name"] not in shapes:
            n.setdefault("attrs", {})["__shape__"] = str(tuple(known[n["name"]]))
    return json.dumps(doc, indent=2)


@pytest.mark.parametrize("name", ZOO)
def test_model_zoo_exports_load_and_infer(name):
    from agjit.gluon.model_zoo import vision
    net = vision.get_model(name)
    text = net(mx.sym.var("data")).tojson()
    size = 299 if name == "inceptionv3" else 224
    sym = mx.sym.load_json(text)
    args, outs, aux = sym.infer_shape(data=(1, 3, size, size))
    assert outs == [(1, 1000)]
    assert len(args) == len(sym.list_arguments())
    if name == "vgg16":
        # 1.4e8 weights written as __shape__ in 22 KB of JSON: within the file's budget
        full = mx.sym.load_json(_with_param_shapes(sym, data=(1, 3, 224, 224)))
        assert full.infer_shape(data=(1, 3, 224, 224))[1] == [(1, 1000)]


def test_language_model_export_loads_and_infers():
    """Small JSON, big parameters: Embedding(33278, 650), a 2-layer LSTM(650) and
    Dense(33278) -- 7e7 elements at batch 35 x 20 from a 7 KB document."""
    from agjit import gluon

    class LM(gluon.HybridBlock):
        def __init__(self, **kw):
            super(LM, self).__init__(**kw)
            with self.name_scope():
                self.emb = gluon.nn.Embedding(33278, 650)
                self.rnn = gluon.rnn.LSTM(650, num_layers=2, input_size=650)
                self.out = gluon.nn.Dense(33278, flatten=False, in_units=650)

        def hybrid_forward(self, F, x):
            return self.out(self.rnn(self.emb(x)))

    sym = LM()(mx.sym.var("data"))
    text = _with_param_shapes(sym, data=(35, 20))
    lm = mx.sym.load_json(text)
    args, outs, _ = lm.infer_shape(data=(35, 20))
    assert outs == [(35, 20, 33278)]


def test_exported_resnet_runs_through_module_load_and_symbolblock(tmp_path):
    from agjit.gluon.model_zoo import vision
    net = vision.resnet18_v1(classes=10)
    net.initialize(mx.init.Xavier())
    x = mx.nd.array(np.random.RandomState(0).uniform(-1, 1, (2, 3, 32, 32)))
    want = net(x).asnumpy()
    sym = net(mx.sym.var("data"))
    params = {k: p.data() for k, p in net.collect_params().items()}
    aux_names = set(sym.list_auxiliary_states())
    mx.model.save_checkpoint(str(tmp_path / "r18"), 0, sym,
                             {k: v for k, v in params.items() if k not in aux_names},
                             {k: v for k, v in params.items() if k in aux_names})
    mod = mx.mod.Module.load(str(tmp_path / "r18"), 0, data_names=["data"], label_names=None)
    mod.bind(data_shapes=[("data", x.shape)], for_training=False)
    mod.forward(mx.io.DataBatch([x]), is_train=False)
    np.testing.assert_allclose(mod.get_outputs()[0].asnumpy(), want, rtol=1e-4, atol=1e-5)
    blk = mx.gluon.SymbolBlock.imports(str(tmp_path / "r18-symbol.json"), ["data"],
                                       str(tmp_path / "r18-0000.params"))
    blk.infer_shape(x)          # the budget check SymbolBlock's deferred initialisation runs
    shapes = {k[len(net.prefix):]: p.shape for k, p in net.collect_params().items()}
    got = {k[len(blk.prefix):] if k.startswith(blk.prefix) else k: p.shape
           for k, p in blk.collect_params().items()}
    assert sorted(got.values()) == sorted(shapes.values()) and len(got) == len(shapes)
