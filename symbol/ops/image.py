"""Image operators behind ``gluon.data.vision.transforms`` (MXNet's ``_image_*`` ops, shown
there as ``mx.nd.image.<name>``): to_tensor, normalize, resize, flips and random flips.

Images are HWC (or NHWC batches); tensors after ``_image_to_tensor`` are CHW (NCHW).

Note: image-resize
    ``_image_resize`` follows OpenCV's ``resize`` as MXNet calls it: ``size`` is (width,
    height), or one int (a square, or with ``keep_ratio`` the new length of the *shorter* side,
    the other side scaled and truncated).  ``interp=1`` (default) is bilinear with half-pixel
    centres (source ``x = (dst + 0.5) * in / out - 0.5``, clamped at the borders), ``interp=0``
    nearest (source ``floor(dst * in / out)``).  The arithmetic is float64 (integer images
    rounded to nearest and saturated), except for bilinear uint8, which follows OpenCV's 11-bit
    fixed-point code: against MXNet 1.9.1 0-0.6 % of the uint8 pixels differ, by one grey
    level (the vector/scalar tail split of OpenCV's loop is not reproduced).  Other ``interp`` values raise MXNetError.
"""
import numpy as np

from ..base import MXNetError, parse_literal, AttrParseError
from ..registry import register, Attr, Sample
from ._common import fmt


def _rand(rng, shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape)


# ---------------------------------------------------------------------------------------
# to_tensor
# ---------------------------------------------------------------------------------------
def _hwc_check(op, s):
    if s is not None and len(s) not in (3, 4):
        raise MXNetError("%s: input must be an image (H, W, C) or a batch (N, H, W, C), got %s"
                         % (op, fmt(s)))


def _to_tensor_infer(attrs, ins):
    s = ins[0]
    _hwc_check("_image_to_tensor", s)
    if s is None:
        return ins, [None]
    return ins, [tuple(s[:-3]) + (s[-1], s[-3], s[-2])]


def _to_tensor_fwd(attrs, ins, ctx):
    x = ins[0]
    _hwc_check("_image_to_tensor", x.shape)
    axes = (2, 0, 1) if x.ndim == 3 else (0, 3, 1, 2)
    return [np.ascontiguousarray(x.transpose(axes)).astype(np.float32) / np.float32(255.0)]


register("_image_to_tensor", inputs=("data",), infer_shape=_to_tensor_infer,
         infer_type=lambda attrs, ins: (list(ins), [np.dtype(np.float32)]),
         forward=_to_tensor_fwd, differentiable=False, lowerable=False, hint="to_tensor",
         samples=lambda rng: [Sample([rng.randint(0, 256, size=(4, 3, 3)).astype(np.uint8)]),
                              Sample([rng.randint(0, 256, size=(2, 3, 2, 1)).astype(np.uint8)])],
         doc="HWC (NHWC) image of values in [0, 255] to a CHW (NCHW) float32 tensor in [0, 1].")


# ---------------------------------------------------------------------------------------
# normalize
# ---------------------------------------------------------------------------------------
_FLOATS = {}


def _floats(op, name, v):
    """A float or a tuple of floats, given as a Python value or MXNet's attr string (parsed
    strings are memoised: transforms call this once per image)."""
    if isinstance(v, str):
        got = _FLOATS.get(v)
        if got is None:
            got = _parse_floats(op, name, v)
            if len(_FLOATS) < 256:
                _FLOATS[v] = got
        return got
    return _parse_floats(op, name, v)


def _parse_floats(op, name, v):
    if isinstance(v, str):
        try:
            v = parse_literal(v)
        except AttrParseError as e:
            raise MXNetError("%s: cannot parse %s=%r: %s" % (op, name, v, e)) from None
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return (float(v),)
    if isinstance(v, (tuple, list)) and v and all(
            isinstance(a, (int, float, np.integer, np.floating)) and not isinstance(a, bool) for a in v):
        return tuple(float(a) for a in v)
    raise MXNetError("%s: %s must be a number or a tuple of numbers, got %r" % (op, name, v))


def _norm_params(attrs, c):
    mean = _floats("_image_normalize", "mean", attrs["mean"])
    std = _floats("_image_normalize", "std", attrs["std"])
    for name, v in (("mean", mean), ("std", std)):
        if len(v) not in (1, c):
            raise MXNetError("_image_normalize: %s has %d values for an input of %d channels"
                             % (name, len(v), c))
    if any(s == 0 for s in std):
        raise MXNetError("_image_normalize: std must not contain 0, got %s" % (std,))
    return mean, std


def _norm_infer(attrs, ins):
    s = ins[0]
    if s is not None:
        if len(s) not in (3, 4):
            raise MXNetError("_image_normalize: input must be a tensor (C, H, W) or (N, C, H, W), "
                             "got %s" % fmt(s))
        c = s[-3]
        if c not in (1, 3):
            raise MXNetError("_image_normalize: the channel dimension must be 1 or 3, got %d "
                             "(shape %s)" % (c, fmt(s)))
        _norm_params(attrs, c)
    return ins, [s]


def _norm_fwd(attrs, ins, ctx):
    x = ins[0]
    if x.ndim not in (3, 4) or x.shape[-3] not in (1, 3):
        _norm_infer(attrs, [x.shape])
    mean, std = _norm_params(attrs, x.shape[-3])
    sh = (-1, 1, 1)
    m = np.asarray(mean, dtype=x.dtype).reshape(sh)
    s = np.asarray(std, dtype=x.dtype).reshape(sh)
    return [((x - m) / s).astype(x.dtype, copy=False)]


def _norm_grad(F, attrs, ins, outs, og, ctx):
    return [F._image_normalize(og[0], mean="0.0", std=attrs["std"])]


register("_image_normalize", inputs=("data",),
         attrs={"mean": Attr("str", "(0.0, 0.0, 0.0, 0.0)"), "std": Attr("str", "(1.0, 1.0, 1.0, 1.0)")},
         infer_shape=_norm_infer, forward=_norm_fwd, gradient=_norm_grad, lowerable=False,
         hint="normalize",
         samples=lambda rng: [
             Sample([_rand(rng, (3, 2, 2))], {"mean": "(0.5, 0.4, 0.3)", "std": "(0.2, 0.25, 0.5)"}),
             Sample([_rand(rng, (2, 1, 2, 3))], {"mean": "0.5", "std": "2.0"}),
             Sample([_rand(rng, (2, 3, 2, 2))], {"mean": "(0.1,)", "std": "(0.5, 1.5, 2.5)"})],
         doc="Per-channel ``(x - mean) / std`` of a CHW / NCHW tensor; mean and std are a number "
             "or one value per channel (1 or 3 channels), given as attr strings.")


# ---------------------------------------------------------------------------------------
# resize (see the note image-resize)
# ---------------------------------------------------------------------------------------
def _resize_dims(attrs, h, w):
    size = attrs["size"]
    if len(size) == 1:
        s = size[0]
        if attrs["keep_ratio"]:
            if h > w:
                return int(h * s / w), s
            return s, int(w * s / h)
        return s, s
    if len(size) != 2:
        raise MXNetError("_image_resize: size must be an int or (width, height), got %s" % (size,))
    return size[1], size[0]


def _resize_infer(attrs, ins):
    s = ins[0]
    _hwc_check("_image_resize", s)
    if attrs["interp"] not in (0, 1):
        raise MXNetError("_image_resize: interp=%d is not supported (0 nearest, 1 bilinear)"
                         % attrs["interp"])
    if any(v <= 0 for v in attrs["size"]):
        raise MXNetError("_image_resize: size must be positive, got %s" % (attrs["size"],))
    if s is None or 0 in s[-3:-1]:
        return ins, [None]
    nh, nw = _resize_dims(attrs, s[-3], s[-2])
    return ins, [tuple(s[:-3]) + (nh, nw, s[-1])]


def _axis_weights(n_in, n_out, interp):
    """Source indices (lo, hi) and the weight of hi for each output position."""
    scale = n_in / n_out
    d = np.arange(n_out, dtype=np.float64)
    if interp == 0:
        lo = np.minimum(np.floor(d * scale).astype(np.int64), n_in - 1)
        return lo, lo, np.zeros(n_out)
    f = (d + 0.5) * scale - 0.5
    lo = np.floor(f).astype(np.int64)
    frac = f - lo
    frac = np.where(lo < 0, 0.0, frac)
    lo = np.maximum(lo, 0)
    frac = np.where(lo >= n_in - 1, 0.0, frac)
    lo = np.minimum(lo, n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, frac


def resize_np(x, nh, nw, interp=1):
    """Resize the H, W axes (-3, -2) of ``x`` to (nh, nw); see the note image-resize."""
    h, w = x.shape[-3], x.shape[-2]
    y0, y1, fy = _axis_weights(h, nh, interp)
    x0, x1, fx = _axis_weights(w, nw, interp)
    if x.dtype == np.uint8 and interp == 1:
        return _resize_u8(x, y0, y1, fy, x0, x1, fx)
    src = x.astype(np.float64)
    rows = src[..., y0, :, :] * (1 - fy)[:, None, None] + src[..., y1, :, :] * fy[:, None, None]
    out = rows[..., :, x0, :] * (1 - fx)[:, None] + rows[..., :, x1, :] * fx[:, None]
    if x.dtype.kind in "iub":
        info = np.iinfo(x.dtype)
        out = np.clip(np.floor(out + 0.5), info.min, info.max)
    return np.ascontiguousarray(out.astype(x.dtype))


def _resize_u8(x, y0, y1, fy, x0, x1, fx):
    """OpenCV's uint8 bilinear: 11-bit weights, an integer horizontal pass, and the vertical
    pass as its vector code rounds it (pre-shift by 4, keep the high 16 bits, round by 2)."""
    one = 1 << 11
    cx0 = np.round((1 - fx) * one).astype(np.int64)
    cy0 = np.round((1 - fy) * one).astype(np.int64)
    src = x.astype(np.int64)
    rows = src[..., :, x0, :] * cx0[:, None] + src[..., :, x1, :] * (one - cx0)[:, None]
    r0 = rows[..., y0, :, :] >> 4
    r1 = rows[..., y1, :, :] >> 4
    b0 = cy0[:, None, None]
    out = (((b0 * r0) >> 16) + (((one - b0) * r1) >> 16) + 2) >> 2
    return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8))


def _resize_fwd(attrs, ins, ctx):
    x = ins[0]
    _resize_infer(attrs, [x.shape])
    nh, nw = _resize_dims(attrs, x.shape[-3], x.shape[-2])
    return [resize_np(x, nh, nw, attrs["interp"])]


register("_image_resize", inputs=("data",),
         attrs={"size": Attr("shape", ()), "keep_ratio": Attr("bool", False), "interp": Attr("int", 1)},
         infer_shape=_resize_infer, forward=_resize_fwd, differentiable=False, lowerable=False,
         hint="resize",
         samples=lambda rng: [
             Sample([rng.randint(0, 256, size=(5, 4, 3)).astype(np.uint8)], {"size": (3, 7)}),
             Sample([_rand(rng, (2, 4, 6, 1))], {"size": (3,), "keep_ratio": True}),
             Sample([_rand(rng, (3, 3, 2))], {"size": (5,), "interp": 0})],
         doc="Resize an HWC / NHWC image to size (width, height) (see the note image-resize).")


# ---------------------------------------------------------------------------------------
# flips
# ---------------------------------------------------------------------------------------
def _flip_fwd(axis_from_end):
    def fwd(attrs, ins, ctx):
        x = ins[0]
        _hwc_check("flip", x.shape)
        return [np.ascontiguousarray(np.flip(x, axis=x.ndim - axis_from_end))]
    return fwd


def _flip_infer(op):
    def infer(attrs, ins):
        _hwc_check(op, ins[0])
        return ins, [ins[0]]
    return infer


def _random_flip_fwd(axis_from_end):
    flip = _flip_fwd(axis_from_end)

    def fwd(attrs, ins, ctx):
        if ctx.rng.random() < 0.5:
            return flip(attrs, ins, ctx)
        return [ins[0].copy()]
    return fwd


for _name, _k in (("left_right", 2), ("top_bottom", 3)):
    register("_image_flip_" + _name, inputs=("data",), infer_shape=_flip_infer("_image_flip_" + _name),
             forward=_flip_fwd(_k), lowerable=False, hint="flip_" + _name,
             gradient=(lambda n: lambda F, attrs, ins, outs, og, ctx: [
                 getattr(F, "_image_flip_" + n)(og[0])])(_name),
             samples=lambda rng: [Sample([_rand(rng, (3, 4, 2))]), Sample([_rand(rng, (2, 2, 3, 1))])],
             doc="Mirror an HWC / NHWC image (%s)." % ("along the width" if _k == 2 else "along the height"))
    register("_image_random_flip_" + _name, inputs=("data",),
             infer_shape=_flip_infer("_image_random_flip_" + _name),
             forward=_random_flip_fwd(_k), lowerable=False, needs_rng=True, differentiable=False,
             hint="random_flip_" + _name,
             samples=lambda rng: [Sample([_rand(rng, (3, 4, 2))])],
             doc="``_image_flip_%s`` with probability 0.5 (agjit's RNG, seeded by mx.random.seed)."
                 % _name)
