"""Operators of MXNet 1.9.1 that older and contrib programs call and the other op files do
not define: LRN, moments, ravel_multi_index / unravel_index, _histogram, all_finite /
multi_all_finite, amp_cast / amp_multicast, and the contrib helpers BilinearResize2D,
AdaptiveAvgPooling2D, arange_like, div_sqrt_dim, the interleaved attention matmuls, plus the
spatial-transformer family (GridGenerator, BilinearSampler, SpatialTransformer).

Gradients are written with registered ops (registry note *one-definition-per-op*); where the
adjoint is a scatter the NumPy kernel of a ``_backward_*`` helper computes it (those helpers
are not differentiated again).  The numbers are MXNet 1.9.1's: tests/test_nn_misc.py checks
them against tests/golden/nn_misc_mxnet.json, recorded from real MXNet.

Note: bilinear-resize-geometry
    Output size (mode ``size``): ``int(h * scale_height), int(w * scale_width)`` when
    scale_height is given, else ``height, width``; ``odd_scale``: an odd side becomes
    ``(n - 1) * scale + 1``, an even one ``int(n * scale)``; ``like``: the second input's
    spatial size; ``to_{even,odd}_{down,up}``: the nearest even/odd size below/above (a side
    that already is so stays).  Source coordinate of output index ``i`` along a side of
    input size ``n`` and output size ``m``: ``i * (n - 1) / (m - 1)`` with align_corners,
    else ``max(0, (i + 0.5) * n / m - 0.5)``; a side of output size 1 always reads index 0.
    The lower neighbour is ``floor(src)``, the upper ``min(lower + 1, n - 1)``.

Note: spatial-sampler-convention
    GridGenerator's grid holds normalised source coordinates (x, y) in [-1, 1] per target
    pixel: affine: ``theta (2x3) @ (x_t, y_t, 1)`` over ``x_t = linspace(-1, 1, W)``,
    ``y_t = linspace(-1, 1, H)``; warp: ``((flow_x + j) * 2 / (W - 1) - 1, (flow_y + i) * 2 /
    (H - 1) - 1)``.  BilinearSampler reads ``data`` at ``((x + 1) (W_in - 1) / 2, (y + 1)
    (H_in - 1) / 2)`` bilinearly, neighbours outside the input contributing zero.
"""
import math

import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, merge_shape, unary_infer

_BOOL_F = Attr("bool", False)
_BOOL_T = Attr("bool", True)


def _rand(rng, shape, lo=-1.0, hi=1.0):
    return rng.uniform(lo, hi, size=shape)


def _same_type(attrs, ins):
    t = next((x for x in ins if x is not None), None)
    return [t if x is None else x for x in ins], [t]


def _same_shape2(op):
    def infer(attrs, ins):
        s = merge_shape(op, "ograd/data", ins[0], ins[1])
        return [s, s], [s]
    return infer


def _need_rank(op, what, shape, ranks):
    if shape is not None and len(shape) not in ranks:
        raise MXNetError("%s: %s must be %s-D, got shape %s"
                         % (op, what, " or ".join(str(r) for r in ranks), fmt(shape)))


# ---------------------------------------------------------------------------------------
# LRN
# ---------------------------------------------------------------------------------------
_LRN_ATTRS = {"nsize": Attr("int", doc="window width in channels (odd)"),
              "alpha": Attr("float", 1e-4), "beta": Attr("float", 0.75),
              "knorm": Attr("float", 2.0)}


def _lrn_check(attrs, shape):
    if attrs["nsize"] <= 0:
        raise MXNetError("LRN: nsize must be positive, got %d" % attrs["nsize"])
    if shape is not None and len(shape) < 2:
        raise MXNetError("LRN: data must have a channel axis (N, C, ...), got %s" % fmt(shape))


def _lrn_infer(attrs, ins, outs=None):
    _lrn_check(attrs, ins[0])
    return unary_infer("LRN")(attrs, ins, outs)


def _window_sum(a, n):
    """Sum over channels c - n//2 .. c + n//2 (clipped) along axis 1."""
    h = n // 2
    c = a.shape[1]
    cs = np.concatenate([np.zeros_like(a[:, :1]), np.cumsum(a, axis=1)], axis=1)
    hi = np.minimum(np.arange(c) + h + 1, c)
    lo = np.maximum(np.arange(c) - h, 0)
    return np.take(cs, hi, axis=1) - np.take(cs, lo, axis=1)


def _lrn_norm(attrs, x):
    xd = x.astype(np.float64)
    return attrs["knorm"] + attrs["alpha"] / attrs["nsize"] * _window_sum(xd * xd, attrs["nsize"])


def _lrn_fwd(attrs, ins, ctx):
    x = ins[0]
    _lrn_check(attrs, x.shape)
    y = x.astype(np.float64) * _lrn_norm(attrs, x) ** (-attrs["beta"])
    return [y.astype(x.dtype)]


def _lrn_bwd_np(attrs, g, x):
    xd = x.astype(np.float64)
    gd = g.astype(np.float64)
    N = _lrn_norm(attrs, x)
    b = attrs["beta"]
    inner = _window_sum(gd * xd * N ** (-b - 1.0), attrs["nsize"])
    gx = gd * N ** (-b) - 2.0 * attrs["alpha"] * b / attrs["nsize"] * xd * inner
    return gx.astype(x.dtype)


def _lrn_samples(rng):
    return [Sample([_rand(rng, (2, 5, 3, 3))], {"nsize": 3}),
            Sample([_rand(rng, (1, 4, 2), 0.0, 3.0)],
                   {"nsize": 5, "alpha": 0.05, "beta": 0.5, "knorm": 1.0})]


register("LRN", inputs=("data",), attrs=dict(_LRN_ATTRS), infer_shape=_lrn_infer,
         forward=_lrn_fwd, second_order=False,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._backward_LRN(og[0], ins[0], **attrs)],
         lowerable=False, samples=_lrn_samples,
         doc="Local response normalisation across channels: x * (knorm + alpha / nsize * "
             "sum of x^2 over the nsize channels around c) ^ -beta.")

register("_backward_LRN", inputs=("ograd", "data"), attrs=dict(_LRN_ATTRS),
         infer_shape=_same_shape2("_backward_LRN"),
         forward=lambda attrs, ins, ctx: [_lrn_bwd_np(attrs, ins[0], ins[1])],
         differentiable=False, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 5, 3)), _rand(rng, (2, 5, 3))], {"nsize": 3})],
         doc="LRN's data gradient.")


# ---------------------------------------------------------------------------------------
# moments
# ---------------------------------------------------------------------------------------
def _moments_axes(attrs, nd):
    axes = attrs["axes"]
    if axes is None or axes == ():
        raise MXNetError("moments: axes must be given (MXNet does not take empty axes; pass "
                         "every axis for global moments)")
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    out = []
    for a in axes:
        if not -nd <= a < nd:
            raise MXNetError("moments: axis %d out of range for a %d-D input" % (a, nd))
        out.append(a % nd)
    if len(set(out)) != len(out):
        raise MXNetError("moments: repeated axis in axes=%s" % (axes,))
    return tuple(sorted(out))


def _moments_infer(attrs, ins):
    d = ins[0]
    if d is None:
        return ins, [None, None]
    axes = _moments_axes(attrs, len(d))
    if attrs["keepdims"]:
        s = tuple(1 if i in axes else v for i, v in enumerate(d))
    else:
        s = tuple(v for i, v in enumerate(d) if i not in axes) or (1,)
    return ins, [s, s]


def _moments_fwd(attrs, ins, ctx):
    x = ins[0]
    axes = _moments_axes(attrs, x.ndim)
    xd = x.astype(np.float64)
    mean = xd.mean(axis=axes, keepdims=True)
    var = ((xd - mean) ** 2).mean(axis=axes, keepdims=True)
    if not attrs["keepdims"]:
        shape = _moments_infer(attrs, [x.shape])[1][0]
        mean, var = mean.reshape(shape), var.reshape(shape)
    return [np.asarray(mean, dtype=x.dtype), np.asarray(var, dtype=x.dtype)]


def _moments_grad(F, attrs, ins, outs, og, ctx):
    x = ins[0]
    kw = {"axis": attrs["axes"]}
    mean = F.mean(x, keepdims=True, **kw)
    n = F.sum(F.ones_like(x), keepdims=True, **kw)
    gm = F.reshape_like(og[0], mean)
    gv = F.reshape_like(og[1], mean)
    xc = F.broadcast_sub(x, mean)
    gx = F.broadcast_add(F.broadcast_mul(F.ones_like(x), F.elemwise_div(gm, n)),
                         F.broadcast_mul(xc, F.elemwise_div(F._mul_scalar(gv, scalar=2.0), n)))
    return [gx]


register("moments", inputs=("data",),
         attrs={"axes": Attr("axis", None), "keepdims": _BOOL_F},
         infer_shape=_moments_infer, forward=_moments_fwd, gradient=_moments_grad,
         num_outputs=2, output_names=("mean", "var"), lowerable=False, second_order=False,
         samples=lambda rng: [Sample([_rand(rng, (3, 4, 2))], {"axes": (0, 2)}),
                              Sample([_rand(rng, (3, 4))], {"axes": (1,), "keepdims": True}),
                              Sample([_rand(rng, (2, 3))], {"axes": (0, 1)})],
         doc="Mean and (biased) variance over axes (which must be given; all of them for "
             "global moments, shape (1,)).")


# ---------------------------------------------------------------------------------------
# ravel_multi_index / unravel_index
# ---------------------------------------------------------------------------------------
def _index_shape(op, attrs):
    shape = tuple(attrs["shape"] or ())
    if not shape or any(d <= 0 for d in shape):
        raise MXNetError("%s: shape must be a non-empty tuple of positive sizes, got %s"
                         % (op, shape))
    return shape


def _ravel_infer(attrs, ins):
    shape = _index_shape("ravel_multi_index", attrs)
    d = ins[0]
    if d is None:
        return ins, [None]
    if len(d) < 1 or (d[0] and d[0] != len(shape)):
        raise MXNetError("ravel_multi_index: data must have shape (%d, ...) for shape=%s, got %s"
                         % (len(shape), shape, fmt(d)))
    return ins, [tuple(d[1:])]


def _ravel_fwd(attrs, ins, ctx):
    shape = _index_shape("ravel_multi_index", attrs)
    idx = ins[0].astype(np.int64)
    for k, n in enumerate(shape):
        bad = (idx[k] < 0) | (idx[k] >= n)
        if bad.any():
            raise MXNetError("ravel_multi_index: index %d out of range [0, %d) on axis %d of "
                             "shape=%s" % (int(idx[k][bad].reshape(-1)[0]), n, k, shape))
    flat = np.ravel_multi_index(tuple(idx), shape)
    return [np.asarray(flat, dtype=ins[0].dtype)]


def _unravel_infer(attrs, ins):
    shape = _index_shape("unravel_index", attrs)
    d = ins[0]
    return ins, [None if d is None else (len(shape),) + tuple(d)]


def _unravel_fwd(attrs, ins, ctx):
    shape = _index_shape("unravel_index", attrs)
    idx = ins[0].astype(np.int64)
    size = int(np.prod(shape))
    bad = (idx < 0) | (idx >= size)
    if bad.any():
        raise MXNetError("unravel_index: flat index %d out of range [0, %d) for shape=%s"
                         % (int(idx[bad].reshape(-1)[0]), size, shape))
    return [np.stack(np.unravel_index(idx, shape)).astype(ins[0].dtype)]


register("ravel_multi_index", inputs=("data",), attrs={"shape": Attr("shape", None)},
         aliases=("_ravel_multi_index",), infer_shape=_ravel_infer, forward=_ravel_fwd,
         differentiable=False, lowerable=False,
         samples=lambda rng: [Sample([np.array([[1, 2, 0], [3, 0, 1]], dtype=np.float64)],
                                     {"shape": (3, 4)})],
         doc="Flat indices of the columns of data (one row per axis) in an array of shape.")
register("unravel_index", inputs=("data",), attrs={"shape": Attr("shape", None)},
         aliases=("_unravel_index",), infer_shape=_unravel_infer, forward=_unravel_fwd,
         differentiable=False, lowerable=False,
         samples=lambda rng: [Sample([np.array([5, 0, 11], dtype=np.float64)], {"shape": (3, 4)})],
         doc="Multi-indices (one row per axis) of the flat indices in data for shape.")


# ---------------------------------------------------------------------------------------
# _histogram (mx.nd.histogram)
# ---------------------------------------------------------------------------------------
def _hist_inputs(attrs):
    return ("data",) if attrs.get("bin_cnt") is not None else ("data", "bins")


def _hist_infer(attrs, ins):
    if attrs["bin_cnt"] is not None:
        if attrs["bin_cnt"] <= 0:
            raise MXNetError("_histogram: bin_cnt must be positive, got %d" % attrs["bin_cnt"])
        n = attrs["bin_cnt"]
        return ins, [(n,), (n + 1,)]
    b = ins[1] if len(ins) > 1 else None
    if b is None:
        return ins, [None, None]
    if len(b) != 1 or (b[0] and b[0] < 2):
        raise MXNetError("_histogram: bins must be a 1-D array of at least 2 edges, got %s" % fmt(b))
    return ins, [(b[0] - 1,), b]


def _hist_type(attrs, ins):
    t = ins[0]
    return ins, ["int64", t]


def _hist_fwd(attrs, ins, ctx):
    x = ins[0].reshape(-1)
    if attrs["bin_cnt"] is not None:
        rng = attrs["range"]
        if rng is None:
            lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 1.0)
        else:
            if len(rng) != 2 or rng[0] > rng[1]:
                raise MXNetError("_histogram: range must be (low, high) with low <= high, got %s"
                                 % (rng,))
            lo, hi = float(rng[0]), float(rng[1])
        counts, edges = np.histogram(x, bins=attrs["bin_cnt"], range=(lo, hi))
    else:
        edges = ins[1].reshape(-1)
        if np.any(np.diff(edges) < 0):
            raise MXNetError("_histogram: bin edges must increase monotonically")
        counts, edges = np.histogram(x, bins=edges)
    return [counts.astype(np.int64), np.asarray(edges, dtype=ins[0].dtype)]


register("_histogram", inputs=_hist_inputs, optional_inputs=("bins",),
         attrs={"bin_cnt": Attr("int_or_none", None), "range": Attr("floats", None)},
         infer_shape=_hist_infer, infer_type=_hist_type, forward=_hist_fwd,
         num_outputs=2, output_names=("counts", "edges"), differentiable=False, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (20,), 0.0, 5.0)], {"bin_cnt": 5, "range": (0.0, 5.0)}),
                              Sample([_rand(rng, (3, 4))], {"bin_cnt": 3}),
                              Sample([_rand(rng, (10,), 0.0, 4.0), np.array([0.0, 1.0, 2.5, 4.0])], {})],
         doc="Histogram of the flattened data: bin_cnt equal bins over range (data min/max when "
             "not given) or the given bin edges; returns (counts as int64, edges).")


# ---------------------------------------------------------------------------------------
# all_finite / multi_all_finite
# ---------------------------------------------------------------------------------------
_FINITE_ATTRS = {"init_output": _BOOL_T}


def _finite_flag(attrs, arrays):
    """[1.] when all finite, else [0.].  With init_output=False MXNet leaves the output as it
    was when every element is finite: a fresh output holds 0, which is what this returns."""
    ok = all(np.isfinite(a).all() for a in arrays)
    return np.array([1.0 if ok and attrs["init_output"] else 0.0], np.float32)


def _finite_type(attrs, ins):
    return ins, ["float32"]


register("all_finite", inputs=("data",), attrs=dict(_FINITE_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [(1,)]), infer_type=_finite_type,
         forward=lambda attrs, ins, ctx: [_finite_flag(attrs, [ins[0]])],
         differentiable=False, lowerable=False,
         samples=lambda rng: [Sample([np.array([1.0, np.inf, 2.0])], {}),
                              Sample([_rand(rng, (2, 3))], {})],
         doc="[1.] when every element is finite, else [0.] (float32).")
register("multi_all_finite", inputs=(), variadic="num_arrays",
         attrs={"num_arrays": Attr("int", 1), "init_output": _BOOL_T},
         infer_shape=lambda attrs, ins: (ins, [(1,)]), infer_type=_finite_type,
         forward=lambda attrs, ins, ctx: [_finite_flag(attrs, ins)],
         differentiable=False, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (3,)), np.array([np.nan])], {"num_arrays": 2}),
                              Sample([_rand(rng, (2,)), _rand(rng, (1, 2))], {"num_arrays": 2})],
         doc="[1.] when every element of every input is finite, else [0.] (float32).")


# ---------------------------------------------------------------------------------------
# amp_cast / amp_multicast
# ---------------------------------------------------------------------------------------
_AMP_DTYPES = ("float16", "float32", "float64", "int32", "int64", "int8", "uint8")


def _amp_dtype(attrs):
    t = attrs["dtype"]
    if t not in _AMP_DTYPES:
        raise MXNetError("amp_cast: dtype must be one of %s (bfloat16 is not supported here), "
                         "got %r" % (", ".join(_AMP_DTYPES), t))
    return t


register("amp_cast", inputs=("data",), attrs={"dtype": Attr("dtype")},
         infer_shape=unary_infer("amp_cast"),
         infer_type=lambda attrs, ins: (ins, [_amp_dtype(attrs)]),
         forward=lambda attrs, ins, ctx: [ins[0].astype(_amp_dtype(attrs))],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._cast_like(og[0], ins[0])],
         lowerable=False, second_order=False,
         # (a narrowing cast has no finite-difference gradient to compare with; the
         # float16 case is checked against MXNet in tests/test_nn_misc.py)
         samples=lambda rng: [Sample([_rand(rng, (2, 3))], {"dtype": "float64"})],
         doc="Cast for automatic mixed precision (Cast with AMP's dtype list; the gradient "
             "is cast back to the input's dtype).")


def _widest(ts, narrow):
    known = [np.dtype(t) for t in ts if t is not None]
    if not known:
        return None
    key = (lambda d: (d.kind == "f", d.itemsize))
    pick = min(known, key=key) if narrow else max(known, key=key)
    return pick.name


def _multicast_infer(attrs, ins):
    n = attrs["num_outputs"]
    if len(ins) != n:
        raise MXNetError("amp_multicast: num_outputs=%d but %d inputs given" % (n, len(ins)))
    return ins, list(ins)


register("amp_multicast", inputs=(), variadic="num_outputs",
         attrs={"num_outputs": Attr("int"), "cast_narrow": _BOOL_F},
         infer_shape=_multicast_infer,
         infer_type=lambda attrs, ins: (ins, [_widest(ins, attrs["cast_narrow"])] * len(ins)),
         forward=lambda attrs, ins, ctx: [
             a.astype(_widest([x.dtype for x in ins], attrs["cast_narrow"])) for a in ins],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._cast_like(g, x) for g, x in zip(og, ins)],
         num_outputs=lambda attrs: attrs["num_outputs"], lowerable=False, second_order=False,
         samples=lambda rng: [Sample([_rand(rng, (2,)), _rand(rng, (2, 2))], {"num_outputs": 2})],
         doc="Casts every input to the widest of their dtypes (narrowest with cast_narrow).")


# ---------------------------------------------------------------------------------------
# div_sqrt_dim / arange_like
# ---------------------------------------------------------------------------------------
def _dsd_fwd(attrs, ins, ctx):
    x = ins[0]
    if x.ndim == 0:
        raise MXNetError("div_sqrt_dim: data must have at least one axis")
    return [(x / x.dtype.type(math.sqrt(x.shape[-1]))).astype(x.dtype)]


def _lower_dsd(ctx):
    """x / sqrt(x.shape[-1]) in one loop over the flat data, the divisor rounded to the
    dtype once (as the eager kernel)."""
    nd = ctx.in_ndim[0]
    if nd == 0:
        return None
    x, out = ctx.ins[0], ctx.outs[0]
    dv, i = ctx.tmp("d"), ctx.tmp("i")
    # np.sqrt of a float64 is math.sqrt's correctly rounded root; the generated module
    # always imports numpy (math only where a kernel-library reference needs it)
    return ["%s = np.%s(np.sqrt(np.float64(%s.shape[%d])))" % (dv, ctx.dtype, x, nd - 1),
            "for %s in range(%s.size):" % (i, x),
            "    %s.reshape(-1)[%s] = %s.reshape(-1)[%s] / %s" % (out, i, x, i, dv)]


register("_contrib_div_sqrt_dim", inputs=("data",), infer_shape=unary_infer("div_sqrt_dim"),
         forward=_dsd_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._contrib_div_sqrt_dim(og[0])],
         lowering=_lower_dsd, samples=lambda rng: [Sample([_rand(rng, (2, 3, 4))]),
                                                   Sample([_rand(rng, (5,))])],
         doc="data / sqrt(data.shape[-1]) (the scaling of dot-product attention).")


def _al_axis(attrs, nd):
    ax = attrs["axis"]
    if ax is None:
        return None
    if not -nd <= ax < nd:
        raise MXNetError("arange_like: axis %d out of range for a %d-D input" % (ax, nd))
    return ax % nd


def _al_infer(attrs, ins):
    d = ins[0]
    if d is None:
        return ins, [None]
    if attrs["repeat"] <= 0:
        raise MXNetError("arange_like: repeat must be positive, got %d" % attrs["repeat"])
    ax = _al_axis(attrs, len(d))
    return ins, [tuple(d) if ax is None else (d[ax],)]


def _al_fwd(attrs, ins, ctx):
    x = ins[0]
    ax = _al_axis(attrs, x.ndim)
    shape = x.shape if ax is None else (x.shape[ax],)
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.float64) // attrs["repeat"]
    return [(attrs["start"] + attrs["step"] * i).astype(x.dtype).reshape(shape)]


register("_contrib_arange_like", inputs=("data",),
         attrs={"start": Attr("float", 0.0), "step": Attr("float", 1.0), "repeat": Attr("int", 1),
                "ctx": Attr("str", ""), "axis": Attr("int_or_none", None)},
         infer_shape=_al_infer, forward=_al_fwd, differentiable=False, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 3))], {}),
                              Sample([_rand(rng, (2, 3))], {"axis": 1, "start": 2.0, "step": 0.5}),
                              Sample([_rand(rng, (2, 3))], {"repeat": 2})],
         doc="start + step * (i // repeat) over the input's shape (or the length of one axis).")


# ---------------------------------------------------------------------------------------
# BilinearResize2D (note bilinear-resize-geometry)
# ---------------------------------------------------------------------------------------
_RESIZE_MODES = ("size", "odd_scale", "like", "to_even_down", "to_even_up", "to_odd_down",
                 "to_odd_up")
_RESIZE_ATTRS = {"height": Attr("int", 1), "width": Attr("int", 1),
                 "scale_height": Attr("float_or_none", None),
                 "scale_width": Attr("float_or_none", None),
                 "mode": Attr("str", "size", choices=_RESIZE_MODES),
                 "align_corners": _BOOL_T}
_OP_RESIZE = "_contrib_BilinearResize2D"


def _resize_inputs(attrs):
    return ("data", "like") if attrs.get("mode") == "like" else ("data",)


def _resize_side(mode, n, scale, size):
    if mode == "size":
        return int(n * scale) if scale is not None else size
    if mode == "odd_scale":
        if scale is None:
            raise MXNetError("BilinearResize2D: mode='odd_scale' needs scale_height and scale_width")
        return int((n - 1) * scale + 1) if n % 2 else int(n * scale)
    odd = n % 2 == 1
    if mode == "to_even_down":
        return n - 1 if odd else n
    if mode == "to_even_up":
        return n + 1 if odd else n
    if mode == "to_odd_down":
        return n if odd else n - 1
    return n if odd else n + 1        # to_odd_up


def _resize_out_hw(attrs, dshape, like=None):
    mode = attrs["mode"]
    h, w = dshape[2], dshape[3]
    if mode == "like":
        if like is None:
            return None
        _need_rank("BilinearResize2D", "like", like, (4,))
        return like[2], like[3]
    if mode == "size" and attrs["scale_height"] is not None:
        sw = attrs["scale_width"] if attrs["scale_width"] is not None else attrs["scale_height"]
        oh, ow = int(h * attrs["scale_height"]), int(w * sw)
    else:
        sh = attrs["scale_height"]
        sw = attrs["scale_width"] if attrs["scale_width"] is not None else sh
        oh = _resize_side(mode, h, sh, attrs["height"])
        ow = _resize_side(mode, w, sw, attrs["width"])
    if oh <= 0 or ow <= 0:
        raise MXNetError("BilinearResize2D: output size (%d, %d) must be positive (data %s, "
                         "mode=%s)" % (oh, ow, fmt(dshape), mode))
    return oh, ow


def _resize_infer(attrs, ins):
    d = ins[0]
    _need_rank("BilinearResize2D", "data", d, (4,))
    if d is None or not d[2] or not d[3]:
        return ins, [None]
    hw = _resize_out_hw(attrs, d, ins[1] if len(ins) > 1 else None)
    if hw is None:
        return ins, [None]
    return ins, [(d[0], d[1]) + tuple(hw)]


def _src_index(n, m, align):
    """Per output index: (lower index, upper index, weight of upper)."""
    i = np.arange(m, dtype=np.float64)
    if m == 1:
        src = np.zeros(1)
    elif align:
        src = i * ((n - 1) / (m - 1))
    else:
        src = np.maximum((i + 0.5) * (n / m) - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    return lo, hi, src - lo


def _resize_fwd(attrs, ins, ctx):
    x = ins[0]
    _need_rank("BilinearResize2D", "data", x.shape, (4,))
    oh, ow = _resize_out_hw(attrs, x.shape, ins[1].shape if len(ins) > 1 else None)
    al = attrs["align_corners"]
    h0, h1, wh = _src_index(x.shape[2], oh, al)
    w0, w1, ww = _src_index(x.shape[3], ow, al)
    xd = x.astype(np.float64)
    top = xd[:, :, h0, :] * (1 - wh)[:, None] + xd[:, :, h1, :] * wh[:, None]
    y = top[:, :, :, w0] * (1 - ww) + top[:, :, :, w1] * ww
    return [y.astype(x.dtype)]


def _resize_bwd_np(attrs, g, x):
    al = attrs["align_corners"]
    oh, ow = g.shape[2], g.shape[3]
    h0, h1, wh = _src_index(x.shape[2], oh, al)
    w0, w1, ww = _src_index(x.shape[3], ow, al)
    gd = g.astype(np.float64)
    gt = np.zeros(g.shape[:3] + (x.shape[3],))         # gradient of `top` (N, C, oh, W)
    np.add.at(gt, (slice(None), slice(None), slice(None), w0), gd * (1 - ww))
    np.add.at(gt, (slice(None), slice(None), slice(None), w1), gd * ww)
    gx = np.zeros(x.shape)
    np.add.at(gx, (slice(None), slice(None), h0), gt * (1 - wh)[:, None])
    np.add.at(gx, (slice(None), slice(None), h1), gt * wh[:, None])
    return gx.astype(x.dtype)


def _resize_grad(F, attrs, ins, outs, og, ctx):
    gx = F._backward_BilinearResize2D(og[0], ins[0], align_corners=attrs["align_corners"])
    return [gx] + ([F.zeros_like(ins[1])] if len(ins) > 1 else [])


def _resize_samples(rng):
    return [Sample([_rand(rng, (1, 2, 3, 4))], {"height": 5, "width": 7}),
            Sample([_rand(rng, (2, 1, 4, 4))], {"scale_height": 0.5, "scale_width": 0.75,
                                               "align_corners": False}),
            Sample([_rand(rng, (1, 1, 3, 4))], {"scale_height": 2.0, "scale_width": 0.5,
                                               "mode": "odd_scale"}),
            Sample([_rand(rng, (1, 1, 3, 4)), _rand(rng, (2, 2, 2, 6))], {"mode": "like"}),
            Sample([_rand(rng, (1, 1, 3, 4))], {"mode": "to_odd_up", "align_corners": False})]


register(_OP_RESIZE, inputs=_resize_inputs, attrs=dict(_RESIZE_ATTRS),
         infer_shape=_resize_infer, forward=_resize_fwd, gradient=_resize_grad,
         lowerable=False, second_order=False, samples=_resize_samples,
         doc="Bilinear resizing of (N, C, H, W) data (note bilinear-resize-geometry).")


def _resize_bwd_samples(rng):
    return [Sample([_rand(rng, (1, 2, 5, 7)), _rand(rng, (1, 2, 3, 4))], {}),
            Sample([_rand(rng, (2, 1, 2, 3)), _rand(rng, (2, 1, 4, 4))], {"align_corners": False})]


register("_backward_BilinearResize2D", inputs=("ograd", "data"),
         attrs={"align_corners": _BOOL_T},
         infer_shape=lambda attrs, ins: (ins, [ins[1]]),
         forward=lambda attrs, ins, ctx: [_resize_bwd_np(attrs, ins[0], ins[1])],
         differentiable=False, lowerable=False, samples=_resize_bwd_samples,
         doc="BilinearResize2D's data gradient (each output gradient added to its four "
             "source pixels with the interpolation weights).")


# ---------------------------------------------------------------------------------------
# AdaptiveAvgPooling2D
# ---------------------------------------------------------------------------------------
def _ap_out(attrs, d):
    s = tuple(attrs["output_size"] or ())
    if len(s) == 0:
        s = (1, 1)
    elif len(s) == 1:
        s = (s[0], s[0])
    elif len(s) != 2:
        raise MXNetError("AdaptiveAvgPooling2D: output_size must be an int or (height, width), "
                         "got %s" % (s,))
    if s[0] <= 0 or s[1] <= 0:
        raise MXNetError("AdaptiveAvgPooling2D: output_size must be positive, got %s" % (s,))
    return s


def _ap_infer(attrs, ins):
    d = ins[0]
    _need_rank("AdaptiveAvgPooling2D", "data", d, (4,))
    oh, ow = _ap_out(attrs, d)
    return ins, [None if d is None else (d[0], d[1], oh, ow)]


def _bins(n, m):
    i = np.arange(m)
    return (i * n) // m, -((-(i + 1) * n) // m)


def _ap_fwd(attrs, ins, ctx):
    x = ins[0]
    _need_rank("AdaptiveAvgPooling2D", "data", x.shape, (4,))
    oh, ow = _ap_out(attrs, x.shape)
    hs, he = _bins(x.shape[2], oh)
    ws, we = _bins(x.shape[3], ow)
    xd = x.astype(np.float64)
    y = np.empty(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            y[:, :, i, j] = xd[:, :, hs[i]:he[i], ws[j]:we[j]].mean(axis=(2, 3))
    return [y.astype(x.dtype)]


def _ap_bwd_np(g, x):
    oh, ow = g.shape[2], g.shape[3]
    hs, he = _bins(x.shape[2], oh)
    ws, we = _bins(x.shape[3], ow)
    gx = np.zeros(x.shape)
    gd = g.astype(np.float64)
    for i in range(oh):
        for j in range(ow):
            area = (he[i] - hs[i]) * (we[j] - ws[j])
            gx[:, :, hs[i]:he[i], ws[j]:we[j]] += (gd[:, :, i, j] / area)[:, :, None, None]
    return gx.astype(x.dtype)


register("_contrib_AdaptiveAvgPooling2D", inputs=("data",),
         attrs={"output_size": Attr("shape", ())},
         infer_shape=_ap_infer, forward=_ap_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._backward_AdaptiveAvgPooling2D(og[0], ins[0])],
         lowerable=False, second_order=False,
         samples=lambda rng: [Sample([_rand(rng, (1, 2, 5, 7))], {"output_size": (2, 3)}),
                              Sample([_rand(rng, (2, 3, 4, 4))], {"output_size": (1,)}),
                              Sample([_rand(rng, (1, 1, 3, 3))], {"output_size": (4, 2)})],
         doc="Average pooling to a fixed output size: output (i, j) averages input rows "
             "floor(i H / oh) .. ceil((i + 1) H / oh) and the same for columns.")
register("_backward_AdaptiveAvgPooling2D", inputs=("ograd", "data"),
         infer_shape=lambda attrs, ins: (ins, [ins[1]]),
         forward=lambda attrs, ins, ctx: [_ap_bwd_np(ins[0], ins[1])],
         differentiable=False, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (1, 2, 2, 3)), _rand(rng, (1, 2, 5, 7))])],
         doc="AdaptiveAvgPooling2D's data gradient.")


# ---------------------------------------------------------------------------------------
# GridGenerator / BilinearSampler / SpatialTransformer (note spatial-sampler-convention)
# ---------------------------------------------------------------------------------------
def _affine_base(h, w):
    ys, xs = np.meshgrid(np.linspace(-1.0, 1.0, h) if h > 1 else np.array([-1.0]),
                         np.linspace(-1.0, 1.0, w) if w > 1 else np.array([-1.0]), indexing="ij")
    return np.stack([xs.reshape(-1), ys.reshape(-1), np.ones(h * w)])       # (3, HW)


def _grid_target(attrs):
    t = tuple(attrs["target_shape"] or ())
    if len(t) != 2 or t[0] <= 0 or t[1] <= 0:
        raise MXNetError("GridGenerator: transform_type='affine' needs target_shape=(H, W) with "
                         "positive sizes, got %s" % (t,))
    return t


def _grid_infer(attrs, ins):
    d = ins[0]
    if attrs["transform_type"] == "affine":
        h, w = _grid_target(attrs)
        if d is not None and (len(d) != 2 or (d[1] and d[1] != 6)):
            raise MXNetError("GridGenerator: affine data must have shape (batch, 6), got %s" % fmt(d))
        return ins, [None if d is None else (d[0], 2, h, w)]
    _need_rank("GridGenerator", "warp data (flow)", d, (4,))
    if d is not None and d[1] and d[1] != 2:
        raise MXNetError("GridGenerator: warp data must have shape (batch, 2, H, W), got %s" % fmt(d))
    return ins, [d]


def _grid_fwd(attrs, ins, ctx):
    x = ins[0]
    xd = x.astype(np.float64)
    if attrs["transform_type"] == "affine":
        h, w = _grid_target(attrs)
        if x.ndim != 2 or x.shape[1] != 6:
            raise MXNetError("GridGenerator: affine data must have shape (batch, 6), got %s"
                             % fmt(x.shape))
        out = np.matmul(xd.reshape(-1, 2, 3), _affine_base(h, w)).reshape(x.shape[0], 2, h, w)
        return [out.astype(x.dtype)]
    n, c, h, w = x.shape
    jj, ii = np.meshgrid(np.arange(w), np.arange(h))
    gx = (xd[:, 0] + jj) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (xd[:, 1] + ii) * (2.0 / max(h - 1, 1)) - 1.0
    return [np.stack([gx, gy], axis=1).astype(x.dtype)]


def _grid_bwd_np(attrs, g, x):
    gd = g.astype(np.float64)
    if attrs["transform_type"] == "affine":
        n, _two, h, w = g.shape
        base = _affine_base(h, w)                                   # (3, HW)
        return np.matmul(gd.reshape(n, 2, h * w), base.T).reshape(n, 6).astype(x.dtype)
    h, w = g.shape[2], g.shape[3]
    out = np.stack([gd[:, 0] * (2.0 / max(w - 1, 1)), gd[:, 1] * (2.0 / max(h - 1, 1))], axis=1)
    return out.astype(x.dtype)


_GRID_ATTRS = {"transform_type": Attr("str", choices=("affine", "warp")),
               "target_shape": Attr("shape", (0, 0))}

register("GridGenerator", inputs=("data",), attrs=dict(_GRID_ATTRS),
         infer_shape=_grid_infer, forward=_grid_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._backward_GridGenerator(og[0], ins[0], **attrs)],
         lowerable=False, second_order=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 6))], {"transform_type": "affine",
                                                          "target_shape": (3, 4)}),
                              Sample([_rand(rng, (1, 2, 3, 4))], {"transform_type": "warp"})],
         doc="Sampling grid of normalised source coordinates from an affine matrix (batch, 6) "
             "or an optical flow (batch, 2, H, W) (note spatial-sampler-convention).")
register("_backward_GridGenerator", inputs=("ograd", "data"), attrs=dict(_GRID_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [ins[1]]),
         forward=lambda attrs, ins, ctx: [_grid_bwd_np(attrs, ins[0], ins[1])],
         differentiable=False, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 2, 3, 4)), _rand(rng, (2, 6))],
                                     {"transform_type": "affine", "target_shape": (3, 4)}),
                              Sample([_rand(rng, (1, 2, 3, 4)), _rand(rng, (1, 2, 3, 4))],
                                     {"transform_type": "warp"})],
         doc="GridGenerator's gradient.")


def _sampler_infer(attrs, ins):
    d, g = ins[0], ins[1]
    _need_rank("BilinearSampler", "data", d, (4,))
    _need_rank("BilinearSampler", "grid", g, (4,))
    if g is not None and g[1] and g[1] != 2:
        raise MXNetError("BilinearSampler: grid must have shape (batch, 2, H, W), got %s" % fmt(g))
    if d is not None and g is not None and d[0] and g[0] and d[0] != g[0]:
        raise MXNetError("BilinearSampler: data %s and grid %s differ in batch size"
                         % (fmt(d), fmt(g)))
    if d is None or g is None:
        return ins, [None]
    return ins, [(d[0] or g[0], d[1], g[2], g[3])]


def _sampler_taps(x_shape, grid):
    """The four taps per output pixel: list of (valid mask, flat y, flat x, weight)."""
    H, W = x_shape[2], x_shape[3]
    gd = grid.astype(np.float64)
    sx = (gd[:, 0] + 1.0) * (W - 1) / 2.0
    sy = (gd[:, 1] + 1.0) * (H - 1) / 2.0
    x0 = np.floor(sx)
    y0 = np.floor(sy)
    fx, fy = sx - x0, sy - y0
    taps = []
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = (y0 + dy).astype(np.int64), (x0 + dx).astype(np.int64)
            ok = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
            taps.append((ok, np.clip(yy, 0, H - 1), np.clip(xx, 0, W - 1), wy * wx, dy, dx))
    return taps, (fx, fy)


def _sampler_fwd(attrs, ins, ctx):
    x, grid = ins
    if x.shape[0] != grid.shape[0]:
        raise MXNetError("BilinearSampler: data %s and grid %s differ in batch size"
                         % (fmt(x.shape), fmt(grid.shape)))
    xd = x.astype(np.float64)
    taps, _f = _sampler_taps(x.shape, grid)
    n = np.arange(x.shape[0])[:, None, None]
    out = np.zeros((x.shape[0], x.shape[1]) + grid.shape[2:])
    for ok, yy, xx, wgt, _dy, _dx in taps:
        v = xd[n, :, yy, xx]                        # (N, Ho, Wo, C)
        out += np.moveaxis(v * (wgt * ok)[..., None], -1, 1)
    return [np.ascontiguousarray(out, dtype=x.dtype)]


def _sampler_bwd_np(g, x, grid):
    H, W = x.shape[2], x.shape[3]
    xd = x.astype(np.float64)
    gd = np.moveaxis(g.astype(np.float64), 1, -1)   # (N, Ho, Wo, C)
    taps, (fx, fy) = _sampler_taps(x.shape, grid)
    n = np.broadcast_to(np.arange(x.shape[0])[:, None, None], grid.shape[:1] + grid.shape[2:])
    gx = np.zeros((x.shape[0], H, W, x.shape[1]))
    dsx = np.zeros(grid.shape[:1] + grid.shape[2:])
    dsy = np.zeros_like(dsx)
    for ok, yy, xx, wgt, dy, dx in taps:
        okf = ok.astype(np.float64)
        np.add.at(gx, (n[ok], yy[ok], xx[ok]), gd[ok] * wgt[ok][:, None])
        dot = (gd * np.moveaxis(xd, 1, -1)[n, yy, xx]).sum(axis=-1) * okf
        wy = fy if dy else 1 - fy
        wx = fx if dx else 1 - fx
        dsx += dot * wy * (1.0 if dx else -1.0)
        dsy += dot * wx * (1.0 if dy else -1.0)
    ggrid = np.stack([dsx * (W - 1) / 2.0, dsy * (H - 1) / 2.0], axis=1)
    return (np.ascontiguousarray(np.moveaxis(gx, -1, 1), dtype=x.dtype),
            np.ascontiguousarray(ggrid, dtype=grid.dtype))


def _sampler_grad(F, attrs, ins, outs, og, ctx):
    r = F._backward_BilinearSampler(og[0], ins[0], ins[1])
    return [r[0], r[1]]


register("BilinearSampler", inputs=("data", "grid"), attrs={"cudnn_off": Attr("bool", False)},
         infer_shape=_sampler_infer, forward=_sampler_fwd, gradient=_sampler_grad,
         lowerable=False, second_order=False,
         samples=lambda rng: [Sample([_rand(rng, (1, 2, 4, 5)), _rand(rng, (1, 2, 3, 3), -1.1, 1.1)]),
                              Sample([_rand(rng, (2, 1, 3, 3)), _rand(rng, (2, 2, 2, 4), -0.9, 0.9)])],
         doc="Samples data bilinearly at a grid of normalised coordinates; taps outside the "
             "input read zero (note spatial-sampler-convention).")
register("_backward_BilinearSampler", inputs=("ograd", "data", "grid"),
         infer_shape=lambda attrs, ins: (ins, [ins[1], ins[2]]),
         infer_type=lambda attrs, ins: (ins, [ins[1], ins[2]]),
         forward=lambda attrs, ins, ctx: list(_sampler_bwd_np(ins[0], ins[1], ins[2])),
         num_outputs=2, output_names=("data_grad", "grid_grad"),
         differentiable=False, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (1, 2, 3, 3)), _rand(rng, (1, 2, 4, 5)),
                                      _rand(rng, (1, 2, 3, 3), -0.9, 0.9)])],
         doc="BilinearSampler's gradients (data, grid).")


def _st_target(attrs):
    return _grid_target(attrs)


def _st_infer(attrs, ins):
    d, loc = ins
    _need_rank("SpatialTransformer", "data", d, (4,))
    h, w = _st_target(attrs)
    if loc is not None and (len(loc) != 2 or (loc[1] and loc[1] != 6)):
        raise MXNetError("SpatialTransformer: loc must have shape (batch, 6) for an affine "
                         "transform, got %s" % fmt(loc))
    return ins, [None if d is None else (d[0], d[1], h, w)]


def _st_fwd(attrs, ins, ctx):
    x, loc = ins
    grid = _grid_fwd({"transform_type": "affine", "target_shape": attrs["target_shape"]},
                     [loc], ctx)[0]
    return _sampler_fwd({}, [x, grid.astype(x.dtype)], ctx)


def _st_grad(F, attrs, ins, outs, og, ctx):
    kw = {"transform_type": "affine", "target_shape": attrs["target_shape"]}
    grid = F.GridGenerator(ins[1], **kw)
    r = F._backward_BilinearSampler(og[0], ins[0], grid)
    return [r[0], F._backward_GridGenerator(r[1], ins[1], **kw)]


register("SpatialTransformer", inputs=("data", "loc"),
         attrs={"target_shape": Attr("shape", (0, 0)),
                "transform_type": Attr("str", choices=("affine",)),
                "sampler_type": Attr("str", choices=("bilinear",)),
                "cudnn_off": Attr("bool", False)},
         infer_shape=_st_infer, forward=_st_fwd, gradient=_st_grad,
         lowerable=False, second_order=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 1, 4, 4)),
                                      _rand(rng, (2, 6), -0.4, 0.4) + np.array([1, 0, 0, 0, 1, 0])],
                                     {"target_shape": (3, 3), "transform_type": "affine",
                                      "sampler_type": "bilinear"})],
         doc="GridGenerator (affine, target_shape) followed by BilinearSampler.")


# ---------------------------------------------------------------------------------------
# interleaved attention matmuls (contrib): (seq, batch, heads * k * dim) projections
# ---------------------------------------------------------------------------------------
def _heads(attrs, op):
    h = attrs["heads"]
    if h <= 0:
        raise MXNetError("%s: heads must be positive, got %d" % (op, h))
    return h


def _split(op, shape, heads, k):
    """(T, B, heads * k * D) -> D; MXNetError when the last axis does not split."""
    if len(shape) != 3:
        raise MXNetError("%s: input must be 3-D (seq, batch, features), got %s" % (op, fmt(shape)))
    if shape[2] % (heads * k):
        raise MXNetError("%s: the last axis %d of %s is not a multiple of heads * %d = %d"
                         % (op, shape[2], fmt(shape), k, heads * k))
    return shape[2] // (heads * k)


def _proj(a, heads, k, which):
    """Projection ``which`` of an interleaved (T, B, heads*k*D) array as (B*heads, T, D)."""
    T, B, _f = a.shape
    D = a.shape[2] // (heads * k)
    v = a.reshape(T, B, heads, k, D)[:, :, :, which, :]
    return np.ascontiguousarray(v.transpose(1, 2, 0, 3).reshape(B * heads, T, D))


def _unproj(p, T, B, heads, k, which, out):
    """Adds (B*heads, T, D) into projection ``which`` of an interleaved (T, B, heads*k*D)."""
    D = p.shape[2]
    v = out.reshape(T, B, heads, k, D)
    v[:, :, :, which, :] += p.reshape(B, heads, T, D).transpose(2, 0, 1, 3)


OP_SQK = "_contrib_interleaved_matmul_selfatt_qk"
OP_SVA = "_contrib_interleaved_matmul_selfatt_valatt"
OP_EQK = "_contrib_interleaved_matmul_encdec_qk"
OP_EVA = "_contrib_interleaved_matmul_encdec_valatt"


def _sqk_infer(attrs, ins):
    d = ins[0]
    if d is None:
        return ins, [None]
    h = _heads(attrs, OP_SQK)
    _split(OP_SQK, d, h, 3)
    return ins, [(d[1] * h, d[0], d[0])]


def _sqk_fwd(attrs, ins, ctx):
    x = ins[0]
    h = _heads(attrs, OP_SQK)
    D = _split(OP_SQK, x.shape, h, 3)
    xd = x.astype(np.float64)
    q, k = _proj(xd, h, 3, 0) / math.sqrt(D), _proj(xd, h, 3, 1)
    return [np.matmul(q, k.transpose(0, 2, 1)).astype(x.dtype)]


def _sqk_bwd(attrs, g, x):
    h = attrs["heads"]
    T, B, _f = x.shape
    D = _split(OP_SQK, x.shape, h, 3)
    xd, gd = x.astype(np.float64), g.astype(np.float64)
    q, k = _proj(xd, h, 3, 0), _proj(xd, h, 3, 1)
    s = 1.0 / math.sqrt(D)
    out = np.zeros(x.shape)
    _unproj(np.matmul(gd, k) * s, T, B, h, 3, 0, out)
    _unproj(np.matmul(gd.transpose(0, 2, 1), q) * s, T, B, h, 3, 1, out)
    return out.astype(x.dtype)


def _sva_infer(attrs, ins):
    d, a = ins
    h = _heads(attrs, OP_SVA)
    if d is None:
        return ins, [None]
    D = _split(OP_SVA, d, h, 3)
    want = (d[1] * h, d[0], d[0])
    a = merge_shape(OP_SVA, "attention", a, want)
    return [d, a], [(d[0], d[1], h * D)]


def _sva_fwd(attrs, ins, ctx):
    x, att = ins
    h = _heads(attrs, OP_SVA)
    T, B, _f = x.shape
    D = _split(OP_SVA, x.shape, h, 3)
    if att.shape != (B * h, T, T):
        raise MXNetError("%s: attention must have shape %s for queries_keys_values %s, got %s"
                         % (OP_SVA, fmt((B * h, T, T)), fmt(x.shape), fmt(att.shape)))
    v = _proj(x.astype(np.float64), h, 3, 2)
    o = np.matmul(att.astype(np.float64), v)                   # (B*h, T, D)
    return [o.reshape(B, h, T, D).transpose(2, 0, 1, 3).reshape(T, B, h * D).astype(x.dtype)]


def _sva_bwd(attrs, g, x, att):
    h = attrs["heads"]
    T, B, _f = x.shape
    D = _split(OP_SVA, x.shape, h, 3)
    gd = g.astype(np.float64).reshape(T, B, h, D).transpose(1, 2, 0, 3).reshape(B * h, T, D)
    v = _proj(x.astype(np.float64), h, 3, 2)
    ad = att.astype(np.float64)
    gx = np.zeros(x.shape)
    _unproj(np.matmul(ad.transpose(0, 2, 1), gd), T, B, h, 3, 2, gx)
    gatt = np.matmul(gd, v.transpose(0, 2, 1))
    return gx.astype(x.dtype), gatt.astype(att.dtype)


def _eqk_infer(attrs, ins):
    q, kv = ins
    h = _heads(attrs, OP_EQK)
    if q is None or kv is None:
        return ins, [None]
    Dq = _split(OP_EQK, q, h, 1)
    Dk = _split(OP_EQK, kv, h, 2)
    if Dq != Dk or q[1] != kv[1]:
        raise MXNetError("%s: queries %s and keys_values %s disagree (batch, or head size %d vs %d)"
                         % (OP_EQK, fmt(q), fmt(kv), Dq, Dk))
    return ins, [(q[1] * h, q[0], kv[0])]


def _eqk_fwd(attrs, ins, ctx):
    q, kv = ins
    h = _heads(attrs, OP_EQK)
    _eqk_infer(attrs, [q.shape, kv.shape])
    D = q.shape[2] // h
    qp = _proj(q.astype(np.float64), h, 1, 0) / math.sqrt(D)
    kp = _proj(kv.astype(np.float64), h, 2, 0)
    return [np.matmul(qp, kp.transpose(0, 2, 1)).astype(q.dtype)]


def _eqk_bwd(attrs, g, q, kv):
    h = attrs["heads"]
    Tq, B, _f = q.shape
    Tk = kv.shape[0]
    D = q.shape[2] // h
    s = 1.0 / math.sqrt(D)
    gd = g.astype(np.float64)
    qp = _proj(q.astype(np.float64), h, 1, 0)
    kp = _proj(kv.astype(np.float64), h, 2, 0)
    gq = np.zeros(q.shape)
    gkv = np.zeros(kv.shape)
    _unproj(np.matmul(gd, kp) * s, Tq, B, h, 1, 0, gq)
    _unproj(np.matmul(gd.transpose(0, 2, 1), qp) * s, Tk, B, h, 2, 0, gkv)
    return gq.astype(q.dtype), gkv.astype(kv.dtype)


def _eva_infer(attrs, ins):
    kv, a = ins
    h = _heads(attrs, OP_EVA)
    if kv is None or a is None:
        return ins, [None]
    D = _split(OP_EVA, kv, h, 2)
    if len(a) != 3 or a[0] != kv[1] * h or a[2] != kv[0]:
        raise MXNetError("%s: attention must have shape (batch * heads, seq_q, %d) = (%d, ., %d) "
                         "for keys_values %s, got %s"
                         % (OP_EVA, kv[0], kv[1] * h, kv[0], fmt(kv), fmt(a)))
    return ins, [(a[1], kv[1], h * D)]


def _eva_fwd(attrs, ins, ctx):
    kv, att = ins
    h = _heads(attrs, OP_EVA)
    _eva_infer(attrs, [kv.shape, att.shape])
    Tk, B, _f = kv.shape
    D = kv.shape[2] // (2 * h)
    Tq = att.shape[1]
    v = _proj(kv.astype(np.float64), h, 2, 1)
    o = np.matmul(att.astype(np.float64), v)
    return [o.reshape(B, h, Tq, D).transpose(2, 0, 1, 3).reshape(Tq, B, h * D).astype(kv.dtype)]


def _eva_bwd(attrs, g, kv, att):
    h = attrs["heads"]
    Tk, B, _f = kv.shape
    D = kv.shape[2] // (2 * h)
    Tq = att.shape[1]
    gd = g.astype(np.float64).reshape(Tq, B, h, D).transpose(1, 2, 0, 3).reshape(B * h, Tq, D)
    v = _proj(kv.astype(np.float64), h, 2, 1)
    gkv = np.zeros(kv.shape)
    _unproj(np.matmul(att.astype(np.float64).transpose(0, 2, 1), gd), Tk, B, h, 2, 1, gkv)
    gatt = np.matmul(gd, v.transpose(0, 2, 1))
    return gkv.astype(kv.dtype), gatt.astype(att.dtype)


_HEADS = {"heads": Attr("int", doc="number of attention heads")}


def _pair_bwd(name, fn, doc, sample):
    register(name, inputs=("ograd", "lhs", "rhs"), attrs=dict(_HEADS),
             infer_shape=lambda attrs, ins: (ins, [ins[1], ins[2]]),
             infer_type=lambda attrs, ins: (ins, [ins[1], ins[2]]),
             forward=lambda attrs, ins, ctx: list(fn(attrs, ins[0], ins[1], ins[2])),
             num_outputs=2, differentiable=False, lowerable=False, samples=sample, doc=doc)


register(OP_SQK, inputs=("queries_keys_values",), attrs=dict(_HEADS),
         infer_shape=_sqk_infer, forward=_sqk_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._backward_interleaved_matmul_selfatt_qk(og[0], ins[0], heads=attrs["heads"])],
         lowerable=False, second_order=False,
         samples=lambda rng: [Sample([_rand(rng, (3, 2, 24))], {"heads": 2})],
         doc="Self-attention scores: (q / sqrt(D)) k^T per batch and head from interleaved "
             "(seq, batch, heads * 3 * D) projections; output (batch * heads, seq, seq).")
register("_backward_interleaved_matmul_selfatt_qk", inputs=("ograd", "queries_keys_values"),
         attrs=dict(_HEADS), infer_shape=lambda attrs, ins: (ins, [ins[1]]),
         forward=lambda attrs, ins, ctx: [_sqk_bwd(attrs, ins[0], ins[1])],
         differentiable=False, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (4, 3, 3)), _rand(rng, (3, 2, 24))], {"heads": 2})],
         doc="interleaved_matmul_selfatt_qk's gradient.")
register(OP_SVA, inputs=("queries_keys_values", "attention"), attrs=dict(_HEADS),
         infer_shape=_sva_infer, forward=_sva_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: list(
             F._backward_interleaved_matmul_selfatt_valatt(og[0], ins[0], ins[1], heads=attrs["heads"])),
         lowerable=False, second_order=False,
         samples=lambda rng: [Sample([_rand(rng, (3, 2, 24)), _rand(rng, (4, 3, 3))], {"heads": 2})],
         doc="attention @ v per batch and head, v from interleaved (seq, batch, heads * 3 * D) "
             "projections; output (seq, batch, heads * D).")
_pair_bwd("_backward_interleaved_matmul_selfatt_valatt",
          _sva_bwd,
          "interleaved_matmul_selfatt_valatt's gradients.",
          lambda rng: [Sample([_rand(rng, (3, 2, 8)), _rand(rng, (3, 2, 24)), _rand(rng, (4, 3, 3))],
                              {"heads": 2})])
register(OP_EQK, inputs=("queries", "keys_values"), attrs=dict(_HEADS),
         infer_shape=_eqk_infer, forward=_eqk_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: list(
             F._backward_interleaved_matmul_encdec_qk(og[0], ins[0], ins[1], heads=attrs["heads"])),
         lowerable=False, second_order=False,
         samples=lambda rng: [Sample([_rand(rng, (3, 2, 8)), _rand(rng, (5, 2, 16))], {"heads": 2})],
         doc="Encoder-decoder attention scores: (q / sqrt(D)) k^T, q (seq_q, batch, heads * D), "
             "k from interleaved (seq_kv, batch, heads * 2 * D); output (batch * heads, seq_q, seq_kv).")
_pair_bwd("_backward_interleaved_matmul_encdec_qk",
          _eqk_bwd,
          "interleaved_matmul_encdec_qk's gradients.",
          lambda rng: [Sample([_rand(rng, (4, 3, 5)), _rand(rng, (3, 2, 8)), _rand(rng, (5, 2, 16))],
                              {"heads": 2})])
register(OP_EVA, inputs=("keys_values", "attention"), attrs=dict(_HEADS),
         infer_shape=_eva_infer, forward=_eva_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: list(
             F._backward_interleaved_matmul_encdec_valatt(og[0], ins[0], ins[1], heads=attrs["heads"])),
         lowerable=False, second_order=False,
         samples=lambda rng: [Sample([_rand(rng, (5, 2, 16)), _rand(rng, (4, 3, 5))], {"heads": 2})],
         doc="attention @ v, v from interleaved (seq_kv, batch, heads * 2 * D); output "
             "(seq_q, batch, heads * D).")
_pair_bwd("_backward_interleaved_matmul_encdec_valatt",
          _eva_bwd,
          "interleaved_matmul_encdec_valatt's gradients.",
          lambda rng: [Sample([_rand(rng, (3, 2, 8)), _rand(rng, (5, 2, 16)), _rand(rng, (4, 3, 5))],
                              {"heads": 2})])
