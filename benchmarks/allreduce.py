"""Allreduce throughput of agjit's kvstore against mpi4py's own ``Allreduce``, and the
scaling of a data-parallel training step from 1 to 2 processes.

    python benchmarks/allreduce.py [--np 2] [--quick]

starts itself under ``mpirun -np N`` (``--worker`` mode) and prints two tables:

1. GB/s (bytes of the buffer / seconds per allreduce, median of repeats) for float32
   buffers of 64 KiB .. 64 MiB: ``mpi4py`` blocking ``comm.Allreduce(IN_PLACE, buf)``;
   agjit's polled ``Iallreduce`` on the same buffer (``Comm.allreduce``); agjit's bucketed
   ``Reducer`` on the same bytes split into 64 arrays of mixed sizes (a model's gradients) at
   several bucket sizes; and the same with float16 on the wire.
2. A training step (Gluon MLP 784-512-512-10, hybridized, SGD, per-process batch 64):
   steps/s and samples/s with 1 process and with N processes (each its own batch of 64,
   gradients allreduced through ``gluon.Trainer(kvstore='dist_sync')``).

OpenBLAS runs one thread per process (``OPENBLAS_NUM_THREADS=1``) so that N processes on N
cores compare with one process on one core.
"""
import argparse
import json
import os
os.environ.setdefault("AGJIT_TIERED", "0")   # compiled speed: today's blocking compile (agjit.compiler.tier)
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

SIZES = [64 << 10, 1 << 20, 4 << 20, 16 << 20, 64 << 20]
BUCKETS = [256 << 10, 1 << 20, 4 << 20, 16 << 20]


def _mixed_split(nbytes, n=64, seed=0):
    rng = np.random.RandomState(seed)
    w = rng.lognormal(0, 1.5, n)
    counts = np.maximum(1, (w / w.sum() * (nbytes // 4)).astype(int))
    counts[-1] += nbytes // 4 - counts.sum()
    return [np.ones(max(1, int(c)), np.float32) for c in counts]


def worker_allreduce(quick):
    """Every variant is timed once per round, round after round (interleaved), so that all
    of them see the same machine load; the slowest rank's time counts."""
    from mpi4py import MPI
    from agjit.kvstore import _mpi
    comm = MPI.COMM_WORLD
    c = _mpi.get_comm("benchmark")
    rows = []
    sizes = SIZES[:3] if quick else SIZES
    for nbytes in sizes:
        rounds = 7 if nbytes >= (16 << 20) else 21
        buf = np.ones(nbytes // 4, np.float32)
        arrays = _mixed_split(nbytes)
        variants = [("mpi4py", lambda: comm.Allreduce(MPI.IN_PLACE, buf)),
                    ("agjit_one", lambda: c.allreduce(buf))]
        for bb in BUCKETS:
            red = _mpi.Reducer(c, bucket_bytes=bb)
            variants.append(("bucket_%d" % bb, (lambda r: lambda: r.allreduce(arrays))(red)))
        red16 = _mpi.Reducer(c, bucket_bytes=_mpi.DEFAULT_BUCKET_BYTES, fp16=True)
        variants.append(("fp16_default", lambda: red16.allreduce(arrays)))
        times = {k: [] for k, _ in variants}
        for k, fn in variants:
            fn()                                    # warm-up (buffers, plans)
        for _ in range(rounds):
            for k, fn in variants:
                comm.Barrier()
                t0 = time.perf_counter()
                fn()
                t = comm.allreduce(time.perf_counter() - t0, op=MPI.MAX)
                times[k].append(t)
        row = {"bytes": nbytes}
        for k, ts in times.items():
            row[k] = (nbytes / min(ts) / 1e9, nbytes / float(np.median(ts)) / 1e9)
        rows.append(row)
    if comm.rank == 0:
        print("RESULT " + json.dumps(rows), flush=True)


def worker_step(steps):
    import agjit as mx
    from agjit import autograd, gluon
    from agjit.gluon import nn
    kv = mx.kv.create('dist_sync')
    n = kv.num_workers
    mx.random.seed(0)
    net = nn.HybridSequential()
    net.add(nn.Dense(512, activation='relu', in_units=784),
            nn.Dense(512, activation='relu', in_units=512), nn.Dense(10, in_units=512))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.01},
                            kvstore=kv if n > 1 else None)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    rng = np.random.RandomState(kv.rank)
    x = mx.nd.array(rng.randn(64, 784))
    y = mx.nd.array(rng.randint(0, 10, 64))

    t_red = []

    def step():
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        t = time.perf_counter()
        trainer.allreduce_grads()
        t_red.append(time.perf_counter() - t)
        trainer.update(64 * n)
    for _ in range(5):
        step()
    kv.barrier()
    del t_red[:]
    t0 = time.perf_counter()
    ts = []
    for _ in range(steps):
        t1 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t1)
    kv.barrier()
    total = time.perf_counter() - t0
    nparam = sum(p.data().size for p in net.collect_params().values())
    if kv.rank == 0:
        print("RESULT " + json.dumps({"np": n, "steps_per_s": steps / total,
                                      "median_step_ms": 1e3 * float(np.median(ts)),
                                      "best_step_ms": 1e3 * float(np.min(ts)),
                                      "median_allreduce_ms": 1e3 * float(np.median(t_red)),
                                      "grad_mb": nparam * 4 / 1e6,
                                      "samples_per_s": steps * 64 * n / total}), flush=True)


def _run(cmd, env):
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
        raise SystemExit("benchmark run failed: %s" % " ".join(cmd))
    for line in r.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise SystemExit("no result from %s" % " ".join(cmd))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--np", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="fewer sizes and steps (smoke run)")
    p.add_argument("--worker", choices=["allreduce", "step"])
    p.add_argument("--steps", type=int, default=100)
    a = p.parse_args()
    if a.worker == "allreduce":
        return worker_allreduce(a.quick)
    if a.worker == "step":
        return worker_step(a.steps)
    mpirun = shutil.which("mpirun")
    if mpirun is None:
        raise SystemExit("mpirun not found: install Open MPI (apt-get install openmpi-bin "
                         "libopenmpi-dev) and mpi4py")
    cache = tempfile.mkdtemp(prefix="agjit-bench-kv-")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", AGJIT_CACHE_DIR=os.path.join(cache, "a"),
               NUMBA_CACHE_DIR=os.path.join(cache, "n"))
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    me = [sys.executable, "-u", os.path.abspath(__file__)]
    mpi = [mpirun, "-np", str(a.np), "--oversubscribe"]
    steps = 30 if a.quick else a.steps
    try:
        rows = _run(mpi + me + ["--worker", "allreduce"] + (["--quick"] if a.quick else []), env)
        one = _run(me + ["--worker", "step", "--steps", str(steps)], env)  # also compiles
        many = _run(mpi + me + ["--worker", "step", "--steps", str(steps)], env)
    finally:
        shutil.rmtree(cache, True)
    print("Allreduce over %d processes, GB/s = buffer bytes / time, float32 sums: best / "
          "median of interleaved rounds (the slowest rank's time)" % a.np)
    cols = ["mpi4py", "agjit_one"] + ["bucket_%d" % b for b in BUCKETS] + ["fp16_default"]
    names = ["mpi4py Allreduce", "agjit, 1 buffer"] + \
        ["agjit, 64 arrays, %s buckets" % _fmt(b) for b in BUCKETS] + \
        ["agjit, 64 arrays, fp16 wire"]
    print("| size | " + " | ".join(names) + " |")
    print("|---:|" + "---:|" * len(names))
    for r in rows:
        print("| %s | " % _fmt(r["bytes"]) + " | ".join("%.2f / %.2f" % tuple(r[c])
                                                         for c in cols) + " |")
    print()
    print("Training step, Gluon MLP 784-512-512-10 hybridized (%.1f MB of gradients), SGD, "
          "batch 64 per process" % one["grad_mb"])
    print("| processes | median step ms | best step ms | median allreduce ms | steps/s | "
          "samples/s | speed-up (samples/s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in (one, many):
        print("| %d | %.2f | %.2f | %.2f | %.1f | %.0f | %.2fx |"
              % (r["np"], r["median_step_ms"], r["best_step_ms"], r["median_allreduce_ms"],
                 r["steps_per_s"], r["samples_per_s"],
                 r["samples_per_s"] / one["samples_per_s"]))


def _fmt(b):
    return "%d MiB" % (b >> 20) if b >= (1 << 20) else "%d KiB" % (b >> 10)


if __name__ == "__main__":
    main()
