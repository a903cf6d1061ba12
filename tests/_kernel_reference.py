"""Test-only reference: the loop-of-einsum Convolution and loop-over-window Pooling kernels as
they were before the im2col/BLAS rewrite (symbol/ops/nn_conv.py, Dec 2026), kept verbatim so
tests/test_fast_kernels.py can compare the fast kernels against them over random shapes.
The geometry helpers (_conv_setup, _pool_geom) are imported: they did not change."""
import itertools

import numpy as np

from symbol.ops.nn_conv import _conv_setup, _pool_geom


def _win(start, dil, size, stride):
    return slice(start * dil, start * dil + stride * (size - 1) + 1, stride)


def _pad(x, p, value=0.0):
    if not any(p):
        return x
    return np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in p], constant_values=value)


def conv_np(x, w, attrs):
    k, s, d, p, osp = _conv_setup(attrs, x.shape)
    G = attrs["num_group"]
    n, c = x.shape[:2]
    f = w.shape[0]
    xp = _pad(x, p).reshape((n, G, c // G) + tuple(q + 2 * pp for q, pp in zip(x.shape[2:], p)))
    wg = w.reshape((G, f // G, c // G) + k)
    out = np.zeros((n, G, f // G) + osp, dtype=np.result_type(x, w))
    for off in itertools.product(*[range(kk) for kk in k]):
        sl = (slice(None),) * 3 + tuple(_win(o, dd, os_, ss) for o, dd, os_, ss in zip(off, d, osp, s))
        patch = xp[sl]
        wk = wg[(slice(None),) * 3 + off]
        out += np.einsum("ngc...,gfc->ngf...", patch, wk)
    return out.reshape((n, f) + osp)


def conv_bwd_data_np(g, x, w, attrs):
    k, s, d, p, osp = _conv_setup(attrs, x.shape)
    G = attrs["num_group"]
    n, c = x.shape[:2]
    f = w.shape[0]
    psp = tuple(q + 2 * pp for q, pp in zip(x.shape[2:], p))
    gx = np.zeros((n, G, c // G) + psp, dtype=g.dtype)
    gg = g.reshape((n, G, f // G) + osp)
    wg = w.reshape((G, f // G, c // G) + k)
    for off in itertools.product(*[range(kk) for kk in k]):
        sl = (slice(None),) * 3 + tuple(_win(o, dd, os_, ss) for o, dd, os_, ss in zip(off, d, osp, s))
        gx[sl] += np.einsum("ngf...,gfc->ngc...", gg, wg[(slice(None),) * 3 + off])
    gx = gx.reshape((n, c) + psp)
    crop = (slice(None), slice(None)) + tuple(slice(pp, pp + q) for pp, q in zip(p, x.shape[2:]))
    return np.ascontiguousarray(gx[crop])


def conv_bwd_weight_np(g, x, w, attrs):
    k, s, d, p, osp = _conv_setup(attrs, x.shape)
    G = attrs["num_group"]
    n, c = x.shape[:2]
    f = w.shape[0]
    xp = _pad(x, p).reshape((n, G, c // G) + tuple(q + 2 * pp for q, pp in zip(x.shape[2:], p)))
    gg = g.reshape((n, G, f // G) + osp)
    gw = np.zeros((G, f // G, c // G) + k, dtype=g.dtype)
    for off in itertools.product(*[range(kk) for kk in k]):
        sl = (slice(None),) * 3 + tuple(_win(o, dd, os_, ss) for o, dd, os_, ss in zip(off, d, osp, s))
        patch = xp[sl].reshape(n, G, c // G, -1)
        gw[(slice(None),) * 3 + off] = np.einsum("ngfs,ngcs->gfc", gg.reshape(n, G, f // G, -1), patch)
    return gw.reshape(w.shape)


def _pool_padded(x, p, extra, value):
    if not any(p) and not any(extra):
        return x
    return np.pad(x, [(0, 0), (0, 0)] + [(q, q + e) for q, e in zip(p, extra)], constant_values=value)


def _pool_windows(k, s, osp):
    for off in itertools.product(*[range(kk) for kk in k]):
        yield off, (slice(None), slice(None)) + tuple(_win(o, 1, os_, ss) for o, os_, ss in zip(off, osp, s))


def _pool_count(attrs, xshape, k, s, p, osp, extra, dtype):
    sp = xshape[2:]
    if attrs["count_include_pad"]:
        m = np.ones(tuple(q + 2 * pp for q, pp in zip(sp, p)), dtype=dtype)
        m = np.pad(m, [(0, e) for e in extra])
    else:
        m = np.pad(np.ones(sp, dtype=dtype), [(pp, pp + e) for pp, e in zip(p, extra)])
    cnt = np.zeros(osp, dtype=dtype)
    for off, sl in _pool_windows(k, s, osp):
        cnt += m[sl[2:]]
    return np.maximum(cnt, 1)


def pool_fwd(attrs, x):
    k, s, p, osp, extra = _pool_geom(attrs, x.shape)
    t = attrs["pool_type"]
    if t == "max":
        lo = np.finfo(x.dtype).min if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xp = _pool_padded(x, p, extra, lo)
        out = np.full(x.shape[:2] + osp, lo, dtype=x.dtype)
        for off, sl in _pool_windows(k, s, osp):
            np.maximum(out, xp[sl], out=out)
        return out
    xp = _pool_padded(x, p, extra, 0.0)
    out = np.zeros(x.shape[:2] + osp, dtype=x.dtype)
    for off, sl in _pool_windows(k, s, osp):
        out += xp[sl]
    if t == "avg":
        out /= _pool_count(attrs, x.shape, k, s, p, osp, extra, x.dtype)
    return out


def _pool_argmax(x, k, s, p, osp, extra):
    xp = _pool_padded(x, p, extra, -np.inf)
    best = np.full(x.shape[:2] + osp, -np.inf, dtype=x.dtype)
    arg = np.zeros(x.shape[:2] + osp, dtype=np.int64)
    for i, (off, sl) in enumerate(_pool_windows(k, s, osp)):
        v = xp[sl]
        upd = v > best
        best = np.where(upd, v, best)
        arg = np.where(upd, i, arg)
    return arg


def pool_bwd_np(g, x, attrs):
    k, s, p, osp, extra = _pool_geom(attrs, x.shape)
    t = attrs["pool_type"]
    psp = tuple(q + 2 * pp + e for q, pp, e in zip(x.shape[2:], p, extra))
    gx = np.zeros(x.shape[:2] + psp, dtype=g.dtype)
    if t == "max":
        arg = _pool_argmax(x, k, s, p, osp, extra)
        for i, (off, sl) in enumerate(_pool_windows(k, s, osp)):
            gx[sl] += np.where(arg == i, g, 0)
    else:
        gs = g / _pool_count(attrs, x.shape, k, s, p, osp, extra, g.dtype) if t == "avg" else g
        for off, sl in _pool_windows(k, s, osp):
            gx[sl] += gs
    crop = (slice(None), slice(None)) + tuple(slice(pp, pp + q) for pp, q in zip(p, x.shape[2:]))
    return np.ascontiguousarray(gx[crop])


def pool_select_np(g, x, attrs):
    k, s, p, osp, extra = _pool_geom(attrs, x.shape)
    arg = _pool_argmax(x, k, s, p, osp, extra)
    gp = _pool_padded(g, p, extra, 0.0)
    out = np.zeros(x.shape[:2] + osp, dtype=g.dtype)
    for i, (off, sl) in enumerate(_pool_windows(k, s, osp)):
        out += np.where(arg == i, gp[sl], 0)
    return out


def bn_fwd(attrs, ins, training):
    """BatchNorm forward as it was (``training``: batch statistics)."""
    x, gamma, beta, mm, mv = ins
    ax = attrs["axis"] % x.ndim
    red = tuple(i for i in range(x.ndim) if i != ax)

    def bcast(v):
        shape = [1] * x.ndim
        shape[ax] = v.shape[0]
        return v.reshape(shape)
    if training:
        mean = x.mean(axis=red)
        var = x.var(axis=red)
    else:
        mean, var = mm, mv
    g = np.ones_like(gamma) if attrs["fix_gamma"] else gamma
    rstd = 1.0 / np.sqrt(var + attrs["eps"])
    y = (x - bcast(mean)) * bcast(rstd * g) + bcast(beta)
    dt = x.dtype
    return [y.astype(dt, copy=False), np.array(mean, dtype=dt), np.array(var, dtype=dt)]
