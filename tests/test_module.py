"""mx.mod.Module / BucketingModule: one training step against a NumPy reference, fit,
score/predict with padding, implicit reshape, checkpoints with optimizer states (and the safe
states format), bucketing's shared parameters, and MXNet's error classes."""
import logging
import os
import pickle

import numpy as np
import pytest

import agjit as mx
from agjit.base import MXNetError


def _net():
    fc = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=3, name="fc")
    return mx.sym.SoftmaxOutput(fc, name="softmax")


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_one_sgd_step_matches_numpy():
    rs = np.random.RandomState(1)
    W, b = rs.randn(3, 5) * 0.5, rs.randn(3) * 0.1
    X, y = rs.randn(4, 5), rs.randint(0, 3, size=4)
    mod = mx.mod.Module(_net())
    mod.bind(data_shapes=[("data", (4, 5))], label_shapes=[("softmax_label", (4,))])
    mod.init_params(arg_params={"fc_weight": mx.nd.array(W), "fc_bias": mx.nd.array(b)})
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.5, "wd": 0.1})
    batch = mx.io.DataBatch(data=[mx.nd.array(X)], label=[mx.nd.array(y)])
    mod.forward(batch, is_train=True)
    p = _softmax(X @ W.T + b)
    np.testing.assert_allclose(mod.get_outputs()[0].asnumpy(), p, rtol=1e-5)
    mod.backward()
    mod.update()
    g = (p - np.eye(3)[y]) / 4                         # rescale_grad = 1/batch_size
    arg, _ = mod.get_params()
    # wd only on *_weight (param_idx2name)
    np.testing.assert_allclose(arg["fc_weight"].asnumpy(), W - 0.5 * (g.T @ X + 0.1 * W), rtol=1e-5)
    np.testing.assert_allclose(arg["fc_bias"].asnumpy(), b - 0.5 * g.sum(0), rtol=1e-5, atol=1e-7)
    # an input gradient was not asked for
    with pytest.raises(AssertionError):
        mod.get_input_grads()


def test_fit_learns_and_logs(caplog):
    rs = np.random.RandomState(0)
    X = rs.randn(60, 5).astype("float32")
    Y = np.argmax(X @ rs.randn(5, 3), axis=1).astype("float32")     # linearly separable
    train = mx.io.NDArrayIter(X, Y, batch_size=10, shuffle=False)
    mod = mx.mod.Module(_net())
    with caplog.at_level(logging.INFO):
        mod.fit(train, eval_data=mx.io.NDArrayIter(X, Y, batch_size=10), num_epoch=8,
                optimizer="sgd", optimizer_params={"learning_rate": 1.0},
                initializer=mx.init.Xavier(), eval_metric="acc")
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs[0].startswith("Epoch[0] Train-accuracy=") and msgs[1].startswith("Epoch[0] Time cost=")
    assert any(m.startswith("Epoch[7] Validation-accuracy=") for m in msgs)
    assert mod.score(mx.io.NDArrayIter(X, Y, batch_size=10), "acc")[0][1] > 0.8


def test_predict_strips_padding_and_reshapes_for_another_batch_size():
    rs = np.random.RandomState(0)
    X = rs.randn(10, 5).astype("float32")
    it = mx.io.NDArrayIter(X, np.zeros(10), batch_size=4)
    mod = mx.mod.Module(_net())
    mod.bind(data_shapes=it.provide_data, label_shapes=it.provide_label, for_training=False)
    W = rs.randn(3, 5)
    mod.init_params(arg_params={"fc_weight": mx.nd.array(W), "fc_bias": mx.nd.zeros(3)})
    p = mod.predict(it)
    np.testing.assert_allclose(p.asnumpy(), _softmax(X @ W.T), rtol=1e-5)
    assert len(list(it)) == 0                           # reset before, not after
    mod.forward(mx.io.DataBatch([mx.nd.array(X[:7])], label=None), is_train=False)
    assert mod.get_outputs()[0].shape == (7, 3) and mod.data_shapes[0].shape == (7, 5)
    with pytest.raises(MXNetError, match="fc_weight"):
        mod.forward(mx.io.DataBatch([mx.nd.ones((7, 6))], label=None), is_train=False)


def test_checkpoint_and_optimizer_states_round_trip(tmp_path):
    rs = np.random.RandomState(0)
    mod = mx.mod.Module(_net())
    mod.bind(data_shapes=[("data", (4, 5))], label_shapes=[("softmax_label", (4,))])
    mod.init_params(arg_params={"fc_weight": mx.nd.array(rs.randn(3, 5)), "fc_bias": mx.nd.zeros(3)})
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    batch = mx.io.DataBatch(data=[mx.nd.array(rs.randn(4, 5))], label=[mx.nd.array([0, 1, 2, 1])])
    mod.forward_backward(batch)
    mod.update()
    prefix = str(tmp_path / "m")
    mod.save_checkpoint(prefix, 3, save_optimizer_states=True)
    assert sorted(os.listdir(tmp_path)) == ["m-0003.params", "m-0003.states", "m-symbol.json"]
    m2 = mx.mod.Module.load(prefix, 3, load_optimizer_states=True)
    assert [m2.binded, m2.params_initialized, m2.optimizer_initialized] == [False, True, False]
    m2.bind(data_shapes=[("data", (4, 5))], label_shapes=[("softmax_label", (4,))])
    m2.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    for m in (mod, m2):
        m.forward_backward(batch)
        m.update()
    for k in ("fc_weight", "fc_bias"):     # the momentum came back: the next steps agree
        np.testing.assert_array_equal(mod.get_params()[0][k].asnumpy(), m2.get_params()[0][k].asnumpy())
    # a pickled states file (what MXNet writes) is refused, never unpickled
    with open(prefix + "-0003.states", "wb") as f:
        pickle.dump({0: None}, f)
    with pytest.raises(MXNetError, match="pickle"):
        m2.load_optimizer_states(prefix + "-0003.states")


def test_bucketing_modules_share_parameters():
    def sym_gen(L):
        h = mx.sym.sum(mx.sym.Variable("data"), axis=1, keepdims=True) * (1.0 / L)
        fc = mx.sym.FullyConnected(h, num_hidden=2, name="fc")
        return mx.sym.LinearRegressionOutput(fc, mx.sym.Variable("lab"), name="out"), ("data",), ("lab",)

    mod = mx.mod.BucketingModule(sym_gen, default_bucket_key=5)
    mod.bind(data_shapes=[("data", (2, 5))], label_shapes=[("lab", (2, 2))])
    w, b = np.array([[0.5], [-1.0]]), np.array([0.1, 0.2])
    mod.init_params(arg_params={"fc_weight": mx.nd.array(w), "fc_bias": mx.nd.array(b)})
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1})
    rs = np.random.RandomState(0)
    for L in [5, 3, 2]:
        x, lab = rs.rand(2, L), rs.rand(2, 2)
        mod.forward(mx.io.DataBatch(data=[mx.nd.array(x)], label=[mx.nd.array(lab)], bucket_key=L,
                                    provide_data=[mx.io.DataDesc("data", (2, L))],
                                    provide_label=[mx.io.DataDesc("lab", (2, 2))]), is_train=True)
        h = x.mean(axis=1, keepdims=True)
        out = h @ w.T + b
        np.testing.assert_allclose(mod.get_outputs()[0].asnumpy(), out, rtol=1e-5)
        mod.backward()
        mod.update()
        g = (out - lab) / 2 / 2                        # / outputs per sample, / batch (rescale)
        w, b = w - 0.1 * g.T @ h, b - 0.1 * g.sum(0)
        assert mod.data_shapes[0].shape == (2, L)
    np.testing.assert_allclose(mod.get_params()[0]["fc_weight"].asnumpy(), w, rtol=1e-5)


def test_module_errors():
    net = _net()
    batch = mx.io.DataBatch(data=[mx.nd.ones((4, 5))], label=[mx.nd.zeros((4,))])
    mod = mx.mod.Module(net)
    with pytest.raises(AssertionError):
        mod.forward(batch)
    with pytest.raises(AssertionError):
        mod.get_params()
    with pytest.raises(ValueError):
        mx.mod.Module(net, data_names=["x"])
    with pytest.raises(ValueError):
        mx.mod.Module(net).bind(data_shapes=[("x", (4, 5))], label_shapes=[("softmax_label", (4,))])
    with pytest.raises(AssertionError):
        mx.mod.Module(net).bind(data_shapes=[("data", (4, 5))], label_shapes=[("softmax_label", (3,))])
    mod.bind(data_shapes=[("data", (4, 5))], label_shapes=[("softmax_label", (4,))])
    with pytest.raises(RuntimeError, match="fc_bias is not presented"):
        mod.init_params(arg_params={"fc_weight": mx.nd.ones((3, 5))})
    assert not mod.params_initialized
    mod.init_params()
    with pytest.raises(AssertionError):
        mod.update()
    with pytest.warns(UserWarning, match="already initialized"):
        mod.init_params()
