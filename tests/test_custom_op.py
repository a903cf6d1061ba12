"""mx.operator CustomOp / CustomOpProp through mx.nd.Custom (autograd), mx.sym.Custom
(executors), mx.jit (an eager segment in the compiled replay) and the recorded graph."""
import json

import numpy as np
import pytest

import agjit as mx
from agjit.base import MXNetError


class _Scale(mx.operator.CustomOp):
    """y0 = x * k, y1 = x + b; remembers the forward input it saw (state across calls)."""

    def __init__(self, k, b):
        super().__init__()
        self.k, self.b = k, b
        self.seen = None

    def forward(self, is_train, req, in_data, out_data, aux):
        self.seen = (is_train, list(req))
        self.assign(out_data[0], req[0], in_data[0] * self.k)
        self.assign(out_data[1], req[1], in_data[0] + self.b)

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        assert self.seen is not None                  # the same instance ran forward
        self.assign(in_grad[0], req[0], out_grad[0] * self.k + out_grad[1])


@mx.operator.register("test_scale2")
class _ScaleProp(mx.operator.CustomOpProp):
    def __init__(self, k="1", b="0"):
        super().__init__(need_top_grad=True)
        assert isinstance(k, str) and isinstance(b, str)      # kwargs arrive as strings
        self.k, self.b = float(k), float(b)

    def list_outputs(self):
        return ["scaled", "shifted"]

    def create_operator(self, ctx, in_shapes, in_dtypes):
        return _Scale(self.k, self.b)


def test_nd_custom_forward_backward_with_head_gradients():
    x = mx.nd.array(np.arange(6.0).reshape(2, 3))
    x.attach_grad()
    with mx.autograd.record():
        a, b = mx.nd.Custom(x, op_type="test_scale2", k=3, b=1)
    np.testing.assert_allclose(a.asnumpy(), 3 * x.asnumpy())
    np.testing.assert_allclose(b.asnumpy(), x.asnumpy() + 1)
    g0, g1 = np.full((2, 3), 2.0), np.full((2, 3), 5.0)
    mx.autograd.backward([a, b], [mx.nd.array(g0), mx.nd.array(g1)])
    np.testing.assert_allclose(x.grad.asnumpy(), 3 * g0 + g1)


def test_recorded_graph_and_symbol_executor():
    x = mx.nd.array(np.ones((2, 2)))
    x.attach_grad()
    with mx.autograd.record():
        a, _ = mx.nd.Custom(x, op_type="test_scale2", k=2)
    nodes = json.loads(mx.autograd.get_symbol(a).tojson())["nodes"]
    assert nodes[-1]["op"] == "Custom"
    assert nodes[-1]["attrs"] == {"op_type": "test_scale2", "k": "2"}
    s = mx.sym.Custom(mx.sym.Variable("data"), op_type="test_scale2", k=4, name="c")
    assert s.list_outputs() == ["c_scaled", "c_shifted"]
    assert s.infer_shape(data=(2, 3))[1] == [(2, 3), (2, 3)]
    ex = s.simple_bind(mx.cpu(), data=(2, 3))
    ex.arg_dict["data"][:] = np.arange(6.0).reshape(2, 3)
    outs = ex.forward(is_train=True)
    np.testing.assert_allclose(outs[0].asnumpy(), 4 * np.arange(6.0).reshape(2, 3))
    ex.backward([mx.nd.ones((2, 3)), mx.nd.ones((2, 3))])
    np.testing.assert_allclose(ex.grad_dict["data"].asnumpy(), np.full((2, 3), 5.0))


def test_custom_inside_jit_matches_eager():
    @mx.jit
    def f(x):
        a, b = mx.nd.Custom(x, op_type="test_scale2", k=2, b=1)
        return mx.nd.sum(a * b)
    xv = np.random.RandomState(0).randn(3, 2)
    for _ in range(2):
        x = mx.nd.array(xv)
        x.attach_grad()
        with mx.autograd.record():
            y = f(x)
        y.backward()
        np.testing.assert_allclose(y.asnumpy(), np.sum(2 * xv * (xv + 1)), rtol=1e-5)
        np.testing.assert_allclose(x.grad.asnumpy(), 2 * (xv + 1) + 2 * xv, rtol=1e-5)


def test_unknown_op_type_and_missing_op_type():
    with pytest.raises(MXNetError, match="not registered"):
        mx.nd.Custom(mx.nd.ones((2,)), op_type="no_such_custom_op").asnumpy()
    with pytest.raises(MXNetError, match="op_type"):
        mx.nd.Custom(mx.nd.ones((2,)))
    with pytest.raises(TypeError):
        mx.operator.register("bad")(object)
