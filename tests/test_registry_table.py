"""Registry-driven operator tables (torch OpInfo / JAX check_grads style).

Every canonical :class:`symbol.registry.OpDef` returned by ``symbol.registry.all_ops()`` is
picked up automatically, with every ``Sample`` from ``op.samples(rng)``:

* completeness: samples, shape inference, forward, a gradient or an explicit
  ``differentiable=False``, and the lowering attributes;
* eager forward (``agjit.ndarray.invoke`` on NDArrays) against ``op.np_reference`` when the op
  has one, else against ``op.forward`` called directly on the NumPy inputs;
* inferred shapes and dtypes against the actual outputs (hidden outputs included), for
  float64 and float32 inputs, and partial inference with unknown shapes;
* the gradient against central finite differences in float64, in one random direction per
  input, through agjit's autograd (attach_grad / record / backward with a random head
  gradient);
* the second derivative (``grad(create_graph=True)`` then ``backward``) against finite
  differences of the first-order gradient, for ops with ``second_order``.

A hand-picked table of common ops is also checked against independent NumPy formulas
written here (not taken from the op definitions).

Note: index-inputs
    Inputs that are indices, labels, masks or conditions must not be perturbed by the finite
    difference checks.  The convention: an input whose sample values are all integers (an
    integer dtype, or a float array holding only whole numbers, such as ``where``'s 0/1
    condition or SoftmaxOutput's label) is an *index input*.  It is fed as given and its
    gradient is not checked.  Real-valued sample inputs are drawn from continuous
    distributions, so they are never whole numbers by accident.

    Auxiliary states (``op.mutate_inputs``: BatchNorm's moving mean/var) are not perturbed
    either: MXNet gives them no gradient, even where the output depends on them
    (``use_global_stats``).

    Outputs listed in ``STATS_OUTPUTS`` (BatchNorm/LayerNorm ``mean``/``var`` made visible by
    ``output_mean_var``) get a zero head gradient: MXNet's backward of those ops reads only
    the gradient of output 0.

Ops whose outputs are random (Dropout in training) declare ``needs_rng`` and are excluded
from the gradient checks; ops whose backward is not the derivative of the forward
(SoftmaxOutput) or whose gradient is zero almost everywhere declare ``grad_check=False``.

``np_reference(attrs, inputs)`` contract (for op authors): it takes the parsed attrs and the
list of NumPy inputs and returns one array (the first output) or a list of arrays (the
leading visible outputs).
"""
import numpy as np
import pytest

import agjit as mx
from agjit import autograd
from agjit.ndarray import invoke
from agjit.ndarray.ndarray import OpCtx, _wrap
from agjit.tape import entry_of
from symbol.base import MXNetError
from symbol.registry import all_ops, all_names
from symbol.lowering import Lowering
from agjit.compiler import oplower

# Ops that legitimately have no samples (and may lack a kernel), with the reason.
NO_SAMPLES = {
    "_CustomFunction": "the node a recorded autograd.Function leaves on the tape; its forward "
                       "and backward are Python methods of the Function, not a kernel",
    "_jit_call": "the tape node of a recorded mx.jit call; it runs compiled kernels and "
                 "get_symbol inlines the traced graph, so it has no NumPy kernel of its own",
    "Custom": "its schema, kernels and gradient come from a user's CustomOpProp registered at "
              "run time (tests/test_custom_op.py registers some and checks them)",
    "_backward_Custom": "the backward of Custom; the same user-defined schema",
}

# op name -> reason; only output 0 receives a (random) head gradient in the gradient checks
STATS_OUTPUTS = {
    "BatchNorm": "mean/var outputs are statistics; MXNet's backward reads only out_grad[0]",
    "LayerNorm": "mean/std outputs are statistics; MXNet's backward reads only out_grad[0]",
}

EPS = 1e-5            # central differences in float64: truncation ~1e-10, rounding ~1e-11
GRAD_ATOL = 1e-6
GRAD_RTOL = 1e-5

_OPS = all_ops()


# ---------------------------------------------------------------------------------------
# collecting the table
# ---------------------------------------------------------------------------------------
def _collect_samples():
    params = []
    for op in _OPS:
        if op.samples is None:
            continue
        try:
            samples = list(op.samples(np.random.RandomState(0)))
        except Exception as e:      # report it as a failing test, not a collection error
            params.append(pytest.param(op, None, repr(e), id="%s-samples-error" % op.name))
            continue
        for i, s in enumerate(samples):
            params.append(pytest.param(op, s, None, id="%s-%d" % (op.name, i)))
    return params


SAMPLES = _collect_samples()


def _check_sample(sample, error):
    if error is not None:
        pytest.fail("op.samples(rng) raised: %s" % error)


def _attrs(op, sample, n_inputs):
    given = dict(sample.attrs)
    if op.variadic and op.variadic not in given:
        given[op.variadic] = n_inputs
    return given


def _is_index(a):
    """See the module note *index-inputs*."""
    a = np.asarray(a)
    if a.dtype.kind in "iub":
        return True
    return a.size > 0 and bool(np.all(np.isfinite(a))) and bool(np.all(a == np.round(a)))


def _nd(a, dtype=None):
    a = np.asarray(a)
    if dtype is not None and a.dtype.kind == "f":
        a = a.astype(dtype)
    return _wrap(np.array(a, copy=True))


def _as_list(res):
    return list(res) if isinstance(res, (list, tuple)) else [res]


def _forward_direct(op, given, inputs, is_train):
    parsed = op.parse_attrs(given)
    return parsed, op.forward(parsed, [np.array(a, copy=True) for a in inputs], OpCtx(is_train))


def _seeded(fn):
    mx.random.seed(42)
    return fn()


# ---------------------------------------------------------------------------------------
# completeness
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("op", _OPS, ids=[o.name for o in _OPS])
def test_op_definition_complete(op):
    if op.name in NO_SAMPLES:
        assert op.samples is None, "%s is allow-listed as sample-less but has samples" % op.name
        return
    missing = []
    if not callable(op.samples):
        missing.append("samples")
    if op._infer_shape is None:
        missing.append("infer_shape")
    if op.forward is None:
        missing.append("forward")
    if op._gradient is None and getattr(op, "declared_differentiable", False):
        missing.append("gradient (or differentiable=False)")
    # the lowering is a typed contract object (symbol.lowering) or None, lowerable says
    # exactly whether there is one, and every function it names resolves
    if not (op.lowering is None or isinstance(op.lowering, Lowering)):
        missing.append("a typed lowering (got %r)" % (op.lowering,))
    elif op.lowerable != (op.lowering is not None):
        missing.append("lowerable=%r that agrees with its lowering %r" % (op.lowerable, op.lowering))
    else:
        for ref in (op.lowering.refs() if op.lowering is not None else ()):
            try:
                oplower.resolve(ref)
            except LookupError as e:
                missing.append(str(e))
    assert not missing, "%s lacks: %s" % (op.name, ", ".join(missing))
    if op.differentiable and callable(op.samples):
        _check_gradient_arity(op)
    assert op.name == op.name.strip() and op.name
    for a in op.aliases:
        assert all_names()[a] is op


def _check_gradient_arity(op):
    """The gradient rule, applied symbolically to the first sample, returns one gradient
    (None or a single-output Symbol of the input's shape) per input."""
    from symbol.autodiff import SymbolBuilder, _SymCtx
    sample = op.samples(np.random.RandomState(0))[0]
    given = _attrs(op, sample, len(sample.inputs))
    F = SymbolBuilder("probe")
    ins = [mx.sym.var("in%d" % k) for k in range(len(sample.inputs))]
    out = F.build(op, ins, given)
    outs = out if isinstance(out, list) else [out]
    node = outs[0]._outputs[0][0]
    allouts = [mx.sym.Symbol([(node, i)]) for i in range(node.num_outputs())]
    og = [mx.sym.var("og%d" % i) for i in range(len(allouts))]
    grads = op.gradient(F, node.parsed, ins, allouts, og, _SymCtx(True))
    assert len(grads) >= len(ins), "%s: %d gradients for %d inputs" % (op.name, len(grads), len(ins))
    shapes = {"in%d" % k: np.shape(a) for k, a in enumerate(sample.inputs)}
    oshapes = dict(zip(["og%d" % i for i in range(len(allouts))],
                       _out_shapes(op, given, sample.inputs)))
    for k, g in enumerate(grads[:len(ins)]):
        if g is None:
            continue
        assert isinstance(g, mx.sym.Symbol) and len(g.list_outputs()) == 1, (op.name, k, g)
        known = {n: s for n, s in dict(shapes, **oshapes).items() if n in g.list_arguments()}
        _a, outs_sh, _x = g.infer_shape_partial(**known)
        if outs_sh and outs_sh[0] is not None and None not in outs_sh[0] and 0 not in outs_sh[0]:
            assert tuple(outs_sh[0]) == tuple(shapes["in%d" % k]), \
                "%s: gradient of input %d has shape %s, the input %s" % (
                    op.name, k, outs_sh[0], shapes["in%d" % k])


def _out_shapes(op, given, inputs):
    parsed = op.parse_attrs(given)
    _i, outs = op.infer_shape(parsed, [np.shape(a) for a in inputs])
    return [tuple(o) if o is not None else None for o in outs]


@pytest.mark.parametrize("op", _OPS, ids=[o.name for o in _OPS])
def test_nd_function_for_every_name(op):
    """``mx.nd.<name>`` exists for the op and each alias (generated from the registry)."""
    for name in (op.name,) + tuple(op.aliases):
        assert callable(getattr(mx.nd, name, None)), "mx.nd.%s is missing" % name


# ---------------------------------------------------------------------------------------
# forward
# ---------------------------------------------------------------------------------------
def _run_eager(op, given, inputs, train):
    def go():
        nds = [_nd(a) for a in inputs]
        if train:
            with mx.autograd.train_mode():
                return _as_list(invoke(op, nds, dict(given)))
        return _as_list(invoke(op, nds, dict(given)))
    return [r.asnumpy() for r in (_seeded(go) if op.needs_rng else go())]


@pytest.mark.parametrize("op,sample,error", SAMPLES)
def test_forward_matches_reference(op, sample, error):
    _check_sample(sample, error)
    given = _attrs(op, sample, len(sample.inputs))
    modes = [False, True] if (op.train_dependent or op.needs_rng) else [False]
    for train in modes:
        got = _run_eager(op, given, sample.inputs, train)
        nvis = op.num_visible(op.parse_attrs(given))
        assert len(got) == nvis, "%s: %d visible outputs, eager returned %d" % (op.name, nvis, len(got))
        if op.np_reference is not None:
            ref = _as_list(op.np_reference(op.parse_attrs(given), [np.array(a) for a in sample.inputs]))
        else:
            def direct():
                return _forward_direct(op, given, sample.inputs, train)[1]
            ref = _seeded(direct) if op.needs_rng else direct()
        for k, (g, r) in enumerate(zip(got, ref)):
            r = np.asarray(r)
            assert g.shape == r.shape, "%s output %d: shape %s vs reference %s" % (op.name, k, g.shape, r.shape)
            np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12,
                                       err_msg="%s output %d (train=%s)" % (op.name, k, train))


@pytest.mark.parametrize("op,sample,error", SAMPLES)
def test_forward_keeps_inputs_intact(op, sample, error):
    """A kernel must not write into its inputs (aux-state updates happen in backward hooks)."""
    _check_sample(sample, error)
    given = _attrs(op, sample, len(sample.inputs))
    ins = [np.array(a, copy=True) for a in sample.inputs]
    before = [a.copy() for a in ins]
    parsed = op.parse_attrs(given)
    _seeded(lambda: op.forward(parsed, ins, OpCtx(True)))
    for a, b in zip(ins, before):
        np.testing.assert_array_equal(a, b, err_msg="%s modified an input in forward" % op.name)


# ---------------------------------------------------------------------------------------
# shape and dtype inference
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("op,sample,error", SAMPLES)
def test_inferred_shapes_and_types(op, sample, error, dtype):
    _check_sample(sample, error)
    given = _attrs(op, sample, len(sample.inputs))
    inputs = [np.asarray(a).astype(dtype) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for a in sample.inputs]
    parsed, outs = _seeded(lambda: _forward_direct(op, given, inputs, False))
    nout = op.num_outputs(parsed)
    assert len(outs) == nout, "%s: forward returned %d outputs, num_outputs says %d" % (op.name, len(outs), nout)
    in_shapes, out_shapes = op.infer_shape(parsed, [a.shape for a in inputs])
    assert [tuple(s) for s in in_shapes] == [a.shape for a in inputs], op.name
    assert len(out_shapes) == nout, "%s: infer_shape gave %d outputs for %d" % (op.name, len(out_shapes), nout)
    for k, (s, o) in enumerate(zip(out_shapes, outs)):
        assert s is not None and tuple(s) == o.shape, \
            "%s output %d: inferred shape %s, actual %s" % (op.name, k, s, o.shape)
    in_types, out_types = op.infer_type(parsed, [a.dtype for a in inputs])
    assert len(out_types) == nout, op.name
    for k, (t, o) in enumerate(zip(out_types, outs)):
        assert t is not None and np.dtype(t) == o.dtype, \
            "%s output %d: inferred dtype %s, actual %s" % (op.name, k, t, o.dtype)
    # the eager path returns the same dtypes
    got = _run_eager(op, given, inputs, False)
    for k, (g, o) in enumerate(zip(got, outs)):
        assert g.dtype == o.dtype, "%s output %d: eager dtype %s vs %s" % (op.name, k, g.dtype, o.dtype)


@pytest.mark.parametrize("op,sample,error", SAMPLES)
def test_infer_shape_tolerates_unknown(op, sample, error):
    """Partial inference: unknown (None) input shapes must not crash the inference."""
    _check_sample(sample, error)
    given = _attrs(op, sample, len(sample.inputs))
    parsed = op.parse_attrs(given)
    n = len(sample.inputs)
    ins, outs = op.infer_shape(parsed, [None] * n)
    assert len(ins) == n
    assert len(outs) == op.num_outputs(parsed)
    # knowing only the first input must not crash either (ops without inputs: the random ops)
    if n:
        op.infer_shape(parsed, [np.asarray(sample.inputs[0]).shape] + [None] * (n - 1))


# ---------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------
GRAD_SAMPLES = [p for p in SAMPLES
                if p.values[1] is not None and p.values[0].differentiable and p.values[0].grad_check
                and not p.values[0].needs_rng]
SECOND_SAMPLES = [p for p in GRAD_SAMPLES if p.values[0].second_order]


def _objective(op, given, inputs, ws):
    """F(x) = sum_k <w_k, out_k(x)> over the visible outputs, evaluated in training mode."""
    nds = [_nd(a) for a in inputs]
    with mx.autograd.train_mode():
        outs = _as_list(invoke(op, nds, dict(given)))
    return sum(float(np.sum(w * o.asnumpy())) for w, o in zip(ws, outs))


def _first_order(op, given, inputs, ws, idx):
    """Gradients of F w.r.t. inputs ``idx`` through agjit's autograd."""
    nds = [_nd(a) for a in inputs]
    for i in idx:
        nds[i].attach_grad()
    with mx.autograd.record():
        outs = _as_list(invoke(op, nds, dict(given)))
    assert len(outs) == len(ws)
    autograd.backward(outs, [_nd(w) for w in ws])
    return [nds[i].grad.asnumpy() for i in idx]


def _head_weights(op, given, inputs, rs):
    nds = [_nd(a) for a in inputs]
    with mx.autograd.train_mode():
        outs = _as_list(invoke(op, nds, dict(given)))
    ws = [rs.standard_normal(o.shape) for o in outs]
    if op.name in STATS_OUTPUTS:
        ws = ws[:1] + [np.zeros(o.shape) for o in outs[1:]]
    return ws


def _perturbable(op, sample):
    idx = [i for i, a in enumerate(sample.inputs)
           if not _is_index(a) and i not in op.mutate_inputs]
    if not idx:
        pytest.skip("%s: every input is an index input" % op.name)
    return idx


@pytest.mark.parametrize("op,sample,error", GRAD_SAMPLES)
def test_gradient_finite_differences(op, sample, error):
    rs = np.random.RandomState(7)
    given = _attrs(op, sample, len(sample.inputs))
    inputs = [np.asarray(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for a in sample.inputs]
    idx = _perturbable(op, sample)
    ws = _head_weights(op, given, inputs, rs)
    grads = _first_order(op, given, inputs, ws, idx)
    for g, i in zip(grads, idx):
        assert g.shape == inputs[i].shape and g.dtype == np.float64, (op.name, i, g.shape, g.dtype)
        assert np.all(np.isfinite(g)), "%s: non-finite gradient for input %d" % (op.name, i)
    for g, i in zip(grads, idx):
        v = rs.standard_normal(inputs[i].shape)
        plus = list(inputs)
        minus = list(inputs)
        plus[i] = inputs[i] + EPS * v
        minus[i] = inputs[i] - EPS * v
        fd = (_objective(op, given, plus, ws) - _objective(op, given, minus, ws)) / (2 * EPS)
        an = float(np.sum(g * v))
        scale = float(np.sum(np.abs(g * v)))
        assert abs(an - fd) <= GRAD_ATOL + GRAD_RTOL * max(scale, abs(fd)), \
            "%s: d/d(input %d) <grad, v> = %.10g but finite differences give %.10g" % (op.name, i, an, fd)


@pytest.mark.parametrize("op,sample,error", SECOND_SAMPLES)
def test_second_order_finite_differences(op, sample, error):
    rs = np.random.RandomState(11)
    given = _attrs(op, sample, len(sample.inputs))
    inputs = [np.asarray(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for a in sample.inputs]
    idx = _perturbable(op, sample)
    ws = _head_weights(op, given, inputs, rs)
    us = [rs.standard_normal(inputs[i].shape) for i in idx]
    vs = [rs.standard_normal(inputs[i].shape) for i in idx]

    # analytic: d/dx <grad F(x), u> = H u, projected on v
    nds = [_nd(a) for a in inputs]
    for i in idx:
        nds[i].attach_grad()
    with mx.autograd.record():
        outs = _as_list(invoke(op, nds, dict(given)))
        gs = autograd.grad(outs, [nds[i] for i in idx], head_grads=[_nd(w) for w in ws],
                           create_graph=True)
    assert isinstance(gs, list) and len(gs) == len(idx)
    heads = [(g, _nd(u)) for g, u in zip(gs, us) if entry_of(g) is not None]
    hvp = [np.zeros_like(inputs[i]) for i in idx]
    if heads:
        try:
            autograd.backward([h for h, _ in heads], [u for _, u in heads])
            hvp = [nds[i].grad.asnumpy() for i in idx]
        except MXNetError as e:
            # the gradient does not depend on any variable (a linear op): H u = 0
            if "require gradients" not in str(e):
                raise
    an = sum(float(np.sum(h * v)) for h, v in zip(hvp, vs))
    scale = sum(float(np.sum(np.abs(h * v))) for h, v in zip(hvp, vs))

    # numeric: directional derivative of <grad F, u> along v
    plus, minus = list(inputs), list(inputs)
    for i, v in zip(idx, vs):
        plus[i] = inputs[i] + EPS * v
        minus[i] = inputs[i] - EPS * v
    gp = _first_order(op, given, plus, ws, idx)
    gm = _first_order(op, given, minus, ws, idx)
    fd = sum(float(np.sum((a - b) * u)) for a, b, u in zip(gp, gm, us)) / (2 * EPS)
    assert abs(an - fd) <= 1e-5 + 1e-4 * max(scale, abs(fd)), \
        "%s: second order <H u, v> = %.10g but finite differences give %.10g" % (op.name, an, fd)


# ---------------------------------------------------------------------------------------
# hand-picked ops against independent NumPy formulas
# ---------------------------------------------------------------------------------------
def _softmax(x, axis=-1, t=1.0):
    e = np.exp((x - x.max(axis=axis, keepdims=True)) / t)
    return e / e.sum(axis=axis, keepdims=True)


def _conv2d(x, w, b, stride, pad):
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (h + 2 * pad[0] - kh) // stride[0] + 1
    ow = (wd + 2 * pad[1] - kw) // stride[1] + 1
    out = np.zeros((n, f, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


def _pool2d(x, k, s, kind):
    n, c, h, w = x.shape
    oh, ow = (h - k) // s + 1, (w - k) // s + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            p = x[:, :, i * s:i * s + k, j * s:j * s + k]
            out[:, :, i, j] = p.max(axis=(2, 3)) if kind == "max" else p.mean(axis=(2, 3))
    return out


_R = np.random.RandomState(3)
A23 = _R.uniform(-2, 2, (2, 3))
B23 = _R.uniform(-2, 2, (2, 3))
P23 = _R.uniform(0.2, 3, (2, 3))
A234 = _R.uniform(-2, 2, (2, 3, 4))
M34 = _R.uniform(-2, 2, (3, 4))
M45 = _R.uniform(-2, 2, (4, 5))
W5_12 = _R.uniform(-1, 1, (5, 12))
W5_4 = _R.uniform(-1, 1, (5, 4))
B5 = _R.uniform(-1, 1, (5,))
X1255 = _R.uniform(-1, 1, (1, 2, 5, 5))
W3233 = _R.uniform(-1, 1, (3, 2, 3, 3))
B3 = _R.uniform(-1, 1, (3,))
X2344 = _R.uniform(-1, 1, (2, 3, 4, 4))
G3 = _R.uniform(0.5, 1.5, (3,))
BE3 = _R.uniform(-0.5, 0.5, (3,))
MM3 = _R.uniform(-0.5, 0.5, (3,))
MV3 = _R.uniform(0.5, 1.5, (3,))
G4 = _R.uniform(0.5, 1.5, (4,))
BE4 = _R.uniform(-0.5, 0.5, (4,))
LBL = np.array([2.0, 0.0])
IDX = np.array([[1.0, 3.0], [0.0, 1.0]])
EMB = _R.uniform(-1, 1, (4, 3))


def _bn_ref(x, g, b, mean, var, eps=1e-3):
    sh = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(sh)) / np.sqrt(var.reshape(sh) + eps) * g.reshape(sh) + b.reshape(sh)


def _ln_ref(x, g, b, eps=1e-5):
    m = x.mean(axis=-1, keepdims=True)
    v = x.var(axis=-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def _bn_train(nd, x):
    with mx.autograd.train_mode():
        return nd.BatchNorm(nd_(x), nd_(G3), nd_(BE3), nd_(MM3), nd_(MV3), fix_gamma=False)


def nd_(a):
    return mx.nd.array(a, dtype=a.dtype)


# name -> (thunk returning the agjit result, independent NumPy expectation)
FORMULAS = {
    "exp": (lambda nd: nd.exp(nd_(A23)), np.exp(A23)),
    "log": (lambda nd: nd.log(nd_(P23)), np.log(P23)),
    "sqrt": (lambda nd: nd.sqrt(nd_(P23)), np.sqrt(P23)),
    "rsqrt": (lambda nd: nd.rsqrt(nd_(P23)), 1 / np.sqrt(P23)),
    "tanh": (lambda nd: nd.tanh(nd_(A23)), np.tanh(A23)),
    "sigmoid": (lambda nd: nd.sigmoid(nd_(A23)), 1 / (1 + np.exp(-A23))),
    "relu": (lambda nd: nd.relu(nd_(A23)), np.where(A23 > 0, A23, 0)),
    "softrelu": (lambda nd: nd.Activation(nd_(A23), act_type="softrelu"), np.log1p(np.exp(A23))),
    "leaky": (lambda nd: nd.LeakyReLU(nd_(A23), slope=0.1), np.where(A23 > 0, A23, 0.1 * A23)),
    "elu": (lambda nd: nd.LeakyReLU(nd_(A23), act_type="elu", slope=0.3),
            np.where(A23 > 0, A23, 0.3 * (np.exp(A23) - 1))),
    "reciprocal": (lambda nd: nd.reciprocal(nd_(P23)), 1 / P23),
    "clip": (lambda nd: nd.clip(nd_(A23), -0.5, 0.7), np.minimum(np.maximum(A23, -0.5), 0.7)),
    "where": (lambda nd: nd.where(nd_(A23 > 0), nd_(A23), nd_(B23)), np.where(A23 > 0, A23, B23)),
    "broadcast_add": (lambda nd: nd.broadcast_add(nd_(A234), nd_(M34[0:1].T[:3, :1])),
                      A234 + M34[0:1].T[:3, :1]),
    "broadcast_power": (lambda nd: nd_(P23) ** nd_(B23), P23 ** B23),
    "rpower_scalar": (lambda nd: 2.0 ** nd_(A23), 2.0 ** A23),
    "rdiv_scalar": (lambda nd: 3.0 / nd_(P23), 3.0 / P23),
    "maximum": (lambda nd: nd.maximum(nd_(A23), nd_(B23)), np.maximum(A23, B23)),
    "add_n": (lambda nd: nd.add_n(nd_(A23), nd_(B23), nd_(P23)), A23 + B23 + P23),
    "softmax": (lambda nd: nd.softmax(nd_(A234)), _softmax(A234)),
    "softmax_axis0": (lambda nd: nd.softmax(nd_(A234), axis=0), _softmax(A234, 0)),
    "softmax_temperature": (lambda nd: nd.softmax(nd_(A23), temperature=2.0), _softmax(A23, -1, 2.0)),
    "log_softmax": (lambda nd: nd.log_softmax(nd_(A234)), np.log(_softmax(A234))),
    "log_softmax_axis1": (lambda nd: nd.log_softmax(nd_(A234), axis=1), np.log(_softmax(A234, 1))),
    "sum_all": (lambda nd: nd.sum(nd_(A234)), np.sum(A234).reshape(1)),
    "sum_axis1_keep": (lambda nd: nd.sum(nd_(A234), axis=1, keepdims=True), A234.sum(axis=1, keepdims=True)),
    "sum_tuple_axis": (lambda nd: nd.sum(nd_(A234), axis=(0, 2)), A234.sum(axis=(0, 2))),
    "sum_exclude": (lambda nd: nd.sum(nd_(A234), axis=1, exclude=True), A234.sum(axis=(0, 2))),
    "mean": (lambda nd: nd.mean(nd_(A234), axis=-1), A234.mean(axis=-1)),
    "mean_all": (lambda nd: nd.mean(nd_(A234)), np.mean(A234).reshape(1)),
    "max": (lambda nd: nd.max(nd_(A234), axis=1), A234.max(axis=1)),
    "min": (lambda nd: nd.min(nd_(A234), axis=0, keepdims=True), A234.min(axis=0, keepdims=True)),
    "prod": (lambda nd: nd.prod(nd_(A23), axis=1), A23.prod(axis=1)),
    "norm": (lambda nd: nd.norm(nd_(A23)), np.sqrt(np.sum(A23 ** 2)).reshape(1)),
    "argmax": (lambda nd: nd.argmax(nd_(A23), axis=1), np.argmax(A23, axis=1).astype(np.float64)),
    "dot": (lambda nd: nd.dot(nd_(M34), nd_(M45)), M34 @ M45),
    "dot_transpose_a": (lambda nd: nd.dot(nd_(M34.T), nd_(M45), transpose_a=True), M34 @ M45),
    "dot_transpose_b": (lambda nd: nd.dot(nd_(M34), nd_(M45.T), transpose_b=True), M34 @ M45),
    "dot_3d": (lambda nd: nd.dot(nd_(A234), nd_(M45)), np.tensordot(A234, M45, axes=1)),
    "batch_dot": (lambda nd: nd.batch_dot(nd_(A234), nd_(np.stack([M45, M45 * 2]))),
                  np.stack([A234[0] @ M45, A234[1] @ (2 * M45)])),
    "FullyConnected": (lambda nd: nd.FullyConnected(nd_(A234), nd_(W5_12), nd_(B5), num_hidden=5),
                       A234.reshape(2, 12) @ W5_12.T + B5),
    "FullyConnected_no_bias": (lambda nd: nd.FullyConnected(nd_(A234), nd_(W5_12), num_hidden=5, no_bias=True),
                               A234.reshape(2, 12) @ W5_12.T),
    "FullyConnected_no_flatten": (lambda nd: nd.FullyConnected(nd_(A234), nd_(W5_4), nd_(B5), num_hidden=5,
                                                               flatten=False),
                                  A234 @ W5_4.T + B5),
    "Reshape_0_-1": (lambda nd: nd.reshape(nd_(A234), shape=(0, -1)), A234.reshape(2, 12)),
    "Reshape_-3_0": (lambda nd: nd.reshape(nd_(A234), shape=(-3, 0)), A234.reshape(6, 4)),
    "Reshape_-4": (lambda nd: nd.reshape(nd_(A234), shape=(-4, 1, 2, -2)), A234.reshape(1, 2, 3, 4)),
    "Reshape_-2": (lambda nd: nd.reshape(nd_(A234), shape=(-2,)), A234),
    "Flatten": (lambda nd: nd.flatten(nd_(A234)), A234.reshape(2, 12)),
    "transpose": (lambda nd: nd.transpose(nd_(A234)), A234.transpose()),
    "transpose_axes": (lambda nd: nd.transpose(nd_(A234), axes=(1, 0, 2)), A234.transpose(1, 0, 2)),
    "expand_dims": (lambda nd: nd.expand_dims(nd_(A23), axis=1), A23[:, None, :]),
    "squeeze": (lambda nd: nd.squeeze(nd_(A23.reshape(2, 1, 3)), axis=1), A23),
    "SwapAxis": (lambda nd: nd.swapaxes(nd_(A234), 0, 2), A234.swapaxes(0, 2)),
    "reverse": (lambda nd: nd.flip(nd_(A234), axis=1), A234[:, ::-1]),
    "slice": (lambda nd: nd.slice(nd_(A234), begin=(0, 1), end=(2, 3)), A234[0:2, 1:3]),
    "slice_axis": (lambda nd: nd.slice_axis(nd_(A234), axis=2, begin=1, end=3), A234[:, :, 1:3]),
    "Concat": (lambda nd: nd.concat(nd_(A23), nd_(B23), dim=1), np.concatenate([A23, B23], axis=1)),
    "Concat_dim0": (lambda nd: nd.concat(nd_(A23), nd_(B23), nd_(P23), dim=0),
                    np.concatenate([A23, B23, P23], axis=0)),
    "stack": (lambda nd: nd.stack(nd_(A23), nd_(B23), axis=1), np.stack([A23, B23], axis=1)),
    "split": (lambda nd: nd.split(nd_(A234), num_outputs=2, axis=2), np.split(A234, 2, axis=2)),
    "split_squeeze": (lambda nd: nd.split(nd_(A234), num_outputs=3, axis=1, squeeze_axis=True),
                      [A234[:, i] for i in range(3)]),
    "broadcast_to": (lambda nd: nd.broadcast_to(nd_(M34[:1]), shape=(2, 4)), np.broadcast_to(M34[:1], (2, 4))),
    "broadcast_axis": (lambda nd: nd.broadcast_axis(nd_(M34[:, :1]), axis=1, size=3),
                       np.broadcast_to(M34[:, :1], (3, 3))),
    "tile": (lambda nd: nd.tile(nd_(A23), reps=(2, 1)), np.tile(A23, (2, 1))),
    "repeat": (lambda nd: nd.repeat(nd_(A23), repeats=2, axis=1), np.repeat(A23, 2, axis=1)),
    "pick": (lambda nd: nd.pick(nd_(A23), nd_(LBL), axis=1), A23[[0, 1], [2, 0]]),
    "one_hot": (lambda nd: nd.one_hot(nd_(LBL), 3), np.eye(3, dtype=np.float32)[[2, 0]]),
    "take": (lambda nd: nd.take(nd_(EMB), nd_(IDX)), EMB[IDX.astype(int)]),
    "Embedding": (lambda nd: nd.Embedding(nd_(IDX), nd_(EMB), input_dim=4, output_dim=3),
                  EMB[IDX.astype(int)]),
    "Cast": (lambda nd: nd.cast(nd_(A23), dtype="float32"), A23.astype(np.float32)),
    "Convolution": (lambda nd: nd.Convolution(nd_(X1255), nd_(W3233), nd_(B3), kernel=(3, 3), num_filter=3,
                                              stride=(2, 2), pad=(1, 1)),
                    _conv2d(X1255, W3233, B3, (2, 2), (1, 1))),
    "Convolution_no_bias": (lambda nd: nd.Convolution(nd_(X1255), nd_(W3233), kernel=(3, 3), num_filter=3,
                                                      no_bias=True),
                            _conv2d(X1255, W3233, None, (1, 1), (0, 0))),
    "Pooling_max": (lambda nd: nd.Pooling(nd_(X2344), kernel=(2, 2), stride=(2, 2), pool_type="max"),
                    _pool2d(X2344, 2, 2, "max")),
    "Pooling_avg": (lambda nd: nd.Pooling(nd_(X2344), kernel=(2, 2), stride=(2, 2), pool_type="avg"),
                    _pool2d(X2344, 2, 2, "avg")),
    "Pooling_global": (lambda nd: nd.Pooling(nd_(X2344), kernel=(1, 1), global_pool=True, pool_type="avg"),
                       X2344.mean(axis=(2, 3), keepdims=True)),
    "BatchNorm_predict": (lambda nd: nd.BatchNorm(nd_(X2344), nd_(G3), nd_(BE3), nd_(MM3), nd_(MV3),
                                                  fix_gamma=False),
                          _bn_ref(X2344, G3, BE3, MM3, MV3)),
    "BatchNorm_fix_gamma": (lambda nd: nd.BatchNorm(nd_(X2344), nd_(G3), nd_(BE3), nd_(MM3), nd_(MV3)),
                            _bn_ref(X2344, np.ones(3), BE3, MM3, MV3)),
    "BatchNorm_train": (lambda nd: _bn_train(nd, X2344),
                        _bn_ref(X2344, G3, BE3, X2344.mean(axis=(0, 2, 3)), X2344.var(axis=(0, 2, 3)))),
    "LayerNorm": (lambda nd: nd.LayerNorm(nd_(A234), nd_(G4), nd_(BE4)), _ln_ref(A234, G4, BE4)),
    "Dropout_predict": (lambda nd: nd.Dropout(nd_(A23), p=0.5), A23),
    "SoftmaxOutput": (lambda nd: nd.SoftmaxOutput(nd_(A23), nd_(LBL)), _softmax(A23)),
    "softmax_cross_entropy": (lambda nd: nd.softmax_cross_entropy(nd_(A23), nd_(LBL)),
                              np.array([-np.log(_softmax(A23)[[0, 1], [2, 0]]).sum()])),
}


@pytest.mark.parametrize("case", sorted(FORMULAS))
def test_independent_formula(case):
    thunk, expected = FORMULAS[case]
    got = thunk(mx.nd)
    got = got if isinstance(got, list) else [got]
    expected = expected if isinstance(expected, list) else [expected]
    assert len(got) == len(expected), case
    for g, e in zip(got, expected):
        e = np.asarray(e)
        assert g.shape == e.shape, "%s: shape %s, expected %s" % (case, g.shape, e.shape)
        assert g.asnumpy().dtype == e.dtype, "%s: dtype %s, expected %s" % (case, g.asnumpy().dtype, e.dtype)
        np.testing.assert_allclose(g.asnumpy(), e, rtol=1e-9, atol=1e-12, err_msg=case)


def test_grouped_declaration_equals_the_flat_keywords():
    """OpDef's groups (registry note *opdef-groups*) and the flat keywords the op files use
    give the same op; a flat keyword overrides its group's field; unknown ones are refused."""
    from symbol.registry import (OpDef, SchemaSpec, InferenceSpec, KernelSpec, GradientSpec,
                                 LoweringSpec, SampleSpec)
    from symbol.lowering import Elementwise

    def fwd(attrs, ins, ctx):
        return [ins[0] * 2]

    def grad(F, attrs, ins, outs, og, ctx):
        return [og[0]]

    flat = OpDef("_probe", inputs=("x",), forward=fwd, gradient=grad, lowering="({0} * 2.0)",
                 grad_check=False, eager_infer=False, samples=list, hint="probe")
    grouped = OpDef("_probe", schema=SchemaSpec(inputs=("x",), hint="probe"),
                    inference=InferenceSpec(eager_infer=False), kernel=KernelSpec(forward=fwd),
                    grad=GradientSpec(gradient=grad, grad_check=False),
                    lower=LoweringSpec(lowering="({0} * 2.0)"), test=SampleSpec(samples=list))
    fields = ("inputs", "forward", "_gradient", "differentiable", "lowerable", "grad_check",
              "eager_infer", "eager_fast", "samples", "hint", "_n_inputs", "_nvis")
    for f in fields:
        assert getattr(flat, f) == getattr(grouped, f), f
    assert isinstance(grouped.lowering, Elementwise) and grouped.lowering.template == "({0} * 2.0)"
    assert flat.eager_fast is True            # derived from eager_infer=False, as before
    over = OpDef("_probe", grad=GradientSpec(gradient=grad), differentiable=False)
    assert not over.differentiable
    with pytest.raises(TypeError, match="unexpected keyword argument 'lowring'"):
        OpDef("_probe", lowring="{0}")
    with pytest.raises(TypeError, match="grad= must be a GradientSpec"):
        OpDef("_probe", grad=LoweringSpec())
