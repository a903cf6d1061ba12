"""softmax(data, length, use_length=True): MXNet 1.9.1's masked softmax.

The expected numbers were printed by MXNet 1.9.1 (pip, CPU) for the same inputs; the
compiled path (one jitted forward+backward, tiers off) is compared with eager.  The registry
samples of softmax include use_length, so the op tables check shapes, dtypes and gradients
against finite differences too.
"""
import json

import numpy as np
import pytest

import agjit as mx
from symbol.base import MXNetError

X = np.arange(12, dtype=np.float64).reshape(3, 4) / 4.0
HEAD = np.arange(12, dtype=np.float64).reshape(3, 4)
# MXNet 1.9.1: softmax(X, [1, 3, 0], use_length=True, temperature=2.0), and the gradient of
# sum(y * HEAD) (backward with out_grad HEAD)
MX_Y = [[1.0, 0.0, 0.0, 0.0],
        [0.29263946413993835, 0.3316039741039276, 0.37575653195381165, 0.0],
        [0.0, 0.0, 0.0, 0.0]]
MX_GX = [[0.0, 0.0, 0.0, 0.0],
         [-0.1584813892841339, -0.013780965469777584, 0.17226238548755646, 0.0],
         [0.0, 0.0, 0.0, 0.0]]
# MXNet 1.9.1: softmax(arange(24).reshape(2, 3, 4) / 8, [[1,2,3,1],[2,1,2,3]] (int64), axis=1)
MX_AX1 = [[[1.0, 0.3775406777858734, 0.18632373213768005, 1.0],
           [0.0, 0.622459352016449, 0.30719590187072754, 0.0],
           [0.0, 0.0, 0.5064803957939148, 0.0]],
          [[0.3775406777858734, 1.0, 0.3775406777858734, 0.18632373213768005],
           [0.622459352016449, 0.0, 0.622459352016449, 0.30719590187072754],
           [0.0, 0.0, 0.0, 0.5064803957939148]]]


def _lengths(v, dtype="int32"):
    return mx.nd.array(np.asarray(v), dtype=dtype)


def test_forward_and_gradient_equal_mxnet():
    x = mx.nd.array(X)
    length = _lengths([1, 3, 0])
    x.attach_grad()
    length.attach_grad()
    with mx.autograd.record():
        y = mx.nd.softmax(x, length, use_length=True, temperature=2.0)
    y.backward(mx.nd.array(HEAD))
    np.testing.assert_allclose(y.asnumpy(), MX_Y, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(x.grad.asnumpy(), MX_GX, rtol=1e-5, atol=1e-7)
    assert length.grad.dtype == np.int32 and not length.grad.asnumpy().any()
    # the keyword form, another axis, int64 lengths
    x3 = mx.nd.array(np.arange(24).reshape(2, 3, 4) / 8.0)
    out = mx.nd.softmax(x3, length=_lengths([[1, 2, 3, 1], [2, 1, 2, 3]], "int64"), axis=1,
                        use_length=True)
    np.testing.assert_allclose(out.asnumpy(), MX_AX1, rtol=1e-6, atol=1e-7)


def test_lengths_at_the_edges():
    x = mx.nd.array(X)
    full = mx.nd.softmax(x).asnumpy()
    y = mx.nd.softmax(x, _lengths([4, 0, -2]), use_length=True).asnumpy()
    np.testing.assert_allclose(y[0], full[0], rtol=1e-6)
    assert not y[1:].any()      # MXNet: a length <= 0 gives a row of zeros


def test_symbol_graph_and_inference():
    s = mx.sym.softmax(mx.sym.var("d"), use_length=True, axis=0, name="sm")
    assert s.list_arguments() == ["d", "sm_length"]     # the auto-created input, as MXNet
    nodes = json.loads(s.tojson())["nodes"]
    assert nodes[2]["attrs"] == {"axis": "0", "use_length": "True"}
    assert nodes[2]["inputs"] == [[0, 0, 0], [1, 0, 0]]
    args, outs, _ = s.infer_shape(d=(3, 4))
    assert args == [(3, 4), (4,)] and outs == [(3, 4)]
    with pytest.raises(MXNetError, match=r"length shape \(3\) must be .*\(4\)"):
        s.infer_shape(d=(3, 4), sm_length=(3,))
    again = mx.sym.load_json(s.tojson())
    assert again.tojson() == s.tojson()
    out = again.eval(d=mx.nd.array(X), sm_length=_lengths([1, 2, 3, 2]))[0].asnumpy()
    ref = mx.nd.softmax(mx.nd.array(X), _lengths([1, 2, 3, 2]), axis=0, use_length=True)
    np.testing.assert_array_equal(out, ref.asnumpy())


@pytest.mark.parametrize("call, pattern", [
    (lambda x: mx.nd.softmax(x, _lengths([1, 5, 2]), use_length=True),
     r"softmax: length 5 exceeds the size 4 of axis -1"),
    (lambda x: mx.nd.softmax(x, mx.nd.array([1, 2, 2]), use_length=True),
     r"softmax: use_length=True needs an integer length .* got float32"),
    (lambda x: mx.nd.softmax(x, use_length=True), r"softmax: use_length=True needs the input"),
    (lambda x: mx.nd.softmax(x, _lengths([1, 2, 2])), r"softmax: expected 1 inputs"),
    (lambda x: mx.nd.log_softmax(x, use_length=True), r"log_softmax: use_length=True needs"),
])
def test_bad_input_is_refused_clearly(call, pattern):
    with pytest.raises(MXNetError, match=pattern):
        call(mx.nd.array(X))


def test_compiled_equals_eager_forward_and_backward():
    cases = [((3, 4), -1, [1, 4, 0], 1.0), ((2, 3, 4), 1, [[1, 2, 3, 1], [2, 1, 3, 3]], 2.0),
             ((3, 4, 2), 1, [[1, 2], [3, 0], [4, 4]], 0.5)]
    rs = np.random.RandomState(3)
    data = [(rs.standard_normal(shape).astype(np.float32), np.asarray(ln, dtype=np.int32),
             rs.standard_normal(shape).astype(np.float32)) for shape, _, ln, _ in cases]

    def step(*arrays):
        total = None
        for (shape, ax, _, t), k in zip(cases, range(len(cases))):
            x, ln, w = arrays[3 * k: 3 * k + 3]
            y = mx.nd.softmax(x, ln, axis=ax, use_length=True, temperature=t)
            term = mx.nd.sum(y * w)
            total = term if total is None else total + term
        return total

    f = mx.jit(step, tiered=False)
    results = []
    for fn in (f, step):
        arrays = []
        for x, ln, w in data:
            xa = mx.nd.array(x)
            xa.attach_grad()
            arrays += [xa, mx.nd.array(ln, dtype="int32"), mx.nd.array(w)]
        with mx.autograd.record():
            loss = fn(*arrays)
        loss.backward()
        results.append((loss.asnumpy(), [arrays[3 * k].grad.asnumpy() for k in range(3)]))
    assert "no eager segments" in f.explain()
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    for gc, ge in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(gc, ge, rtol=1e-4, atol=1e-6)
    # the compiled kernel refuses a length beyond the axis too (it never reads past a row);
    # the first call of the predict-mode signature traces eagerly, the second runs compiled
    def arrays_with(lengths):
        return [mx.nd.array(a) if a.dtype != np.int32 else mx.nd.array(lengths(a), dtype="int32")
                for x, ln, w in data for a in (x, ln, w)]
    np.testing.assert_allclose(f(*arrays_with(lambda a: a)).asnumpy(), results[1][0], rtol=1e-5)
    with pytest.raises(ValueError, match="softmax.length_exceeds_axis"):
        f(*arrays_with(lambda a: np.full_like(a, 9)))
