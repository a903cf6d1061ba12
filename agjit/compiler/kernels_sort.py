"""Kernel-library functions of topk / sort / argsort and the gradient of their values,
``_topk_scatter`` (symbol/ops/select.py), called by their KernelCall lowerings through
``ctx.fn`` and registered in agjit.compiler.kernels.LIBRARY.

The data is viewed as (pre, n, post) with the sorted axis in the middle (a flattened
``axis=None`` is (1, size, 1)).  Each row is ordered by a stable bottom-up merge sort of its
indices, as the eager kernel's ``np.argsort(kind="stable")``: among equal keys the lower
index comes first in both directions, and NaN sorts after every number in both directions
(the eager descending order sorts ``-x`` ascending, and ``-nan`` is NaN).
"""
import numpy as np

from .numba_cache import njit

__all__ = ["topk_rows", "topk_scatter"]


@njit(cache=True)
def _before(a, b, ascend):
    """Key a strictly before key b (NaN last in both directions)."""
    if a != a:
        return False
    if b != b:
        return True
    return a < b if ascend else a > b


@njit(cache=True)
def _stable_order(v, order, tmp, ascend):
    """order = the stable sorting permutation of v (bottom-up merge sort, tmp: scratch)."""
    n = v.shape[0]
    for i in range(n):
        order[i] = i
    width = 1
    src, dst = order, tmp
    in_tmp = False
    while width < n:
        lo = 0
        while lo < n:
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, o = lo, mid, lo
            while i < mid and j < hi:
                # the right run's element goes first only when strictly before
                if _before(v[src[j]], v[src[i]], ascend):
                    dst[o] = src[j]
                    j += 1
                else:
                    dst[o] = src[i]
                    i += 1
                o += 1
            while i < mid:
                dst[o] = src[i]
                i += 1
                o += 1
            while j < hi:
                dst[o] = src[j]
                j += 1
                o += 1
            lo += 2 * width
        src, dst = dst, src
        in_tmp = not in_tmp
        width *= 2
    if in_tmp:
        for i in range(n):
            order[i] = tmp[i]


@njit(cache=True)
def topk_rows(x, vals, idx, mask, k, ascend, want_vals, want_idx, want_mask):
    """x (pre, n, post): per (pre, post) row the first ``k`` of its stable order -- their
    values into vals (pre, k, post), their indices into idx (pre, k, post, any dtype), and
    ones at their positions into mask (pre, n, post, zeros elsewhere)."""
    P, n, Q = x.shape
    v = np.empty(n, dtype=x.dtype)
    order = np.empty(n, dtype=np.int64)
    tmp = np.empty(n, dtype=np.int64)
    for p in range(P):
        for q in range(Q):
            for i in range(n):
                v[i] = x[p, i, q]
            _stable_order(v, order, tmp, ascend)
            if want_mask:
                for i in range(n):
                    mask[p, i, q] = 0
            for j in range(k):
                s = order[j]
                if want_vals:
                    vals[p, j, q] = v[s]
                if want_idx:
                    idx[p, j, q] = s
                if want_mask:
                    mask[p, s, q] = 1


@njit(cache=True)
def topk_scatter(g, idx, out):
    """out (pre, n, post) = zeros with out[p, idx[p, j, q], q] = g[p, j, q]."""
    P, n, Q = out.shape
    for p in range(P):
        for i in range(n):
            for q in range(Q):
                out[p, i, q] = 0
    for p in range(P):
        for j in range(g.shape[1]):
            for q in range(Q):
                out[p, int(idx[p, j, q]), q] = g[p, j, q]


LIBRARY_SORT = {f.__name__: (f, None) for f in (topk_rows, topk_scatter)}
