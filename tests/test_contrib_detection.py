"""The _contrib_ box operators, khatri_rao and _identity_with_attr_like_rhs against numbers
printed by real MXNet 1.9.1 for the same inputs (mx.nd.contrib.* / mx.sym.contrib.*)."""
import numpy as np
import pytest

import agjit as mx

D = [[0., 0.9, 0.1, 0.1, 0.5, 0.5], [1., 0.8, 0.12, 0.1, 0.52, 0.5],
     [0., 0.7, 0.6, 0.6, 0.9, 0.9], [1., 0.05, 0., 0., 1, 1], [0., 0.75, 0.11, 0.1, 0.5, 0.52]]
M = [-1.] * 6


@pytest.mark.parametrize("kw, rows", [
    ({"overlap_thresh": 0.5, "valid_thresh": 0.1}, [D[0], D[2], M, M, M]),
    ({"overlap_thresh": 0.5, "valid_thresh": 0.1, "id_index": 0}, [D[0], D[1], D[2], M, M]),
    ({"overlap_thresh": 0.5, "topk": 2, "id_index": 0, "force_suppress": True}, [D[0], M, M, M, M]),
    ({"overlap_thresh": 0.5, "background_id": 0, "id_index": 0}, [D[1], D[3], M, M, M]),
    ({"in_format": "corner", "out_format": "center"},
     [[0, 0.9, 0.3, 0.3, 0.4, 0.4], [0, 0.7, 0.75, 0.75, 0.3, 0.3], [1, 0.05, 0.5, 0.5, 1, 1], M, M]),
])
def test_box_nms_matches_mxnet(kw, rows):
    out = mx.nd.contrib.box_nms(mx.nd.array(D), **kw)
    np.testing.assert_allclose(out.asnumpy(), np.array(rows, dtype=np.float32), rtol=1e-6, atol=1e-6)
    alias = mx.nd.contrib.box_non_maximum_suppression(mx.nd.array(D), **kw)
    np.testing.assert_array_equal(alias.asnumpy(), out.asnumpy())


def test_box_nms_gradient_goes_to_kept_rows():
    x = mx.nd.array(D)
    x.attach_grad()
    with mx.autograd.record():
        y = mx.nd.contrib.box_nms(x, overlap_thresh=0.5, valid_thresh=0.1)
    y.backward(mx.nd.arange(30).reshape((5, 6)))
    want = np.zeros((5, 6), np.float32)
    want[0] = np.arange(6)
    want[2] = np.arange(6, 12)
    np.testing.assert_array_equal(x.grad.asnumpy(), want)


def test_box_iou_matches_mxnet():
    a = mx.nd.array([[0, 0, 1, 1], [0.5, 0.5, 1.5, 1.5]])
    b = mx.nd.array([[0, 0, 1, 1], [0, 0, 2, 2], [3, 3, 4, 4]])
    np.testing.assert_allclose(mx.nd.contrib.box_iou(a, b).asnumpy(),
                               [[1, 0.25, 0], [0.142857, 0.25, 0]], rtol=1e-5)
    np.testing.assert_allclose(mx.nd.contrib.box_iou(a, b, format="center").asnumpy(),
                               [[1, 0.25, 0], [0.2093, 0.3333, 0.0034]], atol=1e-4)
    x = mx.nd.array([[0, 0, 1, 1]])
    x.attach_grad()
    with mx.autograd.record():
        y = mx.nd.contrib.box_iou(x, b)
    y.backward()
    assert x.grad.asnumpy().tolist() == [[0, 0, 0, 0]]


def test_multibox_prior_matches_mxnet():
    p = mx.nd.contrib.MultiBoxPrior(mx.nd.zeros((1, 3, 2, 3)), sizes=[0.5, 0.25], ratios=[1, 2])
    assert p.shape == (1, 18, 4)
    np.testing.assert_allclose(p.asnumpy()[0, :6], [
        [0., 0., 0.3333, 0.5], [0.0833, 0.125, 0.25, 0.375], [-0.069, 0.0732, 0.4024, 0.4268],
        [0.3333, 0., 0.6667, 0.5], [0.4167, 0.125, 0.5833, 0.375], [0.2643, 0.0732, 0.7357, 0.4268]],
        atol=1e-4)
    p = mx.nd.contrib.MultiBoxPrior(mx.nd.zeros((1, 3, 2, 3)), sizes=[0.5], ratios=[1, 2, 0.5],
                                    clip=True, steps=(0.4, 0.3), offsets=(0.2, 0.7))
    np.testing.assert_allclose(p.asnumpy()[0, :6], [
        [0.0433, 0., 0.3767, 0.33], [0., 0., 0.4457, 0.2568], [0.0921, 0., 0.3279, 0.4336],
        [0.3433, 0., 0.6767, 0.33], [0.2743, 0., 0.7457, 0.2568], [0.3921, 0., 0.6279, 0.4336]],
        atol=1e-4)


@pytest.mark.parametrize("kw, rows, cols", [
    ({"threshold": 1e-12}, [1, -1, 0], [2, 0]),
    ({"threshold": 0.25, "is_ascend": True, "topk": 1}, [-1, 0, -1], [1, -1]),
    ({"threshold": 0.35}, [1, -1, -1], [-1, 0]),
])
def test_bipartite_matching_matches_mxnet(kw, rows, cols):
    s = mx.nd.array([[0.5, 0.6], [0.1, 0.2], [0.3, 0.4]])
    r, c = mx.nd.contrib.bipartite_matching(s, **kw)
    assert r.asnumpy().tolist() == rows and c.asnumpy().tolist() == cols


def test_khatri_rao_matches_mxnet():
    out = mx.nd.khatri_rao(mx.nd.array([[1, 2], [3, 4]]), mx.nd.array([[1, 0], [2, 1], [0, 5]]))
    assert out.asnumpy().tolist() == [[1, 0], [2, 2], [0, 10], [3, 0], [6, 4], [0, 20]]


def test_symbolic_names_and_shapes_as_mxnet():
    s = mx.sym.contrib.box_nms(mx.sym.var("d"))
    assert s.list_outputs()[0].endswith("_output0") and s.name.startswith("box_nms")
    assert s.infer_shape(d=(2, 5, 6)) == ([(2, 5, 6)], [(2, 5, 6)], [])
    assert '"op": "_contrib_box_nms"' in s.tojson()
    assert mx.sym.contrib.MultiBoxPrior(mx.sym.var("d"), sizes=[0.5, 0.25]).infer_shape(
        d=(1, 3, 4, 4))[1] == [(1, 32, 4)]
    assert mx.sym.contrib.box_iou(mx.sym.var("a"), mx.sym.var("b")).infer_shape(
        a=(2, 3, 4), b=(5, 4))[1] == [(2, 3, 5)]
    bm = mx.sym.contrib.bipartite_matching(mx.sym.var("a"), threshold=0.1)
    assert bm.infer_shape(a=(2, 3, 4))[1] == [(2, 3), (2, 4)]
    assert len(bm.list_outputs()) == 2


def test_bad_boxes_raise_mxnet_error():
    with pytest.raises(mx.MXNetError, match="4 values per box"):
        mx.nd.contrib.box_iou(mx.nd.ones((2, 3)), mx.nd.ones((2, 4)))
    with pytest.raises(mx.MXNetError, match="coord_start"):
        mx.nd.contrib.box_nms(mx.nd.ones((3, 5)), coord_start=2)
    with pytest.raises(mx.MXNetError, match="khatri_rao"):
        mx.nd.khatri_rao(mx.nd.ones((2, 3)), mx.nd.ones((2, 4)))


def test_identity_with_attr_like_rhs_infers_backwards():
    w = mx.sym.Variable("weight")
    wt = mx.sym._internal._identity_with_attr_like_rhs(
        mx.sym.broadcast_add(w, mx.sym.Variable("wshift", shape=(1,))), w)
    net = mx.sym.FullyConnected(mx.sym.Variable("data"), weight=wt, num_hidden=6, no_bias=True)
    args, outs, _ = net.infer_shape(data=(3, 40))
    assert dict(zip(net.list_arguments(), args))["weight"] == (6, 40)
    assert outs == [(3, 6)]


def test_multibox_target_and_detection_match_mxnet():
    """tests/golden/multibox.json from tests/golden/make_multibox.py run by real MXNet."""
    import json
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "golden"))
    import make_multibox
    want = json.load(open(os.path.join(os.path.dirname(__file__), "golden", "multibox.json")))
    got = make_multibox.run(mx)
    for w, g in zip(want["target"], got["target"]):
        for a, b in zip(w, g):
            np.testing.assert_allclose(np.array(b), np.array(a), rtol=1e-5, atol=1e-5)
    for w, g in zip(want["detection"], got["detection"]):
        np.testing.assert_allclose(np.array(g), np.array(w), rtol=1e-5, atol=1e-5)
    for k in ("target_sym", "detection_sym", "detection_grad"):
        assert got[k] == want[k], k
