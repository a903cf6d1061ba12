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
from numba import types
from numba.extending import overload

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


def _zero(x):
    return 0


def _one(x):
    return 1


@overload(_zero, inline="always")
def _ov_zero(x):
    """A zero of the type of ``x`` (``x * 0`` is nan for an infinite x, and an int literal
    would turn float32 loops into float64 maths)."""
    if x == types.float32:
        return lambda x: np.float32(0.0)
    if isinstance(x, types.Float):
        return lambda x: np.float64(0.0)
    return lambda x: 0


@overload(_one, inline="always")
def _ov_one(x):
    if x == types.float32:
        return lambda x: np.float32(1.0)
    if isinstance(x, types.Float):
        return lambda x: np.float64(1.0)
    return lambda x: 1


# Special values follow MXNet 1.9.1 (and the eager kernels): relu(-inf) = 0, relu(nan) = nan;
# sign(nan) = 0; floor / ceil / round / rint / trunc keep nan and +-inf (math.floor returns an
# int64, which turned nan and inf into -9.2e18); maximum / minimum propagate nan from either
# operand (Python's max drops it).
@njit(**_J)
def relu(x):
    return x if (x > 0) | (x != x) else _zero(x)


@njit(**_J)
def sign(x):
    one = _one(x)
    return one if x > 0 else (-one if x < 0 else _zero(x))


@njit(**_J)
def floor(x):
    return np.floor(x)


@njit(**_J)
def ceil(x):
    return np.ceil(x)


@njit(**_J)
def trunc(x):
    return np.trunc(x)


@njit(**_J)
def round(x):  # noqa: A001
    """MXNet's round: half away from zero (0.5 -> 1, 2.5 -> 3, -0.5 -> -1); x - trunc(x) is
    exact, so no x + 0.5 rounding error (0.49999997 -> 0)."""
    t = np.trunc(x)
    one = _one(x)
    return t + (one if x > 0 else -one) if abs(x - t) >= 0.5 else t


@njit(**_J)
def rint(x):
    """MXNet's rint: the nearest integer, a half rounded down (1.5 -> 1, -1.5 -> -2; not
    NumPy's half-to-even)."""
    f = np.floor(x)
    return f if x - f <= 0.5 else f + _one(x)


@njit(**_J)
def maximum(a, b):
    """max(a, b) propagating nan from either operand (as NumPy's maximum and MXNet)."""
    return a if (a > b) | (a != a) else b


@njit(**_J)
def minimum(a, b):
    return a if (a < b) | (a != a) else b


@njit(**_J)
def log2(x):
    return math.log2(x) if x > 0 else (-math.inf if x == 0 else math.nan)


@njit(**_J)
def log10(x):
    return math.log10(x) if x > 0 else (-math.inf if x == 0 else math.nan)


@njit(**_J)
def mod(a, b):
    """MXNet's mod: result has the sign of the divisor; 0 where the divisor is 0 (also for an
    infinite or nan dividend, where ``a * 0`` would be nan)."""
    if b == 0:
        return _zero(a)
    r = np.fmod(a, b)
    if r != 0 and ((r < 0) != (b < 0)):
        r += b
    return r


# ---------------------------------------------------------------------------------------
# row kernels over (rows, n) views: the lowering reshapes the data so that the softmax axis
# is last; ``out`` has the same shape.
# ---------------------------------------------------------------------------------------
# Note: softmax-rows
#     The row kernels compute in the data's dtype with vmath's ``exp`` (no libm call, so the
#     loops vectorise) and sum in float64: the exp-and-sum loop is its own function compiled
#     with ``reassoc`` (vmath's instructions keep their own flags when inlined, vmath note
#     *vmath*), so LLVM vectorises the float64 reduction too.  W9's loss (700 rows of 10000
#     float32): NumPy's log_softmax 100 ms and its F-op gradient 85 ms (np.exp alone 80 ms)
#     against ~10 ms each here (process CPU, 2-core machine under load).
@njit(cache=True, fastmath={"reassoc", "contract"})
def _row_exp_sum(x, r, m, inv, out, keep):
    """sum_j exp((x[r, j] - m) * inv) in float64; with ``keep`` the exps go to out[r]."""
    s = 0.0
    for j in range(x.shape[1]):
        e = exp((x[r, j] - m) * inv)
        if keep:
            out[r, j] = e
        s += e
    return s


@njit(cache=True, fastmath={"reassoc", "contract"})
def _row_sum(x, r):
    s = 0.0
    for j in range(x.shape[1]):
        s += x[r, j]
    return s


@njit(cache=True)
def _row_max(x, r):
    m = x[r, 0]
    for j in range(1, x.shape[1]):
        v = x[r, j]
        if v > m or v != v:
            m = v
    return m


@njit(cache=True)
def _as_dtype(arr, v):
    t = np.empty(1, dtype=arr.dtype)
    t[0] = v
    return t[0]


@njit(cache=True)
def softmax_rows(x, out, inv_temp):
    inv = _as_dtype(out, inv_temp)
    for r in range(x.shape[0]):
        m = _row_max(x, r)
        s = _row_exp_sum(x, r, m, inv, out, True)
        q = _as_dtype(out, 1.0 / s)
        for j in range(x.shape[1]):
            out[r, j] = out[r, j] * q
    return


@njit(cache=True)
def log_softmax_rows(x, out, inv_temp):
    inv = _as_dtype(out, inv_temp)
    for r in range(x.shape[0]):
        m = _row_max(x, r)
        lse = _as_dtype(out, math.log(_row_exp_sum(x, r, m, inv, out, False)))
        for j in range(x.shape[1]):
            out[r, j] = (x[r, j] - m) * inv - lse
    return


@njit(cache=True)
def log_softmax_bwd_rows(y, g, out, inv_temp):
    """_backward_log_softmax over (rows, n): out = (g - exp(y) * sum(g)) * inv_temp."""
    inv = _as_dtype(out, inv_temp)
    for r in range(y.shape[0]):
        s = _as_dtype(out, _row_sum(g, r))
        for j in range(y.shape[1]):
            out[r, j] = (g[r, j] - exp(y[r, j]) * s) * inv
    return


@njit(cache=True)
def log_softmax_bwd_mid(y, g, out, inv_temp):
    """The same over (pre, n, post) views, the softmax axis in the middle."""
    inv = _as_dtype(out, inv_temp)
    P, n, Q = y.shape
    acc = np.empty(Q, dtype=np.float64)
    s = np.empty(Q, dtype=out.dtype)
    for p in range(P):
        for q in range(Q):
            acc[q] = 0.0
        for j in range(n):
            for q in range(Q):
                acc[q] += g[p, j, q]
        for q in range(Q):
            s[q] = acc[q]
        for j in range(n):
            for q in range(Q):
                out[p, j, q] = (g[p, j, q] - exp(y[p, j, q]) * s[q]) * inv
    return


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


@njit(cache=True, error_model='numpy')
def gemm(a, b, out):
    """out = a @ b through BLAS for 2-D operands of any layout (np.dot into ``out``):
    generated segments call this instead of np.dot, so Numba's np.dot implementation is
    compiled into this function's cached code once per machine and layout, not in every
    process that compiles a new segment (agjit.compiler.codegen note *one-specialisation*)."""
    np.dot(a, b, out)


@njit(cache=True)
def copy_into(src, dst):
    d = dst.reshape(-1)
    s = src.reshape(-1)
    for i in range(d.shape[0]):
        d[i] = s[i]


# Note: kernel-library
#     The functions lowerings may call by name (symbol.lowering note *lowering-contract*):
#     name -> (function, cost per element for the parallel cost model; None for kernels
#     called once per op rather than per element).  agjit.compiler.oplower resolves every
#     reference of a lowering here, and generated modules import exactly the names their
#     schedule uses.  A new library function is one entry here.
TRANSCENDENTAL = 16
LIBRARY = {
    "exp": (exp, TRANSCENDENTAL), "expm1": (expm1, TRANSCENDENTAL),
    "log": (log, TRANSCENDENTAL), "log1p": (log1p, TRANSCENDENTAL),
    "tanh": (tanh, TRANSCENDENTAL), "sigmoid": (sigmoid, TRANSCENDENTAL),
    "softrelu": (softrelu, TRANSCENDENTAL), "sqrt": (sqrt, TRANSCENDENTAL),
    "sin": (sin, TRANSCENDENTAL), "cos": (cos, TRANSCENDENTAL), "tan": (tan, TRANSCENDENTAL),
    "log2": (log2, TRANSCENDENTAL), "log10": (log10, TRANSCENDENTAL),
    "relu": (relu, 0), "sign": (sign, 0), "floor": (floor, 0), "ceil": (ceil, 0),
    "trunc": (trunc, 0), "round": (round, 0), "rint": (rint, 0), "mod": (mod, 0),
    "maximum": (maximum, 0), "minimum": (minimum, 0),
    "softmax_rows": (softmax_rows, None), "log_softmax_rows": (log_softmax_rows, None),
    "log_softmax_bwd_rows": (log_softmax_bwd_rows, None),
    "log_softmax_bwd_mid": (log_softmax_bwd_mid, None),
    "softmax_cross_entropy_rows": (softmax_cross_entropy_rows, None),
    "reduce_sum_3d": (reduce_sum_3d, None), "copy_into": (copy_into, None),
    "gemm": (gemm, None),
}

# the normalisation / NN ops' kernels (BatchNorm, LayerNorm, Dropout, Embedding...)
from .kernels_norm import LIBRARY_NORM  # noqa: E402
globals().update({_k: _v[0] for _k, _v in LIBRARY_NORM.items()})
LIBRARY.update(LIBRARY_NORM)
from .kernels_shape import *  # noqa: E402,F401,F403  shape/index/reduction kernels (by name)
LIBRARY.update(SHAPE_LIBRARY)  # noqa: F405
# the CNN ops' kernels (Convolution, Pooling and their gradients): agjit.compiler.kernels_nn
# (generated modules import them from here, by name)
from .kernels_nn import *  # noqa: E402,F401,F403
from .kernels_nn import LIBRARY_NN  # noqa: E402
LIBRARY.update(LIBRARY_NN)
# the fused RNN op's kernels: agjit.compiler.kernels_rnn
from .kernels_rnn import rnn_fwd, rnn_bwd, LIBRARY_RNN  # noqa: E402,F401
LIBRARY.update(LIBRARY_RNN)
# topk / sort / argsort: agjit.compiler.kernels_sort
from .kernels_sort import topk_rows, topk_scatter, LIBRARY_SORT  # noqa: E402,F401
LIBRARY.update(LIBRARY_SORT)
# 3-D Convolution / Deconvolution / Pooling: agjit.compiler.kernels_nn3d
from .kernels_nn3d import *  # noqa: E402,F401,F403
from .kernels_nn3d import LIBRARY_NN3D  # noqa: E402
LIBRARY.update(LIBRARY_NN3D)
