"""Executors (Symbol.bind / simple_bind / eval): argument handling as MXNet 1.9.1, grad_req
write/add/null, loss heads, auxiliary states, in-place outputs, and numbers equal to eager
autograd on the same computation."""
import numpy as np
import pytest

import agjit as mx
from symbol.base import MXNetError
from symbol import executor

from conftest import next_var_index


def abc():
    a, b, c = mx.sym.Variable("a"), mx.sym.Variable("b"), mx.sym.Variable("c")
    return a * b + c


def test_bind_grad_req_per_argument():
    """The oracle's sym_bind_grad_req: 'add' accumulates over two backwards, 'write'
    overwrites, 'null' gets no gradient."""
    y = abc()
    an, bn, cn = mx.nd.array([1., 2., 3.]), mx.nd.array([4., 5., 6.]), mx.nd.array([.5, .5, .5])
    ga, gb = mx.nd.zeros((3,)), mx.nd.zeros((3,))
    ex = y.bind(mx.cpu(), args={"a": an, "b": bn, "c": cn}, args_grad={"a": ga, "b": gb},
                grad_req={"a": "add", "b": "write", "c": "null"})
    for _ in range(2):
        ex.forward(is_train=True)
        ex.backward(mx.nd.ones((3,)))
    np.testing.assert_array_equal(ga.asnumpy(), [8., 10., 12.])
    np.testing.assert_array_equal(gb.asnumpy(), [1., 2., 3.])
    np.testing.assert_array_equal(ex.outputs[0].asnumpy(), [4.5, 10.5, 18.5])
    assert sorted(k for k, v in ex.grad_dict.items() if v is not None) == ["a", "b"]
    assert ex.grad_dict["c"] is None
    # args as a list in list_arguments order
    out = y.bind(mx.cpu(), args=[an, bn, cn]).forward()
    assert isinstance(out, list)
    np.testing.assert_array_equal(out[0].asnumpy(), [4.5, 10.5, 18.5])


def test_bind_argument_errors():
    y = abc()
    one = mx.nd.ones((3,))
    with pytest.raises(ValueError, match="key `a` is missing in `args`"):
        mx.sym.Variable("a").bind(mx.cpu(), {})
    with pytest.raises(ValueError, match="Length of args"):
        y.bind(mx.cpu(), [one, one])
    with pytest.raises(TypeError):
        y.bind(mx.cpu(), [one, one, np.ones(3)])
    with pytest.raises(TypeError):
        y.bind(mx.cpu(), "abc")
    with pytest.raises(MXNetError):
        y.bind(mx.cpu(), [one, one, one], grad_req="sometimes")
    with pytest.raises(MXNetError):          # gradient buffer of the wrong shape
        y.bind(mx.cpu(), [one, one, one], args_grad={"a": mx.nd.zeros((2,))})
    with pytest.raises(MXNetError):          # elemwise shapes disagree: refused at bind
        y.bind(mx.cpu(), {"a": one, "b": mx.nd.ones((2,)), "c": one})
    with pytest.raises(MXNetError):
        y.bind(mx.gpu(), [one, one, one])


def test_forward_kwargs_and_in_place_outputs():
    y = abc()
    ex = y.bind(mx.cpu(), {"a": mx.nd.ones((3,)), "b": mx.nd.ones((3,)), "c": mx.nd.zeros((3,))})
    first = ex.forward()[0]
    np.testing.assert_array_equal(first.asnumpy(), [1, 1, 1])
    out = ex.forward(a=mx.nd.array([2., 3., 4.]), c=np.array([1., 1., 1.], dtype=np.float32))
    assert out is ex.outputs and out[0] is first          # outputs are overwritten in place
    np.testing.assert_array_equal(first.asnumpy(), [3, 4, 5])
    np.testing.assert_array_equal(ex.arg_dict["a"].asnumpy(), [2, 3, 4])
    assert list(ex.output_dict) == y.list_outputs()
    with pytest.raises(ValueError):
        ex.forward(zzz=mx.nd.ones((3,)))
    with pytest.raises(ValueError, match="Shape not match"):
        ex.forward(a=mx.nd.ones((4,)))


def test_backward_requires_head_gradient_unless_loss():
    y = abc()
    ex = y.simple_bind(mx.cpu(), a=(3,), b=(3,), c=(3,))
    ex.forward(is_train=True)
    with pytest.raises(MXNetError, match="head gradient"):
        ex.backward()
    with pytest.raises(MXNetError):
        ex.backward(mx.nd.ones((4,)))
    ex.backward([mx.nd.ones((3,))])
    ex.backward({y.list_outputs()[0]: mx.nd.ones((3,))})


def test_backward_before_forward():
    ex = abc().simple_bind(mx.cpu(), a=(3,), b=(3,), c=(3,))
    with pytest.raises(MXNetError, match="forward"):
        ex.backward(mx.nd.ones((3,)))


def mlp():
    x = mx.sym.Variable("x")
    net = mx.sym.FullyConnected(x, num_hidden=5, name="fc1")
    net = mx.sym.Activation(net, act_type="sigmoid", name="sig")
    return mx.sym.FullyConnected(net, num_hidden=2, name="fc2")


def test_simple_bind_mlp_matches_eager():
    net = mlp()
    ex = net.simple_bind(mx.cpu(), x=(3, 4))
    assert [a.shape for a in ex.arg_arrays] == [(3, 4), (5, 4), (5,), (2, 5), (2,)]
    assert sorted(ex.grad_dict) == sorted(net.list_arguments())
    rs = np.random.RandomState(0)
    for name in net.list_arguments():
        ex.arg_dict[name][:] = rs.uniform(-1, 1, size=ex.arg_dict[name].shape)
    hg = rs.randn(3, 2).astype(np.float32)
    out = ex.forward(is_train=True)[0]
    ex.backward(mx.nd.array(hg))

    p = {k: mx.nd.array(v.asnumpy()) for k, v in ex.arg_dict.items()}
    for v in p.values():
        v.attach_grad()
    with mx.autograd.record():
        h = mx.nd.sigmoid(mx.nd.FullyConnected(p["x"], p["fc1_weight"], p["fc1_bias"], num_hidden=5))
        y = mx.nd.FullyConnected(h, p["fc2_weight"], p["fc2_bias"], num_hidden=2)
    y.backward(mx.nd.array(hg))
    np.testing.assert_allclose(out.asnumpy(), y.asnumpy(), rtol=1e-6, atol=1e-6)
    for k in p:
        np.testing.assert_allclose(ex.grad_dict[k].asnumpy(), p[k].grad.asnumpy(),
                                   rtol=1e-5, atol=1e-6)
        assert ex.grad_dict[k].dtype == np.float32


def test_simple_bind_null_and_dtypes():
    net = mlp()
    ex = net.simple_bind(mx.cpu(), grad_req="null", x=(2, 4))
    assert all(g is None for g in ex.grad_arrays)
    assert set(ex.grad_dict) == set(net.list_arguments())
    ex.forward(is_train=True)
    ex.backward(mx.nd.ones((2, 2)))          # nothing to compute, not an error
    ex64 = net.simple_bind(mx.cpu(), type_dict={"x": "float64"}, x=(2, 4))
    assert ex64.arg_dict["x"].dtype == np.float64
    with pytest.raises(MXNetError):
        net.simple_bind(mx.cpu())            # shapes cannot be inferred


def test_loss_head_backward_without_head_grad():
    """The oracle's sym_loss_executor: softmax - one_hot(label), label gradient 0."""
    x, lab = mx.sym.Variable("x"), mx.sym.Variable("label")
    net = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(x, num_hidden=3, name="f"), lab, name="softmax")
    ex = net.simple_bind(mx.cpu(), x=(2, 4))
    rs = np.random.RandomState(3)
    ex.arg_dict["x"][:] = rs.rand(2, 4)
    ex.arg_dict["f_weight"][:] = rs.rand(3, 4)
    ex.arg_dict["f_bias"][:] = 0
    ex.arg_dict["label"][:] = np.array([0, 2])
    prob = ex.forward(is_train=True)[0].asnumpy()
    ex.backward()
    d = prob - np.eye(3, dtype=np.float32)[[0, 2]]
    np.testing.assert_allclose(ex.grad_dict["f_weight"].asnumpy(), d.T @ ex.arg_dict["x"].asnumpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ex.grad_dict["label"].asnumpy(), [0, 0])
    ex.backward(mx.nd.ones((2, 3)) * 5)      # the head gradient is ignored
    np.testing.assert_allclose(ex.grad_dict["f_weight"].asnumpy(), d.T @ ex.arg_dict["x"].asnumpy(),
                               rtol=1e-5, atol=1e-6)


def test_batchnorm_aux_states_like_eager():
    data = mx.sym.Variable("data")
    net = mx.sym.BatchNorm(data, fix_gamma=False, name="bn")
    assert net.list_auxiliary_states() == ["bn_moving_mean", "bn_moving_var"]
    ex = net.simple_bind(mx.cpu(), data=(4, 3))
    np.testing.assert_array_equal(ex.aux_dict["bn_moving_mean"].asnumpy(), 0)
    np.testing.assert_array_equal(ex.aux_dict["bn_moving_var"].asnumpy(), 1)   # __init__ one
    rs = np.random.RandomState(5)
    xv = rs.randn(4, 3).astype(np.float32)
    ex.arg_dict["bn_gamma"][:] = 1.5
    hg = rs.randn(4, 3).astype(np.float32)
    ex.forward(is_train=True, data=xv)
    np.testing.assert_array_equal(ex.aux_dict["bn_moving_mean"].asnumpy(), 0)   # not in forward
    ex.backward(mx.nd.array(hg))

    x, g, b = mx.nd.array(xv), mx.nd.ones((3,)) * 1.5, mx.nd.zeros((3,))
    mm, mv = mx.nd.zeros((3,)), mx.nd.ones((3,))
    for v in (x, g, b):
        v.attach_grad()
    with mx.autograd.record():
        y = mx.nd.BatchNorm(x, g, b, mm, mv, fix_gamma=False)
    y.backward(mx.nd.array(hg))
    np.testing.assert_allclose(ex.outputs[0].asnumpy(), y.asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ex.aux_dict["bn_moving_mean"].asnumpy(), mm.asnumpy(), rtol=1e-6)
    np.testing.assert_allclose(ex.aux_dict["bn_moving_var"].asnumpy(), mv.asnumpy(), rtol=1e-6)
    np.testing.assert_allclose(ex.grad_dict["data"].asnumpy(), x.grad.asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ex.grad_dict["bn_gamma"].asnumpy(), g.grad.asnumpy(), rtol=1e-5, atol=1e-6)
    # bind requires the aux states
    with pytest.raises(ValueError):
        net.bind(mx.cpu(), {"data": x, "bn_gamma": g, "bn_beta": b})
    ex2 = net.bind(mx.cpu(), {"data": x, "bn_gamma": g, "bn_beta": b},
                   aux_states={"bn_moving_mean": mm, "bn_moving_var": mv})
    assert ex2.aux_arrays[0] is mm


def test_eval_returns_list_per_output():
    """The oracle's sym_eval, including a Group and broadcast ops."""
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    s = mx.sym.broadcast_sub(mx.sym.broadcast_mul(a, b), mx.sym.sum(a, axis=1, keepdims=True))
    an = mx.nd.array(np.arange(6).reshape(2, 3))
    r = s.eval(ctx=mx.cpu(), a=an, b=mx.nd.array([[1.], [2.]]))
    assert isinstance(r, list) and len(r) == 1
    np.testing.assert_array_equal(r[0].asnumpy(), [[-3, -2, -1], [-6, -4, -2]])
    g = mx.sym.Group([mx.sym.exp(a), mx.sym.relu(a - 2)])
    rg = executor.eval(g, a=an)
    assert len(rg) == 2
    np.testing.assert_allclose(rg[0].asnumpy(), np.exp(np.arange(6).reshape(2, 3)), rtol=1e-6)
    np.testing.assert_array_equal(rg[1].asnumpy(), [[0, 0, 0], [1, 2, 3]])
    with pytest.raises(MXNetError):          # elemwise_sub on (2,3) vs (2,1)
        (a - b).eval(a=an, b=mx.nd.array([[1.], [2.]]))


def test_copy_params_from():
    net = mlp()
    ex = net.simple_bind(mx.cpu(), x=(2, 4))
    w = mx.nd.ones((5, 4)) * 3
    ex.copy_params_from({"fc1_weight": w})
    np.testing.assert_array_equal(ex.arg_dict["fc1_weight"].asnumpy(), 3)
    with pytest.raises(ValueError):
        ex.copy_params_from({"nope": w})
    ex.copy_params_from({"nope": w}, allow_extra_params=True)


def test_multiple_outputs_and_hidden_outputs():
    x = mx.sym.Variable("x")
    parts = mx.sym.split(x, num_outputs=3, axis=1, name="sp")
    g = mx.sym.Group([parts[2], parts[0] * 2])
    xv = np.arange(12, dtype=np.float32).reshape(2, 6)
    ex = g.simple_bind(mx.cpu(), x=(2, 6))
    outs = ex.forward(is_train=True, x=xv)
    np.testing.assert_array_equal(outs[0].asnumpy(), xv[:, 4:])
    np.testing.assert_array_equal(outs[1].asnumpy(), xv[:, :2] * 2)
    ex.backward([mx.nd.ones((2, 2)), mx.nd.ones((2, 2))])
    expect = np.zeros((2, 6), np.float32)
    expect[:, 4:] = 1
    expect[:, :2] = 2
    np.testing.assert_array_equal(ex.grad_dict["x"].asnumpy(), expect)


def test_executors_do_not_draw_autograd_variable_names():
    before = next_var_index()
    ex = abc().simple_bind(mx.cpu(), a=(3,), b=(3,), c=(3,))
    ex.forward(is_train=True)
    ex.backward(mx.nd.ones((3,)))
    abc().eval(a=mx.nd.ones((3,)), b=mx.nd.ones((3,)), c=mx.nd.ones((3,)))
    assert next_var_index() == before + 1


def test_user_arrays_stay_plain():
    """bind shares the user's buffers but does not turn them into autograd variables."""
    an, bn, cn = mx.nd.ones((3,)), mx.nd.ones((3,)), mx.nd.ones((3,))
    ex = abc().bind(mx.cpu(), [an, bn, cn], args_grad=[mx.nd.zeros((3,))] * 3)
    ex.forward(is_train=True)
    ex.backward(mx.nd.ones((3,)))
    assert an.grad is None
    with pytest.raises(MXNetError):
        mx.autograd.get_symbol(an)


def test_simple_bind_honours_variable_init_attrs():
    import agjit as mx
    w = mx.sym.Variable("w", init=mx.init.Constant(0.5))
    x = mx.sym.Variable("x")
    net = mx.sym.FullyConnected(x, weight=w, num_hidden=3, no_bias=True, name="fc")
    net = mx.sym.BatchNorm(net, name="bn")
    ex = net.simple_bind(mx.cpu(), x=(2, 4))
    assert (ex.arg_dict["w"].asnumpy() == 0.5).all()
    assert (ex.arg_dict["x"].asnumpy() == 0).all()
    assert (ex.aux_dict["bn_moving_var"].asnumpy() == 1).all()
    assert (ex.aux_dict["bn_moving_mean"].asnumpy() == 0).all()
