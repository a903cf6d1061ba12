"""Every fluent method Symbol and NDArray advertise exists and reaches a registered op;
MXNet 1.9.1's fluent names agjit lacks are not advertised (and listed, so adding the op
makes the method appear)."""
import numpy as np
import pytest

import agjit as mx
from symbol import symbol as symmod
from symbol.registry import has_op

# the names MXNet 1.9.1's Symbol/NDArray have whose op agjit does not register (yet)
KNOWN_MISSING = set()


def _op(name):
    return symmod._FLUENT_OP.get(name, name)


def test_missing_lists_are_exactly_the_unregistered_names():
    unregistered = {n for n in symmod.MXNET_FLUENT if not has_op(_op(n))}
    assert set(symmod.FLUENT_MISSING) == unregistered
    assert set(mx.nd.FLUENT_MISSING) <= unregistered
    # shrinks when an op is added; never grows silently
    assert unregistered <= KNOWN_MISSING


@pytest.mark.parametrize("cls", [mx.sym.Symbol, mx.nd.NDArray])
def test_no_method_advertises_a_missing_op(cls):
    for name in symmod.MXNET_FLUENT:
        assert hasattr(cls, name) == has_op(_op(name)), name


_UNARY = [n for n in symmod.MXNET_FLUENT if has_op(_op(n)) and n in (
    "abs", "arccos", "arcsin", "arctan", "arcsinh", "cbrt", "ceil", "cos", "cosh", "degrees",
    "exp", "expm1", "fix", "flatten", "floor", "log1p", "log_softmax", "nanprod", "nansum",
    "ones_like", "radians", "rcbrt", "reciprocal", "relu", "rint", "round", "rsqrt", "sigmoid",
    "sign", "sin", "sinh", "softmax", "softmin", "sqrt", "square", "tan", "tanh", "trunc",
    "zeros_like", "sum", "mean", "max", "min", "prod", "norm")]


@pytest.mark.parametrize("name", _UNARY)
def test_fluent_method_equals_the_function(name):
    a = np.array([[0.2, 0.5], [0.7, 0.9]], dtype=np.float32)
    x = mx.nd.array(a)
    want = getattr(mx.nd, name)(x).asnumpy()
    np.testing.assert_array_equal(getattr(x, name)().asnumpy(), want)
    s = getattr(mx.sym.var("x"), name)()
    got = s.eval(x=x)[0].asnumpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_fluent_positional_attrs_and_ndarray_only_methods():
    x = mx.nd.array([[1, 2, 3], [4, 5, 6]])
    assert x.slice((0, 1), (2, 3)).asnumpy().tolist() == [[2, 3], [5, 6]]
    assert x.reshape((1, 6)).broadcast_axes(axis=0, size=3).shape == (3, 6)
    s = mx.sym.var("x")
    for name in ("asnumpy", "asscalar", "backward", "copy", "detach", "wait_to_read"):
        with pytest.raises(symmod.NotImplementedForSymbol):
            getattr(s, name)()


def test_ops_behind_fluent_names_match_mxnet():
    """tests/golden/fluent_extra.json from tests/golden/make_fluent_extra.py run by real
    MXNet 1.9.1: slice_like, shape_array, size_array, depth_to_space, space_to_depth,
    argmax_channel, split_v2 (values, dtypes, fluent forms, symbolic inference and names,
    gradients)."""
    import json
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "golden"))
    import make_fluent_extra
    want = json.load(open(os.path.join(os.path.dirname(__file__), "golden", "fluent_extra.json")))
    got = make_fluent_extra.run(mx)
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k] == want[k], k
