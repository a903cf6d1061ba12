"""LARS, LBSGD and the rest of MXNet 1.9.1's optimizer registry (issue 11): names,
constructor defaults and numbers against updates recorded with real MXNet 1.9.1
(tests/golden/optimizers_lars_mxnet.json, written by tests/golden/gen_optimizers_lars_mxnet.py).
"""
import json
import os

import numpy as np
import pytest

import agjit as mx
from agjit import gluon

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "golden", "optimizers_lars_mxnet.json")) as _f:
    GOLD = json.load(_f)
NAMES = GOLD["names"]


def _make(name, kw, names=True):
    kw = dict(kw)
    sched = kw.pop("lr_scheduler", None)
    if sched is not None:
        kw["lr_scheduler"] = mx.lr_scheduler.FactorScheduler(**sched[1])
    if names:
        kw["param_idx2name"] = dict(enumerate(NAMES))
    return mx.optimizer.create(name, **kw)


def _close(got, want, what):
    np.testing.assert_allclose(got, np.array(want, np.float32), rtol=2e-6, atol=1e-6,
                               err_msg=what)


@pytest.mark.parametrize("key", sorted(GOLD["cfgs"]))
def test_updater_list_calls_match_mxnet(key):
    name, kw = GOLD["cfgs"][key]
    upd = mx.optimizer.get_updater(_make(name, kw))
    ws = [mx.nd.array(w) for w in GOLD["w0"]]
    for k, (step, want) in enumerate(zip(GOLD["gs"], GOLD["res"][key])):
        upd(list(range(len(NAMES))), [mx.nd.array(g) for g in step], ws)
        for j, (w, r) in enumerate(zip(ws, want)):
            _close(w.asnumpy(), r, "%s step %d %s" % (key, k, NAMES[j]))


@pytest.mark.parametrize("key", sorted(GOLD["cfgs"]))
def test_update_with_one_index_matches_mxnet(key):
    name, kw = GOLD["cfgs"][key]
    opt = _make(name, kw)
    w = mx.nd.array(GOLD["w0"][0])
    st = opt.create_state(0, w)
    for k, (step, want) in enumerate(zip(GOLD["gs"], GOLD["single"][key])):
        opt.update(0, w, mx.nd.array(step[0]), st)
        _close(w.asnumpy(), want, "%s step %d" % (key, k))


@pytest.mark.parametrize("key", sorted(GOLD["extra_cfgs"]))
def test_other_registered_optimizers_match_mxnet(key):
    name, kw = GOLD["extra_cfgs"][key]
    upd = mx.optimizer.get_updater(mx.optimizer.create(name, **kw))
    w = mx.nd.array(GOLD["w0"][0])
    for k, (step, want) in enumerate(zip(GOLD["gs"], GOLD["extra"][key])):
        upd(0, mx.nd.array(step[0]), w)
        _close(w.asnumpy(), want, "%s step %d" % (key, k))


def test_every_mxnet_optimizer_name_exists_with_its_defaults():
    import inspect
    reg = mx.optimizer.Optimizer.opt_registry
    assert set(GOLD["registry"]) <= set(reg), set(GOLD["registry"]) - set(reg)
    for name, info in GOLD["registry"].items():
        cls = reg[name]
        assert cls.__name__ == info["class"], name
        sig = inspect.signature(cls.__init__)
        params = [[p.name, repr(p.default) if p.default is not inspect._empty else None]
                  for p in list(sig.parameters.values())[1:] if p.kind == p.POSITIONAL_OR_KEYWORD]
        if "__init__" not in cls.__dict__:
            params = []     # only the base class's arguments (MXNet: __init__(**kwargs))
        assert params == info["params"], (name, params, info["params"])


def test_lars_defaults_and_state():
    opt = mx.optimizer.create("lars")
    assert (opt.momentum, opt.eta, opt.eps, opt.momentum_correction, opt.lazy_update) == \
        (0.0, 0.001, 0, True, True)
    assert opt.create_state(0, mx.nd.ones((2,))) is None
    st = mx.optimizer.create("lars", momentum=0.9).create_state(0, mx.nd.ones((2, 3)))
    assert st.shape == (2, 3) and st.dtype == np.float32 and not st.asnumpy().any()
    # weight decay only for *_weight names (MXNet's LARS rule; the base keeps *_gamma too)
    o = mx.optimizer.create("lars", param_idx2name={0: "a_weight", 1: "a_gamma", 2: "a_bias"})
    assert o.wd_mult == {"a_gamma": 0.0, "a_bias": 0.0}
    lb = mx.optimizer.create("lbsgd")
    assert (lb.momentum, lb.warmup_strategy, lb.warmup_epochs, lb.batch_scale,
            lb.updates_per_epoch, lb.init_updates, lb.num_epochs) == (0.0, "linear", 5, 1, 32, 0, 60)
    with pytest.raises(AssertionError, match="Weight decay is not supported"):
        g = mx.optimizer.create("groupadagrad", wd=0.1)
        g.update(0, mx.nd.ones((2, 2)), mx.nd.ones((2, 2)), g.create_state(0, mx.nd.ones((2, 2))))


def test_lars_scales_the_weights_not_the_bias():
    """One step by hand: lr_i = lr*eta*|w|/(|g| + wd*|w|) for the weight, lr for the bias."""
    rs = np.random.RandomState(2)
    w, b = rs.randn(3, 4).astype(np.float32), rs.randn(3).astype(np.float32)
    gw, gb = rs.randn(3, 4).astype(np.float32), rs.randn(3).astype(np.float32)
    opt = mx.optimizer.create("lars", learning_rate=0.5, eta=0.01, wd=0.1,
                              param_idx2name={0: "fc_weight", 1: "fc_bias"})
    upd = mx.optimizer.get_updater(opt)
    W, B = mx.nd.array(w), mx.nd.array(b)
    upd([0, 1], [mx.nd.array(gw), mx.nd.array(gb)], [W, B])
    wn, gn = np.linalg.norm(w.astype(np.float64)), np.linalg.norm(gw.astype(np.float64))
    lr_w = 0.5 * 0.01 * wn / (gn + 0.1 * wn)
    np.testing.assert_allclose(W.asnumpy(), w - lr_w * (gw + 0.1 * w), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(B.asnumpy(), b - 0.5 * gb, rtol=1e-6, atol=1e-7)   # wd_mult 0


@pytest.mark.parametrize("name,kw", [("lars", {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01}),
                                     ("lbsgd", {"learning_rate": 0.1, "momentum": 0.9,
                                                "batch_scale": 2}),
                                     ("groupadagrad", {"learning_rate": 0.1}),
                                     ("ccsgd", {"learning_rate": 0.1})])
def test_trainer_uses_them_by_name(name, kw):
    """gluon.Trainer(..., name) gives what the optimizer's Updater gives on the same
    gradients.  As in MXNet, a Trainer hands the optimizer its Parameters (param_dict), not
    their names, so LARS scales the bias too."""
    rs = np.random.RandomState(3)
    x, t = mx.nd.array(rs.randn(4, 3)), mx.nd.array(rs.randn(4, 2))
    net = gluon.nn.Dense(2, in_units=3, use_bias=name != "groupadagrad")   # 2-D only
    net.initialize()
    net.weight.set_data(mx.nd.array(rs.randn(2, 3)))
    if net.bias is not None:
        net.bias.set_data(mx.nd.array(rs.randn(2)))
    params = list(net.collect_params().values())
    tr = gluon.Trainer(net.collect_params(), name, dict(kw))
    ref = mx.optimizer.create(name, rescale_grad=1.0 / 4, **kw)
    upd = mx.optimizer.get_updater(ref)
    shadow = [mx.nd.array(p.data().asnumpy()) for p in params]
    for _ in range(3):
        with mx.autograd.record():
            loss = ((net(x) - t) ** 2).sum()
        loss.backward()
        grads = [mx.nd.array(p.grad().asnumpy()) for p in params]
        tr.step(4)
        upd(list(range(len(params))), grads, shadow)
        for p, s in zip(params, shadow):
            np.testing.assert_allclose(p.data().asnumpy(), s.asnumpy(), rtol=1e-6, atol=1e-7,
                                       err_msg="%s %s" % (name, p.name))



@pytest.mark.parametrize("name", sorted(GOLD["trainer_cfgs"]))
def test_trainer_numbers_match_mxnet(name):
    rs = np.random.RandomState(3)
    x, t = mx.nd.array(rs.randn(4, 3)), mx.nd.array(rs.randn(4, 2))
    net = gluon.nn.Dense(2, in_units=3)
    net.initialize()
    net.weight.set_data(mx.nd.array(rs.randn(2, 3)))
    net.bias.set_data(mx.nd.array(rs.randn(2)))
    tr = gluon.Trainer(net.collect_params(), name, dict(GOLD["trainer_cfgs"][name]))
    for _ in range(3):
        with mx.autograd.record():
            loss = ((net(x) - t) ** 2).sum()
        loss.backward()
        tr.step(4)
    want_w, want_b = GOLD["trainer"][name]
    _close(net.weight.data().asnumpy(), want_w, name + " weight")
    _close(net.bias.data().asnumpy(), want_b, name + " bias")
