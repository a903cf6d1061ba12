"""Gluon core: Parameter/ParameterDict, Block/HybridBlock/SymbolBlock, containers, hybridize
as mx.jit replay, export/imports (also with real MXNet 1.9.1 when an interpreter exists),
Trainer and the optimizers, gluon.utils, and the ``mxnet`` module alias."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import agjit as mx
from agjit import gluon
from agjit.base import MXNetError
from agjit.gluon import nn
from agjit.gluon.parameter import DeferredInitializationError

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _mxnet_python():
    cands = [os.environ.get("AGJIT_MXNET_PYTHON"),
             os.path.join(ROOT, "..", "shared", "oracle", ".mxenv", "bin", "python"),
             "/work/mxenv/bin/python"]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def _run_mxnet(script, *args):
    py = _mxnet_python()
    if py is None:
        pytest.skip("no MXNet interpreter (set AGJIT_MXNET_PYTHON)")
    env = dict(os.environ, MXNET_ENGINE_TYPE="NaiveEngine")
    env.pop("PYTHONPATH", None)
    r = subprocess.run([py, "-c", textwrap.dedent(script)] + list(args), capture_output=True,
                       text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def _mlp(units=(6, 3), in_units=4, bn=True, prefix=None):
    net = nn.HybridSequential(prefix=prefix)
    with net.name_scope():
        net.add(nn.Dense(units[0], in_units=in_units))
        if bn:
            net.add(nn.BatchNorm(in_channels=units[0]))
        net.add(nn.Activation("relu"), nn.Dropout(0.0), nn.Dense(units[1], in_units=units[0]))
    return net


def _set_params(net, seed):
    rs = np.random.RandomState(seed)
    for name, p in sorted(net.collect_params().items()):
        if name.endswith("running_var"):
            p.set_data(mx.nd.array(rs.uniform(0.5, 1.5, size=p.shape)))
        else:
            p.set_data(mx.nd.array(rs.randn(*p.shape) * 0.5))


# ---------------------------------------------------------------------------------------
# Parameter and ParameterDict
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["parameter", "block", "nn.containers", "trainer", "utils"])
def test_docstring_examples(name):
    import doctest
    import importlib
    module = importlib.import_module("agjit.gluon." + name)
    res = doctest.testmod(module, extraglobs={"mx": mx, "np": np})
    assert res.failed == 0 and res.attempted > 0


def test_parameter_states_and_errors():
    p = gluon.Parameter("p_weight", shape=(2, 3))
    with pytest.raises(RuntimeError, match="has not been initialized"):
        p.data()
    with pytest.raises(RuntimeError):
        p.grad()
    with pytest.raises(RuntimeError):
        p.list_ctx()
    p.initialize(mx.init.Constant(1.5))
    np.testing.assert_array_equal(p.data().asnumpy(), np.full((2, 3), 1.5, np.float32))
    np.testing.assert_array_equal(p.grad().asnumpy(), np.zeros((2, 3), np.float32))
    assert [str(c) for c in p.list_ctx()] == ["cpu(0)"]
    with pytest.warns(UserWarning, match="already initialized"):
        p.initialize(mx.init.Zero())
    assert p.data().asnumpy()[0, 0] == 1.5
    p.initialize(mx.init.Zero(), force_reinit=True)
    assert p.data().asnumpy().sum() == 0
    with pytest.raises(AssertionError, match="incompatible"):
        p.set_data(mx.nd.ones((3, 3)))
    with pytest.raises(AssertionError, match="grad_req must be one of"):
        p.grad_req = "sometimes"
    p.grad_req = "null"
    with pytest.raises(RuntimeError, match="grad_req='null'"):
        p.grad()
    p.grad_req = "write"
    assert p.grad().shape == (2, 3)
    # deferred
    q = gluon.Parameter("q", shape=(2, 0))
    with pytest.raises(ValueError, match="invalid shape"):
        q.initialize()
    d = gluon.Parameter("d", shape=(2, 0), allow_deferred_init=True)
    d.initialize(mx.init.One())
    with pytest.raises(DeferredInitializationError):
        d.data()
    assert issubclass(DeferredInitializationError, MXNetError)
    d.shape = (2, 5)
    with pytest.raises(AssertionError):
        d.shape = (3, 5)
    d._finish_deferred_init()
    assert d.data().shape == (2, 5) and d.data().asnumpy().sum() == 10
    # var() carries MXNet's attrs; cast changes data and grad
    v = gluon.Parameter("v", shape=(3,), init="zeros", lr_mult=2.0).var()
    assert v.attr("__shape__") == "(3,)" and v.attr("__lr_mult__") == "2.0"
    assert v.attr("__init__") == "zeros" and v.attr("__dtype__") == "0"
    d.cast("float64")
    assert d.data().dtype == np.float64 and d.grad().dtype == np.float64
    c = gluon.Constant("c", [1.0, 2.0])
    c.initialize()
    assert c.grad_req == "null" and c.data().asnumpy().tolist() == [1.0, 2.0]


def test_parameter_data_is_live_and_grads_follow_grad_req():
    d = nn.Dense(2, in_units=3)
    d.initialize(mx.init.One())
    d.weight.data()[:] = 2.0
    assert d.weight.data().asnumpy().sum() == 12
    x = mx.nd.array(np.arange(6).reshape(2, 3))
    d.weight.grad_req = "add"
    for _ in range(2):
        with mx.autograd.record():
            y = d(x).sum()
        y.backward()
    # d(sum y)/dW[i, j] = sum_n x[n, j], added twice
    np.testing.assert_allclose(d.weight.grad().asnumpy(), 2 * np.tile(x.asnumpy().sum(0), (2, 1)))
    np.testing.assert_allclose(d.bias.grad().asnumpy(), [2.0, 2.0])     # 'write': one pass
    d.collect_params().zero_grad()
    assert d.weight.grad().asnumpy().sum() == 0


def test_parameter_dict_get_select_share_save_load(tmp_path):
    pd = gluon.ParameterDict("blk_")
    w = pd.get("w", shape=(2, 0))
    assert pd.get("w", shape=(2, 3)) is w and w.shape == (2, 3)     # 0 dims filled in
    with pytest.raises(AssertionError, match="does not match"):
        pd.get("w", shape=(4, 3))
    with pytest.raises(KeyError):
        pd.get_constant("k")
    k = pd.get_constant("k", [1, 2])
    assert k.grad_req == "null" and list(pd.keys()) == ["blk_w", "blk_k"]
    shared = gluon.ParameterDict("other_", shared=pd)
    assert shared.get("w") is not w             # other prefix: a new parameter
    same = gluon.ParameterDict("blk_", shared=pd)
    assert same.get("w") is w
    other = gluon.ParameterDict("blk_")
    other.get("w", shape=(2, 3))
    with pytest.raises(AssertionError, match="different Parameters"):
        pd.update(other)
    pd.initialize(mx.init.Constant(3.0))
    pd.setattr("lr_mult", 0.25)
    assert [p.lr_mult for p in pd.values()] == [0.25, 0.25]
    f = str(tmp_path / "pd.params")
    pd.save(f, strip_prefix="blk_")
    assert sorted(mx.nd.load(f).keys()) == ["k", "w"]
    with pytest.raises(ValueError, match="Prefix 'zz_' is to be striped"):
        pd.save(f + "2", strip_prefix="zz_")
    fresh = gluon.ParameterDict("blk_")
    fresh.get("w", shape=(2, 3))
    with pytest.raises(AssertionError, match="is not present in ParameterDict"):
        fresh.load(f, restore_prefix="blk_")
    fresh.load(f, restore_prefix="blk_", ignore_extra=True)
    np.testing.assert_array_equal(fresh["blk_w"].data().asnumpy(), np.full((2, 3), 3.0))
    missing = gluon.ParameterDict("blk_")
    missing.get("w", shape=(2, 3))
    missing.get("extra", shape=(1,))
    with pytest.raises(AssertionError, match="'extra' is missing"):
        missing.load(f, restore_prefix="blk_", ignore_extra=True)


def test_naming_scopes_counters_and_sharing():
    class Net(gluon.HybridBlock):
        def __init__(self, **kw):
            super(Net, self).__init__(**kw)
            with self.name_scope():
                self.a = nn.Dense(2, in_units=2)
                self.b = nn.Dense(2, in_units=2)
                self.gate = nn.Dense(1, in_units=2, prefix="gate_")
                self.s = self.params.get("scale", shape=(1,))

        def hybrid_forward(self, F, x, s):
            return F.broadcast_mul(self.gate(self.b(self.a(x))), s)

    n0, n1 = Net(), Net()
    k0 = int(n0.prefix[len("net"):-1])
    assert n1.prefix == "net%d_" % (k0 + 1) and n0.name == "net%d" % k0
    assert list(n0.collect_params().keys()) == [
        n0.prefix + s for s in ("scale", "dense0_weight", "dense0_bias", "dense1_weight",
                                "dense1_bias", "gate_weight", "gate_bias")]
    z = Net(prefix="")
    assert z.prefix == "" and z.a.prefix.startswith("dense")      # name_scope is a no-op
    shared = nn.Dense(2, in_units=2, params=n0.a.params)
    assert shared.weight is n0.a.weight and shared.weight.name == n0.prefix + "dense0_weight"
    with pytest.raises(ValueError, match="must also be HybridBlock"):
        n0.register_child(nn.Sequential())
    with pytest.raises(TypeError, match="Changing attribute type"):
        n0.a = 3
    # a container of unregistered blocks warns
    blk = gluon.Block()
    blk.layers = [nn.Dense(1)]
    with pytest.warns(UserWarning, match="unregistered container"):
        blk.collect_params()


def test_block_hooks_apply_repr_and_forward_errors():
    seq = nn.Sequential()
    with seq.name_scope():
        seq.add(nn.Dense(2, in_units=3), nn.Lambda("relu"))
    seq.initialize(mx.init.One())
    seen = []
    h = seq[0].register_forward_hook(lambda b, i, o: seen.append((b.name, i[0].shape, o.shape)))
    hp = seq.register_forward_pre_hook(lambda b, i: seen.append(("pre", len(i))))
    seq(mx.nd.ones((4, 3)))
    h.detach()
    hp.detach()
    seq(mx.nd.ones((4, 3)))
    assert seen == [("pre", 1), (seq[0].name, (4, 3), (4, 2))]
    order = []
    seq.apply(lambda b: order.append(b.name))
    assert order == [seq[0].name, seq[1].name, seq.name]
    assert repr(seq).startswith("Sequential(\n  (0): Dense(3 -> 2, linear)\n  (1): Lambda(relu)")
    with pytest.raises(NotImplementedError):
        gluon.Block()(mx.nd.ones((1,)))
    with pytest.raises(AssertionError, match="not found in ndarray"):
        nn.Lambda("no_such_op")
    with pytest.raises(ValueError, match="must also be HybridBlock"):
        nn.HybridSequential().add(nn.Lambda("tanh"))
    sl = seq[0:1]
    assert type(sl) is nn.Sequential and sl.prefix == seq.prefix and sl[0] is seq[0]


def test_deferred_inference_through_plain_block_and_infer_shape():
    class Top(gluon.Block):
        def __init__(self, **kw):
            super(Top, self).__init__(**kw)
            with self.name_scope():
                self.body = nn.HybridSequential()
                self.body.add(nn.Dense(5, activation="tanh"), nn.Dense(2))

        def forward(self, x):
            return self.body(x) * 2

    t = Top()
    assert t.body[0].weight.shape == (5, 0)
    t.initialize(mx.init.Constant(0.1))
    with pytest.raises(DeferredInitializationError):
        t.body[0].weight.data()
    y = t(mx.nd.ones((3, 7)))
    assert t.body[0].weight.shape == (5, 7) and t.body[1].weight.shape == (2, 5)
    h = np.tanh(np.full((3, 5), 0.7))            # bias init 'zeros' wins over the global init
    np.testing.assert_allclose(y.asnumpy(), 2 * h @ np.full((5, 2), 0.1), rtol=1e-6)
    # infer_shape fills the shapes without allocating
    net = nn.HybridSequential()
    net.add(nn.Dense(4), nn.Dense(3))
    net.infer_shape(mx.nd.ones((2, 9)))
    assert [p.shape for p in net.collect_params().values()] == [(4, 9), (4,), (3, 4), (3,)]
    with pytest.raises(RuntimeError):
        net[0].weight.data()
    bad = nn.Dense(3)
    bad.initialize()
    with pytest.raises(RuntimeError):
        nn.Dense(2)(mx.nd.ones((1, 3)))              # not initialised


def test_save_load_parameters_structural_keys_and_errors(tmp_path):
    a = _mlp()
    a.initialize()
    _set_params(a, 1)
    f = str(tmp_path / "a.params")
    a.save_parameters(f)
    assert sorted(mx.nd.load(f).keys()) == ["0.bias", "0.weight", "1.beta", "1.gamma",
                                             "1.running_mean", "1.running_var", "4.bias",
                                             "4.weight"]
    b = _mlp()
    b.load_parameters(f)
    x = mx.nd.array(np.random.RandomState(2).randn(3, 4))
    np.testing.assert_array_equal(a(x).asnumpy(), b(x).asnumpy())
    c = _mlp(bn=False)              # children 0 Dense, 1 Activation, 2 Dropout, 3 Dense
    with pytest.raises(AssertionError, match="'3.weight' is missing in file"):
        c.load_parameters(f)
    with pytest.raises(ValueError, match="'1.gamma' loaded from file .* is not present"):
        c.load_parameters(f, allow_missing=True)
    c.load_parameters(f, allow_missing=True, ignore_extra=True)
    np.testing.assert_array_equal(c[0].weight.data().asnumpy(), a[0].weight.data().asnumpy())
    with pytest.raises(RuntimeError):
        c[3].weight.data()
    # deduplicate: a shared parameter is stored once, under its last structural name
    s1 = nn.HybridSequential()
    d1 = nn.Dense(2, in_units=2)
    s1.add(d1, nn.Dense(2, in_units=2, params=d1.params))
    s1.initialize()
    s1.save_parameters(f + ".dedup", deduplicate=True)
    assert sorted(mx.nd.load(f + ".dedup").keys()) == ["1.bias", "1.weight"]
    d64 = _mlp()
    d64.cast("float64")
    with pytest.raises(AssertionError, match="dtype incompatible"):
        d64.load_parameters(f)
    d64.load_parameters(f, cast_dtype=True)
    assert d64[0].weight.data().dtype == np.float64


# ---------------------------------------------------------------------------------------
# hybridize = mx.jit replay
# ---------------------------------------------------------------------------------------
def _train_call(net, x, mode=True):
    with mx.autograd.record(train_mode=mode):
        y = net(x)
        loss = (y * y).sum()
    loss.backward()
    return y


def test_hybridize_equals_eager_one_tape_node_and_bn_stats():
    x = mx.nd.array(np.random.RandomState(3).randn(5, 4))
    res = {}
    for hyb in (False, True):
        net = _mlp()
        net.initialize()
        _set_params(net, 7)
        if hyb:
            net.hybridize()
        r = {"predict": net(x).asnumpy()}
        y = _train_call(net, x)
        r["train"] = y.asnumpy()
        for name, p in net.collect_params().items():
            r[name[len(net.prefix):]] = p.data().asnumpy().copy()
            if p.grad_req != "null":
                r["g_" + name[len(net.prefix):]] = p.grad().asnumpy().copy()
        y2 = _train_call(net, x, mode=False)          # predict-mode record, train backward
        r["predict_record"] = y2.asnumpy()
        r["g_predict"] = net[0].weight.grad().asnumpy().copy()
        r["after"] = net(x).asnumpy()
        res[hyb] = r
        if hyb:
            # each call inside record() is ONE compiled tape node over data + parameters
            with mx.autograd.record():
                out = net(x)
            node = out._entry[0]
            assert node.op.name == "_jit_call"
            assert len(node.inputs) == 1 + len(net.collect_params())
            assert net._jit.cache_info().traces == 2       # predict and train mode
            # the compiled gradient against central differences of the compiled forward
            # (training mode, batch statistics: same signature, no new kernels)
            _train_call(net, x)
            g = net[0].weight.grad().asnumpy().copy()
            data = net[0].weight.data()

            def loss():
                with mx.autograd.record():
                    v = (net(x) ** 2).sum()
                return float(v.asscalar())

            for idx in [(0, 0), (2, 3), (5, 1)]:
                old = float(data.asnumpy()[idx])
                data[idx] = old + 1e-2
                up = loss()
                data[idx] = old - 1e-2
                down = loss()
                data[idx] = old
                np.testing.assert_allclose(g[idx], (up - down) / 2e-2, rtol=2e-2, atol=1e-3)
    assert set(res[False]) == set(res[True]) and len(res[False]) > 10
    for k in res[False]:
        np.testing.assert_allclose(res[True][k], res[False][k], rtol=1e-5, atol=1e-6, err_msg=k)
    # the running stats moved in the training backward only
    assert not np.allclose(res[True]["batchnorm0_running_mean"], 0)


def test_hybridize_grad_req_retrace_nesting_and_off():
    x = mx.nd.array(np.random.RandomState(6).randn(5, 4))
    net = _mlp()                       # the graph of the test above: its kernels are cached
    net.initialize()
    _set_params(net, 2)
    net.hybridize(static_alloc=True, static_shape=True)
    net[0].weight.grad_req = "add"
    _train_call(net, x)
    g1 = net[0].weight.grad().asnumpy().copy()
    b1 = net[0].bias.grad().asnumpy().copy()
    _train_call(net, x)
    np.testing.assert_allclose(net[0].weight.grad().asnumpy(), 2 * g1, rtol=1e-5)
    np.testing.assert_allclose(net[0].bias.grad().asnumpy(), b1, rtol=1e-5)   # 'write'
    # in-place parameter updates are seen by the replay (parameters are inputs by reference)
    y0 = net(x).asnumpy()
    net[4].bias.data()[:] += 1.0
    np.testing.assert_allclose(net(x).asnumpy(), y0 + 1.0, rtol=1e-6)
    # a new batch size retraces; the same one hits
    traces = net._jit.cache_info().traces
    net(mx.nd.ones((7, 4)))            # kernels do not depend on shapes: no compile
    net(mx.nd.ones((7, 4)))
    assert net._jit.cache_info().traces == traces + 1
    # nested hybridized child: only the outermost block jits
    assert net[0]._jit is None and net[0]._active
    # hybridize(active=False): eager again (tape holds the layer ops, not one jitted call)
    net.hybridize(active=False)
    with mx.autograd.record(train_mode=False):
        out = net(x)
    assert out._entry[0].op.name != "_jit_call"
    np.testing.assert_allclose(out.asnumpy(), net(x).asnumpy())


def test_hybrid_forward_sees_sym_once_and_multiple_inputs_outputs():
    class Two(gluon.HybridBlock):
        def __init__(self, **kw):
            super(Two, self).__init__(**kw)
            self.seen = []
            with self.name_scope():
                self.w = self.params.get("w", shape=(1, 3), init=mx.init.Constant(2.0))

        def hybrid_forward(self, F, a, b, w):
            self.seen.append(F.__name__.split(".")[-1])
            s = F.broadcast_mul(F.broadcast_add(a, b), w)
            return s, F.relu(s) - 1

    t = Two()
    t.initialize()
    a, b = mx.nd.array([[1.0, -2.0, 3.0]]), mx.nd.array([[0.5, 0.5, -4.0]])
    e0, e1 = t(a, b)
    t.hybridize()
    h0, h1 = t(a, b)
    t(a, b)
    assert t.seen == ["ndarray", "symbol"]
    np.testing.assert_array_equal(h0.asnumpy(), e0.asnumpy())
    np.testing.assert_array_equal(h1.asnumpy(), e1.asnumpy())
    inputs, out = t._cached_graph
    assert [i.name for i in inputs] == ["data0", "data1"] and len(out.list_outputs()) == 2


def test_export_and_symbolblock_roundtrip(tmp_path):
    net = _mlp()
    with pytest.raises(RuntimeError, match="first call block.hybridize"):
        net.export(str(tmp_path / "x"))
    net.initialize()
    _set_params(net, 9)
    net.hybridize()
    x = mx.nd.array(np.random.RandomState(8).randn(3, 4))
    y = net(x)
    sym_f, par_f = net.export(str(tmp_path / "m"), epoch=7)
    assert par_f.endswith("m-0007.params")
    keys = sorted(mx.nd.load(par_f).keys())
    assert ("aux:%sbatchnorm0_running_mean" % net.prefix) in keys
    assert ("arg:%sdense0_weight" % net.prefix) in keys
    graph = json.load(open(sym_f))
    names = [n["name"] for n in graph["nodes"]]
    assert names[0] == "data" and net.prefix + "dense1_fwd" in names
    sb = gluon.SymbolBlock.imports(sym_f, ["data"], par_f)
    np.testing.assert_allclose(sb(x).asnumpy(), y.asnumpy(), rtol=1e-6)
    assert sorted(sb.collect_params().keys()) == sorted(net.collect_params().keys())
    assert sb.collect_params()[net.prefix + "batchnorm0_running_var"].grad_req == "null"
    bare = gluon.SymbolBlock.imports(sym_f, ["data"])
    with pytest.raises(RuntimeError):
        bare(x)
    # SymbolBlock over internals: a feature extractor sharing the weights
    feat = net(mx.sym.var("data"))
    internals = feat.get_internals()
    fe = gluon.SymbolBlock(internals[net.prefix + "dense0_fwd_output"], mx.sym.var("data"),
                           params=net.collect_params())
    w, b = net[0].weight.data().asnumpy(), net[0].bias.data().asnumpy()
    np.testing.assert_allclose(fe(x).asnumpy(), x.asnumpy() @ w.T + b, rtol=1e-5)
    with pytest.raises(AssertionError, match="must be variable"):
        gluon.SymbolBlock(feat, [feat])


MXNET_SCRIPT = r"""
import sys, json, numpy as np, mxnet as mx
work = sys.argv[1]
res = {}
# 1. the model agjit exported, through Gluon and through the Module API
x = mx.nd.array(np.load(work + '/x.npy'))
sb = mx.gluon.SymbolBlock.imports(work + '/ag-symbol.json', ['data'], work + '/ag-0002.params')
np.save(work + '/mx_gluon.npy', sb(x).asnumpy())
res['names'] = sorted(sb.collect_params().keys())
sym, args, aux = mx.model.load_checkpoint(work + '/ag', 2)
mod = mx.mod.Module(sym, data_names=['data'], label_names=None)
mod.bind(data_shapes=[('data', x.shape)], for_training=False)
mod.set_params(args, aux)
np.save(work + '/mx_module.npy', mod.predict(mx.io.NDArrayIter(x, batch_size=x.shape[0])).asnumpy())
# 2. a model MXNet exports, for agjit to import
from mxnet.gluon import nn
net = nn.HybridSequential()
with net.name_scope():
    net.add(nn.Conv2D(3, 3, padding=1, in_channels=2), nn.BatchNorm(), nn.Activation('relu'),
            nn.MaxPool2D(2), nn.Flatten(), nn.Dense(4, activation='tanh'), nn.Dense(2))
net.initialize(mx.init.Xavier())
xi = mx.nd.array(np.load(work + '/xi.npy'))
net.hybridize()
with mx.autograd.record():
    y = net(xi)
y.backward()
net.export(work + '/mx', epoch=1)
np.save(work + '/mx_out.npy', net(xi).asnumpy())
# 3. optimizer updates
cfgs = json.load(open(work + '/opt_cfgs.json'))
rs = np.random.RandomState(0)
w0 = rs.randn(7).astype('float32'); gs = [rs.randn(7).astype('float32') for _ in range(3)]
res['opt'] = {'w0': w0.tolist(), 'gs': [g.tolist() for g in gs], 'res': {}}
for k, (name, kw) in cfgs.items():
    u = mx.optimizer.get_updater(mx.optimizer.create(name, **kw))
    w = mx.nd.array(w0)
    out = []
    for g in gs:
        u(0, mx.nd.array(g), w)
        out.append(w.asnumpy().tolist())
    res['opt']['res'][k] = out
print(json.dumps(res))
"""

OPT_CFGS = {
    "nag": ("nag", {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01, "rescale_grad": 0.5}),
    "nag_clip": ("nag", {"learning_rate": 0.1, "momentum": 0.5, "wd": 0.3, "clip_gradient": 0.4}),
    "rmsprop": ("rmsprop", {"learning_rate": 0.01, "wd": 0.01, "rescale_grad": 0.5}),
    "rmsprop_c": ("rmsprop", {"learning_rate": 0.01, "wd": 0.01, "centered": True,
                              "clip_weights": 0.5}),
    "adagrad": ("adagrad", {"learning_rate": 0.1, "wd": 0.01}),
    "adadelta": ("adadelta", {"wd": 0.01, "rescale_grad": 0.5}),
    "adamax": ("adamax", {"wd": 0.01, "clip_gradient": 0.3}),
    "nadam": ("nadam", {"wd": 0.01}),
    "signum": ("signum", {"learning_rate": 0.01, "momentum": 0.9, "wd": 0.01, "wd_lh": 0.1}),
    "signsgd": ("signum", {"learning_rate": 0.01, "momentum": 0.0, "wd": 0.01}),
    "ftrl": ("ftrl", {"wd": 0.01, "lamda1": 0.01}),
    "ftml": ("ftml", {"learning_rate": 0.01, "wd": 0.01}),
    "dcasgd": ("dcasgd", {"learning_rate": 0.1, "wd": 0.01}),
    "lamb": ("lamb", {"learning_rate": 0.01, "wd": 0.01}),
    "lamb_nb": ("lamb", {"learning_rate": 0.01, "wd": 0.01, "bias_correction": False,
                         "lower_bound": 0.1, "upper_bound": 2.0}),
    "adam": ("adam", {"learning_rate": 0.01, "wd": 0.1}),
    "sgd": ("sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01, "clip_gradient": 0.5}),
}


@pytest.fixture(scope="module")
def real_mxnet(tmp_path_factory):
    """One MXNet 1.9.1 subprocess: loads what agjit exported, exports a model of its own and
    records optimizer updates."""
    if _mxnet_python() is None:
        pytest.skip("no MXNet interpreter (set AGJIT_MXNET_PYTHON)")
    work = str(tmp_path_factory.mktemp("gluon_mxnet"))
    net = _mlp()                       # the graph the hybridize tests compiled
    net.initialize()
    _set_params(net, 11)
    rs = np.random.RandomState(0)
    x = mx.nd.array(rs.randn(5, 4))
    net.hybridize()
    _train_call(net, x)                # moves the running statistics
    y = net(x).asnumpy()
    net.export(work + "/ag", epoch=2)
    np.save(work + "/x.npy", x.asnumpy())
    np.save(work + "/xi.npy", rs.randn(2, 2, 4, 4).astype(np.float32))
    with open(work + "/opt_cfgs.json", "w") as f:
        json.dump(OPT_CFGS, f)
    res = json.loads(_run_mxnet(MXNET_SCRIPT, work).strip().splitlines()[-1])
    return work, net, y, res


def test_agjit_export_runs_in_mxnet(real_mxnet):
    work, net, y, res = real_mxnet
    assert res["names"] == sorted(net.collect_params().keys())
    np.testing.assert_allclose(np.load(work + "/mx_gluon.npy"), y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(work + "/mx_module.npy"), y, rtol=1e-5, atol=1e-6)


def test_mxnet_export_runs_in_agjit(real_mxnet):
    work = real_mxnet[0]
    sb = gluon.SymbolBlock.imports(work + "/mx-symbol.json", ["data"], work + "/mx-0001.params")
    out = sb(mx.nd.array(np.load(work + "/xi.npy"))).asnumpy()
    np.testing.assert_allclose(out, np.load(work + "/mx_out.npy"), rtol=1e-5, atol=1e-6)
    assert "hybridsequential0_batchnorm0_running_mean" in sb.collect_params().keys()


def test_optimizers_match_mxnet(real_mxnet):
    ref = real_mxnet[3]["opt"]
    for k, (name, kw) in OPT_CFGS.items():
        upd = mx.optimizer.get_updater(mx.optimizer.create(name, **kw))
        w = mx.nd.array(ref["w0"])
        for g, r in zip(ref["gs"], ref["res"][k]):
            upd(0, mx.nd.array(g), w)
            np.testing.assert_allclose(w.asnumpy(), np.array(r, np.float32), rtol=2e-6,
                                       atol=1e-6, err_msg=k)


# ---------------------------------------------------------------------------------------
# Trainer and optimizers
# ---------------------------------------------------------------------------------------
def _dense(seed=1):
    net = nn.Dense(2, in_units=3)
    net.initialize()
    rs = np.random.RandomState(seed)
    net.weight.set_data(mx.nd.array(rs.randn(2, 3)))
    net.bias.set_data(mx.nd.array(rs.randn(2)))
    return net


def _backward(net, x, t):
    with mx.autograd.record():
        loss = ((net(x) - t) ** 2).sum()
    loss.backward()


def test_trainer_sgd_momentum_mults_and_null():
    rs = np.random.RandomState(25)
    x, t = rs.randn(4, 3).astype(np.float32), rs.randn(4, 2).astype(np.float32)
    net = _dense()
    net.bias.wd_mult = 0.0
    net.weight.lr_mult = 0.5
    tr = gluon.Trainer(net.collect_params(), "sgd",
                       {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01}, kvstore="local")
    W, B = net.weight.data().asnumpy().astype(np.float64), net.bias.data().asnumpy().astype(np.float64)
    mw, mb = np.zeros_like(W), np.zeros_like(B)
    for _ in range(3):
        _backward(net, mx.nd.array(x), mx.nd.array(t))
        tr.step(4)
        r = x @ W.T + B - t
        gw, gb = 2 * r.T @ x / 4, 2 * r.sum(0) / 4
        mw = 0.9 * mw - 0.05 * (gw + 0.01 * W)
        mb = 0.9 * mb - 0.1 * gb
        W, B = W + mw, B + mb
    np.testing.assert_allclose(net.weight.data().asnumpy(), W, rtol=1e-5)
    np.testing.assert_allclose(net.bias.data().asnumpy(), B, rtol=1e-5)
    assert tr.learning_rate == 0.1
    tr.set_learning_rate(0.2)
    assert tr.optimizer.learning_rate == 0.2
    # grad_req='null' params are skipped; an Optimizer instance's rescale_grad is the scale
    net2 = _dense()
    net2.bias.grad_req = "null"
    opt = mx.optimizer.SGD(learning_rate=0.1, rescale_grad=2.0)
    tr2 = gluon.Trainer([net2.weight, net2.bias], opt, kvstore=None)
    b0 = net2.bias.data().asnumpy().copy()
    _backward(net2, mx.nd.array(x), mx.nd.array(t))
    tr2.step(4)
    assert opt.rescale_grad == 0.5
    np.testing.assert_array_equal(net2.bias.data().asnumpy(), b0)
    with pytest.raises(ValueError, match="list or dict of Parameters"):
        gluon.Trainer([mx.nd.ones((2,))], "sgd")
    # without an MPI launcher a distributed kvstore has one worker (tests/test_kvstore*.py)
    tr = gluon.Trainer(net.collect_params(), "sgd", kvstore="dist_sync")
    assert tr.kvstore.type == "dist_sync" and tr.kvstore.num_workers == 1


def test_trainer_stale_split_states_scheduler(tmp_path):
    rs = np.random.RandomState(27)
    x, t = mx.nd.array(rs.randn(4, 3)), mx.nd.array(rs.randn(4, 2))
    net = _dense()
    tr = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.5})
    with pytest.raises(UserWarning, match="has not been updated by backward since last `step`"):
        tr.step(1)
    _backward(net, x, t)
    tr.allreduce_grads()
    net.weight.grad()[:] = mx.nd.clip(net.weight.grad(), -1.0, 1.0)
    tr.update(4)
    with pytest.raises(UserWarning, match="dense\\d+_bias"):      # sorted: bias first
        tr.step(1)
    w0 = net.weight.data().asnumpy().copy()
    tr.step(1, ignore_stale_grad=True)                  # everything stale: nothing moves
    np.testing.assert_array_equal(net.weight.data().asnumpy(), w0)
    # only the weight gets a fresh gradient: the bias is skipped
    with mx.autograd.record():
        loss = mx.nd.FullyConnected(x, net.weight.data(), no_bias=True, num_hidden=2).sum()
    loss.backward()
    b0 = net.bias.data().asnumpy().copy()
    tr.step(4, ignore_stale_grad=True)
    np.testing.assert_array_equal(net.bias.data().asnumpy(), b0)
    assert not np.array_equal(net.weight.data().asnumpy(), w0)
    # save/load states: a resumed trainer continues bit-identically
    f = str(tmp_path / "t.states")
    tr.save_states(f)
    twin = _dense()
    for p, q in zip(twin.collect_params().values(), net.collect_params().values()):
        p.set_data(q.data())
    tt = gluon.Trainer(twin.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.5})
    tt.load_states(f)
    for trainer, n in ((tr, net), (tt, twin)):
        _backward(n, x, t)
        trainer.step(4)
    np.testing.assert_array_equal(twin.weight.data().asnumpy(), net.weight.data().asnumpy())
    # an lr scheduler drives learning_rate through num_update
    sched = mx.lr_scheduler.FactorScheduler(step=1, factor=0.5, base_lr=1.0)
    ts = gluon.Trainer(net.collect_params(), "sgd", {"lr_scheduler": sched})
    for _ in range(3):
        _backward(net, x, t)
        ts.step(4)
    assert ts.learning_rate == pytest.approx(0.25)          # MXNet: lr halves while n > count + step
    with pytest.raises(UserWarning):
        ts.set_learning_rate(0.1)


def test_every_optimizer_reachable_by_name_through_trainer():
    rs = np.random.RandomState(3)
    x, t = mx.nd.array(rs.randn(4, 3)), mx.nd.array(rs.randn(4, 2))
    for name in ("sgd", "adam", "nag", "rmsprop", "adagrad", "adadelta", "adamax", "nadam",
                 "signum", "ftml", "ftrl", "sgld", "dcasgd", "lamb"):
        net = _dense()
        tr = gluon.Trainer(net.collect_params(), name)
        before = net.weight.data().asnumpy().copy()
        _backward(net, x, t)
        tr.step(4)
        after = net.weight.data().asnumpy()
        assert np.isfinite(after).all() and not np.array_equal(after, before), name


# ---------------------------------------------------------------------------------------
# gluon.utils
# ---------------------------------------------------------------------------------------
def test_utils(tmp_path):
    gu = gluon.utils
    x = mx.nd.arange(24).reshape((6, 4))
    parts = gu.split_and_load(x, [mx.cpu(0), mx.cpu(1), mx.cpu(2)])
    assert [str(p.context) for p in parts] == ["cpu(0)", "cpu(1)", "cpu(2)"]
    np.testing.assert_array_equal(np.concatenate([p.asnumpy() for p in parts]), x.asnumpy())
    assert [p.shape for p in gu.split_data(x, 4, even_split=False)] == [(2, 4), (2, 4),
                                                                         (1, 4), (1, 4)]
    assert [p.shape for p in gu.split_data(x, 2, batch_axis=1)] == [(6, 2), (6, 2)]
    with pytest.raises(ValueError, match="cannot be evenly split into 4 slices"):
        gu.split_data(x, 4)
    one = gu.split_and_load(np.ones((2, 2)), [mx.cpu()])
    assert isinstance(one, list) and one[0].dtype == np.float32
    a, b = mx.nd.array([[3.0, 0.0]]), mx.nd.array([4.0])
    norm = gu.clip_global_norm([a, b], 1.0)
    assert isinstance(norm, np.float32) and norm == pytest.approx(5.0)
    np.testing.assert_allclose(a.asnumpy(), [[0.6, 0.0]], rtol=1e-6)
    c = mx.nd.array([0.1, 0.2])
    gu.clip_global_norm([c], 5.0)
    np.testing.assert_allclose(c.asnumpy(), [0.1, 0.2], rtol=1e-6)
    n3 = gu.clip_global_norm([mx.nd.array([3.0, 4.0])], 5.0, check_isfinite=False)
    assert n3.shape == (1,) and n3.asnumpy()[0] == pytest.approx(5.0)
    with pytest.warns(UserWarning, match="nan or inf"), np.errstate(invalid="ignore"):
        inf = mx.nd.array([np.inf])
        gu.clip_global_norm([inf], 1.0)
    assert np.isnan(inf.asnumpy()[0])                   # inf * 0: scaled anyway
    f = tmp_path / "f.bin"
    f.write_bytes(b"agjit")
    import hashlib
    assert gu.check_sha1(str(f), hashlib.sha1(b"agjit").hexdigest())
    assert not gu.check_sha1(str(f), "0" * 40)
    assert gu.download("http://example.com/f.bin", path=str(tmp_path)) == str(f)
    with pytest.raises(MXNetError, match="no network"):
        gu.download("http://example.com/missing.bin", path=str(tmp_path))


# ---------------------------------------------------------------------------------------
# the mxnet alias and an unchanged MXNet 1.x Gluon program
# ---------------------------------------------------------------------------------------
ALIAS_CHECK = r"""
import sys, agjit
agjit.alias_as_mxnet()
from mxnet import gluon, nd, autograd, sym
from mxnet.gluon import nn
import mxnet.gluon.data.vision.transforms as T
import mxnet.symbol
import mxnet.gluon.nn
import mxnet as mx
ok = [gluon is agjit.gluon, nd is agjit.nd, autograd is agjit.autograd, nn is agjit.gluon.nn,
      T is agjit.gluon.data.vision.transforms, sym is agjit.symbol, mxnet.symbol is agjit.symbol,
      mx is agjit, sys.modules['mxnet.gluon.nn'] is agjit.gluon.nn]
try:
    import mxnet.no_such_module
    ok.append(False)
except ImportError:
    ok.append(True)
print(ok)
"""

TUTORIAL = r"""
# An MXNet 1.x "Gluon crash course" style program, unchanged.
import mxnet as mx
from mxnet import nd, autograd, gluon
from mxnet.gluon import nn
import numpy as np

mx.random.seed(1)
np.random.seed(1)
X = nd.random.normal(shape=(256, 10))
true_w = nd.random.normal(shape=(10, 3))
y = nd.argmax(nd.dot(X, true_w), axis=1)

dataset = gluon.data.ArrayDataset(X, y)
loader = gluon.data.DataLoader(dataset, batch_size=32, shuffle=True)

net = nn.Sequential()
with net.name_scope():
    net.add(nn.Dense(32, activation='relu'))
    net.add(nn.Dense(3))
net.initialize(mx.init.Xavier(), ctx=mx.cpu())
softmax_cross_entropy = gluon.loss.SoftmaxCrossEntropyLoss()
trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})

def acc(output, label):
    return (output.argmax(axis=1) == label.astype('float32')).mean().asscalar()

for epoch in range(5):
    train_loss, train_acc = 0., 0.
    for data, label in loader:
        with autograd.record():
            output = net(data)
            loss = softmax_cross_entropy(output, label)
        loss.backward()
        trainer.step(batch_size=data.shape[0])
        train_loss += loss.mean().asscalar()
        train_acc += acc(output, label)
    print("Epoch %d: loss %.3f, train acc %.3f" % (epoch, train_loss / len(loader),
                                                   train_acc / len(loader)))
net.save_parameters('net.params')
net2 = nn.Sequential()
with net2.name_scope():
    net2.add(nn.Dense(32, activation='relu'))
    net2.add(nn.Dense(3))
net2.load_parameters('net.params', ctx=mx.cpu())
print("FINAL", acc(net2(X), y))
"""


def _run_agjit(code, cwd, args=()):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", code] + list(args), capture_output=True,
                       text=True, timeout=240, cwd=cwd, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def test_mxnet_alias_gives_agjit_modules(tmp_path):
    out = _run_agjit(ALIAS_CHECK, str(tmp_path))
    assert out.strip().splitlines()[-1] == str([True] * 10)


def test_gluon_tutorial_program_runs_unchanged(tmp_path):
    prog = tmp_path / "crash_course.py"
    prog.write_text(TUTORIAL)
    out = _run_agjit("import agjit, runpy; agjit.alias_as_mxnet(); "
                     "runpy.run_path(%r, run_name='__main__')" % str(prog), str(tmp_path))
    lines = out.strip().splitlines()
    assert [ln.split(":")[0] for ln in lines[:5]] == ["Epoch %d" % i for i in range(5)]
    losses = [float(ln.split("loss ")[1].split(",")[0]) for ln in lines[:5]]
    assert losses[-1] < 0.7 * losses[0]
    assert float(lines[-1].split()[1]) > 0.8
