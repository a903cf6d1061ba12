"""mx.jit and arrays that are the same object: one array passed at several positions, or a
positional array that the function also reads through a closure or a global.  The ops of a
trace cannot tell through which name they read such an array, so the trace is only replayed
for calls with the same object pattern; every other call retraces (and gets the right
numbers)."""
import numpy as np

import agjit as mx

W_GLOBAL = mx.nd.array([3.0, 4.0])


def _np(a):
    return a.asnumpy()


def test_same_array_twice_then_distinct_arrays():
    @mx.jit
    def g(a, b):
        return a * 2 + b

    x = mx.nd.array([1.0, 2.0])
    np.testing.assert_allclose(_np(g(x, x)), [3.0, 6.0])
    a, b = mx.nd.array([1.0, 1.0]), mx.nd.array([10.0, 20.0])
    # traced with g(x, x), a replay would read b for both positions: [30, 60]
    np.testing.assert_allclose(_np(g(a, b)), [12.0, 22.0])
    np.testing.assert_allclose(_np(g(b, a)), [21.0, 41.0])
    np.testing.assert_allclose(_np(g(b, b)), [30.0, 60.0])      # the aliased trace again
    np.testing.assert_allclose(_np(g(a, a)), [3.0, 3.0])
    info = g.cache_info()
    assert info.traces == 2 and info.hits == 3
    assert any("same array at positions" in m for m in g._explanations)


def test_distinct_trace_serves_an_aliased_call():
    @mx.jit
    def g(a, b):
        return a - b * 3

    a, b = mx.nd.array([1.0, 5.0]), mx.nd.array([2.0, 2.0])
    np.testing.assert_allclose(_np(g(a, b)), [-5.0, -1.0])
    np.testing.assert_allclose(_np(g(a, a)), [-2.0, -10.0])
    np.testing.assert_allclose(_np(g(b, a)), [-1.0, -13.0])


def test_gradient_of_a_call_with_the_same_array_twice():
    @mx.jit
    def g(a, b):
        return (a * b + a).sum()

    x = mx.nd.array([1.0, -2.0, 0.5])
    x.attach_grad()
    with mx.autograd.record():
        y = g(x, x)
    y.backward()
    np.testing.assert_allclose(_np(x.grad), 2 * _np(x) + 1)     # d(x^2 + x)/dx
    u, v = mx.nd.array([1.0, 2.0, 3.0]), mx.nd.array([4.0, 5.0, 6.0])
    u.attach_grad()
    v.attach_grad()
    with mx.autograd.record():
        y = g(u, v)
    y.backward()
    np.testing.assert_allclose(_np(u.grad), _np(v) + 1)
    np.testing.assert_allclose(_np(v.grad), _np(u))


def test_positional_array_also_read_through_a_closure():
    w = mx.nd.array([5.0, 5.0])

    @mx.jit
    def h(v):
        return v * w

    a = mx.nd.array([1.0, 2.0])
    np.testing.assert_allclose(_np(h(w)), [25.0, 25.0])
    # traced as h(w), a replay would compute a * a
    np.testing.assert_allclose(_np(h(a)), [5.0, 10.0])
    np.testing.assert_allclose(_np(h(w)), [25.0, 25.0])
    np.testing.assert_allclose(_np(h(a)), [5.0, 10.0])
    assert any("closure 'w'" in m for m in h._explanations)


def test_positional_array_also_read_through_a_global():
    @mx.jit
    def k(v):
        return v + W_GLOBAL * 10

    np.testing.assert_allclose(_np(k(W_GLOBAL)), [33.0, 44.0])
    np.testing.assert_allclose(_np(k(mx.nd.array([1.0, 1.0]))), [31.0, 41.0])
