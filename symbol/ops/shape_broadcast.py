"""Replication: broadcast_to, broadcast_axis, tile, repeat.

Gradients that need their input's shape use the helper ops of symbol/ops/shape.py note
*scatter-gradients*.
"""
import math
import numpy as np
from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt
from ._shape_util import _axis, _first_type, _known, _like_infer, _rand
from ._shape_lower import assign, call


# ---------------------------------------------------------------------------------------
# lowerings (symbol/ops/_shape_lower.py): broadcasts fuse as "{0}" (the fused loop reads a
# size-1 axis at index 0); tile / repeat and their sums are loop nests over the larger array
# ---------------------------------------------------------------------------------------
def _lower_broadcast(ctx):
    ins, out = ctx.in_shapes[0], ctx.out_shapes[0]
    if len(ins) != len(out) or any(a != b and a != 1 for a, b in zip(ins, out)):
        return None
    return "{0}"


def _padded(ctx, var, nd, k):
    """``var`` (nd-D) viewed with k - nd leading axes of size 1."""
    if nd == k:
        return [], var
    t = ctx.tmp("p")
    dims = ["1"] * (k - nd) + ["%s.shape[%d]" % (var, i) for i in range(nd)]
    return ["%s = %s.reshape((%s,))" % (t, var, ", ".join(dims))], t


def _nest(ctx, var, nd):
    from ._lowering import loop_nest
    return loop_nest(var, nd, None, ctx)


def _lower_tile(ctx):
    from ._lowering import index_expr
    k = ctx.out_ndim[0]
    pre, x = _padded(ctx, ctx.ins[0], ctx.in_ndim[0], k)
    out = ctx.outs[0]
    loops, idx, ind = _nest(ctx, out, k)
    src = ["%s %% %s.shape[%d]" % (i, x, d) for d, i in enumerate(idx)]
    return pre + loops + ["%s%s = %s" % (ind, index_expr(out, idx), index_expr(x, src))]


def _lower_tile_sum(ctx):
    from ._lowering import index_expr
    g = ctx.ins[0]
    k = ctx.in_ndim[0]
    pre, o = _padded(ctx, ctx.outs[0], ctx.out_ndim[0], k)
    loops, idx, ind = _nest(ctx, g, k)
    dst = ["%s %% %s.shape[%d]" % (i, o, d) for d, i in enumerate(idx)]
    return [assign(ctx.outs[0], "0")] + pre + loops + [
        "%s%s += %s" % (ind, index_expr(o, dst), index_expr(g, idx))]


def _repeat_lines(ctx, big, small, nd, r, acc):
    """Loops over ``big`` (the repeated array) with ``small`` indexed at i // r on the
    repeated axis; ``acc``: small += big (the sum), else big = small."""
    from ._lowering import index_expr
    a = ctx.attrs["axis"]
    pre = []
    if a is None:
        fb, fs = ctx.tmp("f"), ctx.tmp("f")
        pre = ["%s = %s.reshape(-1)" % (fb, big), "%s = %s.reshape(-1)" % (fs, small)]
        big, small, nd, a = fb, fs, 1, 0
    else:
        a = _axis("repeat", a, nd)
    loops, idx, ind = _nest(ctx, big, nd)
    sidx = ["%s // %d" % (i, r) if d == a else i for d, i in enumerate(idx)]
    if acc:
        body = "%s%s += %s" % (ind, index_expr(small, sidx), index_expr(big, idx))
    else:
        body = "%s%s = %s" % (ind, index_expr(big, idx), index_expr(small, sidx))
    return pre + loops + [body]


def _lower_repeat(ctx):
    r = ctx.attrs["repeats"]
    if r <= 0:
        return None
    return _repeat_lines(ctx, ctx.outs[0], ctx.ins[0], ctx.in_ndim[0], r, False)


def _lower_repeat_sum(ctx):
    r = ctx.attrs["repeats"]
    if r <= 0:
        return None
    return [assign(ctx.outs[0], "0")] + _repeat_lines(ctx, ctx.ins[0], ctx.outs[0],
                                                      ctx.out_ndim[0], r, True)


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
         gradient=_sum_back, lowering=call(_lower_broadcast),
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
         gradient=_sum_back, lowering=call(_lower_broadcast),
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
         lowering=call(_lower_tile),
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
         lowering=call(_lower_tile_sum),
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
         lowering=call(_lower_repeat),
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
         lowering=call(_lower_repeat_sum),
         samples=lambda rng: [Sample([_rand(rng, (4, 3)), _rand(rng, (2, 3))], {"repeats": 2, "axis": 0}),
                              Sample([_rand(rng, (18,)), _rand(rng, (2, 3))], {"repeats": 3})],
         doc="Sum the repeated copies of ``data`` back to ``like``'s shape (the gradient of repeat).")
