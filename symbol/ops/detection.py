"""Operators of MXNet's detection tutorials: smooth_l1, ROIPooling and Crop
(FINDINGS.md "Detection ops").

* smooth_l1(data, scalar=sigma): ``0.5 (sigma x)^2`` where ``|x| < 1/sigma^2``, else
  ``|x| - 0.5/sigma^2``.
* ROIPooling(data, rois, pooled_size, spatial_scale): rois rows are ``[batch_index, x1, y1,
  x2, y2]`` in input coordinates; each is scaled, rounded half away from zero, split into
  ``pooled_size`` bins (floor/ceil bin edges, MXNet's), and max-pooled per bin (an empty bin
  gives 0).  The argmax positions are a hidden output; the gradient goes to them (adding up
  where bins overlap).
* Crop(data[, like], num_args, offset, h_w, center_crop): an (h, w) window of the last two
  axes at ``offset`` (default (0, 0)), centred with ``center_crop``, or the size of ``like``'s
  last two axes when it is given (num_args=2); the gradient pads back with zeros.
"""
import math

import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, unary_infer
from ._lowering import KernelCall


def _rand(rng, shape):
    return rng.uniform(-2, 2, size=shape)


# -- smooth_l1 --------------------------------------------------------------------------------
def _sl1_fwd(attrs, ins, ctx):
    x = ins[0]
    s2 = attrs["scalar"] ** 2
    ax = np.abs(x)
    return [np.where(ax < 1.0 / s2, 0.5 * s2 * x * x, ax - 0.5 / s2).astype(x.dtype)]


def _sl1_grad_fwd(attrs, ins, ctx):
    x = ins[0]
    s2 = attrs["scalar"] ** 2
    return [np.where(np.abs(x) < 1.0 / s2, s2 * x, np.sign(x)).astype(x.dtype)]


def _lower_sl1(deriv):
    """Elementwise with sigma^2 folded into typed constants (the eager kernel's formula)."""
    def lower(ctx):
        s2 = ctx.attrs["scalar"] ** 2
        c = ctx.const
        if deriv:
            return "(%s * {0} if abs({0}) < %s else sign({0}))" % (c(s2), c(1.0 / s2))
        return "(%s * {0} * {0} if abs({0}) < %s else abs({0}) - %s)" % (
            c(0.5 * s2), c(1.0 / s2), c(0.5 / s2))
    return KernelCall(lower, uses=("sign",))


register("smooth_l1", inputs=("data",), attrs={"scalar": Attr("float")},
         infer_shape=unary_infer("smooth_l1"), forward=_sl1_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F.elemwise_mul(og[0], F._smooth_l1_derivative(ins[0], scalar=attrs["scalar"]))],
         lowering=_lower_sl1(False), second_order=False,
         doc="Smooth L1: quadratic below 1/sigma^2, linear above (sigma = scalar).",
         samples=lambda rng: [Sample([np.array([-2.0, -0.6, -0.1, 0.3, 0.9, 1.5])], {"scalar": 1.0}),
                              Sample([_rand(rng, (3, 4))], {"scalar": 2.0})])

register("_smooth_l1_derivative", inputs=("data",), attrs={"scalar": Attr("float")},
         infer_shape=lambda attrs, ins: (ins, [ins[0]]), forward=_sl1_grad_fwd,
         gradient=None, differentiable=False, lowering=_lower_sl1(True), grad_check=False,
         doc="d smooth_l1 / dx: sigma^2 x inside, sign(x) outside.",
         samples=lambda rng: [Sample([np.array([-2.0, -0.1, 0.3, 1.5])], {"scalar": 1.0})])


# -- ROIPooling ------------------------------------------------------------------------------------
def _round(v):
    """C's round(): half away from zero."""
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


_ROI_ATTRS = {"pooled_size": Attr("shape"), "spatial_scale": Attr("float")}


def _roi_infer(attrs, ins):
    d, r = ins
    ph, pw = attrs["pooled_size"] if len(attrs["pooled_size"]) == 2 else (None, None)
    if ph is None:
        raise MXNetError("ROIPooling: pooled_size must be (h, w), got %s" % (attrs["pooled_size"],))
    if d is not None and len(d) != 4:
        raise MXNetError("ROIPooling: data must be 4-D (N, C, H, W), got %s" % fmt(d))
    if r is not None and (len(r) != 2 or r[1] != 5):
        raise MXNetError("ROIPooling: rois must be (num_rois, 5), got %s" % fmt(r))
    if d is None or r is None:
        return ins, [None, None]
    out = (r[0], d[1], ph, pw)
    return ins, [out, out]


def _roi_fwd(attrs, ins, ctx):
    x, rois = ins
    n, c, h, w = x.shape
    ph, pw = attrs["pooled_size"]
    scale = attrs["spatial_scale"]
    out = np.zeros((rois.shape[0], c, ph, pw), dtype=x.dtype)
    arg = np.full((rois.shape[0], c, ph, pw), -1.0, dtype=x.dtype)
    for k, roi in enumerate(rois):
        b = int(roi[0])
        if not 0 <= b < n:
            raise MXNetError("ROIPooling: roi %d has batch index %d outside [0, %d)" % (k, b, n))
        x1, y1, x2, y2 = (_round(float(v) * scale) for v in roi[1:])
        rh, rw = max(y2 - y1 + 1, 1), max(x2 - x1 + 1, 1)
        bh, bw = rh / float(ph), rw / float(pw)
        for i in range(ph):
            hs = min(max(int(math.floor(i * bh)) + y1, 0), h)
            he = min(max(int(math.ceil((i + 1) * bh)) + y1, 0), h)
            for j in range(pw):
                ws = min(max(int(math.floor(j * bw)) + x1, 0), w)
                we = min(max(int(math.ceil((j + 1) * bw)) + x1, 0), w)
                if he <= hs or we <= ws:
                    continue
                win = x[b, :, hs:he, ws:we].reshape(c, -1)
                m = np.argmax(win, axis=1)
                out[k, :, i, j] = win[np.arange(c), m]
                arg[k, :, i, j] = (hs + m // (we - ws)) * w + (ws + m % (we - ws))
    return [out, arg]


def _roi_back(attrs, ins, ctx):
    g, arg, rois, like = ins
    n, c, h, w = like.shape
    out = np.zeros(like.shape, dtype=g.dtype)
    flat = out.reshape(n, c, h * w)
    for k, roi in enumerate(rois):
        b = int(roi[0])
        idx = arg[k].reshape(c, -1).astype(np.int64)
        gk = g[k].reshape(c, -1)
        for ch in range(c):
            ok = idx[ch] >= 0
            np.add.at(flat[b, ch], idx[ch][ok], gk[ch][ok])
    return [out]


register("ROIPooling", inputs=("data", "rois"), attrs=dict(_ROI_ATTRS), infer_shape=_roi_infer,
         forward=_roi_fwd, num_outputs=2, num_visible=1, output_names=("output", "maxidx"),
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._backward_ROIPooling(og[0], outs[1], ins[1], ins[0], **attrs), None],
         lowerable=False, second_order=False,
         doc="Max pooling of each region of interest into pooled_size bins.",
         samples=lambda rng: [Sample([rng.permutation(72).reshape(2, 1, 6, 6).astype(np.float64),
                                      np.array([[0., 0, 0, 3, 3], [1, 2, 2, 5, 5], [0, 1, 0, 4, 5]])],
                                     {"pooled_size": (2, 2), "spatial_scale": 1.0})])

register("_backward_ROIPooling", inputs=("ograd", "maxidx", "rois", "like"), attrs=dict(_ROI_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [ins[3]]), forward=_roi_back,
         gradient=lambda F, attrs, ins, outs, og, ctx: [None] * 4, differentiable=False,
         lowerable=False, grad_check=False,
         doc="ROIPooling's gradient: the head gradient added at each bin's argmax.",
         samples=lambda rng: [Sample([np.ones((1, 1, 2, 2)), np.array([[[[0., 1], [6, 7]]]]),
                                      np.array([[0., 0, 0, 1, 1]]), np.zeros((1, 1, 6, 6))],
                                     {"pooled_size": (2, 2), "spatial_scale": 1.0})])


# -- Crop ---------------------------------------------------------------------------------------
_CROP_ATTRS = {"num_args": Attr("int", 1), "offset": Attr("shape", (0, 0)),
               "h_w": Attr("shape", (0, 0)), "center_crop": Attr("bool", False)}


def _crop_window(attrs, d, like):
    if len(d) < 2:
        raise MXNetError("Crop: data must have at least 2 dimensions, got %s" % fmt(d))
    H, W = d[-2], d[-1]
    if attrs["num_args"] == 2:
        if like is None:
            return None
        h, w = like[-2], like[-1]
    else:
        h, w = attrs["h_w"]
    if h <= 0 or w <= 0 or h > H or w > W:
        raise MXNetError("Crop: window %dx%d does not fit data %s" % (h, w, fmt(d)))
    if attrs["center_crop"]:
        oy, ox = (H - h) // 2, (W - w) // 2
    else:
        oy, ox = attrs["offset"]
        if oy < 0 or ox < 0 or oy + h > H or ox + w > W:
            raise MXNetError("Crop: offset %s with window %dx%d leaves data %s"
                             % (tuple(attrs["offset"]), h, w, fmt(d)))
    return oy, ox, h, w


def _crop_infer(attrs, ins):
    d = ins[0]
    like = ins[1] if len(ins) > 1 else None
    if d is None:
        return ins, [None]
    win = _crop_window(attrs, d, like)
    if win is None:
        return ins, [None]
    return ins, [tuple(d[:-2]) + (win[2], win[3])]


def _crop_fwd(attrs, ins, ctx):
    x = ins[0]
    oy, ox, h, w = _crop_window(attrs, x.shape, ins[1].shape if len(ins) > 1 else None)
    return [x[..., oy:oy + h, ox:ox + w].copy()]


def _crop_back(attrs, ins, ctx):
    g, data = ins[0], ins[1]
    like = ins[2].shape if len(ins) > 2 else None
    oy, ox, h, w = _crop_window(attrs, data.shape, like)
    out = np.zeros(data.shape, dtype=g.dtype)
    out[..., oy:oy + h, ox:ox + w] = g
    return [out]


def _lower_crop(back):
    """Crop / _backward_Crop: a basic-slicing copy of the window (found from the traced
    shapes, as the window of center_crop and of a ``like`` input depends on them)."""
    def emit(ctx):
        d = ctx.in_shapes[1] if back else ctx.in_shapes[0]
        like_at = 2 if back else 1
        like = ctx.in_shapes[like_at] if len(ctx.in_shapes) > like_at else None
        if d is None or len(d) < 2:
            return None
        oy, ox, h, w = _crop_window(ctx.attrs, tuple(d), None if like is None else tuple(like))
        key = "[..., %d:%d, %d:%d]" % (oy, oy + h, ox, ox + w)
        out = ctx.outs[0]
        if back:
            return ["%s[...] = 0" % out, "%s%s = %s" % (out, key, ctx.ins[0])]
        return ["%s[...] = %s%s" % (out, ctx.ins[0], key)]
    from ._lowering import KernelCall
    return KernelCall(emit)


def _crop_grad(F, attrs, ins, outs, og, ctx):
    g = F._backward_Crop(og[0], *ins, **attrs)
    return [g] + [None] * (len(ins) - 1)


register("Crop", inputs=(), variadic="num_args", attrs=dict(_CROP_ATTRS),
         infer_shape=_crop_infer, forward=_crop_fwd, gradient=_crop_grad,
         lowering=_lower_crop(False),
         doc="An (h, w) window of the last two axes (see the module docstring).",
         samples=lambda rng: [Sample([_rand(rng, (2, 1, 4, 5))], {"num_args": 1, "h_w": (2, 3),
                                                                   "offset": (1, 1)}),
                              Sample([_rand(rng, (2, 1, 4, 5))], {"num_args": 1, "h_w": (2, 3),
                                                                   "center_crop": True}),
                              Sample([_rand(rng, (1, 2, 5, 5)), _rand(rng, (1, 3, 3, 3))],
                                     {"num_args": 2})])

register("_backward_Crop",
         # the full list when the attrs are not known yet (positional mapping), like only
         # with num_args=2 once they are
         inputs=lambda attrs: ["ograd", "data"] + (["like"] if attrs.get("num_args", 2) == 2 else []),
         optional_inputs=("like",), attrs=dict(_CROP_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [ins[1]]), forward=_crop_back,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F.Crop(og[0], *ins[2:], **attrs)] + [None] * (len(ins) - 1),
         lowering=_lower_crop(True), grad_check=False,
         doc="Crop's gradient: the head gradient in the window of a zero array shaped like data.",
         samples=lambda rng: [Sample([_rand(rng, (2, 1, 2, 3)), _rand(rng, (2, 1, 4, 5))],
                                     {"num_args": 1, "h_w": (2, 3), "offset": (1, 1)})])
