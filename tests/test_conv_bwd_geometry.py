"""Lowering and kernel safety: the convolution gradient ops refuse a weight whose shape does not fit ``ograd`` and
``data`` (their kernels index all three by one geometry and would read past the end of a
smaller weight), and the eager kernels' trial run cuts the batch, never the parameters.

Found as a segfault in OpenBLAS: the eager-kernels trial of ``_backward_Convolution_data``
(ResNet-18 training, batch 16) cut the 4-D weight to one filter like the data."""
import numpy as np
import pytest

from symbol.base import MXNetError
from symbol.registry import get_op

import agjit.eager_kernels as ek

_ATTRS = {"kernel": "(3, 3)", "pad": "(1, 1)", "num_filter": "8", "no_bias": "True"}


@pytest.mark.parametrize("name", ["_backward_Convolution_data", "_backward_Convolution_weight"])
def test_conv_gradient_ops_check_the_weight_against_ograd(name):
    op = get_op(name)
    a = op.parse_attrs(_ATTRS)
    g, x, w = (4, 8, 6, 6), (4, 3, 6, 6), (8, 3, 3, 3)
    want = x if name.endswith("data") else w
    assert tuple(op.infer_shape(a, [g, x, w])[1][0]) == want
    with pytest.raises(MXNetError, match=name + ".*weight"):
        op.infer_shape(a, [g, x, (1, 3, 3, 3)])          # one filter, not num_filter=8
    with pytest.raises(MXNetError, match=name + ": ograd"):
        op.infer_shape(a, [(4, 8, 5, 5), x, w])          # ograd of another geometry


@pytest.mark.parametrize("name", ["_backward_Deconvolution_data",
                                  "_backward_Deconvolution_weight"])
def test_deconv_gradient_ops_check_the_weight_against_ograd(name):
    op = get_op(name)
    a = op.parse_attrs({"kernel": "(3, 3)", "num_filter": "5", "no_bias": "True"})
    x, w = (2, 4, 6, 6), (4, 5, 3, 3)                   # Deconvolution: (in, out/group, k)
    g = (2, 5, 8, 8)
    op.infer_shape(a, [g, x, w])
    with pytest.raises(MXNetError, match=name):
        op.infer_shape(a, [g, x, (1, 5, 3, 3)])


def test_trial_cuts_the_batch_not_the_weight():
    op = get_op("_backward_Convolution_data")
    a = op.parse_attrs(_ATTRS)
    rng = np.random.default_rng(0)
    g = rng.standard_normal((4, 8, 6, 6)).astype(np.float32)
    x = rng.standard_normal((4, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    c = ek._prepare(op, a, [g, x, w])
    assert c
    arrays, shapes = ek._trial(op, a, [g, x, w], c)
    assert [t.shape for t in arrays] == [(1, 8, 6, 6), (1, 3, 6, 6), (8, 3, 3, 3)]
    assert shapes == [(1, 3, 6, 6)]
    np.testing.assert_array_equal(arrays[2], w)


def test_div_sqrt_dim_compiles_on_its_own():
    """Its statements call math.sqrt: the generated module must import math even when no
    other op of the graph needs it (a NameError in Numba's typing before)."""
    import agjit as mx
    f = mx.jit(lambda x: mx.nd.contrib.div_sqrt_dim(x) * 2, tiered=False)
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4) - 5
    want = (x / np.float32(2.0)) * 2
    np.testing.assert_allclose(f(mx.nd.array(x)).asnumpy(), want, rtol=1e-6)
