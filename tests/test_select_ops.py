"""topk / sort / argsort ties and options, gather_nd / scatter_nd / diag, against NumPy and
MXNet 1.9.1's observed behaviour (FINDINGS.md "Sorting", "gather_nd")."""
import numpy as np
import pytest

import agjit as mx
from agjit.base import MXNetError


def test_ties_are_stable_in_both_directions():
    x = mx.nd.array([[3, 1, 3, 2]])
    assert mx.nd.topk(x, k=2).asnumpy().tolist() == [[0.0, 2.0]]
    assert mx.nd.topk(x, k=2, is_ascend=True).asnumpy().tolist() == [[1.0, 3.0]]
    assert mx.nd.argsort(x).asnumpy().tolist() == [[1.0, 3.0, 0.0, 2.0]]
    assert mx.nd.argsort(x, is_ascend=False).asnumpy().tolist() == [[0.0, 2.0, 3.0, 1.0]]


def test_topk_forms_and_dtypes():
    x = mx.nd.array(np.array([[5, 1, 4], [0, 9, 2]], dtype="int32"), dtype="int32")
    v, i = mx.nd.topk(x, k=2, ret_typ="both")
    assert v.dtype == np.int32 and i.dtype == np.float32
    assert v.asnumpy().tolist() == [[5, 4], [9, 2]] and i.asnumpy().tolist() == [[0, 2], [1, 2]]
    assert mx.nd.topk(x, k=0, ret_typ="value").shape == (2, 3)             # k=0: all
    assert mx.nd.topk(x, k=3, axis=None, ret_typ="value").asnumpy().tolist() == [9, 5, 4]
    assert mx.nd.topk(x, k=1, ret_typ="mask").asnumpy().tolist() == [[1, 0, 0], [0, 1, 0]]
    assert mx.nd.topk(x, k=2, dtype="int32").dtype == np.int32
    assert mx.nd.sort(x, axis=None).asnumpy().tolist() == [0, 1, 2, 4, 5, 9]
    with pytest.raises(MXNetError, match="k=4"):
        mx.nd.topk(x, k=4)
    a = mx.sym.Variable("a")
    assert mx.sym.topk(a, k=2, ret_typ="value", name="t").list_outputs() == ["t_output0"]
    assert mx.sym.sort(a, name="s").list_outputs() == ["s_output0"]
    assert mx.sym.argsort(a, name="s").list_outputs() == ["s_output"]


def test_topk_value_gradient_scatters():
    xv = np.random.RandomState(0).randn(3, 4)
    x = mx.nd.array(xv)
    x.attach_grad()
    g = np.arange(6.0).reshape(3, 2)
    with mx.autograd.record():
        v = mx.nd.topk(x, k=2, ret_typ="value")
    v.backward(mx.nd.array(g))
    want = np.zeros((3, 4))
    np.put_along_axis(want, np.argsort(-xv, axis=1)[:, :2], g, axis=1)
    np.testing.assert_allclose(x.grad.asnumpy(), want)


def test_gather_scatter_and_diag():
    xv = np.arange(12.0).reshape(3, 4)
    x = mx.nd.array(xv)
    x.attach_grad()
    idx = mx.nd.array([[0, 2, 0, -1], [1, 3, 1, 0]])
    with mx.autograd.record():
        y = mx.nd.gather_nd(x, idx)
    y.backward()
    assert y.asnumpy().tolist() == [1.0, 11.0, 1.0, 8.0]                  # -1 wraps
    want = np.zeros((3, 4))
    np.add.at(want, ([0, 2, 0, 2], [1, 3, 1, 0]), 1)
    np.testing.assert_array_equal(x.grad.asnumpy(), want)                # repeats accumulate
    s = mx.nd.scatter_nd(mx.nd.array([1.0, 2.0]), mx.nd.array([[0, 2], [1, 3]]), shape=(3, 4))
    assert s.asnumpy()[0, 1] == 1 and s.asnumpy()[2, 3] == 2 and s.asnumpy().sum() == 3
    with pytest.raises(MXNetError):
        mx.nd.gather_nd(x, mx.nd.array([[5], [0]])).asnumpy()
    np.testing.assert_array_equal(mx.nd.diag(x, k=1).asnumpy(), np.diag(xv, 1))
    np.testing.assert_array_equal(mx.nd.diag(mx.nd.array([1.0, 2.0]), k=-1).asnumpy(),
                                  np.diag([1.0, 2.0], -1))
