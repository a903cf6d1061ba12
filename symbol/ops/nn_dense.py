"""Dense neural-network operators: dot, batch_dot, FullyConnected, Embedding.

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
"""
import numpy as np
from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, grad_needed
from ._lowering import KernelCall
from ._nn_util import _BOOL_F, _known, _like, _merge, _prod, _rand


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
            Sample([r(3, 2, 2), r(2, 2, 3)], {"transpose_a": True, "transpose_b": True}),
            Sample([r(2, 2, 3), r(4, 3)], {"transpose_b": True}),
            Sample([r(3, 2, 2), r(3, 4)], {"transpose_a": True})]


def _lower_dot(ctx):
    """N-D x N-D (N >= 2) through BLAS: each operand viewed as MXNet's 2-D matrix (see
    ``_mat``) and np.dot into the output viewed as 2-D (a FullyConnected weight gradient
    of 4-D data); 1-D operands run eagerly."""
    if ctx.in_ndim[0] < 2 or ctx.in_ndim[1] < 2:
        return None
    a, b = ctx.ins
    ta, tb = ctx.attrs["transpose_a"], ctx.attrs["transpose_b"]
    if ctx.in_ndim == [2, 2]:
        A = a + (".T" if ta else "")
        B = b + (".T" if tb else "")
        return ["np.dot(%s, %s, %s)" % (A, B, ctx.outs[0])]

    def prod(v, ks):
        return " * ".join(["1"] + ["%s.shape[%d]" % (v, k) for k in ks])
    na, nb = ctx.in_ndim
    # (first, rest) or (lead, last) sizes of each operand
    a_fr = (prod(a, [0]), prod(a, range(1, na)))
    a_ll = (prod(a, range(na - 1)), prod(a, [na - 1]))
    b_fr = (prod(b, [0]), prod(b, range(1, nb)))
    b_ll = (prod(b, range(nb - 1)), prod(b, [nb - 1]))
    A, B, o = ctx.tmp("a"), ctx.tmp("b"), ctx.tmp("o")
    return ["%s = %s.reshape((%s, %s))%s" % ((A, a) + (a_fr if ta else a_ll) + (".T" if ta else "",)),
            "%s = %s.reshape((%s, %s))%s" % ((B, b) + (b_ll if tb else b_fr) + (".T" if tb else "",)),
            "%s = %s.reshape((%s.shape[0], %s.shape[1]))" % (o, ctx.outs[0], A, B),
            "np.dot(%s, %s, %s)" % (A, B, o)]


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
    """d(op(a) @ op(b)) with each operand viewed as dot's 2-D matrix (``_lower_dot``: A is
    (lead, last) or, transposed, (first, rest)^T; B (first, rest) or (lead, last)^T) and
    ograd as (rows of A, columns of B): lhs G @ B^T (written as B @ G^T into the (first,
    rest) view when transpose_a); rhs A^T @ G (G^T @ A into the (lead, last) view when
    transpose_b) -- so the weight gradient of a FullyConnected(flatten=False) on N-D data
    is one GEMM; 1-D operands run eagerly."""
    def lower(ctx):
        nd_g, na, nb = ctx.in_ndim
        if na < 2 or nb < 2:
            return None
        g, a, b = ctx.ins
        ta, tb = ctx.attrs["transpose_a"], ctx.attrs["transpose_b"]
        out = ctx.outs[0]
        if ctx.in_ndim == [2, 2, 2]:
            if which == 0:
                if not ta:
                    return ["np.dot(%s, %s, %s)" % (g, b if tb else b + ".T", out)]
                return ["np.dot(%s, %s.T, %s)" % (b + ".T" if tb else b, g, out)]
            if not tb:
                return ["np.dot(%s, %s, %s)" % (a if ta else a + ".T", g, out)]
            return ["np.dot(%s.T, %s, %s)" % (g, a + ".T" if ta else a, out)]

        def prod(v, ks):
            return " * ".join(["1"] + ["%s.shape[%d]" % (v, k) for k in ks])

        def fr(v, n):       # (first, rest)
            return "(%s, %s)" % (prod(v, [0]), prod(v, range(1, n)))

        def ll(v, n):       # (lead, last)
            return "(%s, %s)" % (prod(v, range(n - 1)), prod(v, [n - 1]))
        A, B, G, o = ctx.tmp("a"), ctx.tmp("b"), ctx.tmp("g"), ctx.tmp("o")
        a_view = fr(a, na) if ta else ll(a, na)      # A = a_view (.T if ta)
        b_view = ll(b, nb) if tb else fr(b, nb)      # B = b_view (.T if tb)
        lines = ["%s = %s.reshape(%s)" % (A, a, a_view),
                 "%s = %s.reshape(%s)" % (B, b, b_view)]
        # G: (rows of A, columns of B)
        rows = "%s.shape[%d]" % (A, 1 if ta else 0)
        cols = "%s.shape[%d]" % (B, 0 if tb else 1)
        lines.append("%s = %s.reshape((%s, %s))" % (G, g, rows, cols))
        if which == 0:
            lines.append("%s = %s.reshape(%s.shape)" % (o, out, A))
            # grad of A (m, k) = G @ B^T; stored as A's view: transposed when ta
            if not ta:
                lines.append("np.dot(%s, %s, %s)" % (G, B if tb else B + ".T", o))
            else:
                lines.append("np.dot(%s, %s.T, %s)" % (B + ".T" if tb else B, G, o))
        else:
            lines.append("%s = %s.reshape(%s.shape)" % (o, out, B))
            if not tb:
                lines.append("np.dot(%s, %s, %s)" % (A if ta else A + ".T", G, o))
            else:
                lines.append("np.dot(%s.T, %s, %s)" % (G, A + ".T" if ta else A, o))
        return lines
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
    """One np.dot per batch entry; N-D operands (N > 3) viewed as (prod of the batch axes,
    rows, cols)."""
    nd = ctx.in_ndim[0]
    if nd < 3 or ctx.in_ndim != [nd, nd]:
        return None
    a, b = ctx.ins
    out = ctx.outs[0]
    lines = []
    if nd > 3:
        n = " * ".join("%s.shape[%d]" % (out, k) for k in range(nd - 2))
        views = []
        for v in (a, b, out):
            t = ctx.tmp("v")
            lines.append("%s = %s.reshape((%s, %s.shape[%d], %s.shape[%d]))"
                         % (t, v, n, v, nd - 2, v, nd - 1))
            views.append(t)
        a, b, out = views
    i = ctx.tmp("b")
    A = "%s[%s]%s" % (a, i, ".T" if ctx.attrs["transpose_a"] else "")
    B = "%s[%s]%s" % (b, i, ".T" if ctx.attrs["transpose_b"] else "")
    return lines + ["for %s in range(%s.shape[0]):" % (i, out),
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


def _lower_emb_lookup(ctx):
    """Rows of the table copied by index (indices clipped into the table as eager); the
    indices flat, the output as (indices, output_dim)."""
    if ctx.in_ndim[1] != 2:
        return None
    d, w, out = ctx.ins[0], ctx.ins[1], ctx.outs[0]
    return ["%s(%s.reshape(-1), %s, %s.reshape((%s.size, %s.shape[1])))"
            % (ctx.fn("embedding_fwd"), d, w, out, d, w)]


def _lower_emb_bwd(ctx):
    """The weight gradient: a zero table, rows of ograd added at their (clipped) indices."""
    if ctx.in_ndim[2] != 2:
        return None
    g, d, out = ctx.ins[0], ctx.ins[1], ctx.outs[0]
    return ["%s(%s.reshape((%s.size, %s.shape[1])), %s.reshape(-1), %s)"
            % (ctx.fn("embedding_bwd"), g, d, out, d, out)]


# any_dtype: the indices may be integers (or another float type than the table's)
_EMB_LOWERING = KernelCall(_lower_emb_lookup, uses=("embedding_fwd",), any_dtype=True)


register("Embedding", inputs=("data", "weight"),
         attrs={"input_dim": Attr("int"), "output_dim": Attr("int"),
                "dtype": Attr("dtype", "float32"), "sparse_grad": _BOOL_F},
         infer_shape=_emb_infer, infer_type=_emb_type,
         forward=lambda attrs, ins, ctx: [np.ascontiguousarray(ins[1][_emb_index(ins[0], ins[1].shape[0])])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             None, F._backward_Embedding(og[0], ins[0], ins[1]) if grad_needed(ctx, 1) else None],
         lowering=_EMB_LOWERING,
         samples=lambda rng: [Sample([np.array([[0.0, 2.0], [2.0, 4.0]]), _rand(rng, (5, 3))],
                                     {"input_dim": 5, "output_dim": 3, "dtype": "float64"}),
                              Sample([np.array([1.0, 7.0, -2.0, 1.0]), _rand(rng, (5, 2))],
                                     {"input_dim": 5, "output_dim": 2, "dtype": "float64"}),
                              Sample([np.array([[3, 0, 4], [1, 1, 2]], dtype=np.int32), _rand(rng, (5, 2))],
                                     {"input_dim": 5, "output_dim": 2, "dtype": "float64"})],
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
         forward=_emb_bwd_fwd, gradient=_emb_bwd_grad,
         lowering=KernelCall(_lower_emb_bwd, uses=("embedding_bwd",), any_dtype=True),
         samples=lambda rng: [Sample([_rand(rng, (2, 2, 3)), np.array([[0.0, 2.0], [2.0, 4.0]]),
                                      _rand(rng, (5, 3))]),
                              Sample([_rand(rng, (3, 2)), np.array([4, 0, 4], dtype=np.int64),
                                      _rand(rng, (5, 2))])],
         doc="Embedding weight gradient: rows of ograd summed into a zero table shaped like "
             "weight (repeated indices accumulate).")

register("_nn_embedding_lookup", inputs=("data", "weight"),
         infer_shape=lambda attrs, ins: (ins, [None if ins[0] is None or ins[1] is None
                                               else tuple(ins[0]) + (ins[1][1],)]),
         infer_type=lambda attrs, ins: (ins, [ins[1]]),
         forward=lambda attrs, ins, ctx: [np.ascontiguousarray(ins[1][_emb_index(ins[0], ins[1].shape[0])])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             None, F._backward_Embedding(og[0], ins[0], ins[1]) if grad_needed(ctx, 1) else None],
         lowering=_EMB_LOWERING,
         samples=lambda rng: [Sample([np.array([[0.0, 2.0], [2.0, 4.0]]), _rand(rng, (5, 3))])],
         doc="Embedding without its attrs (the table's shape decides): used by the second-order "
             "gradient of _backward_Embedding.")
