"""Compile latency: how long a user waits for the first steps of a jitted training step.

    .venv/bin/python benchmarks/compile_latency.py [--quick] [--models mlp,lenet,resnet]
        [--breakdown] [--no-peers] [--json out.json]        # the driver: every run below
    .venv/bin/python benchmarks/compile_latency.py --child --model mlp --phase cold ...
    .venv/bin/python benchmarks/compile_latency.py --peer jax|torch_compile ...

Models (the step is ``with record(): loss = f(...)`` + ``loss.backward()``, gradients of
every parameter): ``mlp`` the small-MLP step of W1 (64x784->256->10), ``lenet`` LeNet-5
(W6 of benchmarks/cnn_step.py, batch 64), ``resnet`` the ResNet basic block (W7, batch 32,
64 channels, 32x32).  Each run is a fresh process; only the standard library is imported
before the timed imports.  Per model and mode (``AGJIT_TIERED=0``: the blocking compile;
``default``: whatever ``mx.jit`` does by default -- the interpreted first tier where it
exists), in a fresh cache directory (cold) and then again with that directory (warm):

* ``first_call_s``: the first step, right after the imports (the trace);
* ``compiled_after_s``: from the first call's start until compiled speed is reached while
  steps keep running: the end of the step before the first run of ``WINDOW`` steps on the
  compiled tier whose median is within 1.5x the compiled step (the median of the last fifth
  of the steps) -- one slow step later (another process took the core, a GC pause) does
  not move it (None where the run ended first: ``run_s`` says when); ``switch_s``: the
  end of the first step on the compiled tier;
  ``last_slow_step_s``: the end of the last step slower than 1.5x the compiled step (what
  ``compiled_after_s`` was before: on a loaded machine it is the end of the run);
* ``slowest_warmup_s``: the slowest step after the first call until compiled speed,
  against ``eager_step_s`` (the same loss in eager mode, median, timed in the same process
  after the jitted steps) -- ``slowest_vs_eager``; None where there is no such step;
* load-independent figures of those warm-up steps (the main thread's, from its CPU clock
  and /proc/thread-self/schedstat): ``warmup_slow_steps`` (how many took longer than 1.5x
  the eager step, each less the time it waited for a core), ``warmup_main_cpu_s`` (CPU
  seconds), ``warmup_gil_wait_s`` (seconds neither on a core nor waiting for one: waiting
  for the GIL), ``slowest_warmup_oncpu_s`` (the slowest step less its wait for a core) and
  ``load`` (the 1-minute load average at the start and the end);
* ``cache_info`` after the first call and at the end, ``import_*_s`` and the process wall.

``--peer jax`` (jax.jit(value_and_grad) of the same MLP step) and ``--peer torch_compile``
(torch.compile of it) time their first and steady calls the same way, each in an
interpreter that has it: this one, else $AGJIT_JAX_PYTHON / $AGJIT_TORCH_PYTHON, else
/work/peers-venv/bin/python.
``--breakdown`` adds, per Numba function compiled during the first call, its CPU seconds in
typing, lowering (Numba IR to LLVM and LLVM's optimisation and code generation, which
Numba's ``native_lowering`` pass holds) and the other passes (numba.core.event).
benchmarks/run.py drives it (``compile``).
"""
import os
import sys
import time

T_PROC = time.perf_counter()
import argparse  # noqa: E402
import json  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODELS = ("mlp", "lenet", "resnet")
RUN_S = {"mlp": 8.0, "lenet": 25.0, "resnet": 30.0}      # steps keep running this long
SLOW = 1.5
MIN_STEPS = 8           # the compiled step is a median of at least these
WINDOW = 9              # compiled speed: a run of this many steps with a median within SLOW


def _runq_s():
    """Seconds this thread has waited for a core (Linux schedstat), or 0.0."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) * 1e-9
    except (OSError, ValueError, IndexError):
        return 0.0


def _timed(step, on_compiled=None):
    """(wall, thread CPU, wall less the wait for a core, on the compiled tier) of one step."""
    q = _runq_s()
    c = time.thread_time()
    t = time.perf_counter()
    step()
    wall = time.perf_counter() - t
    cpu = time.thread_time() - c
    return wall, cpu, max(cpu, wall - (_runq_s() - q)), \
        bool(on_compiled()) if on_compiled is not None else True


def _background_cpu():
    """CPU seconds of the tiers' background work so far (load-independent): the paced
    threads of this process and the compile worker process (agjit.compiler.tier)."""
    out = {}
    try:
        from agjit.compiler import warmup, tier
        out["pacing"] = warmup.pacing_state()
        w = tier._COMPILER[0].worker if tier._COMPILER else None
        if w:
            with open("/proc/%d/stat" % w.proc.pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out["worker_cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (ImportError, AttributeError, OSError, ValueError, IndexError):
        pass
    return out


def warmup_figures(steps, eager, ref):
    """The warm-up figures of ``steps`` (per step: (end since the first call's start, wall,
    thread CPU, wall less the wait for a core, on the compiled tier); step 0 is the first
    call), for the ``eager`` step (wall, less its wait for a core) and compiled step
    ``ref`` (see the module doc)."""
    n = len(steps)
    k = n
    for i in range(1, n):       # not before the first call has ended
        if not steps[i][4]:
            continue
        win = sorted(x[1] for x in steps[i:i + WINDOW])
        if win[len(win) // 2] <= SLOW * ref:
            k = i
            break
    slow = [i for i in range(n) if steps[i][1] > SLOW * ref]
    sw = next((i for i in range(n) if steps[i][4]), None)
    warm = steps[1:k]
    out = {"compiled_after_s": steps[k - 1][0] if k < n else None,
           "run_s": steps[-1][0],
           "switch_s": steps[sw][0] if sw is not None else None,
           "last_slow_step_s": steps[slow[-1]][0] if slow else 0.0,
           "warmup_steps": len(warm),
           "slowest_warmup_s": max(x[1] for x in warm) if warm else None,
           "slowest_warmup_oncpu_s": max(x[3] for x in warm) if warm else None,
           "warmup_slow_steps": sum(1 for x in warm if x[3] > SLOW * eager[1]),
           "warmup_main_cpu_s": sum(x[2] for x in warm),
           "warmup_gil_wait_s": sum(max(0.0, x[3] - x[2]) for x in warm)}
    out["slowest_vs_eager"] = None if not warm else out["slowest_warmup_s"] / eager[0]
    return out


# ================================================================ agjit (child) ===
def _import_keeping_mode(name):
    """Import a benchmark module without letting it choose the tier: workloads.py and
    cnn_step.py default AGJIT_TIERED to 0 for their compiled-speed timings, but this
    script's ``default`` mode must see mx.jit's own default."""
    sys.path.insert(0, HERE)
    had = os.environ.get("AGJIT_TIERED")
    try:
        return __import__(name)
    finally:
        if had is None:
            os.environ.pop("AGJIT_TIERED", None)
        else:
            os.environ["AGJIT_TIERED"] = had


def _mlp(mx, np, batch=64):
    W = _import_keeping_mode("workloads")
    rng = np.random.default_rng(W.SEED + batch)
    d = W.w1_data(rng, batch, W.W1_SIZES["small"][1])
    args = [mx.nd.array(d["x"]), mx.nd.array(d["y"].astype(np.float32))]
    params = [mx.nd.array(a) for Wt, b in d["params"]
              for a in (np.ascontiguousarray(Wt.T), b)]
    return W.agjit_w1_fn(mx, 2, [256, 10]), args, params


def _cnn(mx, np, case):
    C = _import_keeping_mode("cnn_step")
    d = C.make_data(case)
    params = [mx.nd.array(d[k]) for k in C.param_names(case)]
    args = [mx.nd.array(d["x"]), mx.nd.array(d["y"].astype(np.float32))]
    extra = []
    if case == "W7":
        c = d["g1"].shape[0]
        extra = [mx.nd.zeros((c,)), mx.nd.ones((c,)), mx.nd.zeros((c,)), mx.nd.ones((c,))]
    fn = C.agjit_loss(mx, case, False)
    return (lambda *a: fn(*a)), args, params, extra


def _stepper(mx, fn, args, params, extra=()):
    for p in params:
        p.attach_grad()
    allargs = list(args) + list(params) + list(extra)

    def step():
        with mx.autograd.record():
            loss = fn(*allargs)
        loss.backward()
        params[0].grad.wait_to_read()
        return loss
    return step


def _breakdown():
    """A numba.core.event listener: CPU seconds per Numba function and pass kind (exclusive
    of nested compiles)."""
    from numba.core import event as ev

    class _Breakdown(_BreakdownBase, ev.Listener):
        pass
    return _Breakdown(ev)


class _BreakdownBase:
    def __init__(self, ev):
        self.ev = ev
        self.stack = []
        self.by_fn = {}
        ev.register("numba:run_pass", self)

    def on_start(self, e):
        self.stack.append([e.data, time.process_time(), 0.0])

    def on_end(self, e):
        data, t, child = self.stack.pop()
        dt = time.process_time() - t
        if self.stack:
            self.stack[-1][2] += dt
        p = data["name"].split(" [")[0]
        kind = "typing" if "type_inference" in p else "lowering" if p == "native_lowering" \
            else "other"
        f = self.by_fn.setdefault(data["qualname"], {"typing": 0.0, "lowering": 0.0,
                                                      "other": 0.0, "n": 0})
        f[kind] += dt - child
        if p == "native_lowering":
            f["n"] += 1

    def close(self):
        self.ev.unregister("numba:run_pass", self)
        rows = sorted(self.by_fn.items(), key=lambda kv: -(kv[1]["typing"] + kv[1]["lowering"]
                                                          + kv[1]["other"]))
        tot = {k: round(sum(v[k] for _, v in rows), 3) for k in ("typing", "lowering", "other")}
        return {"total_cpu_s": tot,
                "functions": [{"fn": q, **{k: round(v, 3) for k, v in f.items()}}
                              for q, f in rows[:25]]}


def child(args):
    out = {"model": args.model, "phase": args.phase,
           "mode": "blocking" if os.environ.get("AGJIT_TIERED") == "0" else "default"}
    t0 = time.perf_counter()
    import numpy as np
    out["import_numpy_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    import agjit as mx
    out["import_agjit_s"] = time.perf_counter() - t0
    if args.model == "mlp":
        fn, a, p = _mlp(mx, np)
        extra = ()
    else:
        fn, a, p, extra = _cnn(mx, np, "W6" if args.model == "lenet" else "W7")
    jf = mx.jit(fn)
    out["tiered_api"] = hasattr(jf, "wait_compiled")
    step = _stepper(mx, jf, a, p, extra)
    bd = None
    if args.breakdown:
        import numba  # noqa: F401  (not timed: the breakdown is a profile, not a latency)
        bd = _breakdown()
    out["load"] = [round(os.getloadavg()[0], 2)]
    t_first = time.perf_counter()
    c0 = time.process_time()
    q0, m0 = _runq_s(), time.thread_time()
    loss = step()
    out["first_call_s"] = time.perf_counter() - t_first
    out["first_call_cpu_s"] = time.process_time() - c0
    # load-independent: the main thread's own CPU in the first call, and the time it was
    # neither on a core nor waiting for one (the GIL held by a background thread, a lock)
    out["first_call_main_cpu_s"] = time.thread_time() - m0
    out["first_call_gil_wait_s"] = max(0.0, out["first_call_s"] - (_runq_s() - q0)
                                       - out["first_call_main_cpu_s"])
    out["loss"] = float(loss.asnumpy().reshape(-1)[0])
    out["after_first"] = jf.cache_info()._asdict()
    if bd is not None:
        out["breakdown"] = bd.close()
    budget = args.run_s if args.run_s else RUN_S[args.model]
    if out["mode"] == "blocking":       # compiled by now: 2 s of compiled steps suffice
        budget = out["first_call_s"] + min(budget, 2.0)
    tiered = out["mode"] != "blocking" and hasattr(jf, "wait_compiled")

    def on_compiled():
        return jf.cache_info().compiled_calls > 0
    c = jf.cache_info().compiled_calls > 0 if tiered else True
    steps = [(out["first_call_s"], out["first_call_s"], out["first_call_cpu_s"],
              out["first_call_s"], c)]
    while (steps[-1][0] < budget or len(steps) < MIN_STEPS) and len(steps) < 20000:
        r = _timed(step, on_compiled if tiered and not steps[-1][4] else None)
        steps.append((time.perf_counter() - t_first,) + r)
    durs = [x[1] for x in steps]
    tail = sorted(durs[-max(3, len(durs) // 5):])
    ref = tail[len(tail) // 2]
    out["steps"] = len(steps)
    out["compiled_step_s"] = ref
    out["end"] = jf.cache_info()._asdict()
    out.update(_background_cpu())
    if args.model == "mlp":         # a new batch size retraces but must compile nothing
        _f2, a2, _p2 = _mlp(mx, np, batch=100)
        step2 = _stepper(mx, jf, a2, p, extra)
        t = time.perf_counter()
        step2()
        out["new_batch_call_s"] = time.perf_counter() - t
        after = jf.cache_info()._asdict()
        out["new_batch_delta"] = {k: round(after[k] - out["end"][k], 6) for k in after
                              if isinstance(after[k], (int, float))}
    # the eager step in the same process (its kernels are warm by now)
    estep = _stepper(mx, fn, a, p, extra)
    estep()
    ed = []
    t_end = time.perf_counter() + (0.5 if args.model == "mlp" else 2.0)
    while time.perf_counter() < t_end or len(ed) < 3:
        ed.append(_timed(estep))
    eager = tuple(sorted(x[k] for x in ed)[len(ed) // 2] for k in (0, 2))
    out["eager_step_s"] = eager[0]
    out["eager_step_oncpu_s"] = eager[1]
    out.update(warmup_figures(steps, eager, ref))
    out["load"].append(round(os.getloadavg()[0], 2))
    out["since_process_start_s"] = time.perf_counter() - T_PROC
    return out


# ================================================================== peers (child) ===
def peer(args):
    sys.path.insert(0, HERE)
    out = {"peer": args.peer}
    t0 = time.perf_counter()
    import numpy as np
    import workloads as W
    rng = np.random.default_rng(W.SEED)
    d = W.w1_data(rng, 64, W.W1_SIZES["small"][1])
    if args.peer == "jax":
        import jax
        out["version"] = jax.__version__
        case = W.JaxJit()
        case.setup()
        c = case.w1(d)
    else:
        import torch
        out["version"] = torch.__version__
        case = W.TorchEager()
        case.setup()
        F = torch.nn.functional
        L = len(d["params"])
        flat = [torch.tensor(a, requires_grad=True) for Wt, b in d["params"] for a in (Wt, b)]

        def loss_fn(x, y, *fl):
            h = x
            for i in range(L):
                h = torch.addmm(fl[2 * i + 1], h, fl[2 * i])
                if i < L - 1:
                    h = torch.relu(h)
            return F.cross_entropy(h, y)
        cf = torch.compile(loss_fn)
        x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"])

        class c:        # noqa: N801  (a Case-like holder)
            @staticmethod
            def step():
                for t in flat:
                    t.grad = None
                cf(x, y, *flat).backward()
    out["import_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    c.step()
    out["first_call_s"] = time.perf_counter() - t
    ds = []
    for _ in range(30):
        t = time.perf_counter()
        c.step()
        ds.append(time.perf_counter() - t)
    ds.sort()
    out["step_s"] = ds[len(ds) // 2]
    return out


# ========================================================================= driver ===
def _run(argv, env, timeout, python=None):
    import subprocess
    import tempfile
    fd, path = tempfile.mkstemp(prefix="agjit-compile-", suffix=".json")
    os.close(fd)
    t0 = time.perf_counter()
    try:
        p = subprocess.run([python or sys.executable, os.path.abspath(__file__)] + argv +
                           ["--json", path], env=env, capture_output=True, text=True,
                           timeout=timeout, cwd=ROOT)
        try:
            with open(path) as f:
                res = json.load(f)
        except (OSError, ValueError):
            res = {"status": "error: exited %d: %s" % (
                p.returncode, (p.stderr.strip().splitlines() or ["?"])[-1][:300])}
    except subprocess.TimeoutExpired:
        res = {"status": "error: timeout after %ds" % timeout}
    finally:
        os.unlink(path)
    res["process_wall_s"] = time.perf_counter() - t0
    return res


def peer_python(module="torch"):
    """An interpreter that imports ``module`` (torch or jax): this one, else
    ``$AGJIT_TORCH_PYTHON`` / ``$AGJIT_JAX_PYTHON``, else /work/peers-venv/bin/python."""
    import subprocess
    for py in (sys.executable, os.environ.get("AGJIT_%s_PYTHON" % module.upper()),
               "/work/peers-venv/bin/python"):
        if py and os.path.exists(py):
            try:
                if subprocess.run([py, "-c", "import " + module], capture_output=True,
                                  timeout=120).returncode == 0:
                    return py
            except (OSError, subprocess.TimeoutExpired):
                pass
    return None


def torch_python():
    return peer_python("torch")


def drive(models, quick=False, tmp=None, timeout=900, breakdown=False, log=print,
          peers=("jax", "torch_compile")):
    """Every run: per model and mode a cold and a warm process, then the peers."""
    import shutil
    import tempfile
    own = tmp is None
    tmp = tmp or tempfile.mkdtemp(prefix="agjit-compile-")
    env0 = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE",
                                                             "OPENBLAS_L2_SIZE")}
    env0["PYTHONPATH"] = ROOT + os.pathsep + env0.get("PYTHONPATH", "")
    res = {"runs": [], "peers": []}
    try:
        for m in models:
            for mode in ("blocking", "default"):
                env = dict(env0, AGJIT_CACHE_DIR=os.path.join(tmp, m, mode, "agjit"),
                           NUMBA_CACHE_DIR=os.path.join(tmp, m, mode, "numba"))
                env.pop("AGJIT_TIERED", None)
                if mode == "blocking":
                    env["AGJIT_TIERED"] = "0"
                for phase in ("cold", "warm"):
                    argv = ["--child", "--model", m, "--phase", phase]
                    if quick:
                        argv += ["--run-s", "3"]
                    if breakdown and phase == "cold" and mode == "blocking":
                        argv.append("--breakdown")
                    r = _run(argv, env, timeout)
                    r.setdefault("model", m)
                    r.setdefault("phase", phase)
                    r["mode"] = mode
                    res["runs"].append(r)
                    log(fmt_run(r))
                    if mode == "default" and phase == "cold" and not r.get("tiered_api", True):
                        break       # no tiering in this build: default is the blocking compile
        for pname in peers:
            py = peer_python("jax" if pname == "jax" else "torch")
            if py is None:
                r = {"peer": pname, "status": "not installed"}
            else:
                r = _run(["--peer", pname], env0, timeout, python=py)
                r.setdefault("peer", pname)
            res["peers"].append(r)
            log("%-14s %s" % (pname, r.get("status") or "first call %s, step %s" % (
                _fs(r.get("first_call_s")), _fs(r.get("step_s")))))
    finally:
        if own:
            shutil.rmtree(tmp, True)
    return res


def _fs(v):
    if v is None:
        return "-"
    return "%.2f s" % v if v >= 1 else "%.1f ms" % (v * 1e3)


def fmt_run(r):
    if "first_call_s" not in r:
        return "%-6s %-8s %-4s %s" % (r.get("model"), r.get("mode"), r.get("phase"),
                                      r.get("status"))
    a = r["after_first"]
    return ("%-6s %-8s %-4s first call %s (compiles=%d disk_hits=%d), compiled speed after %s "
            "(step %s; switch %s; last slow step %s), slowest warm-up step %s = %s eager %s; "
            "%s of %s warm-up steps > 1.5x eager; main thread %s CPU, %s GIL wait; load %s" % (
                r["model"], r["mode"], r["phase"], _fs(r["first_call_s"]), a["compiles"],
                a["disk_hits"], _after(r), _fs(r["compiled_step_s"]),
                _fs(r.get("switch_s")), _fs(r.get("last_slow_step_s")),
                _fs(r["slowest_warmup_s"]), _fx(r["slowest_vs_eager"]), _fs(r["eager_step_s"]),
                r.get("warmup_slow_steps", "-"), r.get("warmup_steps", "-"),
                _fs(r.get("warmup_main_cpu_s")), _fs(r.get("warmup_gil_wait_s")),
                "/".join(str(x) for x in r.get("load", [])) or "-"))


def _after(r):
    """``compiled_after_s``, or 'not in <run>' where the run ended before it."""
    v = r.get("compiled_after_s")
    return _fs(v) if v is not None or "run_s" not in r else "not in %s" % _fs(r["run_s"])


def _fx(v):
    return "-" if v is None else "%.2fx" % v


def markdown(res):
    """The results.md section of a drive() result."""
    lines = ["## Compile latency (fresh processes; benchmarks/compile_latency.py)", "",
             "Models: small MLP (W1 64x784->256->10), LeNet-5 (W6, batch 64), ResNet basic block "
             "(W7, batch 32, 64 ch, 32x32); training step = record + backward.  Mode "
             "`blocking`: AGJIT_TIERED=0; `default`: mx.jit's default (interpreted first tier "
             "where tiering exists).  Cold: empty cache dir; warm: a fresh process on that dir.",
             "",
             "| model | mode | cache | import agjit | first call | compiles / disk hits "
             "(first call) | compiled speed after | compiled step | slowest warm-up step | "
             "eager step | slowest / eager | process wall | warm-up steps > 1.5x eager "
             "(less core waits) | main-thread CPU / GIL wait in warm-up | load |",
             "|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in res.get("runs", []):
        if "first_call_s" not in r:
            lines.append("| %s | %s | %s | %s |" % (r.get("model"), r.get("mode"),
                                                     r.get("phase"), r.get("status")))
            continue
        a = r["after_first"]
        lines.append("| %s | %s | %s | %s | %s | %d / %d | %s | %s | %s | %s | %s | %s | %s | "
                     "%s / %s | %s |" % (
                         r["model"], r["mode"], r["phase"], _fs(r["import_agjit_s"]),
                         _fs(r["first_call_s"]), a["compiles"], a["disk_hits"],
                         _after(r), _fs(r["compiled_step_s"]),
                         _fs(r["slowest_warmup_s"]), _fs(r["eager_step_s"]),
                         _fx(r["slowest_vs_eager"]), _fs(r.get("process_wall_s")),
                         "%s of %s" % (r.get("warmup_slow_steps", "-"),
                                       r.get("warmup_steps", "-")),
                         _fs(r.get("warmup_main_cpu_s")), _fs(r.get("warmup_gil_wait_s")),
                         "/".join(str(x) for x in r.get("load", [])) or "-"))
    lines += ["", "| peer (same MLP step) | version | first call (trace + compile) | step |",
              "|---|---|---:|---:|"]
    for r in res.get("peers", []):
        lines.append("| %s | %s | %s | %s |" % (
            r.get("peer"), r.get("version", "-"), r.get("status") or _fs(r.get("first_call_s")),
            _fs(r.get("step_s"))))
    for r in res.get("runs", []):
        b = r.get("breakdown")
        if not b:
            continue
        lines += ["", "Where the cold first call's compile CPU time goes (%s, blocking): typing "
                  "%.2f s, lowering + LLVM %.2f s, other passes %.2f s; top functions:" % (
                      r["model"], b["total_cpu_s"]["typing"], b["total_cpu_s"]["lowering"],
                      b["total_cpu_s"]["other"]), "",
                  "| function | typing | lowering + LLVM | other |", "|---|---:|---:|---:|"]
        for f in b["functions"][:10]:
            lines.append("| %s | %.3f | %.3f | %.3f |" % (f["fn"], f["typing"], f["lowering"],
                                                         f["other"]))
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", action="store_true")
    ap.add_argument("--peer", choices=("jax", "torch_compile"))
    ap.add_argument("--model", choices=MODELS, default="mlp")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--phase", default="?")
    ap.add_argument("--run-s", type=float, default=0.0)
    ap.add_argument("--breakdown", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    if args.child:
        out = child(args)
    elif args.peer:
        out = peer(args)
    else:
        out = drive([m for m in args.models.split(",") if m], args.quick,
                    breakdown=args.breakdown, peers=() if args.no_peers else
                    ("jax", "torch_compile"))
        print(markdown(out))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh)
    elif args.child or args.peer:
        print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
