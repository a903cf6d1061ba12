"""agjit.ndarray.invoke remembers (op, attrs, input shapes) whose shape inference passed, so
repeated small eager ops skip it: the memo must never let a bad shape through."""
import numpy as np
import pytest

import agjit as mx
from agjit.base import MXNetError
from agjit.ndarray import ndarray as ndmod


def test_memo_skips_only_passed_combinations():
    a = mx.nd.ones((2, 3))
    b = mx.nd.ones((3, 4))
    y = mx.nd.dot(a, b)
    assert y.shape == (2, 4)
    op = ndmod.get_op("dot")
    assert any(k[0] is op and k[2] == ((2, 3), (3, 4)) for k in ndmod._INFER_OK)
    for _ in range(2):      # a refusal is not remembered: it raises every time
        with pytest.raises(MXNetError, match="dot"):
            mx.nd.dot(a, mx.nd.ones((5, 4)))
    with pytest.raises(MXNetError, match="dot"):
        mx.nd.dot(a, b, transpose_a=True)     # same shapes, other attrs: inferred again
    np.testing.assert_array_equal(mx.nd.dot(a, b).asnumpy(), np.full((2, 4), 3.0))


def test_memo_under_record_and_backward():
    x = mx.nd.array(np.arange(6.0).reshape(2, 3))
    w = mx.nd.array(np.ones((3, 2)))
    x.attach_grad()
    for _ in range(3):
        with mx.autograd.record():
            loss = mx.nd.sum(mx.nd.dot(x, w) * 2)
        loss.backward()
        np.testing.assert_array_equal(x.grad.asnumpy(), np.full((2, 3), 4.0))
    with pytest.raises(MXNetError):
        with mx.autograd.record():
            mx.nd.dot(x, mx.nd.ones((4, 2)))
