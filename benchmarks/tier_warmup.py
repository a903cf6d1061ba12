"""Warm-up of a tiered jitted training step (agjit.compiler.tier note *tiers*) in THIS fresh
process: first call after the imports, the steps that run while the kernels compile in the
background, the time until the first step on the compiled tier, and the eager step for
comparison.

    AGJIT_CACHE_DIR=/tmp/c .venv/bin/python benchmarks/tier_warmup.py --case mlp \
        [--worker thread|process] [--json out.json]

``--case``: ``mlp`` (the small MLP of compile_latency.py, 64x784->256->10), ``W6`` (LeNet,
batch 64) or ``W7`` (the ResNet block of cnn_step.py).  Run it with an empty cache (cold)
and again with the same directory (warm: the compile is a disk-cache load).  Reports
``first_call_s``, ``to_compiled_s`` (first call to the end of the first compiled step),
``slowest_warmup_step_s`` (steps after the first, before the compiled tier),
``median_interpreted_step_s``, ``eager_step_s`` (median of 5 after the compile) and
``compiled_step_s`` (median of 5), and the os load average at the start and the end; and
the load-independent figures of compile_latency.py for the steps before the compiled tier
(``warmup_slow_steps``: slower than 1.5x the eager step less their waits for a core;
``warmup_main_cpu_s``, ``warmup_gil_wait_s``, ``slowest_warmup_oncpu_s``; per step
``max_warmup_gil_wait_s`` and ``warmup_steps_gil_wait_over_half_eager``, the steps that
waited for the GIL longer than half of ``eager_step_cpu_s``) and what the
background threads' GIL pacing did (``pacing``: agjit.compiler.warmup note *gil-pacing*).
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
    ap.add_argument("--case", default="mlp", choices=["mlp", "W6", "W7"])
    ap.add_argument("--worker", default="")
    ap.add_argument("--limit", type=float, default=120.0)
    ap.add_argument("--json", default="")
    a = ap.parse_args(argv)
    if a.worker:
        os.environ["AGJIT_TIER_WORKER"] = a.worker
    out = {"case": a.case, "worker": os.environ.get("AGJIT_TIER_WORKER", "process"),
           "load_start": os.getloadavg()[0]}
    t0 = time.perf_counter()
    import numpy as np
    import agjit as mx
    out["import_s"] = time.perf_counter() - t0
    sys.path.insert(0, HERE)
    if a.case == "mlp":
        import workloads as W
        rng = np.random.default_rng(W.SEED)
        d = W.w1_data(rng, 64, W.W1_SIZES["small"][1])
        x, y = mx.nd.array(d["x"]), mx.nd.array(d["y"].astype(np.float32))
        flat = [mx.nd.array(v) for Wt, b in d["params"] for v in (np.ascontiguousarray(Wt.T), b)]
        for t in flat:
            t.attach_grad()
        fn = W.agjit_w1_fn(mx, 2, [256, 10])
        args = [x, y] + flat
    else:
        import cnn_step as C
        d = C.make_data(a.case)
        names = C.param_names(a.case)
        params = [mx.nd.array(d[k]) for k in names]
        for p in params:
            p.attach_grad()
        args = [mx.nd.array(d["x"]), mx.nd.array(d["y"].astype(np.float32))] + params
        if a.case == "W7":
            c = d["g1"].shape[0]
            args += [mx.nd.zeros((c,)), mx.nd.ones((c,)), mx.nd.zeros((c,)), mx.nd.ones((c,))]
        fn = C.agjit_loss(mx, a.case, False)
        flat = params
    f = mx.jit(fn, tiered=True)

    from compile_latency import _timed

    def step1(g):
        with mx.autograd.record():
            loss = g(*args)
        loss.backward()
        flat[0].grad.wait_to_read()

    def step(g):
        return _timed(lambda: step1(g))

    t_first = time.perf_counter()
    out["first_call_s"] = step(f)[0]
    warm = []
    while True:
        r = step(f)
        info = f.cache_info()
        if info.compiled_calls:
            out["to_compiled_s"] = time.perf_counter() - t_first
            out["first_compiled_step_s"] = r[0]
            break
        warm.append(r)
        if time.perf_counter() - t_first > a.limit:
            out["to_compiled_s"] = None
            break
    wall = [x[0] for x in warm]
    out["warmup_steps"] = len(warm)
    out["slowest_warmup_step_s"] = max(wall) if warm else None
    out["median_interpreted_step_s"] = float(np.median(wall)) if warm else None
    eager = [step(fn) for _ in range(5)]
    out["eager_step_s"] = float(np.median([x[0] for x in eager]))
    e_on = float(np.median([x[2] for x in eager]))
    out["compiled_step_s"] = float(np.median([step(f)[0] for _ in range(5)]))
    out["warmup_slow_steps"] = sum(1 for x in warm if x[2] > 1.5 * e_on)
    out["warmup_main_cpu_s"] = sum(x[1] for x in warm)
    out["warmup_gil_wait_s"] = sum(max(0.0, x[2] - x[1]) for x in warm)
    out["slowest_warmup_oncpu_s"] = max(x[2] for x in warm) if warm else None
    # per step: the longest wait for the GIL (off a core, not waiting for one) against the
    # eager step's CPU -- what a background thread's GIL hold added to one step
    out["eager_step_cpu_s"] = float(np.median([x[1] for x in eager]))
    out["max_warmup_gil_wait_s"] = max(max(0.0, x[2] - x[1]) for x in warm) if warm else None
    out["warmup_steps_gil_wait_over_half_eager"] = sum(
        1 for x in warm if x[2] - x[1] > 0.5 * out["eager_step_cpu_s"])
    from agjit.compiler import warmup
    out["pacing"] = warmup.pacing_state()
    out["cache_info"] = f.cache_info()._asdict()
    out["explain_tiers"] = [ln for ln in f.explain().splitlines() if "tiers" in ln]
    out["load_end"] = os.getloadavg()[0]
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh)
    else:
        print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
