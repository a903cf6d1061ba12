"""The agjit benchmark suite: one command times every workload against its peers.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/run.py \
        [--quick] [--only W1,W2,W3,W1/tiny,compile,alloc,eager] [--out benchmarks/results]
    .venv/bin/python benchmarks/run.py --profile W1/tiny      # cProfile of jit replay steps

What it measures (see benchmarks/README.md for the method and the targets):

* W1/W2/W3 (benchmarks/workloads.py) for agjit jit replay, agjit eager, NumPy with
  hand-written gradients, the W2 memory-copy floor, and PyTorch eager / JAX jit when
  importable -- each peer/case in its own subprocess; medians and mins of repeats of an
  inner loop of >= --target-ms; GC off inside the timed loops; every gradient compared with
  a float64 NumPy reference.
* ``compile`` (benchmarks/compile_latency.py): per model (small MLP, LeNet, ResNet block; MLP
  only with --quick) and mode (AGJIT_TIERED=0 and the default), a fresh process on an empty
  cache directory and one on the warm directory: first call after imports, time until
  compiled speed while steps keep running, slowest warm-up step vs the eager step,
  cache_info(), a new batch size (0 compiles); JAX jit and torch.compile first calls of the
  MLP step; where the cold compile's CPU time goes (typing / lowering + LLVM per function).
* ``alloc``: tracemalloc around jit replay steps after warm-up.
* ``eager``: per-op overhead over NumPy (benchmarks/eager_overhead.py).

Writes results.json, results.md and ratios.png into --out.
"""
import os
import sys

# These two slow OpenBLAS down on this machine; they must be gone before any BLAS loads,
# in this process and in every child, so re-exec without them.
_BAD_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _BAD_ENV):
    for _v in _BAD_ENV:
        os.environ.pop(_v, None)
    os.execv(sys.executable, [sys.executable] + sys.argv)

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for _p in (HERE, ROOT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import workloads as W  # noqa: E402

EXTRAS = ("compile", "alloc", "eager")
TARGETS_TEXT = {
    "W1": "<= 1.0x NumPy by hand",
    "W2/1e7": "<= 1.5x copy floor",
    "W2/1e5": "<= 2x copy floor",
    "W3": "<= 5 us per replay",
}


# ============================================================================ timing ===
_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat():
    try:
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:9]]
        return sum(v), v[3] + v[4]
    except OSError:
        return None


class ForeignMeter:
    """CPU used by *other* processes (cores, averaged) since construction: /proc/stat busy
    jiffies minus this process's own CPU time."""

    def __init__(self):
        self.t = time.perf_counter()
        self.st = _proc_stat()
        self.ot = os.times()

    def cores(self):
        st = _proc_stat()
        if st is None or self.st is None:
            return 0.0
        wall = time.perf_counter() - self.t
        ot = os.times()
        busy = ((st[0] - self.st[0]) - (st[1] - self.st[1])) / _HZ
        own = (ot.user - self.ot.user) + (ot.system - self.ot.system)
        return max(0.0, busy - own) / max(wall, 1e-9)


def wait_quiet(max_wait, threshold=0.15, window=0.5, need=2):
    t0 = time.perf_counter()
    ok = 0
    while time.perf_counter() - t0 < max_wait:
        m = ForeignMeter()
        time.sleep(window)
        ok = ok + 1 if m.cores() < threshold else 0
        if ok >= need:
            break
    return time.perf_counter() - t0


def time_case(step, repeats, warmup, target_s, foreign_max, retries, quiet_wait):
    """First call alone, warm-up, then ``repeats`` repeats of an inner loop lasting
    >= target_s; GC disabled inside the repeats.  A window in which other processes used
    more than ``foreign_max`` cores is redone (after waiting for quiet) up to ``retries``
    times, then reported as contended."""
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    step()
    one = time.perf_counter() - t0
    inner = int(max(1, min(500_000, target_s / max(one, 1e-8))))
    tries, waited = 0, 0.0
    while True:
        samples = []
        gc.collect()
        gc.disable()
        fm = ForeignMeter()
        try:
            for _ in range(repeats):
                t0 = time.perf_counter()
                for _ in range(inner):
                    step()
                samples.append((time.perf_counter() - t0) / inner)
        finally:
            gc.enable()
        foreign = fm.cores()
        if foreign <= foreign_max or tries >= retries:
            break
        tries += 1
        waited += wait_quiet(quiet_wait)
        step()
    us = [s * 1e6 for s in samples]
    return {"first_call_s": first, "median_us": statistics.median(us), "min_us": min(us),
            "max_us": max(us), "inner": inner, "repeats": repeats,
            "foreign_cores": round(foreign, 3), "contended": foreign > foreign_max,
            "retries": tries, "waited_s": round(waited, 1)}


def blas_info():
    try:
        import threadpoolctl
    except ImportError:
        return [{"error": "threadpoolctl not installed (pip install -e '.[bench]')"}]
    keep = ("user_api", "internal_api", "version", "architecture", "threading_layer",
            "num_threads", "filepath")
    return [{k: v for k, v in d.items() if k in keep} for d in threadpoolctl.threadpool_info()]


def blas_lines(info):
    out = []
    for d in info:
        if "error" in d:
            out.append(d["error"])
            continue
        out.append("%s %s arch=%s threads=%s layer=%s -- %s" % (
            d.get("internal_api"), d.get("version") or "", d.get("architecture") or "-",
            d.get("num_threads"), d.get("threading_layer") or "-",
            os.path.basename(d.get("filepath") or "")))
    return out


# ============================================================================ children ===
def _write(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, default=_jsonable)


def _jsonable(o):
    try:
        import numpy as np
        if isinstance(o, np.generic):
            return o.item()
    except ImportError:
        pass
    return str(o)


def child_case(args):
    """One peer, one case, this process."""
    cls = W.PEER_BY_NAME[args.child]
    out = {"peer": cls.name, "case": args.case, "kind": cls.kind, "status": "ok"}
    try:
        peer = cls()
        t0 = time.perf_counter()
        out["info"] = peer.setup()
        out["setup_s"] = time.perf_counter() - t0
        d = W.make_data(args.case)
        case = peer.make(args.case, d)
        out.update(time_case(case.step, args.repeats, args.warmup, args.target_ms / 1e3,
                             args.foreign_max, args.retries, args.quiet_wait))
        out.update(case.info)
        if case.fetch is not None and cls.checked:
            errs = W.compare(case.fetch(), W.reference(args.case, d))
            out["errors"] = errs
            out["max_rel_err"] = max(errs.values())
            out["check_ok"] = out["max_rel_err"] <= W.CHECK_TOL
        fn = getattr(case, "fn", None)
        if fn is not None and hasattr(fn, "cache_info"):
            out["cache_info"] = fn.cache_info()._asdict()
            try:
                out["explain"] = fn.explain()
            except Exception as e:  # noqa: BLE001
                out["explain"] = "explain() failed: %r" % (e,)
        out["blas"] = blas_info()
    except NotImplementedError:
        out["status"] = "n/i"
    except Exception as e:  # noqa: BLE001
        import traceback
        out["status"] = "error: %s: %s" % (type(e).__name__, str(e).splitlines()[0][:200] if str(e) else "")
        out["traceback"] = traceback.format_exc()
    _write(args.json, out)


def child_alloc(args):
    """tracemalloc around jit replay steps of one case after warm-up."""
    import tracemalloc
    import numpy as np
    peer = W.AgjitJit()
    peer.setup()
    d = W.make_data(args.case)
    case = peer.make(args.case, d)
    for _ in range(30):
        case.step()
    leaves = [a for a in case.args if a.grad is not None]

    def grad_ptrs():       # the .grad wrapper may be new on each access; its buffer must not
        return [a.grad._data.__array_interface__["data"][0] for a in leaves]
    ptrs0 = grad_ptrs()
    gc.collect()
    gc.disable()
    tracemalloc.start(12)
    for _ in range(10):
        case.step()
    not_tm = [tracemalloc.Filter(False, tracemalloc.__file__)]
    # (1) leak check: growth over many steps, the cyclic GC run before each snapshot
    n = 200
    gc.collect()
    s0 = tracemalloc.take_snapshot().filter_traces(not_tm)
    for _ in range(n):
        case.step()
    gc.collect()
    s1 = tracemalloc.take_snapshot().filter_traces(not_tm)
    net = s1.compare_to(s0, "filename")
    net_bytes = sum(s.size_diff for s in net) / n
    net_count = sum(s.count_diff for s in net) / n
    # (2) reference cycles: what only the cyclic GC frees (GC stays disabled meanwhile)
    gc.collect()
    sc0 = tracemalloc.take_snapshot().filter_traces(not_tm)
    for _ in range(n):
        case.step()
    m1 = tracemalloc.get_traced_memory()[0]
    sc1 = tracemalloc.take_snapshot().filter_traces(not_tm)
    cyc_objs = gc.collect() / n
    m2 = tracemalloc.get_traced_memory()[0]
    cyc_bytes = (m1 - m2) / n
    cyc_top = None
    # (2) one step, the previous output kept alive so its release does not hide anything
    prev = case.loss.get("loss")
    sa = tracemalloc.take_snapshot().filter_traces(not_tm)
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    case.step()
    peak = tracemalloc.get_traced_memory()[1] - base
    sb = tracemalloc.take_snapshot().filter_traces(not_tm)
    loss = case.loss["loss"]
    del prev
    stats = sb.compare_to(sa, "traceback")
    alive = [s for s in stats if s.size_diff > 0]
    np_dom = np.lib.tracemalloc_domain
    dom_a = {(t.domain, t.traceback) for t in sa.traces}
    np_new = [t for t in sb.traces if t.domain == np_dom and (t.domain, t.traceback) not in dom_a]
    # outputs: the loss NDArray (object, attribute dict, ndarray header, data) and any grad
    # array that was reallocated instead of written in place
    def nbytes(arr):       # getsizeof of an ndarray that owns its data includes the data
        return sys.getsizeof(arr) + (0 if arr.flags.owndata else arr.nbytes)
    out_objs = [loss]
    if hasattr(loss, "__dict__"):
        out_objs.append(loss.__dict__)
    out_bytes = sum(sys.getsizeof(o) for o in out_objs) + nbytes(loss._data)
    out_count = len(out_objs) + 2
    ptrs1 = grad_ptrs()
    realloc = [i for i, (p0, p1) in enumerate(zip(ptrs0, ptrs1)) if p0 != p1]
    for i in realloc:
        g = leaves[i].grad
        out_bytes += sys.getsizeof(g) + nbytes(g._data)
        out_count += 3

    kdir = os.environ.get("AGJIT_CACHE_DIR") or "\0"

    def site(tb):
        # frames run oldest -> most recent: report the innermost one inside the project
        for fr in reversed(tb):
            if fr.filename.startswith(kdir):
                return "kernel %s:%d" % (os.path.basename(fr.filename)[:14], fr.lineno)
            if "/agjit/" in fr.filename or "/symbol/" in fr.filename:
                return "%s:%d" % (os.path.relpath(fr.filename, ROOT), fr.lineno)
        fr = tb[-1]
        return "%s:%d" % (os.path.basename(fr.filename), fr.lineno)

    def top_sites(stats, n=12):
        by_site = {}
        for s in stats:
            k = site(s.traceback)
            c, b = by_site.get(k, (0, 0))
            by_site[k] = (c + s.count_diff, b + s.size_diff)
        top = sorted(by_site.items(), key=lambda kv: -kv[1][1])[:n]
        return [{"site": k, "blocks": c, "bytes": b} for k, (c, b) in top if b > 0]
    top = top_sites(alive)
    net_top = top_sites(s1.compare_to(s0, "traceback"), 6)
    cyc_top = top_sites(sc1.compare_to(sc0, "traceback"), 6)
    tracemalloc.stop()
    gc.enable()
    out = {
        "case": args.case,
        "alive_blocks": sum(s.count_diff for s in alive),
        "alive_bytes": sum(s.size_diff for s in alive),
        "numpy_buffers_alive": len(np_new),
        "numpy_buffer_bytes_alive": sum(t.size for t in np_new),
        "peak_transient_bytes": peak,
        "output_bytes_est": out_bytes,
        "output_blocks_est": out_count,
        "grads_reallocated": len(realloc),
        "net_bytes_per_step": net_bytes,
        "net_blocks_per_step": net_count,
        "top_sites": top,
        "leak_top_sites_per_%d_steps" % n: net_top,
        "cyclic_garbage_objects_per_step": cyc_objs,
        "cyclic_garbage_bytes_per_step": cyc_bytes,
        "cyclic_garbage_top_sites_per_%d_steps" % n: cyc_top,
    }
    out["extra_blocks"] = out["alive_blocks"] - out["output_blocks_est"]
    out["extra_bytes"] = out["alive_bytes"] - out["output_bytes_est"]
    _write(args.json, out)


_EAGER_ROW = re.compile(r"^(.*?)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s*$")


def child_eager(args):
    """Run benchmarks/eager_overhead.py's main() here and parse what it prints."""
    import contextlib
    import eager_overhead
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = eager_overhead.main()
    text = buf.getvalue()
    rows, median = [], None
    for line in text.splitlines():
        m = re.search(r"median overhead per op:\s*(-?[\d.]+)", line)
        if m:
            median = float(m.group(1))
            continue
        m = _EAGER_ROW.match(line)
        if m and not line.startswith(("op ", "BLAS")):
            rows.append({"op": m.group(1).strip(), "numpy_us": float(m.group(2)),
                         "agjit_us": float(m.group(3)), "overhead_us": float(m.group(4)),
                         "recorded_us": float(m.group(5))})
    if median is None and rows:
        median = statistics.median(r["overhead_us"] for r in rows)
    _write(args.json, {"rc": rc, "rows": rows, "median_overhead_us": median, "text": text})


def child_profile(args):
    """cProfile of jit replay steps of one case (prints the top functions by own time)."""
    import cProfile
    import pstats
    peer = W.AgjitJit()
    peer.setup()
    case = peer.make(args.profile, W.make_data(args.profile))
    for _ in range(30):
        case.step()
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < 0.3:
        case.step()
        n += 1
    per = (time.perf_counter() - t0) / n * 1e6
    steps = max(200, int(2e6 / max(per, 1)))
    pr = cProfile.Profile()
    gc.disable()
    pr.enable()
    for _ in range(steps):
        case.step()
    pr.disable()
    gc.enable()
    print("%s: %.1f us per jit replay step unprofiled; %d steps profiled" % (args.profile, per, steps))
    st = pstats.Stats(pr)
    st.sort_stats("tottime").print_stats(args.profile_top)
    st.sort_stats("cumulative").print_stats(args.profile_top)


# ============================================================================ driver ===
def _peer_available(cls):
    import importlib.util
    for m in cls.modules:
        if importlib.util.find_spec(m) is None:
            return False
    return True


def _run_child(argv, env, timeout, label, script=None):
    fd, path = tempfile.mkstemp(prefix="agjit-bench-", suffix=".json")
    os.close(fd)
    t0 = time.perf_counter()
    try:
        script = script or os.path.abspath(__file__)
        p = subprocess.run([sys.executable, script] + argv + ["--json", path],
                           env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        wall = time.perf_counter() - t0
        try:
            with open(path) as f:
                res = json.load(f)
        except (OSError, ValueError):
            res = {"status": "error: child %s exited %d: %s" % (
                label, p.returncode, (p.stderr.strip().splitlines() or ["?"])[-1][:300])}
            res["stderr"] = p.stderr[-4000:]
    except subprocess.TimeoutExpired:
        wall = time.perf_counter() - t0
        res = {"status": "error: timeout after %ds" % timeout}
    finally:
        if os.path.exists(path):
            os.unlink(path)
    res["process_wall_s"] = wall
    return res


def compile_targets(comp):
    """The compile-latency targets (issue 14) judged on a compile_latency.drive() result."""
    runs = [r for r in comp.get("runs", []) if "first_call_s" in r]

    def pick(model, mode, phase):
        got = [r for r in runs if (r["model"], r["mode"], r["phase"]) == (model, mode, phase)]
        if not got and mode == "default":       # no tiering in this build
            return pick(model, "blocking", phase)
        return got[0] if got else None
    out = []

    def add(target, r, key, limit, unit="s", note=""):
        v = r.get(key) if r else None
        out.append({"target": target, "measured": v, "limit": limit, "unit": unit,
                    "met": v is not None and v <= limit, "note": note})
    mlp_b = pick("mlp", "blocking", "cold")
    add("cold compile of the small-MLP step <= 2 s (blocking)", mlp_b, "first_call_s", 2.0,
        note="compiles=%s" % ((mlp_b or {}).get("after_first", {}).get("compiles"),))
    for model, first, within in (("mlp", 0.3, 5.0), ("lenet", 1.0, 15.0)):
        r = pick(model, "default", "cold")
        if r is None:
            continue
        add("%s step: first call after imports <= %g s" % (model, first), r, "first_call_s",
            first, note="mode %s; eager step %s" % (r["mode"], fmt_s(r["eager_step_s"])))
        add("%s step: compiled speed within %g s of the first call" % (model, within), r,
            "compiled_after_s", within, note="mode %s" % r["mode"])
    for model in ("mlp", "lenet", "resnet"):
        r = pick(model, "default", "cold")
        if r is not None:
            add("%s: no warm-up step slower than 1.5x the eager step" % model, r,
                "slowest_vs_eager", 1.5, unit="x", note="slowest %s, eager %s (mode %s)" % (
                    fmt_s(r["slowest_warmup_s"]), fmt_s(r["eager_step_s"]), r["mode"]))
    for model in ("mlp", "lenet", "resnet"):
        r = pick(model, "blocking", "warm")
        if r is not None:
            add("%s: warm-cache fresh process, first call after imports <= 0.3 s "
                "(0 compiles)" % model, r, "first_call_s", 0.3,
                note="compiles=%s" % r["after_first"]["compiles"])
            if r["after_first"]["compiles"]:
                out[-1]["met"] = False
    nb = [r["new_batch_delta"]["compiles"] for r in runs if "new_batch_delta" in r]
    out.append({"target": "new batch size: 0 compiles", "measured": max(nb) if nb else None,
                "limit": 0, "unit": "compiles", "met": bool(nb) and max(nb) == 0})
    return out


def parse_only(only):
    """--only items: workloads (W1), cases (W1/tiny) and extras (compile, alloc, eager)."""
    if not only:
        return set(W.CASES), set(EXTRAS)
    cases, extras = set(), set()
    for item in [s.strip() for s in only.split(",") if s.strip()]:
        if item in EXTRAS:
            extras.add(item)
        elif item in W.CASES:
            cases.add(item)
        elif any(c.startswith(item + "/") for c in W.CASES):
            cases.update(c for c in W.CASES if c.startswith(item + "/"))
        elif item == "W3":
            cases.add("W3/chain20")
        else:
            raise SystemExit("--only: unknown item %r (workloads W1,W2,W3, cases %s, extras %s)"
                             % (item, ",".join(W.CASES), ",".join(EXTRAS)))
    return cases, extras


def fmt_us(v):
    if v is None:
        return "·"
    if v >= 10_000:
        return "%.1f ms" % (v / 1e3)
    if v >= 1000:
        return "{:,.0f}".format(v)
    if v >= 100:
        return "%.0f" % v
    if v >= 10:
        return "%.1f" % v
    return "%.2f" % v


def fmt_s(v):
    if v is None:
        return "·"
    if v >= 1:
        return "%.2f s" % v
    if v >= 1e-3:
        return "%.1f ms" % (v * 1e3)
    if v >= 1e-5:
        return "%.0f us" % (v * 1e6)
    return "%.2f us" % (v * 1e6)


def cell(r, key="median_us"):
    if r is None:
        return "·"
    st = r.get("status", "ok")
    if st != "ok":
        return "n/i" if st == "n/i" else ("skipped" if st.startswith("skipped") else "error")
    s = fmt_us(r[key])
    if r.get("check_ok") is False:
        s += " ✗"
    if r.get("contended"):
        s = "~" + s
    return s


def _ok(r):
    return r is not None and r.get("status", "ok") == "ok" and "median_us" in r


def build_report(res, args):
    """Tables (markdown) and the ratio/target rows."""
    cases = [c for c in W.CASES if c in res["cases_run"]]
    peers = [p for p in res["peers"] if any(res["timings"].get(p, {}).get(c) for c in cases)]
    T = res["timings"]
    lines = []
    md = lines.append
    md("## Median us per step (one synchronous forward+backward)")
    md("")
    md("| case | " + " | ".join(peers) + " | jit first call | grad check jit / eager (max rel err) |")
    md("|---|" + "---:|" * len(peers) + "---:|---|")
    for c in cases:
        row = [cell(T.get(p, {}).get(c)) for p in peers]
        j, e = T.get("agjit_jit", {}).get(c), T.get("agjit_eager", {}).get(c)
        fc = fmt_s(j.get("first_call_s")) if _ok(j) else "·"
        chk = " / ".join(("%.1e%s" % (r["max_rel_err"], "" if r["check_ok"] else " ✗"))
                         if _ok(r) and "max_rel_err" in r else "·" for r in (j, e))
        md("| %s | %s | %s | %s |" % (c, " | ".join(row), fc, chk))
    md("")
    md("## Min us per step")
    md("")
    md("| case | " + " | ".join(peers) + " |")
    md("|---|" + "---:|" * len(peers))
    for c in cases:
        md("| %s | %s |" % (c, " | ".join(cell(T.get(p, {}).get(c), "min_us") for p in peers)))
    md("")
    # ---- ratios
    ratios, targets = [], []
    md("## Ratios (agjit jit median / peer median; lower is better)")
    md("")
    cols = ["numpy", "copy_floor", "torch_eager", "jax_jit"]
    md("| case | jit / NumPy by hand | jit / copy floor | jit / torch eager | jit / jax jit | "
       "eager / NumPy | target | met |")
    md("|---|---:|---:|---:|---:|---:|---|---|")
    for c in cases:
        j = T.get("agjit_jit", {}).get(c)
        rr = {}
        for p in cols + ["agjit_eager"]:
            r = T.get(p, {}).get(c)
            if p == "agjit_eager":
                n = T.get("numpy", {}).get(c)
                rr[p] = r["median_us"] / n["median_us"] if _ok(r) and _ok(n) else None
            else:
                rr[p] = j["median_us"] / r["median_us"] if _ok(j) and _ok(r) else None
        wl = c.split("/")[0]
        tgt, met, measured, limit, unit = None, None, None, None, "x"
        if wl == "W1":
            tgt, measured, limit = TARGETS_TEXT["W1"], rr["numpy"], 1.0
        elif c in ("W2/1e7", "W2/1e5"):
            tgt, measured, limit = TARGETS_TEXT[c], rr["copy_floor"], 1.5 if c == "W2/1e7" else 2.0
        elif wl == "W3":
            tgt, measured, limit, unit = (TARGETS_TEXT["W3"], j["median_us"] if _ok(j) else None,
                                          5.0, "us")
        if tgt is not None:
            met = measured is not None and measured <= limit and (j or {}).get("check_ok", False)
            targets.append({"target": "%s %s" % (c, tgt), "measured": measured, "limit": limit,
                            "unit": unit, "met": met, "contended": bool((j or {}).get("contended"))})
        fr = lambda v: "·" if v is None else "%.2fx" % v  # noqa: E731
        md("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            c, fr(rr["numpy"]), fr(rr["copy_floor"]), fr(rr["torch_eager"]), fr(rr["jax_jit"]),
            fr(rr["agjit_eager"]), tgt or "·", "·" if met is None else ("yes" if met else "**no**")))
        ratios.append({"case": c, **{"jit/" + k: v for k, v in rr.items() if k != "agjit_eager"},
                       "eager/numpy": rr["agjit_eager"]})
    md("")
    # ---- non-timing targets
    comp = res.get("compile")
    if comp:
        targets.extend(compile_targets(comp))
    alloc = res.get("alloc")
    if alloc:
        for a in alloc:
            if "extra_bytes" not in a:
                continue
            met = (a["net_bytes_per_step"] < 64 and a["cyclic_garbage_objects_per_step"] == 0
                   and a["numpy_buffers_alive"] <= 1 + a["grads_reallocated"]
                   and a["peak_transient_bytes"] <= a["output_bytes_est"] + 1024)
            targets.append({"target": "%s jit replay: no allocations besides outputs" % a["case"],
                            "measured": a["peak_transient_bytes"], "limit": a["output_bytes_est"] + 1024,
                            "unit": "B peak", "met": met,
                            "note": "alive after step: %d blocks / %d B (outputs ~%d / %d B), numpy "
                                    "buffers %d (%d B), peak transient %d B, cyclic garbage "
                                    "%.0f objects per step, leak %.1f B/step"
                                    % (a["alive_blocks"], a["alive_bytes"], a["output_blocks_est"],
                                       a["output_bytes_est"], a["numpy_buffers_alive"],
                                       a["numpy_buffer_bytes_alive"], a["peak_transient_bytes"],
                                       a["cyclic_garbage_objects_per_step"],
                                       a["net_bytes_per_step"])})
    eag = res.get("eager")
    if eag and eag.get("median_overhead_us") is not None:
        targets.append({"target": "eager overhead per op over NumPy <= 3 us (median over ops)",
                        "measured": eag["median_overhead_us"], "limit": 3.0, "unit": "us",
                        "met": eag["median_overhead_us"] <= 3.0})
    md("## Targets")
    md("")
    md("| target | measured | limit | met | note |")
    md("|---|---:|---:|---|---|")
    for t in targets:
        m = t["measured"]
        if m is None:
            ms = "·"
        elif t["unit"] == "s":
            ms = fmt_s(m)
        elif t["unit"] == "x":
            ms = "%.2fx" % m
        elif t["unit"] == "us":
            ms = "%.2f us" % m
        else:
            ms = "%g %s" % (m, t["unit"])
        lim = ("%g %s" % (t["limit"], t["unit"])) if t["unit"] != "x" else "%gx" % t["limit"]
        md("| %s | %s%s | %s | %s | %s |" % (t["target"], "~" if t.get("contended") else "", ms,
                                             lim, "yes" if t["met"] else "**no**",
                                             t.get("note", "")))
    md("")
    # ---- compile / alloc / eager details
    if comp:
        import compile_latency as CL
        md(CL.markdown(comp))
    if alloc:
        md("## Allocations per jit replay step (tracemalloc, after warm-up)")
        md("")
        md("Alive after step: blocks allocated during one step and still alive at its end "
           "(the step's outputs held). Peak transient: highest traced memory during the step "
           "above its start. Cyclic garbage: objects per step that only the cyclic GC "
           "frees (reference cycles; bytes include free lists that a full collection clears). "
           "Leak: growth per step over 200 steps with the GC run (a few B/step is noise).")
        md("")
        md("| case | alive after step (blocks / bytes) | outputs est. (blocks / bytes) | numpy "
           "buffers alive (n / bytes) | peak transient bytes | cyclic garbage per step "
           "(objects / bytes) | leak B/step | top sites alive after step (blocks, bytes) |")
        md("|---|---:|---:|---:|---:|---:|---:|---|")
        for a in alloc:
            if "alive_blocks" not in a:
                md("| %s | %s |" % (a.get("case"), a.get("status")))
                continue
            sites = "; ".join("%s (%d, %d)" % (s["site"], s["blocks"], s["bytes"])
                              for s in a["top_sites"][:5])
            md("| %s | %d / %d | %d / %d | %d / %d | %d | %.0f / %.0f | %.1f | %s |" % (
                a["case"], a["alive_blocks"], a["alive_bytes"], a["output_blocks_est"],
                a["output_bytes_est"], a["numpy_buffers_alive"], a["numpy_buffer_bytes_alive"],
                a["peak_transient_bytes"], a["cyclic_garbage_objects_per_step"],
                a["cyclic_garbage_bytes_per_step"], a["net_bytes_per_step"], sites))
        md("")
    if eag and eag.get("rows"):
        md("## Eager per-op overhead on (4, 8) float32 (benchmarks/eager_overhead.py)")
        md("")
        md("| op | numpy us | agjit us | overhead us | inside record() us |")
        md("|---|---:|---:|---:|---:|")
        for r in eag["rows"]:
            md("| %s | %.2f | %.2f | %.2f | %.2f |" % (r["op"], r["numpy_us"], r["agjit_us"],
                                                     r["overhead_us"], r["recorded_us"]))
        md("")
    return "\n".join(lines), ratios, targets


def write_plot(path, ratios, targets):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib not installed (pip install -e '.[bench]')"
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.8))
    names = [r["case"] for r in ratios]
    series = [("jit/numpy", "agjit jit / NumPy by hand"), ("jit/copy_floor", "agjit jit / copy floor"),
              ("jit/torch_eager", "agjit jit / torch eager"), ("jit/jax_jit", "agjit jit / jax jit"),
              ("eager/numpy", "agjit eager / NumPy by hand")]
    series = [s for s in series if any(r.get(s[0]) for r in ratios)]
    width = 0.8 / max(1, len(series))
    for i, (k, label) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(names))]
        ys = [r.get(k) or 0 for r in ratios]
        ax1.bar(xs, ys, width, label=label)
    ax1.axhline(1.0, color="k", lw=0.8, ls="--")
    ax1.set_yscale("log")
    ax1.set_xticks(range(len(names)))
    ax1.set_xticklabels(names, rotation=30, ha="right")
    ax1.set_ylabel("time ratio (log; < 1 = agjit faster)")
    ax1.set_title("agjit vs peers (medians)")
    if series:
        ax1.legend(fontsize=7)
    tl = [t for t in targets if t["measured"] is not None and t["limit"]]
    labels = [t["target"][:48] for t in tl]
    vals = [t["measured"] / t["limit"] for t in tl]
    ax2.barh(range(len(tl)), vals, color=["tab:green" if t["met"] else "tab:red" for t in tl])
    ax2.axvline(1.0, color="k", lw=0.8, ls="--")
    if vals and max(vals) / max(min(v for v in vals if v > 0) if any(v > 0 for v in vals) else 1, 1e-9) > 20:
        ax2.set_xscale("log")
    ax2.set_yticks(range(len(tl)))
    ax2.set_yticklabels(labels, fontsize=7)
    ax2.invert_yaxis()
    ax2.set_xlabel("measured / target (<= 1 meets the target)")
    ax2.set_title("targets")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def driver(args):
    cases, extras = parse_only(args.only)
    if args.quick:
        cases -= W.QUICK_SKIP
    cases = [c for c in W.CASES if c in cases]
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    import numpy as np
    try:
        import scipy.linalg  # noqa: F401  (Numba's np.dot goes through SciPy's BLAS)
    except ImportError:
        pass
    blas = blas_info()
    started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print("agjit benchmarks  %s  python %s  numpy %s  %s, %d cores, loadavg %s" % (
        started, platform.python_version(), np.__version__, platform.machine(), os.cpu_count(),
        "/".join("%.2f" % v for v in load) if load else "?"))
    print("env: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset; OMP_NUM_THREADS=%s" % (
        os.environ.get("OMP_NUM_THREADS", "(unset)")))
    for line in blas_lines(blas):
        print("BLAS: " + line)
    tmp_root = tempfile.mkdtemp(prefix="agjit-bench-")
    env = dict(os.environ)
    for v in _BAD_ENV:
        env.pop(v, None)
    if args.cache_dir:
        env["AGJIT_CACHE_DIR"] = os.path.join(args.cache_dir, "agjit")
        env["NUMBA_CACHE_DIR"] = os.path.join(args.cache_dir, "numba")
    elif "AGJIT_CACHE_DIR" not in os.environ:
        env["AGJIT_CACHE_DIR"] = os.path.join(tmp_root, "timing", "agjit")
        env["NUMBA_CACHE_DIR"] = os.path.join(tmp_root, "timing", "numba")
    res = {"started": started, "argv": sys.argv[1:], "quick": args.quick, "python": sys.executable,
           "platform": platform.platform(), "cpu_count": os.cpu_count(), "loadavg_start": load,
           "blas": blas, "method": {"repeats": args.repeats, "warmup": args.warmup,
                                    "target_ms": args.target_ms, "foreign_max": args.foreign_max,
                                    "retries": args.retries, "tolerance": W.CHECK_TOL},
           "cases_run": cases, "peers": [], "timings": {}, "peer_desc": {}}
    peer_classes = [W.PEER_BY_NAME[p] for p in args.peers.split(",")] if args.peers else W.PEERS
    common = ["--repeats", str(args.repeats), "--warmup", str(args.warmup), "--target-ms",
              str(args.target_ms), "--foreign-max", str(args.foreign_max), "--retries",
              str(args.retries), "--quiet-wait", str(args.quiet_wait)]
    t_all = time.perf_counter()
    try:
        for cls in peer_classes:
            res["peer_desc"][cls.name] = cls.desc
            if not _peer_available(cls):
                print("%-12s skipped (%s not importable)" % (cls.name, ",".join(cls.modules)))
                continue
            res["peers"].append(cls.name)
            for c in cases:
                if c not in cls().cases():
                    continue
                r = _run_child(["--child", cls.name, "--case", c] + common, env,
                               args.case_timeout, cls.name + " " + c)
                res["timings"].setdefault(cls.name, {})[c] = r
                extra = ""
                if r.get("status", "ok") != "ok":
                    extra = r["status"]
                else:
                    extra = "median %s  min %s  first %s" % (
                        fmt_s(r["median_us"] / 1e6), fmt_s(r["min_us"] / 1e6),
                        fmt_s(r["first_call_s"]))
                    if "max_rel_err" in r:
                        extra += "  err %.1e%s" % (r["max_rel_err"], "" if r["check_ok"] else " FAIL")
                    if r.get("contended"):
                        extra += "  (contended: other processes used %.2f cores)" % r["foreign_cores"]
                print("%-12s %-11s %s" % (cls.name, c, extra), flush=True)
        if "compile" in extras:
            import compile_latency as CL
            models = ("mlp",) if args.quick else CL.MODELS
            res["compile"] = CL.drive(models, quick=args.quick,
                                      tmp=os.path.join(tmp_root, "compile"),
                                      timeout=args.case_timeout, breakdown=True,
                                      log=lambda line: print("compile " + line, flush=True))
        if "alloc" in extras:
            res["alloc"] = []
            for c in ("W1/tiny", "W2/1e3", "W3/chain20"):
                a = _run_child(["--child-alloc", "--case", c], env, args.case_timeout, "alloc " + c)
                a.setdefault("case", c)
                res["alloc"].append(a)
                if "alive_blocks" in a:
                    print("alloc   %-11s alive after step %d blocks / %d B, peak transient %d B, "
                          "cyclic garbage %.0f objects/step, leak %.1f B/step" % (
                              c, a["alive_blocks"], a["alive_bytes"], a["peak_transient_bytes"],
                              a["cyclic_garbage_objects_per_step"], a["net_bytes_per_step"]),
                          flush=True)
                else:
                    print("alloc   %-11s %s" % (c, a.get("status")), flush=True)
        if "eager" in extras:
            e = _run_child(["--child-eager"], env, args.case_timeout, "eager")
            res["eager"] = e
            print("eager   median overhead per op %s us" % e.get("median_overhead_us"), flush=True)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    res["total_s"] = time.perf_counter() - t_all
    res["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    text, ratios, targets = build_report(res, args)
    res["ratios"] = ratios
    res["targets"] = targets
    contended = [(p, c) for p, d in res["timings"].items() for c, r in d.items() if r.get("contended")]
    head = ["# agjit benchmark results", "",
            "Generated %s by `benchmarks/run.py %s` in %.0f s. %s, %s cores, Python %s, numpy %s. "
            "Load average %s at start, %s at end (the machine is shared)." % (
                started, " ".join(sys.argv[1:]), res["total_s"], platform.platform(),
                os.cpu_count(), platform.python_version(), np.__version__,
                "/".join("%.2f" % v for v in load) if load else "?",
                "/".join("%.2f" % v for v in res["loadavg_end"]) if res["loadavg_end"] else "?"),
            "",
            "Method: each peer/case in its own subprocess; first call, %d warm-up call(s), then %d "
            "repeats of an inner loop of >= %g ms; medians (and mins) per call; GC disabled in "
            "the timed loops. `✗` = gradient check failed (max |err| / max |ref| vs float64 "
            "NumPy > %g). `~` = other processes used > %g cores during the timed window even "
            "after %d retries (%d cell(s) here): treat as noisy." % (
                args.warmup, args.repeats, args.target_ms, W.CHECK_TOL, args.foreign_max,
                args.retries, len(contended)),
            "",
            "BLAS (threadpoolctl, driver process): " + "; ".join(blas_lines(blas)), ""]
    md = "\n".join(head) + "\n" + text
    print()
    print(text)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(res, f, indent=1, default=_jsonable)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(md)
    err = write_plot(os.path.join(out_dir, "ratios.png"), ratios, targets)
    if err:
        print("plot: " + err)
    print("wrote %s/{results.json,results.md%s}" % (out_dir, "" if err else ",ratios.png"))
    failed = [(p, c) for p, d in res["timings"].items() for c, r in d.items()
              if r.get("check_ok") is False or str(r.get("status", "ok")).startswith("error")]
    if failed:
        print("FAILED (gradient check or error): %s" % ", ".join("%s %s" % pc for pc in failed))
    return 1 if failed else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 3 repeats of >= 20 ms, skip W1/medium and W2/1e7, 1 warm run")
    ap.add_argument("--only", default="", help="comma list of W1,W2,W3, cases (W1/tiny) and "
                                               "extras (compile,alloc,eager); default all")
    ap.add_argument("--peers", default="", help="comma list of peers (default: all importable): "
                    + ",".join(p.name for p in W.PEERS))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--target-ms", type=float, default=None)
    ap.add_argument("--foreign-max", type=float, default=0.25,
                    help="cores other processes may use during a timed window")
    ap.add_argument("--retries", type=int, default=None,
                    help="redo a contended window this often (default 2; 0 with --quick)")
    ap.add_argument("--quiet-wait", type=float, default=20.0,
                    help="seconds to wait for quiet before redoing a contended window")
    ap.add_argument("--case-timeout", type=int, default=900)
    ap.add_argument("--cache-dir", default="",
                    help="kernel cache for the timed children (default: AGJIT_CACHE_DIR if set, "
                         "else a temporary directory); the compile runs always use empty ones")
    ap.add_argument("--profile", default="", metavar="CASE",
                    help="print a cProfile of agjit jit replay steps of CASE and exit")
    ap.add_argument("--profile-top", type=int, default=30)
    # children
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    ap.add_argument("--child-alloc", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child-eager", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 7
    if args.target_ms is None:
        args.target_ms = 20.0 if args.quick else 50.0
    if args.retries is None:
        args.retries = 0 if args.quick else 2
    if args.child:
        return child_case(args)
    if args.child_alloc:
        return child_alloc(args)
    if args.child_eager:
        return child_eager(args)
    if args.profile:
        return child_profile(args)
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
