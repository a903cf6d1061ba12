"""Measure the element count above which a fused loop's parallel variant pays off.

Runs the W2 step (forward + backward of ``sum(tanh(x*a+b)*sigmoid(x)+x*x)``, one fused
loop) at sizes 2**10 .. 2**20 with the serial and with the parallel segment variant
forced, and prints the median µs per step of each and their ratio.  The lowering's
``PAR_WORK`` (agjit/compiler/lower.py note *parallel-loops*) is elements x loop cost where
parallel starts to win clearly (the W2 loop costs ~60).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/par_threshold.py
"""
import os
os.environ.setdefault("AGJIT_TIERED", "0")   # compiled speed: today's blocking compile (agjit.compiler.tier)
import subprocess
import sys

CHILD = r"""
import sys, time, statistics, numpy as np
import agjit as mx
from agjit.compiler import lower, runtime
par = sys.argv[1] == "par"
lower.PAR_WORK = 0 if par else 1 << 62
lower.RED_SERIAL_MAX = 0 if par else 1 << 62
nd = mx.nd
def loss(x, a, b):
    return nd.sum(nd.tanh(x * a + b) * nd.sigmoid(x) + x * x)
f = mx.jit(loss)
rng = np.random.default_rng(0)
for k in range(10, 21, 2):
    n = 1 << k
    xs = [nd.array(rng.standard_normal(n, dtype=np.float32)) for _ in range(3)]
    for t in xs:
        t.attach_grad()
    def step():
        with mx.autograd.record():
            l = f(*xs)
        l.backward()
    for _ in range(3):
        step()
    reps = max(3, min(2000, (1 << 22) // n))
    ts = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        ts.append((time.perf_counter() - t0) / reps * 1e6)
    print(n, statistics.median(ts), flush=True)
"""


def run(mode):
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-c", CHILD, mode], env=env, check=True,
                         capture_output=True, text=True).stdout
    return {int(a): float(b) for a, b in (ln.split() for ln in out.split("\n") if ln.strip())}


def main():
    ser, par = run("serial"), run("par")
    print("%10s %12s %12s %8s" % ("elements", "serial µs", "parallel µs", "par/ser"))
    for n in sorted(ser):
        print("%10d %12.1f %12.1f %8.2f" % (n, ser[n], par[n], par[n] / ser[n]))


if __name__ == "__main__":
    main()
