"""Reshape (MXNet's special codes 0, -1, -2, -3, -4), Flatten, reshape_like.
"""
import math
from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, merge_shape
from ._shape_util import _first_type, _known, _rand


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
