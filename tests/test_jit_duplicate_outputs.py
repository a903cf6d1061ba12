"""A jitted function or hybridized block returning one value twice (a recurrent cell's
``output, [output]``): the backward graph gets one head-gradient variable per returned
output (``<out>_head_grad``, ``<out>_head_grad1``) and both receive their gradients.  It used
to fail while naming the generated code (IndexError) and then ran with a missing head
gradient."""
import numpy as np

import agjit as mx
from agjit.gluon import nn, rnn


def _dtanh(x):
    return 1 - np.tanh(x) ** 2


def test_jit_returning_a_value_twice():
    f = mx.jit(_twice)
    x = mx.nd.array([[0.1, -0.7], [2.0, 0.3]])
    x.attach_grad()
    with mx.autograd.record():
        o, s = f(x)
        loss = o.sum() + (s * 2).sum()
    loss.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 3 * _dtanh(x.asnumpy()), rtol=1e-6)
    with mx.autograd.record():
        o, s = f(x)
    mx.autograd.backward([s], [mx.nd.ones_like(s) * 5])          # only the second head
    np.testing.assert_allclose(x.grad.asnumpy(), 5 * _dtanh(x.asnumpy()), rtol=1e-6)


def _twice(a):
    y = mx.nd.tanh(a)
    return y, y


class _Both(nn.HybridBlock):
    def hybrid_forward(self, F, x):
        y = F.tanh(x)
        return y, [y]


def test_hybridized_block_returning_a_value_twice():
    t = _Both()
    t.initialize()
    t.hybridize()
    x = mx.nd.array([[0.1, 0.2, -1.5]])
    x.attach_grad()
    with mx.autograd.record():
        o, s = t(x)
        loss = o.sum() + s[0].sum()
    loss.backward()
    np.testing.assert_allclose(x.grad.asnumpy(), 2 * _dtanh(x.asnumpy()), rtol=1e-6)


def test_hybridized_rnn_cell_unroll_gradients_equal_eager():
    x = mx.nd.array(np.random.default_rng(0).uniform(-1, 1, (2, 3, 4)).astype(np.float32))
    grads = []
    for hybrid in (False, True):
        cell = rnn.RNNCell(5, prefix="c_")
        cell.initialize(mx.init.Uniform(0.5))
        if grads:
            for p, v in zip(cell.collect_params().values(), grads[0][1]):
                p.set_data(v)
        if hybrid:
            cell.hybridize()
        with mx.autograd.record():
            out, st = cell.unroll(3, x, layout="NTC", merge_outputs=True)
            loss = (out * out).sum() + st[0].sum()
        loss.backward()
        grads.append((loss.asscalar(), [p.data().copy() for p in cell.collect_params().values()],
                      [p.grad().asnumpy() for p in cell.collect_params().values()]))
    assert abs(grads[0][0] - grads[1][0]) < 1e-4
    for a, b in zip(grads[0][2], grads[1][2]):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)
