"""log_softmax / softmax row kernels and ``_backward_log_softmax`` (agjit.compiler.kernels note
*softmax-rows*): the compiled kernels (eager, through agjit.eager_kernels, and inside
``mx.jit``) against the NumPy kernels and a float64 NumPy reference, over the last axis, a
middle axis and a temperature; the gradient and the backward op's own gradient against
finite differences."""
import numpy as np
import pytest

import agjit as mx
from agjit import eager_kernels as ek
from agjit.compiler import kernels as K

nd = mx.nd


def _ref_log_softmax(x, axis, t):
    z = x.astype(np.float64) / t
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _value_and_grad(x, r, axis, t, log=True):
    a = nd.array(x, dtype=x.dtype)
    a.attach_grad()
    f = nd.log_softmax if log else nd.softmax
    with mx.autograd.record():
        y = f(a, axis=axis, temperature=t)
    y.backward(nd.array(r, dtype=r.dtype))
    return y.asnumpy(), a.grad.asnumpy()


CASES = [((700, 1000), -1, None), ((3, 5, 7), 1, None), ((4, 33), -1, 2.0),
         ((2, 3, 17), 0, 0.5), ((5, 64), 1, None)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis,t", CASES)
def test_eager_compiled_vs_numpy_vs_float64(shape, axis, t, dtype):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    r = rng.standard_normal(shape).astype(dtype)
    prev = ek.set_mode("0")
    try:
        y0, g0 = _value_and_grad(x, r, axis, t)
    finally:
        ek.set_mode(prev)
    prev = ek.set_mode("sync")
    try:
        n0 = ek.state()["compiled_calls"]
        y1, g1 = _value_and_grad(x, r, axis, t)
        assert ek.state()["compiled_calls"] - n0 == 2      # log_softmax and its backward
    finally:
        ek.set_mode(prev)
    tt = 1.0 if t is None else t
    ref = _ref_log_softmax(x, axis, tt)
    gref = (r - np.exp(ref) * r.astype(np.float64).sum(axis=axis, keepdims=True)) / tt
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for got in (y0, y1):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol * max(1.0, np.abs(ref).max()))
    for got in (g0, g1):
        np.testing.assert_allclose(got, gref, rtol=0, atol=tol * max(1.0, np.abs(gref).max()))


def test_softmax_rows_kernel():
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((40, 513)) * 5).astype(np.float32)
    out = np.empty_like(x)
    K.softmax_rows(x, out, 1.0)
    np.testing.assert_allclose(out, np.exp(_ref_log_softmax(x, -1, 1.0)), rtol=1e-5, atol=1e-8)
    K.softmax_rows(x, out, 0.5)
    np.testing.assert_allclose(out, np.exp(_ref_log_softmax(x, -1, 2.0)), rtol=1e-5, atol=1e-8)


def test_rows_special_values():
    x = np.array([[0.0, np.nan, 1.0], [-np.inf, 0.0, 1.0], [1e30, 1e30, -1e30]], np.float32)
    out = np.empty_like(x)
    K.log_softmax_rows(x, out, 1.0)
    assert np.isnan(out[0]).all()
    ref = _ref_log_softmax(x[1:], -1, 1.0)
    np.testing.assert_array_equal(np.isinf(out[1:]), np.isinf(ref))
    fin = np.isfinite(ref)
    np.testing.assert_allclose(out[1:][fin], ref[fin], rtol=1e-6)


def test_jit_matches_eager():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 9, 11)).astype(np.float32)
    w = rng.standard_normal((6, 9, 11)).astype(np.float32)

    def loss(a, b):
        return (nd.log_softmax(a, axis=-1) * b).sum() + (nd.log_softmax(a, axis=1) * b).sum()

    def run(fn):
        a = nd.array(x)
        a.attach_grad()
        with mx.autograd.record():
            v = fn(a, nd.array(w))
        v.backward()
        return v.asnumpy(), a.grad.asnumpy()

    jf = mx.jit(loss)
    ref = run(loss)
    for _ in range(3):
        got = run(jf)
    jf.wait_compiled()
    got = run(jf)
    assert "no eager segments" in jf.explain()
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)


def test_gradients_finite_differences():
    """log_softmax's gradient and _backward_log_softmax's own gradient (second order),
    float64, against central differences of a random projection."""
    rng = np.random.default_rng(6)
    shape = (3, 5)
    x = rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    u = rng.standard_normal(shape)
    t = 1.5

    def bls(y, gg):
        return nd._backward_log_softmax(nd.array(y, dtype=np.float64),
                                        nd.array(gg, dtype=np.float64),
                                        axis=-1, temperature=t).asnumpy()

    y0 = _ref_log_softmax(x, -1, t)
    # first order: the backward op equals d<g, log_softmax(x)>/dx
    eps = 1e-6
    num = np.zeros(shape)
    for i in np.ndindex(*shape):
        d = np.zeros(shape)
        d[i] = eps
        num[i] = ((g * _ref_log_softmax(x + d, -1, t)).sum()
                  - (g * _ref_log_softmax(x - d, -1, t)).sum()) / (2 * eps)
    np.testing.assert_allclose(bls(y0, g), num, rtol=1e-6, atol=1e-8)
    # second order through autograd of the backward op
    ya, ga = nd.array(y0, dtype=np.float64), nd.array(g, dtype=np.float64)
    ya.attach_grad()
    ga.attach_grad()
    with mx.autograd.record():
        out = nd._backward_log_softmax(ya, ga, axis=-1, temperature=t)
    out.backward(nd.array(u, dtype=np.float64))
    for arr, grad, which in ((y0, ya.grad.asnumpy(), 0), (g, ga.grad.asnumpy(), 1)):
        num = np.zeros(shape)
        for i in np.ndindex(*shape):
            d = np.zeros(shape)
            d[i] = eps
            if which == 0:
                num[i] = ((bls(arr + d, g) - bls(arr - d, g)) * u).sum() / (2 * eps)
            else:
                num[i] = ((bls(y0, arr + d) - bls(y0, arr - d)) * u).sum() / (2 * eps)
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


def test_backward_op_shape_error():
    with pytest.raises(mx.base.MXNetError, match="_backward_log_softmax"):
        nd._backward_log_softmax(nd.zeros((2, 3)), nd.zeros((2, 4)))
