"""Neural-network operators: dot, batch_dot, FullyConnected, softmax family and losses,
Dropout, BatchNorm, LayerNorm, Embedding, Convolution, Pooling.

Every gradient is written with registered ops through ``F`` (registry note
*one-definition-per-op*).  Where a gradient needs something no public MXNet op does, a small
internal op named with a leading underscore is declared here with its own forward, gradient
and samples.

Note: bilinear-backward-ops
    ``dot``, ``Convolution`` and ``FullyConnected`` are bilinear, ``y = T(a, b)``.  Their input
    gradients are the two adjoints ``L_a(g, b)`` and ``L_b(a, g)``, registered as
    ``_backward_<op>_lhs/_rhs`` style helpers taking ``(ograd, lhs, rhs)`` (the argument they do
    not read is passed for its shape only and gets no gradient).  Because
    ``<h, L_a(g, b)> = <g, T(h, b)>``, the gradients of the helpers are again ``T`` and the
    other adjoint, so the set is closed under differentiation and any order works.

Note: conv-layouts
    Convolution's kernels work channel-first; with a channel-last ``layout`` (NWC, NHWC,
    NDHWC: data (N, *spatial, C), weight (num_filter, *kernel, C/num_group), as MXNet 1.9.1's
    CPU build runs them) the kernels of Convolution and its two backward helpers see every
    array of 3 or more dims with its last axis moved to position 1 and move it back in the
    results; shape inference converts shapes the same way; the bias gradient sums all axes
    but the last.  The backward helpers carry the layout.

Note: pooling-layouts
    Pooling's kernels work on channel-first data; with a channel-last ``layout`` (NWC, NHWC,
    NDHWC, which MXNet 1.9.1 runs on CPU) the kernels of Pooling and of its backward helpers
    see the arrays with the channel axis moved to position 1 and move it back in the results,
    and shape inference does the same on shapes.  The backward helpers carry the layout.

Note: batchnorm-moving-stats
    MXNet 1.9.1 updates ``moving_mean``/``moving_var`` in the *backward* pass, not in the
    training forward (FINDINGS §5).  BatchNorm's ``backward_hook`` does that update in place
    on the aux arrays, only when the forward ran in training mode without
    ``use_global_stats`` and the backward runs with ``train_mode=True``.  ``fix_gamma``
    treats gamma as 1 without writing into the user's array.

Note: batchnorm-modes
    The forward's mode and backward's ``train_mode`` may differ (``record(train_mode=False)``
    then ``backward()``, or ``backward(train_mode=False)`` after a training forward).  MXNet
    1.9.1 (observed, tests/test_trust_jit.py): the backward's mode picks the formula -- the
    batch-statistics one (mean of the head gradient and of ``g * xhat`` subtracted) or the
    moving-statistics one (``g * gamma / sqrt(moving_var + eps)``) -- and the batch formula
    normalises with the statistics the forward used, so after a predict-mode forward it
    uses the moving statistics.  Dropout's gradient is its forward mask whatever the
    backward's mode (identity after a predict-mode forward).
"""
import itertools

import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._lowering import KernelCall
from ._common import fmt, merge_shape, norm_axis, ctx_train, ctx_forward_train, grad_needed

_BOOL_F = Attr("bool", False)


def _rand(rng, shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape)


def _known(s):
    return s is not None and all(d > 0 for d in s)


def _prod(dims):
    p = 1
    for d in dims:
        p *= int(d)
    return p


def _merge(op, what, a, b):
    return merge_shape(op, what, a, b)


def _data_led_type(op, names):
    """MXNet's type rule of Convolution, SoftmaxOutput and the like: every input takes the
    data's dtype (checked where given), or the output's while the data's is unknown;
    nothing is inferred from the other inputs alone."""
    def infer(attrs, ins, outs=None):
        from ..registry import check_uniform
        t = ins[0] if ins[0] is not None else (outs or [None])[0]
        if t is None:
            return ins, [None]
        check_uniform(op, names, ins, expected=t)
        return [t] * len(ins), [t]
    return infer


def _shape_of(x):
    """The shape of an eager gradient operand, or None for a symbolic one."""
    s = getattr(x, "shape", None)
    return tuple(s) if isinstance(s, tuple) else None


def _like(F, y, x):
    """``y`` reshaped to ``x``'s shape; skipped when eager shapes already agree."""
    sy, sx = _shape_of(y), _shape_of(x)
    if sy is not None and sy == sx:
        return y
    return F._nn_reshape_like(y, x)


# ---------------------------------------------------------------------------------------
# internal shape helpers used by gradients
# ---------------------------------------------------------------------------------------
def _rl_infer(attrs, ins):
    d, l = ins
    if _known(d) and _known(l) and _prod(d) != _prod(l):
        raise MXNetError("_nn_reshape_like: cannot reshape %s (size %d) to %s (size %d)"
                         % (fmt(d), _prod(d), fmt(l), _prod(l)))
    return ins, [l]


register("_nn_reshape_like", inputs=("data", "like"), infer_shape=_rl_infer,
         infer_type=lambda attrs, ins: (ins, [ins[0]]),
         forward=lambda attrs, ins, ctx: [ins[0].reshape(ins[1].shape).copy()],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._nn_reshape_like(og[0], ins[0]), None],
         lowering="view", doc="Reshape ``data`` to the shape of ``like`` (sizes must agree).",
         samples=lambda rng: [Sample([_rand(rng, (2, 6)), _rand(rng, (3, 2, 2))]),
                              Sample([_rand(rng, (4,)), _rand(rng, (4, 1))])])


def _cv_shape(op, attrs, data, like):
    nd = len(like)
    ax = norm_axis(op, attrs["axis"], nd)
    if len(data) != 1:
        raise MXNetError("%s: expected a 1-D per-channel vector, got shape %s" % (op, fmt(data)))
    out = [1] * nd
    out[ax] = data[0]
    if like[ax] and data[0] and like[ax] != data[0]:
        raise MXNetError("%s: vector of length %d does not match axis %d of %s"
                         % (op, data[0], ax, fmt(like)))
    return tuple(out)


def _cv_infer(attrs, ins):
    d, l = ins
    if d is None or l is None:
        return ins, [None]
    return ins, [_cv_shape("_nn_channel_view", attrs, d, l)]


register("_nn_channel_view", inputs=("data", "like"), attrs={"axis": Attr("int", 1)},
         infer_shape=_cv_infer, infer_type=lambda attrs, ins: (ins, [ins[0]]),
         forward=lambda attrs, ins, ctx: [ins[0].reshape(
             _cv_shape("_nn_channel_view", attrs, ins[0].shape, ins[1].shape)).copy()],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._nn_reshape_like(og[0], ins[0]), None],
         lowerable=False,
         doc="View a per-channel vector (C,) as (1,..,C,..,1) broadcastable against ``like``.",
         samples=lambda rng: [Sample([_rand(rng, (3,)), _rand(rng, (2, 3, 2))], {"axis": 1}),
                              Sample([_rand(rng, (2,)), _rand(rng, (3, 2))], {"axis": -1})])


# ---------------------------------------------------------------------------------------
# dot / batch_dot
# ---------------------------------------------------------------------------------------
_DOT_ATTRS = {"transpose_a": _BOOL_F, "transpose_b": _BOOL_F,
              "forward_stype": Attr("str", None, choices=("default", "csr", "row_sparse"))}


def _dot_out_shape(op, a, b, ta, tb):
    if len(a) == 0 or len(b) == 0:
        raise MXNetError("%s: inputs must have at least 1 dimension, got %s and %s" % (op, fmt(a), fmt(b)))
    if len(a) == 1 and len(b) == 1:
        if ta or tb:
            raise MXNetError("%s: cannot transpose 1-D vectors (shapes %s, %s)" % (op, fmt(a), fmt(b)))
        if a[0] and b[0] and a[0] != b[0]:
            raise MXNetError("%s: shape mismatch %s X %s" % (op, fmt(a), fmt(b)))
        return (1,)
    # MXNet views a as a (rows, k) matrix and b as (k, cols); the kept dims form the output
    a_keep, ka = (tuple(a[1:]), a[0]) if ta else (tuple(a[:-1]), a[-1])
    b_keep, kb = (tuple(b[:-1]), b[-1]) if tb else (tuple(b[1:]), b[0])
    if len(a) == 1:
        ka = a[0]
    if len(b) == 1:
        kb = b[0]
    if ka and kb and ka != kb:
        raise MXNetError("%s: shape mismatch %s X %s (transpose_a=%s, transpose_b=%s): contracted "
                         "dimensions %d and %d differ" % (op, fmt(a), fmt(b), ta, tb, ka, kb))
    out = ()
    if len(a) > 1:
        out += a_keep
    if len(b) > 1:
        out += b_keep
    return out


def _dot_infer(attrs, ins):
    a, b = ins
    if a is None or b is None:
        return ins, [None]
    return ins, [_dot_out_shape("dot", a, b, attrs["transpose_a"], attrs["transpose_b"])]


def _mat(x, t, is_lhs):
    """The 2-D matrix MXNet's dot multiplies for operand ``x`` (after the transpose flag)."""
    # explicit sizes, no -1: a reshape with -1 is ambiguous for a zero-size operand
    if x.ndim == 1:            # a vector is a row (lhs) / column (rhs) whatever the flag
        return x.reshape(1, x.size) if is_lhs else x.reshape(x.size, 1)
    first, last = x.shape[0], x.shape[-1]
    rest_first = _prod(x.shape[1:])
    rest_last = _prod(x.shape[:-1])
    if is_lhs:
        return x.reshape(first, rest_first).T if t else x.reshape(rest_last, last)
    return x.reshape(rest_last, last).T if t else x.reshape(first, rest_first)



def _dot_np(a, b, ta, tb):
    if a.ndim == 2 and b.ndim == 2:        # the common case, without reshapes
        return np.dot(a.T if ta else a, b.T if tb else b)
    if a.ndim == 1 and b.ndim == 1:
        return np.asarray([np.dot(a, b)], dtype=a.dtype)
    out = _dot_out_shape("dot", a.shape, b.shape, ta, tb)
    return np.ascontiguousarray(np.dot(_mat(a, ta, True), _mat(b, tb, False)).reshape(out))


def _dot_fwd(attrs, ins, ctx):
    a, b = ins
    return [_dot_np(a, b, attrs["transpose_a"], attrs["transpose_b"])]


def _tflags(attrs):
    return {"transpose_a": attrs["transpose_a"], "transpose_b": attrs["transpose_b"]}


def _dot_grad(F, attrs, ins, outs, og, ctx):
    a, b = ins
    t = _tflags(attrs)
    return [F._backward_dot_lhs(og[0], a, b, **t) if grad_needed(ctx, 0) else None,
            F._backward_dot_rhs(og[0], a, b, **t) if grad_needed(ctx, 1) else None]


def _dot_samples(rng):
    r = lambda *s: _rand(rng, s)
    return [Sample([r(2, 3), r(3, 4)]),
            Sample([r(3, 2), r(3, 4)], {"transpose_a": True}),
            Sample([r(2, 3), r(4, 3)], {"transpose_b": True}),
            Sample([r(3, 2), r(4, 3)], {"transpose_a": True, "transpose_b": True}),
            Sample([r(4), r(4)]),
            Sample([r(3), r(3, 2)]),
            Sample([r(2, 3), r(3)]),
            Sample([r(2, 2, 3), r(3, 2, 2)]),
            Sample([r(3, 2, 2), r(2, 2, 3)], {"transpose_a": True, "transpose_b": True})]


def _lower_dot(ctx):
    """2-D x 2-D through BLAS (np.dot into the output buffer); other ranks run eagerly."""
    if ctx.in_ndim != [2, 2]:
        return None
    a, b = ctx.ins
    A = a + (".T" if ctx.attrs["transpose_a"] else "")
    B = b + (".T" if ctx.attrs["transpose_b"] else "")
    return ["np.dot(%s, %s, %s)" % (A, B, ctx.outs[0])]


register("dot", inputs=("lhs", "rhs"), attrs=dict(_DOT_ATTRS), infer_shape=_dot_infer,
         forward=_dot_fwd, gradient=_dot_grad, lowering=_lower_dot, samples=_dot_samples,
         eager_fast=True,     # np.dot / _dot_out_shape refuse every mismatched pair themselves
         doc="Dot product: contracts the last axis of lhs with the first axis of rhs "
             "(transpose flags view each operand as the transposed 2-D matrix, as MXNet).")


def _bwd_dot_lhs_np(g, a, b, ta, tb):
    if a.ndim == 1 and b.ndim == 1:
        return (g.reshape(()) * b).astype(a.dtype)
    B = _mat(b, tb, False)
    G = g.reshape(_mat(a, ta, True).shape[0], B.shape[1])
    A = np.dot(G, B.T)                       # gradient of the (transposed) lhs view
    if a.ndim == 1:
        return A.reshape(a.shape)
    if ta:
        return np.ascontiguousarray(A.T).reshape(a.shape)
    return A.reshape(a.shape)


def _bwd_dot_rhs_np(g, a, b, ta, tb):
    if a.ndim == 1 and b.ndim == 1:
        return (g.reshape(()) * a).astype(b.dtype)
    A = _mat(a, ta, True)
    G = g.reshape(A.shape[0], _mat(b, tb, False).shape[1])
    Bg = np.dot(A.T, G)
    if b.ndim == 1:
        return Bg.reshape(b.shape)
    if tb:
        return np.ascontiguousarray(Bg.T).reshape(b.shape)
    return Bg.reshape(b.shape)


def _bwd_dot_infer(which):
    def infer(attrs, ins):
        g, a, b = ins
        if a is not None and b is not None:
            g = _merge("_backward_dot", "ograd", g,
                       _dot_out_shape("dot", a, b, attrs["transpose_a"], attrs["transpose_b"]))
        return [g, a, b], [a if which == 0 else b]
    return infer


def _bwd_dot_type(which):
    def infer(attrs, ins):
        t = next((x for x in ins if x is not None), None)
        ins = [t if x is None else x for x in ins]
        return ins, [ins[1 + which]]
    return infer


def _bwd_dot_lhs_grad(F, attrs, ins, outs, og, ctx):
    g, a, b = ins
    t = _tflags(attrs)
    return [F.dot(og[0], b, **t) if grad_needed(ctx, 0) else None, None,
            F._backward_dot_rhs(g, og[0], b, **t) if grad_needed(ctx, 2) else None]


def _bwd_dot_rhs_grad(F, attrs, ins, outs, og, ctx):
    g, a, b = ins
    t = _tflags(attrs)
    return [F.dot(a, og[0], **t) if grad_needed(ctx, 0) else None,
            F._backward_dot_lhs(g, a, og[0], **t) if grad_needed(ctx, 1) else None, None]


def _bwd_dot_samples(rng):
    out = []
    for s in _dot_samples(rng):
        a, b = s.inputs
        ta, tb = s.attrs.get("transpose_a", False), s.attrs.get("transpose_b", False)
        g = _rand(rng, _dot_out_shape("dot", a.shape, b.shape, ta, tb))
        out.append(Sample([g, a, b], s.attrs))
    return out


def _lower_bwd_dot(which):
    """d(op(a) @ op(b)): lhs: G @ op(b).T (transposed back if transpose_a); rhs: op(a).T @ G
    (transposed back if transpose_b); 2-D only."""
    def lower(ctx):
        if ctx.in_ndim != [2, 2, 2]:
            return None
        g, a, b = ctx.ins
        ta, tb = ctx.attrs["transpose_a"], ctx.attrs["transpose_b"]
        out = ctx.outs[0]
        if which == 0:
            if not ta:
                return ["np.dot(%s, %s, %s)" % (g, b if tb else b + ".T", out)]
            return ["np.dot(%s, %s.T, %s)" % (b + ".T" if tb else b, g, out)]
        if not tb:
            return ["np.dot(%s, %s, %s)" % (a if ta else a + ".T", g, out)]
        return ["np.dot(%s.T, %s, %s)" % (g, a + ".T" if ta else a, out)]
    return lower


register("_backward_dot_lhs", inputs=("ograd", "lhs", "rhs"), attrs=dict(_DOT_ATTRS),
         infer_shape=_bwd_dot_infer(0), infer_type=_bwd_dot_type(0),
         forward=lambda attrs, ins, ctx: [_bwd_dot_lhs_np(ins[0], ins[1], ins[2], attrs["transpose_a"],
                                                           attrs["transpose_b"])],
         gradient=_bwd_dot_lhs_grad, lowering=_lower_bwd_dot(0), samples=_bwd_dot_samples,
         doc="Gradient of dot w.r.t. lhs (see note *bilinear-backward-ops*; lhs gives the shape).")
register("_backward_dot_rhs", inputs=("ograd", "lhs", "rhs"), attrs=dict(_DOT_ATTRS),
         infer_shape=_bwd_dot_infer(1), infer_type=_bwd_dot_type(1),
         forward=lambda attrs, ins, ctx: [_bwd_dot_rhs_np(ins[0], ins[1], ins[2], attrs["transpose_a"],
                                                           attrs["transpose_b"])],
         gradient=_bwd_dot_rhs_grad, lowering=_lower_bwd_dot(1), samples=_bwd_dot_samples,
         doc="Gradient of dot w.r.t. rhs (see note *bilinear-backward-ops*; rhs gives the shape).")


def _bdot_out(a, b, ta, tb):
    if len(a) < 3 or len(a) != len(b):
        raise MXNetError("batch_dot: inputs must both be N-D with N >= 3 and equal ranks, got %s "
                         "and %s" % (fmt(a), fmt(b)))
    batch = []
    for x, y in zip(a[:-2], b[:-2]):
        if x and y and x != y:
            raise MXNetError("batch_dot: batch dimensions must be equal, got %s X %s" % (fmt(a), fmt(b)))
        batch.append(x or y)
    m, ka = (a[-1], a[-2]) if ta else (a[-2], a[-1])
    kb, n = (b[-1], b[-2]) if tb else (b[-2], b[-1])
    if ka and kb and ka != kb:
        raise MXNetError("batch_dot: shape mismatch %s X %s (transpose_a=%s, transpose_b=%s)"
                         % (fmt(a), fmt(b), ta, tb))
    return tuple(batch) + (m, n)


def _bdot_infer(attrs, ins):
    """MXNet's BatchDotShape: nothing before both ranks, lhs's last and rhs's
    second-to-last dimensions are known; then the batch and contraction sizes must be
    equal as given (an unknown size does not match a known one)."""
    a, b = ins
    if a is None or b is None:
        return ins, [None]
    if _known(a) and _known(b):
        return ins, [_bdot_out(a, b, attrs["transpose_a"], attrs["transpose_b"])]
    ta, tb = attrs["transpose_a"], attrs["transpose_b"]
    if len(a) < 3 or len(a) != len(b):
        return ins, [_bdot_out(a, b, ta, tb)]     # raises its rank error
    if not a[-1] or not b[-2]:
        return ins, [None]
    n = len(a)
    lk, m = (a[n - 2], a[n - 1]) if ta else (a[n - 1], a[n - 2])
    rk, nn = (b[n - 1], b[n - 2]) if tb else (b[n - 2], b[n - 1])
    if tuple(a[:-2]) != tuple(b[:-2]) or lk != rk:
        raise MXNetError("batch_dot: shape mismatch %s X %s (transpose_a=%s, transpose_b=%s)"
                         % (fmt(a), fmt(b), ta, tb))
    return ins, [tuple(a[:-2]) + (m, nn)]


def _bdot_fwd(attrs, ins, ctx):
    a, b = ins
    if attrs["transpose_a"]:
        a = np.swapaxes(a, -1, -2)
    if attrs["transpose_b"]:
        b = np.swapaxes(b, -1, -2)
    return [np.ascontiguousarray(np.matmul(a, b))]


def _bdot_grad(F, attrs, ins, outs, og, ctx):
    a, b = ins
    g = og[0]
    bd = F.batch_dot
    ta, tb = attrs["transpose_a"], attrs["transpose_b"]
    na, nb = grad_needed(ctx, 0), grad_needed(ctx, 1)
    if ta and tb:
        return [bd(b, g, transpose_a=True, transpose_b=True) if na else None,
                bd(g, a, transpose_a=True, transpose_b=True) if nb else None]
    if tb:
        return [bd(g, b) if na else None, bd(g, a, transpose_a=True) if nb else None]
    if ta:
        return [bd(b, g, transpose_b=True) if na else None, bd(a, g) if nb else None]
    return [bd(g, b, transpose_b=True) if na else None, bd(a, g, transpose_a=True) if nb else None]


def _lower_batch_dot(ctx):
    if ctx.in_ndim != [3, 3]:
        return None
    a, b = ctx.ins
    out = ctx.outs[0]
    i = ctx.tmp("b")
    A = "%s[%s]%s" % (a, i, ".T" if ctx.attrs["transpose_a"] else "")
    B = "%s[%s]%s" % (b, i, ".T" if ctx.attrs["transpose_b"] else "")
    return ["for %s in range(%s.shape[0]):" % (i, out),
            "    np.dot(%s, %s, %s[%s])" % (A, B, out, i)]


register("batch_dot", inputs=("lhs", "rhs"), attrs=dict(_DOT_ATTRS), infer_shape=_bdot_infer,
         forward=_bdot_fwd, gradient=_bdot_grad, lowering=_lower_batch_dot,
         samples=lambda rng: [Sample([_rand(rng, (2, 2, 3)), _rand(rng, (2, 3, 4))]),
                              Sample([_rand(rng, (2, 3, 2)), _rand(rng, (2, 3, 4))], {"transpose_a": True}),
                              Sample([_rand(rng, (2, 2, 3)), _rand(rng, (2, 4, 3))], {"transpose_b": True}),
                              Sample([_rand(rng, (2, 3, 2)), _rand(rng, (2, 4, 3))],
                                     {"transpose_a": True, "transpose_b": True}),
                              Sample([_rand(rng, (2, 1, 2, 3)), _rand(rng, (2, 1, 3, 2))])],
         doc="Batched matrix product over the last two axes (leading axes are batch axes).")


# ---------------------------------------------------------------------------------------
# FullyConnected
# ---------------------------------------------------------------------------------------
def _fc_infer(attrs, ins, outs=None):
    op = "FullyConnected"
    nh = attrs["num_hidden"]
    if nh <= 0:
        raise MXNetError("%s: num_hidden must be positive, got %d" % (op, nh))
    d = ins[0]
    w = ins[1]
    has_bias = not attrs["no_bias"]
    if has_bias and len(ins) < 3:
        raise MXNetError("%s: bias is required unless no_bias=True" % op)
    if d is None:   # MXNet's FullyConnectedShape infers nothing before the data shape is known
        return list(ins), [None]
    out = None
    if d is not None:
        if len(d) == 0:
            raise MXNetError("%s: data must have at least 1 dimension" % op)
        if attrs["flatten"]:
            in_units = _prod(d[1:]) if all(d[1:]) else 0
            out = (d[0], nh)
        else:
            in_units = d[-1]
            out = tuple(d[:-1]) + (nh,)
        try:
            w = _merge(op, "weight", w, (nh, in_units))
        except MXNetError:
            raise MXNetError("%s: weight shape %s is inconsistent with data %s and num_hidden=%d "
                             "(expected %s)" % (op, fmt(w), fmt(d), nh, fmt((nh, in_units)))) from None
    elif w is not None:
        w = _merge(op, "weight", w, (nh, 0))
    res = [d, w]
    if has_bias:
        try:
            res.append(_merge(op, "bias", ins[2], (nh,)))
        except MXNetError:
            raise MXNetError("%s: bias shape %s does not match num_hidden=%d"
                             % (op, fmt(ins[2]), nh)) from None
    elif len(ins) > 2:
        res.append(ins[2])
    o = outs[0] if outs else None
    if o is not None and len(o) == len(out):
        # the batch size flows back from the output (FullyConnectedShape)
        out = _merge(op, "output", out, o)
        res[0] = _merge(op, "data", d, (o[0],) + tuple(d[1:]))
    return res, [out]


def _fc_fwd(attrs, ins, ctx):
    x, w = ins[0], ins[1]
    if attrs["flatten"]:
        x2 = x.reshape(x.shape[0], _prod(x.shape[1:]))     # no -1: x may be zero-size
        y = np.dot(x2, w.T)
    else:
        y = np.dot(x.reshape(_prod(x.shape[:-1]), x.shape[-1]), w.T).reshape(x.shape[:-1] + (w.shape[0],))
    if not attrs["no_bias"]:
        y = y + ins[2]
    return [np.ascontiguousarray(y.astype(x.dtype, copy=False))]


def _fc_grad(F, attrs, ins, outs, og, ctx):
    x, w = ins[0], ins[1]
    g = og[0]
    gx = gw = None
    if attrs["flatten"]:
        if grad_needed(ctx, 0):
            gx = _like(F, F.dot(g, w), x)
        if grad_needed(ctx, 1):
            gw = _like(F, F.dot(g, x, transpose_a=True), w)
    else:
        if grad_needed(ctx, 0):
            gx = F.dot(g, w)
        if grad_needed(ctx, 1):
            gw = F._backward_dot_rhs(g, x, w, transpose_b=True)
    res = [gx, gw]
    if len(ins) > 2:
        res.append(F._reduce_sum_like(g, ins[2]) if grad_needed(ctx, 2) else None)
    return res


def _fc_samples(rng):
    r = lambda *s: _rand(rng, s)
    return [Sample([r(2, 3), r(4, 3), r(4)], {"num_hidden": 4}),
            Sample([r(2, 3), r(4, 3)], {"num_hidden": 4, "no_bias": True}),
            Sample([r(2, 2, 3), r(4, 6), r(4)], {"num_hidden": 4}),
            Sample([r(2, 2, 3), r(4, 3), r(4)], {"num_hidden": 4, "flatten": False}),
            Sample([r(3, 2), r(2, 2)], {"num_hidden": 2, "no_bias": True, "flatten": False})]


def _lower_fc(ctx):
    """data (flattened to 2-D) @ weight.T through BLAS, then the bias row added in place."""
    a = ctx.attrs
    nd = ctx.in_ndim[0]
    if nd < 2 or ctx.in_ndim[1] != 2:
        return None
    d, w, out = ctx.ins[0], ctx.ins[1], ctx.outs[0]
    x2, o2 = ctx.tmp("x"), ctx.tmp("o")
    if a["flatten"]:
        # explicit sizes (a -1 is ambiguous for a zero-size batch)
        lines = ["%s = %s.reshape((%s.shape[0], %s.shape[1]))" % (x2, d, d, w), "%s = %s" % (o2, out)]
    else:
        lines = ["%s = %s.reshape((%s.size // max(%s.shape[%d], 1), %s.shape[%d]))"
                 % (x2, d, d, d, nd - 1, d, nd - 1),
                 "%s = %s.reshape((%s.size // max(%s.shape[%d], 1), %s.shape[%d]))"
                 % (o2, out, out, out, nd - 1, out, nd - 1)]
    lines.append("np.dot(%s, %s.T, %s)" % (x2, w, o2))
    if not a["no_bias"] and len(ctx.ins) > 2:
        r, c = ctx.tmp("i"), ctx.tmp("i")
        lines += ["for %s in range(%s.shape[0]):" % (r, o2),
                  "    for %s in range(%s.shape[1]):" % (c, o2),
                  "        %s[%s, %s] += %s[%s]" % (o2, r, c, ctx.ins[2], c)]
    return lines


register("FullyConnected", inputs=("data", "weight", "bias"),
         attrs={"num_hidden": Attr("int"), "no_bias": _BOOL_F, "flatten": Attr("bool", True)},
         infer_shape=_fc_infer, forward=_fc_fwd, gradient=_fc_grad, lowering=_lower_fc,
         optional_inputs=("bias",), samples=_fc_samples,
         doc="Fully connected layer: ``data @ weight.T + bias``; weight is (num_hidden, in_units) "
             "where in_units is the product of data.shape[1:] (flatten=True) or data.shape[-1].")


# ---------------------------------------------------------------------------------------
# softmax / log_softmax
# ---------------------------------------------------------------------------------------
_SM_ATTRS = {"axis": Attr("int", -1), "temperature": Attr("float_or_none", None),
             "dtype": Attr("dtype", None), "use_length": Attr("bool", False)}


def _sm_infer(name):
    def infer(attrs, ins):
        if attrs["use_length"]:
            raise MXNetError("%s: use_length=True is not supported" % name)
        d = ins[0]
        if d is not None:
            norm_axis(name, attrs["axis"], len(d))
        return ins, [d]
    return infer


def _sm_type(attrs, ins):
    t = ins[0]
    return ins, [attrs["dtype"] if attrs["dtype"] is not None else t]


def _softmax_np(x, axis, temp, log):
    z = x / temp if temp is not None and temp != 1.0 else x
    z = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(z)
    s = np.sum(e, axis=axis, keepdims=True)
    return z - np.log(s) if log else e / s


def _sm_fwd(log):
    def forward(attrs, ins, ctx):
        x = ins[0]
        y = _softmax_np(x, attrs["axis"], attrs["temperature"], log)
        dt = attrs["dtype"] if attrs["dtype"] is not None else x.dtype
        return [y.astype(dt, copy=False)]
    return forward


def _temp_scale(F, attrs, gx):
    t = attrs["temperature"]
    if t is not None and t != 1.0:
        gx = F._div_scalar(gx, scalar=t)
    return gx


def _softmax_grad(F, attrs, ins, outs, og, ctx):
    y, g = outs[0], og[0]
    s = F.sum(F.elemwise_mul(g, y), axis=attrs["axis"], keepdims=True)
    gx = F.elemwise_mul(F.broadcast_sub(g, s), y)
    gx = _temp_scale(F, attrs, gx)
    if attrs["dtype"] is not None:
        gx = F._cast_like(gx, ins[0])
    return [gx]


def _log_softmax_grad(F, attrs, ins, outs, og, ctx):
    y, g = outs[0], og[0]
    s = F.sum(g, axis=attrs["axis"], keepdims=True)
    gx = F.elemwise_sub(g, F.broadcast_mul(F.exp(y), s))
    gx = _temp_scale(F, attrs, gx)
    if attrs["dtype"] is not None:
        gx = F._cast_like(gx, ins[0])
    return [gx]


def _sm_samples(rng):
    return [Sample([_rand(rng, (2, 4))]), Sample([_rand(rng, (3, 2))], {"axis": 0}),
            Sample([_rand(rng, (2, 3))], {"temperature": 2.0}),
            Sample([_rand(rng, (2, 3, 2))], {"axis": 1, "temperature": 0.5})]


def _lower_softmax(log):
    """Row kernels over the last axis (the data viewed as (rows, n))."""
    def lower(ctx):
        a = ctx.attrs
        nd = ctx.in_ndim[0]
        if nd < 1 or a["axis"] not in (-1, nd - 1) or a["use_length"] or \
                (a["dtype"] is not None and a["dtype"] != ctx.dtype):
            return None
        x, out = ctx.ins[0], ctx.outs[0]
        t = a["temperature"]
        inv = "1.0" if t is None else repr(1.0 / float(t))
        c = ctx.tmp("c")
        return ["%s = %s.shape[%d]" % (c, x, nd - 1),
                "%s(%s.reshape((-1, %s)), %s.reshape((-1, %s)), %s)"
                % (ctx.fn("log_softmax_rows" if log else "softmax_rows"), x, c, out, c, inv)]
    return lower


register("softmax", inputs=("data",), attrs=dict(_SM_ATTRS), infer_shape=_sm_infer("softmax"),
         infer_type=_sm_type, forward=_sm_fwd(False), gradient=_softmax_grad, lowering=KernelCall(_lower_softmax(False), uses=("softmax_rows",)),
         samples=_sm_samples, doc="softmax(data / temperature) along ``axis`` (default -1).")
register("log_softmax", inputs=("data",), attrs=dict(_SM_ATTRS), infer_shape=_sm_infer("log_softmax"),
         infer_type=_sm_type, forward=_sm_fwd(True), gradient=_log_softmax_grad, lowering=KernelCall(_lower_softmax(True), uses=("log_softmax_rows",)),
         samples=_sm_samples, doc="log(softmax(data / temperature)) along ``axis`` (default -1).")


# ---------------------------------------------------------------------------------------
# SoftmaxOutput / softmax_cross_entropy
# ---------------------------------------------------------------------------------------
_SO_ATTRS = {"grad_scale": Attr("float", 1.0), "ignore_label": Attr("float", -1.0),
             "multi_output": _BOOL_F, "use_ignore": _BOOL_F, "preserve_shape": _BOOL_F,
             "normalization": Attr("str", "null", choices=("null", "batch", "valid")),
             "out_grad": _BOOL_F, "smooth_alpha": Attr("float", 0.0)}


def _so_label_shapes(attrs, d):
    """Label shapes SoftmaxOutput accepts for data shape ``d``; the first is the inferred one."""
    if attrs["multi_output"]:
        return [(d[0], _prod(d[2:])), (d[0],) + tuple(d[2:])]
    if attrs["preserve_shape"]:
        return [tuple(d[:-1]), tuple(d)]
    return [(d[0],), tuple(d)]


def _so_infer(attrs, ins):
    d, l = ins
    if d is None:
        return ins, [None]
    if len(d) < 2 and not attrs["preserve_shape"]:
        raise MXNetError("SoftmaxOutput: data must have at least 2 dimensions, got %s" % fmt(d))
    if attrs["multi_output"] and len(d) < 2:
        raise MXNetError("SoftmaxOutput: multi_output needs data of at least 2 dimensions")
    cands = _so_label_shapes(attrs, d)
    if l is None:
        l = cands[0]
    else:
        for c in cands:
            try:
                l = _merge("SoftmaxOutput", "label", l, c)
                break
            except MXNetError:
                continue
        else:
            raise MXNetError("SoftmaxOutput: label shape %s does not match data shape %s "
                             "(expected %s)" % (fmt(l), fmt(d), fmt(cands[0])))
    return [d, l], [d]


def _so_view(attrs, x):
    """Data as (rows, classes, inner) with softmax over axis 1."""
    if attrs["multi_output"]:
        return x.reshape(x.shape[0], x.shape[1], -1)
    if attrs["preserve_shape"]:
        return x.reshape(-1, x.shape[-1], 1)
    return x.reshape(x.shape[0], -1, 1)


def _so_fwd(attrs, ins, ctx):
    x = ins[0]
    y = _softmax_np(_so_view(attrs, x), 1, None, False)
    return [y.reshape(x.shape).astype(x.dtype, copy=False)]


def _so_target_np(attrs, data, label):
    """Target distribution (smoothed one-hot, or the label itself for probability labels)
    and the per-element gradient scale (grad_scale / normaliser, zero where ignored)."""
    v = _so_view(attrs, data)
    n, k, inner = v.shape
    if label.size == data.size and label.shape == data.shape and not attrs["multi_output"]:
        tgt = label.astype(data.dtype).reshape(v.shape)
        scale = np.full(v.shape, attrs["grad_scale"], dtype=data.dtype)
        if attrs["normalization"] == "batch":
            scale /= data.shape[0]
        return tgt.reshape(data.shape), scale.reshape(data.shape)
    lab = label.reshape(n, inner)
    li = lab.astype(np.int64)
    alpha = attrs["smooth_alpha"]
    onehot = (li[:, None, :] == np.arange(k)[None, :, None])
    if alpha:
        tgt = np.where(onehot, 1.0 - alpha, alpha / max(k - 1, 1))
    else:
        tgt = onehot.astype(np.float64)
    keep = np.ones((n, 1, inner))
    if attrs["use_ignore"]:
        keep = (li != int(attrs["ignore_label"]))[:, None, :].astype(np.float64)
    norm = attrs["normalization"]
    # multi_output: MXNet divides 'null' by the spatial size d and 'batch' by N*d
    spatial = float(inner) if attrs["multi_output"] else 1.0
    if norm == "batch":
        cnt = float(n) * spatial
    elif norm == "valid":
        if attrs["use_ignore"]:
            cnt = float(max(int(keep.sum()), 1))
        else:
            cnt = float(max(int((li != int(attrs["ignore_label"])).sum()), 1))
    else:
        cnt = spatial
    scale = np.broadcast_to(keep * (attrs["grad_scale"] / cnt), v.shape)
    return (tgt.astype(data.dtype).reshape(data.shape),
            np.ascontiguousarray(scale, dtype=data.dtype).reshape(data.shape))


def _so_grad(F, attrs, ins, outs, og, ctx):
    x, label = ins
    y = outs[0]
    kw = {k: attrs[k] for k in _SO_ATTRS if attrs[k] != _SO_ATTRS[k].default}
    tgt = F._softmax_output_target(y, label, **kw)
    scale = F._softmax_output_scale(y, label, **kw)
    gx = F.elemwise_mul(F.elemwise_sub(y, tgt), scale)
    if attrs["out_grad"]:
        gx = F.elemwise_mul(gx, og[0])
    return [gx, F.zeros_like(label)]


def _so_samples(rng):
    return [Sample([_rand(rng, (3, 4)), np.array([1.0, 0.0, 3.0])]),
            Sample([_rand(rng, (3, 4)), np.array([1.0, 2.0, 3.0])],
                   {"normalization": "batch", "grad_scale": 2.0}),
            Sample([_rand(rng, (2, 3, 2)), np.array([[0.0, 2.0], [1.0, 1.0]])], {"multi_output": True}),
            Sample([_rand(rng, (2, 2, 3)), np.array([[0.0, 2.0], [1.0, -1.0]])],
                   {"preserve_shape": True, "use_ignore": True, "normalization": "valid"}),
            Sample([_rand(rng, (3, 4)), np.array([1.0, 0.0, 3.0])], {"smooth_alpha": 0.1})]


def _lower_softmax_output(ctx):
    """Forward of SoftmaxOutput on (batch, classes) data: a softmax row kernel."""
    a = ctx.attrs
    if ctx.in_ndim[0] != 2 or a["multi_output"] or a["preserve_shape"]:
        return None
    return ["%s(%s, %s, 1.0)" % (ctx.fn("softmax_rows"), ctx.ins[0], ctx.outs[0])]


register("SoftmaxOutput", inputs=("data", "label"), attrs=dict(_SO_ATTRS), infer_shape=_so_infer,
         infer_type=_data_led_type("SoftmaxOutput", ["data", "label"]),
         forward=_so_fwd, gradient=_so_grad, aliases=("Softmax",), is_loss=True,
         lowering=KernelCall(_lower_softmax_output, uses=("softmax_rows",)), grad_check=False, second_order=False, samples=_so_samples,
         doc="Softmax forward; backward is (softmax - one_hot(label)) * grad_scale / normaliser, "
             "ignoring the head gradient (unless out_grad=True).  The label gets a zero gradient.")


def _so_helper_infer(attrs, ins):
    d, l = ins
    return ins, [d]


def _lower_so_target(ctx):
    """One-hot targets of integer class labels for (batch, classes) data (no smoothing,
    ignore label or probability labels: those run eagerly)."""
    a = ctx.attrs
    ds, ls = ctx.in_shapes
    if ctx.in_ndim != [2, 1] or a["smooth_alpha"] or a["multi_output"] or \
            a["preserve_shape"] or a["use_ignore"] or ds[0] * ds[1] == ls[0]:
        return None
    lab, out = ctx.ins[1], ctx.outs[0]
    i, j, k = ctx.tmp("i"), ctx.tmp("i"), ctx.tmp("k")
    return ["for %s in range(%s.shape[0]):" % (i, out),
            "    %s = int(%s[%s])" % (k, lab, i),
            "    for %s in range(%s.shape[1]):" % (j, out),
            "        %s[%s, %s] = %s if %s == %s else %s" % (out, i, j, ctx.const(1.0), j, k,
                                                        ctx.const(0.0))]


def _so_helper(name, idx, doc, lowering=None):
    register(name, inputs=("data", "label"), attrs=dict(_SO_ATTRS), infer_shape=_so_helper_infer,
             forward=lambda attrs, ins, ctx: [_so_target_np(attrs, ins[0], ins[1])[idx]],
             gradient=lambda F, attrs, ins, outs, og, ctx: [None, None],
             lowering=lowering, lowerable=lowering is not None, grad_check=False, doc=doc,
             samples=_so_samples)


_so_helper("_softmax_output_target", 0,
           "SoftmaxOutput's target distribution (smoothed one-hot of label) in data's shape; a "
           "constant of the label, so it passes no gradient.", lowering=_lower_so_target)
_so_helper("_softmax_output_scale", 1,
           "SoftmaxOutput's per-element gradient scale (grad_scale / normaliser, 0 where the "
           "label is ignored) in data's shape; passes no gradient.")


def _sce_infer(attrs, ins):
    d, l = ins
    if d is not None:
        if len(d) != 2:
            raise MXNetError("softmax_cross_entropy: data must be 2-D (batch, classes), got %s" % fmt(d))
        try:
            l = _merge("softmax_cross_entropy", "label", l, (d[0],))
        except MXNetError:
            raise MXNetError("softmax_cross_entropy: label shape %s must be (%d,) for data %s"
                             % (fmt(l), d[0], fmt(d))) from None
    return [d, l], [(1,)]


def _sce_fwd(attrs, ins, ctx):
    x, label = ins
    lp = _softmax_np(x, -1, None, True)
    li = np.clip(label.astype(np.int64), 0, x.shape[1] - 1)
    return [np.asarray([-lp[np.arange(x.shape[0]), li].sum()], dtype=x.dtype)]


def _sce_grad(F, attrs, ins, outs, og, ctx):
    x, label = ins
    tgt = F._softmax_output_target(x, label)
    return [F.broadcast_mul(F.elemwise_sub(F.softmax(x), tgt), og[0]), None]


def _lower_sce(ctx):
    if ctx.in_ndim != [2, 1]:
        return None
    return ["%s(%s, %s, %s)" % (ctx.fn("softmax_cross_entropy_rows"), ctx.ins[0], ctx.ins[1],
                                ctx.outs[0])]


register("softmax_cross_entropy", inputs=("data", "label"), infer_shape=_sce_infer,
         forward=_sce_fwd, gradient=_sce_grad,
         lowering=KernelCall(_lower_sce, uses=("softmax_cross_entropy_rows",)),
         samples=lambda rng: [Sample([_rand(rng, (3, 4)), np.array([1.0, 0.0, 3.0])])],
         doc="Softmax cross-entropy summed over the batch; output shape (1,).")


# ---------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------
def _dropout_infer(attrs, ins):
    p = attrs["p"]
    if not 0.0 <= p <= 1.0:
        raise MXNetError("Dropout: p must be in [0, 1], got %r" % p)
    d = ins[0]
    if d is not None:
        for a in attrs["axes"]:
            norm_axis("Dropout", a, len(d), "axes")
    return ins, [d, d]


def _dropout_fwd(attrs, ins, ctx):
    x = ins[0]
    p = attrs["p"]
    active = attrs["mode"] == "always" or ctx_train(ctx)
    if not active or p == 0.0:
        return [x.copy(), np.ones_like(x)]
    shape = list(x.shape)
    for a in attrs["axes"]:
        shape[a % x.ndim] = 1
    keep = ctx.rng.random(tuple(shape)) < (1.0 - p)
    scale = 0.0 if p >= 1.0 else 1.0 / (1.0 - p)
    mask = np.ascontiguousarray(np.broadcast_to((keep * scale).astype(x.dtype), x.shape))
    return [x * mask, mask]


register("Dropout", inputs=("data",),
         attrs={"p": Attr("float", 0.5), "mode": Attr("str", "training", choices=("training", "always")),
                "axes": Attr("shape", ()), "cudnn_off": _BOOL_F},
         infer_shape=_dropout_infer, forward=_dropout_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.elemwise_mul(og[0], outs[1])],
         num_outputs=2, num_visible=1, output_names=("output", "mask"),
         train_dependent=True, needs_rng=True, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (3, 4))], {"p": 0.5}),
                              Sample([_rand(rng, (2, 3, 2))], {"p": 0.3, "axes": (1,)}),
                              Sample([_rand(rng, (4,))], {"p": 0.0, "mode": "always"})],
         doc="Dropout: in training (or mode='always') keeps each element with probability 1-p and "
             "scales it by 1/(1-p); otherwise the identity.  Output 1 is the scaled mask.")


# ---------------------------------------------------------------------------------------
# BatchNorm / LayerNorm
# ---------------------------------------------------------------------------------------
def _bn_infer(attrs, ins):
    d = ins[0]
    if d is None:
        # BatchNormShape infers nothing before the data shape is known; agjit still refuses
        # channel parameters that disagree with each other (MXNet accepts them silently)
        c = None
        for s in ins[1:]:
            if s is not None:
                c = _merge("BatchNorm", "channel parameters (gamma, beta, moving_mean, "
                           "moving_var)", c, s)
        return list(ins), [None, None, None]
    ax = norm_axis("BatchNorm", attrs["axis"], len(d))
    c = (d[ax],)
    names = ("gamma", "beta", "moving_mean", "moving_var")
    res = [d]
    for n, s in zip(names, ins[1:]):
        try:
            res.append(_merge("BatchNorm", n, s, c))
        except MXNetError:
            raise MXNetError("BatchNorm: %s shape %s must be %s (data %s, axis=%d)"
                             % (n, fmt(s), fmt(c), fmt(d), attrs["axis"])) from None
    return res, [d, c, c]


def _bn_training(attrs, ctx):
    return ctx_train(ctx) and not attrs["use_global_stats"]


def _bcast(v, ndim, ax):
    shape = [1] * ndim
    shape[ax] = v.shape[0]
    return v.reshape(shape)


def _bn_type(attrs, ins):
    """MXNet's BatchNorm type rule: gamma, beta and the moving statistics have the parameter
    dtype -- float32 for float16 data, else the data dtype (Check failed: ... This layer
    requires uniform type)."""
    from ..registry import check_uniform
    names = ["data", "gamma", "beta", "moving_mean", "moving_var"]
    d = ins[0]
    if d is None:
        pt = check_uniform("BatchNorm", names, ins, first=1)
        ins = list(ins)
        return ins, [None, pt, pt]
    dn = np.dtype(d).name
    pt = "float32" if dn == "float16" else dn
    check_uniform("BatchNorm", names, ins, expected=pt, first=1)
    return [dn] + [pt] * (len(ins) - 1), [dn, dn, dn]


def _bn_fwd(attrs, ins, ctx):
    """Data seen as (pre, C, post): statistics from two contiguous-axis reductions (float32
    for float16 data), then one centred copy scaled and shifted in place."""
    x, gamma, beta, mm, mv = ins
    ax = attrs["axis"] % x.ndim
    dt = x.dtype
    ct = np.result_type(dt, gamma.dtype)
    if ct.kind != "f":
        ct = np.dtype(np.float64)
    C = x.shape[ax]
    x3 = x.reshape(_prod(x.shape[:ax]), C, _prod(x.shape[ax + 1:]))
    m = x3.shape[0] * x3.shape[2]
    if _bn_training(attrs, ctx):
        mean = x3.sum(axis=2, dtype=ct).sum(axis=0) / max(m, 1)
        xc = np.subtract(x3, mean[None, :, None], dtype=ct)
        var = np.einsum("pcq,pcq->c", xc, xc) / max(m, 1)
    else:
        mean, var = np.asarray(mm, dtype=ct), np.asarray(mv, dtype=ct)
        xc = np.subtract(x3, mean[None, :, None], dtype=ct)
    g = np.ones(C, dtype=ct) if attrs["fix_gamma"] else np.asarray(gamma, dtype=ct)
    xc *= (g / np.sqrt(var + attrs["eps"]))[None, :, None]
    xc += np.asarray(beta, dtype=ct)[None, :, None]
    return [xc.reshape(x.shape).astype(dt, copy=False), np.array(mean, dtype=dt), np.array(var, dtype=dt)]


def _dtype_of(F, v, like):
    """``v`` cast to the dtype of ``like`` where both are known and differ (BatchNorm's
    float32 parameters of float16 data; every other op refuses mixed dtypes)."""
    dv, dl = getattr(v, "dtype", None), getattr(like, "dtype", None)
    if dv is not None and dl is not None and dv != dl:
        return F._cast_like(v, like)
    return v


def _bn_grad(F, attrs, ins, outs, og, ctx):
    """Training backward (``ctx.is_train``, i.e. backward's train_mode): the batch-statistics
    formula, over the statistics the forward normalised with -- the batch's after a training
    forward, the moving ones after a predict-mode forward (MXNet 1.9.1 reads the forward's
    saved mean/variance; note *batchnorm-modes*).  Predict backward: the moving-statistics
    formula whatever the forward did."""
    x, gamma, beta, mm, mv = ins
    g = og[0]
    ax, eps = attrs["axis"], attrs["eps"]
    red = {"axis": ax, "exclude": True}
    if _bn_training(attrs, ctx) and ctx_forward_train(ctx):
        mu = F.mean(x, keepdims=True, **red)
        xc = F.broadcast_sub(x, mu)
        var = F.mean(F.square(xc), keepdims=True, **red)
        rstd = F.rsqrt(F._plus_scalar(var, scalar=eps))
        xhat = F.broadcast_mul(xc, rstd)
    else:
        xc = F.broadcast_sub(x, F._nn_channel_view(_dtype_of(F, mm, x), x, axis=ax))
        rstd = F._nn_channel_view(F.rsqrt(F._plus_scalar(_dtype_of(F, mv, x), scalar=eps)), x, axis=ax)
        xhat = F.broadcast_mul(xc, rstd)
    gbeta = F.sum(g, **red)
    if attrs["fix_gamma"]:
        ggamma = F.zeros_like(gamma)
        scale = rstd
    else:
        ggamma = F.sum(F.elemwise_mul(g, xhat), **red)
        scale = F.broadcast_mul(rstd, F._nn_channel_view(_dtype_of(F, gamma, x), x, axis=ax))
    if _bn_training(attrs, ctx):
        gm = F.mean(g, keepdims=True, **red)
        gxm = F.mean(F.elemwise_mul(g, xhat), keepdims=True, **red)
        inner = F.elemwise_sub(F.broadcast_sub(g, gm), F.broadcast_mul(xhat, gxm))
        gx = F.broadcast_mul(inner, scale)
    else:
        gx = F.broadcast_mul(g, scale)
    return [gx, ggamma, gbeta, None, None]


def _bn_hook(attrs, ins, outs, was_train):
    """Update the moving statistics (note *batchnorm-moving-stats*)."""
    if not was_train or attrs["use_global_stats"]:
        return
    m = attrs["momentum"]
    mm, mv = ins[3], ins[4]
    mm[...] = mm * m + outs[1].astype(mm.dtype) * (1.0 - m)
    mv[...] = mv * m + outs[2].astype(mv.dtype) * (1.0 - m)


def _bn_samples(rng):
    def ins(shape, c):
        return [_rand(rng, shape), _rand(rng, (c,), 0.5, 1.5), _rand(rng, (c,)),
                _rand(rng, (c,), -0.5, 0.5), _rand(rng, (c,), 0.5, 1.5)]
    return [Sample(ins((4, 3), 3), {"fix_gamma": False}),
            Sample(ins((2, 3, 2, 2), 3), {}),
            Sample(ins((2, 2, 3), 3), {"fix_gamma": False, "axis": -1, "eps": 1e-4}),
            Sample(ins((3, 2), 2), {"fix_gamma": False, "use_global_stats": True}),
            Sample(ins((3, 2), 2), {"fix_gamma": False, "output_mean_var": True, "momentum": 0.5})]


register("BatchNorm", inputs=("data", "gamma", "beta", "moving_mean", "moving_var"),
         attrs={"eps": Attr("float", 1e-3), "momentum": Attr("float", 0.9),
                "fix_gamma": Attr("bool", True), "use_global_stats": _BOOL_F,
                "output_mean_var": _BOOL_F, "axis": Attr("int", 1), "cudnn_off": _BOOL_F,
                "min_calib_range": Attr("float_or_none", None),
                "max_calib_range": Attr("float_or_none", None)},
         infer_shape=_bn_infer, infer_type=_bn_type, type_check_uniform=True,
         forward=_bn_fwd, gradient=_bn_grad,
         backward_hook=_bn_hook,
         num_outputs=3, num_visible=lambda attrs: 3 if attrs["output_mean_var"] else 1,
         output_names=("output", "mean", "var"), mutate_inputs=(3, 4),
         train_dependent=True, lowerable=False, samples=_bn_samples,
         doc="Batch normalisation over every axis but ``axis``; training uses the batch mean and "
             "biased variance, prediction (or use_global_stats) the moving statistics, which "
             "the backward pass updates (note *batchnorm-moving-stats*).")


def _ln_infer(attrs, ins):
    d = ins[0]
    if d is None:   # LayerNormShape infers nothing before the data shape is known
        if ins[1] is not None and ins[2] is not None:
            _merge("LayerNorm", "gamma/beta", ins[1], ins[2])   # but they must agree
        return list(ins), [None, None, None]
    ax = norm_axis("LayerNorm", attrs["axis"], len(d))
    c = (d[ax],)
    res = [d]
    for n, s in zip(("gamma", "beta"), ins[1:]):
        try:
            res.append(_merge("LayerNorm", n, s, c))
        except MXNetError:
            raise MXNetError("LayerNorm: %s shape %s must be %s (data %s, axis=%d)"
                             % (n, fmt(s), fmt(c), fmt(d), attrs["axis"])) from None
    st = list(d)
    st[ax] = 1
    return res, [d, tuple(st), tuple(st)]


def _ln_fwd(attrs, ins, ctx):
    x, gamma, beta = ins
    ax = attrs["axis"] % x.ndim
    mean = x.mean(axis=ax, keepdims=True)
    std = np.sqrt(x.var(axis=ax, keepdims=True) + attrs["eps"])
    y = (x - mean) / std * _bcast(gamma, x.ndim, ax) + _bcast(beta, x.ndim, ax)
    dt = x.dtype
    return [y.astype(dt, copy=False), mean.astype(dt, copy=False), std.astype(dt, copy=False)]


def _ln_grad(F, attrs, ins, outs, og, ctx):
    x, gamma, beta = ins
    g = og[0]
    ax = attrs["axis"]
    mu = F.mean(x, axis=ax, keepdims=True)
    xc = F.broadcast_sub(x, mu)
    rstd = F.rsqrt(F._plus_scalar(F.mean(F.square(xc), axis=ax, keepdims=True), scalar=attrs["eps"]))
    xhat = F.broadcast_mul(xc, rstd)
    gg = F.broadcast_mul(g, F._nn_channel_view(gamma, x, axis=ax))
    inner = F.elemwise_sub(F.broadcast_sub(gg, F.mean(gg, axis=ax, keepdims=True)),
                           F.broadcast_mul(xhat, F.mean(F.elemwise_mul(gg, xhat), axis=ax, keepdims=True)))
    gx = F.broadcast_mul(inner, rstd)
    ggamma = F.sum(F.elemwise_mul(g, xhat), axis=ax, exclude=True)
    gbeta = F.sum(g, axis=ax, exclude=True)
    return [gx, ggamma, gbeta]


register("LayerNorm", inputs=("data", "gamma", "beta"),
         attrs={"axis": Attr("int", -1), "eps": Attr("float", 1e-5), "output_mean_var": _BOOL_F},
         infer_shape=_ln_infer, forward=_ln_fwd, gradient=_ln_grad,
         num_outputs=3, num_visible=lambda attrs: 3 if attrs["output_mean_var"] else 1,
         output_names=("output", "mean", "std"), lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (3, 4)), _rand(rng, (4,), 0.5, 1.5), _rand(rng, (4,))]),
                              Sample([_rand(rng, (2, 3, 2)), _rand(rng, (3,), 0.5, 1.5), _rand(rng, (3,))],
                                     {"axis": 1, "eps": 1e-3})],
         doc="Layer normalisation along ``axis``; hidden outputs are the mean and std "
             "(keepdims shapes).")


# ---------------------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------------------
def _emb_infer(attrs, ins):
    d, w = ins
    if d is None:   # as MXNet's EmbeddingOpShape: nothing before the data shape is known
        return [d, w], [None]
    w = _merge("Embedding", "weight", w, (attrs["input_dim"], attrs["output_dim"]))
    return [d, w], [tuple(d) + (attrs["output_dim"],)]


def _emb_type(attrs, ins, outs=None):
    """EmbeddingOpType: the data dtype must be known; the weight and output share the
    weight's (or output's) dtype, else the ``dtype`` attribute."""
    d, w = ins
    if d is None:
        raise MXNetError("Embedding: the data (first input) must have a specified type")
    o = (outs or [None])[0]
    if w is not None and o is not None and w != o:
        raise MXNetError("Embedding: weight dtype %s and output dtype %s must be equal" % (w, o))
    t = w or o or attrs["dtype"]
    return [d, t], [t]


def _emb_index(data, n):
    return np.clip(data, 0, n - 1).astype(np.int64)


register("Embedding", inputs=("data", "weight"),
         attrs={"input_dim": Attr("int"), "output_dim": Attr("int"),
                "dtype": Attr("dtype", "float32"), "sparse_grad": _BOOL_F},
         infer_shape=_emb_infer, infer_type=_emb_type,
         forward=lambda attrs, ins, ctx: [np.ascontiguousarray(ins[1][_emb_index(ins[0], ins[1].shape[0])])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             None, F._backward_Embedding(og[0], ins[0], ins[1]) if grad_needed(ctx, 1) else None],
         lowerable=False,
         samples=lambda rng: [Sample([np.array([[0.0, 2.0], [2.0, 4.0]]), _rand(rng, (5, 3))],
                                     {"input_dim": 5, "output_dim": 3, "dtype": "float64"})],
         doc="Row lookup: out[...] = weight[int(data[...])] (indices clipped to the table).")


def _emb_bwd_fwd(attrs, ins, ctx):
    g, d, w = ins
    out = np.zeros_like(w)
    np.add.at(out, _emb_index(d, w.shape[0]).reshape(-1), g.reshape(-1, w.shape[1]))
    return [out]


def _emb_bwd_grad(F, attrs, ins, outs, og, ctx):
    g, d, w = ins
    return [F._nn_embedding_lookup(d, og[0]) if grad_needed(ctx, 0) else None, None, None]


register("_backward_Embedding", inputs=("ograd", "data", "weight"),
         infer_shape=lambda attrs, ins: (ins, [ins[2]]),
         infer_type=lambda attrs, ins: (ins, [ins[2] or ins[0]]),
         forward=_emb_bwd_fwd, gradient=_emb_bwd_grad, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 2, 3)), np.array([[0.0, 2.0], [2.0, 4.0]]),
                                      _rand(rng, (5, 3))])],
         doc="Embedding weight gradient: rows of ograd summed into a zero table shaped like "
             "weight (repeated indices accumulate).")

register("_nn_embedding_lookup", inputs=("data", "weight"),
         infer_shape=lambda attrs, ins: (ins, [None if ins[0] is None or ins[1] is None
                                               else tuple(ins[0]) + (ins[1][1],)]),
         infer_type=lambda attrs, ins: (ins, [ins[1]]),
         forward=lambda attrs, ins, ctx: [np.ascontiguousarray(ins[1][_emb_index(ins[0], ins[1].shape[0])])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             None, F._backward_Embedding(og[0], ins[0], ins[1]) if grad_needed(ctx, 1) else None],
         lowerable=False,
         samples=lambda rng: [Sample([np.array([[0.0, 2.0], [2.0, 4.0]]), _rand(rng, (5, 3))])],
         doc="Embedding without its attrs (the table's shape decides): used by the second-order "
             "gradient of _backward_Embedding.")


# ---------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------
_LAYOUTS = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
_LAYOUTS_CL = {1: "NWC", 2: "NHWC", 3: "NDHWC"}

_CONV_ATTRS = {"kernel": Attr("shape"), "stride": Attr("shape", ()), "dilate": Attr("shape", ()),
               "pad": Attr("shape", ()), "num_filter": Attr("int"), "num_group": Attr("int", 1),
               "workspace": Attr("int", 1024), "no_bias": _BOOL_F,
               "cudnn_tune": Attr("str", None, choices=("off", "limited_workspace", "fastest")),
               "cudnn_off": _BOOL_F, "layout": Attr("str", None, choices=("NCW", "NCHW", "NCDHW", "NHWC", "NDHWC", "NWC"))}


def _spatial_params(op, attrs, nsp, kernel):
    def tup(name, default):
        v = attrs.get(name) or ()
        if len(v) == 0:
            return (default,) * nsp
        if len(v) != nsp:
            raise MXNetError("%s: %s=%s must have %d entries (kernel=%s)" % (op, name, v, nsp, kernel))
        return tuple(v)
    return tup("stride", 1), tup("dilate", 1), tup("pad", 0)


def _conv_geom(attrs):
    k = tuple(attrs["kernel"])
    nsp = len(k)
    if nsp not in (1, 2, 3):
        raise MXNetError("Convolution: kernel must have 1, 2 or 3 entries, got %s" % (k,))
    lay = attrs["layout"]
    if lay is not None and lay not in (_LAYOUTS[nsp], _LAYOUTS_CL[nsp]):
        raise MXNetError("Convolution: layout %s does not fit a %d-D kernel (%s or %s)"
                         % (lay, nsp, _LAYOUTS[nsp], _LAYOUTS_CL[nsp]))
    s, d, p = _spatial_params("Convolution", attrs, nsp, k)
    if any(v <= 0 for v in k + s + d) or any(v < 0 for v in p):
        raise MXNetError("Convolution: kernel/stride/dilate must be positive and pad non-negative "
                         "(kernel=%s stride=%s dilate=%s pad=%s)" % (k, s, d, p))
    return k, s, d, p


def _conv_out_spatial(op, x_sp, k, s, d, p, dshape):
    out = []
    for x, kk, ss, dd, pp in zip(x_sp, k, s, d, p):
        if not x:
            out.append(0)
            continue
        ext = dd * (kk - 1) + 1
        if x + 2 * pp < ext:
            raise MXNetError("%s: kernel size (%s, dilated extent %d) exceeds the padded input %s "
                             "(pad=%s)" % (op, k, ext, fmt(dshape), p))
        out.append((x + 2 * pp - ext) // ss + 1)
    return tuple(out)


def _conv_cl(attrs):
    """True for a channel-last layout (note *conv-layouts*)."""
    return attrs["layout"] in ("NWC", "NHWC", "NDHWC")


def _to_cf_shape(s):
    return s if s is None or len(s) < 3 else (s[0], s[-1]) + tuple(s[1:-1])


def _to_cl_shape(s):
    return s if s is None or len(s) < 3 else (s[0],) + tuple(s[2:]) + (s[1],)


def _conv_layouts(fn):
    """A channel-first Convolution kernel run on channel-last data and weights."""
    def kernel(attrs, ins, ctx):
        if not _conv_cl(attrs):
            return fn(attrs, ins, ctx)
        outs = fn(dict(attrs, layout=None), [np.moveaxis(a, -1, 1) if a.ndim >= 3 else a
                                             for a in ins], ctx)
        return [np.ascontiguousarray(np.moveaxis(y, 1, -1)) if y.ndim >= 3 else y for y in outs]
    return kernel


def _conv_infer(attrs, ins, outs=None):
    if _conv_cl(attrs):
        res, outs = _conv_infer_cf(dict(attrs, layout=None), [_to_cf_shape(s) for s in ins],
                                   [_to_cf_shape(s) for s in outs or []])
        return [_to_cl_shape(s) for s in res], [_to_cl_shape(s) for s in outs]
    return _conv_infer_cf(attrs, ins, outs)


def _conv_infer_cf(attrs, ins, outs=None):
    op = "Convolution"
    k, s, d, p = _conv_geom(attrs)
    nf, ng = attrs["num_filter"], attrs["num_group"]
    if nf <= 0 or ng <= 0 or nf % ng:
        raise MXNetError("%s: num_filter=%d must be positive and divisible by num_group=%d" % (op, nf, ng))
    has_bias = not attrs["no_bias"]
    if has_bias and len(ins) < 3:
        raise MXNetError("%s: bias is required unless no_bias=True" % op)
    x, w = ins[0], ins[1]
    if x is None:   # MXNet's ConvolutionShape infers nothing before the data shape is known
        return list(ins), [None]
    out = None
    if x is not None:
        if len(x) != len(k) + 2:
            raise MXNetError("%s: data must be %d-D (%s) for kernel %s, got %s"
                             % (op, len(k) + 2, _LAYOUTS[len(k)], k, fmt(x)))
        c = x[1]
        if c and c % ng:
            raise MXNetError("%s: input channels %d not divisible by num_group=%d" % (op, c, ng))
        try:
            w = _merge(op, "weight", w, (nf, c // ng if c else 0) + k)
        except MXNetError:
            raise MXNetError("%s: weight shape %s is inconsistent with data %s (expected %s)"
                             % (op, fmt(w), fmt(x), fmt((nf, c // ng) + k))) from None
        out = (x[0], nf) + _conv_out_spatial(op, x[2:], k, s, d, p, x)
    elif w is not None:
        w = _merge(op, "weight", w, (nf, 0) + k)
    res = [x, w]
    if has_bias:
        try:
            res.append(_merge(op, "bias", ins[2], (nf,)))
        except MXNetError:
            raise MXNetError("%s: bias shape %s must be (%d,)" % (op, fmt(ins[2]), nf)) from None
    elif len(ins) > 2:
        res.append(ins[2])
    o = outs[0] if outs else None
    if o is not None and len(o) == len(out):
        # ConvolutionShape's incomplete inference: the batch size, and each spatial size
        # whose stride is 1, flow back from the output
        out = _merge(op, "output", out, o)
        back = [out[0], x[1]]
        for i in range(len(k)):
            if out[2 + i] and s[i] == 1:
                back.append(out[2 + i] + d[i] * (k[i] - 1) - 2 * p[i])
            else:
                back.append(0)
        res[0] = _merge(op, "data", x, tuple(back))
    return res, [out]


def _win(start, dil, size, stride):
    return slice(start * dil, start * dil + stride * (size - 1) + 1, stride)


def _conv_setup(attrs, xshape):
    k, s, d, p = _conv_geom(attrs)
    osp = _conv_out_spatial("Convolution", xshape[2:], k, s, d, p, xshape)
    return k, s, d, p, osp


def _pad(x, p, value=0.0):
    if not any(p):
        return x
    return np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in p], constant_values=value)


def _compute_dtype(*arrays):
    """Dtype the convolution GEMMs run in: the inputs' result type, float16 widened to
    float32 (NumPy has no float16 BLAS; the result is rounded back once)."""
    dt = np.result_type(*arrays)
    return np.dtype(np.float32) if dt == np.float16 else dt


def _window_view(xp, k, s, d, osp, lead):
    """Read-only strided view of ``xp`` (``lead`` leading axes, then the padded spatial axes)
    as (*lead_shape, *kernel, *out_spatial): element [..., o_k, o_y] is
    xp[..., o_y * stride + o_k * dilate] (no copy)."""
    st = xp.strides
    nsp = len(k)
    shape = xp.shape[:lead] + tuple(k) + tuple(osp)
    strides = (st[:lead] + tuple(st[lead + i] * d[i] for i in range(nsp))
               + tuple(st[lead + i] * s[i] for i in range(nsp)))
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


def _im2col(x, G, k, s, d, p, osp, dt, batch_inner=False):
    """Columns of ``x`` (n, c, *spatial) in dtype ``dt``, one strided copy: (n, G, c/G*K, O),
    or with ``batch_inner`` (G, c/G*K, n*O) so a GEMM can reduce over batch and space."""
    n, c = x.shape[:2]
    cg, K, O = c // G, _prod(k), _prod(osp)
    xp = _pad(np.asarray(x, dtype=dt), p)
    xp = xp.reshape((n, G, cg) + xp.shape[2:])
    v = _window_view(xp, k, s, d, osp, 3)                      # (n, G, cg, *k, *osp)
    if not batch_inner:
        return np.ascontiguousarray(v).reshape(n, G, cg * K, O)
    nsp = len(k)
    order = (1, 2) + tuple(range(3, 3 + nsp)) + (0,) + tuple(range(3 + nsp, 3 + 2 * nsp))
    return np.ascontiguousarray(v.transpose(order)).reshape(G, cg * K, n * O)


def _conv_np(x, w, attrs):
    """Forward: im2col + a GEMM per sample and group (BLAS)."""
    k, s, d, p, osp = _conv_setup(attrs, x.shape)
    G = attrs["num_group"]
    n, c = x.shape[:2]
    f = w.shape[0]
    dt = _compute_dtype(x, w)
    cg, fg, K = c // G, f // G, _prod(k)
    cols = _im2col(x, G, k, s, d, p, osp, dt)                  # (n, G, cg*K, O)
    out = np.matmul(np.asarray(w, dtype=dt).reshape(G, fg, cg * K), cols)   # (n, G, fg, O)
    return out.reshape((n, f) + tuple(osp)).astype(np.result_type(x, w), copy=False)


def _conv_bwd_data_np(g, x, w, attrs):
    """Data gradient (``x`` gives only the shape): W^T @ ograd per sample and group (BLAS),
    then col2im: one strided slice-add per kernel offset onto the padded gradient."""
    k, s, d, p, osp = _conv_setup(attrs, x.shape)
    G = attrs["num_group"]
    n, c = x.shape[:2]
    f = w.shape[0]
    cg, fg, K, O = c // G, f // G, _prod(k), _prod(osp)
    dt = _compute_dtype(g, w)
    fullpad = tuple(dd * (kk - 1) - pp for kk, dd, pp in zip(k, d, p))
    if K > 1 and all(v == 1 for v in s) and min(fullpad) >= 0 and f * _prod(x.shape[2:]) <= c * O:
        # stride 1: the "full" convolution of ograd with the flipped, transposed kernel --
        # im2col + GEMM, cheaper than a GEMM plus K scatter-adds unless ograd's columns
        # (f * input spatial) outgrow the scattered ones (c * output spatial)
        wt = np.asarray(w, dtype=dt).reshape((G, fg, cg) + tuple(k)).swapaxes(1, 2)
        wt = wt[(slice(None),) * 3 + (slice(None, None, -1),) * len(k)].reshape((c, fg) + tuple(k))
        gx = _conv_np(np.asarray(g, dtype=dt), wt, {"kernel": k, "stride": s, "dilate": d,
                                                    "pad": fullpad, "num_group": G, "layout": None})
        return np.ascontiguousarray(gx, dtype=g.dtype)
    gg = np.asarray(g, dtype=dt).reshape(n, G, fg, O)
    wg = np.asarray(w, dtype=dt).reshape(G, fg, cg * K)
    cols = np.matmul(wg.swapaxes(1, 2), gg)                    # (n, G, cg*K, O)
    if K == 1 and not any(p) and all(v == 1 for v in s):
        return np.ascontiguousarray(cols.reshape(x.shape), dtype=g.dtype)
    psp = tuple(q + 2 * pp for q, pp in zip(x.shape[2:], p))
    gxp = np.zeros((n, G, cg) + psp, dtype=dt)
    cols = cols.reshape((n, G, cg) + tuple(k) + tuple(osp))
    for off in itertools.product(*[range(kk) for kk in k]):
        sl = (slice(None),) * 3 + tuple(_win(o, dd, os_, ss) for o, dd, os_, ss in zip(off, d, osp, s))
        gxp[sl] += cols[(slice(None),) * 3 + off]
    crop = (slice(None), slice(None)) + tuple(slice(pp, pp + q) for pp, q in zip(p, x.shape[2:]))
    return np.ascontiguousarray(gxp.reshape((n, c) + psp)[crop], dtype=g.dtype)


def _conv_bwd_weight_np(g, x, w, attrs):
    """Weight gradient: one GEMM per group, ograd (f/G, n*O) @ im2col(x)^T (n*O, c/G*K)."""
    k, s, d, p, osp = _conv_setup(attrs, x.shape)
    G = attrs["num_group"]
    n, c = x.shape[:2]
    f = w.shape[0]
    fg, O = f // G, _prod(osp)
    dt = _compute_dtype(g, x)
    cols = _im2col(x, G, k, s, d, p, osp, dt, batch_inner=True)   # (G, cg*K, n*O)
    gg = np.asarray(g, dtype=dt).reshape(n, G, fg, O).transpose(1, 2, 0, 3).reshape(G, fg, n * O)
    gw = np.matmul(gg, cols.swapaxes(1, 2))                    # (G, fg, cg*K)
    return gw.reshape(w.shape).astype(g.dtype, copy=False)


def _conv_fwd(attrs, ins, ctx):
    x, w = ins[0], ins[1]
    y = _conv_np(x, w, attrs)
    if not attrs["no_bias"]:
        y = y + ins[2].reshape((1, -1) + (1,) * (y.ndim - 2))
    return [np.ascontiguousarray(y.astype(x.dtype, copy=False))]


def _conv_kw(attrs):
    keys = ("kernel", "stride", "dilate", "pad", "num_filter", "num_group", "layout")
    return {k: attrs[k] for k in keys if attrs[k] != _CONV_ATTRS[k].default}


def _conv_grad(F, attrs, ins, outs, og, ctx):
    x, w = ins[0], ins[1]
    g = og[0]
    kw = _conv_kw(attrs)
    res = [F._backward_Convolution_data(g, x, w, **kw) if grad_needed(ctx, 0) else None,
           F._backward_Convolution_weight(g, x, w, **kw) if grad_needed(ctx, 1) else None]
    if len(ins) > 2:
        res.append(F.sum(g, axis=-1 if _conv_cl(attrs) else 1, exclude=True)
                   if grad_needed(ctx, 2) else None)
    return res


def _conv_samples(rng):
    r = lambda *s: _rand(rng, s)
    return [Sample([r(1, 2, 5, 5), r(3, 2, 3, 3), r(3)], {"kernel": (3, 3), "num_filter": 3}),
            Sample([r(2, 2, 5, 4), r(3, 2, 3, 3)],
                   {"kernel": (3, 3), "num_filter": 3, "no_bias": True, "pad": (1, 1), "stride": (2, 2)}),
            Sample([r(1, 4, 6, 6), r(4, 2, 2, 2), r(4)],
                   {"kernel": (2, 2), "num_filter": 4, "num_group": 2, "dilate": (2, 1)}),
            Sample([r(2, 2, 7), r(3, 2, 3), r(3)], {"kernel": (3,), "num_filter": 3, "stride": (2,)}),
            Sample([r(1, 1, 4, 4, 3), r(2, 1, 2, 2, 2), r(2)],
                   {"kernel": (2, 2, 2), "num_filter": 2, "pad": (1, 0, 1)}),
            Sample([r(2, 5, 4, 4), r(2, 3, 2, 2), r(2)],
                   {"kernel": (3, 2), "num_filter": 2, "num_group": 2, "stride": (2, 1),
                    "pad": (1, 0), "layout": "NHWC"}),
            Sample([r(1, 6, 2), r(3, 2, 2)], {"kernel": (2,), "num_filter": 3, "no_bias": True,
                                               "dilate": (2,), "layout": "NWC"})]


_conv_type = _data_led_type("Convolution", ["data", "weight", "bias"])


register("Convolution", inputs=("data", "weight", "bias"), attrs=dict(_CONV_ATTRS),
         infer_type=_conv_type, infer_shape=_conv_infer, forward=_conv_layouts(_conv_fwd), gradient=_conv_grad,
         lowerable=False, optional_inputs=("bias",), samples=_conv_samples,
         doc="N-D convolution (NCW/NCHW/NCDHW, or channel-last NWC/NHWC/NDHWC with weights "
             "(num_filter, *kernel, channels/num_group); note *conv-layouts*) with stride, "
             "dilation, zero padding and groups; "
             "weight is (num_filter, channels/num_group, *kernel).")


def _conv_bwd_infer(which):
    def infer(attrs, ins):
        g, x, w = ins
        return ins, [x if which == 0 else w]
    return infer


def _conv_bwd_data_grad(F, attrs, ins, outs, og, ctx):
    g, x, w = ins
    kw = _conv_kw(attrs)
    return [F.Convolution(og[0], w, no_bias=True, **kw) if grad_needed(ctx, 0) else None, None,
            F._backward_Convolution_weight(g, og[0], w, **kw) if grad_needed(ctx, 2) else None]


def _conv_bwd_weight_grad(F, attrs, ins, outs, og, ctx):
    g, x, w = ins
    kw = _conv_kw(attrs)
    return [F.Convolution(x, og[0], no_bias=True, **kw) if grad_needed(ctx, 0) else None,
            F._backward_Convolution_data(g, x, og[0], **kw) if grad_needed(ctx, 1) else None, None]


def _conv_bwd_samples(rng):
    out = []
    for smp in _conv_samples(rng):
        x, w = smp.inputs[:2]
        a = dict(smp.attrs)
        a.pop("no_bias", None)
        full = {k: a.get(k, v.default) for k, v in _CONV_ATTRS.items()}
        g = _rand(rng, _conv_infer(dict(full, no_bias=True), [x.shape, w.shape])[1][0])
        out.append(Sample([g, x, w], a))
    return out


_CONV_BWD_ATTRS = {k: v for k, v in _CONV_ATTRS.items() if k != "no_bias"}
_CONV_BWD_ATTRS["no_bias"] = Attr("bool", True)
register("_backward_Convolution_data", inputs=("ograd", "data", "weight"), attrs=_CONV_BWD_ATTRS,
         infer_shape=_conv_bwd_infer(0), infer_type=_bwd_dot_type(0),
         forward=_conv_layouts(lambda attrs, ins, ctx: [_conv_bwd_data_np(ins[0], ins[1], ins[2], attrs)]),
         gradient=_conv_bwd_data_grad, lowerable=False, samples=_conv_bwd_samples,
         doc="Convolution gradient w.r.t. data (note *bilinear-backward-ops*; data gives the shape).")
register("_backward_Convolution_weight", inputs=("ograd", "data", "weight"), attrs=_CONV_BWD_ATTRS,
         infer_shape=_conv_bwd_infer(1), infer_type=_bwd_dot_type(1),
         forward=_conv_layouts(lambda attrs, ins, ctx: [_conv_bwd_weight_np(ins[0], ins[1], ins[2], attrs)]),
         gradient=_conv_bwd_weight_grad, lowerable=False, samples=_conv_bwd_samples,
         doc="Convolution gradient w.r.t. weight (note *bilinear-backward-ops*; weight gives the "
             "shape).")


# ---------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------
_POOL_ATTRS = {"kernel": Attr("shape", ()),
               "pool_type": Attr("str", "max", choices=("max", "avg", "sum", "lp")),
               "global_pool": _BOOL_F, "cudnn_off": _BOOL_F,
               "pooling_convention": Attr("str", "valid", choices=("valid", "full", "same")),
               "stride": Attr("shape", ()), "pad": Attr("shape", ()),
               "p_value": Attr("int_or_none", None), "count_include_pad": Attr("bool", True),
               "layout": Attr("str", None, choices=("NCW", "NCHW", "NCDHW", "NWC", "NHWC", "NDHWC"))}


def _pool_geom(attrs, dshape):
    """(kernel, stride, pad, out_spatial, extra right padding for 'full')."""
    op = "Pooling"
    if attrs["pool_type"] == "lp":
        raise MXNetError("Pooling: pool_type='lp' is not supported (use max, avg or sum)")
    if attrs["pooling_convention"] == "same":
        raise MXNetError("Pooling: pooling_convention='same' is not supported (use valid or full)")
    nsp = len(dshape) - 2
    if nsp not in (1, 2, 3):
        raise MXNetError("Pooling: data must be 3-D, 4-D or 5-D (N, C, spatial...), got %s" % fmt(dshape))
    lay = attrs["layout"]
    if lay is not None and lay != _LAYOUTS[nsp]:
        raise MXNetError("Pooling: layout %s does not match data %s (%s or %s expected)"
                         % (lay, fmt(dshape), _LAYOUTS[nsp], _LAYOUTS_CL[nsp]))
    if attrs["global_pool"]:
        k = tuple(dshape[2:])
        return k, (1,) * nsp, (0,) * nsp, (1,) * nsp, (0,) * nsp
    k = tuple(attrs["kernel"])
    if len(k) != nsp:
        raise MXNetError("Pooling: kernel=%s must have %d entries for data %s" % (k, nsp, fmt(dshape)))
    s, _, p = _spatial_params(op, attrs, nsp, k)
    if any(v <= 0 for v in k + s) or any(v < 0 for v in p):
        raise MXNetError("Pooling: kernel and stride must be positive, pad non-negative "
                         "(kernel=%s stride=%s pad=%s)" % (k, s, p))
    out, extra = [], []
    for x, kk, ss, pp in zip(dshape[2:], k, s, p):
        if not x:
            out.append(0)
            extra.append(0)
            continue
        if x + 2 * pp < kk:
            raise MXNetError("Pooling: kernel %s is larger than the padded input %s (pad=%s)"
                             % (k, fmt(dshape), p))
        if attrs["pooling_convention"] == "full":
            o = -(-(x + 2 * pp - kk) // ss) + 1
        else:
            o = (x + 2 * pp - kk) // ss + 1
        out.append(o)
        extra.append(max(0, (o - 1) * ss + kk - (x + 2 * pp)))
    return k, s, p, tuple(out), tuple(extra)


def _pool_channel_last(attrs, ndim):
    """True for a channel-last layout (note *pooling-layouts*); checks it fits ``ndim``."""
    lay = attrs["layout"]
    if lay not in ("NWC", "NHWC", "NDHWC"):
        return False
    if _LAYOUTS_CL.get(ndim - 2) != lay:
        raise MXNetError("Pooling: layout %s does not match %d-D data" % (lay, ndim))
    return True


def _cf_shape(s):
    return (s[0], s[-1]) + tuple(s[1:-1])


def _cl_shape(s):
    return (s[0],) + tuple(s[2:]) + (s[1],)


def _pool_layouts(fn):
    """Run a channel-first Pooling kernel on channel-last arrays (note *pooling-layouts*)."""
    def kernel(attrs, ins, ctx):
        if not _pool_channel_last(attrs, ins[-1].ndim):
            return fn(attrs, ins, ctx)
        outs = fn(dict(attrs, layout=None), [np.moveaxis(x, -1, 1) for x in ins], ctx)
        return [np.ascontiguousarray(np.moveaxis(y, 1, -1)) for y in outs]
    return kernel


def _pool_infer(attrs, ins):
    d = ins[0]
    if d is None:
        return ins, [None]
    if not attrs["global_pool"] and not attrs["kernel"]:
        raise MXNetError("Pooling: kernel is required unless global_pool=True")
    if _pool_channel_last(attrs, len(d)):
        k, s, p, osp, _ = _pool_geom(dict(attrs, layout=None), _cf_shape(d))
        return ins, [_cl_shape((d[0], d[-1]) + osp)]
    k, s, p, osp, _ = _pool_geom(attrs, d)
    return ins, [tuple(d[:2]) + osp]


def _pool_padded(x, p, extra, value):
    if not any(p) and not any(extra):
        return x
    return np.pad(x, [(0, 0), (0, 0)] + [(q, q + e) for q, e in zip(p, extra)], constant_values=value)


def _pool_windows(k, s, osp):
    for off in itertools.product(*[range(kk) for kk in k]):
        yield off, (slice(None), slice(None)) + tuple(_win(o, 1, os_, ss) for o, os_, ss in zip(off, osp, s))


def _pool_count(attrs, xshape, k, s, p, osp, extra, dtype):
    """Per-output divisor of avg pooling (MXNet: window clipped to the padded input, or to the
    data itself without count_include_pad)."""
    sp = xshape[2:]
    if attrs["count_include_pad"]:
        m = np.ones(tuple(q + 2 * pp for q, pp in zip(sp, p)), dtype=dtype)
        m = np.pad(m, [(0, e) for e in extra])
    else:
        m = np.pad(np.ones(sp, dtype=dtype), [(pp, pp + e) for pp, e in zip(p, extra)])
    cnt = np.zeros(osp, dtype=dtype)
    for off, sl in _pool_windows(k, s, osp):
        cnt += m[sl[2:]]
    return np.maximum(cnt, 1)


def _pool_global(attrs, x):
    """True when every window is the whole spatial extent (global pooling, or a kernel that
    covers the unpadded input once): the kernels then reduce over one flattened axis."""
    if attrs["global_pool"]:
        return True
    k, s, p, osp, extra = _pool_geom(attrs, x.shape)
    return tuple(k) == tuple(x.shape[2:]) and not any(p) and not any(extra)


def _pool_fwd(attrs, ins, ctx):
    x = ins[0]
    k, s, p, osp, extra = _pool_geom(attrs, x.shape)
    t = attrs["pool_type"]
    if _pool_global(attrs, x) and x.size:
        flat = x.reshape(x.shape[:2] + (-1,))
        if t == "max":
            out = flat.max(axis=-1)
        else:
            acc = np.float32 if x.dtype == np.float16 else None
            out = flat.sum(axis=-1, dtype=acc)
            if t == "avg":
                out = out / max(1, flat.shape[-1])
            out = out.astype(x.dtype, copy=False)
        return [np.ascontiguousarray(out.reshape(x.shape[:2] + osp))]
    if t == "max":
        # MXNet starts from the lowest finite value, so an all-padding window gives that
        lo = np.finfo(x.dtype).min if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xp = _pool_padded(x, p, extra, lo)
        out = np.full(x.shape[:2] + osp, lo, dtype=x.dtype)
        for off, sl in _pool_windows(k, s, osp):
            np.maximum(out, xp[sl], out=out)
        return [out]
    xp = _pool_padded(x, p, extra, 0.0)
    out = np.zeros(x.shape[:2] + osp, dtype=x.dtype)
    for off, sl in _pool_windows(k, s, osp):
        out += xp[sl]
    if t == "avg":
        out /= _pool_count(attrs, x.shape, k, s, p, osp, extra, x.dtype)
    return [out]


def _pool_first_max(x, k, s, p, osp, extra):
    """Per kernel offset (in window order): the window slice and the mask of the windows
    whose *first* maximum sits at that offset (MXNet 1.9.1 routes the gradient of tied
    maxima to the first in row-major window order; padding never wins over data, NaN is
    skipped).  O(K) passes over the output, no window copy."""
    if any(p) or any(extra):
        lo = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        x = _pool_padded(x, p, extra, lo)
    wins = list(_pool_windows(k, s, osp))
    best = np.array(x[wins[0][1]])
    for off, sl in wins[1:]:
        np.fmax(best, x[sl], out=best)
    taken = np.zeros(best.shape, dtype=bool)
    hit = np.empty(best.shape, dtype=bool)
    for off, sl in wins:
        np.equal(x[sl], best, out=hit)
        hit &= ~taken
        taken |= hit
        yield sl, hit


def _pool_argmax(x, k, s, p, osp, extra):
    """Index (in window order) of the first maximum of each window."""
    arg = np.zeros(x.shape[:2] + tuple(osp), dtype=np.int64)
    for i, (sl, hit) in enumerate(_pool_first_max(x, k, s, p, osp, extra)):
        arg[hit] = i
    return arg


def _pool_bwd_np(g, x, attrs):
    """Scatter the output gradient back onto the input windows."""
    k, s, p, osp, extra = _pool_geom(attrs, x.shape)
    t = attrs["pool_type"]
    if _pool_global(attrs, x) and x.size:
        flat = x.reshape(x.shape[:2] + (-1,))
        gf = g.reshape(x.shape[:2] + (1,))
        if t == "max":
            gx = (np.arange(flat.shape[-1]) == np.argmax(flat, axis=-1)[..., None]) * gf
        else:
            gs = gf / max(1, flat.shape[-1]) if t == "avg" else gf
            gx = np.broadcast_to(gs, flat.shape)
        return np.ascontiguousarray(gx.reshape(x.shape), dtype=g.dtype)
    psp = tuple(q + 2 * pp + e for q, pp, e in zip(x.shape[2:], p, extra))
    gx = np.zeros(x.shape[:2] + psp, dtype=g.dtype)
    if t == "max":
        for sl, hit in _pool_first_max(x, k, s, p, osp, extra):
            gx[sl] += hit * g
    else:
        gs = g / _pool_count(attrs, x.shape, k, s, p, osp, extra, g.dtype) if t == "avg" else g
        for off, sl in _pool_windows(k, s, osp):
            gx[sl] += gs
    crop = (slice(None), slice(None)) + tuple(slice(pp, pp + q) for pp, q in zip(p, x.shape[2:]))
    return np.ascontiguousarray(gx[crop])


def _pool_select_np(g, x, attrs):
    """For max pooling: pick, per output window, ``g`` at the input argmax."""
    k, s, p, osp, extra = _pool_geom(attrs, x.shape)
    gp = _pool_padded(g, p, extra, 0.0)
    out = np.zeros(x.shape[:2] + osp, dtype=g.dtype)
    for sl, hit in _pool_first_max(x, k, s, p, osp, extra):
        np.copyto(out, gp[sl], where=hit)
    return out


def _pool_kw(attrs):
    keys = ("kernel", "pool_type", "global_pool", "pooling_convention", "stride", "pad",
            "count_include_pad", "layout")
    return {k: attrs[k] for k in keys if attrs[k] != _POOL_ATTRS[k].default}


def _pool_grad(F, attrs, ins, outs, og, ctx):
    return [F._backward_Pooling(og[0], ins[0], **_pool_kw(attrs))]


def _pool_samples(rng):
    r = lambda *s: _rand(rng, s)
    return [Sample([r(1, 2, 5, 5)], {"kernel": (2, 2), "pool_type": "avg", "stride": (2, 2)}),
            Sample([r(1, 2, 5, 5)], {"kernel": (2, 2), "pool_type": "max"}),
            Sample([r(2, 2, 4, 4)], {"kernel": (1, 1), "pool_type": "avg", "global_pool": True}),
            Sample([r(1, 2, 5, 4)], {"kernel": (3, 2), "pool_type": "max", "stride": (2, 2),
                                     "pad": (1, 1)}),
            Sample([r(1, 1, 5, 5)], {"kernel": (3, 3), "pool_type": "avg", "stride": (2, 2), "pad": (1, 1),
                                     "count_include_pad": False, "pooling_convention": "full"}),
            Sample([r(1, 2, 6, 5)], {"kernel": (2, 2), "pool_type": "sum", "stride": (2, 2),
                                     "pooling_convention": "full"}),
            Sample([r(2, 2, 7)], {"kernel": (3,), "pool_type": "max", "stride": (2,)}),
            Sample([r(1, 1, 4, 3, 4)], {"kernel": (2, 2, 2), "pool_type": "avg", "pad": (1, 0, 1)}),
            Sample([r(2, 5, 4, 3)], {"kernel": (2, 2), "pool_type": "max", "stride": (2, 1),
                                     "layout": "NHWC"}),
            Sample([r(1, 5, 2)], {"kernel": (3,), "pool_type": "avg", "pad": (1,), "layout": "NWC",
                                  "pooling_convention": "full", "stride": (2,)}),
            Sample([r(1, 3, 2, 3, 2)], {"kernel": (1, 1, 1), "global_pool": True, "pool_type": "avg",
                                        "layout": "NDHWC"})]


register("Pooling", inputs=("data",), attrs=dict(_POOL_ATTRS), infer_shape=_pool_infer,
         forward=_pool_layouts(_pool_fwd), gradient=_pool_grad, lowerable=False,
         samples=_pool_samples,
         doc="Max/avg/sum pooling over 1-3 spatial axes (NCW/NCHW/NCDHW, or channel-last "
             "NWC/NHWC/NDHWC via ``layout``).  Default stride 1, "
             "pad 0; 'valid' output is floor((x + 2p - k)/s) + 1, 'full' uses ceil.  avg counts "
             "padded zeros when count_include_pad (default True).")


def _pool_bwd_grad(F, attrs, ins, outs, og, ctx):
    kw = _pool_kw(attrs)
    if attrs["pool_type"] == "max":
        return [F._pooling_max_select(og[0], ins[1], **kw), None]
    return [F.Pooling(og[0], **kw), None]


def _pool_bwd_samples(rng):
    out = []
    for smp in _pool_samples(rng):
        x = smp.inputs[0]
        full = {k: smp.attrs.get(k, v.default) for k, v in _POOL_ATTRS.items()}
        out.append(Sample([_rand(rng, _pool_infer(full, [x.shape])[1][0]), x], smp.attrs))
    return out


register("_backward_Pooling", inputs=("ograd", "data"), attrs=dict(_POOL_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [ins[1]]), infer_type=_bwd_dot_type(0),
         forward=_pool_layouts(lambda attrs, ins, ctx: [_pool_bwd_np(ins[0], ins[1], attrs)]),
         gradient=_pool_bwd_grad, lowerable=False, samples=_pool_bwd_samples,
         doc="Pooling gradient: ograd scattered onto the windows (max: to the first argmax).  "
             "data is read only for the argmax and the shape, so it gets no gradient.")


def _pool_sel_infer(attrs, ins):
    g, d = ins
    if d is None:
        return ins, [None]
    return ins, [_pool_infer(attrs, [d])[1][0]]


def _pool_sel_samples(rng):
    return [Sample([_rand(rng, smp.inputs[0].shape), smp.inputs[0]], smp.attrs)
            for smp in _pool_samples(rng) if smp.attrs.get("pool_type") == "max"]


register("_pooling_max_select", inputs=("data", "like"), attrs=dict(_POOL_ATTRS),
         infer_shape=_pool_sel_infer, infer_type=_bwd_dot_type(0),
         forward=_pool_layouts(lambda attrs, ins, ctx: [_pool_select_np(ins[0], ins[1], attrs)]),
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._backward_Pooling(og[0], ins[1], **_pool_kw(attrs)), None],
         lowerable=False, samples=_pool_sel_samples,
         doc="Max pooling's routing applied to ``data``: per window, data at the argmax of "
             "``like`` (the adjoint of _backward_Pooling with pool_type='max').")
