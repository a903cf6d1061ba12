"""The ops of symbol/ops/nn_misc.py against real MXNet 1.9.1 (tests/golden/nn_misc_mxnet.json,
recorded by tests/golden/gen_nn_misc_mxnet.py): forward outputs and, for differentiable ops,
the input gradients for the recorded head gradients; plus their MXNet-style errors.  The
registry tables (tests/test_registry_table.py) check each op's gradient against finite
differences and its symbolic/JSON paths from the op's samples."""
import json
import os

import numpy as np
import pytest

import agjit as mx
from symbol.base import MXNetError

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "golden", "nn_misc_mxnet.json")) as _f:
    GOLD = json.load(_f)["cases"]


def _dec(rec, dtype=None):
    vals, shape = rec[0], rec[1]
    a = np.array([np.nan if v is None else float(v) for v in vals], dtype=np.float64).reshape(shape)
    return a.astype(dtype or (rec[2] if len(rec) > 2 else "float64"))


def _fn(path):
    obj = mx.nd
    for p in path.split("."):
        obj = getattr(obj, p)
    return obj


def _attrs(rec):
    return {k: tuple(v) if isinstance(v, list) else v for k, v in rec["attrs"].items()}


@pytest.mark.parametrize("name", sorted(GOLD))
def test_matches_mxnet(name):
    rec = GOLD[name]
    ins = [_dec(r) for r in rec["inputs"]]
    xs = [mx.nd.array(a, dtype=a.dtype) for a in ins]
    fn = _fn(rec["op"])
    if "grads" in rec:
        for x in xs:
            x.attach_grad()
        with mx.autograd.record():
            ys = fn(*xs, **_attrs(rec))
        ys = ys if isinstance(ys, (list, tuple)) else [ys]
        heads = [mx.nd.array(_dec(h, y.dtype), dtype=y.dtype) for h, y in zip(rec["heads"], ys)]
        mx.autograd.backward(ys, heads)
    else:
        ys = fn(*xs, **_attrs(rec))
        ys = ys if isinstance(ys, (list, tuple)) else [ys]
    assert len(ys) == len(rec["outputs"])
    for y, want in zip(ys, rec["outputs"]):
        w = _dec(want)
        assert y.shape == w.shape and np.dtype(y.dtype).name == want[2], (name, y.shape, y.dtype, w.shape, want[2])
        np.testing.assert_allclose(y.asnumpy().astype(np.float64), w.astype(np.float64),
                                   rtol=2e-5, atol=2e-6, err_msg=name)
    for x, g in zip(xs, rec.get("grads", [])):
        np.testing.assert_allclose(x.grad.asnumpy().astype(np.float64), _dec(g), rtol=2e-4,
                                   atol=2e-5, err_msg=name + " gradient")


def test_histogram_wrapper_and_edges():
    x = mx.nd.array(np.arange(6).reshape(2, 3))
    c, e = mx.nd.histogram(x, bins=mx.nd.array([0, 1, 3, 6]))      # MXNet: [1 2 3], [0 1 3 6]
    assert c.dtype == np.int64 and c.asnumpy().tolist() == [1, 2, 3]
    assert e.asnumpy().tolist() == [0, 1, 3, 6]
    c, e = mx.nd.histogram(x, bins=3)
    assert c.asnumpy().tolist() == [2, 2, 2] and e.shape == (4,)


def test_moments_global_and_symbolic_shapes():
    x = mx.nd.array(np.arange(6).reshape(2, 3))
    m, v = mx.nd.moments(x, axes=(0, 1))                              # MXNet: [2.5], [2.9166667]
    assert m.shape == (1,) and abs(m.asscalar() - 2.5) < 1e-6 and abs(v.asscalar() - 2.9166667) < 1e-6
    s = mx.sym.moments(mx.sym.var("x"), axes=(1,), keepdims=True)
    _a, outs, _x = s.infer_shape(x=(2, 3))
    assert outs == [(2, 1), (2, 1)]


def test_all_finite_init_output_false_gives_fresh_zero():
    x = mx.nd.array([1.0, 2.0])
    assert mx.nd.all_finite(x).asnumpy().tolist() == [1.0]
    assert mx.nd.all_finite(x, init_output=False).asnumpy().tolist() == [0.0]   # as MXNet


def test_amp_multicast_widest_and_narrowest():
    a = mx.nd.array([1, 2], dtype="float32")
    b = mx.nd.array([1, 2], dtype="float16")
    assert [o.dtype for o in mx.nd.amp_multicast(a, b, num_outputs=2)] == [np.float32] * 2
    assert [o.dtype for o in mx.nd.amp_multicast(a, b, num_outputs=2, cast_narrow=True)] == \
        [np.float16] * 2


def test_resize_and_spatial_json_round_trip():
    d = mx.sym.var("data")
    s = mx.sym.SpatialTransformer(mx.sym.contrib.BilinearResize2D(d, height=6, width=6),
                                  mx.sym.var("loc"), target_shape=(3, 3), transform_type="affine",
                                  sampler_type="bilinear")
    back = mx.sym.load_json(s.tojson())
    assert back.tojson() == s.tojson()
    _a, outs, _x = back.infer_shape(data=(2, 1, 4, 4), loc=(2, 6))
    assert outs == [(2, 1, 3, 3)]


@pytest.mark.parametrize("call,msg", [
    (lambda: mx.nd.moments(mx.nd.ones((2, 3))), "axes must be given"),
    (lambda: mx.nd.moments(mx.nd.ones((2, 3)), axes=(3,)), "axis 3 out of range"),
    (lambda: mx.nd.LRN(mx.nd.ones((2, 3)), nsize=0), "nsize must be positive"),
    (lambda: mx.nd.ravel_multi_index(mx.nd.array([[5], [1]]), shape=(3, 4)), "out of range"),
    (lambda: mx.nd.unravel_index(mx.nd.array([13]), shape=(3, 4)), "out of range"),
    (lambda: mx.nd.contrib.BilinearResize2D(mx.nd.ones((2, 3, 4))), "must be 4-D"),
    (lambda: mx.nd.contrib.AdaptiveAvgPooling2D(mx.nd.ones((1, 1, 4, 4)), output_size=(0, 2)),
     "output_size must be positive"),
    (lambda: mx.nd.GridGenerator(mx.nd.ones((2, 5)), transform_type="affine", target_shape=(3, 3)),
     "shape \\(batch, 6\\)"),
    (lambda: mx.nd.BilinearSampler(mx.nd.ones((2, 1, 3, 3)), mx.nd.ones((1, 2, 2, 2))),
     "differ in batch size"),
    (lambda: mx.nd.contrib.interleaved_matmul_selfatt_qk(mx.nd.ones((3, 2, 10)), heads=2),
     "not a multiple of heads"),
])
def test_errors_name_the_op(call, msg):
    with pytest.raises(MXNetError, match=msg):
        call()
