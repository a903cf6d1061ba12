"""Image transforms (MXNet 1.9.1's ``gluon.data.vision.transforms``).

Images are HWC (NHWC for batches) until :class:`ToTensor` turns them into CHW (NCHW) float32
in [0, 1].  The deterministic transforms are HybridBlocks on the registry's ``_image_*`` ops
(``symbol/ops/image.py``), so they work with ``F = mx.nd`` and ``F = mx.sym`` alike; sizes are
given as (width, height), as MXNet.

Note: compose-not-hybridized
    MXNet's ``Compose`` groups runs of consecutive HybridBlocks into a ``HybridSequential``
    and hybridizes it.  agjit groups them the same way but does not hybridize the group: in
    agjit hybridizing means compiling a kernel per input shape, which costs far more than it
    saves on one small image per call (and would be paid again in every DataLoader worker).
    The numbers are the same either way; call ``hybridize()`` on the group to compile it.

Note: color-transforms
    RandomBrightness/Contrast/Saturation/Hue/ColorJitter/Lighting are plain Blocks in NumPy
    here (MXNet runs them as random ops).  They take an HWC (or NHWC) image with 3 channels,
    draw their factor ``a`` from NumPy's global RNG, uniform in ``[max(0, 1 - v), 1 + v]``, and
    keep the input dtype (integer results truncated and saturated, as MXNet's casts).  Checked
    against MXNet 1.9.1's ops at fixed factors: brightness scales by ``a``; contrast blends with
    the image's mean grey (``0.299 R + 0.587 G + 0.114 B``) by ``a``; saturation blends with
    ``0.114 B`` -- MXNet 1.9.1's grey value in that op keeps only the blue term, and agjit
    reproduces the numbers; hue rotates the HSV hue by ``a * 360`` degrees (so ``a`` near 1 is
    a small shift; uint8 results may differ by one level); lighting adds AlexNet's PCA noise.
"""
import random

import numpy as np

from .... import ndarray as nd
from ....base import MXNetError
from ...block import Block, HybridBlock
from ...nn.containers import Sequential, HybridSequential

__all__ = ["Compose", "HybridCompose", "Cast", "ToTensor", "Normalize", "Resize", "CenterCrop",
           "RandomResizedCrop", "CropResize", "RandomFlipLeftRight", "RandomFlipTopBottom",
           "RandomBrightness", "RandomContrast", "RandomSaturation", "RandomHue",
           "RandomColorJitter", "RandomLighting", "RandomApply"]

_numeric_types = (float, int, np.generic)


class Compose(Sequential):
    """Chains transforms; consecutive HybridBlocks are grouped into one HybridSequential
    (see the note compose-not-hybridized).

    >>> t = Compose([ToTensor(), Normalize(0.5, 0.5)])
    >>> t(mx.nd.zeros((2, 2, 3), dtype='uint8')).shape
    (3, 2, 2)
    """

    def __init__(self, transforms):
        super(Compose, self).__init__()
        hybrid = []
        for t in list(transforms) + [None]:
            if isinstance(t, HybridBlock):
                hybrid.append(t)
                continue
            if len(hybrid) == 1:
                self.add(hybrid[0])
            elif len(hybrid) > 1:
                group = HybridSequential()
                for h in hybrid:
                    group.add(h)
                self.add(group)
            hybrid = []
            if t is not None:
                self.add(t)


class HybridCompose(HybridSequential):
    """Chains HybridBlock transforms into one HybridSequential (hybridize it to compile)."""

    def __init__(self, transforms):
        super(HybridCompose, self).__init__()
        for t in transforms:
            if not isinstance(t, HybridBlock):
                raise ValueError("HybridCompose takes HybridBlocks only, got %s"
                                 % type(t).__name__)
            self.add(t)


class Cast(HybridBlock):
    """Cast to ``dtype`` (default float32)."""

    def __init__(self, dtype="float32"):
        super(Cast, self).__init__()
        self._dtype = dtype

    def hybrid_forward(self, F, x):
        return F.cast(x, dtype=self._dtype)


class ToTensor(HybridBlock):
    """HWC (NHWC) image with values in [0, 255] -> CHW (NCHW) float32 in [0, 1].

    >>> ToTensor()(mx.nd.full((1, 1, 3), 255, dtype='uint8')).asnumpy().ravel().tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self):
        super(ToTensor, self).__init__()

    def hybrid_forward(self, F, x):
        return F._image_to_tensor(x)


def _float_attr(v):
    if isinstance(v, (list, tuple)):
        return str(tuple(float(a) for a in v))
    return str(float(v))


class Normalize(HybridBlock):
    """Per-channel ``(x - mean) / std`` on a CHW (NCHW) tensor; ``mean``/``std`` are numbers or
    one value per channel (1 or 3 channels)."""

    def __init__(self, mean=0.0, std=1.0):
        super(Normalize, self).__init__()
        self._mean = mean
        self._std = std

    def hybrid_forward(self, F, x):
        return F._image_normalize(x, mean=_float_attr(self._mean), std=_float_attr(self._std))


class Resize(HybridBlock):
    """Resize an HWC (NHWC) image to ``size`` = (width, height), or an int: a square, or with
    ``keep_ratio`` the new shorter side.  ``interpolation``: 1 bilinear (default), 0 nearest
    (see the note image-resize in symbol/ops/image.py)."""

    def __init__(self, size, keep_ratio=False, interpolation=1):
        super(Resize, self).__init__()
        self._keep = keep_ratio
        self._size = size
        self._interpolation = interpolation

    def hybrid_forward(self, F, x):
        size = (self._size,) if isinstance(self._size, _numeric_types) else tuple(self._size)
        return F._image_resize(x, size=size, keep_ratio=self._keep, interp=self._interpolation)


# ---------------------------------------------------------------------------------------
# crops (MXNet's mx.image helpers, on one HWC image)
# ---------------------------------------------------------------------------------------
def _check_hwc(name, x):
    if not isinstance(x, nd.NDArray) or x.ndim != 3:
        raise MXNetError("%s: expects one HWC image NDArray, got %s"
                         % (name, getattr(x, "shape", type(x).__name__)))


def imresize(src, w, h, interp=1):
    """Resize an HWC image to width ``w`` and height ``h``."""
    return nd._image_resize(src, size=(int(w), int(h)), interp=interp)


def fixed_crop(src, x0, y0, w, h, size=None, interp=1):
    """Crop ``src[y0:y0+h, x0:x0+w]``, then resize to ``size`` = (w, h) when it differs."""
    out = src[y0:y0 + h, x0:x0 + w]
    if size is not None and (w, h) != tuple(size):
        out = imresize(out, size[0], size[1], interp)
    return out


def scale_down(src_size, size):
    """Shrink the crop ``size`` (w, h), keeping its aspect ratio, until it fits ``src_size``."""
    w, h = src_size
    sw, sh = size
    if sh > h:
        sw, sh = float(sw * h) / sh, h
    if sw > w:
        sw, sh = w, float(sh * w) / sw
    return int(sw), int(sh)


def center_crop(src, size, interp=1):
    """Crop the centre of ``src`` to ``size`` = (w, h) (scaled down to fit, then resized)."""
    h, w = src.shape[0], src.shape[1]
    new_w, new_h = scale_down((w, h), size)
    x0 = int((w - new_w) / 2)
    y0 = int((h - new_h) / 2)
    return fixed_crop(src, x0, y0, new_w, new_h, size, interp), (x0, y0, new_w, new_h)


def random_size_crop(src, size, area, ratio, interp=1):
    """Crop a random area fraction and aspect ratio (log-uniform) of ``src`` and resize it to
    ``size``; after 10 failed draws, a centre crop (MXNet's random_size_crop)."""
    h, w = src.shape[0], src.shape[1]
    src_area = h * w
    if isinstance(area, _numeric_types):
        area = (area, 1.0)
    for _ in range(10):
        target_area = random.uniform(area[0], area[1]) * src_area
        log_ratio = (np.log(ratio[0]), np.log(ratio[1]))
        new_ratio = np.exp(random.uniform(*log_ratio))
        new_w = int(round(np.sqrt(target_area * new_ratio)))
        new_h = int(round(np.sqrt(target_area / new_ratio)))
        if new_w <= w and new_h <= h:
            x0 = random.randint(0, w - new_w)
            y0 = random.randint(0, h - new_h)
            return fixed_crop(src, x0, y0, new_w, new_h, size, interp), (x0, y0, new_w, new_h)
    return center_crop(src, size, interp)


class CenterCrop(Block):
    """Crop the centre to ``size`` = (w, h) or an int (square); a smaller image is cropped as
    large as fits and resized."""

    def __init__(self, size, interpolation=1):
        super(CenterCrop, self).__init__()
        if isinstance(size, _numeric_types):
            size = (size, size)
        self._args = (tuple(size), interpolation)

    def forward(self, x):
        _check_hwc("CenterCrop", x)
        return center_crop(x, *self._args)[0]


class RandomResizedCrop(Block):
    """Crop a random area (``scale`` fraction) and aspect ``ratio``, resized to ``size``."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation=1):
        super(RandomResizedCrop, self).__init__()
        if isinstance(size, _numeric_types):
            size = (size, size)
        self._args = (tuple(size), scale, ratio, interpolation)

    def forward(self, x):
        _check_hwc("RandomResizedCrop", x)
        return random_size_crop(x, *self._args)[0]


class CropResize(HybridBlock):
    """Crop ``(x, y, width, height)`` from an HWC (NHWC) image, then resize to ``size`` if
    given."""

    def __init__(self, x, y, width, height, size=None, interpolation=None):
        super(CropResize, self).__init__()
        self._x = x
        self._y = y
        self._width = width
        self._height = height
        self._size = size
        self._interpolation = interpolation

    def hybrid_forward(self, F, x):
        out = F.slice_axis(x, axis=-3, begin=self._y, end=self._y + self._height)
        out = F.slice_axis(out, axis=-2, begin=self._x, end=self._x + self._width)
        if self._size:
            size = (self._size,) if isinstance(self._size, _numeric_types) else tuple(self._size)
            out = F._image_resize(out, size=size, interp=1 if self._interpolation is None
                                  else self._interpolation)
        return out


class RandomFlipLeftRight(HybridBlock):
    """Mirror the image horizontally with probability 0.5 (agjit's RNG)."""

    def __init__(self):
        super(RandomFlipLeftRight, self).__init__()

    def hybrid_forward(self, F, x):
        return F._image_random_flip_left_right(x)


class RandomFlipTopBottom(HybridBlock):
    """Mirror the image vertically with probability 0.5 (agjit's RNG)."""

    def __init__(self):
        super(RandomFlipTopBottom, self).__init__()

    def hybrid_forward(self, F, x):
        return F._image_random_flip_top_bottom(x)


# ---------------------------------------------------------------------------------------
# color (see the note color-transforms)
# ---------------------------------------------------------------------------------------
_GRAY = np.array([0.299, 0.587, 0.114])


def _hwc3(name, x):
    a = x.asnumpy() if isinstance(x, nd.NDArray) else np.asarray(x)
    if a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise MXNetError("%s: expects an HWC (or NHWC) image with 3 channels, got shape %s"
                         % (name, a.shape))
    return a


def _back(a, like):
    if like.dtype.kind in "iub":
        info = np.iinfo(like.dtype)
        a = np.clip(np.trunc(a), info.min, info.max)
    return nd.array(a.astype(like.dtype), dtype=like.dtype)


def _brightness(a, alpha):
    return a * alpha


def _contrast(a, alpha):
    gray = (a.astype(np.float64) @ _GRAY).mean(axis=(-2, -1), keepdims=True)[..., None]
    return a * alpha + gray * (1 - alpha)


def _saturation(a, alpha):
    gray = _GRAY[2] * a[..., 2:3].astype(np.float64)       # MXNet 1.9.1's numbers (see note)
    return a * alpha + gray * (1 - alpha)


def _hue(a, alpha):
    """Rotate the HSV hue by ``alpha * 360`` degrees, keeping each pixel's max and min."""
    a = a.astype(np.float64)
    r, g, b = a[..., 0], a[..., 1], a[..., 2]
    hi, lo = a.max(axis=-1), a.min(axis=-1)
    c = hi - lo
    safe = np.where(c > 0, c, 1.0)
    h = np.where(hi == r, np.mod((g - b) / safe, 6.0),
                 np.where(hi == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0))
    h = np.where(c > 0, h, 0.0) + 6.0 * alpha
    out = np.empty_like(a)
    for ch, n in enumerate((5.0, 3.0, 1.0)):
        k = np.mod(n + h, 6.0)
        out[..., ch] = hi - c * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return out


class _ColorBlock(Block):
    _name = "color"

    def __init__(self, value):
        super(_ColorBlock, self).__init__()
        self._value = value
        self._args = (max(0, 1 - value), 1 + value)

    def _draw(self):
        return np.random.uniform(*self._args)

    def forward(self, x):
        a = _hwc3(type(self).__name__, x)
        return _back(self._fn(a.astype(np.float64), self._draw()), a)


class RandomBrightness(_ColorBlock):
    """Scale the image by a factor uniform in ``[max(0, 1 - brightness), 1 + brightness]``."""

    def __init__(self, brightness):
        super(RandomBrightness, self).__init__(brightness)

    def forward(self, x):
        a = x.asnumpy() if isinstance(x, nd.NDArray) else np.asarray(x)
        return _back(_brightness(a.astype(np.float64), self._draw()), a)


class RandomContrast(_ColorBlock):
    """Blend with the image's mean grey value by a factor in ``[max(0, 1-c), 1+c]``."""
    _fn = staticmethod(_contrast)

    def __init__(self, contrast):
        super(RandomContrast, self).__init__(contrast)


class RandomSaturation(_ColorBlock):
    """Blend with each pixel's grey value by a factor in ``[max(0, 1-s), 1+s]``."""
    _fn = staticmethod(_saturation)

    def __init__(self, saturation):
        super(RandomSaturation, self).__init__(saturation)


class RandomHue(_ColorBlock):
    """Rotate the hue by ``a * 360`` degrees, ``a`` uniform in ``[max(0, 1-hue), 1+hue]``."""
    _fn = staticmethod(_hue)

    def __init__(self, hue):
        super(RandomHue, self).__init__(hue)


class RandomColorJitter(Block):
    """Brightness, contrast, saturation and hue jitter (those > 0), in a random order."""

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0):
        super(RandomColorJitter, self).__init__()
        self._args = (brightness, contrast, saturation, hue)

    def forward(self, x):
        a = _hwc3("RandomColorJitter", x)
        b, c, s, h = self._args
        steps = []
        if b > 0:
            steps.append((_brightness, lambda: np.random.uniform(max(0, 1 - b), 1 + b)))
        if c > 0:
            steps.append((_contrast, lambda: np.random.uniform(max(0, 1 - c), 1 + c)))
        if s > 0:
            steps.append((_saturation, lambda: np.random.uniform(max(0, 1 - s), 1 + s)))
        if h > 0:
            steps.append((_hue, lambda: np.random.uniform(max(0, 1 - h), 1 + h)))
        out = a.astype(np.float64)
        for i in np.random.permutation(len(steps)):
            fn, draw = steps[i]
            out = fn(out, draw())
        return _back(out, a)


_EIGVAL = np.array([55.46, 4.794, 1.148])
_EIGVEC = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                    [-0.5836, -0.6948, 0.4203]])


class RandomLighting(Block):
    """AlexNet-style PCA lighting noise with standard deviation ``alpha``."""

    def __init__(self, alpha):
        super(RandomLighting, self).__init__()
        self._alpha = alpha

    def _draw(self):
        return np.random.normal(0, self._alpha, size=(3,))

    def forward(self, x):
        a = _hwc3("RandomLighting", x)
        if self._alpha <= 0:
            return _back(a.astype(np.float64), a)
        rgb = _EIGVEC @ (self._draw() * _EIGVAL)
        return _back(a.astype(np.float64) + rgb, a)


class RandomApply(Sequential):
    """Apply ``transforms`` with probability ``p`` (Python's ``random``)."""

    def __init__(self, transforms, p=0.5):
        super(RandomApply, self).__init__()
        self.transforms = transforms
        self.p = p

    def forward(self, x):
        if self.p < random.random():
            return x
        return self.transforms(x)
