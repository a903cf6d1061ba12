"""mx.nd.save/load (MXNet's binary NDArray list format), checkpoints (mx.model), the runnable
Model, export_recorded, and interoperability with a real MXNet 1.9.1 when one is installed.

The real-MXNet tests run MXNet in a *subprocess* (never imported here) and skip when no
interpreter with MXNet is found: $AGJIT_MXNET_PYTHON, ../shared/oracle/.mxenv/bin/python or
/work/mxenv/bin/python.
"""
import json
import os
import re
import struct
import subprocess
import textwrap

import numpy as np
import pytest

import agjit as mx
from agjit.ndarray import utils as ndutils
from agjit.model import Model

DTYPES = ["float32", "float64", "float16", "uint8", "int32", "int8", "int64", "bool"]


def _rand(rs, shape, dtype):
    if dtype == "bool":
        return rs.rand(*shape) > 0.5
    if np.dtype(dtype).kind == "f":
        return rs.randn(*shape).astype(dtype)
    info = np.iinfo(dtype)
    return rs.randint(max(info.min, -100), min(info.max, 100), size=shape).astype(dtype)


def _nd(a):
    return mx.nd.array(a, dtype=a.dtype)


# ---------------------------------------------------------------------------------------
# the NDArray file format
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_list_and_dict_every_dtype(tmp_path, dtype):
    rs = np.random.RandomState(0)
    arrays = [_rand(rs, s, dtype) for s in [(3,), (2, 3), (2, 1, 4), (1, 1, 1, 1, 5)]]
    f = str(tmp_path / "l.params")
    mx.nd.save(f, [_nd(a) for a in arrays])
    back = mx.nd.load(f)
    assert isinstance(back, list) and len(back) == len(arrays)
    for a, b in zip(arrays, back):
        assert b.dtype == a.dtype.type and b.shape == a.shape
        np.testing.assert_array_equal(b.asnumpy(), a)
    d = {"arg:w%d" % k: _nd(a) for k, a in enumerate(arrays)}
    mx.nd.save(f, d)
    back = mx.nd.load(f)
    assert isinstance(back, dict) and list(back) == list(d)        # file order kept
    for k in d:
        np.testing.assert_array_equal(back[k].asnumpy(), d[k].asnumpy())
        assert back[k].dtype == d[k].dtype
    assert ndutils.load_frombuffer(open(f, "rb").read()).keys() == d.keys()


def test_single_array_empty_list_and_special_values(tmp_path):
    f = str(tmp_path / "x.params")
    mx.nd.save(f, mx.nd.array([1, 2]))
    assert [a.asnumpy().tolist() for a in mx.nd.load(f)] == [[1.0, 2.0]]
    mx.nd.save(f, [])
    assert mx.nd.load(f) == []
    mx.nd.save(f, {})                       # no names: MXNet loads an empty dict as []
    assert mx.nd.load(f) == []
    v = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45], dtype=np.float32)
    mx.nd.save(f, {"ünïcode name": _nd(v)})
    back = mx.nd.load(f)["ünïcode name"].asnumpy()
    assert back.tobytes() == v.tobytes()    # bit-exact, NaN and -0.0 included


def test_zero_dim_and_zero_size_use_v3(tmp_path):
    f = str(tmp_path / "v3.params")
    scalar = _nd(np.array(3.5, dtype=np.float32))
    empty = mx.nd.zeros((0, 3))
    mx.nd.save(f, [scalar, empty, mx.nd.ones((2,))])
    raw = open(f, "rb").read()
    assert struct.unpack_from("<I", raw, 24)[0] == ndutils.V3_MAGIC
    back = mx.nd.load(f)
    assert back[0].shape == () and back[0].asnumpy() == 3.5
    assert back[1].shape == (0, 3)
    assert back[2].shape == (2,)


# What MXNet 1.9.1 wrote for mx.nd.save(f, {'a': mx.nd.array([[1,2,3]]),
# 'b': mx.nd.array([1,2], dtype='int64')}) -- field by field:
MXNET_DICT_FILE = bytes.fromhex(
    "1201000000000000"                  # uint64 list magic 0x112
    "0000000000000000"                  # uint64 reserved
    "0200000000000000"                  # uint64 two arrays
    "c9fa93f9" "00000000"               # V2 magic 0xF993FAC9, storage type 0 (dense)
    "02000000" "0100000000000000" "0300000000000000"   # ndim 2, dims 1, 3 (int64)
    "01000000" "00000000"               # context: dev_type 1 (cpu), dev_id 0
    "00000000"                          # type flag 0 (float32)
    "0000803f" "00000040" "00004040"    # 1.0 2.0 3.0
    "c9fa93f9" "00000000" "01000000" "0200000000000000"
    "01000000" "00000000" "06000000"    # type flag 6 (int64)
    "0100000000000000" "0200000000000000"
    "0200000000000000"                  # uint64 two names
    "0100000000000000" "61"             # "a"
    "0100000000000000" "62")            # "b"


def test_byte_exact_header_and_layout(tmp_path):
    f = str(tmp_path / "d.params")
    mx.nd.save(f, {"a": mx.nd.array([[1, 2, 3]]), "b": mx.nd.array([1, 2], dtype="int64")})
    assert open(f, "rb").read() == MXNET_DICT_FILE
    back = mx.nd.load(f)
    assert back["a"].asnumpy().tolist() == [[1.0, 2.0, 3.0]]
    assert back["b"].dtype == np.int64
    # list form: no names, float16 payload
    mx.nd.save(f, [mx.nd.array([1.5], dtype="float16")])
    assert open(f, "rb").read().hex() == (
        "1201000000000000" "0000000000000000" "0100000000000000"
        "c9fa93f9" "00000000" "01000000" "0100000000000000"
        "01000000" "00000000" "02000000" "003e" "0000000000000000")


def test_reads_mxnet_bool_v3_and_legacy_layouts():
    # bool (type flag 7), as MXNet 1.9.1 wrote mx.nd.array([1, 2]).astype('bool')
    b = ndutils.load_frombuffer(bytes.fromhex(
        "120100000000000000000000000000000100000000000000c9fa93f900000000010000000200000000"
        "000000010000000000000007000000010100000000000000000000"))
    assert b[0].dtype == np.bool_ and b[0].asnumpy().tolist() == [True, True]
    # V3 0-d scalar, as MXNet wrote it under np_shape(True)
    s = ndutils.load_frombuffer(bytes.fromhex(
        "120100000000000000000000000000000100000000000000" "cafa93f9" "00000000" "00000000"
        "01000000" "00000000" "00000000" "00004040" "0000000000000000"))
    assert s[0].shape == () and float(s[0].asnumpy()) == 3.0
    head = struct.pack("<QQQ", 0x112, 0, 2)
    # V1: magic, uint32 ndim, int64 dims, context, type flag, data
    v1 = struct.pack("<IIqqiii", ndutils.V1_MAGIC, 2, 2, 2, 1, 0, 1) + \
        np.arange(4, dtype="<f8").tobytes()
    # pre-V1: no magic, uint32 ndim, uint32 dims
    v0 = struct.pack("<IIiii", 1, 3, 1, 0, 4) + np.array([7, 8, 9], "<i4").tobytes()
    out = ndutils.load_frombuffer(head + v1 + v0 + struct.pack("<Q", 0))
    assert out[0].dtype == np.float64 and out[0].asnumpy().tolist() == [[0, 1], [2, 3]]
    assert out[1].dtype == np.int32 and out[1].asnumpy().tolist() == [7, 8, 9]
    # a "none" NDArray (V2 with ndim 0) loads as None
    none = struct.pack("<Iii", ndutils.V2_MAGIC, -1, 0)
    assert ndutils.load_frombuffer(head[:16] + struct.pack("<Q", 1) + none
                                   + struct.pack("<Q", 0)) == [None]


def _offset(msg):
    m = re.search(r"at byte offset (\d+)", msg)
    assert m, msg
    return int(m.group(1))


def test_truncation_at_every_offset_names_file_and_offset(tmp_path):
    good = ndutils.save_tobuffer({"w": mx.nd.ones((2, 3)), "bias": mx.nd.zeros((4,), dtype="int8")})
    f = str(tmp_path / "cut.params")
    for cut in range(len(good)):
        with open(f, "wb") as fh:
            fh.write(good[:cut])
        with pytest.raises(mx.MXNetError) as ei:
            mx.nd.load(f)
        msg = str(ei.value)
        assert "cut.params" in msg and "truncated" in msg, msg
        assert _offset(msg) <= cut, (cut, msg)


@pytest.mark.parametrize("patch, what", [
    ((0, b"\x13"), "list header"),                    # list magic
    ((24, b"\x00\x00\x00\x77"), "neither an NDArray magic"),
    ((28, b"\x02"), "csr storage"),
    ((28, b"\x09"), "unknown storage type"),
    ((32, b"\x40"), "invalid number of dimensions"),
    ((52, b"\x07"), "unknown device type"),
    ((60, b"\x0d"), "unknown type flag 13"),
    ((16, b"\xff\xff"), "array count of 65535"),
])
def test_corruption_is_an_mxnet_error_with_offset(tmp_path, patch, what):
    raw = bytearray(ndutils.save_tobuffer({"w": mx.nd.ones((2, 3))}))
    at, b = patch
    raw[at:at + len(b)] = b
    f = str(tmp_path / "bad.params")
    open(f, "wb").write(bytes(raw))
    with pytest.raises(mx.MXNetError, match=what) as ei:
        mx.nd.load(f)
    assert "bad.params" in str(ei.value) and _offset(str(ei.value)) == at


def test_name_count_mismatch_and_bad_utf8(tmp_path):
    raw = bytearray(ndutils.save_tobuffer({"w": mx.nd.ones((1,))}))
    names_at = len(raw) - 8 - 1 - 8
    bad = raw[:names_at] + struct.pack("<Q", 3) + raw[names_at + 8:]
    with pytest.raises(mx.MXNetError, match="1 arrays but 3 names"):
        ndutils.load_frombuffer(bytes(bad))
    bad = raw[:-1] + b"\xff"
    with pytest.raises(mx.MXNetError, match="not valid UTF-8"):
        ndutils.load_frombuffer(bytes(bad))


def test_bad_arguments(tmp_path):
    f = str(tmp_path / "a.params")
    with pytest.raises(TypeError):
        mx.nd.save(f, [1, 2])
    with pytest.raises(TypeError):
        mx.nd.save(f, {1: mx.nd.ones((1,))})
    with pytest.raises(ValueError):
        mx.nd.save(f, (mx.nd.ones((1,)),))
    with pytest.raises(TypeError):
        mx.nd.load(123)
    with pytest.raises(mx.MXNetError, match="nope.params"):
        mx.nd.load(str(tmp_path / "nope.params"))
    with pytest.raises(mx.MXNetError, match="complex128"):
        mx.nd.save(f, [mx.nd.NDArray(np.ones(2, dtype=np.complex128))])
    assert not os.path.exists(f)
    mx.nd.save(tmp_path / "pathlike.params", [mx.nd.ones((1,))])      # os.PathLike accepted
    assert len(mx.nd.load(tmp_path / "pathlike.params")) == 1


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path, monkeypatch):
    f = str(tmp_path / "model.params")
    mx.nd.save(f, {"old": mx.nd.ones((2,))})
    before = open(f, "rb").read()
    real = ndutils._encode_array
    calls = []

    def failing(a, where):
        calls.append(where)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        yield from real(a, where)

    monkeypatch.setattr(ndutils, "_encode_array", failing)
    with pytest.raises(OSError, match="simulated"):
        mx.nd.save(f, {"a": mx.nd.ones((1000,)), "b": mx.nd.ones((3,))})
    assert open(f, "rb").read() == before
    assert os.listdir(tmp_path) == ["model.params"]      # no temporary file left behind
    g = str(tmp_path / "new.params")
    with pytest.raises(OSError):
        calls.clear()
        mx.nd.save(g, [mx.nd.ones((1,)), mx.nd.ones((1,))])
    assert not os.path.exists(g)
    assert sorted(os.listdir(tmp_path)) == ["model.params"]


# ---------------------------------------------------------------------------------------
# checkpoints and the runnable Model
# ---------------------------------------------------------------------------------------
def _mlp():
    d = mx.sym.Variable("data")
    h = mx.sym.FullyConnected(d, num_hidden=16, name="fc1")
    h = mx.sym.BatchNorm(h, name="bn1")
    h = mx.sym.Activation(h, act_type="relu", name="relu1")
    h = mx.sym.Dropout(h, p=0.5, name="drop1")
    h = mx.sym.FullyConnected(h, num_hidden=3, name="fc2")
    return mx.sym.SoftmaxOutput(h, name="softmax")


def _mlp_params(sym, seed=0, n_in=5):
    rs = np.random.RandomState(seed)
    arg_shapes, _o, aux_shapes = sym.infer_shape(data=(4, n_in))
    args = {n: mx.nd.array(rs.randn(*s) * 0.5) for n, s in zip(sym.list_arguments(), arg_shapes)
            if n not in ("data", "softmax_label")}
    aux = {"bn1_moving_mean": mx.nd.array(rs.randn(16) * 0.1),
           "bn1_moving_var": mx.nd.array(rs.rand(16) + 0.5)}
    return args, aux


def _numpy_mlp(x, a, aux):
    h = x @ a["fc1_weight"].asnumpy().T + a["fc1_bias"].asnumpy()
    h = (h - aux["bn1_moving_mean"].asnumpy()) / np.sqrt(aux["bn1_moving_var"].asnumpy() + 1e-3)
    h = h + a["bn1_beta"].asnumpy()          # fix_gamma=True (MXNet's default): gamma is 1
    h = np.maximum(h, 0) @ a["fc2_weight"].asnumpy().T + a["fc2_bias"].asnumpy()
    e = np.exp(h - h.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_checkpoint_round_trip(tmp_path):
    sym = _mlp()
    args, aux = _mlp_params(sym)
    prefix = str(tmp_path / "mlp")
    files = mx.model.save_checkpoint(prefix, 7, sym, args, aux)
    assert files == (prefix + "-symbol.json", prefix + "-0007.params")
    assert set(mx.nd.load(files[1])) == {"arg:" + k for k in args} | {"aux:" + k for k in aux}
    sym2, args2, aux2 = mx.model.load_checkpoint(prefix, 7)
    assert sym2.tojson() == sym.tojson()
    assert set(args2) == set(args) and set(aux2) == set(aux)
    for k in args:
        np.testing.assert_array_equal(args2[k].asnumpy(), args[k].asnumpy())
    assert mx.model.load_params(prefix, 7)[1].keys() == aux.keys()
    with pytest.raises(mx.MXNetError, match="-0008.params"):
        mx.model.load_checkpoint(prefix, 8)


def test_export_validates_parameters(tmp_path):
    sym = _mlp()
    args, aux = _mlp_params(sym)
    p = str(tmp_path / "m")
    with pytest.raises(mx.MXNetError, match="'fc3_weight'.*not an argument"):
        mx.model.export(sym, dict(args, fc3_weight=mx.nd.ones((1,))), aux, p, 0)
    with pytest.raises(mx.MXNetError, match="auxiliary state: pass it in aux_params"):
        mx.model.export(sym, dict(args, **aux), {}, p, 0)
    with pytest.raises(mx.MXNetError, match="no value for the auxiliary"):
        mx.model.export(sym, args, {}, p, 0)
    with pytest.raises(mx.MXNetError, match="shapes do not fit"):
        mx.model.export(sym, dict(args, bn1_gamma=mx.nd.ones((7,))), aux, p, 0)
    with pytest.raises(TypeError):
        mx.model.export(sym, args, aux, p, -1)
    assert os.listdir(tmp_path) == []
    # a non-checkpoint key in a params file
    mx.nd.save(p + "-0000.params", {"weird": mx.nd.ones((1,))})
    with pytest.raises(mx.MXNetError, match="'weird'"):
        mx.model.load_params(p, 0)


def test_model_predict_matches_reference(tmp_path):
    sym = _mlp()
    args, aux = _mlp_params(sym)
    prefix = str(tmp_path / "mlp")
    mx.model.export(sym, args, aux, prefix, 0)
    m = Model.load(prefix, 0)
    assert m.data_names == ["data", "softmax_label"]
    assert isinstance(m.symbol, mx.sym.Symbol) and set(m.aux_params) == set(aux)
    x = np.random.RandomState(1).randn(4, 5).astype(np.float32)
    ref = _numpy_mlp(x, args, aux)
    out = m.predict(data=mx.nd.array(x))          # label not needed: zeros of inferred shape
    np.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-5, atol=1e-6)
    again = m(x)                                  # positional, NumPy input, same executor
    np.testing.assert_allclose(again.asnumpy(), ref, rtol=1e-5, atol=1e-6)
    small = m(x[:2])                              # a new batch size binds a new executor
    np.testing.assert_allclose(small.asnumpy(), ref[:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.asnumpy(), ref, rtol=1e-5, atol=1e-6)   # outputs are fresh
    with pytest.raises(mx.MXNetError, match="fc1_weight.*parameter"):
        m.predict(data=x, fc1_weight=x)
    with pytest.raises(mx.MXNetError, match="not an input"):
        m.predict(date=x)
    with pytest.raises(mx.MXNetError):
        m.predict(data=np.ones((4, 6), np.float32))
    # a model re-saved from memory loads the same
    m.save(str(tmp_path / "again"), 2)
    np.testing.assert_allclose(Model.load(str(tmp_path / "again"), 2)(x).asnumpy(), ref,
                               rtol=1e-5, atol=1e-6)


def test_model_multiple_outputs_and_missing_input():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    w = mx.sym.var("w")
    g = mx.sym.Group([mx.sym.broadcast_mul(a, w), a + b])
    m = Model(g, {"w": mx.nd.array([2.0, 3.0])})
    assert m.data_names == ["a", "b"]
    o1, o2 = m.predict(a=mx.nd.array([1.0, 1.0]), b=mx.nd.array([5.0, 6.0]))
    assert o1.asnumpy().tolist() == [2.0, 3.0] and o2.asnumpy().tolist() == [6.0, 7.0]
    with pytest.raises(mx.MXNetError, match="missing input"):
        m.predict(a=mx.nd.array([1.0, 1.0]))
    with pytest.raises(mx.MXNetError, match="not an argument"):
        Model(g, {"zz": mx.nd.ones((1,))})
    assert Model(g, {"zz": mx.nd.ones((1,))}, allow_extra_params=True).data_names == \
        ["a", "w", "b"]


def _recorded_mlp(rs):
    P = {"w1": rs.randn(8, 5), "b1": rs.randn(8), "gamma": rs.rand(8) + 0.5,
         "beta": rs.randn(8), "mm": rs.randn(8) * 0.1, "mv": rs.rand(8) + 0.5,
         "w2": rs.randn(3, 8), "b2": rs.randn(3)}
    P = {k: mx.nd.array(v) for k, v in P.items()}
    for k in ("w1", "b1", "gamma", "beta", "w2", "b2"):
        P[k].attach_grad()
    return P


def _run_recorded(P, x):
    h = mx.nd.FullyConnected(x, P["w1"], P["b1"], num_hidden=8)
    h = mx.nd.BatchNorm(h, P["gamma"], P["beta"], P["mm"], P["mv"])
    h = mx.nd.Dropout(mx.nd.relu(h), p=0.3)
    return mx.nd.softmax(mx.nd.FullyConnected(h, P["w2"], P["b2"], num_hidden=3))


def test_export_recorded_renames_vars_and_runs(tmp_path):
    rs = np.random.RandomState(3)
    P = _recorded_mlp(rs)
    x = mx.nd.array(rs.randn(4, 5))
    with mx.autograd.record(train_mode=False):
        out = _run_recorded(P, x)
    assert all(re.match(r"(var|null)\d+$", n) for n in mx.autograd.get_symbol(out).list_inputs())
    prefix = str(tmp_path / "rec")
    sym, args, aux = mx.model.export_recorded(out, prefix, 0, params=P, inputs={"data": x})
    assert sym.list_arguments() == ["data", "w1", "b1", "gamma", "beta", "w2", "b2"]
    assert sym.list_auxiliary_states() == ["mm", "mv"] and set(aux) == {"mm", "mv"}
    m = Model.load(prefix, 0)
    assert m.data_names == ["data"]
    np.testing.assert_allclose(m(x).asnumpy(), out.asnumpy(), rtol=1e-5, atol=1e-6)
    with mx.autograd.record():
        out2 = _run_recorded(P, x)
    with pytest.raises(mx.MXNetError, match="named by neither params nor inputs"):
        mx.model.export_recorded(out2, prefix, 1, params=P)
    with pytest.raises(mx.MXNetError, match="not a leaf"):
        mx.model.export_recorded(out2, prefix, 1, params=dict(P, extra=mx.nd.ones((2,))),
                                 inputs={"data": x})
    sym_b, args_b, _ = mx.model.export_recorded(out2, prefix, 1,
                                                params={k: v for k, v in P.items() if k != "b2"},
                                                inputs={"data": x}, bake_constants=True)
    baked = [k for k in args_b if k not in P]
    assert len(baked) == 1 and re.match(r"var\d+$", baked[0])
    np.testing.assert_array_equal(args_b[baked[0]].asnumpy(), P["b2"].asnumpy())
    assert not os.path.exists(prefix + "-0002.params")


# ---------------------------------------------------------------------------------------
# real MXNet 1.9.1 (subprocess)
# ---------------------------------------------------------------------------------------
def _mxnet_python():
    here = os.path.dirname(os.path.abspath(__file__))
    cands = [os.environ.get("AGJIT_MXNET_PYTHON"),
             os.path.join(here, "..", "..", "shared", "oracle", ".mxenv", "bin", "python"),
             "/work/mxenv/bin/python"]
    for c in cands:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


MXNET_SCRIPT = textwrap.dedent(r"""
    import json, sys, numpy as np, mxnet as mx
    work = sys.argv[1]
    res = {}
    # 1. a file agjit wrote: every dtype, list and dict form
    d = mx.nd.load(work + "/agjit_dict.params")
    l = mx.nd.load(work + "/agjit_list.params")
    ref = np.load(work + "/ref.npz")
    res["dict_equal"] = sorted(k for k, v in d.items() if v.dtype == ref[k].dtype
                               and v.shape == ref[k].shape and (v.asnumpy() == ref[k]).all())
    res["list_len"] = len(l)
    res["list_equal"] = all((a.asnumpy() == ref[k]).all() for a, k in zip(l, sorted(ref.files)))
    # 2. a file MXNet writes, for agjit to read
    rs = np.random.RandomState(5)
    out = {"arg:w": mx.nd.array(rs.randn(3, 4)), "aux:m": mx.nd.array(rs.randn(2), dtype="float64"),
           "i8": mx.nd.array([1, -2, 3], dtype="int8"), "h": mx.nd.array([0.5, 2], dtype="float16")}
    mx.nd.save(work + "/mxnet.params", out)
    np.savez(work + "/mxnet_ref.npz", **{k.replace(":", "_"): v.asnumpy() for k, v in out.items()})
    # 3. agjit-exported models run in MXNet, predict mode
    x = np.load(work + "/x.npy")
    for name, data_name in (("mlp", "data"), ("rec", "data")):
        sym, args, aux = mx.model.load_checkpoint(work + "/" + name, 0)
        ex = sym.simple_bind(mx.cpu(), grad_req="null", **{data_name: x.shape})
        ex.copy_params_from(args, aux)
        y = ex.forward(is_train=False, **{data_name: mx.nd.array(x)})[0].asnumpy()
        np.save(work + "/mxnet_%s_out.npy" % name, y)
    # and through the Module API
    sym, args, aux = mx.model.load_checkpoint(work + "/mlp", 0)
    mod = mx.mod.Module(sym, data_names=["data"], label_names=["softmax_label"])
    mod.bind(data_shapes=[("data", x.shape)], for_training=False)
    mod.set_params(args, aux)
    y = mod.predict(mx.io.NDArrayIter(x, batch_size=x.shape[0])).asnumpy()
    np.save(work + "/mxnet_mlp_module_out.npy", y)
    print(json.dumps(res))
""")


@pytest.fixture(scope="module")
def real_mxnet(tmp_path_factory):
    py = _mxnet_python()
    if py is None:
        pytest.skip("no MXNet interpreter (set AGJIT_MXNET_PYTHON)")
    work = str(tmp_path_factory.mktemp("mxnet_interop"))
    rs = np.random.RandomState(4)
    ref = {"%d_%s" % (k, dt): _rand(rs, (2, 3) if k % 2 else (5,), dt)
           for k, dt in enumerate(DTYPES)}
    mx.nd.save(work + "/agjit_dict.params", {k: _nd(v) for k, v in ref.items()})
    mx.nd.save(work + "/agjit_list.params", [_nd(ref[k]) for k in sorted(ref)])
    np.savez(work + "/ref.npz", **ref)
    x = rs.randn(6, 5).astype(np.float32)
    np.save(work + "/x.npy", x)
    sym = _mlp()
    args, aux = _mlp_params(sym, seed=6)
    mx.model.export(sym, args, aux, work + "/mlp", 0)
    P = _recorded_mlp(rs)
    xin = mx.nd.array(x)
    with mx.autograd.record(train_mode=False):
        rec_out = _run_recorded(P, xin)
    mx.model.export_recorded(rec_out, work + "/rec", 0, params=P, inputs={"data": xin})
    try:
        proc = subprocess.run([py, "-c", MXNET_SCRIPT, work], capture_output=True, text=True,
                              timeout=240)
    except subprocess.TimeoutExpired:
        pytest.skip("the MXNet interpreter timed out")
    if proc.returncode != 0 and "No module named 'mxnet'" in proc.stderr:
        pytest.skip("%s cannot import mxnet" % py)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"work": work, "res": res, "ref": ref, "x": x, "args": args, "aux": aux,
            "rec_out": rec_out.asnumpy()}


@pytest.mark.oracle
def test_agjit_params_file_loads_in_real_mxnet(real_mxnet):
    res, ref = real_mxnet["res"], real_mxnet["ref"]
    assert res["dict_equal"] == sorted(ref)
    assert res["list_len"] == len(ref) and res["list_equal"]


@pytest.mark.oracle
def test_real_mxnet_params_file_loads_in_agjit(real_mxnet):
    work = real_mxnet["work"]
    got = mx.nd.load(work + "/mxnet.params")
    want = np.load(work + "/mxnet_ref.npz")
    assert list(got) == ["arg:w", "aux:m", "i8", "h"]
    for k, v in got.items():
        w = want[k.replace(":", "_")]
        assert v.dtype == w.dtype.type and v.shape == w.shape
        np.testing.assert_array_equal(v.asnumpy(), w)


@pytest.mark.oracle
def test_agjit_json_runs_in_real_mxnet(real_mxnet):
    """An MLP with BatchNorm and Dropout exported by agjit (symbol JSON + params) loads in
    real MXNet 1.9.1 and gives agjit's predict-mode outputs, through Executor and Module; so
    does a graph exported from an autograd recording."""
    work, x = real_mxnet["work"], real_mxnet["x"]
    ours = Model.load(work + "/mlp", 0)(x).asnumpy()
    np.testing.assert_allclose(ours, _numpy_mlp(x, real_mxnet["args"], real_mxnet["aux"]),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(work + "/mxnet_mlp_out.npy"), ours, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(work + "/mxnet_mlp_module_out.npy"), ours,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(work + "/mxnet_rec_out.npy"), real_mxnet["rec_out"],
                               rtol=1e-5, atol=1e-6)
