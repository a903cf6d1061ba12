"""Elementwise math added for MXNet 1.x programs: values recorded from real MXNet 1.9.1
(float32) and gradients of the special functions (the registry tables check every op's
gradient against finite differences too)."""
import numpy as np

import agjit as mx


def _close(a, b):
    np.testing.assert_allclose(a.asnumpy(), b, rtol=2e-6, atol=1e-6)


def test_values_recorded_from_mxnet():
    x = mx.nd.array([-0.5, 0, 0.5, 2])
    _close(mx.nd.logical_not(x), [0, 1, 0, 0])
    _close(mx.nd.broadcast_logical_and(x, mx.nd.array([1, 0, 1, 1])), [1, 0, 1, 1])
    _close(mx.nd.cbrt(mx.nd.array([-8, 27])), [-2, 3])
    _close(mx.nd.rcbrt(mx.nd.array([8.0])), [0.5])
    _close(mx.nd.gammaln(mx.nd.array([0.5, 3])), [0.5723649, 0.6931472])
    _close(mx.nd.gamma(mx.nd.array([0.5, 3])), [1.7724538, 2.0000002])
    _close(mx.nd.softmin(mx.nd.array([[1, 2, 3]])), [[0.66524094, 0.24472848, 0.09003057]])
    _close(mx.nd.erfinv(mx.nd.array([0.5])), [0.47693628])
    np.testing.assert_allclose(mx.nd.degrees(mx.nd.array([3.14159])).asnumpy(), [179.99985], rtol=1e-6)
    _close(mx.nd.arccosh(mx.nd.array([2.0])), [1.316958])


def test_special_function_gradients_recorded_from_mxnet():
    for op, x, want in [(mx.nd.erfinv, [0.3, 0.6], [0.9545204, 1.2628626]),
                        (mx.nd.gammaln, [0.3, 2.6], [-3.502524, 0.75104773]),
                        (mx.nd.gamma, [0.3, 2.6], [-10.478042, 1.073716])]:
        a = mx.nd.array(x)
        a.attach_grad()
        with mx.autograd.record():
            y = op(a)
        y.backward()
        np.testing.assert_allclose(a.grad.asnumpy(), want, rtol=2e-5)


def test_compiled_equals_eager_for_lowered_templates():
    def f(x):
        return (mx.nd.arcsin(x) + mx.nd.sinh(x) + mx.nd.arctanh(x) + mx.nd.logical_not(x)
                + mx.nd.broadcast_logical_xor(x, mx.nd.relu(x)))
    xv = np.array([-0.7, -0.2, 0.0, 0.4, 0.9], dtype=np.float32)
    eager = f(mx.nd.array(xv)).asnumpy()
    comp = mx.jit(f)(mx.nd.array(xv)).asnumpy()
    np.testing.assert_allclose(comp, eager, rtol=1e-6, atol=1e-6)
