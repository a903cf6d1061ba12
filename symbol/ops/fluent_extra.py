"""Operators behind MXNet 1.9.1's fluent method names that agjit lacked: slice_like,
shape_array, size_array, depth_to_space, space_to_depth, argmax_channel and _split_v2 (the op
of ``split_v2``).

* slice_like(data, shape_like, axes=()): ``data`` cut at the start of each axis to the size
  of ``shape_like`` on that axis (every axis of ``shape_like``, or the listed ``axes``);
  the gradient pads back with zeros, ``shape_like`` gets none.
* shape_array(data) / size_array(data): the shape (ndim,) and the size (1,) as int64.
* depth_to_space(data, block_size): (N, C, H, W) -> (N, C/b^2, H*b, W*b), channel blocks
  laid out as (b, b, C/b^2) (MXNet's DCR order); space_to_depth is its inverse.
* argmax_channel(data): argmax over axis 1 (as float, like argmax).
* _split_v2(data, indices, axis, squeeze_axis, sections): ``sections`` equal parts, or the
  parts between the cut points ``indices`` (starting with 0); ``squeeze_axis`` drops the
  split axis of parts of size 1.  ``split_v2(x, 3)`` / ``split_v2(x, (2, 5))`` build the
  attributes as MXNet's Python function does (:func:`split_v2_attrs`).
"""
import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt
from ._lowering import KernelCall
from ._shape_lower import assign, index_key, permute_copy, reshaped
from .reduce import arg_lowering

__all__ = ["split_v2_attrs"]


def _rand(rng, shape):
    return rng.uniform(-2, 2, size=shape)


def _axis(op, a, ndim):
    if not -ndim <= a < ndim:
        raise MXNetError("%s: axis %d is out of range for %d dimensions" % (op, a, ndim))
    return a % ndim


# -- slice_like ---------------------------------------------------------------------------------
def _sl_axes(attrs, nd, nl):
    if nd != nl and not attrs["axes"]:
        raise MXNetError("slice_like: data (%d-D) and shape_like (%d-D) need the same number of "
                         "dimensions unless axes are given" % (nd, nl))
    axes = attrs["axes"] or tuple(range(nd))
    return sorted({_axis("slice_like", a, min(nd, nl)) for a in axes})


def _sl_infer(attrs, ins):
    d, like = ins
    if d is None or like is None:
        return ins, [None]
    out = list(d)
    for a in _sl_axes(attrs, len(d), len(like)):
        if like[a] > d[a] > 0:
            raise MXNetError("slice_like: shape_like %s is larger than data %s on axis %d"
                             % (fmt(like), fmt(d), a))
        out[a] = like[a]
    return ins, [tuple(out)]


def _sl_fwd(attrs, ins, ctx):
    d, like = ins
    out = _sl_infer(attrs, [d.shape, like.shape])[1][0]
    return [np.ascontiguousarray(d[tuple(slice(0, n) for n in out)])]


def _sl_back_fwd(attrs, ins, ctx):
    g, d = ins
    out = np.zeros_like(d, dtype=g.dtype)
    out[tuple(slice(0, n) for n in g.shape)] = g
    return [out]


def _lower_slice_like(ctx):
    nd, nl = ctx.in_ndim
    x, like = ctx.ins
    parts = {a: ":%s.shape[%d]" % (like, a) for a in _sl_axes(ctx.attrs, nd, nl)}
    return [assign(ctx.outs[0], x + index_key(nd, parts))]


def _lower_back_slice_like(ctx):
    g, out = ctx.ins[0], ctx.outs[0]
    nd = ctx.out_ndim[0]
    if ctx.in_ndim[0] != nd:
        return None
    parts = {a: ":%s.shape[%d]" % (g, a) for a in range(nd)}
    return [assign(out, "0"), "%s%s = %s" % (out, index_key(nd, parts), g)]


register("slice_like", inputs=("data", "shape_like"), attrs={"axes": Attr("shape", ())},
         infer_shape=_sl_infer, infer_type=lambda attrs, ins: (ins, [ins[0]]), forward=_sl_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._backward_slice_like(og[0], ins[0]),
                                                         F.zeros_like(ins[1])],
         lowering=KernelCall(_lower_slice_like), second_order=False,
         doc="Cut data to the shape of shape_like (on all axes or the listed ones).",
         samples=lambda rng: [Sample([_rand(rng, (3, 4)), _rand(rng, (2, 2))]),
                              Sample([_rand(rng, (2, 3, 4)), _rand(rng, (1, 2, 3))],
                                     {"axes": (0, -1)})])

register("_backward_slice_like", inputs=("ograd", "data"), attrs={},
         infer_shape=lambda attrs, ins: (ins, [ins[1]]),
         infer_type=lambda attrs, ins: (ins, [ins[0]]), forward=_sl_back_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.slice_like(og[0], ins[0]), None],
         lowering=KernelCall(_lower_back_slice_like), second_order=False, grad_check=False,
         doc="slice_like's gradient: the head gradient padded with zeros to data's shape.",
         samples=lambda rng: [Sample([_rand(rng, (2, 2)), _rand(rng, (3, 4))])])


# -- shape_array / size_array ------------------------------------------------------------------
def _lower_shape_array(size):
    def emit(ctx):
        x, out = ctx.ins[0], ctx.outs[0]
        if size:
            return ["%s[0] = %s.size" % (out, x)]
        return ["%s[%d] = %s.shape[%d]" % (out, k, x, k) for k in range(ctx.in_ndim[0])]
    return KernelCall(emit, any_dtype=True)


def _int64(attrs, ins):
    return ins, ["int64"]


register("shape_array", inputs=("data",), attrs={},
         infer_shape=lambda attrs, ins: (ins, [None if ins[0] is None else (len(ins[0]),)]),
         infer_type=_int64,
         forward=lambda attrs, ins, ctx: [np.array(ins[0].shape, dtype=np.int64)],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.zeros_like(ins[0])],
         lowering=_lower_shape_array(False), grad_check=False, second_order=False,
         doc="The shape of data as a 1-D int64 array.",
         samples=lambda rng: [Sample([_rand(rng, (2, 3, 4))])])

register("size_array", inputs=("data",), attrs={},
         infer_shape=lambda attrs, ins: (ins, [(1,)]), infer_type=_int64,
         forward=lambda attrs, ins, ctx: [np.array([ins[0].size], dtype=np.int64)],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.zeros_like(ins[0])],
         lowering=_lower_shape_array(True), grad_check=False, second_order=False,
         doc="The number of elements of data as a (1,) int64 array.",
         samples=lambda rng: [Sample([_rand(rng, (2, 3))])])


# -- depth_to_space / space_to_depth ----------------------------------------------------------------
def _d2s_infer(attrs, ins):
    b, s = attrs["block_size"], ins[0]
    if b <= 0:
        raise MXNetError("depth_to_space: block_size must be positive, got %d" % b)
    if s is None:
        return ins, [None]
    if len(s) != 4:
        raise MXNetError("depth_to_space: data must be 4-D (N, C, H, W), got %s" % fmt(s))
    if s[1] % (b * b):
        raise MXNetError("depth_to_space: channels %d are not divisible by block_size^2 = %d"
                         % (s[1], b * b))
    return ins, [(s[0], s[1] // (b * b), s[2] * b, s[3] * b)]


def _s2d_infer(attrs, ins):
    b, s = attrs["block_size"], ins[0]
    if b <= 0:
        raise MXNetError("space_to_depth: block_size must be positive, got %d" % b)
    if s is None:
        return ins, [None]
    if len(s) != 4:
        raise MXNetError("space_to_depth: data must be 4-D (N, C, H, W), got %s" % fmt(s))
    if s[2] % b or s[3] % b:
        raise MXNetError("space_to_depth: height and width of %s must be divisible by "
                         "block_size=%d" % (fmt(s), b))
    return ins, [(s[0], s[1] * b * b, s[2] // b, s[3] // b)]


def _d2s(x, b):
    n, c, h, w = x.shape
    y = x.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
    return np.ascontiguousarray(y.reshape(n, c // (b * b), h * b, w * b))


def _s2d(x, b):
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
    return np.ascontiguousarray(y.reshape(n, c * b * b, h // b, w // b))


def _lower_blocks(to_space):
    """depth_to_space / space_to_depth: a 6-D permuted copy between reshaped views (the
    reshape-transpose-reshape of _d2s / _s2d)."""
    def emit(ctx):
        if ctx.in_ndim[0] != 4:
            return None
        b = ctx.attrs["block_size"]
        x, out = ctx.ins[0], ctx.outs[0]
        n, c, h, w = ["%s.shape[%d]" % (x, k) for k in range(4)]
        if to_space:
            cc = "%s // %d" % (c, b * b)
            ls, src = reshaped(ctx, x, [n, str(b), str(b), cc, h, w])
            ld, dst = reshaped(ctx, out, [n, cc, h, str(b), w, str(b)])
            perm = (0, 3, 4, 1, 5, 2)
        else:
            hh, ww = "%s // %d" % (h, b), "%s // %d" % (w, b)
            ls, src = reshaped(ctx, x, [n, c, hh, str(b), ww, str(b)])
            ld, dst = reshaped(ctx, out, [n, str(b), str(b), c, hh, ww])
            perm = (0, 3, 5, 1, 2, 4)
        return ls + ld + permute_copy(ctx, src, dst, perm)
    return KernelCall(emit)


def _d2s_fwd(attrs, ins, ctx):
    _d2s_infer(attrs, [ins[0].shape])
    return [_d2s(ins[0], attrs["block_size"])]


def _s2d_fwd(attrs, ins, ctx):
    _s2d_infer(attrs, [ins[0].shape])
    return [_s2d(ins[0], attrs["block_size"])]


register("depth_to_space", inputs=("data",), attrs={"block_size": Attr("int")},
         infer_shape=_d2s_infer, forward=_d2s_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F.space_to_depth(og[0], block_size=attrs["block_size"])],
         lowering=_lower_blocks(True), doc="Move channel blocks into spatial blocks (DCR order).",
         samples=lambda rng: [Sample([_rand(rng, (1, 8, 2, 3))], {"block_size": 2})])

register("space_to_depth", inputs=("data",), attrs={"block_size": Attr("int")},
         infer_shape=_s2d_infer, forward=_s2d_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F.depth_to_space(og[0], block_size=attrs["block_size"])],
         lowering=_lower_blocks(False), doc="Move spatial blocks into channels (inverse of depth_to_space).",
         samples=lambda rng: [Sample([_rand(rng, (1, 2, 4, 6))], {"block_size": 2})])


# -- argmax_channel -----------------------------------------------------------------------------
def _amc_infer(attrs, ins):
    s = ins[0]
    if s is None:
        return ins, [None]
    if len(s) < 2:
        raise MXNetError("argmax_channel: data must be at least 2-D, got %s" % fmt(s))
    return ins, [tuple(s[:1]) + tuple(s[2:])]


register("argmax_channel", inputs=("data",), attrs={}, infer_shape=_amc_infer,
         forward=lambda attrs, ins, ctx: [np.argmax(ins[0], axis=1).astype(ins[0].dtype)],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.zeros_like(ins[0])],
         lowering=arg_lowering(False, lambda a: 1), grad_check=False, second_order=False,
         doc="Index of the maximum over axis 1 (the channels), as a float array.",
         samples=lambda rng: [Sample([_rand(rng, (3, 4))]), Sample([_rand(rng, (2, 3, 4))])])


# -- _split_v2 ----------------------------------------------------------------------------------
_SV2_ATTRS = {"indices": Attr("shape"), "axis": Attr("int", 1),
              "squeeze_axis": Attr("bool", False), "sections": Attr("int", 0)}


def split_v2_attrs(indices_or_sections, axis=0, squeeze_axis=False):
    """The attributes MXNet's ``split_v2`` passes to ``_split_v2``."""
    if isinstance(indices_or_sections, (int, np.integer)) and not isinstance(indices_or_sections, bool):
        return {"indices": [], "axis": axis, "squeeze_axis": squeeze_axis,
                "sections": int(indices_or_sections)}
    if isinstance(indices_or_sections, tuple):
        return {"indices": [0] + list(indices_or_sections), "axis": axis,
                "squeeze_axis": squeeze_axis, "sections": 0}
    raise ValueError("indices_or_sections must either int or tuple of ints")


def _sv2_n(attrs):
    return attrs["sections"] if attrs["sections"] > 0 else len(attrs["indices"])


def _sv2_bounds(attrs, size):
    if attrs["sections"] > 0:
        n = attrs["sections"]
        if size % n:
            raise MXNetError("split_v2: axis size %d is not divisible by sections=%d" % (size, n))
        return [(i * size // n, (i + 1) * size // n) for i in range(n)]
    idx = list(attrs["indices"])
    if not idx:
        raise MXNetError("split_v2: indices or sections must be given")
    ends = idx[1:] + [size]
    for a, b in zip(idx, ends):
        if not 0 <= a <= b <= size:
            raise MXNetError("split_v2: indices %s are not increasing within the axis size %d"
                             % (tuple(idx), size))
    return list(zip(idx, ends))


def _sv2_infer(attrs, ins):
    s = ins[0]
    n = _sv2_n(attrs)
    if s is None or s[_axis("split_v2", attrs["axis"], len(s))] == 0:
        return ins, [None] * n
    a = _axis("split_v2", attrs["axis"], len(s))
    outs = []
    for lo, hi in _sv2_bounds(attrs, s[a]):
        p = list(s)
        p[a] = hi - lo
        if attrs["squeeze_axis"]:
            if hi - lo != 1:
                raise MXNetError("split_v2: squeeze_axis=True needs parts of size 1 on axis %d, "
                                 "got %d" % (a, hi - lo))
            del p[a]
        outs.append(tuple(p))
    return ins, outs


def _sv2_fwd(attrs, ins, ctx):
    x = ins[0]
    shapes = _sv2_infer(attrs, [x.shape])[1]
    a = _axis("split_v2", attrs["axis"], x.ndim)
    parts = []
    for (lo, hi), s in zip(_sv2_bounds(attrs, x.shape[a]), shapes):
        sl = [slice(None)] * x.ndim
        sl[a] = slice(lo, hi)
        parts.append(np.ascontiguousarray(x[tuple(sl)]).reshape(s))
    return parts


def _lower_sv2(ctx):
    a_ = ctx.attrs
    nd = ctx.in_ndim[0]
    a = _axis("split_v2", a_["axis"], nd)
    x = ctx.ins[0]
    lines = []
    if a_["sections"] > 0:
        n = ctx.tmp("n")
        lines.append("%s = %s.shape[%d] // %d" % (n, x, a, a_["sections"]))
        bounds = [("%d * %s" % (k, n), "%d * %s" % (k + 1, n)) for k in range(a_["sections"])]
    else:
        idx = list(a_["indices"])
        if not idx:
            return None
        bounds = [(str(lo), str(hi) if hi is not None else "")
                  for lo, hi in zip(idx, idx[1:] + [None])]
    for (lo, hi), o in zip(bounds, ctx.outs):
        part = lo if a_["squeeze_axis"] else "%s:%s" % (lo, hi)
        lines.append(assign(o, x + index_key(nd, {a: part})))
    return lines


def _sv2_grad(F, attrs, ins, outs, og, ctx):
    parts = list(og)
    if attrs["squeeze_axis"]:
        parts = [F.expand_dims(g, axis=attrs["axis"]) for g in parts]
    return [F.Concat(*parts, num_args=len(parts), dim=attrs["axis"])]


register("_split_v2", inputs=("data",), attrs=dict(_SV2_ATTRS), num_outputs=_sv2_n,
         infer_shape=_sv2_infer, forward=_sv2_fwd, gradient=_sv2_grad,
         lowering=KernelCall(_lower_sv2),
         doc="Split into equal sections or at cut points along an axis (split_v2).",
         samples=lambda rng: [
             Sample([_rand(rng, (2, 6))], {"indices": (), "axis": 1, "sections": 3}),
             Sample([_rand(rng, (6, 2))], {"indices": (0, 2, 5), "axis": 0}),
             Sample([_rand(rng, (3, 2))], {"indices": (), "axis": 0, "sections": 3,
                                           "squeeze_axis": True})])
