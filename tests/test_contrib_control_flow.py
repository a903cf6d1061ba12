"""mx.nd.contrib.foreach / while_loop / cond (imperative), numbers recorded from MXNet 1.9.1."""
import numpy as np
import pytest

import agjit as mx


def test_foreach_states_and_outputs():
    def body(x, st):
        return x * 2 + st[0], [st[0] + x]
    data = mx.nd.array(np.arange(6).reshape(3, 2))
    out, st = mx.nd.contrib.foreach(body, data, [mx.nd.zeros(2)])
    assert out.asnumpy().tolist() == [[0, 2], [4, 7], [10, 14]]           # MXNet's answer
    assert isinstance(st, list) and st[0].asnumpy().tolist() == [6, 9]
    out, st = mx.nd.contrib.foreach(lambda x, s: ([x[0], x[1] + 1], s), [data, data], [])
    assert isinstance(out, list) and out[1].asnumpy().tolist() == [[1, 2], [3, 4], [5, 6]]
    assert st == []


def test_foreach_gradient_through_steps():
    x = mx.nd.array([1., 2.])
    x.attach_grad()
    with mx.autograd.record():
        o, s = mx.nd.contrib.foreach(lambda a, st: (a * st, st * 2), x, mx.nd.array([3.]))
        loss = o.sum() + s.sum()
    loss.backward()
    assert o.asnumpy().tolist() == [[3.], [12.]] and s.asnumpy().tolist() == [12.]
    assert x.grad.asnumpy().tolist() == [3., 6.]                           # MXNet's answer


def test_while_loop_pads_to_max_iterations():
    outs, vs = mx.nd.contrib.while_loop(
        lambda i, s: i < 3, lambda i, s: ([i * 10, s], [i + 1, s + i]),
        [mx.nd.array([0]), mx.nd.array([0])], max_iterations=5)
    assert outs[0].asnumpy().reshape(-1).tolist() == [0, 10, 20, 0, 0]
    assert outs[1].asnumpy().reshape(-1)[:3].tolist() == [0, 0, 1]
    assert [v.asscalar() for v in vs] == [3, 3]
    o, v = mx.nd.contrib.while_loop(lambda i: i < 2, lambda i: (i * 10, i + 1), mx.nd.array([0]),
                                    max_iterations=3)
    assert o.shape == (3, 1) and o.asnumpy()[:2, 0].tolist() == [0, 10] and v.asscalar() == 2
    o, v = mx.nd.contrib.while_loop(lambda i: i < 0, lambda i: (i, i + 1), mx.nd.array([0]),
                                    max_iterations=3)
    assert o == [] and v.asscalar() == 0


def test_while_loop_needs_max_iterations():
    with pytest.raises(ValueError, match="max_iterations should be specified"):
        mx.nd.contrib.while_loop(lambda i: i < 2, lambda i: (i, i + 1), mx.nd.array([0]))


def test_cond():
    a = mx.nd.contrib.cond(mx.nd.array([1]), lambda: mx.nd.array([1, 2]), lambda: mx.nd.array([3, 4]))
    assert a.asnumpy().tolist() == [1, 2]
    b = mx.nd.contrib.cond(mx.nd.array([0]), lambda: [mx.nd.array([1, 2])], lambda: [mx.nd.array([3, 4])])
    assert isinstance(b, list) and b[0].asnumpy().tolist() == [3, 4]
    with pytest.raises(ValueError, match="not a scalar"):
        mx.nd.contrib.cond(mx.nd.array([1, 0]), lambda: 1, lambda: 2)
