"""Gradient rules learn which inputs need a gradient (``ctx.needs``, read through
``symbol.ops._common.grad_needed``): eager backward and the symbolic backward graph pass a
mask per node (False where an input leads to no differentiated variable) and the rules of
the expensive ops skip those inputs.  Numbers must not change: every gradient is compared
with the unmasked walk (the previous behaviour) and with finite differences."""
import numpy as np
import pytest

import agjit as mx
from agjit import autograd
from agjit.ndarray.ndarray import OpCtx
from symbol import autodiff
from symbol.registry import get_op


def nd(a):
    a = np.asarray(a, dtype=np.float64)
    return mx.nd.array(a, dtype=a.dtype)


class Spy:
    """Wraps an op's gradient rule; records (needs, which returned gradients were None)."""

    def __init__(self, monkeypatch, name):
        self.op = get_op(name)
        self.orig = self.op._gradient
        self.calls = []
        monkeypatch.setattr(self.op, "_gradient", self)

    def __call__(self, F, attrs, ins, outs, og, ctx):
        res = self.orig(F, attrs, ins, outs, og, ctx)
        self.calls.append((getattr(ctx, "needs", None), [g is None for g in res]))
        return res


def _unmasked(monkeypatch):
    """The walks as before the mask: every rule sees ``needs`` None (all inputs needed)."""
    monkeypatch.setattr(autograd, "_GradCtx", lambda t, f, needs: OpCtx(t, f))

    class NoMask(autodiff._SymCtx):
        needs = property(lambda self: None, lambda self, v: None)
    monkeypatch.setattr(autodiff, "_SymCtx", NoMask)


def _eager_grads(f, arrays, attach, reqs=None):
    """Gradients of sum(f(*arrays) * head) for the arrays indexed by ``attach``."""
    xs = [nd(a) for a in arrays]
    for k in attach:
        xs[k].attach_grad(grad_req=(reqs or {}).get(k, "write"))
    with mx.autograd.record():
        y = f(*xs)
    y.backward(nd(np.linspace(-1.0, 1.5, y.size).reshape(y.shape)))
    return [xs[k].grad.asnumpy().copy() for k in attach]


def _fd(f, arrays, k, eps=1e-6):
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    y0 = f(*[nd(a) for a in arrays]).asnumpy()
    head = np.linspace(-1.0, 1.5, y0.size).reshape(y0.shape)
    g = np.zeros_like(arrays[k])
    for i in np.ndindex(arrays[k].shape):
        hi = [a.copy() for a in arrays]
        lo = [a.copy() for a in arrays]
        hi[k][i] += eps
        lo[k][i] -= eps
        g[i] = ((f(*[nd(a) for a in hi]).asnumpy() - f(*[nd(a) for a in lo]).asnumpy()) * head).sum() / (2 * eps)
    return g


def _rand(rng, *shape):
    return rng.uniform(-1.0, 1.0, size=shape)


def _lenet_like(x, w, b, w2):
    h = mx.nd.relu(mx.nd.Convolution(x, w, b, kernel=(3, 3), num_filter=3))
    return mx.nd.FullyConnected(h, w2, no_bias=True, num_hidden=2)


# (name, f, arrays, which inputs get attach_grad, op whose rule is spied, input of that op
# that needs no gradient)
def _cases(rng):
    return [
        ("conv_data", lambda x, w, b: mx.nd.Convolution(x, w, b, kernel=(3, 3), num_filter=2),
         [_rand(rng, 2, 2, 5, 5), _rand(rng, 2, 2, 3, 3), _rand(rng, 2)], [1, 2],
         "Convolution", 0),
        ("conv_weight", lambda x, w: mx.nd.Convolution(x, w, kernel=(2, 2), num_filter=2, no_bias=True),
         [_rand(rng, 1, 2, 4, 4), _rand(rng, 2, 2, 2, 2)], [0], "Convolution", 1),
        ("deconv_data", lambda x, w: mx.nd.Deconvolution(x, w, kernel=(2, 2), num_filter=2),
         [_rand(rng, 1, 2, 3, 3), _rand(rng, 2, 2, 2, 2)], [1], "Deconvolution", 0),
        ("fc_data", lambda x, w, b: mx.nd.FullyConnected(x, w, b, num_hidden=3),
         [_rand(rng, 4, 2, 3), _rand(rng, 3, 6), _rand(rng, 3)], [1, 2], "FullyConnected", 0),
        ("fc_noflat_bias", lambda x, w, b: mx.nd.FullyConnected(x, w, b, num_hidden=3, flatten=False),
         [_rand(rng, 4, 2, 5), _rand(rng, 3, 5), _rand(rng, 3)], [0, 1], "FullyConnected", 2),
        ("dot_lhs", lambda a, b: mx.nd.dot(a, b, transpose_b=True),
         [_rand(rng, 3, 4), _rand(rng, 2, 4)], [1], "dot", 0),
        ("dot_rhs", lambda a, b: mx.nd.dot(a, b), [_rand(rng, 3, 4), _rand(rng, 4, 2)], [0], "dot", 1),
        ("batch_dot", lambda a, b: mx.nd.batch_dot(a, b, transpose_a=True),
         [_rand(rng, 2, 4, 3), _rand(rng, 2, 4, 5)], [1], "batch_dot", 0),
        ("embedding", lambda d, w: mx.nd.Embedding(d, w, input_dim=5, output_dim=3),
         [np.array([[0.0, 4.0], [2.0, 2.0]]), _rand(rng, 5, 3)], [1], "Embedding", 0),
        ("broadcast_mul", lambda a, b: mx.nd.broadcast_mul(a, b),
         [_rand(rng, 2, 3), _rand(rng, 1, 3)], [0], "broadcast_mul", 1),
        ("elemwise_sub", lambda a, b: mx.nd.elemwise_sub(a, b), [_rand(rng, 2, 3), _rand(rng, 2, 3)], [0],
         "elemwise_sub", 1),
    ]


_CASES = _cases(np.random.RandomState(3))


@pytest.mark.parametrize("case", _CASES, ids=[c[0] for c in _CASES])
def test_rule_skips_unneeded_input_and_numbers_are_unchanged(case, monkeypatch):
    name, f, arrays, attach, opname, skipped = case
    spy = Spy(monkeypatch, opname)
    got = _eager_grads(f, arrays, attach)
    needs, nones = spy.calls[-1]
    assert needs[skipped] is False and nones[skipped], (needs, nones)
    for k in attach:
        assert needs[k] is True and not nones[k]
    with monkeypatch.context() as m:
        _unmasked(m)
        spy.calls.clear()
        before = _eager_grads(f, arrays, attach)
        assert spy.calls[-1][0] is None
        if opname != "Embedding":           # (its indices never get a gradient)
            assert not spy.calls[-1][1][skipped]    # computed before the mask
    for g, b, k in zip(got, before, attach):
        np.testing.assert_array_equal(g, b)
        np.testing.assert_allclose(g, _fd(f, arrays, k), rtol=1e-6, atol=1e-8)


def test_lenet_like_first_conv_skips_data_gradient(monkeypatch):
    rng = np.random.RandomState(0)
    arrays = [_rand(rng, 2, 1, 6, 6), _rand(rng, 3, 1, 3, 3), _rand(rng, 3), _rand(rng, 2, 48)]
    conv_data = Spy(monkeypatch, "_backward_Convolution_data")
    conv = Spy(monkeypatch, "Convolution")
    got = _eager_grads(_lenet_like, arrays, [1, 2, 3])
    assert conv.calls[-1] == ((False, True, True), [True, False, False])
    # the data gradient op never ran in the backward (only a first-order walk here)
    assert conv_data.calls == []
    calls_before = []
    with monkeypatch.context() as m:
        _unmasked(m)
        before = _eager_grads(_lenet_like, arrays, [1, 2, 3])
        calls_before.append(conv.calls[-1][1])
    assert calls_before == [[False, False, False]]
    for g, b in zip(got, before):
        np.testing.assert_array_equal(g, b)
    np.testing.assert_allclose(got[0], _fd(_lenet_like, arrays, 1), rtol=1e-6, atol=1e-8)


def test_a_rule_that_ignores_the_mask_stays_correct(monkeypatch):
    rng = np.random.RandomState(1)
    arrays = [_rand(rng, 2, 1, 6, 6), _rand(rng, 3, 1, 3, 3), _rand(rng, 3), _rand(rng, 2, 48)]
    want = _eager_grads(_lenet_like, arrays, [1, 2, 3])
    op = get_op("Convolution")
    orig = op._gradient
    monkeypatch.setattr(op, "_gradient", lambda F, a, i, o, g, ctx: orig(F, a, i, o, g, None))
    for g, w in zip(_eager_grads(_lenet_like, arrays, [1, 2, 3]), want):
        np.testing.assert_array_equal(g, w)


def test_grad_req_null_and_add(monkeypatch):
    rng = np.random.RandomState(2)
    arrays = [_rand(rng, 2, 1, 6, 6), _rand(rng, 3, 1, 3, 3), _rand(rng, 3), _rand(rng, 2, 48)]
    spy = Spy(monkeypatch, "Convolution")
    ref = _eager_grads(_lenet_like, arrays, [1, 2, 3])
    # weight of the conv: grad_req 'null' -> not needed; its bias and the FC weight are
    xs = [nd(a) for a in arrays]
    xs[1].attach_grad(grad_req="null")
    xs[2].attach_grad()
    xs[3].attach_grad(grad_req="add")
    head = nd(np.linspace(-1.0, 1.5, 4).reshape(2, 2))
    for _ in range(2):
        with mx.autograd.record():
            y = _lenet_like(*xs)
        y.backward(head)
    assert spy.calls[-1] == ((False, False, True), [True, True, False])
    np.testing.assert_array_equal(xs[2].grad.asnumpy(), ref[1])
    np.testing.assert_allclose(xs[3].grad.asnumpy(), 2 * ref[2], rtol=1e-14)
    assert xs[1].grad is None       # MXNet: no buffer for grad_req null


def test_variable_used_twice_and_constant_operand(monkeypatch):
    rng = np.random.RandomState(4)
    wv, cv = _rand(rng, 3, 3), _rand(rng, 3, 3)

    def f(w, c):
        return mx.nd.dot(w, w) + mx.nd.elemwise_mul(w, c)

    mul = Spy(monkeypatch, "elemwise_mul")
    dot = Spy(monkeypatch, "dot")
    got = _eager_grads(f, [wv, cv], [0])
    assert dot.calls[-1][0] == (True, True)
    assert mul.calls[-1] == ((True, False), [False, True])
    with monkeypatch.context() as m:
        _unmasked(m)
        before = _eager_grads(f, [wv, cv], [0])
    np.testing.assert_array_equal(got[0], before[0])
    np.testing.assert_allclose(got[0], _fd(f, [wv, cv], 0), rtol=1e-6, atol=1e-8)


def test_input_needed_only_through_a_later_op(monkeypatch):
    """u = w * 2 needs a gradient only because it leads to w; x, and a = x * k (no
    variable behind it), need none."""
    rng = np.random.RandomState(5)
    xv, wv, kv = _rand(rng, 3, 4), _rand(rng, 4, 2), _rand(rng, 3, 4)

    def f(x, w, k):
        a = mx.nd.elemwise_mul(x, k)
        u = w * 2.0
        return mx.nd.dot(a, u)

    dot = Spy(monkeypatch, "dot")
    mul = Spy(monkeypatch, "elemwise_mul")
    got = _eager_grads(f, [xv, wv, kv], [1])
    assert dot.calls[-1] == ((False, True), [True, False])
    assert mul.calls == []          # a = x * k leads to no variable: never walked
    with monkeypatch.context() as m:
        _unmasked(m)
        before = _eager_grads(f, [xv, wv, kv], [1])
    np.testing.assert_array_equal(got[0], before[0])
    np.testing.assert_allclose(got[0], _fd(f, [xv, wv, kv], 1), rtol=1e-6, atol=1e-8)


def test_autograd_grad_wrt_a_subset(monkeypatch):
    """autograd.grad(heads, [w]) differentiates w only: x's gradient (attached) is skipped."""
    rng = np.random.RandomState(6)
    x, w = nd(_rand(rng, 3, 4)), nd(_rand(rng, 4, 2))
    x.attach_grad()
    w.attach_grad()
    dot = Spy(monkeypatch, "dot")
    with mx.autograd.record():
        y = mx.nd.dot(x, w)
    gw, = mx.autograd.grad(y, [w], retain_graph=True)
    assert dot.calls[-1] == ((False, True), [True, False])
    np.testing.assert_allclose(gw.asnumpy(), x.asnumpy().T.dot(np.ones((3, 2))), rtol=1e-14)
    # the full backward still gives both
    y.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), np.ones((3, 2)).dot(w.asnumpy().T), rtol=1e-14)


def test_create_graph_second_order_unchanged(monkeypatch):
    rng = np.random.RandomState(8)
    xv, cv = _rand(rng, 5), _rand(rng, 5)

    def run():
        x, c = nd(xv), nd(cv)
        x.attach_grad()
        with mx.autograd.record():
            y = x * x * c
            gx, = mx.autograd.grad(y, [x], create_graph=True)
            z = (gx * x).sum()
        z.backward()
        return gx.asnumpy(), x.grad.asnumpy()

    got = run()
    with monkeypatch.context() as m:
        _unmasked(m)
        before = run()
    for g, b in zip(got, before):
        np.testing.assert_array_equal(g, b)
    # y = c x^2: gx = 2cx, z = sum(2 c x^2), dz/dx = 4cx
    np.testing.assert_allclose(got[0], 2 * cv * xv, rtol=1e-14)
    np.testing.assert_allclose(got[1], 4 * cv * xv, rtol=1e-14)


def test_symbolic_backward_graph_gets_the_mask(monkeypatch):
    """Symbol.gradient(wrt) passes the mask: the conv rule builds no data-gradient node,
    and the graph evaluates to the same numbers as without the mask."""
    rng = np.random.RandomState(9)
    x, w, b = mx.sym.var("x"), mx.sym.var("w"), mx.sym.var("b")
    s = mx.sym.Convolution(x, w, b, kernel=(3, 3), num_filter=2, name="c")
    feed = {"x": nd(_rand(rng, 2, 2, 5, 5)), "w": nd(_rand(rng, 2, 2, 3, 3)), "b": nd(_rand(rng, 2)),
            "c_output_head_grad": nd(_rand(rng, 2, 2, 3, 3))}
    conv = Spy(monkeypatch, "Convolution")
    g = s.gradient(["w", "b"])
    assert conv.calls[-1] == ((False, True, True), [True, False, False])
    assert "_backward_Convolution_data" not in g.tojson()
    got = [o.asnumpy() for o in g.eval(**{k: feed[k] for k in g.list_arguments()})]
    with monkeypatch.context() as m:
        _unmasked(m)
        conv.calls.clear()
        g0 = s.gradient(["w", "b"])
        assert conv.calls[-1] == (None, [False, False, False])
        before = [o.asnumpy() for o in g0.eval(**{k: feed[k] for k in g0.list_arguments()})]
    for a, bb in zip(got, before):
        np.testing.assert_array_equal(a, bb)
    # the executor (grad_req null for the data) gives the same numbers
    grads = {k: mx.nd.zeros(feed[k].shape, dtype="float64") for k in ("w", "b")}
    ex = s.bind(mx.cpu(), {k: feed[k] for k in ("x", "w", "b")}, args_grad=grads,
                grad_req={"x": "null", "w": "write", "b": "write"})
    ex.forward(is_train=True)
    ex.backward(feed["c_output_head_grad"])
    np.testing.assert_allclose(grads["w"].asnumpy(), got[0], rtol=1e-12)
    np.testing.assert_allclose(grads["b"].asnumpy(), got[1], rtol=1e-12)
