"""The CNN ops compiled (agjit.compiler.kernels_nn through the KernelCall lowerings of
symbol/ops/nn_conv.py and nn_extra.py): jitted LeNet and ResNet-block training steps equal
eager (loss and every gradient) and run no eager CNN segment; every sample of Convolution,
Deconvolution, Pooling and their gradient ops compiled equals eager and runs no eager step
(channel-last layouts, 3-D and target_shape included); grouped / depthwise / dilated / strided
/ 1x1 convolutions and their gradients; max pooling's gradient goes to the FIRST maximum of
each window (MXNet's tie rule), with -inf, NaN and padding exactly as eager.

Numba compiles are slow: every test shares the run's kernel cache (tests/conftest.py), and
the sample table is one jitted function built once for the module.
"""
import re

import numpy as np
import pytest

import agjit as mx
from agjit.compiler import kernels_nn
from symbol.registry import get_op

nd = mx.nd


def _eager_notes(f):
    text = f.explain()
    if "eager segments in the replay:" not in text:
        return []
    return [ln.strip() for ln in text.split("eager segments in the replay:")[1].splitlines()
            if "runs eagerly" in ln]


def _step(fn, data, n_const=2):
    args = [nd.array(a) for a in data]
    for a in args[n_const:]:
        a.attach_grad()
    with mx.autograd.record():
        loss = fn(*args)
    loss.backward()
    return [loss.asnumpy()] + [a.grad.asnumpy() for a in args[n_const:]]


def test_gemm_uses_numpys_own_openblas():
    # the GEMMs of the kernels call the BLAS NumPy links (kernels_nn note *numpy-blas*)
    assert kernels_nn.HAVE_NUMPY_BLAS


# ------------------------------------------------------------------------ LeNet step ---
def _lenet(x, y, c1w, c1b, c2w, c2b, f1w, f1b, f2w, f2b):
    h = nd.relu(nd.Convolution(x, c1w, c1b, kernel=(3, 3), pad=(1, 1), num_filter=4))
    h = nd.Pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="max")
    h = nd.relu(nd.Convolution(h, c2w, c2b, kernel=(3, 3), num_filter=6))
    h = nd.Pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="max")
    h = nd.relu(nd.FullyConnected(h, f1w, f1b, num_hidden=16))
    z = nd.FullyConnected(h, f2w, f2b, num_hidden=10)
    return -nd.mean(nd.pick(nd.log_softmax(z, axis=1), y, axis=1))


def _lenet_data(rs, n=4):
    shapes = [(4, 1, 3, 3), (4,), (6, 4, 3, 3), (6,), (16, 24), (16,), (10, 16), (10,)]
    x = rs.standard_normal((n, 1, 12, 12)).astype(np.float32)
    y = rs.randint(0, 10, size=n).astype(np.float32)
    return [x, y] + [(rs.standard_normal(s) * 0.5).astype(np.float32) for s in shapes]


def test_jitted_lenet_step_equals_eager_and_runs_no_eager_segment():
    rs = np.random.RandomState(0)
    data = _lenet_data(rs)
    f = mx.jit(_lenet)
    for _ in range(2):          # the trace, then the compiled step replay
        got = _step(f, data)
    want = _step(_lenet, data)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    assert _eager_notes(f) == [], f.explain()
    assert "every op of the last traced graph is compiled" in f.explain()
    # a new batch size: the same kernels, still equal to eager
    data = _lenet_data(rs, n=3)
    for g, w in zip(_step(f, data), _step(_lenet, data)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- ResNet block step ---
def _block(x, y, w1, g1, b1, w2, g2, b2, fw, fb, mm1, mv1, mm2, mv2):
    c = w1.shape[0]
    h = nd.Convolution(x, w1, kernel=(3, 3), pad=(1, 1), num_filter=c, no_bias=True)
    h = nd.relu(nd.BatchNorm(h, g1, b1, mm1, mv1, fix_gamma=False, eps=1e-5))
    h = nd.Convolution(h, w2, kernel=(3, 3), pad=(1, 1), num_filter=c, no_bias=True)
    h = nd.BatchNorm(h, g2, b2, mm2, mv2, fix_gamma=False, eps=1e-5)
    h = nd.relu(h + x)
    h = nd.Pooling(h, kernel=(1, 1), global_pool=True, pool_type="avg")
    z = nd.FullyConnected(h, fw, fb, num_hidden=10)
    return -nd.mean(nd.pick(nd.log_softmax(z, axis=1), y, axis=1))


def test_jitted_resnet_block_step_equals_eager_and_runs_no_eager_cnn_segment():
    rs = np.random.RandomState(1)
    n, c, hw = 3, 4, 6
    x = rs.standard_normal((n, c, hw, hw)).astype(np.float32)
    y = rs.randint(0, 10, size=n).astype(np.float32)
    params = [(rs.standard_normal((c, c, 3, 3)) * 0.3), 1 + 0.1 * rs.standard_normal(c),
              0.1 * rs.standard_normal(c), (rs.standard_normal((c, c, 3, 3)) * 0.3),
              1 + 0.1 * rs.standard_normal(c), 0.1 * rs.standard_normal(c),
              rs.standard_normal((10, c)) * 0.5, np.zeros(10)]
    stats = [np.zeros(c), np.ones(c), np.zeros(c), np.ones(c)]
    order = [x, y] + [p.astype(np.float32) for p in params]

    def fn(x, y, w1, g1, b1, w2, g2, b2, fw, fb):
        return _block(x, y, w1, g1, b1, w2, g2, b2, fw, fb, *consts)
    consts = [nd.array(s.astype(np.float32)) for s in stats]
    f = mx.jit(fn)
    for _ in range(2):
        got = _step(f, order)
    want = _step(fn, order)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-5)
    # BatchNorm (and the ops of its gradient) is lowered elsewhere (symbol/ops/nn_norm.py);
    # every other op -- convolutions, pooling, dot, sums -- is compiled
    notes = [re.match(r"(?:\w+: )?(\S+) \((\S+)\): runs eagerly", s).groups()
             for s in _eager_notes(f)]
    bn = {node for node, op in notes if op == "BatchNorm"}
    assert all(node.split("_backward_")[0] in bn for node, op in notes), f.explain()


# ----------------------------------------------------- every sample of the CNN ops ---
_OPS = ("Convolution", "_backward_Convolution_data", "_backward_Convolution_weight",
        "Deconvolution", "_backward_Deconvolution_data", "_backward_Deconvolution_weight",
        "Pooling", "_backward_Pooling", "_pooling_max_select")


class _Sample:
    def __init__(self, inputs, attrs):
        self.inputs, self.attrs = inputs, attrs


def _table():
    rs = np.random.RandomState(5)
    out = []
    for name in _OPS:
        op = get_op(name)
        for s in op.samples(rs):
            out.append((op, s))
    r = lambda *sh: rs.uniform(-1, 1, sh)
    conv = get_op("Convolution")
    # groups + dilation + stride 2 + pad; depthwise; 1x1 (no im2col); strided 1-D
    out.append((conv, _Sample([r(2, 6, 9, 8), r(4, 3, 3, 2), r(4)], {
        "kernel": (3, 2), "num_filter": 4, "num_group": 2, "stride": (2, 2), "pad": (1, 0),
        "dilate": (2, 3)})))
    out.append((conv, _Sample([r(2, 3, 6, 5), r(3, 1, 3, 3), r(3)], {
        "kernel": (3, 3), "num_filter": 3, "num_group": 3, "pad": (1, 1)})))
    out.append((conv, _Sample([r(2, 5, 4, 3), r(6, 5, 1, 1)], {
        "kernel": (1, 1), "num_filter": 6, "no_bias": True})))
    out.append((get_op("_backward_Convolution_data"), _Sample([r(2, 6, 4, 3), r(2, 5, 4, 3),
                                                               r(6, 5, 1, 1)],
                                                              {"kernel": (1, 1), "num_filter": 6})))
    out.append((get_op("_backward_Convolution_weight"), _Sample([r(2, 6, 4, 3), r(2, 5, 4, 3),
                                                                 r(6, 5, 1, 1)],
                                                                {"kernel": (1, 1), "num_filter": 6})))
    out.append((conv, _Sample([r(2, 2, 9), r(3, 2, 3), r(3)], {
        "kernel": (3,), "num_filter": 3, "stride": (2,), "pad": (2,), "dilate": (2,)})))
    return out


TABLE = _table()


def _apply(*arrays):
    outs, k = [], 0
    for op, s in TABLE:
        ins = list(arrays[k:k + len(s.inputs)])
        k += len(s.inputs)
        outs.append(nd.invoke(op, ins, dict(s.attrs)))
    return tuple(outs)


@pytest.fixture(scope="module")
def table_run():
    # float32, as the training steps: the kernels compile once for this file
    ins = [nd.array(a, dtype="float32") for op, s in TABLE for a in s.inputs]
    f = mx.jit(_apply)
    f(*ins)
    got = f(*ins)
    want = _apply(*ins)
    return f, got, want


@pytest.mark.parametrize("k", range(len(TABLE)),
                         ids=["%s-%d" % (op.name, i) for i, (op, s) in enumerate(TABLE)])
def test_cnn_op_samples_compiled_equal_eager(table_run, k):
    f, got, want = table_run
    np.testing.assert_allclose(got[k].asnumpy(), want[k].asnumpy(), rtol=1e-5, atol=1e-5,
                               err_msg="%s %r" % (TABLE[k][0].name, TABLE[k][1].attrs))


def test_every_cnn_sample_is_compiled(table_run):
    f = table_run[0]
    assert _eager_notes(f) == [], f.explain()


def test_grouped_dilated_strided_conv_backward_compiled_equals_eager():
    rs = np.random.RandomState(2)
    x = rs.uniform(-1, 1, (2, 4, 9, 7)).astype(np.float32)
    w = rs.uniform(-1, 1, (6, 2, 3, 3)).astype(np.float32)
    b = rs.uniform(-1, 1, (6,)).astype(np.float32)
    head = rs.uniform(-1, 1, (2, 6, 5, 2)).astype(np.float32)
    kw = dict(kernel=(3, 3), num_filter=6, num_group=2, stride=(2, 2), pad=(1, 0),
              dilate=(1, 2))

    def fn(x, w, b):
        return nd.Convolution(x, w, b, **kw)

    def run(f):
        a = [nd.array(v) for v in (x, w, b)]
        for v in a:
            v.attach_grad()
        with mx.autograd.record():
            y = f(*a)
        y.backward(nd.array(head))
        return [y.asnumpy()] + [v.grad.asnumpy() for v in a]
    jf = mx.jit(fn)
    run(jf)
    got = run(jf)
    for g, e in zip(got, run(fn)):
        np.testing.assert_allclose(g, e, rtol=1e-5, atol=1e-5)
    assert got[0].shape == (2, 6, 5, 2)
    assert _eager_notes(jf) == [], jf.explain()


# ------------------------------------------------------------------ first-max rule ---
def _pool_grad(f, x):
    a = nd.array(x)
    a.attach_grad()
    with mx.autograd.record():
        y = f(a)
    y.backward(nd.ones(y.shape, dtype=y.dtype))
    return y.asnumpy(), a.grad.asnumpy()


def test_max_pool_gradient_goes_to_the_first_maximum():
    x = np.array([[[[1.0, 3.0, 3.0, 0.0],
                    [3.0, 2.0, 1.0, 3.0],
                    [5.0, 5.0, np.nan, 2.0],
                    [5.0, -np.inf, 2.0, 2.0]]]], dtype=np.float32)

    def fn(a):
        return (nd.Pooling(a, kernel=(2, 2), stride=(2, 2), pool_type="max")
                + nd.Pooling(a, kernel=(3, 3), stride=(2, 2), pad=(1, 1), pool_type="max")
                + nd.Pooling(a, kernel=(1, 1), global_pool=True, pool_type="max"))
    jf = mx.jit(fn)
    _pool_grad(jf, x)
    got_y, got_g = _pool_grad(jf, x)
    want_y, want_g = _pool_grad(fn, x)
    np.testing.assert_array_equal(got_y, want_y)
    np.testing.assert_array_equal(got_g, want_g)
    assert _eager_notes(jf) == [], jf.explain()
    # 2x2 windows: ties go to the first in row-major order, NaN is skipped; the global
    # window routes to its first NaN (np.argmax); 3x3 windows over the padded input:
    # (0,0) -> [0,1], (0,1) -> [0,1] too (first 3 of its window), (1,0) -> [2,0],
    # (1,1) -> [2,1] (NaN skipped, 5 is the max of data rows 1-3, cols 1-3)
    expect = np.zeros((4, 4), np.float32)
    for (i, j) in [(0, 1), (0, 2), (2, 0), (2, 3)]:      # 2x2 windows
        expect[i, j] += 1
    for (i, j) in [(0, 1), (0, 1), (2, 0), (2, 1)]:      # 3x3 padded windows
        expect[i, j] += 1
    expect[2, 2] += 4          # global: its first NaN (its output is broadcast over 2x2)
    np.testing.assert_array_equal(got_g[0, 0], expect)


def test_max_pool_gradient_with_infinities_nan_and_padding_equals_eager():
    """Random windows full of ties, -inf and NaN, padded on every side (padding counts as
    -inf and comes first in window order where it sits first); interior rows take the
    row-wise path of the kernels, border windows the per-window one."""
    rs = np.random.RandomState(4)
    vals = np.array([-np.inf, -np.inf, np.nan, 1.0, 1.0, 2.0], dtype=np.float32)
    x = vals[rs.randint(0, len(vals), size=(3, 2, 9, 8))]

    def fn(a):
        return (nd.Pooling(a, kernel=(3, 3), stride=(1, 1), pad=(1, 1), pool_type="max")
                .sum() + nd.Pooling(a, kernel=(2, 3), stride=(2, 2), pad=(1, 2),
                                    pool_type="max", pooling_convention="full").sum()
                + nd.Pooling(a, kernel=(2, 2), stride=(2, 2), pool_type="max").sum())
    jf = mx.jit(fn)
    _pool_grad(jf, x)
    got_y, got_g = _pool_grad(jf, x)
    want_y, want_g = _pool_grad(fn, x)
    np.testing.assert_array_equal(got_y, want_y)
    np.testing.assert_array_equal(got_g, want_g)
    assert _eager_notes(jf) == [], jf.explain()
