"""The Gluon training step's fast paths (issue 11 item 10): a hybridized network + hybridized
loss + ``gluon.Trainer`` step runs the same compiled program as the same math written with
``mx.jit`` (same kernel segments), gives the numbers of the unhybridized blocks and of the
``mx.jit`` step, and the shortcuts that skip per-step Python work -- the blocks' compiled
call (``HybridBlock._fast``), the Trainer's reuse of the last step's plan
(``Trainer._fast_update``), the backward's check of a composed call's speculation -- fall
back to the general path whenever what they assume stops holding."""
import warnings

import numpy as np
import pytest

import agjit as mx
from agjit import autograd, gluon, tape
from agjit.gluon import nn

RTOL, ATOL = 2e-5, 1e-6
OPT = {"learning_rate": 0.05, "momentum": 0.9, "wd": 1e-4}


def _weights(seed=0):
    r = np.random.RandomState(seed)
    return [(r.randn(16, 6) * 0.4).astype(np.float32), (r.randn(16) * 0.1).astype(np.float32),
            (r.randn(4, 16) * 0.4).astype(np.float32), (r.randn(4) * 0.1).astype(np.float32)]


def _data(batch=8, seed=1):
    r = np.random.RandomState(seed)
    return (mx.nd.array(r.randn(batch, 6).astype(np.float32)),
            mx.nd.array(r.randint(0, 4, size=batch).astype(np.float32)))


def _gluon(weights, hybrid):
    # fixed prefixes: every test's graphs are the same, their kernels compile once
    net = nn.HybridSequential(prefix="gsp_")
    with net.name_scope():
        net.add(nn.Dense(16, activation="relu", in_units=6), nn.Dense(4, in_units=16))
    net.initialize()
    params = list(net.collect_params().values())
    for p, w in zip(params, weights):
        p.set_data(mx.nd.array(w))
    loss = gluon.loss.SoftmaxCrossEntropyLoss(prefix="gspl_")
    if hybrid:
        net.hybridize()
        loss.hybridize()
    return net, loss, params


def _jit_fn(w):
    w1, b1, w2, b2 = w
    fc = mx.nd.FullyConnected

    def loss_fn(x, label):
        h = fc(mx.nd.relu(fc(x, w1, b1, num_hidden=16)), w2, b2, num_hidden=4)
        return -mx.nd.pick(mx.nd.log_softmax(h), label)
    return mx.jit(loss_fn)


def _segments(jf):
    return jf.source().count("\n# segment ")


def test_gluon_step_equals_jit_step_and_unhybridized_numbers_and_segments():
    weights = _weights()
    x, y = _data()
    hnet, hloss, hp = _gluon(weights, True)
    enet, eloss, ep = _gluon(weights, False)
    ht = gluon.Trainer(hnet.collect_params(), "sgd", dict(OPT))
    et = gluon.Trainer(enet.collect_params(), "sgd", dict(OPT))
    jw = [mx.nd.array(w) for w in weights]
    for a in jw:
        a.attach_grad()
    jf = _jit_fn(jw)
    jt = mx.Trainer(jw, "sgd", dict(OPT))
    for step in range(6):       # calls 1-2 run as two calls, then composed
        with autograd.record():
            hl = hloss(hnet(x), y)
        hl.backward()
        ht.step(8)
        with autograd.record():
            el = eloss(enet(x), y)
        el.backward()
        et.step(8)
        with autograd.record():
            jl = jf(x, y)
        jl.backward()
        jt.step(8)
        for a in (hl, el):
            np.testing.assert_allclose(a.asnumpy(), jl.asnumpy(), rtol=RTOL, atol=ATOL)
        for p, q, j in zip(hp, ep, jw):
            np.testing.assert_allclose(p.data().asnumpy(), j.asnumpy(), rtol=RTOL, atol=ATOL)
            np.testing.assert_allclose(q.data().asnumpy(), j.asnumpy(), rtol=RTOL, atol=ATOL)
            np.testing.assert_allclose(p.grad().asnumpy(), j.grad.asnumpy(), rtol=RTOL,
                                       atol=ATOL)
    # the composed call (the network's output passed straight in: the loss-only
    # composition) is one step-mode kernel with as many segments as mx.jit's: the loss's
    # per-sample mean of a 2-D prediction reduces nothing and is not in the graph
    ((key, cj),) = hloss._composed.items()
    assert key[2] is True
    assert "step mode (one forward+backward kernel" in cj.explain()
    assert "step mode (one forward+backward kernel" in jf.explain()
    assert cj.source().count("# ---- step") == 1 and jf.source().count("# ---- step") == 1
    assert " mean " not in cj.source() and "_broadcast_reduced" not in cj.source()
    assert _segments(jf) >= 1 and _segments(cj) == _segments(jf)
    # the Trainer reused its plan (the fast path) and the blocks took their compiled call
    assert ht._last is not None and hnet._fast is not None and hloss._fast is not None


def _train(net, loss, trainer, x, y, steps=1, **kw):
    for _ in range(steps):
        with autograd.record():
            lv = loss(net(x), y)
        lv.backward()
        trainer.step(8, **kw)


def test_trainer_fast_path_falls_back_when_parameters_change():
    weights = _weights(3)
    x, y = _data(seed=4)
    net, loss, params = _gluon(weights, True)
    ref, rloss, rparams = _gluon(weights, False)
    tr = gluon.Trainer(net.collect_params(), "sgd", dict(OPT))
    rt = gluon.Trainer(ref.collect_params(), "sgd", dict(OPT))

    def both(steps=1, **kw):
        _train(net, loss, tr, x, y, steps, **kw)
        _train(ref, rloss, rt, x, y, steps, **kw)
        for p, q in zip(params, rparams):
            np.testing.assert_allclose(p.data().asnumpy(), q.data().asnumpy(), rtol=RTOL,
                                       atol=ATOL)

    both(3)
    assert tr._last is not None
    # a frozen parameter: not updated, the others are (the fast path must see grad_req)
    for t in (params[0], rparams[0]):
        t.grad_req = "null"
    frozen = params[0].data().asnumpy().copy()
    before = params[2].data().asnumpy().copy()
    both(2)
    np.testing.assert_array_equal(params[0].data().asnumpy(), frozen)
    assert not np.allclose(params[2].data().asnumpy(), before)
    for t in (params[0], rparams[0]):
        t.grad_req = "write"
    both(2)
    # new data copied in (same buffers) and a replaced gradient buffer
    for p, q in zip(params, rparams):
        p.set_data(q.data())
    g = params[3].grad()
    g._data = np.zeros_like(g._data)
    both(2)
    # a gradient no backward wrote since the last step: the stale warning, as before
    with pytest.raises(UserWarning, match="has not been updated by backward"):
        tr.step(8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tr.step(8, ignore_stale_grad=True)      # nothing fresh: nothing moves
    both(1)


def test_block_fast_call_follows_hybridize_and_hooks():
    weights = _weights(5)
    x, _y = _data(seed=6)
    net, _loss, _p = _gluon(weights, True)
    eager, _l, _q = _gluon(weights, False)
    want = eager(x).asnumpy()
    for _ in range(2):
        np.testing.assert_allclose(net(x).asnumpy(), want, rtol=RTOL, atol=ATOL)
    assert net._fast is not None
    jf = net._jit
    hits = jf.cache_info().hits
    # turned off without clearing: runs eagerly (the jitted function is not called)
    net.hybridize(active=False, clear=False)
    assert net._fast is None
    np.testing.assert_allclose(net(x).asnumpy(), want, rtol=RTOL, atol=ATOL)
    assert jf.cache_info().hits == hits
    net.hybridize(active=True, clear=False)
    np.testing.assert_allclose(net(x).asnumpy(), want, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(net(x).asnumpy(), want, rtol=RTOL, atol=ATOL)
    assert net._jit is jf and jf.cache_info().hits > hits
    # a forward hook registered after the build runs
    seen = []
    h = net.register_forward_hook(lambda b, i, o: seen.append(o.shape))
    np.testing.assert_allclose(net(x).asnumpy(), want, rtol=RTOL, atol=ATOL)
    assert seen == [(8, 4)]
    h.detach()
    net(x)
    assert seen == [(8, 4)]
    # an input that is an NDArray subclass takes the general path with the same numbers
    class Sub(mx.nd.NDArray):
        __slots__ = ()
    s = mx.nd.array(x.asnumpy())
    s.__class__ = Sub
    np.testing.assert_allclose(net(s).asnumpy(), want, rtol=RTOL, atol=ATOL)


def test_composed_backward_with_other_head_gradients_after_fast_check():
    """The backward's first check (ONES for the loss, nothing else) takes the stash; an
    array of ones is still recognised, other head gradients run the ordinary kernels."""
    weights = _weights(7)
    x, y = _data(seed=8)
    net, loss, params = _gluon(weights, True)
    ref, rloss, rparams = _gluon(weights, False)
    for hg in (None, None, None, np.ones(8, np.float32), np.linspace(0.5, 2, 8)):
        with autograd.record():
            lv = loss(net(x), y)
        with autograd.record():
            rv = rloss(ref(x), y)
        g = None if hg is None else mx.nd.array(hg.astype(np.float32))
        lv.backward(g)
        rv.backward(g)
        for p, q in zip(params, rparams):
            np.testing.assert_allclose(p.grad().asnumpy(), q.grad().asnumpy(), rtol=RTOL,
                                       atol=ATOL)


def test_loss_only_composition_and_held_network_outputs():
    """``loss(net(x), y)`` composes to the loss alone and never computes the network's
    output on its own; an output the caller holds is the composed call's second output, and
    one held where the composition cannot see it (a tuple passed with ``*``) is computed
    when read -- with the numbers and gradients of the two calls in every case."""
    weights = _weights(9)
    x, y = _data(seed=10)
    net, loss, params = _gluon(weights, True)
    ref, rloss, rparams = _gluon(weights, False)

    def ref_grads(extra=0.0):
        with autograd.record():
            ro = ref(x)
            rl = rloss(ro, y)
            tot = rl.sum() + (ro * ro).sum() * extra
        tot.backward()
        return ro.asnumpy(), rl.asnumpy(), [q.grad().asnumpy() for q in rparams]

    def check(lv, grads_ref):
        for p, g in zip(params, grads_ref):
            np.testing.assert_allclose(p.grad().asnumpy(), g, rtol=RTOL, atol=ATOL)

    for _ in range(3):                  # calls 1-2 run as two calls
        with autograd.record():
            lv = loss(net(x), y)
        lv.backward()
    ro, rl, rg = ref_grads()
    runs = net._jit.cache_info().hits + net._jit.cache_info().misses
    with autograd.record():
        lv = loss(net(x), y)
    assert not tape.state.pending       # the unread network output was dropped
    lv.backward()
    np.testing.assert_allclose(lv.asnumpy(), rl, rtol=RTOL, atol=ATOL)
    check(lv, rg)
    # the network's own jitted function did not run: its output was never needed
    assert net._jit.cache_info().hits + net._jit.cache_info().misses == runs
    assert (net._jit, 0, True) in loss._composed
    # held by the caller: the two-output composition, the output readable afterwards
    with autograd.record():
        out = net(x)
        lv = loss(out, y)
    assert (net._jit, 0, False) in loss._composed
    assert out._entry is not None and out._entry[0] is lv._entry[0]
    lv.backward()
    np.testing.assert_allclose(out.asnumpy(), ro, rtol=RTOL, atol=ATOL)
    check(lv, rg)
    # held by a tuple passed with *: loss-only composition, the output computed when read
    # (inside the scope: its own tape node, its gradient joins the loss's)
    ro2, rl2, rg2 = ref_grads(0.1)
    with autograd.record():
        t = (net(x), y)
        lv = loss(*t)
        tot = lv.sum() + (t[0] * t[0]).sum() * 0.1
    tot.backward()
    np.testing.assert_allclose(t[0].asnumpy(), ro2, rtol=RTOL, atol=ATOL)
    check(lv, rg2)
    # ... or read after the scope: its exit computed it, in the call's mode and weights
    with autograd.record():
        t = (net(x), y)
        lv = loss(*t)
    assert type(t[0]) is mx.nd.NDArray
    lv.backward()
    np.testing.assert_allclose(t[0].asnumpy(), ro, rtol=RTOL, atol=ATOL)
    check(lv, rg)


def test_softmax_ce_per_sample_mean_of_3d_prediction():
    """The loss without keepdims (a 2-D prediction's mean reduces nothing and leaves the
    compiled graph) still averages the other axes of an N-D prediction, and a sample
    weight still broadcasts against the kept axis: numbers of NumPy."""
    r = np.random.RandomState(11)
    pred = r.randn(4, 3, 5).astype(np.float32)
    lab = r.randint(0, 5, size=(4, 3)).astype(np.float32)
    sw = r.rand(4, 1, 1).astype(np.float32)
    z = pred - pred.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    picked = np.take_along_axis(logp, lab.astype(int)[..., None], -1)[..., 0]
    want = -picked.mean(1)
    want_w = -(picked[..., None] * sw).mean((1, 2))
    for hybrid in (False, True):
        lf = gluon.loss.SoftmaxCrossEntropyLoss(prefix="gsp3_")
        if hybrid:
            lf.hybridize()
        for _ in range(2):
            np.testing.assert_allclose(lf(mx.nd.array(pred), mx.nd.array(lab)).asnumpy(),
                                       want, rtol=RTOL, atol=ATOL)
        lw = gluon.loss.SoftmaxCrossEntropyLoss(prefix="gsp3w_")
        if hybrid:
            lw.hybridize()
        got = lw(mx.nd.array(pred), mx.nd.array(lab), mx.nd.array(sw)).asnumpy()
        np.testing.assert_allclose(got, want_w, rtol=RTOL, atol=ATOL)
