"""The JIT's kernel library: scalar functions used by fused elementwise loops (the
vectorisable transcendentals come from agjit.compiler.vmath), and hand-written row kernels
(softmax, log_softmax, softmax cross-entropy) and reductions.

Every function is ``@njit(cache=True)``; scalar helpers are ``inline="always"`` so a fused
loop body is one straight-line expression LLVM can optimise.  Generated kernels import this
module as ``K`` and the scalar helpers by name.  Changing this file changes the kernel-library
hash, which is part of every cache key (see agjit.compiler.cache).
"""
import math

import numpy as np
from .numba_cache import njit  # verified cache under AGJIT_CACHE_DIR

# Scalar helpers are compiled once per dtype and declared LLVM alwaysinline in their callers
# (forceinline): Numba-level inline="always" re-types the callee at every call site and was
# measured at ~0.5 s of compile time per use (see agjit.compiler.vmath note *vmath*).
_J = dict(cache=True, forceinline=True)

from .vmath import exp, expm1, log, log1p, tanh, sigmoid, softrelu  # noqa: E402,F401






@njit(**_J)
def sqrt(x):
    return np.sqrt(x)


@njit(**_J)
def sin(x):
    return math.sin(x)


@njit(**_J)
def cos(x):
    return math.cos(x)


@njit(**_J)
def tan(x):
    return math.tan(x)






@njit(**_J)
def relu(x):
    return x if x > 0 else x * 0




@njit(**_J)
def sign(x):
    if x > 0:
        return x * 0 + 1
    if x < 0:
        return x * 0 - 1
    return x * 0






@njit(**_J)
def floor(x):
    return math.floor(x)


@njit(**_J)
def ceil(x):
    return math.ceil(x)


@njit(**_J)
def round(x):  # noqa: A001  (NumPy's round-half-to-even, as the eager kernel)
    return np.round(x)


@njit(**_J)
def log2(x):
    return math.log2(x) if x > 0 else (-math.inf if x == 0 else math.nan)


@njit(**_J)
def log10(x):
    return math.log10(x) if x > 0 else (-math.inf if x == 0 else math.nan)


@njit(**_J)
def mod(a, b):
    """MXNet's mod: result has the sign of the divisor; 0 where the divisor is 0."""
    if b == 0:
        return a * 0
    r = np.fmod(a, b)
    if r != 0 and ((r < 0) != (b < 0)):
        r += b
    return r


# ---------------------------------------------------------------------------------------
# row kernels over (rows, n) views: the lowering reshapes the data so that the softmax axis
# is last; ``out`` has the same shape.
# ---------------------------------------------------------------------------------------
@njit(cache=True)
def softmax_rows(x, out, inv_temp):
    for r in range(x.shape[0]):
        m = x[r, 0]
        for j in range(1, x.shape[1]):
            if x[r, j] > m:
                m = x[r, j]
        s = 0.0
        for j in range(x.shape[1]):
            e = math.exp((x[r, j] - m) * inv_temp)
            out[r, j] = e
            s += e
        inv = 1.0 / s
        for j in range(x.shape[1]):
            out[r, j] = out[r, j] * inv


@njit(cache=True)
def log_softmax_rows(x, out, inv_temp):
    for r in range(x.shape[0]):
        m = x[r, 0]
        for j in range(1, x.shape[1]):
            if x[r, j] > m:
                m = x[r, j]
        s = 0.0
        for j in range(x.shape[1]):
            s += math.exp((x[r, j] - m) * inv_temp)
        lse = math.log(s)
        for j in range(x.shape[1]):
            out[r, j] = (x[r, j] - m) * inv_temp - lse


@njit(cache=True)
def softmax_cross_entropy_rows(x, label, out):
    """Sum over rows of -log softmax(x)[label]; out has shape (1,)."""
    total = 0.0
    for r in range(x.shape[0]):
        m = x[r, 0]
        for j in range(1, x.shape[1]):
            if x[r, j] > m:
                m = x[r, j]
        s = 0.0
        for j in range(x.shape[1]):
            s += math.exp(x[r, j] - m)
        k = int(label[r])
        if k < 0:
            k = 0
        if k >= x.shape[1]:
            k = x.shape[1] - 1
        total += math.log(s) + m - x[r, k]
    out[0] = total


@njit(cache=True)
def reduce_sum_3d(x, out, scale):
    """x viewed as (outer, red, inner) -> out (outer, inner), times ``scale``.  Sums are
    accumulated in float64 (a float32 running sum over 1e7 elements loses ~3 digits)."""
    n_in = x.shape[2]
    if n_in == 1:
        for o in range(x.shape[0]):
            acc = 0.0
            for r in range(x.shape[1]):
                acc += x[o, r, 0]
            out[o, 0] = acc * scale
        return
    acc = np.zeros(n_in, dtype=np.float64)
    for o in range(x.shape[0]):
        acc[:] = 0.0
        for r in range(x.shape[1]):
            for i in range(n_in):
                acc[i] += x[o, r, i]
        for i in range(n_in):
            out[o, i] = acc[i] * scale


@njit(cache=True)
def copy_into(src, dst):
    d = dst.reshape(-1)
    s = src.reshape(-1)
    for i in range(d.shape[0]):
        d[i] = s[i]
