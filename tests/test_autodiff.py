"""Backward graphs (symbol.autodiff.gradient / Symbol.gradient / get_symbol(backward=True)):
naming, evaluation equal to Executor.backward for every differentiable registered op,
finite differences, JSON round trips and second order (the gradient of a gradient graph)."""
import numpy as np
import pytest

import agjit as mx
from symbol.autodiff import gradient
from symbol.base import MXNetError
from symbol.graph import Node
from symbol.json_io import load_json
from symbol.registry import all_ops, format_attr
from symbol.symbol import Symbol


def nd(a):
    return mx.nd.array(a, dtype=a.dtype)


def backward_by_executor(sym, args, aux, head_grads, wrt, is_train=True):
    """What Executor.backward writes for ``wrt`` (grad_req write)."""
    grads = {w: mx.nd.zeros(args[w].shape, dtype=args[w].dtype) for w in wrt}
    ex = sym.bind(mx.cpu(), args, args_grad=grads, grad_req="write", aux_states=aux or None)
    ex.forward(is_train=is_train)
    ex.backward(head_grads)
    return [grads[w].asnumpy() for w in wrt]


def backward_by_graph(sym, args, aux, head_grads, wrt, is_train=True):
    """Evaluate the backward graph on the same arguments and head gradients."""
    g = gradient(sym, wrt)
    assert g.list_outputs() == [w + "_grad" for w in wrt]
    feed = dict(args)
    feed.update(aux)
    for name, hg in zip(sym.list_outputs(), head_grads):
        feed[name + "_head_grad"] = hg
    needed_args = g.list_arguments()
    needed_aux = g.list_auxiliary_states()
    assert set(needed_args + needed_aux) <= set(feed), (needed_args, needed_aux)
    ex = g.bind(mx.cpu(), {k: feed[k] for k in needed_args},
                aux_states={k: feed[k] for k in needed_aux} or None)
    return [o.asnumpy() for o in ex.forward(is_train=is_train)]


# ---------------------------------------------------------------------------------------------
# every differentiable registered op: backward graph == Executor.backward
# ---------------------------------------------------------------------------------------------
def _op_cases():
    cases = []
    rng = np.random.RandomState(7)
    for op in all_ops():
        if not op.differentiable or op.samples is None or op.needs_rng or op.forward is None:
            continue
        for k, sample in enumerate(op.samples(rng)):
            cases.append(pytest.param(op, sample, id="%s-%d" % (op.name, k)))
    return cases


def _op_graph(op, sample):
    attrs = {k: format_attr(v) for k, v in sample.attrs.items()}
    if op.variadic and op.variadic not in attrs:
        attrs[op.variadic] = str(len(sample.inputs))
    names = ["in%d" % i for i in range(len(sample.inputs))]
    vars_ = [Node(None, n) for n in names]
    node = Node(op, "op", attrs, [(v, 0, 0) for v in vars_])
    sym = Symbol([(node, i) for i in range(node.num_visible())])
    return sym, names


@pytest.mark.parametrize("op,sample", _op_cases())
def test_backward_graph_equals_executor_backward(op, sample):
    sym, names = _op_graph(op, sample)
    aux_names = set(sym.list_auxiliary_states())
    arrays = dict(zip(names, (nd(np.asarray(a)) for a in sample.inputs)))
    args = {k: v for k, v in arrays.items() if k not in aux_names}
    aux = {k: v for k, v in arrays.items() if k in aux_names}
    float_args = [k for k in sym.list_arguments() if np.issubdtype(args[k].dtype, np.floating)]
    if not float_args:
        pytest.skip("no floating-point argument to differentiate")
    # head gradients of the forward output shapes
    probe = sym.bind(mx.cpu(), {k: v.copy() for k, v in args.items()},
                     aux_states={k: v.copy() for k, v in aux.items()} or None)
    outs = probe.forward(is_train=True)
    rs = np.random.RandomState(11)
    hgs = [nd(rs.uniform(0.5, 1.5, size=o.shape).astype(o.dtype)) for o in outs]
    fresh = lambda d: {k: v.copy() for k, v in d.items()}   # noqa: E731  (aux mutate)
    want = backward_by_executor(sym, fresh(args), fresh(aux), hgs, float_args)
    got = backward_by_graph(sym, fresh(args), fresh(aux), hgs, float_args)
    for w, a, b in zip(float_args, want, got):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7, err_msg="d/d%s" % w)


# ---------------------------------------------------------------------------------------------
# composite graphs: naming, finite differences, JSON, higher order
# ---------------------------------------------------------------------------------------------
def composite():
    x, w = mx.sym.Variable("x"), mx.sym.Variable("w")
    h = mx.sym.tanh(mx.sym.FullyConnected(x, w, num_hidden=3, no_bias=True, name="fc"), name="t")
    return mx.sym.sum(mx.sym.broadcast_mul(h, mx.sym.sin(x, name="s2")) * 0.5, axis=1, name="out")


def composite_values(dtype=np.float64):
    rs = np.random.RandomState(2)
    return {"x": rs.uniform(-1, 1, (2, 3)).astype(dtype), "w": rs.uniform(-1, 1, (3, 3)).astype(dtype)}


def test_naming_and_arguments():
    sym = composite()
    g = sym.gradient(["w", "x"])
    assert g.list_outputs() == ["w_grad", "x_grad"]
    assert set(g.list_arguments()) == {"x", "w", "out_output_head_grad"}
    assert g.list_auxiliary_states() == []
    single = gradient(mx.sym.exp(mx.sym.Variable("a"), name="e"), "a")
    assert single.list_outputs() == ["a_grad"]
    assert single.list_arguments() == ["e_output_head_grad", "a"]


def test_no_path_gives_zeros_like():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    y = mx.sym.Group([mx.sym.exp(a, name="e"), mx.sym.BlockGrad(b, name="bg")])
    g = gradient(y, ["a", "b"])
    av, bv = np.array([1., 2.]), np.array([3., 4.])
    res = g.eval(a=nd(av), b=nd(bv), e_output_head_grad=nd(np.ones(2)),
                 bg_output_head_grad=nd(np.ones(2)))
    np.testing.assert_allclose(res[0].asnumpy(), np.exp(av))
    np.testing.assert_array_equal(res[1].asnumpy(), [0, 0])


def test_wrt_errors():
    sym = composite()
    with pytest.raises(MXNetError, match="nope"):
        gradient(sym, ["nope"])
    with pytest.raises(MXNetError):
        gradient(sym, [])
    with pytest.raises(MXNetError):
        gradient(sym, ["x", "x"])
    with pytest.raises(TypeError):
        gradient(sym, [1])


def numeric_grad(f, value, eps=1e-6):
    g = np.zeros_like(value)
    it = np.nditer(value, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        v = value.copy()
        v[i] += eps
        hi = f(v)
        v[i] -= 2 * eps
        lo = f(v)
        g[i] = (hi - lo) / (2 * eps)
    return g


def test_gradient_graph_matches_finite_differences():
    sym = composite()
    vals = composite_values()
    hg = np.array([0.7, -1.3])

    def scalar(name):
        def f(v):
            kw = {k: nd(vals[k]) for k in vals}
            kw[name] = nd(v)
            return float((sym.eval(**kw)[0].asnumpy() * hg).sum())
        return f

    g = sym.gradient(["x", "w"])
    res = g.eval(x=nd(vals["x"]), w=nd(vals["w"]), out_output_head_grad=nd(hg))
    for (name, got) in zip(["x", "w"], res):
        np.testing.assert_allclose(got.asnumpy(), numeric_grad(scalar(name), vals[name]),
                                   rtol=1e-6, atol=1e-8)


def test_gradient_graph_equals_executor_float32():
    sym = composite()
    vals = composite_values(np.float32)
    args = {k: nd(v) for k, v in vals.items()}
    hg = [nd(np.array([0.7, -1.3], np.float32))]
    want = backward_by_executor(sym, args, {}, hg, ["x", "w"])
    got = backward_by_graph(sym, args, {}, hg, ["x", "w"])
    for a, b in zip(want, got):
        assert b.dtype == np.float32
        np.testing.assert_array_equal(a, b)


def test_gradient_graph_json_round_trip():
    g = composite().gradient(["x", "w"])
    j = g.tojson()
    back = load_json(j)
    assert back.tojson() == j
    assert back.list_outputs() == ["x_grad", "w_grad"]
    vals = composite_values()
    feed = dict(x=nd(vals["x"]), w=nd(vals["w"]), out_output_head_grad=nd(np.array([1., 2.])))
    for a, b in zip(g.eval(**feed), back.eval(**feed)):
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())


@pytest.mark.parametrize("fn", ["sin", "cos", "exp", "tanh", "sigmoid", "log", "sqrt", "square"])
def test_second_order_matches_eager(fn):
    xv = np.array([0.3, 0.9, 1.7])
    a = mx.sym.Variable("a")
    sym = getattr(mx.sym, fn)(a, name="f") * mx.sym.Variable("c")
    cv = np.array([1.5, -0.5, 2.0])
    g1 = sym.gradient(["a"])
    g2 = g1.gradient(["a"])
    assert g2.list_outputs() == ["a_grad"]
    assert "a_grad_head_grad" in g2.list_arguments()
    # head gradients (of the product's auto-named output and of a_grad) are all ones
    feed = {n: nd(np.ones(3)) for n in g2.list_arguments() if n.endswith("_head_grad")}
    feed.update(a=nd(xv), c=nd(cv))
    got = g2.eval(**feed)[0].asnumpy()

    x = nd(xv)
    x.attach_grad()
    with mx.autograd.record():
        y = getattr(mx.nd, fn)(x) * nd(cv)
        (dx,) = mx.autograd.grad(y, [x], create_graph=True)
    dx.backward()
    np.testing.assert_allclose(got, x.grad.asnumpy(), rtol=1e-10)


def test_third_order_of_sin():
    a = mx.sym.Variable("a")
    g = mx.sym.sin(a, name="s")
    for _ in range(3):
        g = g.gradient(["a"])
    xv = np.array([0.1, 1.0])
    feed = {n: nd(np.ones(2)) for n in g.list_arguments() if n != "a"}
    feed["a"] = nd(xv)
    np.testing.assert_allclose(g.eval(**feed)[0].asnumpy(), -np.cos(xv), rtol=1e-12)


def test_loss_head_needs_no_head_gradient():
    x, lab = mx.sym.Variable("x"), mx.sym.Variable("label")
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(x, num_hidden=3, name="f"), lab, name="sm")
    g = net.gradient(["f_weight"])
    assert not any(n.endswith("_head_grad") for n in g.list_arguments())
    rs = np.random.RandomState(3)
    args = {"x": nd(rs.rand(2, 4).astype(np.float32)), "f_weight": nd(rs.rand(3, 4).astype(np.float32)),
            "f_bias": nd(np.zeros(3, np.float32)), "label": nd(np.array([0., 2.], np.float32))}
    want = backward_by_executor(net, args, {}, None, ["f_weight"])[0]
    got = g.eval(**{k: v for k, v in args.items() if k in g.list_arguments()})[0].asnumpy()
    np.testing.assert_array_equal(got, want)


def test_batchnorm_training_graph():
    """Train-dependent ops: the backward graph evaluated in training mode equals
    Executor.backward (the moving statistics are an eager side effect, not in the graph)."""
    data = mx.sym.Variable("data")
    net = mx.sym.BatchNorm(data, fix_gamma=False, name="bn")
    rs = np.random.RandomState(4)
    args = {"data": nd(rs.randn(4, 3).astype(np.float32)), "bn_gamma": nd(rs.rand(3).astype(np.float32)),
            "bn_beta": nd(rs.rand(3).astype(np.float32))}
    aux = {"bn_moving_mean": mx.nd.zeros((3,)), "bn_moving_var": mx.nd.ones((3,))}
    hg = [nd(rs.randn(4, 3).astype(np.float32))]
    want = backward_by_executor(net, args, {k: v.copy() for k, v in aux.items()}, hg,
                                ["data", "bn_gamma", "bn_beta"])
    got = backward_by_graph(net, args, {k: v.copy() for k, v in aux.items()}, hg,
                            ["data", "bn_gamma", "bn_beta"])
    for a, b in zip(want, got):
        np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-7)


def test_get_symbol_backward():
    x = mx.nd.array([0.5, 1.5])
    x.attach_grad()
    c = mx.nd.array([2.0, 3.0])
    with mx.autograd.record():
        y = mx.nd.sin(x) * c
    fwd = mx.autograd.get_symbol(y)
    g = mx.autograd.get_symbol(y, backward=True)
    xname = [n for n in fwd.list_arguments() if n.startswith("var")][0]
    cname = [n for n in fwd.list_arguments() if n.startswith("null")][0]
    assert g.list_outputs() == [xname + "_grad"]
    hg = [n for n in g.list_arguments() if n.endswith("_head_grad")][0]
    got = g.eval(**{xname: x, cname: c, hg: mx.nd.ones((2,))})[0].asnumpy()
    y.backward()
    np.testing.assert_allclose(got, x.grad.asnumpy(), rtol=1e-6)
    const = mx.nd.array([1.0])
    x2 = mx.nd.array([1.0])
    x2.attach_grad(grad_req="null")
    with mx.autograd.record():
        z = x2 * const
    with pytest.raises(MXNetError, match="marked"):
        mx.autograd.get_symbol(z, backward=True)
