"""Per-step cost of ``Trainer.step`` (one fused Numba call per dtype group) against a Python
loop of NumPy updates of the same math, for 4 and 20 parameters.

    .venv/bin/python benchmarks/optimizer_step.py [--size N] [--steps S]

Reports CPU microseconds per step (process time, best of 5 repeats, so a loaded
machine disturbs it less).  With small parameters (the default,
8 elements each) the numbers are the per-step overhead.
"""
import argparse
import time

import numpy as np

import agjit as mx


def _params(n, size, rng):
    ps = []
    for _ in range(n):
        p = mx.nd.array(rng.standard_normal(size))
        p.attach_grad()
        p.grad[:] = rng.standard_normal(size).astype(np.float32)
        ps.append(p)
    return ps


def _best(fn, steps):
    fn()
    best = float("inf")
    for _ in range(5):
        t = time.process_time()
        for _ in range(steps):
            fn()
        best = min(best, (time.process_time() - t) / steps)
    return best * 1e6


def numpy_sgd_mom(ws, gs, ms, lr, mom, wd, rescale):
    for w, g, m in zip(ws, gs, ms):
        m *= mom
        m -= (lr * wd) * w
        m -= (lr * rescale) * g
        w += m


def numpy_adam(ws, gs, means, vars_, lr, b1, b2, eps, rescale, t):
    lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    for w, g, m, v in zip(ws, gs, means, vars_):
        x = g * rescale
        m *= b1
        m += (1 - b1) * x
        v *= b2
        v += (1 - b2) * x * x
        w -= lr_t * m / (np.sqrt(v) + eps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=2000)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    f32 = np.float32
    print("params  optimizer  fused Trainer.step (us)  NumPy loop (us)")
    for n in (4, 20):
        for name, kw in (("sgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 1e-4}),
                         ("adam", {"learning_rate": 1e-3})):
            ps = _params(n, args.size, rng)
            tr = mx.Trainer(ps, name, kw)
            fused = _best(lambda: tr.step(32), args.steps)
            ws = [p.asnumpy() for p in ps]
            gs = [p.grad.asnumpy() for p in ps]
            s1 = [np.zeros_like(w) for w in ws]
            s2 = [np.zeros_like(w) for w in ws]
            if name == "sgd":
                loop = _best(lambda: numpy_sgd_mom(ws, gs, s1, f32(0.1), f32(0.9), f32(1e-4),
                                                   f32(1 / 32)), args.steps)
            else:
                loop = _best(lambda: numpy_adam(ws, gs, s1, s2, 1e-3, f32(0.9), f32(0.999),
                                                f32(1e-8), f32(1 / 32), 10), args.steps)
            print("%6d  %-9s  %22.2f  %15.2f" % (n, name, fused, loop))


if __name__ == "__main__":
    main()
