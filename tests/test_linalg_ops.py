"""mx.nd.linalg: values against NumPy, potrf's symmetric gradient against finite differences
along symmetric directions, batched forms, errors, and the sym namespace's op names."""
import json

import numpy as np
import pytest

import agjit as mx
from agjit.base import MXNetError


def _spd(rs, n):
    m = rs.randn(n, n)
    return m @ m.T + n * np.eye(n)


def test_values_match_numpy():
    rs = np.random.RandomState(0)
    A, B, C = rs.randn(2, 3), rs.randn(3, 4), rs.randn(2, 4)
    la = mx.nd.linalg
    np.testing.assert_allclose(la.gemm2(mx.nd.array(A), mx.nd.array(B), alpha=2.0).asnumpy(),
                               2 * A @ B, rtol=1e-5)
    np.testing.assert_allclose(la.gemm(mx.nd.array(A), mx.nd.array(B), mx.nd.array(C), beta=0.5)
                               .asnumpy(), A @ B + 0.5 * C, rtol=1e-5)
    S = _spd(rs, 3)
    L = la.potrf(mx.nd.array(S, dtype="float64"))
    np.testing.assert_allclose(L.asnumpy(), np.linalg.cholesky(S), rtol=1e-10)
    np.testing.assert_allclose(la.potri(L).asnumpy(), np.linalg.inv(S), rtol=1e-8)
    np.testing.assert_allclose(la.trsm(L, mx.nd.array(np.eye(3), dtype="float64")).asnumpy(),
                               np.linalg.inv(np.linalg.cholesky(S)), rtol=1e-8)
    np.testing.assert_allclose(la.sumlogdiag(L).asnumpy(), [np.log(np.diag(np.linalg.cholesky(S))).sum()])
    batched = la.gemm2(mx.nd.array(rs.randn(2, 2, 3)), mx.nd.array(rs.randn(2, 3, 2)))
    assert batched.shape == (2, 2, 2)
    with pytest.raises(MXNetError, match="incompatible"):
        la.gemm2(mx.nd.array(A), mx.nd.array(A)).asnumpy()
    with pytest.raises(MXNetError, match="positive"):
        la.potrf(mx.nd.array([[1.0, 2.0], [2.0, 1.0]])).asnumpy()
    node = json.loads(mx.sym.linalg.gemm2(mx.sym.var("a"), mx.sym.var("b"), name="g").tojson())["nodes"][2]
    assert node["op"] == "_linalg_gemm2"


def test_potrf_gradient_is_the_symmetric_one():
    rs = np.random.RandomState(1)
    S = _spd(rs, 3)
    W = np.tril(rs.randn(3, 3))
    s = mx.nd.array(S, dtype="float64")
    s.attach_grad()
    with mx.autograd.record():
        L = mx.nd.linalg.potrf(s)
    L.backward(mx.nd.array(W, dtype="float64"))
    g = s.grad.asnumpy()
    np.testing.assert_allclose(g, g.T, rtol=1e-10)
    for _ in range(3):                       # along symmetric directions D: <g, D> = d/dt f
        D = rs.randn(3, 3)
        D = D + D.T
        eps = 1e-6
        f = lambda M: np.sum(W * np.linalg.cholesky(M))        # noqa: E731
        fd = (f(S + eps * D) - f(S - eps * D)) / (2 * eps)
        np.testing.assert_allclose(np.sum(g * D), fd, rtol=1e-5)
