"""mx.rnn (MXNet 1.x's symbolic cells): the unrolled graphs' JSON equals MXNet 1.9.1's
(tests/golden/rnn_legacy_mxnet.json, recorded by tests/golden/gen_rnn_legacy_mxnet.py, which
also builds them here with --agjit); a fused RNN equals its unfused cells with unpacked
weights; the FusedRNN initializer; encode_sentences / BucketSentenceIter as MXNet gives them;
RNN checkpoints."""
import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import agjit as mx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
with open(os.path.join(HERE, "golden", "rnn_legacy_mxnet.json")) as _f:
    GOLD = json.load(_f)


@pytest.fixture(scope="module")
def built():
    """The generator's graphs built by agjit in a fresh process (fresh name counters)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    res = subprocess.run([sys.executable, os.path.join(HERE, "golden", "gen_rnn_legacy_mxnet.py"),
                          "--agjit"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


@pytest.mark.parametrize("case", sorted(GOLD))
def test_graph_json_equals_mxnet(built, case):
    want, got = GOLD[case], built[case]
    for key in ("arguments", "state_info", "n_outputs", "n_states"):
        assert got[key] == want[key], (case, key)
    assert got["json"]["nodes"] == want["json"]["nodes"]
    assert got["json"]["heads"] == want["json"]["heads"]


def _run(sym, args):
    ex = sym.bind(mx.cpu(), {k: mx.nd.array(v) for k, v in args.items()})
    return [o.asnumpy() for o in ex.forward()]


@pytest.mark.parametrize("mode,bi,layers", [("lstm", False, 2), ("gru", True, 1),
                                            ("rnn_tanh", False, 1), ("rnn_relu", True, 2)])
def test_fused_equals_unfused_with_unpacked_weights(mode, bi, layers):
    T, N, C, H = 3, 2, 4, 5
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fused = mx.rnn.FusedRNNCell(H, num_layers=layers, mode=mode, bidirectional=bi,
                                    prefix="f_", get_next_state=True)
        fo, fs = fused.unroll(T, mx.sym.var("data"), layout="TNC", merge_outputs=True)
    D = 2 if bi else 1
    n = len(fused._gate_names)
    size = (C + H + 2) * H * n * D + (layers - 1) * n * H * (H + D * H + 2) * D
    params = {"f_parameters": rng.uniform(-0.5, 0.5, size).astype(np.float32)}
    x = rng.uniform(-1, 1, (T, N, C)).astype(np.float32)
    zeros = np.zeros((D * layers, N, H), np.float32)
    states = {"f_begin_state_%d" % i: zeros for i in range(len(fused.state_shape))}
    fargs = dict(params, data=x)
    fsym = mx.sym.Group([fo] + fs)
    fargs = {k: v for k, v in dict(fargs, **states).items() if k in fsym.list_arguments()}
    fused_out = _run(fsym, fargs)[0]
    unfused = fused.unfuse()
    uo, _us = unfused.unroll(T, mx.sym.var("data"), layout="TNC", merge_outputs=True)
    unpacked = fused.unpack_weights({k: mx.nd.array(v) for k, v in params.items()})
    uargs = {k: v.asnumpy() for k, v in unpacked.items()}
    uargs["data"] = x
    uargs = unfused.pack_weights({k: mx.nd.array(v) for k, v in uargs.items()
                                  if k != "data"})
    uargs = {k: v.asnumpy() for k, v in uargs.items()}
    uargs["data"] = x
    missing = set(uo.list_arguments()) - set(uargs)
    assert not missing, missing
    np.testing.assert_allclose(_run(uo, {k: uargs[k] for k in uo.list_arguments()})[0],
                               fused_out, rtol=1e-4, atol=1e-5)
    back = fused.pack_weights(unpacked)
    np.testing.assert_array_equal(back["f_parameters"].asnumpy(), params["f_parameters"])


def test_fused_rnn_initializer_sets_forget_bias():
    cell = mx.rnn.FusedRNNCell(3, num_layers=1, mode="lstm", prefix="q_")
    attrs = cell._parameter.list_attr()
    assert json.loads(attrs["__init__"]) == ["fusedrnn", {"init": None, "num_hidden": 3,
                                                          "num_layers": 1, "mode": "lstm",
                                                          "bidirectional": False,
                                                          "forget_bias": 1.0}]   # MXNet's attr
    arr = mx.nd.zeros(((4 + 3 + 2) * 3 * 4,))
    init = mx.init.Uniform(0.1)
    init(mx.init.InitDesc("q_parameters", attrs=attrs), arr)
    parts = cell.unpack_weights({"q_parameters": arr})
    assert (parts["q_l0_i2h_f_bias"].asnumpy() == 1.0).all()
    w = parts["q_l0_i2h_i_weight"].asnumpy()
    assert w.shape == (3, 4) and np.abs(w).max() <= 0.1 and np.abs(w).max() > 0


def test_lstm_i2h_bias_init_attr():
    c = mx.rnn.LSTMCell(2, prefix="z_", forget_bias=0.5)
    assert c.params.get("i2h_bias").list_attr()["__init__"] == '["lstmbias", {"forget_bias": 0.5}]'


def test_encode_sentences_as_mxnet():
    assert mx.rnn.encode_sentences([["a", "b"], ["b", "c", "zz"]], invalid_label=0, start_label=0) == \
        ([[1, 2], [2, 3, 4]], {"\n": 0, "a": 1, "b": 2, "c": 3, "zz": 4})
    # MXNet 1.9.1 re-enters the unknown token at the next index (here 0)
    assert mx.rnn.encode_sentences([["a", "b"], ["q"]], vocab={"a": 1, "b": 2, "<unk>": 9},
                                   unknown_token="<unk>") == ([[1, 2], [0]], {"a": 1, "b": 2, "<unk>": 0})
    with pytest.raises(AssertionError, match="Unknown token q"):
        mx.rnn.encode_sentences([["q"]], vocab={"a": 1})


def test_bucket_sentence_iter_as_mxnet(capsys):
    sents = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [1, 1], [2, 2, 2]]
    it = mx.rnn.BucketSentenceIter(sents, 2, buckets=[3, 4], invalid_label=0)
    assert "discarded 0 sentences" in capsys.readouterr().out
    assert it.provide_data[0].shape == (2, 4) and it.default_bucket_key == 4
    batches = list(it)
    assert [b.bucket_key for b in batches] == [3, 3]        # 4 sentences fit bucket 3, 1 bucket 4
    b = batches[0]
    d, lab = b.data[0].asnumpy(), b.label[0].asnumpy()
    assert d.shape == (2, 3) and b.provide_data[0].shape == (2, 3)
    np.testing.assert_array_equal(lab[:, :-1], d[:, 1:])
    assert (lab[:, -1] == 0).all()
    tn = mx.rnn.BucketSentenceIter(sents, 2, invalid_label=0, layout="TN")
    assert "discarded 1 sentences" in capsys.readouterr().out
    assert tn.buckets == [2, 3] and tn.provide_data[0].shape == (3, 2)
    assert all(x.data[0].shape[1] == 2 for x in tn)


def test_rnn_checkpoint_round_trip(tmp_path):
    cell = mx.rnn.LSTMCell(2, prefix="c_")
    out, _ = cell.unroll(2, mx.sym.var("data"), merge_outputs=True)
    rng = np.random.default_rng(1)
    args = {"c_i2h_weight": mx.nd.array(rng.uniform(size=(8, 3))),
            "c_i2h_bias": mx.nd.array(rng.uniform(size=(8,))),
            "c_h2h_weight": mx.nd.array(rng.uniform(size=(8, 2))),
            "c_h2h_bias": mx.nd.array(rng.uniform(size=(8,)))}
    prefix = str(tmp_path / "m")
    mx.rnn.do_rnn_checkpoint(cell, prefix, period=2)(1, out, args, {})
    saved = mx.nd.load(prefix + "-0002.params")
    assert "arg:c_i2h_f_weight" in saved and saved["arg:c_i2h_f_weight"].shape == (2, 3)
    _s, arg, _aux = mx.rnn.load_rnn_checkpoint(cell, prefix, 2)
    for k, v in args.items():
        np.testing.assert_array_equal(arg[k].asnumpy(), v.asnumpy())


def test_zero_dims_of_creation_ops_are_inferred_from_consumers():
    """MXNet infers a zeros(shape=(0, H)) begin state's batch size from the FC it feeds."""
    z = mx.sym.zeros(shape=(0, 5))
    o = mx.sym.FullyConnected(mx.sym.var("d"), num_hidden=3, no_bias=True, name="a") + \
        mx.sym.FullyConnected(z, mx.sym.var("w"), num_hidden=3, no_bias=True, name="b")
    args, outs, _ = o.infer_shape(d=(2, 4))
    assert args == [(2, 4), (3, 4), (3, 5)] and outs == [(2, 3)]       # MXNet's answer
    ex = o.simple_bind(mx.cpu(), d=(2, 4))
    assert ex.forward()[0].shape == (2, 3)
    assert (mx.sym.zeros(shape=(0, 5)) + mx.sym.var("q")).infer_shape(q=(3, 5))[1] == [(3, 5)]
    assert mx.nd.zeros((0, 3)).shape == (0, 3)
