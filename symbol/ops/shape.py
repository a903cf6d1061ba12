"""Shape manipulation and selection: Reshape, Flatten, transpose, expand_dims, squeeze, SwapAxis,
reverse, slice, slice_axis, Concat, SliceChannel, stack, broadcast_to, broadcast_axis, tile,
repeat, pick, one_hot, take, reshape_like, and the internal scatter ops their gradients use.

Note: scatter-gradients
    Selection ops (slice, slice_axis, pick, take) and shape-replicating ops (Concat, tile,
    repeat) need the *shape of their input* in the gradient.  A gradient rule cannot read
    shapes (``F`` may be the symbol builder, whose values have no shape yet), so each rule
    passes the forward input as a ``like`` operand to a registered helper op
    (``_slice_assign``, ``_slice_axis_scatter``, ``_pick_scatter``, ``_take_scatter``,
    ``_concat_slice``, ``_tile_sum``, ``_repeat_sum``).  Each helper's own gradient is the
    forward selection again, so higher-order gradients stay in registered ops.
"""
import math

import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, same_shape, merge_shape

__all__ = ["resolve_reshape", "slice_ranges"]


def _rand(rng, shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape)


def _known(s):
    return s is not None and 0 not in s


def _axis(op, axis, ndim, name="axis"):
    """Normalise an axis in [-ndim, ndim)."""
    a = axis + ndim if axis < 0 else axis
    if not 0 <= a < ndim:
        raise MXNetError("%s: %s=%d is out of range for an input with %d dimensions"
                         % (op, name, axis, ndim))
    return a


def _new_axis(op, axis, ndim):
    """Normalise the position of a new axis inserted into an ``ndim``-d input: [-ndim-1, ndim]."""
    a = axis + ndim + 1 if axis < 0 else axis
    if not 0 <= a <= ndim:
        raise MXNetError("%s: axis=%d is out of range [%d, %d] for a new axis of an input with %d "
                         "dimensions" % (op, axis, -ndim - 1, ndim, ndim))
    return a


def _first_type(attrs, ins):
    """Output dtype follows the first input; the other inputs (indices, likes) are free."""
    return ins, [ins[0]]


def _like_infer(op):
    """infer_shape of a helper ``(data, ..., like)`` whose output has ``like``'s shape."""
    def infer(attrs, ins):
        return ins, [ins[-1]]
    return infer


# ---------------------------------------------------------------------------------------
# Reshape
# ---------------------------------------------------------------------------------------
def resolve_reshape(op, src, shape, reverse=False):
    """Resolve MXNet's special reshape codes against the input shape ``src``.

    ``0`` copies the matching input dimension, ``-1`` infers one dimension, ``-2`` copies all
    remaining dimensions, ``-3`` merges two input dimensions, ``-4 a b`` splits one input
    dimension into ``a x b`` (one of them may be -1).  ``reverse`` matches the codes from the
    right.  Raises MXNetError naming ``op`` and the shapes on any inconsistency.

    >>> resolve_reshape("Reshape", (2, 3, 4), (0, -1))
    (2, 12)
    """
    if not reverse and all(type(d) is int and d > 0 for d in shape) and \
            math.prod(shape) == math.prod(src):
        return tuple(shape)             # nothing to resolve (the common case)
    src = tuple(int(d) for d in src)
    shape = tuple(int(s) for s in shape)
    if reverse:
        r = resolve_reshape(op, src[::-1], shape[::-1])
        return r[::-1]
    out = []
    i = 0       # position in src
    j = 0
    infer_at = -1
    while j < len(shape):
        s = shape[j]
        if s > 0:
            out.append(s)
            i += 1
        elif s == 0:
            if i >= len(src):
                raise MXNetError("%s: shape code 0 at position %d has no matching input dimension "
                                 "(input shape %s, shape %s)" % (op, j, fmt(src), shape))
            out.append(src[i])
            i += 1
        elif s == -1:
            if infer_at >= 0:
                raise MXNetError("%s: only one -1 is allowed in shape %s" % (op, shape))
            infer_at = len(out)
            out.append(-1)
            i += 1
        elif s == -2:
            out.extend(src[i:])
            i = len(src)
        elif s == -3:
            if i + 1 >= len(src):
                raise MXNetError("%s: shape code -3 needs two input dimensions (input shape %s, "
                                 "shape %s)" % (op, fmt(src), shape))
            out.append(src[i] * src[i + 1])
            i += 2
        elif s == -4:
            if j + 2 >= len(shape) or i >= len(src):
                raise MXNetError("%s: shape code -4 must be followed by two dimensions and match "
                                 "an input dimension (input shape %s, shape %s)"
                                 % (op, fmt(src), shape))
            d = src[i]
            a, b = shape[j + 1], shape[j + 2]
            if a == -1 and b == -1:
                raise MXNetError("%s: the two dimensions after -4 cannot both be -1 (shape %s)"
                                 % (op, shape))
            if a == -1 and b > 0:
                a = d // b
            elif b == -1 and a > 0:
                b = d // a
            if a * b != d:
                raise MXNetError("%s: cannot split dimension %d of input shape %s into %d x %d"
                                 % (op, d, fmt(src), a, b))
            out.extend([a, b])
            i += 1
            j += 2
        else:
            raise MXNetError("%s: invalid shape code %d in %s" % (op, s, shape))
        j += 1
    total = math.prod(src) if src else 1
    if infer_at >= 0:
        known = math.prod([d for k, d in enumerate(out) if k != infer_at]) if len(out) > 1 else 1
        if known == 0 or total % known:
            raise MXNetError("%s: cannot reshape array of shape %s into shape %s"
                             % (op, fmt(src), shape))
        out[infer_at] = total // known
    if math.prod(out) != total:
        raise MXNetError("%s: cannot reshape array of shape %s (size %d) into shape %s (size %d)"
                         % (op, fmt(src), total, tuple(shape), math.prod(out)))
    return tuple(out)


def _legacy_target(src, target, keep_highest):
    """MXNet's deprecated ``target_shape`` (0 = infer one dimension, keep_highest keeps dim 0)."""
    out = list(target)
    start = 0
    if keep_highest:
        out[0] = src[0]
        start = 1
    zeros = [i for i in range(start, len(out)) if out[i] == 0]
    total = math.prod(src)
    if len(zeros) == 1:
        out[zeros[0]] = 1
        rest = math.prod(out)
        out[zeros[0]] = total // rest if rest else 0
    if math.prod(out) != total:
        raise MXNetError("Reshape: cannot reshape array of shape %s into target_shape %s"
                         % (fmt(src), tuple(target)))
    return tuple(out)


def _reshape_target(attrs, src):
    shape = attrs["shape"]
    if shape:
        return resolve_reshape("Reshape", src, shape, attrs["reverse"])
    if attrs["target_shape"]:
        return _legacy_target(src, attrs["target_shape"], attrs["keep_highest"])
    raise MXNetError("Reshape: the target shape must be given (shape=...)")


def _partial_reshape(src, shape):
    """The target of ``shape`` (MXNet's special codes) for an input with unknown (0)
    dimensions: what the codes copy stays unknown, and so does -1.  None where the codes
    cannot be followed without the sizes (-4)."""
    out, i, k = [], 0, 0
    while k < len(shape):
        c = shape[k]
        if c > 0:
            out.append(c)
            i += 1
        elif c == 0:
            if i >= len(src):
                return None
            out.append(src[i])
            i += 1
        elif c == -1:
            out.append(0)
            i += 1
        elif c == -2:
            out.extend(src[i:])
            i = len(src)
        elif c == -3:
            if i + 1 >= len(src):
                return None
            out.append(src[i] * src[i + 1])
            i += 2
        else:
            return None
        k += 1
    return tuple(out)


def _reshape_back(src, out):
    """MXNet's ReverseReshapeInferShape: one unknown input dimension from a known output."""
    if src is None or out is None or not _known(out) or _known(src):
        return src
    unknown = [i for i, d in enumerate(src) if d == 0]
    if len(unknown) != 1:
        return src
    known = math.prod(d for d in src if d)
    res = list(src)
    res[unknown[0]] = math.prod(out) // known if known else 0
    return tuple(res)


def _reshape_infer(attrs, ins, outs=None):
    """MXNet's ReshapeShape: nothing before the input's rank is known; the target from the
    input (agjit keeps the size check that MXNet 1.9.1 compiles out, so a mismatch is an
    error here, not a wrong shape); one unknown input dimension back from the output."""
    src = ins[0]
    o = outs[0] if outs else None
    if src is None:
        return ins, [None]
    if not _known(src):
        shape = attrs["shape"]
        out = _partial_reshape(src, shape) if shape and not attrs["reverse"] else None
        if out is not None and o is not None and len(o) == len(out):
            out = merge_shape("Reshape", "output", out, o)
        elif o is not None and out is None:
            out = o
        return [_reshape_back(src, out)], [out]
    return ins, [_reshape_target(attrs, src)]


def _reshape_like_grad(F, attrs, ins, outs, og, ctx):
    return [F.reshape_like(og[0], ins[0])]


register("Reshape", inputs=("data",),
         attrs={"shape": Attr("shape", (), doc="target shape with codes 0, -1, -2, -3, -4"),
                "reverse": Attr("bool", False, doc="match the special codes from the right"),
                "target_shape": Attr("shape", (), doc="(deprecated) target shape, 0 = infer"),
                "keep_highest": Attr("bool", False, doc="(deprecated) keep dimension 0")},
         aliases=("reshape",), infer_shape=_reshape_infer,
         forward=lambda attrs, ins, ctx: [ins[0].reshape(_reshape_target(attrs, ins[0].shape)).copy()],
         gradient=_reshape_like_grad, lowering="view",
         samples=lambda rng: [Sample([_rand(rng, (2, 3, 4))], {"shape": (6, 4)}),
                              Sample([_rand(rng, (2, 3, 4))], {"shape": (0, -1)}),
                              Sample([_rand(rng, (2, 3, 4))], {"shape": (-3, -2)}),
                              Sample([_rand(rng, (2, 3, 4))], {"shape": (-4, 1, 2, -2)}),
                              Sample([_rand(rng, (2, 3, 4))], {"shape": (-1, 0), "reverse": True}),
                              Sample([_rand(rng, (2, 3, 4))], {"target_shape": (4, 0)})],
         doc="Reshape with MXNet's special codes (see :func:`resolve_reshape`).")


def _flatten_shape(s):
    if s is None:
        return None
    if len(s) == 0:
        raise MXNetError("Flatten: input must have at least one dimension, got shape ()")
    return (s[0], math.prod(s[1:]) if len(s) > 1 else 1)


register("Flatten", inputs=("data",), aliases=("flatten",),
         infer_shape=lambda attrs, ins: (ins, [_flatten_shape(ins[0]) if _known(ins[0]) else None]),
         forward=lambda attrs, ins, ctx: [ins[0].reshape(_flatten_shape(ins[0].shape)).copy()],
         gradient=_reshape_like_grad, lowering="view",
         samples=lambda rng: [Sample([_rand(rng, (2, 3, 4))]), Sample([_rand(rng, (3,))])],
         doc="Collapse every axis after the first: (d0, d1, ..., dk) -> (d0, d1*...*dk).")


def reshape_like_shape(attrs, lhs, rhs):
    """Output shape of reshape_like: lhs[:lb] + rhs[rb:re] + lhs[le:]."""
    def rng_(b, e, n, which):
        b = 0 if b is None else (b + n if b < 0 else b)
        e = n if e is None else (e + n if e < 0 else e)
        if not 0 <= b <= e <= n:
            raise MXNetError("reshape_like: invalid %s_begin/%s_end range [%s, %s) for shape of "
                             "%d dimensions" % (which, which, b, e, n))
        return b, e
    lb, le = rng_(attrs["lhs_begin"], attrs["lhs_end"], len(lhs), "lhs")
    rb, re_ = rng_(attrs["rhs_begin"], attrs["rhs_end"], len(rhs), "rhs")
    out = tuple(lhs[:lb]) + tuple(rhs[rb:re_]) + tuple(lhs[le:])
    if _known(lhs) and _known(out) and math.prod(out) != math.prod(lhs):
        raise MXNetError("reshape_like: cannot reshape lhs of shape %s into %s (from rhs %s)"
                         % (fmt(lhs), fmt(out), fmt(rhs)))
    return out


def _rl_infer(attrs, ins):
    lhs, rhs = ins
    if lhs is None or rhs is None:
        return ins, [None]
    return ins, [reshape_like_shape(attrs, lhs, rhs)]


_NONE_INT = Attr("int_or_none", None)

register("reshape_like", inputs=("lhs", "rhs"),
         attrs={"lhs_begin": _NONE_INT, "lhs_end": _NONE_INT, "rhs_begin": _NONE_INT,
                "rhs_end": _NONE_INT},
         infer_shape=_rl_infer, infer_type=_first_type,
         forward=lambda attrs, ins, ctx: [ins[0].reshape(reshape_like_shape(attrs, ins[0].shape,
                                                                            ins[1].shape)).copy()],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.reshape_like(og[0], ins[0]), None],
         lowering="view",
         samples=lambda rng: [Sample([_rand(rng, (2, 6)), _rand(rng, (3, 4))]),
                              Sample([_rand(rng, (2, 6)), _rand(rng, (3, 2))],
                                     {"lhs_begin": 1, "rhs_begin": 0})],
         doc="Reshape lhs to the shape of rhs (or of the given sub-ranges of both shapes).")


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
    from ._lowering import loop_nest, index_expr
    nd = ctx.in_ndim[0]
    if nd == 0:
        return None
    perm = _perm("transpose", ctx.attrs["axes"], nd)
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
         lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 3))], {"dim1": 0, "dim2": 1}),
                              Sample([_rand(rng, (2, 3, 4))], {"dim1": 2, "dim2": -3})],
         doc="Swap two axes.")


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
         lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 3))], {"axis": 1}),
                              Sample([_rand(rng, (2, 3, 4))], {"axis": (0, 2)})],
         doc="Reverse the order of elements along the given axes.")


# ---------------------------------------------------------------------------------------
# slice, slice_axis (+ _slice_assign, _slice_assign_scalar, _slice_axis_scatter)
# ---------------------------------------------------------------------------------------
def slice_ranges(op, shape, begin, end, step):
    """MXNet's slice index rule (``GetIndexRange``): per-axis ``(b, e, s)`` for every axis of
    ``shape``; ``e == -1`` with a negative step means "through index 0".  Unlike Python,
    out-of-range begin/end values and empty slices are errors.

    ``begin``/``end``/``step`` are tuples of int-or-None (``begin="1"`` from NDArray
    indexing parses as ``(1,)``); axes they do not cover are taken whole.
    """
    n = len(shape)
    begin, end, step = tuple(begin), tuple(end), tuple(step or ())
    if n == 0:
        raise MXNetError("%s: cannot slice a 0-d array" % op)
    if len(begin) > n or len(end) > n:
        raise MXNetError("%s: begin=%s/end=%s have more axes than the input shape %s"
                         % (op, begin, end, fmt(shape)))
    if len(begin) != len(end):
        raise MXNetError("%s: begin=%s and end=%s must have the same length" % (op, begin, end))
    if step and len(step) != len(begin):
        raise MXNetError("%s: step=%s and begin=%s must have the same length" % (op, step, begin))
    out = []
    for i in range(n):
        length = shape[i]
        if i >= len(begin):
            out.append((0, length, 1))
            continue
        s = step[i] if step and step[i] is not None else 1
        if s == 0:
            raise MXNetError("%s: step[%d] cannot be 0" % (op, i))
        b = e = 0
        if length > 0:
            b = begin[i] if begin[i] is not None else (length - 1 if s < 0 else 0)
            e = end[i] if end[i] is not None else (-1 if s < 0 else length)
            if b < 0:
                b += length
            if not 0 <= b < length:
                raise MXNetError("%s: begin[%d]=%d exceeds the limit of input dimension %d (=%d) "
                                 "of shape %s" % (op, i, begin[i], i, length, fmt(shape)))
            if e < 0 and end[i] is not None:
                e += length
                if e < 0:
                    raise MXNetError("%s: end[%d]=%d exceeds the limit of input dimension %d "
                                     "(=%d) of shape %s" % (op, i, end[i], i, length, fmt(shape)))
            if e > length:
                raise MXNetError("%s: end[%d]=%d exceeds the limit of input dimension %d (=%d) of "
                                 "shape %s" % (op, i, end[i], i, length, fmt(shape)))
            if b == e or (s > 0 and b > e) or (s < 0 and e > b):
                raise MXNetError("%s: begin[%d]=%s, end[%d]=%s, step[%d]=%d on shape %s give an "
                                 "empty slice, which is not supported"
                                 % (op, i, begin[i], i, end[i], i, s, fmt(shape)))
        out.append((b, e, s))
    return out


def _slice_key(ranges):
    return tuple(slice(b, None if (s < 0 and e < 0) else e, s) for b, e, s in ranges)


def _slice_shape(ranges):
    out = []
    for b, e, s in ranges:
        if b == e:
            out.append(0)
        elif s > 0:
            out.append((e - b - 1) // s + 1)
        else:
            out.append((b - e - 1) // (-s) + 1)
    return tuple(out)


def _slice_infer(attrs, ins):
    s = ins[0]
    if s is None:
        return ins, [None]
    return ins, [_slice_shape(slice_ranges("slice", s, attrs["begin"], attrs["end"], attrs["step"]))]


def _slice_fwd(attrs, ins, ctx):
    x = ins[0]
    r = slice_ranges("slice", x.shape, attrs["begin"], attrs["end"], attrs["step"])
    return [np.ascontiguousarray(x[_slice_key(r)])]


def _slice_kw(attrs):
    kw = {"begin": attrs["begin"], "end": attrs["end"]}
    if attrs["step"]:
        kw["step"] = attrs["step"]
    return kw


def _slice_attrs():
    return {"begin": Attr("tuple_or_none", doc="start index per axis (None: from the start)"),
            "end": Attr("tuple_or_none", doc="stop index per axis, exclusive (None: to the end)"),
            "step": Attr("tuple_or_none", (), doc="step per axis (None: 1)")}


_SLICE_SAMPLES = [({"begin": (0, 1), "end": (2, 3)}, (3, 4)),
                  ({"begin": (1,), "end": (3,)}, (4, 5)),
                  ({"begin": (None, 1), "end": (None, 3), "step": (None, None)}, (4, 5)),
                  ({"begin": (None, None), "end": (None, None), "step": (2, None)}, (4, 5)),
                  ({"begin": (-1, None), "end": (None, 0), "step": (-1, -2)}, (3, 5)),
                  ({"begin": (1, None, 1), "end": (2, None, 3), "step": (None, None, None)}, (3, 2, 4))]

register("slice", inputs=("data",), attrs=_slice_attrs(), aliases=("crop",),
         infer_shape=_slice_infer, forward=_slice_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._slice_assign(F.zeros_like(ins[0]), og[0], **_slice_kw(attrs))],
         lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, s)], a) for a, s in _SLICE_SAMPLES],
         doc="Basic slicing with per-axis begin/end/step (MXNet semantics: out-of-range bounds "
             "and empty results are errors).")


def _sa_infer(attrs, ins):
    lhs, rhs = ins
    if lhs is not None:
        want = _slice_shape(slice_ranges("_slice_assign", lhs, attrs["begin"], attrs["end"],
                                         attrs["step"]))
        if rhs is not None and tuple(rhs) != want:
            raise MXNetError("_slice_assign: rhs shape %s does not match the slice shape %s of "
                             "lhs %s" % (fmt(rhs), fmt(want), fmt(lhs)))
        rhs = want
    return [lhs, rhs], [lhs]


def _sa_fwd(attrs, ins, ctx):
    lhs, rhs = ins
    r = slice_ranges("_slice_assign", lhs.shape, attrs["begin"], attrs["end"], attrs["step"])
    out = lhs.copy()
    out[_slice_key(r)] = rhs
    return [out]


register("_slice_assign", inputs=("lhs", "rhs"), attrs=_slice_attrs(), aliases=("_crop_assign",),
         infer_shape=_sa_infer, forward=_sa_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._slice_assign_scalar(og[0], **_slice_kw(attrs)), F.slice(og[0], **_slice_kw(attrs))],
         lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, s), _rand(rng, _slice_shape(
             slice_ranges("slice", s, a["begin"], a["end"], a.get("step", ()))))], a)
             for a, s in _SLICE_SAMPLES],
         doc="``lhs`` with the slice begin:end:step replaced by ``rhs`` (the gradient of slice).")


def _sas_fwd(attrs, ins, ctx):
    x = ins[0]
    r = slice_ranges("_slice_assign_scalar", x.shape, attrs["begin"], attrs["end"], attrs["step"])
    out = x.copy()
    out[_slice_key(r)] = attrs["scalar"]
    return [out]


def _sas_infer(attrs, ins):
    if ins[0] is not None:
        slice_ranges("_slice_assign_scalar", ins[0], attrs["begin"], attrs["end"], attrs["step"])
    return ins, [ins[0]]


_sas_attrs = {"scalar": Attr("float", 0.0, doc="value written into the slice")}
_sas_attrs.update(_slice_attrs())

register("_slice_assign_scalar", inputs=("data",), attrs=_sas_attrs,
         aliases=("_crop_assign_scalar",), infer_shape=_sas_infer, forward=_sas_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._slice_assign_scalar(og[0], **_slice_kw(attrs))],
         lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, s)], dict(a, scalar=1.5)) for a, s in _SLICE_SAMPLES],
         doc="``data`` with the slice begin:end:step set to ``scalar``.")


def slice_axis_range(op, shape, axis, begin, end):
    """MXNet's slice_axis bounds: (axis, begin, end) normalised and checked."""
    n = len(shape)
    a = _axis(op, axis, n)
    length = shape[a]
    b = begin + length if begin < 0 else begin
    if length > 0:
        e = length if end is None else (end + length if end < 0 else end)
        if e > length or not 0 <= b < e:
            raise MXNetError("%s: invalid begin=%s, end=%s for axis %d of shape %s"
                             % (op, begin, end, axis, fmt(shape)))
    else:
        b = e = 0
    return a, b, e


def _sla_infer(attrs, ins):
    s = ins[0]
    if s is None:
        return ins, [None]
    a, b, e = slice_axis_range("slice_axis", s, attrs["axis"], attrs["begin"], attrs["end"])
    out = list(s)
    out[a] = e - b
    return ins, [tuple(out)]


def _sla_fwd(attrs, ins, ctx):
    x = ins[0]
    a, b, e = slice_axis_range("slice_axis", x.shape, attrs["axis"], attrs["begin"], attrs["end"])
    key = (slice(None),) * a + (slice(b, e),)
    return [np.ascontiguousarray(x[key])]


def _sla_kw(attrs):
    return {"axis": attrs["axis"], "begin": attrs["begin"], "end": attrs["end"]}


_SLA_ATTRS = {"axis": Attr("int"), "begin": Attr("int"), "end": Attr("int_or_none")}

register("slice_axis", inputs=("data",), attrs=dict(_SLA_ATTRS),
         infer_shape=_sla_infer, forward=_sla_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._slice_axis_scatter(og[0], ins[0], **_sla_kw(attrs))],
         lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (4, 5))], {"axis": 1, "begin": 1, "end": 4}),
                              Sample([_rand(rng, (4, 5))], {"axis": 0, "begin": -2, "end": None}),
                              Sample([_rand(rng, (2, 3, 4))], {"axis": -1, "begin": 0, "end": -1})],
         doc="Slice ``begin:end`` along one axis (end None: to the end; negatives count back).")


def _slas_infer(attrs, ins):
    g, like = ins
    if like is not None:
        _, want = _sla_infer(attrs, [like])
        if g is not None and tuple(g) != want[0]:
            raise MXNetError("_slice_axis_scatter: data shape %s does not match the slice shape "
                             "%s of %s" % (fmt(g), fmt(want[0]), fmt(like)))
    return ins, [like]


def _slas_fwd(attrs, ins, ctx):
    g, like = ins
    a, b, e = slice_axis_range("_slice_axis_scatter", like.shape, attrs["axis"], attrs["begin"],
                               attrs["end"])
    out = np.zeros(like.shape, dtype=g.dtype)
    out[(slice(None),) * a + (slice(b, e),)] = g
    return [out]


register("_slice_axis_scatter", inputs=("data", "like"), attrs=dict(_SLA_ATTRS),
         infer_shape=_slas_infer, infer_type=_first_type, forward=_slas_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.slice_axis(og[0], **_sla_kw(attrs)), None],
         lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (4, 3)), _rand(rng, (4, 5))],
                                     {"axis": 1, "begin": 1, "end": 4}),
                              Sample([_rand(rng, (2, 3, 3)), _rand(rng, (2, 3, 4))],
                                     {"axis": -1, "begin": 0, "end": -1})],
         doc="Zeros of ``like``'s shape with ``data`` written at slice_axis(axis, begin, end) "
             "(the gradient of slice_axis).")


# ---------------------------------------------------------------------------------------
# Concat, SliceChannel, stack
# ---------------------------------------------------------------------------------------
def _concat_shape(op, shapes, dim):
    if any(s is None for s in shapes):
        return None
    nd = len(shapes[0])
    if any(len(s) != nd for s in shapes):
        raise MXNetError("%s: all inputs must have the same number of dimensions, got %s"
                         % (op, ", ".join(fmt(s) for s in shapes)))
    a = _axis(op, dim, nd, "dim")
    out = list(shapes[0])
    out[a] = 0
    for s in shapes:
        for i in range(nd):
            if i == a:
                out[a] += s[i]
            elif s[i] != out[i] and s[i] != 0 and out[i] != 0:
                raise MXNetError("%s: input shapes must agree except on dim=%d, got %s"
                                 % (op, dim, ", ".join(fmt(x) for x in shapes)))
            elif out[i] == 0:
                out[i] = s[i]
    return tuple(out)


def _loose_merge(a, b):
    """MXNet's shape_assign when its failure is ignored: the merge, or ``a`` on conflict."""
    try:
        return merge_shape("Concat", "shape", a, b)
    except MXNetError:
        return a


def _concat_infer(attrs, ins, outs=None):
    """MXNet's ConcatShape: the inputs and the output agree except on ``dim``; the known
    parts flow between all of them, and the output's ``dim`` is the sum once every input's
    is known."""
    op = "Concat"
    if attrs["num_args"] != len(ins):
        raise MXNetError("Concat: num_args=%d but %d inputs given" % (attrs["num_args"], len(ins)))
    dim = attrs["dim"]
    common, size, unknown, axis = None, 0, False, None
    for x in ins:
        if x is None:
            continue
        if not x:
            raise MXNetError("%s: zero-dimensional arrays cannot be concatenated" % op)
        axis = _axis(op, dim, len(x), "dim")
        unknown = unknown or x[axis] == 0
        size += x[axis]
        t = list(x)
        t[axis] = 0
        common = _loose_merge(common, tuple(t))
    o = outs[0] if outs else None
    if o is not None:
        axis = _axis(op, dim, len(o), "dim")
        t = list(o)
        t[axis] = 0
        common = _loose_merge(common, tuple(t))
    if common is None:
        return ins, [None]
    res = []
    for x in ins:
        try:
            res.append(merge_shape(op, "input", x, common))
        except MXNetError:
            raise MXNetError("%s: input shapes must agree except on dim=%d, got %s"
                             % (op, dim, ", ".join(fmt(v) for v in ins))) from None
    out = list(common)
    if not unknown:
        out[axis] = size
    out = tuple(out)
    if o is not None:
        try:
            out = merge_shape(op, "output", o, out)
        except MXNetError:
            raise MXNetError("%s: incompatible output shape: expected %s, got %s"
                             % (op, fmt(out), fmt(o))) from None
    return res, [out]


def _concat_fwd(attrs, ins, ctx):
    _concat_shape("Concat", [x.shape for x in ins], attrs["dim"])
    return [np.concatenate(ins, axis=_axis("Concat", attrs["dim"], ins[0].ndim, "dim"))]


def _concat_grad(F, attrs, ins, outs, og, ctx):
    n = len(ins)
    return [F._concat_slice(og[0], *ins, num_args=n + 1, dim=attrs["dim"], index=i)
            for i in range(n)]


register("Concat", inputs=(), variadic="num_args",
         attrs={"num_args": Attr("int", doc="number of inputs"),
                "dim": Attr("int", 1, doc="axis to concatenate along")},
         aliases=("concat",), infer_shape=_concat_infer, forward=_concat_fwd,
         gradient=_concat_grad, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 3)), _rand(rng, (2, 2))], {"num_args": 2}),
                              Sample([_rand(rng, (2, 3)), _rand(rng, (1, 3)), _rand(rng, (3, 3))],
                                     {"num_args": 3, "dim": 0}),
                              Sample([_rand(rng, (2, 3, 1)), _rand(rng, (2, 3, 2))],
                                     {"num_args": 2, "dim": -1})],
         doc="Concatenate the inputs along ``dim``.")


def _cs_range(attrs, like_shapes):
    dim, k = attrs["dim"], attrs["index"]
    nd = len(like_shapes[0])
    a = _axis("_concat_slice", dim, nd, "dim")
    if not 0 <= k < len(like_shapes):
        raise MXNetError("_concat_slice: index=%d is out of range for %d parts"
                         % (k, len(like_shapes)))
    start = sum(s[a] for s in like_shapes[:k])
    return a, start, start + like_shapes[k][a]


def _cs_infer(attrs, ins):
    likes = ins[1:]
    if any(s is None for s in likes):
        return ins, [None]
    return ins, [tuple(likes[attrs["index"]])]


def _cs_fwd(attrs, ins, ctx):
    g, likes = ins[0], ins[1:]
    a, b, e = _cs_range(attrs, [x.shape for x in likes])
    return [np.ascontiguousarray(g[(slice(None),) * a + (slice(b, e),)])]


def _cs_grad(F, attrs, ins, outs, og, ctx):
    likes = ins[1:]
    k = attrs["index"]
    parts = [og[0] if j == k else F.zeros_like(x) for j, x in enumerate(likes)]
    return [F.Concat(*parts, num_args=len(parts), dim=attrs["dim"])] + [None] * len(likes)


register("_concat_slice", inputs=(), variadic="num_args",
         attrs={"num_args": Attr("int", doc="1 + number of concatenated parts"),
                "dim": Attr("int", 1), "index": Attr("int", 0, doc="which part to cut out")},
         infer_shape=_cs_infer, infer_type=_first_type, forward=_cs_fwd, gradient=_cs_grad,
         lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 5)), _rand(rng, (2, 3)), _rand(rng, (2, 2))],
                                     {"num_args": 3, "dim": 1, "index": 1}),
                              Sample([_rand(rng, (6, 2)), _rand(rng, (2, 2)), _rand(rng, (1, 2)),
                                      _rand(rng, (3, 2))],
                                     {"num_args": 4, "dim": 0, "index": 2})],
         doc="The part of a Concat result (arg0) that came from input ``index`` of the "
             "concatenated parts arg1..argN (the gradient of Concat).")


def _split_shapes(attrs, s):
    n, axis = attrs["num_outputs"], attrs["axis"]
    if n < 1:
        raise MXNetError("SliceChannel: num_outputs=%d must be positive" % n)
    if s is None:
        return [None] * n
    a = _axis("SliceChannel", axis, len(s))
    if s[a] % n:
        raise MXNetError("SliceChannel: dimension %d of shape %s (=%d) is not divisible by "
                         "num_outputs=%d" % (a, fmt(s), s[a], n))
    part = list(s)
    part[a] = s[a] // n
    if attrs["squeeze_axis"]:
        if part[a] != 1:
            raise MXNetError("SliceChannel: squeeze_axis=True needs num_outputs=%d to equal "
                             "dimension %d of shape %s" % (n, a, fmt(s)))
        del part[a]
        if not part:
            part = [1]
    return [tuple(part)] * n


def _split_infer(attrs, ins, outs=None):
    """SliceChannel's shape rule, with MXNet's back-calculation of the input from the
    parts (the split axis from their sum, the other axes from the first part)."""
    x = ins[0]
    if x is None:
        return ins, [None] * attrs["num_outputs"]
    n = attrs["num_outputs"]
    a = _axis("SliceChannel", attrs["axis"], len(x))
    if x[a] == 0:
        part = list(x)
        if attrs["squeeze_axis"]:
            del part[a]
        parts = [tuple(part)] * n
    else:
        parts = _split_shapes(attrs, x)
    if outs:
        parts = [merge_shape("SliceChannel", "output %d" % i, p, o)
                 for i, (p, o) in enumerate(zip(parts, list(outs) + [None] * n))]
        squeezed = attrs["squeeze_axis"] and len(parts[0]) == len(x) - 1
        for p in parts:
            if squeezed:
                back = tuple(p[:a]) + (n,) + tuple(p[a:])
            else:
                back = tuple(d * n if i == a else d for i, d in enumerate(p))
            x = merge_shape("SliceChannel", "data", x, back)
    return [x], parts


def _split_fwd(attrs, ins, ctx):
    x = ins[0]
    shapes = _split_shapes(attrs, x.shape)
    a = _axis("SliceChannel", attrs["axis"], x.ndim)
    return [np.ascontiguousarray(p).reshape(s)
            for p, s in zip(np.split(x, attrs["num_outputs"], axis=a), shapes)]


def _split_grad(F, attrs, ins, outs, og, ctx):
    parts = list(og)
    if attrs["squeeze_axis"]:
        parts = [F.expand_dims(g, axis=attrs["axis"]) for g in parts]
    return [F.Concat(*parts, num_args=len(parts), dim=attrs["axis"])]


register("SliceChannel", inputs=("data",),
         attrs={"num_outputs": Attr("int", doc="number of equal parts"),
                "axis": Attr("int", 1, doc="axis to split"),
                "squeeze_axis": Attr("bool", False, doc="drop the split axis (needs parts of size 1)")},
         aliases=("split",), num_outputs=lambda attrs: attrs["num_outputs"],
         infer_shape=lambda attrs, ins, outs=None: _split_infer(attrs, ins, outs),
         forward=_split_fwd, gradient=_split_grad, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 6))], {"num_outputs": 3}),
                              Sample([_rand(rng, (4, 3))], {"num_outputs": 2, "axis": 0}),
                              Sample([_rand(rng, (2, 3, 2))], {"num_outputs": 2, "axis": -1,
                                                                "squeeze_axis": True})],
         doc="Split into ``num_outputs`` equal parts along ``axis``; every part is an output "
             "(``<name>_output<i>``).")


def _stack_shape(attrs, ins):
    if attrs["num_args"] != len(ins):
        raise MXNetError("stack: num_args=%d but %d inputs given" % (attrs["num_args"], len(ins)))
    try:
        s = same_shape("stack", ins)
    except MXNetError:
        raise MXNetError("stack: all inputs must have the same shape, got %s"
                         % ", ".join(fmt(x) for x in ins)) from None
    if s is None:
        return [None] * len(ins), None
    a = _new_axis("stack", attrs["axis"], len(s))
    return [s] * len(ins), tuple(s[:a]) + (len(ins),) + tuple(s[a:])


def _stack_infer(attrs, ins):
    """MXNet's StackOpShape merges the inputs into the output without writing back to them."""
    _ins2, out = _stack_shape(attrs, ins)
    return ins, [out]


def _stack_fwd(attrs, ins, ctx):
    _stack_shape(attrs, [x.shape for x in ins])
    return [np.stack(ins, axis=_new_axis("stack", attrs["axis"], ins[0].ndim))]


def _stack_grad(F, attrs, ins, outs, og, ctx):
    ax = attrs["axis"]
    return [F.reshape_like(F.slice_axis(og[0], axis=ax, begin=i, end=i + 1), x)
            for i, x in enumerate(ins)]


register("stack", inputs=(), variadic="num_args",
         attrs={"axis": Attr("int", 0, doc="position of the new axis"),
                "num_args": Attr("int", doc="number of inputs")},
         infer_shape=_stack_infer, forward=_stack_fwd, gradient=_stack_grad, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 3)), _rand(rng, (2, 3))], {"num_args": 2}),
                              Sample([_rand(rng, (2, 3)), _rand(rng, (2, 3)), _rand(rng, (2, 3))],
                                     {"num_args": 3, "axis": -1}),
                              Sample([_rand(rng, (4,)), _rand(rng, (4,))],
                                     {"num_args": 2, "axis": 1})],
         doc="Stack same-shaped inputs along a new axis.")


# ---------------------------------------------------------------------------------------
# broadcast_to, broadcast_axis, tile, repeat
# ---------------------------------------------------------------------------------------
def _bto_shape(s, shape):
    if s is None:
        return None
    if len(shape) != len(s):
        raise MXNetError("broadcast_to: shape=%s must have as many dimensions as the input %s"
                         % (tuple(shape), fmt(s)))
    out = []
    for d, t in zip(s, shape):
        if t == 0:
            out.append(d)
        elif d == t or d == 1:
            out.append(t)
        else:
            raise MXNetError("broadcast_to: cannot broadcast an input of shape %s to shape %s"
                             % (fmt(s), tuple(shape)))
    return tuple(out)


def _sum_back(F, attrs, ins, outs, og, ctx):
    return [F._reduce_sum_like(og[0], ins[0])]


register("broadcast_to", inputs=("data",),
         attrs={"shape": Attr("shape", (), doc="target shape; 0 keeps the input dimension")},
         infer_shape=lambda attrs, ins: (ins, [_bto_shape(ins[0], attrs["shape"])]),
         forward=lambda attrs, ins, ctx: [np.ascontiguousarray(
             np.broadcast_to(ins[0], _bto_shape(ins[0].shape, attrs["shape"])))],
         gradient=_sum_back, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (1, 3))], {"shape": (2, 3)}),
                              Sample([_rand(rng, (2, 1, 1))], {"shape": (0, 3, 4)})],
         doc="Broadcast size-1 axes to ``shape``.")


def _bax_shape(s, axis, size):
    if s is None:
        return None
    if len(axis) != len(size):
        raise MXNetError("broadcast_axis: axis=%s and size=%s must have the same length"
                         % (tuple(axis), tuple(size)))
    out = list(s)
    for a, n in zip(axis, size):
        b = _axis("broadcast_axis", a, len(s))
        if s[b] != 1:
            raise MXNetError("broadcast_axis: axis %d of shape %s must have size 1 to be broadcast"
                             % (a, fmt(s)))
        out[b] = n
    return tuple(out)


register("broadcast_axis", inputs=("data",),
         attrs={"axis": Attr("shape", (), doc="axes to broadcast"),
                "size": Attr("shape", (), doc="target size of each axis")},
         aliases=("broadcast_axes",),
         infer_shape=lambda attrs, ins: (ins, [_bax_shape(ins[0], attrs["axis"], attrs["size"])]),
         forward=lambda attrs, ins, ctx: [np.ascontiguousarray(np.broadcast_to(
             ins[0], _bax_shape(ins[0].shape, attrs["axis"], attrs["size"])))],
         gradient=_sum_back, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (3, 1))], {"axis": 1, "size": 4}),
                              Sample([_rand(rng, (1, 2, 1))], {"axis": (0, -1), "size": (2, 3)})],
         doc="Broadcast the given size-1 axes to the given sizes.")


def _tile_dims(s, reps):
    k = max(len(s), len(reps))
    return (1,) * (k - len(s)) + tuple(s), (1,) * (k - len(reps)) + tuple(reps)


def _tile_shape(s, reps):
    if s is None:
        return None
    if any(r < 0 for r in reps):
        raise MXNetError("tile: reps=%s must be non-negative" % (tuple(reps),))
    sp, rp = _tile_dims(s, reps)
    return tuple(d * r for d, r in zip(sp, rp))


register("tile", inputs=("data",), attrs={"reps": Attr("shape", doc="repetitions per axis")},
         infer_shape=lambda attrs, ins: (ins, [_tile_shape(ins[0], attrs["reps"])
                                               if _known(ins[0]) else None]),
         forward=lambda attrs, ins, ctx: [
             np.tile(ins[0], attrs["reps"]) if attrs["reps"] else ins[0].copy()],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._tile_sum(og[0], ins[0], reps=attrs["reps"])],
         lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 3))], {"reps": (1, 2)}),
                              Sample([_rand(rng, (2, 3))], {"reps": (2, 1, 2)}),
                              Sample([_rand(rng, (2, 3))], {"reps": (3,)})],
         doc="Repeat the whole array ``reps`` times along each axis (as numpy.tile).")


def _tile_sum_fwd(attrs, ins, ctx):
    g, like = ins
    sp, rp = _tile_dims(like.shape, attrs["reps"])
    inter = []
    for r, d in zip(rp, sp):
        inter.extend([r, d])
    summed = g.reshape(inter).sum(axis=tuple(range(0, len(inter), 2)))
    return [np.ascontiguousarray(summed.reshape(like.shape)).astype(g.dtype, copy=False)]


register("_tile_sum", inputs=("data", "like"), attrs={"reps": Attr("shape")},
         infer_shape=_like_infer("_tile_sum"), infer_type=_first_type, forward=_tile_sum_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.tile(og[0], reps=attrs["reps"]), None],
         lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 6)), _rand(rng, (2, 3))], {"reps": (1, 2)}),
                              Sample([_rand(rng, (2, 2, 6)), _rand(rng, (2, 3))], {"reps": (2, 1, 2)})],
         doc="Sum the tiles of ``data`` back to ``like``'s shape (the gradient of tile).")


def _repeat_shape(s, repeats, axis):
    if s is None:
        return None
    if repeats < 0:
        raise MXNetError("repeat: repeats=%d must be non-negative" % repeats)
    if axis is None:
        return (math.prod(s) * repeats,)
    a = _axis("repeat", axis, len(s))
    out = list(s)
    out[a] *= repeats
    return tuple(out)


def _repeat_fwd(attrs, ins, ctx):
    x = ins[0]
    _repeat_shape(x.shape, attrs["repeats"], attrs["axis"])
    if attrs["axis"] is None:
        return [np.repeat(x.reshape(-1), attrs["repeats"])]
    return [np.repeat(x, attrs["repeats"], axis=_axis("repeat", attrs["axis"], x.ndim))]


def _rep_kw(attrs):
    kw = {"repeats": attrs["repeats"]}
    if attrs["axis"] is not None:
        kw["axis"] = attrs["axis"]
    return kw


register("repeat", inputs=("data",),
         attrs={"repeats": Attr("int", doc="repetitions of each element"),
                "axis": Attr("int_or_none", None, doc="axis (None: the flattened input)")},
         infer_shape=lambda attrs, ins: (ins, [_repeat_shape(ins[0], attrs["repeats"], attrs["axis"])]),
         forward=_repeat_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._repeat_sum(og[0], ins[0], **_rep_kw(attrs))],
         lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 3))], {"repeats": 2, "axis": 0}),
                              Sample([_rand(rng, (2, 3))], {"repeats": 3}),
                              Sample([_rand(rng, (2, 3))], {"repeats": 2, "axis": -1})],
         doc="Repeat each element ``repeats`` times along ``axis`` (as numpy.repeat).")


def _repeat_sum_fwd(attrs, ins, ctx):
    g, like = ins
    r = attrs["repeats"]
    if attrs["axis"] is None:
        out = g.reshape(like.size, r).sum(axis=1).reshape(like.shape)
    else:
        a = _axis("_repeat_sum", attrs["axis"], like.ndim)
        shp = like.shape[:a] + (like.shape[a], r) + like.shape[a + 1:]
        out = g.reshape(shp).sum(axis=a + 1)
    return [np.ascontiguousarray(out).astype(g.dtype, copy=False)]


register("_repeat_sum", inputs=("data", "like"),
         attrs={"repeats": Attr("int"), "axis": Attr("int_or_none", None)},
         infer_shape=_like_infer("_repeat_sum"), infer_type=_first_type, forward=_repeat_sum_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.repeat(og[0], **_rep_kw(attrs)), None],
         lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (4, 3)), _rand(rng, (2, 3))], {"repeats": 2, "axis": 0}),
                              Sample([_rand(rng, (18,)), _rand(rng, (2, 3))], {"repeats": 3})],
         doc="Sum the repeated copies of ``data`` back to ``like``'s shape (the gradient of repeat).")


# ---------------------------------------------------------------------------------------
# pick, one_hot, take
# ---------------------------------------------------------------------------------------
def _pick_axis(attrs, ndim):
    if attrs["axis"] is None:
        raise MXNetError("pick: axis=None is not supported; give an axis")
    return _axis("pick", attrs["axis"], ndim)


def _pick_shapes(attrs, data, index):
    """(axis, output shape); checks that ``index`` holds one entry per output element."""
    a = _pick_axis(attrs, len(data))
    if attrs["keepdims"]:
        out = tuple(1 if i == a else d for i, d in enumerate(data))
    else:
        out = tuple(d for i, d in enumerate(data) if i != a) or (1,)
    if index is not None:
        flat = tuple(d for i, d in enumerate(data) if i != a) or (1,)
        if tuple(index) not in (out, flat):
            raise MXNetError("pick: index shape %s does not match data shape %s with axis=%d "
                             "(expected %s)" % (fmt(index), fmt(data), attrs["axis"], fmt(out)))
    return a, out


def _pick_infer(attrs, ins):
    data, index = ins
    if data is None:
        return ins, [None]
    out = _pick_shapes(attrs, data, index)[1]
    return [data, out if index is None else index], [out]


def _pick_index(attrs, index, n):
    idx = index.astype(np.int64)
    if attrs["mode"] == "wrap":
        return np.mod(idx, n) if n else idx
    return np.clip(idx, 0, max(n - 1, 0))


def _pick_fwd(attrs, ins, ctx):
    data, index = ins
    a, out = _pick_shapes(attrs, data.shape, index.shape)
    idx = _pick_index(attrs, index, data.shape[a])
    idx = np.expand_dims(idx.reshape(tuple(d for i, d in enumerate(data.shape) if i != a)), a)
    return [np.take_along_axis(data, idx, axis=a).reshape(out)]


def _pick_kw(attrs):
    kw = {"axis": attrs["axis"]}
    if attrs["keepdims"]:
        kw["keepdims"] = True
    if attrs["mode"] != "clip":
        kw["mode"] = attrs["mode"]
    return kw


_PICK_ATTRS = {"axis": Attr("int_or_none", -1, doc="axis to pick along"),
               "keepdims": Attr("bool", False, doc="keep the picked axis with size 1"),
               "mode": Attr("str", "clip", choices=("clip", "wrap"),
                            doc="out-of-range indices: clip or wrap around")}


def _index_type(attrs, ins):
    return ins, [ins[0]]


def _index_type_strict(op):
    """take / pick: the output has the data's dtype (either way); MXNet refuses to infer
    while the index dtype is unknown (TakeOpType / PickOpType)."""
    def infer(attrs, ins, outs=None):
        if ins[1] is None:
            raise MXNetError("%s: the index type must be set" % op)
        t = ins[0] if ins[0] is not None else (outs or [None])[0]
        return [t, ins[1]], [t]
    return infer


def _pick_samples(rng):
    return [Sample([_rand(rng, (3, 4)), np.array([0., 3., 1.])], {"axis": 1}),
            Sample([_rand(rng, (3, 4)), np.array([[0.], [2.], [1.]])], {"axis": -1, "keepdims": True}),
            Sample([_rand(rng, (3, 4)), np.array([2., 0., 1., 5.])], {"axis": 0}),
            Sample([_rand(rng, (3, 4)), np.array([-1., 5., 2.])], {"axis": 1, "mode": "wrap"}),
            Sample([_rand(rng, (2, 3, 4)), np.array([[0., 1., 3.], [2., 2., 0.]])], {"axis": 2})]


def _lower_pick_index(ctx, k, n_var):
    """Statement turning ``k`` (already int) into a valid index along an axis of size n."""
    if ctx.attrs["mode"] == "wrap":
        return "%s = %s %% %s" % (k, k, n_var)
    return "%s = 0 if %s < 0 else (%s - 1 if %s >= %s else %s)" % (k, k, n_var, k, n_var, k)


def _lower_pick(ctx):
    """(rows, classes) data picked along the last axis; other layouts run eagerly."""
    if ctx.in_ndim[0] != 2 or ctx.attrs["axis"] not in (1, -1):
        return None
    x, index = ctx.ins
    o, ix, i, k, c = ctx.tmp("o"), ctx.tmp("x"), ctx.tmp("i"), ctx.tmp("k"), ctx.tmp("c")
    return ["%s = %s.reshape(-1)" % (o, ctx.outs[0]),
            "%s = %s.reshape(-1)" % (ix, index),
            "%s = %s.shape[1]" % (c, x),
            "for %s in range(%s.shape[0]):" % (i, x),
            "    %s = int(%s[%s])" % (k, ix, i),
            "    " + _lower_pick_index(ctx, k, c),
            "    %s[%s] = %s[%s, %s]" % (o, i, x, i, k)]


register("pick", inputs=("data", "index"), attrs=dict(_PICK_ATTRS),
         infer_shape=_pick_infer, infer_type=_index_type_strict("pick"), forward=_pick_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._pick_scatter(og[0], ins[1], ins[0], **_pick_kw(attrs)), None],
         lowering=_lower_pick, samples=_pick_samples, aliases=("choose_element_0index",),
         doc="Pick one element per position along ``axis`` (``index`` is a float array; "
             "it gets no gradient).")


def _ps_fwd(attrs, ins, ctx):
    g, index, like = ins
    a, out = _pick_shapes(attrs, like.shape, index.shape)
    idx = _pick_index(attrs, index, like.shape[a])
    rest = tuple(d for i, d in enumerate(like.shape) if i != a)
    idx = np.expand_dims(idx.reshape(rest), a)
    res = np.zeros(like.shape, dtype=g.dtype)
    np.put_along_axis(res, idx, np.expand_dims(g.reshape(rest), a), axis=a)
    return [res]


def _lower_pick_scatter(ctx):
    """Zeros of (rows, classes) with the gradient written at the picked column."""
    if ctx.in_ndim[2] != 2 or ctx.attrs["axis"] not in (1, -1):
        return None
    g, index, like = ctx.ins
    out = ctx.outs[0]
    gf, ix, i, j, k, c = (ctx.tmp("g"), ctx.tmp("x"), ctx.tmp("i"), ctx.tmp("i"), ctx.tmp("k"),
                          ctx.tmp("c"))
    return ["%s = %s.reshape(-1)" % (gf, g),
            "%s = %s.reshape(-1)" % (ix, index),
            "%s = %s.shape[1]" % (c, out),
            "for %s in range(%s.shape[0]):" % (i, out),
            "    for %s in range(%s):" % (j, c),
            "        %s[%s, %s] = 0" % (out, i, j),
            "    %s = int(%s[%s])" % (k, ix, i),
            "    " + _lower_pick_index(ctx, k, c),
            "    %s[%s, %s] = %s[%s]" % (out, i, k, gf, i)]


register("_pick_scatter", inputs=("data", "index", "like"), attrs=dict(_PICK_ATTRS),
         infer_shape=_like_infer("_pick_scatter"), infer_type=_index_type, forward=_ps_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F.pick(og[0], ins[1], **_pick_kw(attrs)), None, None],
         lowering=_lower_pick_scatter,
         samples=lambda rng: [Sample([_rand(rng, s.inputs[1].shape), s.inputs[1], s.inputs[0]], s.attrs)
                              for s in _pick_samples(rng)],
         doc="Zeros of ``like``'s shape with ``data`` written at the picked positions "
             "(the gradient of pick).")


def _one_hot_infer(attrs, ins):
    if attrs["depth"] < 0:
        raise MXNetError("one_hot: depth=%d must be non-negative" % attrs["depth"])
    s = ins[0]
    return ins, [tuple(s) + (attrs["depth"],) if _known(s) else None]


def _one_hot_fwd(attrs, ins, ctx):
    idx = ins[0].astype(np.int64)
    depth = attrs["depth"]
    out = np.full(idx.shape + (depth,), attrs["off_value"], dtype=np.dtype(attrs["dtype"]))
    valid = (idx >= 0) & (idx < depth)
    pos = np.nonzero(valid)
    out[pos + (idx[pos],)] = attrs["on_value"]
    return [out]


register("one_hot", inputs=("indices",),
         attrs={"depth": Attr("int", doc="size of the one-hot axis"),
                "on_value": Attr("float", 1.0), "off_value": Attr("float", 0.0),
                "dtype": Attr("dtype", "float32", doc="output dtype")},
         infer_shape=_one_hot_infer,
         infer_type=lambda attrs, ins: (ins, [attrs["dtype"]]),
         forward=_one_hot_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.zeros_like(ins[0])],
         grad_check=False, lowerable=False,
         samples=lambda rng: [Sample([np.array([0., 3., 1.])], {"depth": 4}),
                              Sample([np.array([[1., -1.], [2., 7.]])],
                                     {"depth": 3, "on_value": 5.0, "off_value": -1.0,
                                      "dtype": "float64"})],
         doc="One-hot encode ``indices`` (out-of-range indices give an all-off row).")


def _take_shape(attrs, a, idx):
    ax = _axis("take", attrs["axis"], len(a))
    return ax, tuple(a[:ax]) + tuple(idx) + tuple(a[ax + 1:])


def _take_infer(attrs, ins):
    a, idx = ins
    if a is None or not _known(idx):
        if a is not None:
            _axis("take", attrs["axis"], len(a))
        return ins, [None]
    return ins, [_take_shape(attrs, a, idx)[1]]


def _take_index(attrs, indices, n):
    idx = indices.astype(np.int64)
    mode = attrs["mode"]
    if mode == "wrap":
        return np.mod(idx, n) if n else idx
    if mode == "raise":
        bad = (idx < 0) | (idx >= n)
        if bad.any():
            raise MXNetError("take: index %d is out of bounds for axis %d with size %d (mode='raise')"
                             % (int(idx[bad].reshape(-1)[0]), attrs["axis"], n))
        return idx
    return np.clip(idx, 0, max(n - 1, 0))


def _take_fwd(attrs, ins, ctx):
    a, indices = ins
    ax = _axis("take", attrs["axis"], a.ndim)
    return [np.take(a, _take_index(attrs, indices, a.shape[ax]), axis=ax)]


def _take_kw(attrs):
    kw = {}
    if attrs["axis"] != 0:
        kw["axis"] = attrs["axis"]
    if attrs["mode"] != "clip":
        kw["mode"] = attrs["mode"]
    return kw


_TAKE_ATTRS = {"axis": Attr("int", 0, doc="axis to take along"),
               "mode": Attr("str", "clip", choices=("raise", "wrap", "clip"),
                            doc="out-of-range indices: clip, wrap around, or raise")}


def _take_samples(rng):
    return [Sample([_rand(rng, (3, 4)), np.array([2., 0., 2.])]),
            Sample([_rand(rng, (3, 4)), np.array([[1., 3.], [0., 0.]])], {"axis": 1}),
            Sample([_rand(rng, (3, 4)), np.array([-1., 7.])], {"axis": -1, "mode": "wrap"}),
            Sample([_rand(rng, (3, 4)), np.array([5., -2.])], {"mode": "clip"})]


register("take", inputs=("a", "indices"), attrs=dict(_TAKE_ATTRS),
         infer_shape=_take_infer, infer_type=_index_type_strict("take"), forward=_take_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._take_scatter(og[0], ins[1], ins[0], **_take_kw(attrs)), None],
         lowerable=False, samples=_take_samples,
         doc="Take slices of ``a`` along ``axis`` at ``indices`` (a float array; no gradient).")


def _ts_fwd(attrs, ins, ctx):
    g, indices, like = ins
    ax = _axis("_take_scatter", attrs["axis"], like.ndim)
    idx = _take_index(attrs, indices, like.shape[ax])
    res = np.zeros(like.shape, dtype=g.dtype)
    np.add.at(res, (slice(None),) * ax + (idx,), g)
    return [res]


register("_take_scatter", inputs=("data", "indices", "like"), attrs=dict(_TAKE_ATTRS),
         infer_shape=_like_infer("_take_scatter"), infer_type=_index_type, forward=_ts_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F.take(og[0], ins[1], **_take_kw(attrs)), None, None],
         lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, np.take(s.inputs[0], _take_index(
             dict(_TAKE_ATTRS_DEFAULTS, **s.attrs), s.inputs[1],
             s.inputs[0].shape[s.attrs.get("axis", 0)]), axis=s.attrs.get("axis", 0)).shape),
             s.inputs[1], s.inputs[0]], s.attrs) for s in _take_samples(rng)],
         doc="Zeros of ``like``'s shape with ``data`` added at the taken positions "
             "(the gradient of take; repeated indices accumulate).")

_TAKE_ATTRS_DEFAULTS = {"axis": 0, "mode": "clip"}
