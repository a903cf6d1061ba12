"""Axis permutations: transpose, expand_dims, squeeze, SwapAxis, reverse.
"""
import numpy as np
from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, merge_shape
from ._shape_util import _axis, _new_axis, _rand
from .shape_reshape import _reshape_like_grad


# ---------------------------------------------------------------------------------------
# transpose, expand_dims, squeeze, SwapAxis, reverse
# ---------------------------------------------------------------------------------------
def _perm(op, axes, ndim):
    if not axes:
        return tuple(range(ndim))[::-1]
    if len(axes) != ndim:
        raise MXNetError("%s: axes=%s must list all %d axes of the input" % (op, tuple(axes), ndim))
    p = tuple(_axis(op, a, ndim, "axes") for a in axes)
    if sorted(p) != list(range(ndim)):
        raise MXNetError("%s: axes=%s is not a permutation of the input's axes" % (op, tuple(axes)))
    return p


def _transpose_infer(attrs, ins, outs=None):
    """Both ways (MXNet's TransposeShape fills the input from the output too)."""
    s = ins[0]
    o = outs[0] if outs else None
    if s is None and o is None:
        return ins, [None]
    p = _perm("transpose", attrs["axes"], len(s if s is not None else o))
    if o is not None:
        back = [0] * len(o)
        for k, i in enumerate(p):
            back[i] = o[k]
        s = merge_shape("transpose", "data", s, tuple(back))
    return [s], [tuple(s[i] for i in p)]


def _transpose_grad(F, attrs, ins, outs, og, ctx):
    axes = attrs["axes"]
    if not axes:
        return [F.transpose(og[0])]
    n = len(axes)
    inv = tuple(int(i) for i in np.argsort([a % n for a in axes]))
    return [F.transpose(og[0], axes=inv)]


def _lower_transpose(ctx):
    """A loop nest over the output reading the input at the permuted index."""
    nd = ctx.in_ndim[0]
    if nd == 0:
        return None
    return _lower_permute(ctx, _perm("transpose", ctx.attrs["axes"], nd))


def _lower_permute(ctx, perm):
    from ._lowering import loop_nest, index_expr
    nd = len(perm)
    out = ctx.outs[0]
    lines, idx, ind = loop_nest(out, nd, None, ctx)
    src = [None] * nd
    for k, j in enumerate(perm):
        src[j] = idx[k]
    lines.append("%s%s = %s" % (ind, index_expr(out, idx), index_expr(ctx.ins[0], src)))
    return lines


register("transpose", inputs=("data",),
         attrs={"axes": Attr("shape", (), doc="permutation (default: reverse the axes)")},
         infer_shape=_transpose_infer,
         forward=lambda attrs, ins, ctx: [np.ascontiguousarray(
             np.transpose(ins[0], _perm("transpose", attrs["axes"], ins[0].ndim)))],
         gradient=_transpose_grad, lowering=_lower_transpose,
         samples=lambda rng: [Sample([_rand(rng, (2, 3))]),
                              Sample([_rand(rng, (2, 3, 4))], {"axes": (2, 0, 1)}),
                              Sample([_rand(rng, (2, 3, 4))], {"axes": (1, -1, 0)})],
         doc="Permute the axes (default: reverse them).")


def _expand_infer(attrs, ins, outs=None):
    """Both ways (ExpandDimShape fills the input from the output)."""
    s = ins[0]
    o = outs[0] if outs else None
    if s is None and o is not None and len(o) >= 1:
        a = _new_axis("expand_dims", attrs["axis"], len(o) - 1)
        s = tuple(o[:a]) + tuple(o[a + 1:])
    return [s], [_expand_shape("expand_dims", s, attrs["axis"])]


def _expand_shape(op, s, axis):
    if s is None:
        return None
    a = _new_axis(op, axis, len(s))
    return tuple(s[:a]) + (1,) + tuple(s[a:])


register("expand_dims", inputs=("data",), attrs={"axis": Attr("int", doc="position of the new axis")},
         infer_shape=lambda attrs, ins, outs=None: _expand_infer(attrs, ins, outs),
         forward=lambda attrs, ins, ctx: [ins[0].reshape(
             _expand_shape("expand_dims", ins[0].shape, attrs["axis"])).copy()],
         gradient=_reshape_like_grad, lowering="view",
         samples=lambda rng: [Sample([_rand(rng, (2, 3))], {"axis": 1}),
                              Sample([_rand(rng, (2, 3))], {"axis": -1}),
                              Sample([_rand(rng, (2, 3))], {"axis": 0})],
         doc="Insert an axis of size 1 at ``axis`` (in [-ndim-1, ndim]).")


def _squeeze_shape(s, axis):
    if s is None:
        return None
    n = len(s)
    if axis is None:
        drop = {i for i, d in enumerate(s) if d == 1}
    else:
        given = (axis,) if isinstance(axis, int) else tuple(axis)
        drop = set()
        for a in given:
            b = _axis("squeeze", a, n)
            if s[b] != 1:
                raise MXNetError("squeeze: cannot squeeze axis %d of shape %s: its size is not 1"
                                 % (a, fmt(s)))
            drop.add(b)
    out = tuple(d for i, d in enumerate(s) if i not in drop)
    return out or (1,)


register("squeeze", inputs=("data",),
         attrs={"axis": Attr("axis", None, doc="axes of size 1 to remove (None: all)")},
         infer_shape=lambda attrs, ins: (ins, [_squeeze_shape(ins[0], attrs["axis"])]),
         forward=lambda attrs, ins, ctx: [ins[0].reshape(_squeeze_shape(ins[0].shape, attrs["axis"])).copy()],
         gradient=_reshape_like_grad, lowering="view",
         samples=lambda rng: [Sample([_rand(rng, (2, 1, 3, 1))]),
                              Sample([_rand(rng, (2, 1, 3, 1))], {"axis": 1}),
                              Sample([_rand(rng, (2, 1, 3, 1))], {"axis": (1, -1)}),
                              Sample([_rand(rng, (1, 1))])],
         doc="Remove axes of size 1 (all of them by default; shape (1,) if none would remain).")


def _lower_swap(ctx):
    nd = ctx.in_ndim[0]
    a = _axis("SwapAxis", ctx.attrs["dim1"], nd, "dim1")
    b = _axis("SwapAxis", ctx.attrs["dim2"], nd, "dim2")
    perm = list(range(nd))
    perm[a], perm[b] = perm[b], perm[a]
    return _lower_permute(ctx, perm)


def _swap_shape(s, d1, d2):
    if s is None:
        return None
    a, b = _axis("SwapAxis", d1, len(s), "dim1"), _axis("SwapAxis", d2, len(s), "dim2")
    out = list(s)
    out[a], out[b] = out[b], out[a]
    return tuple(out)


def _swap_fwd(attrs, ins, ctx):
    x = ins[0]
    a = _axis("SwapAxis", attrs["dim1"], x.ndim, "dim1")
    b = _axis("SwapAxis", attrs["dim2"], x.ndim, "dim2")
    return [np.ascontiguousarray(np.swapaxes(x, a, b))]


register("SwapAxis", inputs=("data",),
         attrs={"dim1": Attr("int", 0), "dim2": Attr("int", 0)}, aliases=("swapaxes",),
         infer_shape=lambda attrs, ins: (ins, [_swap_shape(ins[0], attrs["dim1"], attrs["dim2"])]),
         forward=_swap_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F.SwapAxis(og[0], dim1=attrs["dim1"], dim2=attrs["dim2"])],
         lowering=_lower_swap,
         samples=lambda rng: [Sample([_rand(rng, (2, 3))], {"dim1": 0, "dim2": 1}),
                              Sample([_rand(rng, (2, 3, 4))], {"dim1": 2, "dim2": -3})],
         doc="Swap two axes.")


def _lower_reverse(ctx):
    from ._shape_lower import assign, index_key
    nd = ctx.in_ndim[0]
    axes = _rev_axes("reverse", ctx.attrs["axis"], nd)
    return [assign(ctx.outs[0], ctx.ins[0] + index_key(nd, {a: "::-1" for a in axes}))]


def _rev_axes(op, axis, ndim):
    given = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(_axis(op, a, ndim) for a in given)


def _rev_infer(attrs, ins):
    if ins[0] is not None:
        _rev_axes("reverse", attrs["axis"], len(ins[0]))
    return ins, [ins[0]]


register("reverse", inputs=("data",), attrs={"axis": Attr("shape", doc="axes to reverse")},
         aliases=("flip",), infer_shape=_rev_infer,
         forward=lambda attrs, ins, ctx: [np.ascontiguousarray(
             np.flip(ins[0], _rev_axes("reverse", attrs["axis"], ins[0].ndim)))],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.reverse(og[0], axis=attrs["axis"])],
         lowering=_lower_reverse,
         samples=lambda rng: [Sample([_rand(rng, (2, 3))], {"axis": 1}),
                              Sample([_rand(rng, (2, 3, 4))], {"axis": (0, 2)})],
         doc="Reverse the order of elements along the given axes.")
