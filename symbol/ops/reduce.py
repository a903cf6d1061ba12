"""Reductions: sum, mean, max, min, prod, nansum, nanprod, norm, argmax, argmin.

Note: reduce-shape
    MXNet 1.9.1's reduction shape rule (``ReduceAxesShapeImpl``) differs from NumPy's:

    * ``axis`` is None or ``()``: reduce over every axis and ignore ``exclude``;
    * negative axes count from the end; duplicates and out-of-range axes are errors;
    * ``exclude=True`` reduces over the axes *not* listed;
    * ``keepdims=True`` keeps every reduced axis with size 1;
    * a reduction that removes every axis returns shape ``(1,)``, never ``()``.

    Gradients broadcast the head gradient back with :func:`_broadcast_reduced` (the internal
    op ``_broadcast_reduced``), which needs the reduced input only for its shape, so the same
    rule works for exported backward graphs whose shapes are not known yet.
"""
import math

import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt

__all__ = ["reduce_axes", "reduced_shape"]


def _rand(rng, shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape)


def _keep(out, like):
    out = np.asarray(out)
    if out.dtype != like.dtype:
        out = out.astype(like.dtype)
    return out


def reduce_axes(op, ndim, axis, exclude=False):
    """The sorted tuple of axes a reduction over ``axis`` (None, int or tuple) removes."""
    if axis is None or axis == ():
        return tuple(range(ndim))
    given = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = []
    for a in given:
        b = a + ndim if a < 0 else a
        if not 0 <= b < ndim:
            raise MXNetError("%s: reduction axis %d is out of range for an input with %d "
                             "dimensions" % (op, a, ndim))
        axes.append(b)
    if len(set(axes)) != len(axes):
        raise MXNetError("%s: reduction axes have duplicates: axis=%s" % (op, given))
    if exclude:
        return tuple(i for i in range(ndim) if i not in axes)
    return tuple(sorted(axes))


def reduced_shape(op, shape, axis, keepdims, exclude=False):
    """Output shape of a reduction (see the module note *reduce-shape*); None if unknown."""
    if shape is None:
        return None
    axes = reduce_axes(op, len(shape), axis, exclude)
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    out = tuple(d for i, d in enumerate(shape) if i not in axes)
    return out or (1,)


def _kw(attrs, names):
    """The reduction attrs to pass on to another op, omitting defaults."""
    out = {}
    for n in names:
        v = attrs.get(n)
        if n == "axis":
            if v is not None:
                out[n] = v
        elif v:
            out[n] = v
    return out


_RED_KEYS = ("axis", "keepdims", "exclude")


def _reduce_attrs():
    return {"axis": Attr("axis", None, doc="axis or axes to reduce (None: all)"),
            "keepdims": Attr("bool", False, doc="keep reduced axes with size 1"),
            "exclude": Attr("bool", False, doc="reduce over the axes not listed")}


def _reduce_infer(name):
    def infer(attrs, ins):
        return ins, [reduced_shape(name, ins[0], attrs["axis"], attrs["keepdims"],
                                   attrs["exclude"])]
    return infer


def _np_reduce(name, fn, quiet=False):
    """NumPy forward of a reduction; ``quiet`` silences invalid-value warnings (NaN-aware
    reductions) -- np.errstate costs microseconds, so only where needed."""
    def forward(attrs, ins, ctx):
        x = ins[0]
        # axes and output shape memoised per (parsed attrs object, input shape); the attrs
        # object is kept in the entry and checked, so a recycled id never matches
        key = (id(attrs), x.shape)
        e = plans.get(key)
        if e is None or e[0] is not attrs:
            axes = reduce_axes(name, x.ndim, attrs["axis"], attrs["exclude"])
            keep = attrs["keepdims"]
            if keep:
                out = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
            else:
                out = tuple(d for i, d in enumerate(x.shape) if i not in axes) or (1,)
            direct = not keep and len(out) == x.ndim - len(axes)   # no reshape needed
            if len(plans) > 256:
                plans.clear()
            e = plans[key] = (attrs, axes, out, direct)
        _a, axes, out, direct = e
        if x.ndim == 0:
            return [_keep(np.reshape(x, out), x)]
        if quiet:
            with np.errstate(invalid="ignore"):
                r = fn(x, axis=axes, keepdims=True)
        elif method is not None:
            if direct:
                r = method(x, axes)                 # already the output shape
                if type(r) is np.ndarray and r.dtype is x.dtype:
                    return [r]
                return [_keep(r, x)]
            r = method(x, axes, None, None, True)   # ndarray.sum(axis, dtype, out, keepdims)
        else:
            r = fn(x, axis=axes, keepdims=True)
        return [_keep(r.reshape(out), x)]
    # the ndarray methods skip NumPy's function dispatch (microseconds on small arrays)
    method = {np.sum: np.ndarray.sum, np.mean: np.ndarray.mean, np.prod: np.ndarray.prod}.get(fn)
    plans = {}
    return forward


def _bcast(F, g, x, attrs, mean=False):
    kw = _kw(attrs, _RED_KEYS)
    if mean:
        kw["mean"] = True
    return F._broadcast_reduced(g, x, **kw)


def _reduce_samples(rng):
    return [Sample([_rand(rng, (2, 3, 4))]),
            Sample([_rand(rng, (2, 3, 4))], {"axis": 1}),
            Sample([_rand(rng, (2, 3, 4))], {"axis": (0, 2), "keepdims": True}),
            Sample([_rand(rng, (2, 3, 4))], {"axis": -1, "exclude": True}),
            Sample([_rand(rng, (2, 3, 4))], {"axis": (0, 1), "exclude": True, "keepdims": True}),
            Sample([_rand(rng, (5,))], {"keepdims": True})]


def _positive_samples(rng):
    """Inputs bounded away from zero (prod's gradient divides nowhere, but finite
    differences of a product of many small numbers are poorly conditioned)."""
    s = _reduce_samples(rng)
    out = []
    for smp in s:
        x = smp.inputs[0]
        out.append(Sample([np.sign(x) * (0.5 + np.abs(x) / 2)], smp.attrs))
    return out


def _distinct_samples(rng):
    """Inputs without ties, so max/min are differentiable at the sample."""
    out = []
    for smp in _reduce_samples(rng):
        x = smp.inputs[0]
        perm = rng.permutation(x.size).reshape(x.shape).astype(np.float64)
        out.append(Sample([perm * 0.25 + rng.uniform(0, 0.01, x.shape)], smp.attrs))
    return out


# ---------------------------------------------------------------------------------------
# sum, mean, max, min, prod, nansum, nanprod
# ---------------------------------------------------------------------------------------
def _lower_sum(mean):
    """Reductions over one contiguous block of axes: the input viewed as (outer, reduced,
    inner) and summed by a library kernel; other axis sets run eagerly."""
    def lower(ctx):
        nd = ctx.in_ndim[0]
        a = ctx.attrs
        if nd == 0:
            return None
        axes = reduce_axes("sum", nd, a["axis"], a["exclude"])
        x, out = ctx.ins[0], ctx.outs[0]
        if not axes:
            return ["%s(%s, %s)" % (ctx.fn("copy_into"), x, out)]
        def prod(ks):
            return " * ".join(["1"] + ["%s.shape[%d]" % (x, k) for k in ks])
        if list(axes) != list(range(axes[0], axes[-1] + 1)):
            kept = [k for k in range(nd) if k not in axes]
            if len(kept) != 1 or mean:
                return None
            # every axis but one (a convolution's bias gradient): outer and inner summed
            # around it (agjit.compiler.kernels_nn)
            k = kept[0]
            return ["%s(%s.reshape((%s, %s.shape[%d], %s)), %s.reshape((%s.shape[%d],)))"
                    % (ctx.fn("reduce_sum_keep_mid"), x, prod(range(k)), x, k,
                       prod(range(k + 1, nd)), out, x, k)]
        o, r, i = ctx.tmp("o"), ctx.tmp("r"), ctx.tmp("n")
        return ["%s = %s" % (o, prod(range(axes[0]))),
                "%s = %s" % (r, prod(range(axes[0], axes[-1] + 1))),
                "%s = %s" % (i, prod(range(axes[-1] + 1, nd))),
                "%s(%s.reshape((%s, %s, %s)), %s.reshape((%s, %s)), %s)"
                % (ctx.fn("reduce_sum_3d"), x, o, r, i, out, o, i, "1.0 / %s" % r if mean else "1.0")]
    return lower


def _reduction(mean):
    from ._lowering import Reduction
    return Reduction(_lower_sum(mean), mean=mean,
                     uses=("copy_into", "reduce_sum_3d", "reduce_sum_keep_mid"),
                     axes=lambda attrs, nd: reduce_axes("sum", nd, attrs["axis"], attrs["exclude"]))


register("sum", inputs=("data",), attrs=_reduce_attrs(), aliases=("sum_axis",),
         infer_shape=_reduce_infer("sum"), forward=_np_reduce("sum", np.sum), eager_infer=False,
         gradient=lambda F, attrs, ins, outs, og, ctx: [_bcast(F, og[0], ins[0], attrs)],
         lowering=_reduction(False), samples=_reduce_samples,
         doc="Sum over the given axes (MXNet ``sum``; a full reduction returns shape (1,)).")

register("mean", inputs=("data",), attrs=_reduce_attrs(),
         infer_shape=_reduce_infer("mean"), forward=_np_reduce("mean", np.mean), eager_infer=False,
         gradient=lambda F, attrs, ins, outs, og, ctx: [_bcast(F, og[0], ins[0], attrs, mean=True)],
         lowering=_reduction(True), samples=_reduce_samples,
         doc="Mean over the given axes.")


def _extreme_grad(F, attrs, ins, outs, og, ctx):
    # MXNet: every position equal to the result receives the full head gradient (ties too).
    x = ins[0]
    mask = F._equal(x, _bcast(F, outs[0], x, attrs))
    return [F.elemwise_mul(_bcast(F, og[0], x, attrs), mask)]


register("max", inputs=("data",), attrs=_reduce_attrs(), aliases=("max_axis",),
         infer_shape=_reduce_infer("max"), forward=_np_reduce("max", np.max), eager_infer=False,
         gradient=_extreme_grad, lowerable=False, samples=_distinct_samples,
         doc="Maximum over the given axes; the gradient flows to every maximal position.")

register("min", inputs=("data",), attrs=_reduce_attrs(), aliases=("min_axis",),
         infer_shape=_reduce_infer("min"), forward=_np_reduce("min", np.min), eager_infer=False,
         gradient=_extreme_grad, lowerable=False, samples=_distinct_samples,
         doc="Minimum over the given axes; the gradient flows to every minimal position.")


def _prod_grad(F, attrs, ins, outs, og, ctx):
    x = ins[0]
    others = F._prod_others(x, **_kw(attrs, ("axis", "exclude")))
    return [F.elemwise_mul(_bcast(F, og[0], x, attrs), others)]


register("prod", inputs=("data",), attrs=_reduce_attrs(),
         infer_shape=_reduce_infer("prod"), forward=_np_reduce("prod", np.prod), eager_infer=False,
         gradient=_prod_grad, lowerable=False, samples=_positive_samples,
         doc="Product over the given axes; the gradient is the product of the other "
             "elements (exact when the input holds zeros).")

register("nansum", inputs=("data",), attrs=_reduce_attrs(),
         infer_shape=_reduce_infer("nansum"), forward=_np_reduce("nansum", np.nansum, quiet=True), eager_infer=False,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F.elemwise_mul(_bcast(F, og[0], ins[0], attrs), F._equal(ins[0], ins[0]))],
         lowerable=False, samples=_reduce_samples,
         doc="Sum treating NaN as zero; NaN positions get zero gradient.")


def _nanprod_grad(F, attrs, ins, outs, og, ctx):
    x = ins[0]
    finite = F._equal(x, x)                       # 0 where x is NaN
    x1 = F.where(finite, x, F.ones_like(x))
    others = F._prod_others(x1, **_kw(attrs, ("axis", "exclude")))
    return [F.elemwise_mul(F.elemwise_mul(_bcast(F, og[0], x, attrs), others), finite)]


register("nanprod", inputs=("data",), attrs=_reduce_attrs(),
         infer_shape=_reduce_infer("nanprod"), forward=_np_reduce("nanprod", np.nanprod, quiet=True), eager_infer=False,
         gradient=_nanprod_grad, lowerable=False, samples=_positive_samples,
         doc="Product treating NaN as one; NaN positions get zero gradient.")


# ---------------------------------------------------------------------------------------
# gradient helpers
# ---------------------------------------------------------------------------------------
def _br_infer(attrs, ins):
    g, like = ins
    if like is not None:
        want = reduced_shape("_broadcast_reduced", like, attrs["axis"], attrs["keepdims"],
                             attrs["exclude"])
        if g is not None and 0 not in g and 0 not in want and \
                math.prod(g) != math.prod(want):
            raise MXNetError("_broadcast_reduced: data shape %s does not match the reduced "
                             "shape %s of %s" % (fmt(g), fmt(want), fmt(like)))
    return ins, [like]


def _br_fwd(attrs, ins, ctx):
    g, like = ins
    shape = like.shape
    axes = reduce_axes("_broadcast_reduced", len(shape), attrs["axis"], attrs["exclude"])
    keep = tuple(1 if i in axes else d for i, d in enumerate(shape))
    out = np.broadcast_to(np.reshape(g, keep), shape)
    if attrs["mean"]:
        n = math.prod([shape[a] for a in axes]) if axes else 1
        if n:
            out = out / n
    return [np.ascontiguousarray(_keep(out, g))]


def _br_grad(F, attrs, ins, outs, og, ctx):
    red = F.mean if attrs["mean"] else F.sum
    return [red(og[0], **_kw(attrs, _RED_KEYS)), None]


def _br_samples(rng):
    return [Sample([_rand(rng, (1,)), _rand(rng, (2, 3))]),
            Sample([_rand(rng, (2,)), _rand(rng, (2, 3))], {"axis": 1}),
            Sample([_rand(rng, (2, 1, 4)), _rand(rng, (2, 3, 4))], {"axis": 1, "keepdims": True}),
            Sample([_rand(rng, (3,)), _rand(rng, (2, 3, 4))], {"axis": 1, "exclude": True,
                                                               "mean": True})]


def _lower_broadcast_reduced(ctx):
    """Loops over ``like``'s shape reading the reduced value (index 0 on reduced axes)."""
    from ._lowering import loop_nest, index_expr
    a = ctx.attrs
    g, like = ctx.ins
    out = ctx.outs[0]
    nd = ctx.in_ndim[1]
    if nd == 0:
        return None
    axes = reduce_axes("_broadcast_reduced", nd, a["axis"], a["exclude"])
    gs = tuple(ctx.in_shapes[0])
    keep = tuple(1 if k in axes else d for k, d in enumerate(ctx.in_shapes[1]))
    if not a["mean"] and (gs == (1,) or gs == keep):
        return "{0}"                    # right-aligned broadcast: fuses with its consumers
    gk = ctx.tmp("g")
    keep = ["1" if k in axes else "%s.shape[%d]" % (like, k) for k in range(nd)]
    lines = ["%s = %s.reshape((%s,))" % (gk, g, ", ".join(keep))]
    scale = ""
    if a["mean"]:
        sc = ctx.tmp("s")
        lines.append("%s = 1.0 / max(1, %s)" % (sc, " * ".join(
            ["1"] + ["%s.shape[%d]" % (like, k) for k in axes])))
        scale = " * " + sc
    loops, idx, ind = loop_nest(out, nd, None, ctx)
    lines += loops
    src = ["0" if k in axes else idx[k] for k in range(nd)]
    lines.append("%s%s = %s%s" % (ind, index_expr(out, idx), index_expr(gk, src), scale))
    return lines


register("_broadcast_reduced", inputs=("data", "like"),
         attrs={"axis": Attr("axis", None), "keepdims": Attr("bool", False),
                "exclude": Attr("bool", False),
                "mean": Attr("bool", False, doc="divide by the number of reduced elements")},
         infer_shape=_br_infer, infer_type=lambda attrs, ins: (ins, [ins[0]]),
         forward=_br_fwd, gradient=_br_grad, lowering=_lower_broadcast_reduced, samples=_br_samples,
         doc="Broadcast the result of a reduction of ``like`` (same axis/keepdims/exclude) "
             "back to ``like``'s shape; the gradient of sum/mean/max/min/prod/norm.")


def _prod_others_np(x, axes):
    """For every element, the product of the other elements of its reduction group, computed
    with exclusive prefix/suffix products so zeros are handled exactly."""
    if not axes:
        return np.ones_like(x)
    rest = [i for i in range(x.ndim) if i not in axes]
    perm = rest + list(axes)
    xt = np.transpose(x, perm)
    lead = xt.shape[:len(rest)]
    flat = xt.reshape(lead + (-1,))
    k = flat.shape[-1]
    ones = np.ones(lead + (1,), dtype=x.dtype)
    left = np.concatenate([ones, np.cumprod(flat[..., :k - 1], axis=-1)], axis=-1)
    right = np.concatenate([np.cumprod(flat[..., :0:-1], axis=-1)[..., ::-1], ones], axis=-1)
    res = (left * right).reshape(xt.shape)
    return np.ascontiguousarray(np.transpose(res, np.argsort(perm)))


def _po_fwd(attrs, ins, ctx):
    x = ins[0]
    axes = reduce_axes("_prod_others", x.ndim, attrs["axis"], attrs["exclude"])
    return [_keep(_prod_others_np(x, axes), x)]


def _po_grad(F, attrs, ins, outs, og, ctx):
    # d P_i / d x_j = P_i / x_j for j != i (and 0 for j == i), so
    # grad_j = (sum_i og_i P_i - og_j P_j) / x_j; exact away from zeros.
    x, p = ins[0], outs[0]
    kw = _kw(attrs, ("axis", "exclude"))
    t = F.elemwise_mul(og[0], p)
    s = F._broadcast_reduced(F.sum(t, **kw), x, **kw)
    return [F.elemwise_div(F.elemwise_sub(s, t), x)]


register("_prod_others", inputs=("data",),
         attrs={"axis": Attr("axis", None), "exclude": Attr("bool", False)},
         infer_shape=lambda attrs, ins: (ins, [ins[0]]), forward=_po_fwd, gradient=_po_grad,
         lowerable=False,
         samples=lambda rng: [Sample([s.inputs[0]], {k: v for k, v in s.attrs.items()
                                                      if k != "keepdims"})
                              for s in _positive_samples(rng)],
         doc="Product of the other elements of each reduction group (gradient of prod).")


# ---------------------------------------------------------------------------------------
# norm
# ---------------------------------------------------------------------------------------
def _norm_check(attrs):
    if attrs["ord"] not in (1, 2):
        raise MXNetError("norm: ord=%d is not supported; only ord=1 and ord=2 are" % attrs["ord"])


def _norm_infer(attrs, ins):
    _norm_check(attrs)
    return ins, [reduced_shape("norm", ins[0], attrs["axis"], attrs["keepdims"])]


def _norm_type(attrs, ins):
    t = attrs["out_dtype"] or ins[0]
    return ins, [t]


def _norm_fwd(attrs, ins, ctx):
    _norm_check(attrs)
    x = ins[0]
    axes = reduce_axes("norm", x.ndim, attrs["axis"])
    out = reduced_shape("norm", x.shape, attrs["axis"], attrs["keepdims"])
    if attrs["ord"] == 1:
        r = np.sum(np.abs(x), axis=axes, keepdims=True)
    else:
        r = np.sqrt(np.sum(np.square(x), axis=axes, keepdims=True))
    r = np.reshape(r, out)
    dt = np.dtype(attrs["out_dtype"]) if attrs["out_dtype"] else x.dtype
    return [np.asarray(r).astype(dt, copy=False)]


def _norm_grad(F, attrs, ins, outs, og, ctx):
    x = ins[0]
    kw = _kw(attrs, ("axis", "keepdims"))
    g, y = og[0], outs[0]
    if attrs["out_dtype"]:
        g, y = F._cast_like(g, x), F._cast_like(y, x)
    gb = F._broadcast_reduced(g, x, **kw)
    if attrs["ord"] == 1:
        return [F.elemwise_mul(gb, F.sign(x))]
    # MXNet: x / norm (NaN for an all-zero group, as in MXNet)
    return [F.elemwise_mul(gb, F.elemwise_div(x, F._broadcast_reduced(y, x, **kw)))]


register("norm", inputs=("data",),
         attrs={"ord": Attr("int", 2, doc="1 or 2"),
                "axis": Attr("axis", None, doc="axes to reduce (None: all)"),
                "out_dtype": Attr("dtype", None, doc="output dtype (default: input's)"),
                "keepdims": Attr("bool", False)},
         infer_shape=_norm_infer, infer_type=_norm_type, forward=_norm_fwd,
         gradient=_norm_grad, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 3))]),
                              Sample([_rand(rng, (2, 3))], {"ord": 1}),
                              Sample([_rand(rng, (2, 3, 4))], {"axis": 1, "keepdims": True}),
                              Sample([_rand(rng, (2, 3, 4))], {"axis": (0, 2)}),
                              Sample([_rand(rng, (2, 3))], {"ord": 1, "axis": -1})],
         doc="L1 or L2 norm over the given axes (no axis: the flattened input, shape (1,)).")


# ---------------------------------------------------------------------------------------
# argmax / argmin
# ---------------------------------------------------------------------------------------
def _arg_shape(op, shape, axis, keepdims):
    if shape is None:
        return None
    if axis is None:
        return (1,) * len(shape) if keepdims else (1,)
    n = len(shape)
    a = axis + n if axis < 0 else axis
    if not 0 <= a < max(n, 1):
        raise MXNetError("%s: axis=%d is out of range for an input of shape %s"
                         % (op, axis, fmt(shape)))
    if keepdims:
        return tuple(1 if i == a else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i != a) or (1,)


def _arg_op(name, fn):
    def infer(attrs, ins):
        return ins, [_arg_shape(name, ins[0], attrs["axis"], attrs["keepdims"])]

    def forward(attrs, ins, ctx):
        x = ins[0]
        out = _arg_shape(name, x.shape, attrs["axis"], attrs["keepdims"])
        if x.size == 0:
            raise MXNetError("%s: cannot search an empty array of shape %s" % (name, fmt(x.shape)))
        if attrs["axis"] is None or x.ndim == 0:
            r = fn(x.reshape(-1))
        else:
            r = fn(x, axis=attrs["axis"])
        # MXNet returns the indices in the input's dtype
        return [np.reshape(np.asarray(r), out).astype(x.dtype)]

    register(name, inputs=("data",),
             attrs={"axis": Attr("int_or_none", None, doc="axis to search (None: flattened)"),
                    "keepdims": Attr("bool", False)},
             infer_shape=infer, forward=forward,
             # MXNet registers a zero gradient (MakeZeroGradNodes)
             gradient=lambda F, attrs, ins, outs, og, ctx: [F.zeros_like(ins[0])],
             grad_check=False, lowerable=False,
             samples=lambda rng: [Sample([_rand(rng, (3, 4))]),
                                  Sample([_rand(rng, (3, 4))], {"axis": 1}),
                                  Sample([_rand(rng, (2, 3, 4))], {"axis": 0, "keepdims": True}),
                                  Sample([_rand(rng, (2, 3))], {"axis": -1})],
             doc="Index of the %s along an axis, in the input's dtype (zero gradient)."
                 % ("maximum" if name == "argmax" else "minimum"))


_arg_op("argmax", np.argmax)
_arg_op("argmin", np.argmin)
