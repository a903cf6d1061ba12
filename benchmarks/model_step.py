"""W8-W10: real-model steps (ResNet-18, LSTM LM, Transformer encoder block) against peers.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/model_step.py \
        [--quick] [--only W8/infer1,W9/train,...] [--peers agjit_eager,agjit_jit,...] \
        [--repeats 3] [--threads N] [--timeout S] [--out benchmarks/results]

Cases (models in ``models.py``; batch sizes of the full run, ``--quick`` shrinks them):

| case | what |
|---|---|
| `W8/infer1`, `W8/infer16` | ResNet-18 v1 inference (moving statistics), batch 1 / 16, 3x224x224 |
| `W8/train16` | ResNet-18 training step (batch statistics), batch 16 |
| `W8/train32` | the same at batch 32: the memory target (compiled step <= 1.3x PyTorch eager's peak) |
| `W9/train` | 2-layer LSTM LM step, hidden 256, seq 35, batch 20, vocab 10k |
| `W10/train` | Transformer encoder block step, d 256, 4 heads, seq 128, batch 16 |
| `W10/infer` | its forward alone (logits), where NumPy by hand takes part |

A training step is forward + mean softmax cross-entropy + backward of every parameter (no
update).  Peers, each in its own subprocess (own interpreter where needed):

| peer | what |
|---|---|
| `agjit_eager` | the Gluon network (model zoo / ``gluon.rnn.LSTM`` / a HybridBlock) without ``hybridize()``; its outputs are the reference every other peer is checked against |
| `agjit_jit` | the same network after ``hybridize()`` (``mx.jit`` underneath); ``explain()`` goes into the JSON |
| `numpy` | NumPy by hand, W10 forward only (a hand-written backward of ResNet-18 / LSTM is out of scope; W6/W7 in ``cnn_step.py`` have one) |
| `torch_eager` | PyTorch eager (functional ops; W9 ``nn.LSTM``); ``$AGJIT_TORCH_PYTHON`` or /work/peers-venv/bin/python |
| `torch_compile` | ``torch.compile`` of the same forward / loss function (inductor, default mode) |
| `jax_jit` | ``jax.jit`` of the forward or of ``value_and_grad`` of the loss (this interpreter) |
| `onnxruntime` | W8 inference only: an ONNX file exported by PyTorch (``torch.onnx.export``) run by onnxruntime's CPU provider |
| `mxnet` | MXNet 1.9.1, the same Gluon code hybridized (``static_alloc``), ``$AGJIT_MXNET_PYTHON`` or /work/mxenv/bin/python |

Checks: inference outputs (logits) and the training loss against ``agjit_eager`` by
max |err| / max |ref| (tolerance ``--tol``), the gradients of a few parameters
(``models.grad_names``) by the relative 2-norm |err|_2 / |ref|_2 (tolerance ``--grad-tol``),
and the W10 forward of ``agjit_eager`` against a float64 NumPy forward, so a wrong peer or
a wrong agjit shows.  A peer that is not installed, fails or runs past ``--timeout`` gets a
cell saying so; the run goes on.

Why the gradients get a norm: a ReLU network's gradient is not a continuous function of its
input.  Float32 rounding moves a few ReLU inputs that lie within rounding of zero to the
other side, and each such flip moves a whole row of weight-gradient contributions -- in
exact arithmetic too: in float64 (PyTorch), scaling the W8 batch-32 input by 1 + 2**-24 *
N(0, 1) flips 4 of 74M ReLU inputs and moves ``s4b1_conv2_weight``'s gradient by 4.0e-2 of
its largest entry (5.5e-7 with the ReLU masks and max-pool choices held fixed: BatchNorm's
backward is well conditioned).  So every float32 implementation lands about that far from
float64 and from the others in the max metric -- at batch 32 against float64, the max over
the five checked gradients is 1.4e-2 for PyTorch and 4.0e-2 for agjit eager and jitted
alike, at batch 16 2.1e-2 for MXNet 1.9.1 -- while the relative 2-norm of the same
differences stays at 1.8e-3 .. 7.5e-3 (MXNet the largest; 1.4e-3 .. 7.3e-3 against
agjit_eager, what the check compares), a wrong gradient rule gives O(1), and at batch 4 on
64x64 inputs (no flip) every float32 implementation agrees with float64 to 1e-5 in either
metric.  ``errs_max`` in the JSON keeps the max metric of the gradients for reference.

Timing: first call alone (for ``agjit_jit`` then a wait for its background compile,
``settle_s``, so the timed steps are the compiled ones), ``--warmup`` calls, then
``--repeats`` repeats of an inner loop of at least ``--target-ms`` (GC off); median per
step.  Memory per peer: VmRSS before the first
call, the high-water mark VmHWM of the first call, then (after resetting the mark through
/proc/self/clear_refs) VmHWM over the timed steps: ``peak`` = steady-state high-water mark
minus the RSS before the first call (what the steps need on top of the loaded model and data,
including buffers kept across steps); for agjit also tracemalloc's peak over one steady step
(NumPy buffers allocated during the step).  Writes model_results.json / model_results.md /
model_ratios.png into ``--out``.
"""
import os
import sys

_BAD_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if __name__ == "__main__" and any(v in os.environ for v in _BAD_ENV):
    for _v in _BAD_ENV:
        os.environ.pop(_v, None)
    os.execv(sys.executable, [sys.executable] + sys.argv)

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import models  # noqa: E402

PEERS = ("agjit_eager", "agjit_jit", "numpy", "torch_eager", "torch_compile", "jax_jit",
         "onnxruntime", "mxnet")
# case -> (model, mode, batch, quick batch, peers)
_TRAIN = ("agjit_eager", "agjit_jit", "torch_eager", "torch_compile", "jax_jit", "mxnet")
_W8_INFER = ("agjit_eager", "agjit_jit", "torch_eager", "torch_compile", "jax_jit",
             "onnxruntime", "mxnet")
CASES = {
    "W8/train32": ("W8", "train", 32, 4, ("agjit_jit", "torch_eager")),
    "W10/infer": ("W10", "infer", None, None, ("agjit_eager", "agjit_jit", "numpy",
                                               "torch_eager", "mxnet")),
    "W10/train": ("W10", "train", None, None, _TRAIN),
    "W9/train": ("W9", "train", None, None, _TRAIN),
    "W8/infer1": ("W8", "infer", 1, 1, _W8_INFER),
    "W8/infer16": ("W8", "infer", 16, 2, _W8_INFER),
    "W8/train16": ("W8", "train", 16, 2, _TRAIN),
}
EXTERNAL = ("torch_eager", "mxnet")
REFERENCE = "agjit_eager"


# ===================================================================== memory/timing ===
def _proc_status(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0          # MiB
    except OSError:
        pass
    return None


def _reset_hwm():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def time_step(step, repeats, warmup, target_s, settle=None):
    """First call, warm-up, then ``repeats`` inner loops; with RSS high-water marks.
    ``settle``: called after the first call (agjit_jit: wait for the background compile, so
    the steady steps are the compiled ones; its seconds are ``settle_s``)."""
    rss0 = _proc_status("VmRSS")
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    settle_s = None
    if settle is not None:
        t0 = time.perf_counter()
        settle()
        settle_s = time.perf_counter() - t0
    hwm_first = _proc_status("VmHWM")
    reset = _reset_hwm()
    rss1 = _proc_status("VmRSS")
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    step()
    one = time.perf_counter() - t0
    inner = int(max(1, min(10000, target_s / max(one, 1e-8))))
    samples, cpu = [], []
    gc.collect()
    gc.disable()
    try:
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(inner):
                step()
            samples.append((time.perf_counter() - t0) / inner)
            cpu.append((time.process_time() - c0) / inner)
    finally:
        gc.enable()
    hwm = _proc_status("VmHWM")
    ms = [s * 1e3 for s in samples]
    res = {"first_call_s": first, "median_ms": statistics.median(ms), "min_ms": min(ms),
           "cpu_median_ms": statistics.median(cpu) * 1e3, "repeats": repeats, "inner": inner,
           "rss_before_mb": rss0, "hwm_reset": reset}
    if settle_s is not None:
        res["settle_s"] = settle_s
    if rss0 is not None and hwm is not None:
        res["first_peak_mb"] = hwm_first - rss0
        res["peak_mb"] = hwm - rss0
        res["kept_after_first_mb"] = rss1 - rss0
        if reset:
            res["step_peak_mb"] = hwm - rss1
    return res


def traced_peak_mb(step):
    """tracemalloc's peak over one step (NumPy registers its buffers with tracemalloc)."""
    import tracemalloc
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        step()
        return (tracemalloc.get_traced_memory()[1] - base) / 2 ** 20
    finally:
        tracemalloc.stop()


# ============================================================================ peers ===
def mx_case(mx, model, mode, d, quick, hybrid):
    nd, ag = mx.nd, mx.autograd
    net = models.mx_net(mx, model, quick)
    params = models.mx_load(mx, net, model, d, quick)
    if hybrid:
        net.hybridize(static_alloc=True, static_shape=True)
    x = nd.array(d["x"].astype(np.float32))
    y = nd.array(d["y"].astype(np.float32))
    L = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    st = {}
    if mode == "infer":
        def step():
            out = net(x)
            out.wait_to_read()
            st["out"] = out

        def fetch():
            return {"out": st["out"].asnumpy()}
    else:
        names = models.grad_names(model, quick)

        def step():
            with ag.record():
                loss = L(net(x), y).mean()
            loss.backward()
            params[names[0]].grad().wait_to_read()
            st["loss"] = loss

        def fetch():
            out = {"loss": np.float64(st["loss"].asnumpy().reshape(-1)[0])}
            for k in names:
                out[k] = params[k].grad().asnumpy()
            return out
    return step, fetch, net


def _torch_threads():
    import torch
    if os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return {"torch": torch.__version__, "torch_threads": torch.get_num_threads()}


def torch_case(model, mode, d, quick, compiled):
    import torch
    F = torch.nn.functional
    P, forward = models.torch_model(model, d, quick, requires_grad=mode == "train")
    x = torch.from_numpy(d["x"])
    y = torch.from_numpy(d["y"])
    st = {}
    if mode == "infer":
        def fwd(x):
            return forward(x, False)
        f = torch.compile(fwd) if compiled else fwd

        def step():
            with torch.no_grad():
                st["out"] = f(x)

        def fetch():
            return {"out": st["out"].numpy().copy()}
    else:
        names = models.grad_names(model, quick)
        train_params = [p for p in P.values() if p.requires_grad]

        def loss_fn(x, y):
            z = forward(x, True)
            return F.cross_entropy(z.reshape(-1, z.shape[-1]), y.reshape(-1))
        f = torch.compile(loss_fn) if compiled else loss_fn

        def step():
            for p in train_params:
                p.grad = None
            loss = f(x, y)
            loss.backward()
            st["loss"] = loss

        def fetch():
            out = {"loss": np.float64(st["loss"].item())}
            for k in names:
                out[k] = P[k].grad.numpy().copy()
            return out
    return step, fetch


def export_onnx(model, d, quick, path):
    import torch
    P, forward = models.torch_model(model, d, quick, requires_grad=False)

    class M(torch.nn.Module):
        def forward(self, x):
            return forward(x, False)
    x = torch.from_numpy(d["x"])
    kw = {}
    try:
        import inspect
        if "dynamo" in inspect.signature(torch.onnx.export).parameters:
            kw["dynamo"] = False           # the TorchScript exporter: needs no onnxscript
    except (TypeError, ValueError):
        pass
    with torch.no_grad():
        torch.onnx.export(M().eval(), (x,), path, input_names=["x"], output_names=["out"],
                          opset_version=17, **kw)


def onnx_case(d, onnx_path):
    import onnxruntime as ort
    so = ort.SessionOptions()
    threads = int(os.environ.get("OMP_NUM_THREADS") or 0)
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    sess = ort.InferenceSession(onnx_path, so, providers=["CPUExecutionProvider"])
    feed = {"x": d["x"]}
    st = {}

    def step():
        st["out"] = sess.run(None, feed)[0]
    return step, lambda: {"out": st["out"]}, {"onnxruntime": ort.__version__,
                                               "intra_op_threads": threads or "default"}


def jax_case(model, mode, d, quick):
    import jax
    import jax.numpy as jnp
    forward = models.jax_model(model, quick)
    P = {k: jnp.asarray(d[k]) for k, _ in models.param_spec(model, quick)}
    x = jnp.asarray(d["x"].astype(np.int32) if model == "W9" else d["x"])
    y = jnp.asarray(d["y"].astype(np.int32))
    st = {}
    if mode == "infer":
        f = jax.jit(lambda P, x: forward(P, x, False))

        def step():
            st["out"] = f(P, x).block_until_ready()
        return step, lambda: {"out": np.asarray(st["out"])}
    names = models.grad_names(model, quick)
    buf = {k: v for k, v in P.items() if k.endswith(("running_mean", "running_var"))}
    train = {k: v for k, v in P.items() if k not in buf}

    def loss(tp, buf, x, y):
        z = forward(dict(tp, **buf), x, True)
        z = z.reshape(-1, z.shape[-1])
        logp = jax.nn.log_softmax(z, -1)
        return -jnp.take_along_axis(logp, y.reshape(-1, 1), 1).mean()
    g = jax.jit(jax.value_and_grad(loss))

    def step():
        v, gr = g(train, buf, x, y)
        jax.block_until_ready(gr)
        st["r"] = (v, gr)

    def fetch():
        v, gr = st["r"]
        out = {"loss": np.float64(v)}
        for k in names:
            out[k] = np.asarray(gr[k])
        return out
    return step, fetch


def numpy_case(model, mode, d, quick):
    if model != "W10" or mode != "infer":
        raise RuntimeError("NumPy by hand covers only W10/infer")
    st = {}

    def step():
        st["out"] = models.numpy_encoder_forward(d, quick)
    return step, lambda: {"out": st["out"]}


def blas_info():
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join("%s %s %s threads=%s" % (i.get("internal_api"), i.get("version"),
                                              i.get("architecture") or "", i.get("num_threads"))
                     for i in threadpoolctl.threadpool_info())


def child(args):
    case = args.case
    model, mode = CASES[case][0], CASES[case][1]
    d = dict(np.load(args.data))
    peer = args.child
    info = {"python": sys.executable}
    net = None
    if peer in ("agjit_eager", "agjit_jit"):
        import agjit as mx
        info["agjit"] = getattr(mx, "__version__", "?")
        step, fetch, net = mx_case(mx, model, mode, d, args.quick, peer == "agjit_jit")
    elif peer == "mxnet":
        import mxnet as mx
        info["mxnet"] = mx.__version__
        step, fetch, net = mx_case(mx, model, mode, d, args.quick, True)
    elif peer in ("torch_eager", "torch_compile"):
        info.update(_torch_threads())
        step, fetch = torch_case(model, mode, d, args.quick, peer == "torch_compile")
    elif peer == "jax_jit":
        import jax
        info["jax"] = jax.__version__
        step, fetch = jax_case(model, mode, d, args.quick)
    elif peer == "onnxruntime":
        step, fetch, extra = onnx_case(d, args.onnx)
        info.update(extra)
    else:
        step, fetch = numpy_case(model, mode, d, args.quick)
    settle = None
    if peer == "agjit_jit":
        def settle():
            jf = getattr(net, "_jit", None)
            if jf is not None:
                jf.wait_compiled()
    res = time_step(step, args.repeats, args.warmup, args.target_ms / 1e3, settle)
    if peer.startswith("agjit"):
        res["traced_peak_mb"] = traced_peak_mb(step)
        if peer == "agjit_jit":
            jf = getattr(net, "_jit", None)
            res["explain"] = jf.explain() if jf is not None else "(no jit object on the net)"
            lines = res["explain"].splitlines()
            if "eager segments in the replay:" in lines:
                i = lines.index("eager segments in the replay:")
                res["eager_segments"] = [s.strip() for s in lines[i + 1:]
                                         if s.startswith("  ")]
            else:
                res["eager_segments"] = []
            ci = getattr(jf, "cache_info", None)
            if ci is not None:
                res["cache_info"] = ci()._asdict()
    got = fetch()
    np.savez(args.result + ".npz", **{k: np.asarray(v) for k, v in got.items()})
    res.update(status="ok", info=info, blas=blas_info())
    _write(args.result, json.dumps(res))     # atomic: the driver waits for this file


# ========================================================================== driver ===
def _imports(py, mod):
    try:
        return subprocess.run([py, "-c", "import " + mod], capture_output=True,
                              timeout=180).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


_PY_CACHE = {}


def peer_python(peer):
    if peer in _PY_CACHE:
        return _PY_CACHE[peer]
    if peer in ("agjit_eager", "agjit_jit", "numpy"):
        py = sys.executable
    else:
        if peer in ("torch_eager", "torch_compile"):
            cands, mod = [sys.executable, os.environ.get("AGJIT_TORCH_PYTHON"),
                          "/work/peers-venv/bin/python"], "torch"
        elif peer == "jax_jit":
            cands, mod = [sys.executable, os.environ.get("AGJIT_JAX_PYTHON")], "jax"
        elif peer == "onnxruntime":
            cands, mod = [sys.executable, os.environ.get("AGJIT_ORT_PYTHON")], "onnxruntime"
        else:
            cands, mod = [os.environ.get("AGJIT_MXNET_PYTHON"), "/work/mxenv/bin/python"], "mxnet"
        py = next((c for c in cands if c and os.path.exists(c) and _imports(c, mod)), None)
    _PY_CACHE[peer] = py
    return py


def _env(args, peer):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if args.threads:
        for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                  "NUMBA_NUM_THREADS"):
            env[v] = str(args.threads)
        if peer == "jax_jit":
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                                " intra_op_parallelism_threads=%d" % args.threads).strip()
    if peer == "mxnet":
        env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        env["PYTHONPATH"] = ""            # never let agjit shadow the real package
    if peer == "torch_compile" and args.cache_dir:
        env.setdefault("TORCHINDUCTOR_CACHE_DIR", os.path.join(args.cache_dir, "inductor"))
    if args.cache_dir and peer.startswith("agjit"):
        env.setdefault("AGJIT_CACHE_DIR", os.path.join(args.cache_dir, "agjit"))
    return env


def _tail(p):
    lines = [s for s in (p.stdout + p.stderr).strip().splitlines() if s.strip()]
    return " | ".join(lines[-3:])[-600:]


_EXIT_GRACE_S = 60


def _run_child(cmd, env, timeout, result):
    """Run a peer's child; None when it runs past ``timeout``.  A child that wrote its
    ``result`` (the JSON comes last) but has not exited ``_EXIT_GRACE_S`` later is killed
    and its result kept (``.hung``): seen with OpenBLAS joining its thread pool at exit."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    t0 = time.time()
    done_at = None
    chunks = [[], []]
    hung = False
    while True:
        try:
            o, e = p.communicate(timeout=5)
            chunks[0].append(o or "")
            chunks[1].append(e or "")
            break
        except subprocess.TimeoutExpired:
            pass
        now = time.time()
        if done_at is None and os.path.exists(result):
            done_at = now
        if done_at is not None and now - done_at > _EXIT_GRACE_S:
            p.kill()
            o, e = p.communicate()
            chunks[0].append(o or "")
            chunks[1].append(e or "")
            hung = True
            break
        if now - t0 > timeout:
            p.kill()
            p.communicate()
            return None
    return types.SimpleNamespace(returncode=p.returncode, hung=hung,
                                 stdout="".join(chunks[0]), stderr="".join(chunks[1]))


def run_peer(peer, case, args, tmp, data_path):
    py = peer_python(peer)
    if py is None:
        return {"status": "not installed"}
    tag = "%s_%s" % (peer, case.replace("/", "_"))
    out = os.path.join(tmp, tag + ".json")
    cmd = [py, os.path.abspath(__file__), "--child", peer, "--case", case, "--data", data_path,
           "--result", out, "--repeats", str(args.repeats), "--warmup", str(args.warmup),
           "--target-ms", str(args.target_ms)]
    if args.quick:
        cmd.append("--quick")
    if peer == "onnxruntime":
        tpy = peer_python("torch_eager")
        if tpy is None:
            return {"status": "not installed (the export needs torch)"}
        onnx_path = os.path.join(tmp, tag + ".onnx")
        ecmd = [tpy, os.path.abspath(__file__), "--export-onnx", onnx_path, "--case", case,
                "--data", data_path] + (["--quick"] if args.quick else [])
        try:
            p = subprocess.run(ecmd, env=_env(args, "torch_eager"), capture_output=True,
                               text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            return {"status": "failed: ONNX export timed out"}
        if p.returncode != 0 or not os.path.exists(onnx_path):
            return {"status": "failed: ONNX export", "error": _tail(p)}
        cmd += ["--onnx", onnx_path]
    t0 = time.time()
    p = _run_child(cmd, _env(args, peer), args.timeout, out)
    if p is None:
        return {"status": "timeout after %d s" % args.timeout}
    if (p.returncode != 0 and not p.hung) or not os.path.exists(out):
        return {"status": "failed", "error": _tail(p)}
    with open(out) as f:
        r = json.load(f)
    r["wall_s"] = time.time() - t0
    if p.hung:
        r["hung_at_exit"] = True
    r["outputs"] = dict(np.load(out + ".npz"))
    return r


_NOT_GRADIENTS = ("loss", "out")


def compare(got, ref, norm=False):
    """Per output: max |err| / max |ref|, or with ``norm`` the relative 2-norm |err|_2 /
    |ref|_2 for the gradients (the losses and logits keep the max metric; see the module
    docstring for why the gradients get a norm)."""
    errs = {}
    for k, v in ref.items():
        if k not in got:
            continue
        r = np.asarray(v, dtype=np.float64)
        g = np.asarray(got[k], dtype=np.float64).reshape(r.shape)
        if norm and k not in _NOT_GRADIENTS:
            errs[k] = float(np.linalg.norm(g - r) / max(float(np.linalg.norm(r)), 1e-12))
        else:
            errs[k] = float(np.max(np.abs(g - r)) / max(float(np.max(np.abs(r))), 1e-12))
    return errs


def check_case(case, row, outputs, numpy64, tol, grad_tol=None):
    """Every peer's outputs against agjit_eager's (torch_eager's when agjit_eager has none):
    losses and logits within ``tol`` (max metric), gradients within ``grad_tol`` (relative
    2-norm; ``tol`` when None); agjit_eager's W10 forward against the float64 NumPy
    forward."""
    grad_tol = tol if grad_tol is None else grad_tol
    refname = REFERENCE if REFERENCE in outputs else ("torch_eager" if "torch_eager" in outputs
                                                       else None)
    if refname is None:
        return
    ref = outputs[refname]
    parts = []
    for peer, outs in outputs.items():
        r = row[peer]
        if peer == refname:
            r["reference"] = True
            if numpy64 is None:
                continue
            errs = compare(outs, numpy64)
            r["errs_vs_float64_numpy"] = errs
        else:
            errs = compare(outs, ref, norm=True)
            if any(k not in _NOT_GRADIENTS for k in errs):
                r["errs_max"] = compare(outs, ref)
        r["errs"] = errs
        r["max_rel_err"] = max(errs.values()) if errs else 0.0
        r["check_ok"] = all(e <= (tol if k in _NOT_GRADIENTS else grad_tol)
                            for k, e in errs.items())
        parts.append("%s %.1e%s" % (peer, r["max_rel_err"], "" if r["check_ok"] else " FAILED"))
    print("  %-10s check vs %s%s: %s" % (case, refname, " (itself vs float64 NumPy)"
                                          if numpy64 is not None else "", ", ".join(parts)),
          flush=True)


def fmt_ms(v):
    return "%.3g" % v if v < 100 else "%.0f" % v


def best_external(row, key="median_ms"):
    ext = [row[p][key] for p in EXTERNAL if row.get(p, {}).get("status") == "ok"]
    return min(ext) if ext else None


def report(results, cases, peers, key="median_ms"):
    lines = ["| case | " + " | ".join(peers) + " |", "|---|" + "---:|" * len(peers)]
    for case in cases:
        row = results[case]
        best = best_external(row, key)
        cells = []
        for p in peers:
            r = row.get(p)
            if r is None:
                cells.append("")
                continue
            if r.get("status") != "ok":
                cells.append(r.get("status", "-"))
                continue
            c = "%s ms" % fmt_ms(r[key])
            if best:
                c += " (%.2fx)" % (r[key] / best)
            c += ", first %.1f s" % r["first_call_s"]
            if r.get("check_ok") is False:
                c += " ✗ err %.1e" % r["max_rel_err"]
            cells.append(c)
        lines.append("| %s | %s |" % (case, " | ".join(cells)))
    return "\n".join(lines)


def memory_report(results, cases, peers):
    lines = ["| case | " + " | ".join(peers) + " |", "|---|" + "---:|" * len(peers)]
    for case in cases:
        cells = []
        for p in peers:
            r = results[case].get(p)
            if r is None or r.get("status") != "ok" or r.get("peak_mb") is None:
                cells.append("" if r is None else "-")
                continue
            c = "%.0f" % r["peak_mb"]
            if r.get("step_peak_mb") is not None:
                c += " / %.0f" % r["step_peak_mb"]
            if r.get("traced_peak_mb") is not None:
                c += " / traced %.0f" % r["traced_peak_mb"]
            c += " MiB"
            cells.append(c)
        lines.append("| %s | %s |" % (case, " | ".join(cells)))
    return "\n".join(lines)


def targets(results, key="median_ms"):
    """The issue's targets that this run can judge: (name, measured, limit, ok); time ratios
    of ``key`` (median wall or process-CPU ms)."""
    out = []

    def ok(case, peer):
        r = results.get(case, {}).get(peer, {})
        return r if r.get("status") == "ok" else None
    for case in results:
        jit = ok(case, "agjit_jit")
        if jit is None:
            continue
        if case.startswith("W8/infer"):
            ort = ok(case, "onnxruntime")
            if ort:
                v = jit[key] / ort[key]
                out.append(("%s jit / onnxruntime" % case, v, 1.2, v <= 1.2))
        elif case != "W10/infer":
            best = best_external(results[case], key)
            if best:
                v = jit[key] / best
                out.append(("%s jit / fastest(torch eager, mxnet)" % case, v, 1.0, v <= 1.0))
        eager = ok(case, "agjit_eager")
        if eager:
            v = jit[key] / eager[key]
            out.append(("%s jit / eager" % case, v, 1.0, v <= 1.0))
    jit, te = ok("W8/train32", "agjit_jit"), ok("W8/train32", "torch_eager")
    for key, what in (("peak_mb", "peak over the loaded model"),
                      ("step_peak_mb", "step peak over RSS after the first call")):
        if jit and te and jit.get(key) and te.get(key):
            v = jit[key] / te[key]
            out.append(("W8/train32 jit / torch eager memory (%s)" % what, v, 1.3, v <= 1.3))
    return out


def plot(results, cases, path, key="median_ms"):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    peers = ["agjit_eager", "agjit_jit", "torch_compile", "jax_jit", "onnxruntime", "numpy"]
    fig, ax = plt.subplots(figsize=(10, 0.6 * len(cases) + 2))
    width = 0.8 / len(peers)
    for i, p in enumerate(peers):
        vals = []
        for case in cases:
            r = results[case].get(p, {})
            best = best_external(results[case], key)
            vals.append(r[key] / best if r.get("status") == "ok" and best else 0)
        ax.barh([k + i * width for k in range(len(cases))], vals, width, label=p)
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks([k + 0.4 - width / 2 for k in range(len(cases))])
    ax.set_yticklabels(cases)
    ax.set_xscale("log")
    ax.set_xlabel("median step %s / fastest of PyTorch eager and MXNet 1.9.1 (log)"
                  % ("process CPU time" if key == "cpu_median_ms" else "wall time"))
    ax.legend(fontsize=8)
    ax.set_title("W8-W10 model steps (1.0 = the best of PyTorch eager / MXNet)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def _write(path, text):
    """Write ``text`` to ``path`` atomically (a temporary file in the same folder, renamed)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_results(args, header, results, cases):
    """Tables of the cases measured so far; written into --out after every case, so a run
    cut short still leaves its results."""
    if "runs" not in header:
        header["load_end"] = loadavg()
    cases = [c for c in cases if c in results]
    want = [p for p in args.peers.split(",") if p]
    shown = [p for p in PEERS if p in want and any(p in CASES[c][4] for c in cases)]
    table = report(results, cases, shown)
    cpu_table = report(results, cases, shown, key="cpu_median_ms")
    mem = memory_report(results, cases, shown)
    # on a loaded machine with one thread per peer, process CPU time is the steadier measure
    tkey = "cpu_median_ms" if header.get("threads") == 1 else "median_ms"
    tg = targets(results, tkey)
    tg_lines = ["| target | measured | limit | met |", "|---|---:|---:|---|"] + [
        "| %s | %.2f | %.1f | %s |" % (n, v, lim, "yes" if good else "no") for n, v, lim, good in tg]
    runs = "".join("- %s: cases %s, load %s at the start, %s at the end\n" % (
        h["date"], ", ".join(h.get("cases", [])), h["load_start"], h["load_end"])
        for h in header.get("runs", []))
    if runs:
        runs = "Merged from %d runs of this command (`--merge`):\n\n%s\n" % (
            len(header["runs"]), runs)
    text = runs + ("Load average %s at the start, %s at the end; BLAS: %s; threads per peer: %s\n\n"
            "## Median wall ms per step (ratio to the fastest of torch_eager / mxnet; first call)\n\n"
            "%s\n\n## Process CPU ms per step\n\n%s\n\n## Memory per peer, MiB: RSS high-water "
            "over the steady steps minus RSS before the first call (includes what the first "
            "call keeps: buffers, and for the jits compiler state) / minus RSS after the first "
            "call (the steps' own transient peak) / agjit: tracemalloc peak of one step (NumPy "
            "buffers)\n\n%s\n\n## Targets (time ratios of %s)\n\n%s\n"
            % (header["load_start"], header["load_end"], header["blas"], header["threads"],
               table, cpu_table, mem, "process CPU ms" if tkey == "cpu_median_ms" else
               "median wall ms", "\n".join(tg_lines)))
    eager = ["- %s: %s" % (c, "; ".join(results[c]["agjit_jit"].get("eager_segments") or ["none"]))
             for c in cases if results[c].get("agjit_jit", {}).get("status") == "ok"]
    if eager:
        text += "\n## Eager segments in agjit_jit's replay (explain())\n\n" + "\n".join(eager) + "\n"
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        _write(os.path.join(args.out, "model_results.json"), json.dumps(
            {"header": header, "quick": args.quick, "results": results,
             "targets": [{"target": n, "measured": v, "limit": lim, "met": g}
                         for n, v, lim, g in tg]}, indent=1, default=float))
        _write(os.path.join(args.out, "model_results.md"),
               "# W8-W10 model steps (%s)\n\n%s" % (header["date"], text))
        plot(results, cases, os.path.join(args.out, "model_ratios.png"), tkey)
    return text


def merge(args):
    """Tables of several runs' model_results.json (``--merge DIR,DIR``) written into
    ``--out``: per case and peer, a later run's cell replaces an earlier one's unless the
    later one failed and the earlier one did not.  Each cell keeps the check of its own run."""
    results, runs = {}, []
    for d in [x for x in args.merge.split(",") if x]:
        with open(os.path.join(d, "model_results.json")) as f:
            doc = json.load(f)
        h = dict(doc["header"])
        h["cases"] = list(doc["results"])
        runs.append(h)
        for case, row in doc["results"].items():
            have = results.setdefault(case, {})
            for peer, r in row.items():
                if r.get("status") == "ok" or have.get(peer, {}).get("status") != "ok":
                    have[peer] = dict(r, run=h["date"])
    cases = [c for c in CASES if c in results]
    header = dict(runs[0], runs=runs, load_end=runs[-1]["load_end"])
    print(write_results(args, header, results, cases))
    return 0


def driver(args):
    cases = [c for c in args.only.split(",") if c]
    for c in cases:
        if c not in CASES:
            sys.exit("unknown case %s (known: %s)" % (c, ", ".join(CASES)))
    want = [p for p in args.peers.split(",") if p]
    for p in want:
        if p not in PEERS:
            sys.exit("unknown peer %s (known: %s)" % (p, ", ".join(PEERS)))
    print("# W8-W10 model steps%s" % (" -- quick" if args.quick else ""))
    header = {"machine": "%s, %d cores, Python %s, NumPy %s" % (
        platform.machine(), os.cpu_count() or 0, platform.python_version(), np.__version__),
        "blas": blas_info(), "threads": args.threads or "library default",
        "load_start": loadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print("machine: %(machine)s; %(date)s; load %(load_start)s" % header)
    print("BLAS: %s; threads per peer: %s" % (header["blas"], header["threads"]), flush=True)
    results, checks = {}, {}
    with tempfile.TemporaryDirectory(prefix="model_step_") as tmp:
        if not args.cache_dir:
            args.cache_dir = os.path.join(tmp, "cache")
        for case in cases:
            model, mode, batch, qbatch, case_peers = CASES[case]
            d = models.make_data(model, args.quick, batch=qbatch if args.quick else batch)
            data_path = os.path.join(tmp, case.replace("/", "_") + "_data.npz")
            np.savez(data_path, **d)
            results[case] = {}
            if model == "W10" and mode == "infer":
                d64 = {k: (v.astype(np.float64) if v.dtype.kind == "f" else v) for k, v in d.items()}
                checks[case] = {"out": models.numpy_encoder_forward(d64, args.quick)}
            outputs = {}
            for peer in [p for p in case_peers if p in want]:
                r = run_peer(peer, case, args, tmp, data_path)
                outs = r.pop("outputs", None)
                if outs is not None:
                    outputs[peer] = outs
                results[case][peer] = r
                if r.get("status") == "ok":
                    msg = "%s ms median (CPU %s), first %.2f s, peak %s MiB" % (
                        fmt_ms(r["median_ms"]), fmt_ms(r["cpu_median_ms"]), r["first_call_s"],
                        "%.0f" % r["peak_mb"] if r.get("peak_mb") is not None else "?")
                    if r.get("eager_segments"):
                        msg += "; %d eager segments" % len(r["eager_segments"])
                else:
                    msg = r.get("status") + (": " + r["error"] if r.get("error") else "")
                print("  %-10s %-13s %s" % (case, peer, msg), flush=True)
            check_case(case, results[case], outputs, checks.get(case), args.tol,
                       args.grad_tol)
            write_results(args, header, results, cases)
    text = write_results(args, header, results, cases)
    print("\n" + text)
    bad = [(c, p) for c in cases for p, r in results[c].items() if r.get("check_ok") is False]
    if bad:
        print("numerical check failed: %s" % ", ".join("%s/%s" % b for b in bad))
    return 1 if bad else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(CASES))
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--target-ms", type=float, default=200.0)
    ap.add_argument("--timeout", type=int, default=900, help="seconds per peer process")
    ap.add_argument("--tol", type=float, default=5e-3,
                    help="losses and logits: max |err| / max |ref|")
    ap.add_argument("--grad-tol", type=float, default=2e-2,
                    help="gradients: |err|_2 / |ref|_2 (see the docstring)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--out", default=None)
    ap.add_argument("--merge", default=None,
                    help="comma-separated --out folders of earlier runs: tables of them all")
    ap.add_argument("--child", default=None)
    ap.add_argument("--export-onnx", default=None)
    ap.add_argument("--onnx", default=None)
    ap.add_argument("--case", default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--result", default=None)
    args = ap.parse_args(argv)
    if args.export_onnx:
        model = CASES[args.case][0]
        export_onnx(model, dict(np.load(args.data)), args.quick, args.export_onnx)
        return 0
    if args.child:
        child(args)
        return 0
    if args.merge:
        return merge(args)
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
