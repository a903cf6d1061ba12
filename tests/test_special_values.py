"""Special values (issue 10, item 3): +-inf, nan, +-0, halves, huge and tiny inputs give MXNet
1.9.1's numbers in the eager path and in the compiled path (mx.jit), forward and backward.

The expected numbers are recorded with real MXNet 1.9.1 (tests/golden/special_values_mxnet.json,
written by tests/golden/gen_special_values_mxnet.py).  Facts they pin down:

* relu(-inf) = 0, relu(nan) = nan (the jitted relu gave nan for -inf: ``x * 0``);
* floor / ceil / trunc / fix / rint / round keep nan and +-inf (the jitted floor went through
  ``math.floor``'s int64: -9.2e18);
* round rounds halves away from zero (0.5 -> 1, 2.5 -> 3, -0.5 -> -1), rint rounds a half
  *down* (1.5 -> 1, -1.5 -> -2, 3.5 -> 3), fix / trunc towards zero -- neither is NumPy's
  half-to-even;
* sign(nan) = 0;
* maximum / minimum propagate nan from either operand (the jitted ``max()`` dropped it);
* sigmoid / tanh / softrelu saturate without nan for huge inputs, both dtypes.

One deliberate difference: ``Activation(act_type='relu')`` of float32 in MXNet's MKLDNN build
maps nan to 0 (oneDNN's eltwise relu); its float64 kernel, ``relu`` and the build without
MKLDNN (MXNET_MKLDNN_ENABLED=0) propagate nan, which agjit follows for both.
"""
import json
import math
import os

import numpy as np
import pytest

import agjit as mx
from agjit.base import MXNetError

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "golden", "special_values_mxnet.json")) as _f:
    GOLD = json.load(_f)

X = [-math.inf, math.inf, math.nan, -0.0, 0.0, 0.5, 1.5, 2.5, -0.5, -2.5, 3.5, -3.5,
     0.49999997, 3.7, -3.7, 1e30, -1e30, 1e-40, 100.0, -100.0, 1000.0, -1000.0]
EXACT = ["relu", "floor", "ceil", "round", "rint", "fix", "trunc", "sign", "abs"]
SMOOTH = ["sigmoid", "tanh"]
ACTS = ["sigmoid", "tanh", "softrelu"]


def _unaries(x):
    outs = [getattr(mx.nd, n)(x) for n in EXACT + SMOOTH]
    outs += [mx.nd.Activation(x, act_type=t) for t in ACTS]
    outs.append(mx.nd.Activation(x, act_type="relu"))
    return tuple(outs)


def _expected(dt):
    exp = [GOLD["%s:%s" % (n, dt)] for n in EXACT + SMOOTH]
    exp += [GOLD["Act_%s:%s" % (t, dt)] for t in ACTS]
    exp.append(GOLD["relu:%s" % dt])        # see the module note on MKLDNN's float32 relu
    return exp


def _check(name, got, want, dt, exact):
    want = np.asarray(want, dtype=dt)
    assert got.dtype == np.dtype(dt), (name, got.dtype)
    assert np.array_equal(np.isnan(got), np.isnan(want)), (name, got, want)
    if exact:
        ok = (got == want) | np.isnan(want)
        assert ok.all(), (name, dt, got[~ok], want[~ok], np.array(X, dt)[~ok])
        # the sign of zero as MXNet (floor(-0) = -0, fix(-0.5) = -0, relu(-3) = +0)
        z = want == 0
        assert np.array_equal(np.signbit(got[z]), np.signbit(want[z])), (name, got, want)
    else:
        # MXNet's float32 softrelu (log1p(exp(x)) in float32) is itself ~2e-6 off
        tol = 5e-6 if dt == "float32" else 1e-14
        np.testing.assert_allclose(got, want, rtol=tol, atol=1e-30, err_msg=name)


@pytest.fixture(scope="module")
def jitted_unaries():
    return mx.jit(_unaries)


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("path", ["eager", "compiled"])
def test_unary_special_values_match_mxnet(dt, path, jitted_unaries):
    x = mx.nd.array(X, dtype=dt)
    f = _unaries if path == "eager" else jitted_unaries
    with np.errstate(all="ignore"):
        outs = f(x)
    names = EXACT + SMOOTH + ["Act_" + t for t in ACTS] + ["Act_relu"]
    for name, o, w in zip(names, outs, _expected(dt)):
        exact = name in EXACT or name == "Act_relu"
        _check(name, o.asnumpy(), w, dt, exact)


def test_round_rint_fix_halves():
    """The three rounding rules on exact halves (MXNet 1.9.1 values)."""
    x = mx.nd.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 4.5], dtype="float64")
    want = {"round": [1, 2, 3, -1, -2, -3, 5], "rint": [0, 1, 2, -1, -2, -3, 4],
            "fix": [0, 1, 2, 0, -1, -2, 4], "trunc": [0, 1, 2, 0, -1, -2, 4]}
    jf = mx.jit(lambda a: tuple(getattr(mx.nd, n)(a) for n in want))
    for outs in ([getattr(mx.nd, n)(x) for n in want], jf(x)):
        for n, o in zip(want, outs):
            assert o.asnumpy().tolist() == want[n], n


def _binaries(a, b):
    return (mx.nd.broadcast_maximum(a, b), mx.nd.broadcast_minimum(a, b),
            mx.nd.maximum(a, 1.0), mx.nd.minimum(a, 1.0), mx.nd.clip(a, 0.5, 1.5),
            mx.nd.elemwise_add(mx.nd.relu(a), mx.nd.zeros_like(b)))


A = [math.nan, 1.0, 2.0, math.nan, -math.inf, 0.0]
B = [1.0, math.nan, 0.0, math.nan, 1.0, -0.0]


@pytest.mark.parametrize("path", ["eager", "compiled"])
def test_maximum_minimum_propagate_nan(path):
    a, b = mx.nd.array(A), mx.nd.array(B)
    f = _binaries if path == "eager" else mx.jit(_binaries)
    outs = [o.asnumpy() for o in f(a, b)]
    names = ["broadcast_maximum", "broadcast_minimum", "maximum_scalar", "minimum_scalar", "clip"]
    for n, o in zip(names, outs):
        w = np.asarray(GOLD[n], np.float32)
        assert np.array_equal(np.isnan(o), np.isnan(w)), (n, o, w)
        assert np.array_equal(o[~np.isnan(w)], w[~np.isnan(w)]), (n, o, w)
    # relu(-inf) inside a fused loop
    assert outs[5].tolist()[4] == 0.0 and math.isnan(outs[5][0])


@pytest.mark.parametrize("path", ["eager", "compiled"])
def test_maximum_gradient_with_nan(path):
    """d max(a, b): a gets it where a >= b, b where a < b; nan gives neither (MXNet)."""
    a, b = mx.nd.array(A), mx.nd.array(B)
    a.attach_grad()
    b.attach_grad()
    f = mx.nd.broadcast_maximum if path == "eager" else mx.jit(lambda u, v: mx.nd.broadcast_maximum(u, v))
    with mx.autograd.record():
        y = f(a, b)
    y.backward()
    ga, gb = GOLD["grad_bmax"]
    assert a.grad.asnumpy().tolist() == ga
    assert b.grad.asnumpy().tolist() == gb


@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_saturating_activations_large_inputs(dt):
    """The fuzz's report: jitted Activation(sigmoid) of large inputs gave [1, 0, 0] where eager
    gives [1, 1, 1]; and their gradients (0, never nan) compiled = eager."""
    big = 1e30 if dt == "float32" else 1e300
    x = np.array([50.0, 1e3, big, -50.0, -1e3, -big], dt)

    def f(a):
        return (mx.nd.Activation(a, act_type="sigmoid"), mx.nd.sigmoid(a * 2.0),
                mx.nd.tanh(a), mx.nd.Activation(a, act_type="softrelu"))
    want = [[1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0], [1, 1, 1, -1, -1, -1],
            [50, 1e3, big, 0, 0, 0]]
    jf = mx.jit(f)
    with np.errstate(all="ignore"):
        for outs in (f(mx.nd.array(x, dtype=dt)), jf(mx.nd.array(x, dtype=dt))):
            for o, w in zip(outs, want):
                np.testing.assert_allclose(o.asnumpy(), np.asarray(w, dt), rtol=1e-6, atol=1e-20)
        grads = []
        for g in (lambda a: mx.nd.sum(mx.nd.Activation(a, act_type="sigmoid")),
                  mx.jit(lambda a: mx.nd.sum(mx.nd.Activation(a, act_type="sigmoid")))):
            xa = mx.nd.array(x, dtype=dt)
            xa.attach_grad()
            with mx.autograd.record():
                y = g(xa)
            y.backward()
            grads.append(xa.grad.asnumpy())
    assert not np.isnan(grads[0]).any()
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5 if dt == "float32" else 1e-12)


@pytest.mark.parametrize("path", ["eager", "compiled"])
def test_special_value_gradients_compiled_equal_eager(path):
    """relu / abs / floor / round / sign / clip gradients at inf, -inf, 0 and nan."""
    x0 = np.array([-math.inf, math.inf, -0.0, 0.0, 1.5, -2.5], np.float32)

    def f(a):
        return mx.nd.sum(mx.nd.relu(a) + mx.nd.floor(a) + mx.nd.round(a) + mx.nd.sign(a)
                         + mx.nd.clip(a, -1.0, 1.0) + mx.nd.rint(a) + mx.nd.trunc(a))
    x = mx.nd.array(x0)
    x.attach_grad()
    g = f if path == "eager" else mx.jit(f)
    with np.errstate(invalid="ignore"), mx.autograd.record():
        y = g(x)                        # inf + -inf: the loss is nan, the gradient is not
    y.backward()
    # relu' = [x > 0]; clip' = [-1 <= x <= 1]; the rounding ops and sign have zero gradient
    want = (x0 > 0).astype(np.float32) + ((x0 >= -1) & (x0 <= 1)).astype(np.float32)
    np.testing.assert_array_equal(x.grad.asnumpy(), want)


_JIT_DOTS = {}
DOT_CASES = [((2, 0), (0, 3), {}), ((0, 3), (3, 2), {}), ((2, 3), (3, 0), {}),
             ((0,), (0,), {}), ((0, 3), (3,), {}), ((0, 2), (3, 2), {"transpose_b": True}),
             ((2, 0), (2, 3), {"transpose_a": True})]


@pytest.mark.parametrize("path", ["eager", "compiled"])
@pytest.mark.parametrize("sa,sb,kw", DOT_CASES)
def test_empty_dot(sa, sb, kw, path):
    """A zero-size operand: the product is zeros of the right shape (an empty contraction sums
    to 0), the gradients zero-size or zero -- no 'cannot reshape array of size 0' error."""
    a = mx.nd.ones(sa)
    b = mx.nd.ones(sb)
    a.attach_grad()
    b.attach_grad()
    f = (lambda u, v: mx.nd.dot(u, v, **kw))
    if path == "compiled":          # one jitted function per flag set: kernels are reused
        key = tuple(sorted(kw.items()))
        f = _JIT_DOTS.setdefault(key, mx.jit(f))
    with mx.autograd.record():
        y = f(a, b)
    y.backward()
    A = np.ones(sa, np.float32)
    B = np.ones(sb, np.float32)
    A = A.T if kw.get("transpose_a") else A
    B = B.T if kw.get("transpose_b") else B
    want = np.dot(A, B) if len(sa) + len(sb) > 2 else np.array([np.dot(A, B)], np.float32)
    assert y.shape == want.shape
    np.testing.assert_array_equal(y.asnumpy(), want)
    assert a.grad.shape == sa and b.grad.shape == sb
    # one operand is empty in every case, so every non-empty gradient sums nothing: zeros
    assert (a.grad.asnumpy() == 0).all() and (b.grad.asnumpy() == 0).all()


@pytest.mark.parametrize("path", ["eager", "compiled"])
def test_fully_connected_empty_batch(path):
    x = mx.nd.ones((0, 3))
    w = mx.nd.ones((4, 3))
    bias = mx.nd.ones((4,))
    f = (lambda u, v, c: mx.nd.FullyConnected(u, v, c, num_hidden=4))
    if path == "compiled":
        f = mx.jit(f)
    y = f(x, w, bias)
    assert y.shape == (0, 4)


def test_unsupported_special_dtype_not_silent():
    """Guard: an op refusing its input keeps raising MXNetError (not a NumPy error)."""
    with pytest.raises(MXNetError):
        mx.nd.dot(mx.nd.ones((2, 3)), mx.nd.ones((2, 3)))


def _powers(x):
    half = mx.nd.full((1,), 0.5, dtype=x.dtype)
    return x ** 0.5, x ** 1.5, mx.nd.broadcast_power(x, half)


@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_power_is_c_pow(dt):
    """x ** 0.5 is C's pow as in MXNet: pow(-inf, 0.5) = inf, pow(-0, 0.5) = +0 (NumPy's
    power takes a sqrt shortcut: nan and -0); the fuzz found eager and compiled gradients of
    ``nansum(x) ** 1.5`` differing (nan vs inf) through it."""
    names = ["pow_half", "pow_1_5", "broadcast_power_half"]
    jf = mx.jit(_powers)
    for f in (_powers, jf):
        with np.errstate(all="ignore"):
            outs = f(mx.nd.array(X, dtype=dt))
        for n, o in zip(names, outs):
            _check(n, o.asnumpy(), GOLD["%s:%s" % (n, dt)], dt, exact=False)
            z = np.asarray(GOLD["%s:%s" % (n, dt)]) == 0
            assert not np.signbit(o.asnumpy()[z]).any(), (n, o)

    def p15(a):
        return a ** 1.5
    for f in (p15, mx.jit(p15)):
        x = mx.nd.array(X, dtype=dt)
        x.attach_grad()
        with np.errstate(all="ignore"), mx.autograd.record():
            y = f(x)
        with np.errstate(all="ignore"):
            y.backward()
        _check("grad_pow_1_5", x.grad.asnumpy(), GOLD["grad_pow_1_5:%s" % dt], dt, exact=False)


def test_jit_backward_of_one_output_ignores_the_others():
    """Backward from one output of a jitted multi-output function builds the backward of that
    head only (agjit.compiler.program note *partial-heads*): the other outputs' absent head
    gradients are not multiplied with their infinite partials (0 * inf = nan)."""
    f = mx.jit(lambda a: (a ** 0.5, a ** 1.5))
    x = mx.nd.array([0.0, 4.0])
    x.attach_grad()
    with np.errstate(all="ignore"), mx.autograd.record():
        y = f(x)
    y[1].backward()
    assert x.grad.asnumpy().tolist() == [0.0, 3.0]


MA = [math.inf, -math.inf, math.nan, 1.0, -1.0, 5.0, -5.0, 0.0, 3.0, math.inf, 2.5, -2.5, 7.0]
MB = [0.0, 0.0, 0.0, 0.0, math.inf, -math.inf, math.inf, 2.0, math.nan, 2.0, -1.0, 1.0, -3.0]


def _mods(a, b):
    return mx.nd.broadcast_mod(a, b), a % 2.0, a % 0.0, 3.0 % a


@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_mod_special_values(dt):
    """MXNet's mod: 0 for a zero divisor whatever the dividend (the jitted mod gave nan for
    inf % 0 and nan % 0 -- found by the fuzz), the sign of the divisor, -1 % inf = inf."""
    names = ["broadcast_mod", "mod_scalar", "mod_zero", "rmod_scalar"]
    for f in (_mods, mx.jit(_mods)):
        with np.errstate(all="ignore"):
            outs = f(mx.nd.array(MA, dtype=dt), mx.nd.array(MB, dtype=dt))
        for n, o in zip(names, outs):
            got, want = o.asnumpy(), np.asarray(GOLD["%s:%s" % (n, dt)], dt)
            assert np.array_equal(np.isnan(got), np.isnan(want)), (n, got, want)
            ok = np.isnan(want) | (got == want)
            assert ok.all(), (n, dt, got, want)
