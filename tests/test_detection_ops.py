"""ROIPooling (MXNet's rounding and bin edges, gradient to the argmax), smooth_l1 and Crop
against NumPy written from MXNet 1.9.1's definitions (FINDINGS.md "Detection ops")."""
import numpy as np
import pytest

import agjit as mx
from agjit.base import MXNetError


def test_roi_pooling_bins_and_gradient():
    x = np.arange(36.0).reshape(1, 1, 6, 6)
    rois = mx.nd.array([[0, 0, 0, 3, 3], [0, 1, 1, 4, 2]])
    xx = mx.nd.array(x)
    xx.attach_grad()
    with mx.autograd.record():
        y = mx.nd.ROIPooling(xx, rois, pooled_size=(2, 2), spatial_scale=1.0)
    y.backward()
    # roi 0 covers rows/cols 0..3: bins of 2x2, the max is each bin's bottom-right element
    assert y.asnumpy()[0, 0].tolist() == [[7.0, 9.0], [19.0, 21.0]]
    # roi 1: x 1..4, y 1..2 -> height 2, width 4: bins 1x2
    assert y.asnumpy()[1, 0].tolist() == [[8.0, 10.0], [14.0, 16.0]]
    g = np.zeros((6, 6))
    for r, c in [(1, 1), (1, 3), (3, 1), (3, 3), (1, 2), (1, 4), (2, 2), (2, 4)]:
        g[r, c] += 1
    np.testing.assert_array_equal(xx.grad.asnumpy()[0, 0], g)
    with pytest.raises(MXNetError, match="batch index"):
        mx.nd.ROIPooling(xx, mx.nd.array([[3, 0, 0, 1, 1]]), pooled_size=(1, 1),
                         spatial_scale=1.0).asnumpy()


def test_smooth_l1_and_crop():
    v = np.array([-2.0, -0.5, 0.1, 0.2, 1.5])
    for s in (1.0, 2.0):
        got = mx.nd.smooth_l1(mx.nd.array(v), scalar=s).asnumpy()
        want = np.where(np.abs(v) < 1 / s ** 2, 0.5 * (s * v) ** 2, np.abs(v) - 0.5 / s ** 2)
        np.testing.assert_allclose(got, want, rtol=1e-6)
    xc = np.arange(40.0).reshape(2, 1, 4, 5)
    np.testing.assert_array_equal(mx.nd.Crop(mx.nd.array(xc), h_w=(2, 3), offset=(1, 1), num_args=1)
                                  .asnumpy(), xc[..., 1:3, 1:4])
    np.testing.assert_array_equal(mx.nd.Crop(mx.nd.array(xc), h_w=(2, 3), center_crop=True,
                                             num_args=1).asnumpy(), xc[..., 1:3, 1:4])
    np.testing.assert_array_equal(mx.nd.Crop(mx.nd.array(xc), mx.nd.zeros((1, 1, 3, 3)),
                                             num_args=2).asnumpy(), xc[..., :3, :3])
    with pytest.raises(MXNetError, match="does not fit"):
        mx.nd.Crop(mx.nd.array(xc), h_w=(5, 3), num_args=1)
