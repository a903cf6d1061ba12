"""Kernels of the normalisation / NN ops' lowerings (symbol/ops/nn_norm.py, nn_dense.py,
nn_softmax.py, nn_extra.py, legacy.py, math_extra.py): BatchNorm forward and its fused
backward, row normalisation (LayerNorm / InstanceNorm / GroupNorm), L2Normalization,
softmax along any axis, the Dropout mask drawn from the ``mx.random`` generator, Embedding
and its scatter gradient, and the scalar ``erfinv``.

Conventions (agjit.compiler.kernels note *kernel-library*): the lowering views the data as
(pre, C, post) so one kernel serves every axis and rank; geometry travels as int64 runtime
arguments and flags as bools, so there is one specialisation per dtype, not per layer.
Sums accumulate in float64; results are written in the buffers' dtype.
"""
import math

import numpy as np

from .numba_cache import njit  # verified cache under AGJIT_CACHE_DIR

_J = dict(cache=True, forceinline=True)


# ---------------------------------------------------------------------------------------
# BatchNorm: x3 is the data viewed as (pre, C, post)
# ---------------------------------------------------------------------------------------
# Note: reassociated-sums
#     The per-channel float64 sums of BatchNorm are compiled with fastmath ``reassoc`` (and
#     nothing else: NaN/inf semantics stay), which lets LLVM vectorise them with several
#     partial sums instead of one add chain: measured on the W7 block's (32, 64, 1024)
#     float32 data, _chan_stats 3.5 -> 0.65 ms.  The sums stay float64, so the reordering
#     changes them by a few float64 ulps.
_SUMS = dict(cache=True, fastmath={"reassoc"})


@njit(**_SUMS)
def _chan_stats(x3, mean, var):
    """Batch mean and biased variance per channel (float64, two passes)."""
    P, C, Q = x3.shape
    m = max(P * Q, 1)
    for c in range(C):
        s = 0.0
        for p in range(P):
            for q in range(Q):
                s += x3[p, c, q]
        mu = s / m
        v = 0.0
        for p in range(P):
            for q in range(Q):
                d = x3[p, c, q] - mu
                v += d * d
        mean[c] = mu
        var[c] = v / m


@njit(cache=True)
def bn_fwd(x3, gamma, beta, mm, mv, out3, mean, var, eps, fix_gamma, training):
    """BatchNorm forward; ``training``: batch statistics (written to mean/var), else the
    moving ones (copied to mean/var)."""
    P, C, Q = x3.shape
    mu = np.empty(C, dtype=np.float64)
    vr = np.empty(C, dtype=np.float64)
    if training:
        _chan_stats(x3, mu, vr)
    else:
        for c in range(C):
            mu[c] = mm[c]
            vr[c] = mv[c]
    for c in range(C):
        mean[c] = mu[c]
        var[c] = vr[c]
        g = 1.0 if fix_gamma else gamma[c]
        sc = g / math.sqrt(vr[c] + eps)
        b = beta[c]
        for p in range(P):
            for q in range(Q):
                out3[p, c, q] = (x3[p, c, q] - mu[c]) * sc + b


@njit(**_SUMS)
def _chan_grad_sums(g3, x3, c, mu, rstd):
    """Sums over channel c of g and of g * xhat (float64, note *reassociated-sums*)."""
    P, Q = x3.shape[0], x3.shape[2]
    sg = 0.0
    sgx = 0.0
    for p in range(P):
        for q in range(Q):
            gv = g3[p, c, q]
            sg += gv
            sgx += gv * ((x3[p, c, q] - mu) * rstd)
    return sg, sgx


@njit(cache=True)
def bn_bwd(g3, x3, gamma, mm, mv, gx3, ggamma, gbeta, eps, fix_gamma, batch_stats,
           batch_formula):
    """BatchNorm's input gradients in three passes: statistics (the batch's when
    ``batch_stats``, else the moving ones), per-channel sums of g and g * xhat, then gx
    (the batch-statistics formula when ``batch_formula``, else g * gamma * rstd)."""
    P, C, Q = x3.shape
    m = max(P * Q, 1)
    mu = np.empty(C, dtype=np.float64)
    vr = np.empty(C, dtype=np.float64)
    if batch_stats:
        _chan_stats(x3, mu, vr)
    else:
        for c in range(C):
            mu[c] = mm[c]
            vr[c] = mv[c]
    for c in range(C):
        rstd = 1.0 / math.sqrt(vr[c] + eps)
        sg, sgx = _chan_grad_sums(g3, x3, c, mu[c], rstd)
        gbeta[c] = sg
        ggamma[c] = 0.0 if fix_gamma else sgx
        sc = rstd if fix_gamma else rstd * gamma[c]
        if batch_formula:
            a = sg / m
            b = sgx / m
            for p in range(P):
                for q in range(Q):
                    xh = (x3[p, c, q] - mu[c]) * rstd
                    gx3[p, c, q] = (g3[p, c, q] - a - xh * b) * sc
        else:
            for p in range(P):
                for q in range(Q):
                    gx3[p, c, q] = g3[p, c, q] * sc


# ---------------------------------------------------------------------------------------
# row normalisation over the middle axis of (pre, C, post): LayerNorm (gamma per position
# along C), InstanceNorm / GroupNorm (data as (N*G, M, 1), gamma per row group p % G)
# ---------------------------------------------------------------------------------------
@njit(cache=True)
def rownorm_fwd(x3, gamma, beta, out3, mean2, dev2, eps, per_row, groups, want_std):
    """y = (x - mean) / sqrt(var + eps) * gamma + beta over axis 1 of x3; mean2 / dev2 are
    (pre, post): the mean and the std (``want_std``) or the biased variance."""
    P, C, Q = x3.shape
    n = max(C, 1)
    for p in range(P):
        for q in range(Q):
            s = 0.0
            for c in range(C):
                s += x3[p, c, q]
            mu = s / n
            v = 0.0
            for c in range(C):
                d = x3[p, c, q] - mu
                v += d * d
            v = v / n
            sd = math.sqrt(v + eps)
            mean2[p, q] = mu
            dev2[p, q] = sd if want_std else v
            if per_row:
                k = p % groups
                g = gamma[k]
                b = beta[k]
                for c in range(C):
                    out3[p, c, q] = (x3[p, c, q] - mu) / sd * g + b
            else:
                for c in range(C):
                    out3[p, c, q] = (x3[p, c, q] - mu) / sd * gamma[c] + beta[c]


@njit(cache=True)
def l2norm_fwd(x3, out3, norm2, eps):
    """x / sqrt(sum(x^2) + eps) over axis 1 of x3; norm2 (pre, post)."""
    P, C, Q = x3.shape
    for p in range(P):
        for q in range(Q):
            s = 0.0
            for c in range(C):
                s += x3[p, c, q] * x3[p, c, q]
            nv = math.sqrt(s + eps)
            norm2[p, q] = nv
            for c in range(C):
                out3[p, c, q] = x3[p, c, q] / nv


# ---------------------------------------------------------------------------------------
# softmax along the middle axis of (pre, C, post)
# ---------------------------------------------------------------------------------------
@njit(cache=True)
def softmax_mid(x3, out3, scale, log):
    """softmax(x * scale) (or its log) along axis 1; ``scale`` = 1/temperature (negative
    for softmin)."""
    P, C, Q = x3.shape
    for p in range(P):
        for q in range(Q):
            m = x3[p, 0, q] * scale
            for c in range(1, C):
                z = x3[p, c, q] * scale
                if z > m:
                    m = z
            s = 0.0
            for c in range(C):
                s += math.exp(x3[p, c, q] * scale - m)
            if log:
                lse = math.log(s)
                for c in range(C):
                    out3[p, c, q] = x3[p, c, q] * scale - m - lse
            else:
                inv = 1.0 / s
                for c in range(C):
                    out3[p, c, q] = math.exp(x3[p, c, q] * scale - m) * inv


# ---------------------------------------------------------------------------------------
# Dropout: the mask drawn from the mx.random generator (a np.random.Generator, whose stream
# Numba reproduces: the same doubles as ``rng.random(shape)`` in C order)
# ---------------------------------------------------------------------------------------
@njit(cache=True)
def dropout_draw(rng, m_flat, keep, scale):
    """m_flat[i] = scale where rng.random() < keep else 0, in order."""
    for i in range(m_flat.shape[0]):
        m_flat[i] = scale if rng.random() < keep else 0.0


# ---------------------------------------------------------------------------------------
# Embedding: indices clipped into the table, rows copied / scattered
# ---------------------------------------------------------------------------------------
@njit(**_J)
def _row_of(v, n):
    if v < 0:
        v = 0
    if v > n - 1:
        v = n - 1
    return int(v)


@njit(cache=True)
def embedding_fwd(idx, w, out2):
    n = w.shape[0]
    for r in range(idx.shape[0]):
        k = _row_of(idx[r], n)
        for j in range(w.shape[1]):
            out2[r, j] = w[k, j]


@njit(cache=True)
def embedding_bwd(g2, idx, out):
    """out = zeros; out[clip(idx[r])] += g2[r] (repeated indices accumulate)."""
    n = out.shape[0]
    for k in range(n):
        for j in range(out.shape[1]):
            out[k, j] = 0.0
    for r in range(idx.shape[0]):
        k = _row_of(idx[r], n)
        for j in range(out.shape[1]):
            out[k, j] += g2[r, j]


# ---------------------------------------------------------------------------------------
# scalar erfinv: Giles' single-precision approximation refined by two Newton steps on erf
# (double precision: each step squares the relative error)
# ---------------------------------------------------------------------------------------
@njit(cache=True)
def _erfinv64(y):
    if y != y or y < -1.0 or y > 1.0:
        return math.nan
    if y == 1.0:
        return math.inf
    if y == -1.0:
        return -math.inf
    w = -math.log((1.0 - y) * (1.0 + y))
    if w < 5.0:
        w = w - 2.5
        p = 2.81022636e-08
        p = 3.43273939e-07 + p * w
        p = -3.5233877e-06 + p * w
        p = -4.39150654e-06 + p * w
        p = 0.00021858087 + p * w
        p = -0.00125372503 + p * w
        p = -0.00417768164 + p * w
        p = 0.246640727 + p * w
        p = 1.50140941 + p * w
    else:
        w = math.sqrt(w) - 3.0
        p = -0.000200214257
        p = 0.000100950558 + p * w
        p = 0.00134934322 + p * w
        p = -0.00367342844 + p * w
        p = 0.00573950773 + p * w
        p = -0.0076224613 + p * w
        p = 0.00943887047 + p * w
        p = 1.00167406 + p * w
        p = 2.83297682 + p * w
    x = p * y
    c = 2.0 / math.sqrt(math.pi)
    for _ in range(2):
        d = c * math.exp(-x * x)
        if d == 0.0:
            break
        x = x - (math.erf(x) - y) / d
    return x


@njit(**_J)
def erfinv(x):
    return _as_type(_erfinv64(np.float64(x)), x)


def _as_type(v, like):
    return v


from numba import types as _types  # noqa: E402
from numba.extending import overload as _overload  # noqa: E402


@_overload(_as_type, inline="always")
def _ov_as_type(v, like):
    if like == _types.float32:
        return lambda v, like: np.float32(v)
    return lambda v, like: v


# name -> (function, cost per element; None for kernels called once per op), merged into
# agjit.compiler.kernels.LIBRARY
TRANSCENDENTAL = 16
LIBRARY_NORM = {
    "erfinv": (erfinv, 4 * TRANSCENDENTAL),
    "bn_fwd": (bn_fwd, None), "bn_bwd": (bn_bwd, None),
    "rownorm_fwd": (rownorm_fwd, None), "l2norm_fwd": (l2norm_fwd, None),
    "softmax_mid": (softmax_mid, None), "dropout_draw": (dropout_draw, None),
    "embedding_fwd": (embedding_fwd, None), "embedding_bwd": (embedding_bwd, None),
}
