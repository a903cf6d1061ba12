"""Kernel-library functions of the 3-D (NCDHW) Convolution / Deconvolution and Pooling
lowerings (symbol/ops/nn_conv.py, nn_extra.py), registered in
agjit.compiler.kernels.LIBRARY.

Convolution over (D, H, W) is a sum over the kernel's depth offsets of 2-D convolutions
(agjit.compiler.kernels_nn) of one input depth slice with one kernel depth slice: output
slice ``oz`` adds, for each depth offset ``kz`` whose input slice
``z = oz * stride_d + kz * dilate_d - pad_d`` lies inside the data, the 2-D convolution of
x[:, :, z] with w[:, :, kz] (padding slices contribute zeros).  The data and weight
gradients are the same sums with the 2-D gradient kernels.  Each slice goes through a
contiguous scratch copy.

Pooling over (D, H, W) is one direct loop per output element over its window, with the eager
kernel's rules (symbol/ops/nn_conv.py): max starts from the lowest finite value (padding
counts as that value) and propagates NaN, a window covering the whole unpadded input starts
at -inf; avg divides by the window clipped to the padded input (count_include_pad) or to
the data, at least 1; max's gradient goes to the first maximum in row-major window order
(NaN skipped, padding -inf), a whole-input window to the first arg-maximum (NaN first).
"""
import math

import numpy as np

from .numba_cache import njit
from .kernels_nn import conv2d_fwd, conv2d_bwd_data, conv2d_bwd_weight

__all__ = ["conv3d_fwd", "conv3d_bwd_data", "conv3d_bwd_weight", "pool3d_fwd",
           "pool3d_bwd", "pool3d_select"]


@njit(cache=True)
def _depth_taps(kd, OD, D, sd, pd, dd):
    """The (kernel depth offset kz, output slice oz, input slice z) triples whose input
    slice lies inside the data (padding slices contribute zeros), kz-major."""
    taps = []
    for kz in range(kd):
        for oz in range(OD):
            z = oz * sd + kz * dd - pd
            if 0 <= z < D:
                taps.append((kz, oz, z))
    return taps


@njit(cache=True)
def conv3d_fwd(x, w, bias, out, sd, sh, sw, pd, ph, pw, dd, dh, dw, G, has_bias):
    """out (n, f, OD, OH, OW) = conv(x (n, c, D, H, W), w (f, c/G, kd, kh, kw)) [+ bias]."""
    n, c, D, H, W = x.shape
    f, cg, kd, kh, kw = w.shape
    OD, OH, OW = out.shape[2], out.shape[3], out.shape[4]
    xs = np.empty((n, c, H, W), dtype=out.dtype)
    ws = np.empty((f, cg, kh, kw), dtype=out.dtype)
    os_ = np.empty((n, f, OH, OW), dtype=out.dtype)
    nob = np.empty(1, dtype=out.dtype)
    out[...] = 0
    for kz, oz, z in _depth_taps(kd, OD, D, sd, pd, dd):
        ws[...] = w[:, :, kz]
        xs[...] = x[:, :, z]
        conv2d_fwd(xs, ws, nob, os_, sh, sw, ph, pw, dh, dw, G, 0)
        out[:, :, oz] += os_
    if has_bias:
        for b in range(n):
            for j in range(f):
                out[b, j] += bias[j]


@njit(cache=True)
def conv3d_bwd_data(gy, w, gx, sd, sh, sw, pd, ph, pw, dd, dh, dw, G):
    """gx (n, c, D, H, W) = d conv / d x for output gradient gy (n, f, OD, OH, OW)."""
    n, c, D, H, W = gx.shape
    f, cg, kd, kh, kw = w.shape
    OD, OH, OW = gy.shape[2], gy.shape[3], gy.shape[4]
    gs = np.empty((n, f, OH, OW), dtype=gx.dtype)
    ws = np.empty((f, cg, kh, kw), dtype=gx.dtype)
    xs = np.empty((n, c, H, W), dtype=gx.dtype)
    gx[...] = 0
    for kz, oz, z in _depth_taps(kd, OD, D, sd, pd, dd):
        ws[...] = w[:, :, kz]
        gs[...] = gy[:, :, oz]
        conv2d_bwd_data(gs, ws, xs, sh, sw, ph, pw, dh, dw, G)
        gx[:, :, z] += xs


@njit(cache=True)
def conv3d_bwd_weight(gy, x, gw, sd, sh, sw, pd, ph, pw, dd, dh, dw, G):
    """gw (f, c/G, kd, kh, kw) = d conv / d w for output gradient gy (n, f, OD, OH, OW)."""
    n, c, D, H, W = x.shape
    f, cg, kd, kh, kw = gw.shape
    OD, OH, OW = gy.shape[2], gy.shape[3], gy.shape[4]
    gs = np.empty((n, f, OH, OW), dtype=gw.dtype)
    xs = np.empty((n, c, H, W), dtype=gw.dtype)
    ws = np.empty((f, cg, kh, kw), dtype=gw.dtype)
    gw[...] = 0
    for kz, oz, z in _depth_taps(kd, OD, D, sd, pd, dd):
        gs[...] = gy[:, :, oz]
        xs[...] = x[:, :, z]
        conv2d_bwd_weight(gs, xs, ws, sh, sw, ph, pw, dh, dw, G)
        gw[:, :, kz] += ws


# ---------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------
@njit(cache=True)
def _axis_count(o, s, p, k, size, include_pad):
    """Positions of window ``o`` inside the padded input (include_pad) or the data."""
    s0 = o * s                       # window start in padded coordinates
    if include_pad:
        hi = min(s0 + k, size + 2 * p)
        return max(hi - s0, 0)
    lo = max(s0, p)
    hi = min(s0 + k, p + size)
    return max(hi - lo, 0)


@njit(cache=True)
def _whole(k, p, sp, osp):
    return k[0] == sp[0] and k[1] == sp[1] and k[2] == sp[2] and p[0] == 0 and p[1] == 0 and \
        p[2] == 0 and osp[0] == 1 and osp[1] == 1 and osp[2] == 1


@njit(cache=True)
def _geo(x, out, kd, kh, kw, sd, sh, sw, pd, ph, pw):
    """Kernel sizes (a global window is -1: the spatial size), strides and pads as arrays."""
    sp = np.array([x.shape[2], x.shape[3], x.shape[4]])
    k = np.array([kd, kh, kw])
    for i in range(3):
        if k[i] < 0:
            k[i] = sp[i]
    s = np.array([sd, sh, sw])
    p = np.array([pd, ph, pw])
    osp = np.array([out.shape[2], out.shape[3], out.shape[4]])
    return sp, k, s, p, osp


@njit(cache=True)
def pool3d_fwd(x, out, kd, kh, kw, sd, sh, sw, pd, ph, pw, mode, include_pad, lo):
    """Pooling of x (n, c, D, H, W) into out (n, c, OD, OH, OW); mode 0 max, 1 avg, 2 sum."""
    sp, k, s, p, osp = _geo(x, out, kd, kh, kw, sd, sh, sw, pd, ph, pw)
    whole = _whole(k, p, sp, osp)
    start = -np.inf if whole else lo
    for b in range(x.shape[0]):
        for ch in range(x.shape[1]):
            for oz in range(osp[0]):
                for oy in range(osp[1]):
                    for ox in range(osp[2]):
                        if mode == 0:
                            acc = np.float64(start)
                            for i in range(k[0]):
                                z = oz * s[0] + i - p[0]
                                for j in range(k[1]):
                                    y = oy * s[1] + j - p[1]
                                    for q in range(k[2]):
                                        xx = ox * s[2] + q - p[2]
                                        if 0 <= z < sp[0] and 0 <= y < sp[1] and 0 <= xx < sp[2]:
                                            v = np.float64(x[b, ch, z, y, xx])
                                        else:
                                            v = np.float64(lo)
                                        if v != v or acc != acc:
                                            acc = math.nan
                                        elif v > acc:
                                            acc = v
                            out[b, ch, oz, oy, ox] = acc
                        else:
                            acc = 0.0
                            for i in range(k[0]):
                                z = oz * s[0] + i - p[0]
                                if z < 0 or z >= sp[0]:
                                    continue
                                for j in range(k[1]):
                                    y = oy * s[1] + j - p[1]
                                    if y < 0 or y >= sp[1]:
                                        continue
                                    for q in range(k[2]):
                                        xx = ox * s[2] + q - p[2]
                                        if 0 <= xx < sp[2]:
                                            acc += x[b, ch, z, y, xx]
                            if mode == 1:
                                cnt = _axis_count(oz, s[0], p[0], k[0], sp[0], include_pad) * \
                                    _axis_count(oy, s[1], p[1], k[1], sp[1], include_pad) * \
                                    _axis_count(ox, s[2], p[2], k[2], sp[2], include_pad)
                                acc = acc / max(cnt, 1)
                            out[b, ch, oz, oy, ox] = acc


@njit(cache=True)
def _first_max3(x, b, ch, oz, oy, ox, sp, k, s, p, whole):
    """Flat window offset (i, j, q row-major) of the maximum max pooling routes to, and
    whether it lies in the data; -1 when no position is picked (an all-NaN window)."""
    if whole:           # np.argmax over the whole input: the first maximum, NaN first
        best = -np.inf
        arg = 0
        seen = False
        for i in range(k[0]):
            for j in range(k[1]):
                for q in range(k[2]):
                    v = x[b, ch, i, j, q]
                    if v != v:
                        return (i * k[1] + j) * k[2] + q, True
                    if not seen or v > best:
                        best = v
                        arg = (i * k[1] + j) * k[2] + q
                        seen = True
        return arg, True
    # the eager rule: the fmax of the window with padding at -inf (NaN skipped), then the
    # first position holding it; no position for an all-NaN window
    best = -np.inf
    for i in range(k[0]):
        z = oz * s[0] + i - p[0]
        for j in range(k[1]):
            y = oy * s[1] + j - p[1]
            for q in range(k[2]):
                xx = ox * s[2] + q - p[2]
                if 0 <= z < sp[0] and 0 <= y < sp[1] and 0 <= xx < sp[2]:
                    v = x[b, ch, z, y, xx]
                    if v > best:
                        best = v
    for i in range(k[0]):
        z = oz * s[0] + i - p[0]
        for j in range(k[1]):
            y = oy * s[1] + j - p[1]
            for q in range(k[2]):
                xx = ox * s[2] + q - p[2]
                inside = 0 <= z < sp[0] and 0 <= y < sp[1] and 0 <= xx < sp[2]
                v = x[b, ch, z, y, xx] if inside else -np.inf
                if v == best:
                    return (i * k[1] + j) * k[2] + q, inside
    return -1, False


@njit(cache=True)
def pool3d_bwd(gy, x, gx, kd, kh, kw, sd, sh, sw, pd, ph, pw, mode, include_pad):
    """gx (n, c, D, H, W) = the pooling gradient of gy (n, c, OD, OH, OW)."""
    sp, k, s, p, osp = _geo(x, gy, kd, kh, kw, sd, sh, sw, pd, ph, pw)
    whole = _whole(k, p, sp, osp)
    gx[...] = 0
    for b in range(x.shape[0]):
        for ch in range(x.shape[1]):
            for oz in range(osp[0]):
                for oy in range(osp[1]):
                    for ox in range(osp[2]):
                        g = gy[b, ch, oz, oy, ox]
                        if mode == 0:
                            off, inside = _first_max3(x, b, ch, oz, oy, ox, sp, k, s, p, whole)
                            if off >= 0 and inside:
                                i = off // (k[1] * k[2])
                                j = (off // k[2]) % k[1]
                                q = off % k[2]
                                gx[b, ch, oz * s[0] + i - p[0], oy * s[1] + j - p[1],
                                   ox * s[2] + q - p[2]] += g
                            continue
                        if mode == 1:
                            cnt = _axis_count(oz, s[0], p[0], k[0], sp[0], include_pad) * \
                                _axis_count(oy, s[1], p[1], k[1], sp[1], include_pad) * \
                                _axis_count(ox, s[2], p[2], k[2], sp[2], include_pad)
                            g = g / max(cnt, 1)
                        for i in range(k[0]):
                            z = oz * s[0] + i - p[0]
                            if z < 0 or z >= sp[0]:
                                continue
                            for j in range(k[1]):
                                y = oy * s[1] + j - p[1]
                                if y < 0 or y >= sp[1]:
                                    continue
                                for q in range(k[2]):
                                    xx = ox * s[2] + q - p[2]
                                    if 0 <= xx < sp[2]:
                                        gx[b, ch, z, y, xx] += g


@njit(cache=True)
def pool3d_select(g, x, out, kd, kh, kw, sd, sh, sw, pd, ph, pw):
    """out (n, c, OD, OH, OW) = g at the maximum max pooling of x routes to (0 in padding)."""
    sp, k, s, p, osp = _geo(x, out, kd, kh, kw, sd, sh, sw, pd, ph, pw)
    for b in range(x.shape[0]):
        for ch in range(x.shape[1]):
            for oz in range(osp[0]):
                for oy in range(osp[1]):
                    for ox in range(osp[2]):
                        off, inside = _first_max3(x, b, ch, oz, oy, ox, sp, k, s, p, False)
                        v = 0.0
                        if off >= 0 and inside:
                            i = off // (k[1] * k[2])
                            j = (off // k[2]) % k[1]
                            q = off % k[2]
                            v = g[b, ch, oz * s[0] + i - p[0], oy * s[1] + j - p[1],
                                  ox * s[2] + q - p[2]]
                        out[b, ch, oz, oy, ox] = v


LIBRARY_NN3D = {f.__name__: (f, None) for f in (
    conv3d_fwd, conv3d_bwd_data, conv3d_bwd_weight, pool3d_fwd, pool3d_bwd, pool3d_select)}
