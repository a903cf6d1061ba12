"""Kernel-library functions of the shape, indexing and reduction lowerings (take, one_hot,
gather_nd, max/min/prod/nansum/nanprod/norm/argmax/argmin over an (outer, reduced, inner)
view, _prod_others).  They are registered into :data:`agjit.compiler.kernels.LIBRARY` by
one line there (generated modules import them from ``agjit.compiler.kernels``).

Every kernel takes its sizes from its arrays and its options as int/float runtime values,
so it is compiled once per dtype and ndim (the views the lowerings pass are 1-3-D), not
once per shape or attribute value.  Sums and products accumulate in float64 (as
``reduce_sum_3d``).
"""
import math

from .numba_cache import njit  # verified cache under AGJIT_CACHE_DIR

__all__ = ["SHAPE_LIBRARY", "take_3d", "take_scatter_3d", "one_hot_rows", "gather_nd_rows",
           "scatter_nd_rows", "reduce_extreme_3d", "reduce_prod_3d", "reduce_norm_3d",
           "arg_extreme_3d", "prod_others_3d", "seq_mask_3d", "seq_last_3d",
           "seq_last_back_3d", "seq_reverse_3d"]


@njit(cache=True)
def _index(v, n, wrap):
    """An index value (float) as a valid position along an axis of size n: truncated toward
    zero (as ``astype(int64)``), then wrapped (``wrap``) or clipped."""
    k = int(v)
    if wrap:
        if n > 0:
            k = k % n
        return k
    if k < 0:
        return 0
    if k >= n:
        return n - 1 if n > 0 else 0
    return k


@njit(cache=True)
def take_3d(x, idx, out, wrap):
    """x viewed (outer, n, inner), idx flat (m,), out (outer, m, inner)."""
    n = x.shape[1]
    for j in range(idx.shape[0]):
        k = _index(idx[j], n, wrap)
        for o in range(x.shape[0]):
            for i in range(x.shape[2]):
                out[o, j, i] = x[o, k, i]


@njit(cache=True)
def take_scatter_3d(g, idx, out, wrap):
    """Zeros of out (outer, n, inner) plus g (outer, m, inner) added at the taken rows."""
    n = out.shape[1]
    for o in range(out.shape[0]):
        for k in range(n):
            for i in range(out.shape[2]):
                out[o, k, i] = 0
    for j in range(idx.shape[0]):
        k = _index(idx[j], n, wrap)
        for o in range(out.shape[0]):
            for i in range(out.shape[2]):
                out[o, k, i] += g[o, j, i]


@njit(cache=True)
def one_hot_rows(idx, out, on, off):
    """idx flat (m,), out (m, depth): ``off`` everywhere, ``on`` at the in-range index."""
    depth = out.shape[1]
    for j in range(idx.shape[0]):
        for c in range(depth):
            out[j, c] = off
        k = int(idx[j])
        if 0 <= k < depth:
            out[j, k] = on


@njit(cache=True)
def _nd_row(idx, dims, y):
    """Row of the (prod(dims), rest) data view that index column ``y`` addresses (negative
    indices count from the end); IndexError out of range (as the eager kernel)."""
    r = 0
    for m in range(len(dims)):
        k = int(idx[m, y])
        if k < 0:
            k += dims[m]
        if k < 0 or k >= dims[m]:
            raise IndexError("gather_nd/scatter_nd: index out of range")
        r = r * dims[m] + k
    return r


@njit(cache=True)
def gather_nd_rows(data, idx, dims, out):
    """data (P, R), idx (M, Y), dims the first M data dims (a tuple), out (Y, R)."""
    for y in range(idx.shape[1]):
        r = _nd_row(idx, dims, y)
        for c in range(data.shape[1]):
            out[y, c] = data[r, c]


@njit(cache=True)
def scatter_nd_rows(data, idx, dims, out, add):
    """out (P, R) zeroed, then data (Y, R) written (``add``: accumulated) at the rows."""
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            out[r, c] = 0
    for y in range(idx.shape[1]):
        r = _nd_row(idx, dims, y)
        for c in range(data.shape[1]):
            if add:
                out[r, c] += data[y, c]
            else:
                out[r, c] = data[y, c]


@njit(cache=True)
def reduce_extreme_3d(x, out, is_min):
    """max (or min) over axis 1 of x (outer, red, inner) -> out (outer, inner); NaN
    propagates (as NumPy and MXNet)."""
    for o in range(x.shape[0]):
        for i in range(x.shape[2]):
            m = x[o, 0, i]
            for r in range(1, x.shape[1]):
                v = x[o, r, i]
                if m != m:
                    break
                if v != v or (v < m if is_min else v > m):
                    m = v
            out[o, i] = m


@njit(cache=True)
def reduce_prod_3d(x, out, mode):
    """mode 0: product, 1: sum skipping NaN, 2: product skipping NaN (float64 accumulator)."""
    for o in range(x.shape[0]):
        for i in range(x.shape[2]):
            acc = 0.0 if mode == 1 else 1.0
            for r in range(x.shape[1]):
                v = x[o, r, i]
                if mode == 0:
                    acc *= v
                elif v == v:
                    if mode == 1:
                        acc += v
                    else:
                        acc *= v
            out[o, i] = acc


@njit(cache=True)
def reduce_norm_3d(x, out, order):
    """L1 (order 1) or L2 norm over axis 1 of x (outer, red, inner)."""
    for o in range(x.shape[0]):
        for i in range(x.shape[2]):
            acc = 0.0
            for r in range(x.shape[1]):
                v = x[o, r, i]
                acc += abs(v) if order == 1 else v * v
            out[o, i] = acc if order == 1 else math.sqrt(acc)


@njit(cache=True)
def arg_extreme_3d(x, out, is_min):
    """Index of the first max (min) over axis 1 of x (outer, red, inner); the first NaN wins
    (as numpy.argmax)."""
    for o in range(x.shape[0]):
        for i in range(x.shape[2]):
            m = x[o, 0, i]
            k = 0
            if m == m:
                for r in range(1, x.shape[1]):
                    v = x[o, r, i]
                    if v != v:
                        k = r
                        break
                    if v < m if is_min else v > m:
                        m = v
                        k = r
            out[o, i] = k


@njit(cache=True)
def prod_others_3d(x, out):
    """out[o, r, i] = product of x[o, s, i] over s != r (exclusive prefix times suffix
    products, exact with zeros)."""
    n = x.shape[1]
    for o in range(x.shape[0]):
        for i in range(x.shape[2]):
            acc = 1.0
            for r in range(n):
                out[o, r, i] = acc
                acc *= x[o, r, i]
            acc = 1.0
            for r in range(n - 1, -1, -1):
                out[o, r, i] = out[o, r, i] * acc
                acc *= x[o, r, i]


@njit(cache=True)
def _seq_len(lens, n, steps, has_len):
    if not has_len:
        return steps
    k = int(lens[n])
    if k < 0 or k > steps:
        raise ValueError("Sequence*: sequence_length values must be in [0, the number of steps]")
    return k


@njit(cache=True)
def seq_mask_3d(x, lens, out, tax, value, has_len):
    """x / out viewed (T, N, R) (``tax`` 0) or (N, T, R) (``tax`` 1): steps at and after
    each sequence's length set to ``value``."""
    steps = x.shape[tax]
    for n in range(x.shape[1 - tax]):
        k = _seq_len(lens, n, steps, has_len)
        for t in range(steps):
            for r in range(x.shape[2]):
                if tax == 0:
                    out[t, n, r] = x[t, n, r] if t < k else value
                else:
                    out[n, t, r] = x[n, t, r] if t < k else value


@njit(cache=True)
def seq_last_3d(x, lens, out, tax, has_len):
    """out (N, R) = x at step max(length - 1, 0) of each sequence (x viewed as above)."""
    steps = x.shape[tax]
    for n in range(x.shape[1 - tax]):
        t = max(_seq_len(lens, n, steps, has_len) - 1, 0)
        for r in range(x.shape[2]):
            out[n, r] = x[t, n, r] if tax == 0 else x[n, t, r]


@njit(cache=True)
def seq_last_back_3d(g, lens, out, tax, has_len):
    """Zeros of out (viewed as above) with g (N, R) at each sequence's last valid step."""
    steps = out.shape[tax]
    for a in range(out.shape[0]):
        for b in range(out.shape[1]):
            for r in range(out.shape[2]):
                out[a, b, r] = 0
    for n in range(out.shape[1 - tax]):
        t = max(_seq_len(lens, n, steps, has_len) - 1, 0)
        for r in range(out.shape[2]):
            if tax == 0:
                out[t, n, r] = g[n, r]
            else:
                out[n, t, r] = g[n, r]


@njit(cache=True)
def seq_reverse_3d(x, lens, out, has_len):
    """x / out (T, N, R): the first length steps of each sequence reversed."""
    steps = x.shape[0]
    for n in range(x.shape[1]):
        k = _seq_len(lens, n, steps, has_len)
        for t in range(steps):
            src = k - 1 - t if t < k else t
            for r in range(x.shape[2]):
                out[t, n, r] = x[src, n, r]


# name -> (function, None): kernels called once per op (agjit.compiler.kernels note
# *kernel-library*)
SHAPE_LIBRARY = {f.__name__ if hasattr(f, "__name__") else f.py_func.__name__: (f, None)
                 for f in (take_3d, take_scatter_3d, one_hot_rows, gather_nd_rows,
                           scatter_nd_rows, reduce_extreme_3d, reduce_prod_3d, reduce_norm_3d,
                           arg_extreme_3d, prod_others_3d, seq_mask_3d, seq_last_3d,
                           seq_last_back_3d, seq_reverse_3d)}
