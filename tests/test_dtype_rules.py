"""Type rules (issue 10, item 4): MXNet 1.9.1 refuses inputs of different dtypes for every op
whose inputs share one dtype (``Incompatible attr in node ... at 1-th input: expected float32,
got float64``); agjit raises MXNetError naming the op, the argument and both dtypes -- in the
eager path, in mx.jit and in symbolic infer_type alike (one check: symbol.registry.check_uniform).
Ops with their own rule (index inputs, BatchNorm's float32 parameters for float16 data, the
condition of ``where``) keep accepting what MXNet accepts.  Dtypes MXNet does not have
(complex64, uint16) are refused instead of computing silently.

Facts from MXNet 1.9.1 (checked with its pip build): all REFUSED cases raise MXNetError; all
ACCEPTED cases run; ``astype('complex64')`` raises (a KeyError there), ``zeros(dtype=
'complex64')`` and ``Cast(dtype='complex64')`` raise MXNetError "Invalid Input".
"""
import os
import subprocess

import numpy as np
import pytest

import agjit as mx
from agjit.base import MXNetError

nd = mx.nd


def o(*shape, dtype="float32"):
    return nd.ones(shape, dtype=dtype)


# (name, expression over m = the nd module and o = ones, op, argument, dtype expected, given)
REFUSED = [
    ('add', "o(2, 3) + o(2, 3, dtype='float64')", 'broadcast_add', 'rhs', 'float32', 'float64'),
    ('elemwise_add', "m.elemwise_add(o(2, 3), o(2, 3, dtype='float64'))", 'elemwise_add', 'rhs', 'float32', 'float64'),
    ('int add', "o(2, dtype='int32') + o(2, dtype='int64')", 'broadcast_add', 'rhs', 'int32', 'int64'),
    ('maximum', "m.maximum(o(2), o(2, dtype='float64'))", 'broadcast_maximum', 'rhs', 'float32', 'float64'),
    ('equal', "o(2) == o(2, dtype='float64')", 'broadcast_equal', 'rhs', 'float32', 'float64'),
    ('dot', "m.dot(o(2, 3, dtype='float16'), o(3, 2))", 'dot', 'rhs', 'float16', 'float32'),
    ('batch_dot', "m.batch_dot(o(1, 2, 2), o(1, 2, 2, dtype='float64'))", 'batch_dot', 'rhs', 'float32', 'float64'),
    ('FullyConnected', "m.FullyConnected(o(2, 3), o(4, 3, dtype='int32'), o(4), num_hidden=4)", 'FullyConnected', 'weight', 'float32', 'int32'),
    ('Convolution', "m.Convolution(o(1, 1, 3, 3), o(1, 1, 2, 2, dtype='float64'), o(1), kernel=(2, 2), num_filter=1)", 'Convolution', 'weight', 'float32', 'float64'),
    ('concat', "m.concat(o(2), o(2, dtype='float64'), dim=0)", 'Concat', 'arg1', 'float32', 'float64'),
    ('stack', "m.stack(o(2), o(2, dtype='float64'))", 'stack', 'arg1', 'float32', 'float64'),
    ('add_n', "m.add_n(o(2), o(2), o(2, dtype='float64'))", 'add_n', 'arg2', 'float32', 'float64'),
    ('where', "m.where(o(2), o(2), o(2, dtype='float64'))", 'where', 'y', 'float32', 'float64'),
    ('BatchNorm', "m.BatchNorm(o(2, 3), o(3, dtype='float64'), o(3), o(3), o(3))", 'BatchNorm', 'gamma', 'float32', 'float64'),
    ('BatchNorm f16', "m.BatchNorm(o(2, 3, dtype='float16'), o(3, dtype='float16'), o(3, dtype='float16'), o(3, dtype='float16'), o(3, dtype='float16'))", 'BatchNorm', 'gamma', 'float32', 'float16'),
    ('LayerNorm', "m.LayerNorm(o(2, 3), o(3, dtype='float64'), o(3))", 'LayerNorm', 'gamma', 'float32', 'float64'),
    ('SoftmaxOutput', "m.SoftmaxOutput(o(2, 3), m.array([0, 1], dtype='int32'))", 'SoftmaxOutput', 'label', 'float32', 'int32'),
    ('softmax_cross_entropy', "m.softmax_cross_entropy(o(2, 3), m.array([0, 1], dtype='int32'))", 'softmax_cross_entropy', 'label', 'float32', 'int32'),
]

ACCEPTED = [
    ('take int index', "m.take(o(2, 3), m.array([0], dtype='int32'))", 'float32'),
    ('take float64 index', "m.take(o(2, 3), o(1, dtype='float64'))", 'float32'),
    ('Embedding', "m.Embedding(m.array([0, 1], dtype='int32'), o(3, 4), input_dim=3, output_dim=4)", 'float32'),
    ('Embedding float64 weight', "m.Embedding(o(2), o(3, 4, dtype='float64'), input_dim=3, output_dim=4)", 'float64'),
    ('BatchNorm f16 data', "m.BatchNorm(o(2, 3, dtype='float16'), o(3), o(3), o(3), o(3))", 'float16'),
    ('where int condition', "m.where(o(2, 3, dtype='int32'), o(2, 3), o(2, 3))", 'float32'),
    ('pick int index', "m.pick(o(2, 3), m.array([0, 1], dtype='int32'))", 'float32'),
    ('one_hot', "m.one_hot(m.array([0, 1], dtype='int32'), 3)", 'float32'),
    ('broadcast_like', "m.broadcast_like(o(1, 3), o(2, 3, dtype='float64'))", 'float32'),
    ('reshape_like', "m.reshape_like(o(6), o(2, 3, dtype='float64'))", 'float32'),
]


@pytest.mark.parametrize("name,fn,op,arg,want,got", REFUSED, ids=[c[0] for c in REFUSED])
def test_mixed_dtypes_refused_eager(name, fn, op, arg, want, got):
    with pytest.raises(MXNetError) as ei:
        _eval(fn)
    msg = str(ei.value)
    assert op in msg and repr(arg) in msg and want in msg and got in msg, msg


@pytest.mark.parametrize("name,fn,want", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_own_type_rules_accepted(name, fn, want):
    assert _eval(fn).dtype == np.dtype(want).type


def _eval(expr):
    return eval(expr, {"m": nd, "o": o, "np": np})


def test_mixed_dtypes_refused_recorded_and_compiled():
    """Recording and mx.jit give the same error (the tracer runs the same check); the
    kernels of a function traced for float32 are not reused for a float64 argument."""
    a, b = o(2, 3), o(2, 3, dtype="float64")
    a.attach_grad()
    with pytest.raises(MXNetError, match=r"broadcast_mul.*'rhs'.*float32.*float64"):
        with mx.autograd.record():
            a * b
    f = mx.jit(lambda u, v: mx.nd.dot(u, v))
    assert f(o(2, 3), o(3, 2)).dtype == np.float32
    with pytest.raises(MXNetError, match=r"dot.*'rhs'.*float32.*float64"):
        f(o(2, 3), o(3, 2, dtype="float64"))
    g = mx.jit(lambda x, w: mx.nd.FullyConnected(x, w, no_bias=True, num_hidden=4))
    with pytest.raises(MXNetError, match=r"FullyConnected.*'weight'.*float32.*int32"):
        g(o(2, 3), o(4, 3, dtype="int32"))


def test_mixed_dtypes_refused_symbolic():
    s = mx.sym.var("a") + mx.sym.var("b")
    with pytest.raises(MXNetError, match=r"elemwise_add.*'rhs'.*float32.*float64"):
        s.infer_type(a="float32", b="float64")
    fc = mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=4, name="fc")
    with pytest.raises(MXNetError, match=r"fc.*FullyConnected.*'weight'.*float32.*int32"):
        fc.infer_type(x="float32", fc_weight="int32")
    # partial information still propagates the one dtype
    args, outs, _ = fc.infer_type(x="float64")
    assert args == [np.float64, np.float64, np.float64] and outs == [np.float64]
    with pytest.raises(MXNetError, match="elemwise_add"):
        s.eval(a=o(2), b=o(2, dtype="float64"))


@pytest.mark.parametrize("make", [
    lambda: o(2).astype("complex64"),
    lambda: o(2).astype(np.complex64),
    lambda: nd.Cast(o(2), dtype="complex64"),
    lambda: nd.zeros((2,), dtype="complex64"),
    lambda: nd.zeros((2,), dtype="uint16"),
    lambda: nd.array([1, 2], dtype=np.complex64),
    lambda: mx.sym.Cast(mx.sym.var("a"), dtype="complex64"),
])
def test_dtypes_outside_mxnet_refused(make):
    with pytest.raises(MXNetError, match="complex64|uint16"):
        make()


def _mxnet_python():
    for c in (os.environ.get("AGJIT_MXNET_PYTHON"), "/work/mxenv/bin/python"):
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def test_real_mxnet_agrees():
    """Every REFUSED case also fails in real MXNet 1.9.1 and every ACCEPTED one runs there
    with the same output dtype (skipped without an MXNet interpreter)."""
    py = _mxnet_python()
    if py is None:
        pytest.skip("no MXNet interpreter (set AGJIT_MXNET_PYTHON)")
    lines = ["import numpy as np, mxnet as mx", "nd = mx.nd",
             "def o(*shape, dtype='float32'):", "    return nd.ones(shape, dtype=dtype)", "res = {}"]
    for kind, cases in (("refused", REFUSED), ("accepted", ACCEPTED)):
        for c in cases:
            lines += ["try:", "    r = (lambda m: %s)(nd)" % c[1],
                      "    res[%r] = np.dtype(r.dtype).name" % c[0],
                      "except mx.base.MXNetError:", "    res[%r] = 'MXNetError'" % c[0]]
    lines.append("import json; print(json.dumps(res))")
    env = dict(os.environ, MXNET_STORAGE_FALLBACK_LOG_VERBOSE="0")
    out = subprocess.run([py, "-c", "\n".join(lines)], capture_output=True, text=True, timeout=120,
                         env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    import json
    res = json.loads(out.stdout.strip().splitlines()[-1])
    for c in REFUSED:
        assert res[c[0]] == "MXNetError", (c[0], res[c[0]])
    for c in ACCEPTED:
        assert res[c[0]] == c[2], (c[0], res[c[0]])


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_float16_data_float32_params_backward(train):
    """MXNet's one mixed-dtype rule: float16 data with float32 gamma/beta/moving stats.  The
    backward (written with same-dtype ops) casts the parameters to the data dtype, so it runs
    and gives the float32 computation's numbers to float16 precision."""
    rs = np.random.RandomState(0)
    x0 = rs.uniform(-1, 1, (4, 3))
    grads = {}
    for dt in ("float16", "float32"):
        x = nd.array(x0, dtype=dt)
        x.attach_grad()
        g = nd.array([1.5, 0.5, 2.0])
        g.attach_grad()
        with mx.autograd.record(train_mode=train):
            y = nd.BatchNorm(x, g, nd.zeros(3), nd.array([0.1, -0.2, 0.3]), nd.array([1.0, 2.0, 0.5]),
                             fix_gamma=False)
        y.backward()
        assert y.dtype == np.dtype(dt).type and x.grad.dtype == np.dtype(dt).type
        assert g.grad.dtype == np.float32
        grads[dt] = (y.asnumpy().astype(np.float64), x.grad.asnumpy().astype(np.float64),
                     g.grad.asnumpy().astype(np.float64))
    for a, b in zip(grads["float16"], grads["float32"]):
        np.testing.assert_allclose(a, b, rtol=2e-2, atol=2e-2)
