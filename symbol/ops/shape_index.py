"""Index selection: pick, one_hot, take.

Gradients that need their input's shape use the helper ops of symbol/ops/shape.py note
*scatter-gradients*.
"""
import numpy as np
from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt
from ._shape_util import _axis, _known, _like_infer, _rand


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
