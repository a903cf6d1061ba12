"""mx.test_utils: tolerances by dtype, error classes, the symbolic checkers (they must catch a
wrong expectation and a wrong gradient), and the csr arrays rand_ndarray makes."""
import contextlib
import io

import numpy as np
import pytest
import scipy.sparse

import agjit as mx

tu = mx.test_utils


def _quiet(fn, *a, **k):
    with contextlib.redirect_stdout(io.StringIO()) as buf:
        fn(*a, **k)
    return buf.getvalue()


def test_assert_almost_equal_tolerances_by_dtype():
    a = np.array([1.0, 2.0, 3.0], dtype="float32")
    assert tu.assert_almost_equal(a, a + 9e-4) is None          # float32 atol 1e-3
    with pytest.raises(AssertionError, match="exceeds tolerance"):
        _quiet(tu.assert_almost_equal, a, a * (1 + 1e-3))
    with pytest.raises(AssertionError):                         # float64: rtol 1e-5
        _quiet(tu.assert_almost_equal, np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-4]))
    with pytest.raises(AssertionError):                         # integers exact
        _quiet(tu.assert_almost_equal, np.array([1, 2]), np.array([1, 3]))
    with pytest.raises(ValueError):
        tu.assert_almost_equal(a, a[:2])
    tu.assert_almost_equal(mx.nd.array(a), a + 1e-2, rtol=1e-1, atol=1e-1)
    nan = np.array([1.0, np.nan])
    with pytest.raises(AssertionError):
        _quiet(tu.assert_almost_equal, nan, nan)
    tu.assert_almost_equal(nan, nan, equal_nan=True)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), pytest.raises(AssertionError) as err:
        tu.assert_almost_equal(a, a + np.array([0, 0.5, 0.1], dtype="float32"))
    assert "Location of maximum error: (1,)" in str(err.value)
    printed = buf.getvalue()       # the worst elements, worst first
    assert "Error" in printed and printed.index("(1,)") < printed.index("(2,)")


def test_almost_equal_and_same():
    a = np.array([1.0, 2.0, 3.0], dtype="float32")
    assert tu.almost_equal(a, a + 1e-6) and not tu.almost_equal(a, a + 1e-2)
    assert tu.almost_equal(a, a + 1e-2, rtol=0.1)
    assert tu.same(a, a) and not tu.same(a, a + 1e-7) and not tu.same(a, a[:2])
    assert str(tu.default_context()) == "cpu(0)" and list(tu.list_gpus()) == []


def _sym():
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    return a * b + mx.sym.sin(a)


def test_symbolic_checks_pass_and_catch_wrong_expectations():
    rs = np.random.RandomState(15)
    A, B, og = rs.randn(2, 3), rs.randn(2, 3), rs.randn(2, 3)
    s = _sym()
    outs = tu.check_symbolic_forward(s, [A, B], [A * B + np.sin(A)])
    np.testing.assert_allclose(outs[0].asnumpy(), A * B + np.sin(A), rtol=1e-5)
    with pytest.raises(AssertionError):
        _quiet(tu.check_symbolic_forward, s, [A, B], [A * B])
    with pytest.raises(ValueError):
        tu.check_symbolic_forward(s, [A], [A])
    g = tu.check_symbolic_backward(s, [A, B], [og], [og * (B + np.cos(A)), og * A])
    assert sorted(g) == ["a", "b"]
    np.testing.assert_allclose(g["b"].asnumpy(), og * A, rtol=1e-5)
    with pytest.raises(AssertionError):
        _quiet(tu.check_symbolic_backward, s, [A, B], [og], [og * B, og * A])


def test_check_numeric_gradient_catches_a_blocked_gradient():
    np.random.seed(0)
    rs = np.random.RandomState(15)
    A, B = rs.randn(2, 3), rs.randn(2, 3)
    kw = dict(numeric_eps=1e-3, rtol=1e-2, atol=1e-3)
    tu.check_numeric_gradient(_sym(), [A, B], **kw)
    tu.check_numeric_gradient(_sym(), {"a": A, "b": B}, grad_nodes=["a"], **kw)
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    with pytest.raises(AssertionError):
        _quiet(tu.check_numeric_gradient, mx.sym.BlockGrad(a) * b, [A, B], **kw)


def test_rand_ndarray_csr_views_agree_with_scipy():
    np.random.seed(3)
    r = tu.rand_ndarray((5, 7), "csr", density=0.4)
    assert (r.stype, r.shape, r.dtype) == ("csr", (5, 7), np.float32)
    ref = scipy.sparse.csr_matrix(r.asnumpy())
    np.testing.assert_array_equal(r.data.asnumpy(), ref.data)
    np.testing.assert_array_equal(r.indices.asnumpy(), ref.indices)
    np.testing.assert_array_equal(r.indptr.asnumpy(), ref.indptr)
    back = mx.nd.sparse.csr_matrix((ref.data, ref.indices, ref.indptr), shape=(5, 7))
    np.testing.assert_array_equal(back.asnumpy(), r.asnumpy())
    with pytest.raises(mx.MXNetError, match="indptr"):
        mx.nd.sparse.csr_matrix(([1.0], [0], [0, 2]), shape=(1, 3))
    d = tu.rand_ndarray((3, 4), "default")
    assert d.stype == "default" and type(d).__name__ == "NDArray"


def test_check_consistency_across_dtypes_and_download(tmp_path):
    np.random.seed(0)
    s = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=3, name="fc")
    ctx = [{"ctx": mx.cpu(), "data": (2, 4), "type_dict": {"data": "float64"}},
           {"ctx": mx.cpu(), "data": (2, 4), "type_dict": {"data": "float32"}}]
    gt = tu.check_consistency(s, ctx)
    assert gt["fc_output"].dtype == np.float64 and gt["fc_weight"].shape == (3, 4)
    bad = mx.sym.FullyConnected(mx.sym.Variable("data") * 1.5, num_hidden=3, name="fc")
    assert bad.list_arguments() == s.list_arguments()
    with pytest.raises(AssertionError, match="exceeds tolerance"):
        _quiet(tu.check_consistency, [s, bad], ctx)
    f = tmp_path / "w.params"
    f.write_bytes(b"x")
    assert tu.download("http://example.invalid/w.params", dirname=str(tmp_path)) == str(f)
    with pytest.raises(mx.MXNetError, match="no network"):
        tu.download("http://example.invalid/other.bin", dirname=str(tmp_path))
