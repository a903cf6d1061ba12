"""Compile latency of the jitted small-MLP step (64x784->256->10) in THIS fresh process.

    AGJIT_CACHE_DIR=/tmp/c/a NUMBA_CACHE_DIR=/tmp/c/n .venv/bin/python \
        benchmarks/compile_latency.py [--phase cold|warm] [--json out.json]

Run it once with empty cache directories (cold: tracing + lowering + Numba compiles) and
again with the same directories (warm: the kernels come from the disk caches).  Reports the
import times (numpy, agjit, agjit.compiler which imports Numba), the first call after the
imports (``with record(): loss = f(...)`` + ``loss.backward()``) with ``cache_info()``, a
second call, and a call with a new batch size (100) with the ``cache_info()`` delta: a new
batch size retraces but must compile nothing.  benchmarks/run.py drives it (``compile``).
Only the standard library is imported before the timed imports.
"""
import os
import sys
import time

T_PROC = time.perf_counter()
import argparse  # noqa: E402
import json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--phase", default="?")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    out = {"phase": args.phase, "agjit_cache_dir": os.environ.get("AGJIT_CACHE_DIR"),
           "numba_cache_dir": os.environ.get("NUMBA_CACHE_DIR")}
    t0 = time.perf_counter()
    import numpy as np
    out["import_numpy_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    import agjit as mx
    out["import_agjit_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    import agjit.compiler  # noqa: F401  (imports numba)
    out["import_compiler_s"] = time.perf_counter() - t0
    sys.path.insert(0, HERE)
    import workloads as W

    def mlp_inputs(batch, seed):
        rng = np.random.default_rng(W.SEED + seed)
        d = W.w1_data(rng, batch, W.W1_SIZES["small"][1])
        return (mx.nd.array(d["x"]), mx.nd.array(d["y"].astype(np.float32)),
                [mx.nd.array(a) for Wt, b in d["params"] for a in (np.ascontiguousarray(Wt.T), b)])

    x, y, flat = mlp_inputs(64, 0)
    for t in flat:
        t.attach_grad()
    f = mx.jit(W.agjit_w1_fn(mx, 2, [256, 10]))

    def call(x, y):
        with mx.autograd.record():
            loss = f(x, y, *flat)
        loss.backward()
        flat[0].grad.wait_to_read()
        return float(loss.asnumpy().reshape(-1)[0])

    t0 = time.perf_counter()
    out["loss"] = call(x, y)
    out["first_call_s"] = time.perf_counter() - t0
    out["after_first"] = f.cache_info()._asdict()
    t0 = time.perf_counter()
    call(x, y)
    out["second_call_s"] = time.perf_counter() - t0
    x2, y2, _ = mlp_inputs(100, 1)
    before = f.cache_info()._asdict()
    t0 = time.perf_counter()
    call(x2, y2)
    out["new_batch_call_s"] = time.perf_counter() - t0
    after = f.cache_info()._asdict()
    out["new_batch_delta"] = {k: round(after[k] - before[k], 6) for k in after}
    out["since_process_start_s"] = time.perf_counter() - T_PROC
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh)
    else:
        print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
