"""NDArray: creation and dtypes, operators and what they record (FINDINGS §6.3), indexing,
``__setitem__``, reshape codes, conversions, printing and contexts."""
import json

import numpy as np
import pytest

import agjit as mx
from agjit import autograd as ag
from symbol.base import MXNetError

nd = mx.nd


def close(a, b, tol=1e-6):
    a = a.asnumpy() if hasattr(a, "asnumpy") else np.asarray(a)
    np.testing.assert_allclose(a, np.asarray(b, dtype=np.float64), rtol=tol, atol=tol)


# ---------------------------------------------------------------------------------------
# creation and dtypes
# ---------------------------------------------------------------------------------------
def test_creation_default_float32():
    for a in (nd.array([1, 2, 3]), nd.array(np.arange(3.0)), nd.array([[1.5]]), nd.zeros((2, 3)),
              nd.ones(4), nd.full((2,), 7), nd.empty((1, 2)), nd.arange(3)):
        assert a.dtype == np.float32 and a.asnumpy().dtype == np.float32, a
    assert nd.zeros((2, 3)).shape == (2, 3)
    assert nd.ones(4).shape == (4,)
    close(nd.full((2,), 7), [7, 7])
    close(nd.arange(1, 7, 2), [1, 3, 5])
    close(nd.arange(2, repeat=2), [0, 0, 1, 1])


def test_creation_explicit_dtypes():
    assert nd.array([1, 2], dtype="float64").dtype == np.float64
    assert nd.array([1, 2], dtype=np.int32).dtype == np.int32
    assert nd.zeros((2,), dtype="int64").dtype == np.int64
    assert nd.ones((2,), dtype=np.float16).dtype == np.float16
    src = nd.array([1, 2], dtype="float64")
    assert nd.array(src).dtype == np.float64          # an NDArray source keeps its dtype
    x = nd.array([[1, 2], [3, 4]])
    assert nd.zeros_like(x).dtype == np.float32 and nd.ones_like(x).shape == (2, 2)
    close(nd.ones_like(x), np.ones((2, 2)))
    close(nd.zeros_like(x), np.zeros((2, 2)))


def test_basic_properties():
    x = nd.array(np.arange(6).reshape(2, 3))
    assert (x.shape, x.size, x.ndim, len(x)) == ((2, 3), 6, 2, 2)
    assert x.dtype is np.float32
    assert x.context == mx.cpu(0)
    close(x.T, np.arange(6).reshape(2, 3).T)
    rows = list(x)
    assert len(rows) == 2
    close(rows[1], [3, 4, 5])
    assert float(nd.array([2.5])) == 2.5 and int(nd.array([3])) == 3
    assert bool(nd.array([1])) is True
    with pytest.raises(ValueError):
        bool(nd.ones((2,)))


# ---------------------------------------------------------------------------------------
# operators: values
# ---------------------------------------------------------------------------------------
A = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.5]])
B = np.array([[2.0, 1.0, -1.0], [3.0, 0.5, 2.0]])


def test_operator_values():
    a, b = nd.array(A), nd.array(B)
    close(a + b, A + B)
    close(a - b, A - B)
    close(a * b, A * B)
    close(a / b, A / B)
    close(a ** nd.array(np.abs(B)), A ** np.abs(B), 1e-5)
    close(a + 1, A + 1)
    close(1 + a, A + 1)
    close(2 - a, 2 - A)
    close(3 * a, 3 * A)
    close(1 / b, 1 / B)
    close(2 ** a, 2 ** A, 1e-5)
    close(-a, -A)
    close(abs(a), np.abs(A))
    close(a % 3, np.mod(A, 3))
    close(a > b, A > B)
    close(a <= 1, A <= 1)
    close(a == b, A == B)
    close(a != 1, A != 1)
    close(a + nd.array([10.0, 20.0, 30.0]), A + [10, 20, 30])   # broadcasting
    close(nd.maximum(a, b), np.maximum(A, B))
    close(nd.minimum(a, 0.5), np.minimum(A, 0.5))
    assert (a + b).dtype == np.float32 and (a > b).dtype == np.float32
    c = nd.array(A)
    c += 1
    c *= 2
    close(c, (A + 1) * 2)


# ---------------------------------------------------------------------------------------
# operators: recorded op names and attribute strings (FINDINGS §6.3)
# ---------------------------------------------------------------------------------------
def _c(*shape):
    return nd.array(np.arange(1, 1 + int(np.prod(shape)), dtype=np.float64).reshape(shape) / 7.0)


# (id, shape of the recorded variable x, expression, [(op, attrs) of the op nodes in order])
RECORDED = [
    ("add", (2, 3), lambda x: x + _c(2, 3), [("broadcast_add", {})]),
    ("sub", (2, 3), lambda x: x - _c(2, 3), [("broadcast_sub", {})]),
    ("mul", (2, 3), lambda x: x * _c(2, 3), [("broadcast_mul", {})]),
    ("div", (2, 3), lambda x: x / _c(2, 3), [("broadcast_div", {})]),
    ("mod", (2, 3), lambda x: x % _c(2, 3), [("broadcast_mod", {})]),
    ("pow", (2, 3), lambda x: x ** _c(2, 3), [("broadcast_power", {})]),
    ("eq", (2, 3), lambda x: x == _c(2, 3), [("broadcast_equal", {})]),
    ("ne", (2, 3), lambda x: x != _c(2, 3), [("broadcast_not_equal", {})]),
    ("gt", (2, 3), lambda x: x > _c(2, 3), [("broadcast_greater", {})]),
    ("ge", (2, 3), lambda x: x >= _c(2, 3), [("broadcast_greater_equal", {})]),
    ("lt", (2, 3), lambda x: x < _c(2, 3), [("broadcast_lesser", {})]),
    ("le", (2, 3), lambda x: x <= _c(2, 3), [("broadcast_lesser_equal", {})]),
    ("maximum", (2, 3), lambda x: nd.maximum(x, _c(2, 3)), [("broadcast_maximum", {})]),
    ("minimum", (2, 3), lambda x: nd.minimum(x, _c(2, 3)), [("broadcast_minimum", {})]),
    ("plus_s", (2, 3), lambda x: x + 1, [("_plus_scalar", {"scalar": "1.0"})]),
    ("rplus_s", (2, 3), lambda x: 1 + x, [("_plus_scalar", {"scalar": "1.0"})]),
    ("minus_s", (2, 3), lambda x: x - 1, [("_minus_scalar", {"scalar": "1.0"})]),
    ("rminus_s", (2, 3), lambda x: 2 - x, [("_rminus_scalar", {"scalar": "2.0"})]),
    ("mul_s", (2, 3), lambda x: x * 3, [("_mul_scalar", {"scalar": "3.0"})]),
    ("rmul_s", (2, 3), lambda x: 3 * x, [("_mul_scalar", {"scalar": "3.0"})]),
    ("float_s", (2, 3), lambda x: x * 0.25, [("_mul_scalar", {"scalar": "0.25"})]),
    ("div_s", (2, 3), lambda x: x / 2, [("_div_scalar", {"scalar": "2.0"})]),
    ("rdiv_s", (2, 3), lambda x: 1 / x, [("_rdiv_scalar", {"scalar": "1.0"})]),
    ("pow_s", (2, 3), lambda x: x ** 2, [("_power_scalar", {"scalar": "2.0"})]),
    ("rpow_s", (2, 3), lambda x: 2 ** x, [("_rpower_scalar", {"scalar": "2.0"})]),
    ("mod_s", (2, 3), lambda x: x % 3, [("_mod_scalar", {"scalar": "3.0"})]),
    ("rmod_s", (2, 3), lambda x: 3 % x, [("_rmod_scalar", {"scalar": "3.0"})]),
    ("neg", (2, 3), lambda x: -x, [("_mul_scalar", {"scalar": "-1.0"})]),
    ("gt_s", (2, 3), lambda x: x > 1, [("_greater_scalar", {"scalar": "1.0"})]),
    ("ge_s", (2, 3), lambda x: x >= 1, [("_greater_equal_scalar", {"scalar": "1.0"})]),
    ("lt_s", (2, 3), lambda x: x < 1, [("_lesser_scalar", {"scalar": "1.0"})]),
    ("le_s", (2, 3), lambda x: x <= 2, [("_lesser_equal_scalar", {"scalar": "2.0"})]),
    ("eq_s", (2, 3), lambda x: x == 2, [("_equal_scalar", {"scalar": "2.0"})]),
    ("ne_s", (2, 3), lambda x: x != 2, [("_not_equal_scalar", {"scalar": "2.0"})]),
    ("max_s", (2, 3), lambda x: nd.maximum(x, 1.5), [("_maximum_scalar", {"scalar": "1.5"})]),
    ("min_s", (2, 3), lambda x: nd.minimum(x, 2), [("_minimum_scalar", {"scalar": "2.0"})]),
    ("chain", (2, 3), lambda x: (2 - x) * (1 / x),
     [("_rminus_scalar", {"scalar": "2.0"}), ("_rdiv_scalar", {"scalar": "1.0"}), ("broadcast_mul", {})]),
] + [
    (u, (2, 3), (lambda u: lambda x: getattr(nd, u)(x))(u), [(u, {})])
    for u in ("exp", "log", "sqrt", "square", "abs", "sin", "cos", "tanh", "sigmoid", "relu", "log1p",
              "expm1", "reciprocal", "rsqrt", "negative", "sign")
] + [
    ("Activation", (2, 3), lambda x: nd.Activation(x, act_type="tanh"), [("Activation", {"act_type": "tanh"})]),
    ("LeakyReLU", (2, 3), lambda x: nd.LeakyReLU(x, slope=0.1), [("LeakyReLU", {"slope": "0.1"})]),
    ("clip", (2, 3), lambda x: nd.clip(x, -0.5, 0.5), [("clip", {"a_min": "-0.5", "a_max": "0.5"})]),
    ("clip_int", (2, 3), lambda x: nd.clip(x, 0, 3), [("clip", {"a_min": "0", "a_max": "3"})]),
    ("stop_gradient", (2, 3), lambda x: nd.stop_gradient(x), [("BlockGrad", {})]),
    ("BlockGrad", (2, 3), lambda x: nd.BlockGrad(x), [("BlockGrad", {})]),
    ("elemwise_add", (2, 3), lambda x: nd.elemwise_add(x, x), [("elemwise_add", {})]),
    ("add_n", (2, 3), lambda x: nd.add_n(x, x, x), [("add_n", {"num_args": "3"})]),
    ("zeros_like", (2, 3), lambda x: nd.zeros_like(x), [("zeros_like", {})]),
    ("astype", (2, 3), lambda x: x.astype("float64"), [("_copyto", {})]),
    ("copy", (2, 3), lambda x: x.copy(), [("_copyto", {})]),
    ("cast", (2, 3), lambda x: nd.cast(x, dtype="float16"), [("Cast", {"dtype": "float16"})]),
    ("softmax", (2, 3), lambda x: nd.softmax(x), [("softmax", {})]),
    ("softmax_axis", (2, 3), lambda x: nd.softmax(x, axis=0), [("softmax", {"axis": "0"})]),
    ("log_softmax", (2, 3), lambda x: nd.log_softmax(x), [("log_softmax", {})]),
    ("sum", (2, 3), lambda x: nd.sum(x), [("sum", {})]),
    ("sum_keep", (2, 3), lambda x: nd.sum(x, axis=1, keepdims=True), [("sum", {"axis": "1", "keepdims": "True"})]),
    ("sum_method", (2, 3), lambda x: x.sum(axis=(0, 1)), [("sum", {"axis": "(0, 1)"})]),
    ("mean_method", (2, 3), lambda x: x.mean(axis=-1), [("mean", {"axis": "-1"})]),
    ("max_method", (2, 3), lambda x: x.max(axis=1), [("max", {"axis": "1"})]),
    ("norm", (2, 3), lambda x: nd.norm(x), [("norm", {})]),
    ("dot", (2, 3), lambda x: nd.dot(x, _c(3, 2)), [("dot", {})]),
    ("dot_t", (2, 3), lambda x: nd.dot(x, _c(2, 3), transpose_b=True), [("dot", {"transpose_b": "True"})]),
    ("FullyConnected", (2, 3), lambda x: nd.FullyConnected(x, _c(4, 3), _c(4), num_hidden=4),
     [("FullyConnected", {"num_hidden": "4"})]),
    ("reshape_method", (2, 3, 2), lambda x: x.reshape((0, -1)), [("Reshape", {"shape": "[2,6]"})]),
    ("reshape_varargs", (2, 3, 2), lambda x: x.reshape(4, -1), [("Reshape", {"shape": "[4,3]"})]),
    ("reshape_flat", (2, 3, 2), lambda x: x.reshape(-1), [("Reshape", {"shape": "[12]"})]),
    ("reshape_op", (2, 3, 2), lambda x: nd.reshape(x, shape=(0, -1)), [("Reshape", {"shape": "(0, -1)"})]),
    ("reshape_op_neg1", (2, 3, 2), lambda x: nd.reshape(x, shape=(-1,)), [("Reshape", {"shape": "(-1,)"})]),
    ("flatten", (2, 3, 2), lambda x: x.flatten(), [("Flatten", {})]),
    ("T", (2, 3), lambda x: x.T, [("transpose", {})]),
    ("transpose_axes", (2, 3, 2), lambda x: nd.transpose(x, axes=(2, 0, 1)), [("transpose", {"axes": "(2, 0, 1)"})]),
    ("transpose_method", (2, 3, 2), lambda x: x.transpose((1, 2, 0)), [("transpose", {"axes": "(1, 2, 0)"})]),
    ("expand_dims", (2, 3), lambda x: x.expand_dims(axis=1), [("expand_dims", {"axis": "1"})]),
    ("squeeze", (2, 1, 3), lambda x: nd.squeeze(x, axis=1), [("squeeze", {"axis": "1"})]),
    ("swapaxes", (2, 3), lambda x: nd.swapaxes(x, 0, 1), [("SwapAxis", {"dim1": "0", "dim2": "1"})]),
    ("flip", (2, 3), lambda x: nd.flip(x, axis=1), [("reverse", {"axis": "1"})]),
    ("rows", (4, 5), lambda x: x[1:3], [("slice", {"begin": "1", "end": "3"})]),
    ("rows_neg", (4, 5), lambda x: x[-3:-1], [("slice", {"begin": "1", "end": "3"})]),
    ("row_int", (4, 5), lambda x: x[1], [("slice", {"begin": "1", "end": "2"}), ("Reshape", {"shape": "[5]"})]),
    ("row_neg_int", (4, 5), lambda x: x[-1], [("slice", {"begin": "3", "end": "4"}), ("Reshape", {"shape": "[5]"})]),
    ("cols", (4, 5), lambda x: x[:, 1:3],
     [("slice", {"begin": "(None, 1)", "end": "(None, 3)", "step": "(None, None)"}), ("Reshape", {"shape": "[4,2]"})]),
    ("rows_cols", (4, 5), lambda x: x[1:3, 0:2],
     [("slice", {"begin": "(1, 0)", "end": "(3, 2)", "step": "(None, None)"}), ("Reshape", {"shape": "[2,2]"})]),
    ("step", (4, 5), lambda x: x[::2],
     [("slice", {"begin": "(None, None)", "end": "(None, None)", "step": "(2, None)"}), ("Reshape", {"shape": "[2,5]"})]),
    ("slice_op", (4, 5), lambda x: nd.slice(x, begin=(0, 1), end=(2, 3)), [("slice", {"begin": "(0, 1)", "end": "(2, 3)"})]),
    ("slice_axis", (4, 5), lambda x: nd.slice_axis(x, axis=1, begin=1, end=4),
     [("slice_axis", {"axis": "1", "begin": "1", "end": "4"})]),
    ("concat", (2, 3), lambda x: nd.concat(x, x, dim=0), [("Concat", {"dim": "0", "num_args": "2"})]),
    ("stack", (2, 3), lambda x: nd.stack(x, x, axis=1), [("stack", {"axis": "1", "num_args": "2"})]),
    ("split", (2, 3), lambda x: nd.split(x, num_outputs=3, axis=1)[2],
     [("SliceChannel", {"axis": "1", "num_outputs": "3"})]),
    ("broadcast_to", (1, 4), lambda x: nd.broadcast_to(x, shape=(2, 4)), [("broadcast_to", {"shape": "(2, 4)"})]),
    ("broadcast_axis", (3, 1), lambda x: nd.broadcast_axis(x, axis=1, size=3),
     [("broadcast_axis", {"axis": "1", "size": "3"})]),
    ("tile", (2, 3), lambda x: nd.tile(x, reps=(1, 2)), [("tile", {"reps": "(1, 2)"})]),
    ("repeat", (2, 3), lambda x: nd.repeat(x, repeats=2, axis=0), [("repeat", {"repeats": "2", "axis": "0"})]),
    ("pick", (2, 3), lambda x: nd.pick(x, nd.array([0, 2]), axis=1), [("pick", {"axis": "1"})]),
    ("take", (4, 3), lambda x: nd.take(x, nd.array([2, 0, 2])), [("take", {})]),
    ("where", (2, 3), lambda x: nd.where(nd.array([[1, 0, 1], [0, 1, 0]]), x, x * 2),
     [("_mul_scalar", {"scalar": "2.0"}), ("where", {})]),
    ("argmax", (2, 3), lambda x: nd.argmax(x, axis=1), [("argmax", {"axis": "1"})]),
    ("Dropout", (2, 3), lambda x: nd.Dropout(x, p=0.5), [("Dropout", {"p": "0.5"})]),
]


@pytest.mark.parametrize("shape,fn,expected", [pytest.param(s, f, e, id=i) for i, s, f, e in RECORDED])
def test_recorded_op_names_and_attrs(shape, fn, expected):
    x = nd.array(np.arange(1, 1 + int(np.prod(shape)), dtype=np.float64).reshape(shape) / 10.0)
    x.attach_grad()
    with ag.record():
        y = fn(x)
    g = json.loads(ag.get_symbol(y).tojson())
    got = [(n["op"], n.get("attrs", {})) for n in g["nodes"] if n["op"] != "null"]
    assert got == expected


def test_recorded_split_head_index():
    x = nd.ones((2, 3))
    x.attach_grad()
    with ag.record():
        parts = nd.split(x, num_outputs=3, axis=1)
    assert isinstance(parts, list) and len(parts) == 3
    g = json.loads(ag.get_symbol(parts[2]).tojson())
    assert g["heads"] == [[1, 2, 0]]
    assert g["node_row_ptr"] == [0, 1, 4]


def test_recorded_dropout_has_two_outputs():
    x = nd.ones((2, 3))
    x.attach_grad()
    with ag.record():
        y = nd.Dropout(x, p=0.5)
    g = json.loads(ag.get_symbol(y).tojson())
    assert g["node_row_ptr"] == [0, 1, 3]


# ---------------------------------------------------------------------------------------
# indexing and assignment
# ---------------------------------------------------------------------------------------
X45 = np.arange(20.0).reshape(4, 5)


def test_basic_indexing_values():
    x = nd.array(X45)
    close(x[1], X45[1])
    close(x[-1], X45[-1])
    close(x[1:3], X45[1:3])
    close(x[:, 1:3], X45[:, 1:3])
    close(x[1:3, 0:2], X45[1:3, 0:2])
    close(x[::2], X45[::2])
    close(x[1, 2:4], X45[1, 2:4])
    close(x[..., 1:2], X45[..., 1:2])
    close(x[2, 3], [X45[2, 3]])               # full integer index: shape (1,)
    assert x[2, 3].shape == (1,)
    y = nd.array(np.arange(3.0))
    assert y[1].shape == (1,)
    with pytest.raises(IndexError):
        x[5]
    with pytest.raises(IndexError):
        x[0, 7]


def test_indexing_views_share_memory_outside_record():
    x = nd.array(X45)
    row = x[1]
    rows = x[1:3]
    row[:] = -1
    close(x[1], -np.ones(5))
    rows[1] = 9                                # x[2]
    close(x[2], 9 * np.ones(5))
    x[0] = 100
    close(row, -np.ones(5))                    # the view still aliases x
    r = x.reshape((5, 4))
    r[0] = 0.5
    close(x[0, :4], 0.5 * np.ones(4))


def test_recorded_indexing_gradient_scatters_back():
    x = nd.array(X45)
    x.attach_grad()
    with ag.record():
        y = x[1:3] * 2
    y.backward()
    expected = np.zeros((4, 5))
    expected[1:3] = 2
    close(x.grad, expected)


def test_setitem_forms():
    x = nd.zeros((3, 4))
    x[:] = 2
    close(x, 2 * np.ones((3, 4)))
    x[:] = np.arange(12.0).reshape(3, 4)
    close(x, np.arange(12.0).reshape(3, 4))
    x[1] = nd.array([9, 9, 9, 9])
    close(x[1], [9, 9, 9, 9])
    x[0:2, 1] = 5
    close(x[:, 1], [5, 5, 9])
    x[2] = np.array([1.0, 2.0, 3.0, 4.0])
    close(x[2], [1, 2, 3, 4])
    assert x.dtype == np.float32
    with pytest.raises((MXNetError, ValueError)):
        x[:] = np.ones((5, 5))


# ---------------------------------------------------------------------------------------
# reshape special codes
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("src,code,expected", [
    ((2, 3, 4), (6, 4), (6, 4)),
    ((2, 3, 4), (0, -1), (2, 12)),
    ((2, 3, 4), (-1,), (24,)),
    ((2, 3, 4), (4, 0, -1), (4, 3, 2)),
    ((2, 3, 4), (-2,), (2, 3, 4)),
    ((2, 3, 4), (2, -2), (2, 3, 4)),
    ((2, 3, 4), (-3, 4), (6, 4)),
    ((2, 3, 4), (0, -3), (2, 12)),
    ((2, 3, 4), (-4, 1, 2, -2), (1, 2, 3, 4)),
    ((2, 3, 4), (-4, -1, 1, 0, 0), (2, 1, 3, 4)),
    ((2, 3, 4), (0, 0, -4, 2, 2), (2, 3, 2, 2)),
    ((6,), (2, -1), (2, 3)),
])
def test_reshape_codes(src, code, expected):
    n = int(np.prod(src))
    x = nd.array(np.arange(n, dtype=np.float64).reshape(src))
    y = x.reshape(code)
    assert y.shape == expected
    close(y, np.arange(n).reshape(expected))
    assert x.reshape(*code).shape == expected


def test_reshape_errors():
    x = nd.ones((2, 3, 4))
    for bad in [(5, 5), (-1, -1), (7, -1), (-4, 5, -1, 3, 4)]:
        with pytest.raises(MXNetError):
            x.reshape(bad)


# ---------------------------------------------------------------------------------------
# conversions
# ---------------------------------------------------------------------------------------
def test_astype_copy_copyto():
    x = nd.array([1.5, 2.5])
    y = x.astype("float64")
    assert y.dtype == np.float64
    close(y, [1.5, 2.5])
    assert x.astype(np.float32, copy=False) is x
    z = x.astype("int32")
    assert z.dtype == np.int32 and z.asnumpy().tolist() == [1, 2]
    c = x.copy()
    c[:] = 0
    close(x, [1.5, 2.5])
    t = nd.zeros((2,))
    assert x.copyto(t) is t
    close(t, [1.5, 2.5])
    u = x.copyto(mx.cpu())
    close(u, [1.5, 2.5])
    u[:] = 7
    close(x, [1.5, 2.5])


def test_asnumpy_asscalar_array_protocol():
    x = nd.array([[1, 2], [3, 4]])
    a = x.asnumpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    a[0, 0] = 99
    close(x[0], [1, 2])                        # asnumpy is a copy
    assert nd.array([3.5]).asscalar() == 3.5
    assert isinstance(nd.array([3.5]).asscalar(), np.float32)
    with pytest.raises(ValueError):
        x.asscalar()
    b = np.asarray(x)
    assert b.shape == (2, 2) and b.dtype == np.float32
    assert np.array(x, dtype=np.float64).dtype == np.float64
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]


def test_repr():
    x = nd.array([[1, 2, 3], [4, 5, 6]])
    r = repr(x)
    assert r.startswith("\n[[1. 2. 3.]\n [4. 5. 6.]]")
    assert r.endswith("<NDArray 2x3 @cpu(0)>")
    assert repr(nd.array([7])).endswith("<NDArray 1 @cpu(0)>")


# ---------------------------------------------------------------------------------------
# contexts
# ---------------------------------------------------------------------------------------
def test_context_helpers():
    assert mx.cpu() == mx.cpu(0) and str(mx.cpu()) == "cpu(0)"
    assert mx.context.num_gpus() == 0 and mx.num_gpus() == 0
    x = nd.array([1, 2], ctx=mx.cpu())
    assert x.context == mx.cpu(0) and x.ctx == mx.cpu(0)
    assert x.as_in_context(mx.cpu()) is x
    assert nd.zeros((2,), ctx=mx.cpu(0)).shape == (2,)
    with mx.cpu():
        pass
    nd.waitall()
    x.wait_to_read()


def test_gpu_is_a_clear_error():
    ctx = mx.gpu()                             # constructing the context is allowed
    assert str(ctx) == "gpu(0)"
    for make in (lambda: nd.zeros((2,), ctx=mx.gpu()), lambda: nd.array([1], ctx=mx.gpu(0)),
                 lambda: nd.ones((2,)).as_in_context(mx.gpu()), lambda: nd.ones((2,)).copyto(mx.gpu()),
                 lambda: nd.arange(3, ctx=mx.gpu())):
        with pytest.raises(MXNetError, match="gpu"):
            make()


def test_eager_fast_path_with_keyword_attributes_matches_invoke():
    # mx.nd.<op>(x, axis=...) runs the kernel directly once the attrs are parsed; results,
    # dtypes and errors must be those of the full invoke path
    from agjit.ndarray.ndarray import invoke
    a = mx.nd.array(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    for kw in [{}, {"axis": 1}, {"axis": (0, 2)}, {"axis": 1, "keepdims": True},
               {"axis": 1, "exclude": True}, {"axis": -1}]:
        for name in ("sum", "mean", "prod", "max", "min"):
            for _ in range(2):                      # second call: parsed attrs cached
                got = getattr(mx.nd, name)(a, **kw)
            ref = invoke(name, [a], dict(kw))
            assert got.shape == ref.shape and got.dtype == ref.dtype, (name, kw)
            np.testing.assert_array_equal(got.asnumpy(), ref.asnumpy())
    w = mx.nd.array(np.ones((4, 5), np.float32))
    np.testing.assert_allclose(mx.nd.dot(a.reshape((6, 4)), w).asnumpy(),
                               a.asnumpy().reshape(6, 4) @ np.ones((4, 5)))
    with pytest.raises(mx.MXNetError, match=r"dot: shape mismatch \(2,3\) X \(4,5\)"):
        mx.nd.dot(mx.nd.ones((2, 3)), w)
    for _ in range(2):
        with pytest.raises(mx.MXNetError, match="sum: reduction axis 5 is out of range"):
            mx.nd.sum(a, axis=5)
