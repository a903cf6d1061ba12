"""Linear algebra on the last two axes (batched over the leading ones): MXNet 1.x's
``_linalg_*`` operators, as ``mx.nd.linalg.<name>`` / ``mx.sym.linalg.<name>`` and
``linalg_<name>``.

gemm (``alpha op(A) op(B) + beta C``), gemm2 (``alpha op(A) op(B)``), potrf (lower Cholesky
factor; its gradient is the symmetric one, both triangles filled, as MXNet's), potri (the
inverse from a Cholesky factor), trsm / trmm (triangular solve / multiply, ``rightside``,
``transpose``, ``lower``, ``alpha``), sumlogdiag, syrk (``alpha A A^T`` or ``A^T A``),
inverse, det, extractdiag / makediag.  ``potrf`` of a matrix that is not positive definite
raises MXNetError.  Gradients of gemm, gemm2, syrk and inverse are written with these ops;
the factorisations have dedicated backward ops.
"""
import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt

_B = Attr("bool", False)


def _t(x, flag):
    return np.swapaxes(x, -1, -2) if flag else x


def _rand(rng, shape):
    return rng.uniform(-1, 1, size=shape)


def _spd(rng, n, batch=()):
    m = rng.uniform(-1, 1, size=batch + (n, n))
    return m @ np.swapaxes(m, -1, -2) + n * np.eye(n)


def _check_mat(op, what, s):
    if s is not None and len(s) < 2:
        raise MXNetError("%s: %s must have at least 2 dimensions, got %s" % (op, what, fmt(s)))


def _mm_shape(op, a, b, ta, tb):
    _check_mat(op, "A", a)
    _check_mat(op, "B", b)
    if a is None or b is None:
        return None
    m, k = (a[-1], a[-2]) if ta else (a[-2], a[-1])
    k2, n = (b[-1], b[-2]) if tb else (b[-2], b[-1])
    if k != k2 or tuple(a[:-2]) != tuple(b[:-2]):
        raise MXNetError("%s: incompatible shapes A %s and B %s (transpose_a=%s, transpose_b=%s)"
                         % (op, fmt(a), fmt(b), ta, tb))
    return tuple(a[:-2]) + (m, n)


def _gemm2_infer(attrs, ins):
    return ins, [_mm_shape("_linalg_gemm2", ins[0], ins[1], attrs["transpose_a"], attrs["transpose_b"])]


def _gemm2_fwd(attrs, ins, ctx):
    a, b = ins
    _mm_shape("_linalg_gemm2", a.shape, b.shape, attrs["transpose_a"], attrs["transpose_b"])
    out = attrs["alpha"] * np.matmul(_t(a, attrs["transpose_a"]), _t(b, attrs["transpose_b"]))
    return [out.astype(a.dtype)]


def _mm_grads(F, og, a, b, ta, tb, alpha):
    """Gradients of alpha * op(A) op(B) for head gradient og, with gemm2 itself."""
    if ta:
        ga = F._linalg_gemm2(b, og, transpose_a=tb, transpose_b=True, alpha=alpha)
    else:
        ga = F._linalg_gemm2(og, b, transpose_b=not tb, alpha=alpha)
    if tb:
        gb = F._linalg_gemm2(og, a, transpose_a=True, transpose_b=ta, alpha=alpha)
    else:
        gb = F._linalg_gemm2(a, og, transpose_a=not ta, alpha=alpha)
    return ga, gb


def _lower_gemm(has_c):
    """gemm2 / gemm inside ``mx.jit``: the operands viewed as (batch, rows, cols), one np.dot
    (BLAS) per batch entry into the output, then ``alpha * out (+ beta * C)`` in one loop
    over it (the eager kernel's order).  Only the default axis (the last two)."""
    def lower(ctx):
        nd = ctx.in_ndim[0]
        if nd < 2 or ctx.in_ndim[1] != nd or ctx.attrs["axis"] not in (-2, nd - 2):
            return None
        a, b = ctx.ins[:2]
        out = ctx.outs[0]
        ta, tb = ctx.attrs["transpose_a"], ctx.attrs["transpose_b"]
        n = ctx.tmp("n")
        lines = ["%s = %s" % (n, " * ".join(["1"] + ["%s.shape[%d]" % (out, k)
                                                     for k in range(nd - 2)]))]

        def view3(v):
            t = ctx.tmp("v")
            lines.append("%s = %s.reshape((%s, %s.shape[%d], %s.shape[%d]))"
                         % (t, v, n, v, nd - 2, v, nd - 1))
            return t
        A, B, O = view3(a), view3(b), view3(out)
        C = view3(ctx.ins[2]) if has_c else None
        i, r, c = ctx.tmp("i"), ctx.tmp("r"), ctx.tmp("c")
        lines += ["for %s in range(%s):" % (i, n),
                  "    np.dot(%s[%s]%s, %s[%s]%s, %s[%s])" % (A, i, ".T" if ta else "", B, i,
                                                          ".T" if tb else "", O, i)]
        alpha = ctx.attrs["alpha"]
        if alpha != 1.0 or has_c:
            rhs = "%s * %s[%s, %s, %s]" % (ctx.const(alpha), O, i, r, c)
            if has_c:
                rhs += " + %s * %s[%s, %s, %s]" % (ctx.const(ctx.attrs["beta"]), C, i, r, c)
            lines += ["    for %s in range(%s.shape[1]):" % (r, O),
                      "        for %s in range(%s.shape[2]):" % (c, O),
                      "            %s[%s, %s, %s] = %s" % (O, i, r, c, rhs)]
        return lines
    return lower


register("_linalg_gemm2", inputs=("A", "B"),
         attrs={"transpose_a": _B, "transpose_b": _B, "alpha": Attr("float", 1.0),
                "axis": Attr("int", -2)},
         infer_shape=_gemm2_infer, forward=_gemm2_fwd, aliases=("linalg_gemm2",),
         gradient=lambda F, attrs, ins, outs, og, ctx: list(_mm_grads(
             F, og[0], ins[0], ins[1], attrs["transpose_a"], attrs["transpose_b"], attrs["alpha"])),
         lowering=_lower_gemm(False),
         doc="alpha * op(A) @ op(B) on the last two axes.",
         samples=lambda rng: [Sample([_rand(rng, (2, 3)), _rand(rng, (3, 4))], {"alpha": 2.0}),
                              Sample([_rand(rng, (3, 2)), _rand(rng, (4, 3))],
                                     {"transpose_a": True, "transpose_b": True}),
                              Sample([_rand(rng, (2, 2, 3)), _rand(rng, (2, 3, 2))]),
                              Sample([_rand(rng, (3, 1, 2, 3)), _rand(rng, (3, 1, 2, 4))],
                                     {"transpose_a": True, "alpha": -0.5})])


def _gemm_infer(attrs, ins):
    s = _mm_shape("_linalg_gemm", ins[0], ins[1], attrs["transpose_a"], attrs["transpose_b"])
    c = ins[2]
    if s is not None and c is not None and tuple(c) != s:
        raise MXNetError("_linalg_gemm: C has shape %s, op(A) op(B) has %s" % (fmt(c), fmt(s)))
    s = s if s is not None else c
    return [ins[0], ins[1], s], [s]


register("_linalg_gemm", inputs=("A", "B", "C"),
         attrs={"transpose_a": _B, "transpose_b": _B, "alpha": Attr("float", 1.0),
                "beta": Attr("float", 1.0), "axis": Attr("int", -2)},
         infer_shape=_gemm_infer, aliases=("linalg_gemm",),
         forward=lambda attrs, ins, ctx: [(attrs["alpha"] * np.matmul(
             _t(ins[0], attrs["transpose_a"]), _t(ins[1], attrs["transpose_b"]))
             + attrs["beta"] * ins[2]).astype(ins[0].dtype)],
         gradient=lambda F, attrs, ins, outs, og, ctx: list(_mm_grads(
             F, og[0], ins[0], ins[1], attrs["transpose_a"], attrs["transpose_b"], attrs["alpha"]))
         + [F._mul_scalar(og[0], scalar=attrs["beta"])],
         lowering=_lower_gemm(True), doc="alpha * op(A) @ op(B) + beta * C on the last two axes.",
         samples=lambda rng: [Sample([_rand(rng, (2, 3)), _rand(rng, (3, 4)), _rand(rng, (2, 4))],
                                     {"alpha": 1.5, "beta": 0.5}),
                              Sample([_rand(rng, (2, 1, 4, 3)), _rand(rng, (2, 1, 2, 4)),
                                      _rand(rng, (2, 1, 3, 2))],
                                     {"transpose_a": True, "transpose_b": True, "beta": -1.0})])


def _square(op, s):
    _check_mat(op, "A", s)
    if s is not None and s[-1] != s[-2]:
        raise MXNetError("%s: A must be square in its last two axes, got %s" % (op, fmt(s)))


def _same_square(op):
    def infer(attrs, ins):
        _square(op, ins[0])
        return ins, [ins[0]]
    return infer


def _potrf_fwd(attrs, ins, ctx):
    a = ins[0]
    _square("_linalg_potrf", a.shape)
    try:
        low = np.linalg.cholesky(a.astype(np.float64))
    except np.linalg.LinAlgError:
        raise MXNetError("_linalg_potrf: the input is not (numerically) symmetric positive "
                         "definite") from None
    return [(low if attrs["lower"] else _t(low, True)).astype(a.dtype)]


def _potrf_back(attrs, ins, ctx):
    g, low = ins
    g = g.astype(np.float64)
    L = low.astype(np.float64)
    if not attrs["lower"]:
        g, L = _t(g, True), _t(L, True)
    P = np.tril(_t(L, True) @ g)
    P = P - 0.5 * np.eye(P.shape[-1]) * P          # Phi: lower triangle, diagonal halved
    Linv = np.linalg.inv(L)
    S = _t(Linv, True) @ P @ Linv
    return [(0.5 * (S + _t(S, True))).astype(ins[0].dtype)]


register("_linalg_potrf", inputs=("A",), attrs={"lower": Attr("bool", True)},
         infer_shape=_same_square("_linalg_potrf"), forward=_potrf_fwd, aliases=("linalg_potrf",),
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._backward_linalg_potrf(og[0], outs[0], lower=attrs["lower"])],
         lowerable=False, second_order=False, grad_check=False,
         doc="The Cholesky factor L (lower) with A = L L^T.",
         samples=lambda rng: [Sample([_spd(rng, 3)]), Sample([_spd(rng, 2, (2,))])])

register("_backward_linalg_potrf", inputs=("ograd", "L"), attrs={"lower": Attr("bool", True)},
         infer_shape=lambda attrs, ins: (ins, [ins[1]]), forward=_potrf_back,
         gradient=lambda F, attrs, ins, outs, og, ctx: [None, None], differentiable=False,
         lowerable=False, grad_check=False,
         doc="potrf's gradient: sym(L^-T Phi(L^T dL) L^-1), Phi = lower triangle, halved diagonal.",
         samples=lambda rng: [Sample([np.tril(_rand(rng, (3, 3))), np.linalg.cholesky(_spd(rng, 3))])])


def _potri_fwd(attrs, ins, ctx):
    L = ins[0].astype(np.float64)
    A = L @ _t(L, True) if attrs["lower"] else _t(L, True) @ L
    return [np.linalg.inv(A).astype(ins[0].dtype)]


def _potri_back(attrs, ins, ctx):
    g, L, y = (x.astype(np.float64) for x in ins)
    # y = (L L^T)^-1: dL = -(y (g + g^T) y) L   (lower)
    gs = g + _t(g, True)
    if attrs["lower"]:
        dL = -(y @ gs @ y) @ L
        dL = np.tril(dL)
    else:
        dL = -L @ (y @ gs @ y)
        dL = np.triu(dL)
    return [dL.astype(ins[0].dtype)]


register("_linalg_potri", inputs=("A",), attrs={"lower": Attr("bool", True)},
         infer_shape=_same_square("_linalg_potri"), forward=_potri_fwd, aliases=("linalg_potri",),
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._backward_linalg_potri(og[0], ins[0], outs[0], lower=attrs["lower"])],
         lowerable=False, second_order=False, grad_check=False,
         doc="(L L^T)^-1 from a Cholesky factor L.",
         samples=lambda rng: [Sample([np.linalg.cholesky(_spd(rng, 3))])])

register("_backward_linalg_potri", inputs=("ograd", "L", "out"), attrs={"lower": Attr("bool", True)},
         infer_shape=lambda attrs, ins: (ins, [ins[1]]), forward=_potri_back,
         gradient=lambda F, attrs, ins, outs, og, ctx: [None, None, None], differentiable=False,
         lowerable=False, grad_check=False, doc="potri's gradient.",
         samples=lambda rng: [Sample([_rand(rng, (3, 3)), np.linalg.cholesky(_spd(rng, 3)),
                                      np.linalg.inv(_spd(rng, 3))])])


_TR_ATTRS = {"transpose": _B, "rightside": _B, "lower": Attr("bool", True),
             "alpha": Attr("float", 1.0)}


def _tri(attrs, a):
    a = np.tril(a) if attrs["lower"] else np.triu(a)
    return _t(a, attrs["transpose"])


def _tr_infer(op):
    def infer(attrs, ins):
        _square(op, ins[0])
        _check_mat(op, "B", ins[1])
        a, b = ins
        if a is not None and b is not None:
            n = b[-1] if attrs["rightside"] else b[-2]
            if a[-1] != n:
                raise MXNetError("%s: A %s does not fit B %s (rightside=%s)"
                                 % (op, fmt(a), fmt(b), attrs["rightside"]))
        return ins, [ins[1]]
    return infer


def _trsm_fwd(attrs, ins, ctx):
    a, b = (x.astype(np.float64) for x in ins)
    A = _tri(attrs, a)
    if attrs["rightside"]:          # X A = alpha B  ->  A^T X^T = alpha B^T
        x = _t(np.linalg.solve(_t(A, True), _t(attrs["alpha"] * b, True)), True)
    else:
        x = np.linalg.solve(A, attrs["alpha"] * b)
    return [x.astype(ins[1].dtype)]


def _trsm_back(attrs, ins, ctx):
    g, a, x = (v.astype(np.float64) for v in ins)
    A = _tri(attrs, a)
    if attrs["rightside"]:          # X = alpha B A^-1
        gb = _t(np.linalg.solve(A, _t(g, True)), True) * attrs["alpha"]
        gA = -_t(x, True) @ _t(np.linalg.solve(A, _t(g, True)), True)
    else:                           # X = alpha A^-1 B
        y = np.linalg.solve(_t(A, True), g)
        gb = attrs["alpha"] * y
        gA = -y @ _t(x, True)
    if attrs["transpose"]:
        gA = _t(gA, True)
    gA = np.tril(gA) if attrs["lower"] else np.triu(gA)
    return [gA.astype(ins[1].dtype), gb.astype(ins[1].dtype)]


register("_linalg_trsm", inputs=("A", "B"), attrs=dict(_TR_ATTRS),
         infer_shape=_tr_infer("_linalg_trsm"), forward=_trsm_fwd, aliases=("linalg_trsm",),
         gradient=lambda F, attrs, ins, outs, og, ctx: list(F._backward_linalg_trsm(
             og[0], ins[0], outs[0], **attrs)),
         lowerable=False, second_order=False,
         doc="Solves op(A) X = alpha B (or X op(A) = alpha B with rightside) for triangular A.",
         samples=lambda rng: [Sample([np.linalg.cholesky(_spd(rng, 3)), _rand(rng, (3, 2))]),
                              Sample([np.linalg.cholesky(_spd(rng, 3)), _rand(rng, (2, 3))],
                                     {"rightside": True, "transpose": True, "alpha": 2.0})])

register("_backward_linalg_trsm", inputs=("ograd", "A", "out"), attrs=dict(_TR_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [ins[1], ins[2]]), forward=_trsm_back,
         num_outputs=2, gradient=lambda F, attrs, ins, outs, og, ctx: [None, None, None],
         differentiable=False, lowerable=False, grad_check=False, doc="trsm's gradients.",
         samples=lambda rng: [Sample([_rand(rng, (3, 2)), np.linalg.cholesky(_spd(rng, 3)),
                                      _rand(rng, (3, 2))])])


def _trmm_fwd(attrs, ins, ctx):
    a, b = ins
    A = _tri(attrs, a)
    out = b @ A if attrs["rightside"] else A @ b
    return [(attrs["alpha"] * out).astype(b.dtype)]


def _trmm_back(attrs, ins, ctx):
    g, a, b = ins
    A = _tri(attrs, a)
    al = attrs["alpha"]
    if attrs["rightside"]:          # Y = alpha B A
        gb = al * g @ _t(A, True)
        gA = al * _t(b, True) @ g
    else:                           # Y = alpha A B
        gb = al * _t(A, True) @ g
        gA = al * g @ _t(b, True)
    if attrs["transpose"]:
        gA = _t(gA, True)
    gA = np.tril(gA) if attrs["lower"] else np.triu(gA)
    return [gA.astype(b.dtype), gb.astype(b.dtype)]


register("_linalg_trmm", inputs=("A", "B"), attrs=dict(_TR_ATTRS),
         infer_shape=_tr_infer("_linalg_trmm"), forward=_trmm_fwd, aliases=("linalg_trmm",),
         gradient=lambda F, attrs, ins, outs, og, ctx: list(F._backward_linalg_trmm(
             og[0], ins[0], ins[1], **attrs)),
         lowerable=False, second_order=False,
         doc="alpha op(A) B (or alpha B op(A) with rightside) for triangular A.",
         samples=lambda rng: [Sample([_rand(rng, (3, 3)), _rand(rng, (3, 2))]),
                              Sample([_rand(rng, (3, 3)), _rand(rng, (2, 3))],
                                     {"rightside": True, "lower": False, "alpha": 0.5})])

register("_backward_linalg_trmm", inputs=("ograd", "A", "B"), attrs=dict(_TR_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [ins[1], ins[2]]), forward=_trmm_back,
         num_outputs=2, gradient=lambda F, attrs, ins, outs, og, ctx: [None, None, None],
         differentiable=False, lowerable=False, grad_check=False, doc="trmm's gradients.",
         samples=lambda rng: [Sample([_rand(rng, (3, 2)), _rand(rng, (3, 3)), _rand(rng, (3, 2))])])


def _sld_infer(attrs, ins):
    _square("_linalg_sumlogdiag", ins[0])
    a = ins[0]
    return ins, [None if a is None else (tuple(a[:-2]) or (1,))]


def _sld_fwd(attrs, ins, ctx):
    a = ins[0]
    out = np.sum(np.log(np.diagonal(a, axis1=-2, axis2=-1)), axis=-1)
    return [np.asarray(out, dtype=a.dtype).reshape(a.shape[:-2] or (1,))]


def _sld_back(attrs, ins, ctx):
    g, a = ins
    d = np.diagonal(a, axis1=-2, axis2=-1)
    out = np.zeros_like(a)
    idx = np.arange(a.shape[-1])
    out[..., idx, idx] = g.reshape(a.shape[:-2] + (1,)) / d
    return [out]


register("_linalg_sumlogdiag", inputs=("A",), infer_shape=_sld_infer, forward=_sld_fwd,
         aliases=("linalg_sumlogdiag",),
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._backward_linalg_sumlogdiag(og[0], ins[0])],
         lowerable=False, second_order=False,
         doc="sum(log(diag(A))) per matrix (shape (1,) for one matrix).",
         samples=lambda rng: [Sample([_spd(rng, 3)]), Sample([_spd(rng, 2, (3,))])])

register("_backward_linalg_sumlogdiag", inputs=("ograd", "A"),
         infer_shape=lambda attrs, ins: (ins, [ins[1]]), forward=_sld_back,
         gradient=lambda F, attrs, ins, outs, og, ctx: [None, None], differentiable=False,
         lowerable=False, grad_check=False, doc="sumlogdiag's gradient: g / diag on the diagonal.",
         samples=lambda rng: [Sample([_rand(rng, (1,)), _spd(rng, 3)])])


def _syrk_infer(attrs, ins):
    a = ins[0]
    _check_mat("_linalg_syrk", "A", a)
    if a is None:
        return ins, [None]
    n = a[-1] if attrs["transpose"] else a[-2]
    return ins, [tuple(a[:-2]) + (n, n)]


register("_linalg_syrk", inputs=("A",), attrs={"transpose": _B, "alpha": Attr("float", 1.0)},
         infer_shape=_syrk_infer, aliases=("linalg_syrk",),
         forward=lambda attrs, ins, ctx: [(attrs["alpha"] * (
             np.matmul(_t(ins[0], True), ins[0]) if attrs["transpose"]
             else np.matmul(ins[0], _t(ins[0], True)))).astype(ins[0].dtype)],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._linalg_gemm2(ins[0], F.elemwise_add(og[0], F.swapaxes(og[0], dim1=-1, dim2=-2)),
                             alpha=attrs["alpha"])
             if attrs["transpose"] else
             F._linalg_gemm2(F.elemwise_add(og[0], F.swapaxes(og[0], dim1=-1, dim2=-2)), ins[0],
                             alpha=attrs["alpha"])],
         lowerable=False, doc="alpha A A^T (or alpha A^T A with transpose).",
         samples=lambda rng: [Sample([_rand(rng, (2, 3))]),
                              Sample([_rand(rng, (2, 3))], {"transpose": True, "alpha": 2.0})])


def _inv_fwd(attrs, ins, ctx):
    a = ins[0]
    _square("_linalg_inverse", a.shape)
    try:
        return [np.linalg.inv(a.astype(np.float64)).astype(a.dtype)]
    except np.linalg.LinAlgError:
        raise MXNetError("_linalg_inverse: the matrix is singular") from None


register("_linalg_inverse", inputs=("A",), infer_shape=_same_square("_linalg_inverse"),
         forward=_inv_fwd, aliases=("linalg_inverse",),
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._linalg_gemm2(
             F._linalg_gemm2(outs[0], og[0], transpose_a=True), outs[0], transpose_b=True,
             alpha=-1.0)],
         lowerable=False, doc="The matrix inverse.",
         samples=lambda rng: [Sample([_spd(rng, 3)])])


def _det_infer(attrs, ins):
    _square("_linalg_det", ins[0])
    a = ins[0]
    return ins, [None if a is None else (tuple(a[:-2]) or (1,))]


register("_linalg_det", inputs=("A",), infer_shape=_det_infer, aliases=("linalg_det",),
         forward=lambda attrs, ins, ctx: [np.asarray(np.linalg.det(ins[0]), dtype=ins[0].dtype)
                                          .reshape(ins[0].shape[:-2] or (1,))],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.broadcast_mul(
             F.swapaxes(F._linalg_inverse(ins[0]), dim1=-1, dim2=-2),
             F.expand_dims(F.expand_dims(F.elemwise_mul(og[0], outs[0]), axis=-1), axis=-1))],
         lowerable=False, second_order=False, grad_check=False,
         doc="The determinant per matrix (shape (1,) for one matrix).",
         samples=lambda rng: [Sample([_spd(rng, 3, (2,))])])


# -- slogdet -----------------------------------------------------------------------------------
def _slogdet_infer(attrs, ins):
    _square("_linalg_slogdet", ins[0])
    a = ins[0]
    s = None if a is None else (tuple(a[:-2]) or (1,))
    return ins, [s, s]


def _slogdet_fwd(attrs, ins, ctx):
    a = ins[0]
    sign, logabs = np.linalg.slogdet(a)
    shp = a.shape[:-2] or (1,)
    return [np.asarray(sign, dtype=a.dtype).reshape(shp),
            np.asarray(logabs, dtype=a.dtype).reshape(shp)]


register("_linalg_slogdet", inputs=("A",), infer_shape=_slogdet_infer, num_outputs=2,
         aliases=("linalg_slogdet",), forward=_slogdet_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.broadcast_mul(
             F.swapaxes(F._linalg_inverse(ins[0]), dim1=-1, dim2=-2),
             F.expand_dims(F.expand_dims(og[1], axis=-1), axis=-1))],
         lowerable=False, second_order=False, grad_check=False,
         doc="(sign, log|det|) per matrix; only log|det| passes a gradient (inverse-transpose).",
         samples=lambda rng: [Sample([_spd(rng, 3, (2,))])])


# -- extractdiag / makediag / extracttrian / maketrian -------------------------------------------
_OFF = {"offset": Attr("int", 0)}
_TRIAN = {"offset": Attr("int", 0), "lower": Attr("bool", True)}


def _need_ndim(op, s, k, what):
    if s is not None and len(s) < k:
        raise MXNetError("%s: %s must have at least %d dimensions, got shape %s"
                         % (op, what, k, tuple(s)))


def _extractdiag_infer(attrs, ins):
    a = ins[0]
    _need_ndim("_linalg_extractdiag", a, 2, "A")
    if a is None:
        return ins, [None]
    k = attrs["offset"]
    n = max(0, min(a[-2], a[-1] - k)) if k >= 0 else max(0, min(a[-2] + k, a[-1]))
    return ins, [tuple(a[:-2]) + (n,)]


def _makediag_np(g, k):
    n = g.shape[-1] + abs(k)
    out = np.zeros(g.shape[:-1] + (n, n), dtype=g.dtype)
    i = np.arange(g.shape[-1])
    r, c = (i, i + k) if k >= 0 else (i - k, i)
    out[..., r, c] = g
    return out


register("_linalg_extractdiag", inputs=("A",), attrs=dict(_OFF), aliases=("linalg_extractdiag",),
         infer_shape=_extractdiag_infer,
         forward=lambda attrs, ins, ctx: [np.diagonal(ins[0], attrs["offset"], -2, -1).copy()],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._linalg_makediag(og[0], offset=attrs["offset"])],
         lowerable=False, second_order=False,
         doc="The diagonal ``offset`` of each (square) matrix.",
         samples=lambda rng: [Sample([_rand(rng, (3, 3))]),
                              Sample([_rand(rng, (2, 3, 3))], {"offset": 1})])


def _makediag_infer(attrs, ins):
    a = ins[0]
    _need_ndim("_linalg_makediag", a, 1, "A")
    if a is None:
        return ins, [None]
    n = a[-1] + abs(attrs["offset"])
    return ins, [tuple(a[:-1]) + (n, n)]


register("_linalg_makediag", inputs=("A",), attrs=dict(_OFF), aliases=("linalg_makediag",),
         infer_shape=_makediag_infer,
         forward=lambda attrs, ins, ctx: [_makediag_np(ins[0], attrs["offset"])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._linalg_extractdiag(og[0], offset=attrs["offset"])],
         lowerable=False, second_order=False,
         doc="Square matrices with the last axis of A on diagonal ``offset``.",
         samples=lambda rng: [Sample([_rand(rng, (3,))]),
                              Sample([_rand(rng, (2, 3))], {"offset": -1})])


def _trian_index(n, attrs):
    """(transposed?, rows, cols): MXNet stores the lower triangle row by row; the upper one
    (offset > 0, or offset 0 with lower=False) column by column, i.e. the transpose's lower
    triangle row by row."""
    k = attrs["offset"]
    upper = k > 0 or (k == 0 and not attrs["lower"])
    r, c = np.tril_indices(n, -abs(k))
    return upper, r, c


def _extracttrian_np(attrs, a):
    upper, r, c = _trian_index(a.shape[-1], attrs)
    m = np.swapaxes(a, -1, -2) if upper else a
    return np.ascontiguousarray(m[..., r, c])


def _maketrian_n(attrs, length):
    m = int(round((np.sqrt(8 * length + 1) - 1) / 2))
    if m * (m + 1) // 2 != length:
        raise MXNetError("_linalg_maketrian: the last axis (%d) is not a triangular number"
                         % length)
    return m + abs(attrs["offset"])


def _maketrian_np(attrs, g):
    n = _maketrian_n(attrs, g.shape[-1])
    upper, r, c = _trian_index(n, attrs)
    out = np.zeros(g.shape[:-1] + (n, n), dtype=g.dtype)
    if upper:
        out[..., c, r] = g
    else:
        out[..., r, c] = g
    return out


def _extracttrian_infer(attrs, ins):
    a = ins[0]
    _need_ndim("_linalg_extracttrian", a, 2, "A")
    _square("_linalg_extracttrian", a)
    if a is None:
        return ins, [None]
    m = a[-1] - abs(attrs["offset"])
    return ins, [tuple(a[:-2]) + (max(m, 0) * (max(m, 0) + 1) // 2,)]


def _maketrian_infer(attrs, ins):
    a = ins[0]
    _need_ndim("_linalg_maketrian", a, 1, "A")
    if a is None:
        return ins, [None]
    n = _maketrian_n(attrs, a[-1])
    return ins, [tuple(a[:-1]) + (n, n)]


register("_linalg_extracttrian", inputs=("A",), attrs=dict(_TRIAN),
         aliases=("linalg_extracttrian",), infer_shape=_extracttrian_infer,
         forward=lambda attrs, ins, ctx: [_extracttrian_np(attrs, ins[0])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._linalg_maketrian(og[0], offset=attrs["offset"], lower=attrs["lower"])],
         lowerable=False, second_order=False,
         doc="The triangle (``offset``/``lower``) of each square matrix as a flat vector.",
         samples=lambda rng: [Sample([_rand(rng, (3, 3))]),
                              Sample([_rand(rng, (2, 4, 4))], {"offset": 1}),
                              Sample([_rand(rng, (4, 4))], {"lower": False})])
register("_linalg_maketrian", inputs=("A",), attrs=dict(_TRIAN),
         aliases=("linalg_maketrian",), infer_shape=_maketrian_infer,
         forward=lambda attrs, ins, ctx: [_maketrian_np(attrs, ins[0])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._linalg_extracttrian(og[0], offset=attrs["offset"], lower=attrs["lower"])],
         lowerable=False, second_order=False,
         doc="Square matrices holding the flat triangle A (``offset``/``lower``), zeros "
             "elsewhere.",
         samples=lambda rng: [Sample([_rand(rng, (6,))]),
                              Sample([_rand(rng, (2, 3))], {"offset": -1}),
                              Sample([_rand(rng, (6,))], {"lower": False})])


# -- gelqf / syevd (forward only: no gradient is defined here for either) ---------------------
def _gelqf_infer(attrs, ins):
    a = ins[0]
    _need_ndim("_linalg_gelqf", a, 2, "A")
    if a is None:
        return ins, [None, None]
    if a[-2] > a[-1]:
        raise MXNetError("_linalg_gelqf: A must have at most as many rows as columns, got %s"
                         % (tuple(a),))
    return ins, [tuple(a), tuple(a[:-1]) + (a[-2],)]


def _gelqf_fwd(attrs, ins, ctx):
    # A = L Q is the transpose of A^T = Q^T L^T (a Householder QR of A^T: LAPACK's signs)
    a = ins[0]
    q, r = np.linalg.qr(np.swapaxes(a, -1, -2))
    return [np.ascontiguousarray(np.swapaxes(q, -1, -2)).astype(a.dtype),
            np.ascontiguousarray(np.swapaxes(r, -1, -2)).astype(a.dtype)]


register("_linalg_gelqf", inputs=("A",), infer_shape=_gelqf_infer, num_outputs=2,
         aliases=("linalg_gelqf",), forward=_gelqf_fwd, gradient=None, differentiable=False,
         lowerable=False, grad_check=False,
         doc="LQ factorisation A = L Q (Q with orthonormal rows, L lower triangular); "
             "outputs (Q, L).",
         samples=lambda rng: [Sample([_rand(rng, (2, 3))])])


def _syevd_infer(attrs, ins):
    _square("_linalg_syevd", ins[0])
    a = ins[0]
    return ins, [None, None] if a is None else [tuple(a), tuple(a[:-1])]


def _syevd_fwd(attrs, ins, ctx):
    a = ins[0]
    w, v = np.linalg.eigh(a)
    return [np.ascontiguousarray(np.swapaxes(v, -1, -2)).astype(a.dtype), w.astype(a.dtype)]


register("_linalg_syevd", inputs=("A",), infer_shape=_syevd_infer, num_outputs=2,
         aliases=("linalg_syevd",), forward=_syevd_fwd, gradient=None, differentiable=False,
         lowerable=False, grad_check=False,
         doc="Symmetric eigendecomposition A = U^T diag(L) U (rows of U are eigenvectors, "
             "L ascending); outputs (U, L).  An eigenvector's sign is LAPACK's and may differ "
             "from MXNet's build.",
         samples=lambda rng: [Sample([_spd(rng, 3)])])
