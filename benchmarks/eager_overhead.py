"""Eager per-op overhead of agjit over raw NumPy on small arrays (not a test).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/eager_overhead.py

For each op: median time of the agjit call and of the equivalent NumPy expression on the
same (4, 8) float32 data, and the difference (the target is at most 3 us per op), outside
and inside ``autograd.record()``.
"""
import statistics
import sys
import time

import numpy as np

import agjit as mx


def _time(fn, n=2000, repeats=7):
    for _ in range(50):
        fn()
    res = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        res.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(res)


def main():
    rs = np.random.RandomState(0)
    an = rs.rand(4, 8).astype(np.float32) + 0.5
    bn = rs.rand(4, 8).astype(np.float32) + 0.5
    wn = rs.rand(8, 8).astype(np.float32)
    a, b, w = mx.nd.array(an), mx.nd.array(bn), mx.nd.array(wn)
    cases = [
        ("x + y", lambda: a + b, lambda: an + bn),
        ("x * 2", lambda: a * 2, lambda: an * np.float32(2)),
        ("exp", lambda: mx.nd.exp(a), lambda: np.exp(an)),
        ("relu", lambda: mx.nd.relu(a), lambda: np.maximum(an, 0)),
        ("sum(axis=1)", lambda: mx.nd.sum(a, axis=1), lambda: an.sum(axis=1)),
        ("dot", lambda: mx.nd.dot(a, w), lambda: an @ wn),
        ("reshape", lambda: a.reshape((8, 4)), lambda: an.reshape((8, 4))),
    ]
    try:
        from threadpoolctl import threadpool_info
        blas = [(i.get("internal_api"), i.get("architecture")) for i in threadpool_info()]
    except ImportError:
        blas = "threadpoolctl not installed"
    print("BLAS:", blas)
    print("%-14s %10s %10s %12s %14s" % ("op", "numpy us", "agjit us", "overhead us",
                                         "recorded us"))
    over = []
    x = mx.nd.array(an)
    x.attach_grad()
    for name, f_ag, f_np in cases:
        t_np = _time(f_np)
        t_ag = _time(f_ag)
        with mx.autograd.record():
            t_rec = _time(lambda: f_ag() if name not in ("x + y",) else x + b, n=500)
        over.append(t_ag - t_np)
        print("%-14s %10.2f %10.2f %12.2f %14.2f" % (name, t_np, t_ag, t_ag - t_np, t_rec))
    print("median overhead per op: %.2f us (target <= 3 us)" % statistics.median(over))
    return 0


if __name__ == "__main__":
    sys.exit(main())
