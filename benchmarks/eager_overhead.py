"""Eager per-op overhead of agjit over raw NumPy on small arrays, and a from-scratch LSTM
training step made of such ops (not a test).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/eager_overhead.py [--torch]

Per op: median process-CPU time of the agjit call and of the equivalent NumPy expression on
the same (4, 8) float32 data, the difference (the target is at most 3 us per op), and the
agjit call inside ``autograd.record()`` on an input with a gradient (so a tape node is
made).  CPU time, not wall: on a shared machine other processes' load inflates wall time.

Then the LSTM step (the "LSTM from scratch" pattern: batch 8, input 16, hidden 32, 10 time
steps of dot / broadcast add / slice_axis / sigmoid / tanh / multiply, a squared-error loss,
``backward()``): CPU ms per forward, per backward, per step, and per op (forward ops plus the
ops the gradient rules run).  ``--torch`` runs the same step in PyTorch eager (this
interpreter if it imports torch, else ``$AGJIT_TORCH_PYTHON`` or
/work/peers-venv/bin/python) on one thread for comparison.
"""
import argparse
import gc
import os
import statistics
import subprocess
import sys
import time

import numpy as np

import agjit as mx

LSTM = {"batch": 8, "input": 16, "hidden": 32, "steps": 10}


def _time(fn, n=2000, repeats=7):
    for _ in range(50):
        fn()
    res = []
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(n):
            fn()
        res.append((time.process_time() - t0) / n * 1e6)
    return statistics.median(res)


def per_op():
    rs = np.random.RandomState(0)
    an = rs.rand(4, 8).astype(np.float32) + 0.5
    bn = rs.rand(4, 8).astype(np.float32) + 0.5
    wn = rs.rand(8, 8).astype(np.float32)
    a, b, w = mx.nd.array(an), mx.nd.array(bn), mx.nd.array(wn)
    x = mx.nd.array(an)
    x.attach_grad()
    cases = [
        ("x + y", lambda u: u + b, lambda: an + bn),
        ("x * 2", lambda u: u * 2, lambda: an * np.float32(2)),
        ("exp", lambda u: mx.nd.exp(u), lambda: np.exp(an)),
        ("relu", lambda u: mx.nd.relu(u), lambda: np.maximum(an, 0)),
        ("sum(axis=1)", lambda u: mx.nd.sum(u, axis=1), lambda: an.sum(axis=1)),
        ("dot", lambda u: mx.nd.dot(u, w), lambda: an @ wn),
        ("elemwise_mul", lambda u: mx.nd.elemwise_mul(u, b), lambda: an * bn),
        ("slice_axis", lambda u: mx.nd.slice_axis(u, axis=1, begin=0, end=4), lambda: an[:, 0:4]),
        ("reshape", lambda u: u.reshape((8, 4)), lambda: an.reshape((8, 4))),
    ]
    print("%-14s %10s %10s %12s %14s" % ("op", "numpy us", "agjit us", "overhead us",
                                         "recorded us"))
    over = []
    for name, f_ag, f_np in cases:
        t_np = _time(f_np)
        t_ag = _time(lambda: f_ag(a))
        with mx.autograd.record():
            t_rec = _time(lambda: f_ag(x), n=500)
        over.append(t_ag - t_np)
        print("%-14s %10.2f %10.2f %12.2f %14.2f" % (name, t_np, t_ag, t_ag - t_np, t_rec))
    print("median overhead per op: %.2f us (target <= 3 us)" % statistics.median(over))


def lstm_case():
    """(forward() -> loss, the leaf arrays): the from-scratch LSTM step."""
    nd = mx.nd
    B, In, H, T = LSTM["batch"], LSTM["input"], LSTM["hidden"], LSTM["steps"]
    rng = np.random.RandomState(0)
    f32 = np.float32
    Wx = nd.array((rng.standard_normal((In, 4 * H)) * 0.1).astype(f32))
    Wh = nd.array((rng.standard_normal((H, 4 * H)) * 0.1).astype(f32))
    bias = nd.zeros((4 * H,))
    Wo = nd.array((rng.standard_normal((H, 1)) * 0.1).astype(f32))
    params = [Wx, Wh, bias, Wo]
    for p in params:
        p.attach_grad()
    xs = [nd.array(rng.standard_normal((B, In)).astype(f32)) for _ in range(T)]
    y = nd.array(rng.standard_normal((B, 1)).astype(f32))

    def forward():
        with mx.autograd.record():
            h, c = nd.zeros((B, H)), nd.zeros((B, H))
            for x in xs:
                z = nd.dot(x, Wx) + nd.dot(h, Wh) + bias
                i = nd.sigmoid(nd.slice_axis(z, axis=1, begin=0, end=H))
                f = nd.sigmoid(nd.slice_axis(z, axis=1, begin=H, end=2 * H))
                g = nd.tanh(nd.slice_axis(z, axis=1, begin=2 * H, end=3 * H))
                o = nd.sigmoid(nd.slice_axis(z, axis=1, begin=3 * H, end=4 * H))
                c = f * c + i * g
                h = o * nd.tanh(c)
            d = nd.dot(h, Wo) - y
            return nd.mean(d * d)
    return forward, params


def _count_ops(forward):
    """Ops one step runs (forward, backward): counted at the profiler's hook."""
    from agjit import ndarray as ndpkg
    from agjit.ndarray import ndarray as ndmod
    counts = [0]

    class _Count:
        clock = staticmethod(time.perf_counter)

        def op(self, name, t0):
            counts[0] += 1
    prev = ndmod._profiling, ndpkg._profiling
    ndmod._profiling = ndpkg._profiling = _Count()
    try:
        loss = forward()
        nf = counts[0]
        loss.backward()
    finally:
        ndmod._profiling, ndpkg._profiling = prev
    return nf, counts[0] - nf


def lstm_step(repeats=15, inner=10):
    forward, _ = lstm_case()
    for _ in range(5):
        forward().backward()
    nf, nb = _count_ops(forward)
    fw, bw = [], []
    gc.disable()
    try:
        for _ in range(repeats):
            tf = tb = 0.0
            for _ in range(inner):
                c0 = time.process_time()
                loss = forward()
                c1 = time.process_time()
                loss.backward()
                tf += c1 - c0
                tb += time.process_time() - c1
            fw.append(tf / inner * 1e3)
            bw.append(tb / inner * 1e3)
    finally:
        gc.enable()
    step = statistics.median([a + b for a, b in zip(fw, bw)])
    print("\nLSTM from scratch (batch %(batch)d, input %(input)d, hidden %(hidden)d, "
          "%(steps)d steps), CPU ms:" % LSTM)
    print("  forward %.3f (%d ops), backward %.3f (%d ops), step %.3f; %.2f us per op"
          % (statistics.median(fw), nf, statistics.median(bw), nb, step,
             step * 1e3 / max(1, nf + nb)))
    return step


_TORCH_LSTM = r"""
import time, statistics, numpy as np, torch
torch.set_num_threads(1)
B, In, H, T = %(batch)d, %(input)d, %(hidden)d, %(steps)d
rng = np.random.RandomState(0)
f32 = np.float32
Wx = torch.tensor((rng.standard_normal((In, 4 * H)) * 0.1).astype(f32), requires_grad=True)
Wh = torch.tensor((rng.standard_normal((H, 4 * H)) * 0.1).astype(f32), requires_grad=True)
b = torch.zeros(4 * H, requires_grad=True)
Wo = torch.tensor((rng.standard_normal((H, 1)) * 0.1).astype(f32), requires_grad=True)
ps = [Wx, Wh, b, Wo]
xs = [torch.tensor(rng.standard_normal((B, In)).astype(f32)) for _ in range(T)]
y = torch.tensor(rng.standard_normal((B, 1)).astype(f32))
def step():
    for p in ps:
        p.grad = None
    h, c = torch.zeros(B, H), torch.zeros(B, H)
    for x in xs:
        z = x @ Wx + h @ Wh + b
        i, f = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H:2 * H])
        g, o = torch.tanh(z[:, 2 * H:3 * H]), torch.sigmoid(z[:, 3 * H:])
        c = f * c + i * g
        h = o * torch.tanh(c)
    d = h @ Wo - y
    (d * d).mean().backward()
for _ in range(5):
    step()
res = []
for _ in range(15):
    c0 = time.process_time()
    for _ in range(10):
        step()
    res.append((time.process_time() - c0) / 10 * 1e3)
print(statistics.median(res))
"""


def torch_lstm():
    cands = [sys.executable, os.environ.get("AGJIT_TORCH_PYTHON"), "/work/peers-venv/bin/python"]
    for py in cands:
        if not py or not os.path.exists(py):
            continue
        p = subprocess.run([py, "-c", _TORCH_LSTM % LSTM], capture_output=True, text=True,
                           timeout=600)
        if p.returncode == 0:
            return float(p.stdout.strip().splitlines()[-1])
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--torch", action="store_true", help="also time the LSTM step in PyTorch")
    args = ap.parse_args(argv)
    try:
        from threadpoolctl import threadpool_info
        blas = [(i.get("internal_api"), i.get("architecture")) for i in threadpool_info()]
    except ImportError:
        blas = "threadpoolctl not installed"
    print("BLAS:", blas)
    per_op()
    step = lstm_step()
    if args.torch:
        t = torch_lstm()
        print("  PyTorch eager (1 thread): %s" % ("not installed" if t is None else
                                                  "%.3f ms per step; agjit %.2fx" % (t, step / t)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
