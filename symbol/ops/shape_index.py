"""Index selection: pick, one_hot, take.

Gradients that need their input's shape use the helper ops of symbol/ops/shape.py note
*scatter-gradients*.
"""
import numpy as np
from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt
from ._shape_util import _axis, _known, _like_infer, _rand
from ._lowering import KernelCall
from ._shape_lower import view3


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


def _pick_views(ctx, big, nd, index):
    """Statements viewing ``big`` (outer, axis, inner) and ``index`` flat, and the loops
    over (outer, inner) with ``k`` the valid index and ``p`` the flat position."""
    from ._shape_lower import view3
    a = _pick_axis(ctx.attrs, nd)
    lv, b3 = view3(ctx, big, nd, a, a)
    ix, o, i, k, p, c = (ctx.tmp("x"), ctx.tmp("i"), ctx.tmp("i"), ctx.tmp("k"), ctx.tmp("p"),
                         ctx.tmp("c"))
    return lv + ["%s = %s.reshape(%s.size)" % (ix, index, index),
                 "%s = %s.shape[1]" % (c, b3),
                 "for %s in range(%s.shape[0]):" % (o, b3),
                 "    for %s in range(%s.shape[2]):" % (i, b3),
                 "        %s = %s * %s.shape[2] + %s" % (p, o, b3, i),
                 "        %s = int(%s[%s])" % (k, ix, p),
                 "        " + _lower_pick_index(ctx, k, c)], b3, o, i, k, p


def _lower_pick(ctx):
    """Data viewed (outer, axis, inner), index and output flat: one loop nest."""
    if ctx.in_ndim[0] == 0 or ctx.attrs["axis"] is None:
        return None
    x, index = ctx.ins
    f = ctx.tmp("f")
    lines, b3, o, i, k, p = _pick_views(ctx, x, ctx.in_ndim[0], index)
    return ["%s = %s.reshape(%s.size)" % (f, ctx.outs[0], ctx.outs[0])] + lines + [
        "        %s[%s] = %s[%s, %s, %s]" % (f, p, b3, o, k, i)]


register("pick", inputs=("data", "index"), attrs=dict(_PICK_ATTRS),
         infer_shape=_pick_infer, infer_type=_index_type_strict("pick"), forward=_pick_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._pick_scatter(og[0], ins[1], ins[0], **_pick_kw(attrs)), None],
         lowering=KernelCall(_lower_pick, any_dtype=True), samples=_pick_samples, aliases=("choose_element_0index",),
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
    """Zeros of ``like``'s shape with the gradient written at the picked positions."""
    if ctx.out_ndim[0] == 0 or ctx.attrs["axis"] is None:
        return None
    g, index, _like = ctx.ins
    out = ctx.outs[0]
    f = ctx.tmp("g")
    lines, b3, o, i, k, p = _pick_views(ctx, out, ctx.out_ndim[0], index)
    return ["%s[...] = 0" % out, "%s = %s.reshape(%s.size)" % (f, g, g)] + lines + [
        "        %s[%s, %s, %s] = %s[%s]" % (b3, o, k, i, f, p)]


register("_pick_scatter", inputs=("data", "index", "like"), attrs=dict(_PICK_ATTRS),
         infer_shape=_like_infer("_pick_scatter"), infer_type=_index_type, forward=_ps_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F.pick(og[0], ins[1], **_pick_kw(attrs)), None, None],
         lowering=KernelCall(_lower_pick_scatter, any_dtype=True),
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


def _lower_one_hot(ctx):
    a = ctx.attrs
    idx, out = ctx.ins[0], ctx.outs[0]
    f, o = ctx.tmp("f"), ctx.tmp("o")
    return ["%s = %s.reshape(%s.size)" % (f, idx, idx),
            "%s = %s.reshape((%s.size, %d))" % (o, out, idx, a["depth"]),
            "%s(%s, %s, %s, %s)" % (ctx.fn("one_hot_rows"), f, o, ctx.const(a["on_value"]),
                                    ctx.const(a["off_value"]))]


register("one_hot", inputs=("indices",),
         attrs={"depth": Attr("int", doc="size of the one-hot axis"),
                "on_value": Attr("float", 1.0), "off_value": Attr("float", 0.0),
                "dtype": Attr("dtype", "float32", doc="output dtype")},
         infer_shape=_one_hot_infer,
         infer_type=lambda attrs, ins: (ins, [attrs["dtype"]]),
         forward=_one_hot_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.zeros_like(ins[0])],
         grad_check=False,
         lowering=KernelCall(_lower_one_hot, uses=("one_hot_rows",), any_dtype=True),
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


def _lower_take(scatter):
    """take / _take_scatter: the data viewed (outer, axis, inner), the indices flat, the
    taken rows (outer, m, inner); mode 'raise' runs eagerly (its error)."""
    def emit(ctx):
        a = ctx.attrs
        if a["mode"] == "raise":
            return None
        if scatter:
            g, index, _like = ctx.ins
            big, nd, small = ctx.outs[0], ctx.out_ndim[0], g
        else:
            big, index = ctx.ins
            nd, small = ctx.in_ndim[0], ctx.outs[0]
        if nd == 0:
            return None
        ax = _axis("take", a["axis"], nd)
        lb, b3 = view3(ctx, big, nd, ax, ax)
        f, s3 = ctx.tmp("f"), ctx.tmp("s")
        lines = lb + ["%s = %s.reshape(%s.size)" % (f, index, index),
                      "%s = %s.reshape((%s.shape[0], %s.size, %s.shape[2]))"
                      % (s3, small, b3, index, b3)]
        wrap = a["mode"] == "wrap"
        if scatter:
            return lines + ["%s(%s, %s, %s, %s)" % (ctx.fn("take_scatter_3d"), s3, f, b3, wrap)]
        return lines + ["%s(%s, %s, %s, %s)" % (ctx.fn("take_3d"), b3, f, s3, wrap)]
    return KernelCall(emit, uses=("take_scatter_3d",) if scatter else ("take_3d",),
                      any_dtype=True)


register("take", inputs=("a", "indices"), attrs=dict(_TAKE_ATTRS),
         infer_shape=_take_infer, infer_type=_index_type_strict("take"), forward=_take_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._take_scatter(og[0], ins[1], ins[0], **_take_kw(attrs)), None],
         lowering=_lower_take(False), samples=_take_samples,
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
         lowering=_lower_take(True),
         samples=lambda rng: [Sample([_rand(rng, np.take(s.inputs[0], _take_index(
             dict(_TAKE_ATTRS_DEFAULTS, **s.attrs), s.inputs[1],
             s.inputs[0].shape[s.attrs.get("axis", 0)]), axis=s.attrs.get("axis", 0)).shape),
             s.inputs[1], s.inputs[0]], s.attrs) for s in _take_samples(rng)],
         doc="Zeros of ``like``'s shape with ``data`` added at the taken positions "
             "(the gradient of take; repeated indices accumulate).")

_TAKE_ATTRS_DEFAULTS = {"axis": 0, "mode": "clip"}
