"""Buffer memory of compiled kernels: liveness-based sharing of intermediates
(agjit.compiler.schedule notes *buffer-liveness* and *backward-order*, agjit.compiler.buffers
note *buffer-plan*).

* the arena placement never overlaps two buffers live at the same step, and packs a chain
  into two buffers' worth;
* a backward graph's scratch memory does not grow with depth (it did: the DFS order kept
  every activation gradient until the weight gradients ran at the end), and what a result
  may view is pinned, never shared;
* a jitted residual CNN (stride-2 1x1 downsample, BatchNorm, max pooling) trained for two
  steps equals eager, with its training forward and backward sharing one arena.

Plans are checked on lowered kernels (no Numba compile); the one compiled test shares the
run's kernel cache (tests/conftest.py).
"""
import numpy as np

import agjit as mx
from agjit.compiler.buffers import _place, _ALIGN
from agjit.compiler.program import CompiledGraph
from agjit.compiler.signature import KernelStats
from symbol.graph import topo_order

nd = mx.nd


def _overlaps(a, b):
    return a[0] < b[1] and b[0] < a[1]


def test_place_keeps_buffers_live_together_apart_and_shares_the_others():
    # (slot, bytes, first step, last step)
    items = [(0, 1000, 0, 1), (1, 1000, 1, 2), (2, 1000, 2, 3), (3, 1000, 3, 4),
             (4, 3000, 0, 4), (5, 10, 2, 2), (6, 0, 1, 1)]
    off, total = _place(items)
    spans = {s: (off[s], off[s] + max(nb, 1)) for s, nb, _f, _l in items}
    for a in items:
        for b in items:
            if a[0] < b[0] and a[2] <= b[3] and b[2] <= a[3]:
                assert not _overlaps(spans[a[0]], spans[b[0]]), (a, b, off)
    assert all(v % _ALIGN == 0 for v in off.values())
    # the long-lived 3000 bytes, a chain of four 1000-byte buffers in two places, and the
    # small ones fitted in between
    assert total == 3008 + 2 * 1024 + 64
    assert len(set(off[s] for s in (0, 1, 2, 3))) == 2


def _mlp(depth, batch=16, width=32):
    """A tanh MLP of ``depth`` layers with a sum-of-squares loss, as a CompiledGraph."""
    h = x = mx.sym.var("x")
    for k in range(depth):
        h = mx.sym.tanh(mx.sym.FullyConnected(h, weight=mx.sym.var("w%d" % k), no_bias=True,
                                              num_hidden=width))
    loss = mx.sym.sum(h * h)
    nodes = [n for n in topo_order(loss._outputs) if n.op is None]
    shapes = {(n, 0): (batch, width) if n.name == "x" else (width, width) for n in nodes}
    dtypes = {(n, 0): "float32" for n in nodes}
    g = CompiledGraph(KernelStats(), loss._outputs, nodes, shapes, dtypes)
    mask = [n is not x._outputs[0][0] for n in nodes]
    return g, mask


def test_backward_scratch_does_not_grow_with_depth():
    act = 16 * 32 * 4
    got = {}
    for depth in (4, 8, 16):
        g, mask = _mlp(depth)
        fwd, _saved, bwd, _h, _hooks = g.train_kernels(mask)
        p = g._plan(bwd)
        loose = sum(int(np.prod(shape)) * 4 for _s, shape, _dt, _o in p.scratch)
        got[depth] = p.scratch_bytes
        # the intermediates share memory: their sum grows with depth, the arena does not
        assert loose >= depth * act
        # every weight gradient is returned: pinned, never in the arena
        assert len(p.own) == depth
        assert all(s in bwd.lowered.pinned for s in p.own_slots)
    assert got[4] == got[8] == got[16] <= 4 * act, got


def test_a_result_that_views_an_intermediate_pins_it():
    x = mx.sym.var("x")
    y = mx.sym.reshape(mx.sym.tanh(x) * 2, shape=(-1,))
    node = x._outputs[0][0]
    g = CompiledGraph(KernelStats(), y._outputs, [node], {(node, 0): (3, 4)},
                      {(node, 0): "float32"})
    k = g.forward_kernel()
    p = g._plan(k)
    assert k.lowered.view_slots and p.scratch == [] and len(p.own) == 1


# --------------------------------------------------------------- a compiled CNN ---
def _net():
    from agjit.gluon.model_zoo import vision
    net = vision.ResNetV1(vision.BasicBlockV1, [1, 1], [4, 4, 8], classes=5)
    net.initialize()
    net(nd.array(np.zeros((1, 3, 16, 16), np.float32)))
    return net


def test_jitted_residual_cnn_steps_equal_eager_and_share_one_arena():
    rs = np.random.RandomState(3)
    eager, jit = _net(), _net()
    for p, q in zip(eager.collect_params().values(), jit.collect_params().values()):
        v = rs.standard_normal(p.shape).astype(np.float32) * 0.3
        if p.name.endswith(("gamma", "running_var")):
            v = 1 + 0.1 * np.abs(v)
        p.set_data(nd.array(v))
        q.set_data(nd.array(v))
    jit.hybridize()
    L = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    for step in range(2):
        x = nd.array(rs.standard_normal((4, 3, 16, 16)).astype(np.float32))
        y = nd.array(rs.randint(0, 5, 4).astype(np.float32))
        res = []
        for net in (eager, jit):
            with mx.autograd.record():
                loss = L(net(x), y).mean()
            loss.backward()
            ps = list(net.collect_params().values())
            res.append([loss.asnumpy()] + [p.grad().asnumpy() for p in ps
                                           if p.grad_req != "null"] +
                       [p.data().asnumpy() for p in ps if "running" in p.name])
        for a, b in zip(*res):
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
    g = jit._jit._last
    (fwd, _saved, bwd, _h, _hooks), = g.compiled.bwd.values()
    plans = [g._plan(fwd), g._plan(bwd)]
    loose = sum(int(np.prod(shape)) * 4 for p in plans for _s, shape, _dt, _o in p.scratch)
    # one arena, sized for the larger kernel, serves both; far below one buffer each
    assert len(g._arenas) == 1
    assert g._arena_bytes == max(p.scratch_bytes for p in plans)
    assert 0 < g._arena_bytes < loose / 2
