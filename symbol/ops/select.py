"""Sorting and index-selection operators: topk, sort, argsort, gather_nd, scatter_nd, diag
(MXNet 1.9.1's semantics, FINDINGS.md "Legacy names and ops" / "Sorting").

* topk(data, axis=-1, k=1, ret_typ='indices', is_ascend=False, dtype='float32'): ``k=0``
  means all, ``axis=None`` flattens; ties are stable (the lower index first, also when
  descending); indices have ``dtype`` (float32 by default), values and masks the data's.
  ``ret_typ='value'`` has the indices as a hidden second output (its gradient scatters the
  head gradient back to the selected positions), 'both' shows both, 'mask' gives 0/1.
* sort = topk(k=all, 'value') with the indices hidden; argsort = topk(k=all, 'indices').
* gather_nd(data, indices): ``indices`` of shape (M, ...) index the first M axes (negative
  indices wrap); its gradient accumulates repeated picks.  scatter_nd(data, indices, shape)
  fills zeros elsewhere.
* diag(data, k=0, axis1=0, axis2=1): the k-th diagonal of a >= 2-D array (last axis), or a
  matrix with a 1-D array on its k-th diagonal.
"""
import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, norm_axis
from ._lowering import KernelCall

_INDEX_DTYPES = ("float16", "float32", "float64", "uint8", "int32", "int64")


def _rand(rng, shape):
    return rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64) + \
        rng.uniform(0, 0.1, size=shape)


def _axis_of(op, attrs, nd):
    ax = attrs["axis"]
    return None if ax is None else norm_axis(op, ax, nd)


def _k_of(op, attrs, n):
    k = attrs["k"]
    if k < 0 or k > n:
        raise MXNetError("%s: k=%d must be in [0, %d] (0 means all) for an axis of size %d"
                         % (op, k, n, n))
    return n if k == 0 else k


def _order(x, axis, ascend):
    """Stable order along ``axis`` (lower index first among ties, in both directions)."""
    if ascend:
        return np.argsort(x, axis=axis, kind="stable")
    if x.dtype.kind == "u":
        key = x.max() - x if x.size else x
    elif x.dtype.kind == "b":
        key = ~x
    else:
        key = -x
    return np.argsort(key, axis=axis, kind="stable")


def _topk_np(attrs, x):
    """(values, indices, mask) of topk on ``x`` (flattened when axis is None)."""
    axis = _axis_of("topk", attrs, x.ndim)
    data = x.reshape(-1) if axis is None else x
    ax = 0 if axis is None else axis
    k = _k_of("topk", attrs, data.shape[ax])
    idx = np.take(_order(data, ax, attrs["is_ascend"]), np.arange(k), axis=ax)
    vals = np.take_along_axis(data, idx, axis=ax)
    mask = np.zeros_like(data)
    np.put_along_axis(mask, idx, 1, axis=ax)
    return vals, idx, mask.reshape(x.shape)


def _topk_out_shape(attrs, d):
    axis = _axis_of("topk", attrs, len(d))
    if axis is None:
        n = int(np.prod(d))
        return (_k_of("topk", attrs, n),)
    out = list(d)
    out[axis] = _k_of("topk", attrs, d[axis])
    return tuple(out)


_TOPK_ATTRS = {"axis": Attr("int_or_none", -1), "k": Attr("int", 1),
               "ret_typ": Attr("str", "indices", choices=("value", "indices", "mask", "both")),
               "is_ascend": Attr("bool", False),
               "dtype": Attr("str", "float32", choices=_INDEX_DTYPES)}


def _topk_nout(attrs):
    return 2 if attrs["ret_typ"] in ("value", "both") else 1


def _topk_infer(attrs, ins):
    d = ins[0]
    if d is None:
        return ins, [None] * _topk_nout(attrs)
    if attrs["ret_typ"] == "mask":
        return ins, [tuple(d)]
    s = _topk_out_shape(attrs, d)
    return ins, [s] * _topk_nout(attrs)


def _topk_type(attrs, ins):
    t = ins[0]
    rt = attrs["ret_typ"]
    if rt in ("value", "both"):
        return ins, [t, attrs["dtype"]]
    if rt == "mask":
        return ins, [t]
    return ins, [attrs["dtype"]]


def _topk_fwd(attrs, ins, ctx):
    x = ins[0]
    vals, idx, mask = _topk_np(attrs, x)
    idx = idx.astype(attrs["dtype"])
    rt = attrs["ret_typ"]
    if rt in ("value", "both"):
        return [vals, idx]
    if rt == "mask":
        return [mask]
    return [idx]


def _topk_grad(F, attrs, ins, outs, og, ctx):
    if attrs["ret_typ"] in ("value", "both"):
        return [F._topk_scatter(og[0], outs[1], ins[0], axis=attrs["axis"])]
    return [F.zeros_like(ins[0])]


# -- lowerings (agjit.compiler.kernels_sort) -------------------------------------------------
def _view3(ctx, lines, var, nd, ax):
    """``var`` viewed as (pre, n, post) around axis ``ax`` (None: (1, size, 1))."""
    t = ctx.tmp("v")
    if ax is None:
        lines.append("%s = %s.reshape((1, %s.size, 1))" % (t, var, var))
        return t

    def prod(ks):
        return " * ".join(["1"] + ["%s.shape[%d]" % (var, k) for k in ks])
    lines.append("%s = %s.reshape((%s, %s.shape[%d], %s))"
                 % (t, var, prod(range(ax)), var, ax, prod(range(ax + 1, nd))))
    return t


def _lower_topk(kind):
    """topk / sort / argsort: one topk_rows call over the data viewed (pre, n, post), writing
    the outputs these attrs have (values, indices in their dtype, mask); NaN and ties as the
    eager kernel (agjit/compiler/kernels_sort.py)."""
    def emit(ctx):
        a = ctx.attrs
        nd = ctx.in_ndim[0]
        if nd == 0:
            return None
        ax = None if a["axis"] is None else norm_axis(kind, a["axis"], nd)
        lines = []
        x = _view3(ctx, lines, ctx.ins[0], nd, ax)
        n = "%s.shape[1]" % x
        if kind == "topk":
            rt = a["ret_typ"]
            k = n if a["k"] == 0 else "np.int64(%d)" % a["k"]
            outs = {"value": ("vals", "idx"), "both": ("vals", "idx"), "indices": ("idx",),
                    "mask": ("mask",)}[rt]
        else:
            k = n
            outs = ("vals", "idx") if kind == "sort" else ("idx",)
        got = {w: _view3(ctx, lines, o, ctx.out_ndim[i], ax)
               for i, (w, o) in enumerate(zip(outs, ctx.outs))}
        lines.append("%s(%s, %s, %s, %s, %s, %s, %s, %s, %s)" % (
            ctx.fn("topk_rows"), x, got.get("vals", x), got.get("idx", x), got.get("mask", x),
            k, bool(a["is_ascend"]), "vals" in got, "idx" in got, "mask" in got))
        return lines
    return KernelCall(emit, uses=("topk_rows",), any_dtype=True)


def _lower_topk_scatter(ctx):
    nd = ctx.out_ndim[0]
    a = ctx.attrs["axis"]
    ax = None if a is None else norm_axis("_topk_scatter", a, nd)
    lines = []
    g = _view3(ctx, lines, ctx.ins[0], ctx.in_ndim[0], ax)
    i = _view3(ctx, lines, ctx.ins[1], ctx.in_ndim[1], ax)
    o = _view3(ctx, lines, ctx.outs[0], nd, ax)
    lines.append("%s(%s, %s, %s)" % (ctx.fn("topk_scatter"), g, i, o))
    return lines


register("topk", inputs=("data",), attrs=dict(_TOPK_ATTRS), infer_shape=_topk_infer,
         infer_type=_topk_type, forward=_topk_fwd, gradient=_topk_grad,
         num_outputs=_topk_nout,
         num_visible=lambda attrs: 2 if attrs["ret_typ"] == "both" else 1,
         output_names=lambda attrs: ("output0", "output1") if _topk_nout(attrs) == 2 else ("output",),
         lowering=_lower_topk("topk"), second_order=False,
         doc="The k largest (or smallest) elements along an axis: indices, values, both, or a "
             "mask (see the module docstring).",
         samples=lambda rng: [Sample([_rand(rng, (3, 4))], {"k": 2, "ret_typ": "value"}),
                              Sample([_rand(rng, (3, 4))], {"k": 2, "ret_typ": "both", "axis": 0,
                                                            "is_ascend": True}),
                              Sample([_rand(rng, (3, 4))], {"k": 3, "axis": None}),
                              Sample([_rand(rng, (2, 3))], {"k": 0, "ret_typ": "mask"})])


def _scatter_infer(attrs, ins):
    return ins, [ins[2]]


def _topk_scatter_fwd(attrs, ins, ctx):
    g, idx, like = ins
    out = np.zeros(like.size if attrs["axis"] is None else like.shape, dtype=g.dtype)
    ax = 0 if attrs["axis"] is None else norm_axis("_topk_scatter", attrs["axis"], like.ndim)
    np.put_along_axis(out, idx.astype(np.int64), g, axis=ax)
    return [out.reshape(like.shape)]


register("_topk_scatter", inputs=("ograd", "indices", "like"),
         attrs={"axis": Attr("int_or_none", -1)}, infer_shape=_scatter_infer,
         infer_type=lambda attrs, ins: (ins, [ins[0]]), forward=_topk_scatter_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [None, None, None], differentiable=False,
         lowering=KernelCall(_lower_topk_scatter, uses=("topk_scatter",), any_dtype=True),
         grad_check=False,
         doc="The gradient of topk/sort values: the head gradient put back at the selected "
             "indices of a zero array shaped like the data.",
         samples=lambda rng: [Sample([rng.standard_normal((3, 2)), np.array([[1., 0], [3, 2], [0, 1]]),
                                      np.zeros((3, 4))])])


def _sort_attrs(attrs):
    return {"axis": attrs["axis"], "k": 0, "is_ascend": attrs["is_ascend"]}


_SORT_ATTRS = {"axis": Attr("int_or_none", -1), "is_ascend": Attr("bool", True)}


def _sort_fwd(attrs, ins, ctx):
    vals, idx, _ = _topk_np(_sort_attrs(attrs), ins[0])
    if attrs["axis"] is None:
        return [vals, idx.astype(np.float32)]
    return [vals, idx.astype(np.float32)]


def _sort_infer(attrs, ins):
    d = ins[0]
    if d is None:
        return ins, [None, None]
    s = (int(np.prod(d)),) if attrs["axis"] is None else tuple(d)
    return ins, [s, s]


register("sort", inputs=("data",), attrs=dict(_SORT_ATTRS), infer_shape=_sort_infer,
         infer_type=lambda attrs, ins: (ins, [ins[0], "float32"]), forward=_sort_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._topk_scatter(og[0], outs[1], ins[0], axis=attrs["axis"])],
         num_outputs=2, num_visible=1, output_names=("output0", "output1"),
         lowering=_lower_topk("sort"), second_order=False,
         doc="Sorted along an axis (stable; axis=None flattens); the indices are a hidden output.",
         samples=lambda rng: [Sample([_rand(rng, (3, 4))]),
                              Sample([_rand(rng, (3, 4))], {"axis": 0, "is_ascend": False}),
                              Sample([_rand(rng, (2, 3))], {"axis": None})])

register("argsort", inputs=("data",),
         attrs=dict(_SORT_ATTRS, dtype=Attr("str", "float32", choices=_INDEX_DTYPES)),
         infer_shape=lambda attrs, ins: (ins, [None if ins[0] is None else (
             (int(np.prod(ins[0])),) if attrs["axis"] is None else tuple(ins[0]))]),
         infer_type=lambda attrs, ins: (ins, [attrs["dtype"]]),
         forward=lambda attrs, ins, ctx: [_topk_np(_sort_attrs(attrs), ins[0])[1].astype(attrs["dtype"])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.zeros_like(ins[0])],
         lowering=_lower_topk("argsort"), grad_check=False,
         doc="The stable sorting order along an axis (indices, float32 unless dtype says).",
         samples=lambda rng: [Sample([_rand(rng, (3, 4))]),
                              Sample([_rand(rng, (3, 4))], {"is_ascend": False, "dtype": "int32"})])


# -- gather_nd / scatter_nd --------------------------------------------------------------------
def _nd_index(op, idx, data_shape):
    idx = np.asarray(idx)
    if idx.ndim < 1:
        raise MXNetError("%s: indices must have at least 1 dimension, got shape %s"
                         % (op, fmt(idx.shape)))
    m = idx.shape[0]
    if m > len(data_shape):
        raise MXNetError("%s: indices index %d axes but the data has %d (data %s, indices %s)"
                         % (op, m, len(data_shape), fmt(data_shape), fmt(idx.shape)))
    ii = idx.astype(np.int64)
    out = []
    for a in range(m):
        n = data_shape[a]
        ia = np.where(ii[a] < 0, ii[a] + n, ii[a])
        if ia.size and (ia.min() < 0 or ia.max() >= n):
            raise IndexError("%s: index %d out of range for axis %d of size %d"
                             % (op, int(ii[a].flat[int(np.argmax((ia < 0) | (ia >= n)))]), a, n))
        out.append(ia)
    return tuple(out)


def _lower_nd(kind):
    """gather_nd ('gather'), scatter_nd ('scatter') and _gather_nd_backward ('add'): the
    indexed array viewed (rows of its first M axes, rest), the indices (M, Y), the other
    side (Y, rest); one library kernel."""
    def emit(ctx):
        if kind == "gather":
            (big, idx), small = ctx.ins, ctx.outs[0]
            nd = ctx.in_ndim[0]
        else:
            small, idx = ctx.ins[0], ctx.ins[1]
            big, nd = ctx.outs[0], ctx.out_ndim[0]
        if ctx.in_ndim[1] < 1:
            return None
        m = ctx.in_shapes[1][0]          # the number of indexed axes: part of the op's form
        if m > nd or m < 1:
            return None
        b2, i2, s2, dims = ctx.tmp("b"), ctx.tmp("i"), ctx.tmp("s"), ctx.tmp("d")
        rows = " * ".join(["1"] + ["%s.shape[%d]" % (big, k) for k in range(m)])
        rest = " * ".join(["1"] + ["%s.shape[%d]" % (big, k) for k in range(m, nd)])
        lines = ["%s = %s.reshape((%s, %s))" % (b2, big, rows, rest),
                 "%s = %s.reshape((%d, %s.size // %d))" % (i2, idx, m, idx, m),
                 "%s = %s.reshape((%s.shape[1], %s))" % (s2, small, i2, rest),
                 "%s = (%s,)" % (dims, ", ".join("%s.shape[%d]" % (big, k) for k in range(m)))]
        if kind == "gather":
            return lines + ["%s(%s, %s, %s, %s)" % (ctx.fn("gather_nd_rows"), b2, i2, dims, s2)]
        return lines + ["%s(%s, %s, %s, %s, %s)" % (ctx.fn("scatter_nd_rows"), s2, i2, dims, b2,
                                                    kind == "add")]
    return KernelCall(emit, uses=("gather_nd_rows",) if kind == "gather" else ("scatter_nd_rows",),
                      any_dtype=True)


def _gather_infer(attrs, ins):
    d, i = ins
    if d is None or i is None:
        return ins, [None]
    if len(i) < 1 or i[0] > len(d):
        raise MXNetError("gather_nd: indices %s cannot index data %s" % (fmt(i), fmt(d)))
    return ins, [tuple(i[1:]) + tuple(d[i[0]:])]


register("gather_nd", inputs=("data", "indices"), infer_shape=_gather_infer,
         infer_type=lambda attrs, ins: (ins, [ins[0]]),
         forward=lambda attrs, ins, ctx: [ins[0][_nd_index("gather_nd", ins[1], ins[0].shape)]],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._gather_nd_backward(og[0], ins[1], ins[0]), None],
         lowering=_lower_nd("gather"), grad_check=True,
         doc="out[y...] = data[indices[0][y], ..., indices[M-1][y], ...] (negative indices wrap).",
         samples=lambda rng: [Sample([rng.standard_normal((3, 4)), np.array([[0., 2, 0], [1, 3, 1]])]),
                              Sample([rng.standard_normal((3, 4)), np.array([[0., 2]])])])


def _gnd_back(attrs, ins, ctx):
    g, idx, like = ins
    out = np.zeros(like.shape, dtype=g.dtype)
    np.add.at(out, _nd_index("gather_nd", idx, like.shape), g)
    return [out]


register("_gather_nd_backward", inputs=("ograd", "indices", "like"),
         infer_shape=lambda attrs, ins: (ins, [ins[2]]),
         infer_type=lambda attrs, ins: (ins, [ins[0]]), forward=_gnd_back,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.gather_nd(og[0], ins[1]), None, None],
         lowering=_lower_nd("add"), grad_check=False,
         doc="gather_nd's gradient: the head gradient added at the gathered positions (repeats "
             "accumulate) of a zero array shaped like the data.",
         samples=lambda rng: [Sample([rng.standard_normal((3,)), np.array([[0., 2, 0], [1, 3, 1]]),
                                      np.zeros((3, 4))])])


def _scatter_nd_infer(attrs, ins):
    return ins, [tuple(attrs["shape"])]


def _scatter_nd_fwd(attrs, ins, ctx):
    data, idx = ins
    out = np.zeros(attrs["shape"], dtype=data.dtype)
    out[_nd_index("scatter_nd", idx, attrs["shape"])] = data
    return [out]


register("scatter_nd", inputs=("data", "indices"), attrs={"shape": Attr("shape")},
         infer_shape=_scatter_nd_infer, infer_type=lambda attrs, ins: (ins, [ins[0]]),
         forward=_scatter_nd_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.gather_nd(og[0], ins[1]), None],
         lowering=_lower_nd("scatter"),
         doc="A zero array of ``shape`` with data[y...] written at indices[:, y...].",
         samples=lambda rng: [Sample([rng.standard_normal((3,)), np.array([[0., 2, 1], [1, 3, 0]])],
                                     {"shape": (3, 4)})])


# -- diag ------------------------------------------------------------------------------------------
_DIAG_ATTRS = {"k": Attr("int", 0), "axis1": Attr("int", 0), "axis2": Attr("int", 1)}


def _diag_np(attrs, x):
    if x.ndim == 1:
        return np.diag(x, attrs["k"])
    a1, a2 = norm_axis("diag", attrs["axis1"], x.ndim), norm_axis("diag", attrs["axis2"], x.ndim)
    if a1 == a2:
        raise MXNetError("diag: axis1 and axis2 must differ, got %d and %d" % (a1, a2))
    return np.diagonal(x, attrs["k"], a1, a2).copy()


def _diag_infer(attrs, ins):
    d = ins[0]
    if d is None:
        return ins, [None]
    if len(d) == 0:
        raise MXNetError("diag: data must have at least 1 dimension")
    return ins, [_diag_np(attrs, np.zeros(d, dtype=np.int8)).shape]


def _diag_back(attrs, ins, ctx):
    g, like = ins
    if like.ndim == 1:
        return [np.diagonal(g, attrs["k"]).copy()]
    out = np.zeros(like.shape, dtype=g.dtype)
    a1, a2 = norm_axis("diag", attrs["axis1"], like.ndim), norm_axis("diag", attrs["axis2"], like.ndim)
    view = np.diagonal(out, attrs["k"], a1, a2)
    view.setflags(write=True)
    view[...] = g
    return [out]


register("diag", inputs=("data",), attrs=dict(_DIAG_ATTRS), infer_shape=_diag_infer,
         forward=lambda attrs, ins, ctx: [_diag_np(attrs, ins[0])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._diag_backward(og[0], ins[0], k=attrs["k"], axis1=attrs["axis1"],
                              axis2=attrs["axis2"])],
         lowerable=False,
         doc="The k-th diagonal of a >= 2-D array, or a matrix with a 1-D array on its k-th "
             "diagonal.",
         samples=lambda rng: [Sample([rng.standard_normal((3, 4))]),
                              Sample([rng.standard_normal((3, 4))], {"k": 1}),
                              Sample([rng.standard_normal((3, 4))], {"k": -2}),
                              Sample([rng.standard_normal((3,))]),
                              Sample([rng.standard_normal((2, 3, 3))], {"axis1": 1, "axis2": 2})])

register("_diag_backward", inputs=("ograd", "like"), attrs=dict(_DIAG_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [ins[1]]),
         infer_type=lambda attrs, ins: (ins, [ins[0]]), forward=_diag_back,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F.diag(og[0], k=attrs["k"], axis1=attrs["axis1"], axis2=attrs["axis2"]), None],
         lowerable=False, grad_check=False, second_order=False,
         doc="diag's gradient: the head gradient on the k-th diagonal of zeros shaped like "
             "the data (or the k-th diagonal of it for 1-D data).",
         samples=lambda rng: [Sample([rng.standard_normal((3,)), np.zeros((3, 4))])])


# -- cumsum (MXNet 1.9.1's mx.nd.cumsum / mx.sym.cumsum record the op ``_np_cumsum``) --------
def _cumsum_np(attrs, x, reverse=False):
    ax = attrs["axis"]
    if ax is None:
        x = x.reshape(-1)
        ax = 0
    else:
        ax = norm_axis("cumsum", ax, x.ndim)
    dt = attrs["dtype"] if attrs["dtype"] is not None else x.dtype
    if reverse:
        return np.flip(np.cumsum(np.flip(x, ax), axis=ax, dtype=dt), ax)
    return np.cumsum(x, axis=ax, dtype=dt)


def _cumsum_infer(attrs, ins):
    d = ins[0]
    if d is None:
        return ins, [None]
    if attrs["axis"] is None:
        return ins, [(int(np.prod(d)),)]
    norm_axis("cumsum", attrs["axis"], max(len(d), 1))
    return ins, [tuple(d)]


_CUMSUM_ATTRS = {"axis": Attr("int_or_none", None), "dtype": Attr("dtype", None)}
register("_np_cumsum", inputs=("a",), attrs=dict(_CUMSUM_ATTRS), aliases=("cumsum",),
         infer_shape=_cumsum_infer,
         infer_type=lambda attrs, ins: (ins, [attrs["dtype"] or ins[0]]),
         forward=lambda attrs, ins, ctx: [_cumsum_np(attrs, ins[0])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._backward_np_cumsum(og[0], ins[0], axis=attrs["axis"])],
         lowerable=False,
         doc="Cumulative sum along ``axis`` (None: of the flattened array).",
         samples=lambda rng: [Sample([rng.standard_normal((3, 4))]),
                              Sample([rng.standard_normal((3, 4))], {"axis": 1}),
                              Sample([rng.standard_normal((2, 3, 2))], {"axis": -2})])
register("_backward_np_cumsum", inputs=("ograd", "like"), attrs={"axis": Attr("int_or_none", None)},
         infer_shape=lambda attrs, ins: (ins, [ins[1]]),
         infer_type=lambda attrs, ins: (ins, [ins[1]]),
         forward=lambda attrs, ins, ctx: [
             _cumsum_np({"axis": attrs["axis"], "dtype": None}, ins[0], reverse=True)
             .reshape(ins[1].shape).astype(ins[1].dtype, copy=False)],
         gradient=lambda F, attrs, ins, outs, og, ctx: [None, None],
         lowerable=False, grad_check=False, second_order=False,
         doc="cumsum's gradient: the reversed cumulative sum of the head gradient, shaped "
             "like the data.",
         samples=lambda rng: [Sample([rng.standard_normal((3, 4)), np.zeros((3, 4))], {"axis": 1})])
