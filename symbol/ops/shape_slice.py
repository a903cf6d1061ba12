"""slice and slice_axis, with the scatter helpers their gradients use (_slice_assign,
_slice_assign_scalar, _slice_axis_scatter).

Gradients that need their input's shape use the helper ops of symbol/ops/shape.py note
*scatter-gradients*.
"""
import numpy as np
from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt
from ._shape_util import _axis, _first_type, _rand
from ._shape_lower import assign, call, index_key, py_slice


# ---------------------------------------------------------------------------------------
# lowerings: basic-slicing copies (symbol/ops/_shape_lower.py)
# ---------------------------------------------------------------------------------------
def _slice_text(attrs, nd):
    """The index text of slice(begin, end, step) on an nd-D input."""
    begin, end, step = tuple(attrs["begin"]), tuple(attrs["end"]), tuple(attrs["step"] or ())
    if len(begin) > nd or len(end) != len(begin):
        return None
    parts = {}
    for i in range(len(begin)):
        s = step[i] if i < len(step) and step[i] is not None else 1
        if begin[i] is None and end[i] is None and s == 1:
            continue
        parts[i] = py_slice(begin[i], end[i], s)
    return index_key(nd, parts)


def _lower_slice(ctx):
    key = _slice_text(ctx.attrs, ctx.in_ndim[0])
    return None if key is None else [assign(ctx.outs[0], ctx.ins[0] + key)]


def _lower_slice_assign(scalar):
    def emit(ctx):
        key = _slice_text(ctx.attrs, ctx.in_ndim[0])
        if key is None:
            return None
        out = ctx.outs[0]
        val = ctx.const(ctx.attrs["scalar"]) if scalar else ctx.ins[1]
        return [assign(out, ctx.ins[0]), "%s%s = %s" % (out, key, val)]
    return emit


def _sla_text(ctx, nd):
    a = ctx.attrs
    return index_key(nd, {_axis("slice_axis", a["axis"], nd): py_slice(a["begin"], a["end"])})


def _lower_slice_axis(ctx):
    return [assign(ctx.outs[0], ctx.ins[0] + _sla_text(ctx, ctx.in_ndim[0]))]


def _lower_slice_axis_scatter(ctx):
    out = ctx.outs[0]
    return [assign(out, "0"), "%s%s = %s" % (out, _sla_text(ctx, ctx.in_ndim[1]), ctx.ins[0])]


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
         lowering=call(_lower_slice),
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
         lowering=call(_lower_slice_assign(False)),
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
         lowering=call(_lower_slice_assign(True)),
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
         lowering=call(_lower_slice_axis),
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
         lowering=call(_lower_slice_axis_scatter),
         samples=lambda rng: [Sample([_rand(rng, (4, 3)), _rand(rng, (4, 5))],
                                     {"axis": 1, "begin": 1, "end": 4}),
                              Sample([_rand(rng, (2, 3, 3)), _rand(rng, (2, 3, 4))],
                                     {"axis": -1, "begin": 0, "end": -1})],
         doc="Zeros of ``like``'s shape with ``data`` written at slice_axis(axis, begin, end) "
             "(the gradient of slice_axis).")
