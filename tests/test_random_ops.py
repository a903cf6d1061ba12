"""Random sampling: MXNet's legacy ops (nd.random_normal / uniform ...), nd.random.* with
scalar and NDArray parameters, mx.sym.random, seeding (FINDINGS.md "Legacy names and ops")."""
import json

import numpy as np
import pytest

import agjit as mx
from agjit.base import MXNetError


def test_legacy_ops_need_a_shape_and_keep_dtype():
    assert mx.nd.random_normal(shape=(2, 3)).shape == (2, 3)
    assert mx.nd.random_uniform(low=0, high=1, shape=(2, 3)).dtype == np.float32
    assert mx.nd.uniform(shape=(2, 2), dtype="float64").dtype == np.float64
    assert mx.nd.normal(shape=(3,)).shape == (3,)
    with pytest.raises(MXNetError, match="_random_normal: shape must be given"):
        mx.nd.random_normal().asnumpy()


def test_scalar_and_tensor_parameters():
    assert mx.random.normal().shape == (1,)
    assert mx.random.uniform(low=2, high=3, shape=(2,), dtype="float16").dtype == np.float16
    u = mx.nd.random.uniform(low=mx.nd.array([0.0, 10.0]), high=mx.nd.array([1.0, 11.0]),
                             shape=(50,)).asnumpy()
    assert u.shape == (2, 50)
    assert (u[0] >= 0).all() and (u[0] < 1).all() and (u[1] >= 10).all() and (u[1] < 11).all()
    fixed = mx.nd.random.normal(loc=mx.nd.array([1.0, 2.0]), scale=mx.nd.array([0.0, 0.0]), shape=2)
    np.testing.assert_array_equal(fixed.asnumpy(), [[1, 1], [2, 2]])
    assert mx.nd.random.uniform(low=3, high=3, shape=(2,)).asnumpy().tolist() == [3.0, 3.0]
    r = mx.nd.random.randint(low=0, high=5, shape=(200,))
    assert r.dtype == np.int32 and r.asnumpy().min() >= 0 and r.asnumpy().max() < 5
    with pytest.raises(MXNetError, match="all NDArrays or all scalars"):
        mx.nd.random.uniform(low=mx.nd.array([0.0]), high=1.0)


def test_seed_reproduces_every_form():
    def draw():
        return [mx.nd.random.uniform(shape=(4,)).asnumpy(), mx.nd.random_normal(shape=(3,)).asnumpy(),
                mx.nd.random.normal(loc=mx.nd.array([0.0, 5.0]), scale=mx.nd.array([1.0, 1.0])).asnumpy()]
    mx.random.seed(42)
    a = draw()
    mx.random.seed(42)
    b = draw()
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], draw()[0])


def _node(sym):
    return json.loads(sym.tojson())["nodes"][0]


def test_symbol_forms_write_mxnets_attrs():
    assert _node(mx.sym.random_normal(shape=(2, 3), name="r")) == {
        "op": "_random_normal", "name": "r", "attrs": {"shape": "(2, 3)"}, "inputs": []}
    assert _node(mx.sym.random.normal(shape=(2, 3), name="r"))["attrs"] == {
        "loc": "0", "scale": "1", "shape": "(2, 3)"}
    assert _node(mx.sym.uniform(low=-1, high=1, shape=(2,), name="u"))["attrs"] == {
        "high": "1", "low": "-1", "shape": "(2,)"}
    s = mx.sym.random.uniform(low=mx.sym.var("lo"), high=mx.sym.var("hi"), shape=(4,))
    assert s.infer_shape(lo=(3,), hi=(3,))[1] == [(3, 4)]
    out = s.eval(lo=mx.nd.zeros((3,)), hi=mx.nd.ones((3,)))[0].asnumpy()
    assert out.shape == (3, 4) and (out >= 0).all() and (out < 1).all()
