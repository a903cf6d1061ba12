"""W6/W7: CNN training steps (forward + softmax cross-entropy + backward, no update).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/cnn_step.py \
        [--quick] [--only W6,W7] [--peers agjit_eager,agjit_jit,numpy,torch_eager,mxnet] \
        [--repeats 5] [--threads N] [--out DIR]

* **W6** LeNet-5, batch 64, 1x28x28: conv 6@5x5 pad 2 - relu - maxpool 2 - conv 16@5x5 -
  relu - maxpool 2 - FC 120 - relu - FC 84 - relu - FC 10.
* **W7** ResNet basic block 64->64, batch 32, 32x32: conv 3x3 - BatchNorm - relu - conv 3x3 -
  BatchNorm - (+ input) - relu, then global average pooling and FC 10 as the loss head.
  BatchNorm in training mode (batch statistics), eps 1e-5, learnable gamma.

Loss: mean softmax cross-entropy over the batch; gradients of every parameter (not of the
input).  Peers, each in its own subprocess (own interpreter where it needs one):

| peer | what |
|---|---|
| `agjit_eager` | mx.nd ops under ``autograd.record()``, ``loss.backward()``; Convolution/Pooling/BatchNorm on the compiled kernels once the background thread has them (agjit.eager_kernels: the timing waits for it after the first call, reported as ``settle_s``) |
| `agjit_jit` | the same loss function through ``mx.jit`` (whatever it lowers today) |
| `numpy` | NumPy with hand-written gradients (im2col + BLAS); in float64 it is the reference every peer's loss and gradients are checked against (max abs err / max abs ref <= 2e-3) |
| `torch_eager` | PyTorch eager autograd: this interpreter if it imports torch, else ``$AGJIT_TORCH_PYTHON`` or /work/peers-venv/bin/python |
| `mxnet` | MXNet 1.9.1 imperative (``mx.nd`` + ``autograd``) under ``$AGJIT_MXNET_PYTHON`` or /work/mxenv/bin/python (it needs numpy<1.24), ``OMP_NUM_THREADS`` = cores |

A peer whose interpreter or import is missing is reported "not installed".  Timing as in
``run.py`` (first call alone, warm-up, ``--repeats`` repeats of an inner loop of at least
``--target-ms``; median per step, GC off inside the loop).  ``--quick`` shrinks the batch
(W6 8, W7 2 with 16 channels and 8x8 images) for smoke tests.  Prints the table (median ms,
ratio to the fastest of PyTorch eager / MXNet, first call) and writes results.json /
results.md into ``--out`` when given.
"""
import os
os.environ.setdefault("AGJIT_TIERED", "0")   # compiled speed: today's blocking compile (agjit.compiler.tier)
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

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CASES = ("W6", "W7")
PEERS = ("agjit_eager", "agjit_jit", "numpy", "torch_eager", "mxnet")
EXTERNAL = ("torch_eager", "mxnet")
BN_EPS = 1e-5
CHECK_TOL = 2e-3


# ============================================================================ data ===
def sizes(case, quick):
    if case == "W6":
        return {"batch": 8 if quick else 64}
    return {"batch": 2, "ch": 16, "hw": 8} if quick else {"batch": 32, "ch": 64, "hw": 32}


def param_names(case):
    if case == "W6":
        return ["c1w", "c1b", "c2w", "c2b", "f1w", "f1b", "f2w", "f2b", "f3w", "f3b"]
    return ["w1", "g1", "b1", "w2", "g2", "b2", "fw", "fb"]


def make_data(case, quick=False, seed=1234, batch=None):
    """float32 inputs, int labels and parameters in MXNet/PyTorch layouts (conv weight
    (out, in, kh, kw), FC weight (out, in))."""
    rng = np.random.default_rng(seed)
    sz = sizes(case, quick)
    n = batch or sz["batch"]

    def he(shape, fan_in):
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    d = {}
    if case == "W6":
        d["x"] = rng.standard_normal((n, 1, 28, 28)).astype(np.float32)
        d["c1w"], d["c1b"] = he((6, 1, 5, 5), 25), np.zeros(6, np.float32) + 0.01
        d["c2w"], d["c2b"] = he((16, 6, 5, 5), 150), np.zeros(16, np.float32) + 0.01
        d["f1w"], d["f1b"] = he((120, 400), 400), np.zeros(120, np.float32) + 0.01
        d["f2w"], d["f2b"] = he((84, 120), 120), np.zeros(84, np.float32) + 0.01
        d["f3w"], d["f3b"] = he((10, 84), 84), np.zeros(10, np.float32)
    else:
        c, hw = sz["ch"], sz["hw"]
        d["x"] = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
        d["w1"], d["w2"] = he((c, c, 3, 3), 9 * c), he((c, c, 3, 3), 9 * c)
        for i in ("1", "2"):
            d["g" + i] = (1 + 0.1 * rng.standard_normal(c)).astype(np.float32)
            d["b" + i] = (0.1 * rng.standard_normal(c)).astype(np.float32)
        d["fw"], d["fb"] = he((10, c), c), np.zeros(10, np.float32)
    d["y"] = rng.integers(0, 10, size=n).astype(np.int64)
    return d


# ================================================================ NumPy by hand ===
def _conv_fwd(x, w, b, pad):
    """Stride-1 2-D convolution by im2col, columns laid out (c*kh*kw, n*oh*ow) so the copy
    runs along image rows; returns y and the columns for the backward."""
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    oh, ow = h - kh + 1, wd - kw + 1
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))   # n c oh ow kh kw
    cols = np.ascontiguousarray(win.transpose(1, 4, 5, 0, 2, 3)).reshape(c * kh * kw, n * oh * ow)
    y = w.reshape(f, -1) @ cols
    if b is not None:
        y += b[:, None]
    return y.reshape(f, n, oh, ow).transpose(1, 0, 2, 3), cols


def _conv_bwd(g, cols, w, xshape, pad, need_dx=True):
    n, c, h, wd = xshape
    f, _, kh, kw = w.shape
    oh, ow = g.shape[2:]
    gt = np.ascontiguousarray(g.transpose(1, 0, 2, 3)).reshape(f, -1)
    dw = (gt @ cols.T).reshape(w.shape)
    db = gt.sum(1)
    if not need_dx:
        return None, dw, db
    dcols = (w.reshape(f, -1).T @ gt).reshape(c, kh, kw, n, oh, ow)
    dxp = np.zeros((n, c, h + 2 * pad, wd + 2 * pad), dtype=g.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i:i + oh, j:j + ow] += dcols[:, i, j].transpose(1, 0, 2, 3)
    return dxp[:, :, pad:pad + h, pad:pad + wd], dw, db


def _pool_fwd(x):
    n, c, h, w = x.shape
    win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    arg = win.argmax(-1)
    return np.take_along_axis(win, arg[..., None], -1)[..., 0], arg


def _pool_bwd(g, arg, xshape):
    n, c, h, w = xshape
    win = (arg[..., None] == np.arange(4)) * g[..., None]
    return win.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(xshape)


def _ce(z, y):
    zs = z - z.max(1, keepdims=True)
    lse = np.log(np.exp(zs).sum(1, keepdims=True))
    logp = zs - lse
    n = z.shape[0]
    loss = -logp[np.arange(n), y].mean()
    dz = np.exp(logp)
    dz[np.arange(n), y] -= 1
    return loss, dz / n


def _bn_fwd(x, g, b):
    mu = x.mean((0, 2, 3), keepdims=True)
    xc = x - mu
    var = (xc * xc).mean((0, 2, 3), keepdims=True)
    rstd = 1.0 / np.sqrt(var + BN_EPS)
    xh = xc * rstd
    return xh * g.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1), (xh, rstd)


def _bn_bwd(gy, cache, g):
    xh, rstd = cache
    gb = gy.sum((0, 2, 3))
    gg = (gy * xh).sum((0, 2, 3))
    m = gy.shape[0] * gy.shape[2] * gy.shape[3]
    gx = (g.reshape(1, -1, 1, 1) * rstd) * (gy - (gb / m).reshape(1, -1, 1, 1)
                                            - xh * (gg / m).reshape(1, -1, 1, 1))
    return gx, gg, gb


def lenet_by_hand(d):
    x, y = d["x"], d["y"]
    h1, cols1 = _conv_fwd(x, d["c1w"], d["c1b"], 2)
    r1 = np.maximum(h1, 0)
    p1, a1 = _pool_fwd(r1)
    h2, cols2 = _conv_fwd(p1, d["c2w"], d["c2b"], 0)
    r2 = np.maximum(h2, 0)
    p2, a2 = _pool_fwd(r2)
    flat = p2.reshape(len(x), -1)
    z1 = flat @ d["f1w"].T + d["f1b"]
    a_1 = np.maximum(z1, 0)
    z2 = a_1 @ d["f2w"].T + d["f2b"]
    a_2 = np.maximum(z2, 0)
    z3 = a_2 @ d["f3w"].T + d["f3b"]
    loss, dz3 = _ce(z3, y)
    out = {"loss": float(loss), "f3w": dz3.T @ a_2, "f3b": dz3.sum(0)}
    dz2 = (dz3 @ d["f3w"]) * (z2 > 0)
    out["f2w"], out["f2b"] = dz2.T @ a_1, dz2.sum(0)
    dz1 = (dz2 @ d["f2w"]) * (z1 > 0)
    out["f1w"], out["f1b"] = dz1.T @ flat, dz1.sum(0)
    dp2 = (dz1 @ d["f1w"]).reshape(p2.shape)
    dh2 = _pool_bwd(dp2, a2, r2.shape) * (h2 > 0)
    dp1, out["c2w"], out["c2b"] = _conv_bwd(dh2, cols2, d["c2w"], p1.shape, 0)
    dh1 = _pool_bwd(dp1, a1, r1.shape) * (h1 > 0)
    _, out["c1w"], out["c1b"] = _conv_bwd(dh1, cols1, d["c1w"], x.shape, 2, need_dx=False)
    return out


def block_by_hand(d):
    x, y = d["x"], d["y"]
    h1, cols1 = _conv_fwd(x, d["w1"], None, 1)
    n1, c1 = _bn_fwd(h1, d["g1"], d["b1"])
    r1 = np.maximum(n1, 0)
    h2, cols2 = _conv_fwd(r1, d["w2"], None, 1)
    n2, c2 = _bn_fwd(h2, d["g2"], d["b2"])
    s = n2 + x
    r2 = np.maximum(s, 0)
    hw = r2.shape[2] * r2.shape[3]
    gp = r2.mean((2, 3))
    z = gp @ d["fw"].T + d["fb"]
    loss, dz = _ce(z, y)
    out = {"loss": float(loss), "fw": dz.T @ gp, "fb": dz.sum(0)}
    dgp = dz @ d["fw"]
    ds = np.broadcast_to((dgp / hw)[:, :, None, None], r2.shape) * (s > 0)
    dh2, out["g2"], out["b2"] = _bn_bwd(ds, c2, d["g2"])
    dr1, out["w2"], _ = _conv_bwd(dh2, cols2, d["w2"], r1.shape, 1)
    dh1, out["g1"], out["b1"] = _bn_bwd(dr1 * (n1 > 0), c1, d["g1"])
    _, out["w1"], _ = _conv_bwd(dh1, cols1, d["w1"], x.shape, 1, need_dx=False)
    return out


def by_hand(case, d):
    return lenet_by_hand(d) if case == "W6" else block_by_hand(d)


def reference(case, d):
    """float64 loss and gradients."""
    d64 = {k: (v.astype(np.float64) if v.dtype.kind == "f" else v) for k, v in d.items()}
    return by_hand(case, d64)


def finite_difference_check(case, eps=1e-6, n_probe=3, seed=0):
    """Max relative error of the hand-written float64 gradients against central finite
    differences at a few random entries of every parameter (tiny sizes)."""
    d = {k: (v.astype(np.float64) if v.dtype.kind == "f" else v)
         for k, v in make_data(case, quick=True, batch=2).items()}
    g = by_hand(case, d)
    rng = np.random.default_rng(seed)
    worst = 0.0
    for name in param_names(case):
        for _ in range(n_probe):
            i = tuple(rng.integers(0, s) for s in d[name].shape)
            old = d[name][i]
            d[name][i] = old + eps
            lp = by_hand(case, d)["loss"]
            d[name][i] = old - eps
            lm = by_hand(case, d)["loss"]
            d[name][i] = old
            fd = (lp - lm) / (2 * eps)
            worst = max(worst, abs(fd - g[name][i]) / max(1e-3, abs(fd)))
    return worst


# ================================================================ peers (children) ===
def agjit_loss(mx, case, quick):
    nd = mx.nd
    if case == "W6":
        def loss_fn(x, y, c1w, c1b, c2w, c2b, f1w, f1b, f2w, f2b, f3w, f3b):
            h = nd.relu(nd.Convolution(x, c1w, c1b, kernel=(5, 5), pad=(2, 2), num_filter=6))
            h = nd.Pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="max")
            h = nd.relu(nd.Convolution(h, c2w, c2b, kernel=(5, 5), num_filter=16))
            h = nd.Pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="max")
            h = nd.relu(nd.FullyConnected(h, f1w, f1b, num_hidden=120))
            h = nd.relu(nd.FullyConnected(h, f2w, f2b, num_hidden=84))
            z = nd.FullyConnected(h, f3w, f3b, num_hidden=10)
            return -nd.mean(nd.pick(nd.log_softmax(z, axis=1), y, axis=1))
        return loss_fn
    c = sizes(case, quick)["ch"]

    def loss_fn(x, y, w1, g1, b1, w2, g2, b2, fw, fb, mm1, mv1, mm2, mv2):
        h = nd.Convolution(x, w1, kernel=(3, 3), pad=(1, 1), num_filter=c, no_bias=True)
        h = nd.relu(nd.BatchNorm(h, g1, b1, mm1, mv1, fix_gamma=False, eps=BN_EPS))
        h = nd.Convolution(h, w2, kernel=(3, 3), pad=(1, 1), num_filter=c, no_bias=True)
        h = nd.BatchNorm(h, g2, b2, mm2, mv2, fix_gamma=False, eps=BN_EPS)
        h = nd.relu(h + x)
        h = nd.Pooling(h, kernel=(1, 1), global_pool=True, pool_type="avg")
        z = nd.FullyConnected(h, fw, fb, num_hidden=10)
        return -nd.mean(nd.pick(nd.log_softmax(z, axis=1), y, axis=1))
    return loss_fn


def mx_style_case(mx, case, d, quick, jit=False):
    """(step, fetch) for agjit or real MXNet: the same mx.nd code."""
    nd, ag = mx.nd, mx.autograd
    names = param_names(case)
    params = [nd.array(d[k]) for k in names]
    for p in params:
        p.attach_grad()
    args = [nd.array(d["x"]), nd.array(d["y"].astype(np.float32))] + params
    if case == "W7":
        c = d["g1"].shape[0]
        args += [nd.zeros((c,)), nd.ones((c,)), nd.zeros((c,)), nd.ones((c,))]
    fn = agjit_loss(mx, case, quick)
    if jit:
        fn = mx.jit(fn)
    st = {}

    def step():
        with ag.record():
            loss = fn(*args)
        loss.backward()
        params[0].grad.wait_to_read()
        st["loss"] = loss

    def fetch():
        out = {"loss": float(st["loss"].asnumpy().reshape(-1)[0])}
        for k, p in zip(names, params):
            out[k] = p.grad.asnumpy()
        return out
    return step, fetch


def torch_case(case, d, quick):
    import torch
    F = torch.nn.functional
    names = param_names(case)
    params = [torch.tensor(d[k], requires_grad=True) for k in names]
    P = dict(zip(names, params))
    x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"])
    if case == "W6":
        def loss_fn():
            h = F.max_pool2d(torch.relu(F.conv2d(x, P["c1w"], P["c1b"], padding=2)), 2)
            h = F.max_pool2d(torch.relu(F.conv2d(h, P["c2w"], P["c2b"])), 2)
            h = torch.relu(F.linear(h.flatten(1), P["f1w"], P["f1b"]))
            h = torch.relu(F.linear(h, P["f2w"], P["f2b"]))
            return F.cross_entropy(F.linear(h, P["f3w"], P["f3b"]), y)
    else:
        c = d["g1"].shape[0]
        stats = [torch.zeros(c), torch.ones(c), torch.zeros(c), torch.ones(c)]

        def loss_fn():
            h = F.conv2d(x, P["w1"], padding=1)
            h = torch.relu(F.batch_norm(h, stats[0], stats[1], P["g1"], P["b1"], True, 0.1, BN_EPS))
            h = F.conv2d(h, P["w2"], padding=1)
            h = F.batch_norm(h, stats[2], stats[3], P["g2"], P["b2"], True, 0.1, BN_EPS)
            h = torch.relu(h + x).mean((2, 3))
            return F.cross_entropy(F.linear(h, P["fw"], P["fb"]), y)
    st = {}

    def step():
        for p in params:
            p.grad = None
        loss = loss_fn()
        loss.backward()
        st["loss"] = loss

    def fetch():
        out = {"loss": float(st["loss"].item())}
        for k, p in P.items():
            out[k] = p.grad.numpy().copy()
        return out
    return step, fetch


def numpy_case(case, d, quick):
    st = {}

    def step():
        st["out"] = by_hand(case, d)
    return step, lambda: st["out"]


def time_step(step, repeats, warmup, target_s, settle=None):
    """``settle``: called once after the first step (agjit eager: wait for the compiled
    kernels its first call queued, agjit.eager_kernels); its wall time is reported as
    ``settle_s``."""
    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    settle_s = 0.0
    if settle is not None:
        t0 = time.perf_counter()
        settle()
        settle_s = time.perf_counter() - t0
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
    ms = [s * 1e3 for s in samples]
    return {"first_call_s": first, "settle_s": settle_s, "median_ms": statistics.median(ms), "min_ms": min(ms),
            "cpu_median_ms": statistics.median(cpu) * 1e3, "repeats": repeats, "inner": inner}


def blas_info():
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join("%s %s %s threads=%s" % (i.get("internal_api"), i.get("version"),
                                              i.get("architecture") or "", i.get("num_threads"))
                     for i in threadpoolctl.threadpool_info())


def child(args):
    data = dict(np.load(args.data))
    ref = dict(np.load(args.ref))
    case, peer = args.case, args.child
    info = {"python": sys.executable}
    settle = None
    if peer in ("agjit_eager", "agjit_jit"):
        import agjit as mx
        info["agjit"] = getattr(mx, "__version__", "?")
        step, fetch = mx_style_case(mx, case, data, args.quick, jit=peer == "agjit_jit")
        if peer == "agjit_eager" and not args.quick:     # (a smoke run does not wait)
            from agjit import eager_kernels
            settle = lambda: eager_kernels.wait(args.timeout)    # noqa: E731
    elif peer == "mxnet":
        import mxnet as mx
        info["mxnet"] = mx.__version__
        step, fetch = mx_style_case(mx, case, data, args.quick)
    elif peer == "torch_eager":
        import torch
        if os.environ.get("OMP_NUM_THREADS"):
            torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        step, fetch = torch_case(case, data, args.quick)
    else:
        step, fetch = numpy_case(case, data, args.quick)
    res = time_step(step, args.repeats, args.warmup, args.target_ms / 1e3, settle)
    if peer == "agjit_eager":
        from agjit import eager_kernels
        res["eager_kernels"] = eager_kernels.state()
    got = fetch()
    errs = {}
    for k, v in ref.items():
        r = np.asarray(v, dtype=np.float64)
        gv = np.asarray(got[k], dtype=np.float64).reshape(r.shape)
        errs[k] = float(np.max(np.abs(gv - r)) / max(np.max(np.abs(r)), 1e-12))
    res.update(status="ok", max_rel_err=max(errs.values()), errs=errs,
               check_ok=max(errs.values()) <= CHECK_TOL, info=info, blas=blas_info())
    with open(args.result, "w") as f:
        json.dump(res, f)


# ======================================================================= driver ===
def peer_python(peer):
    """Interpreter for a peer, or None when it is not installed."""
    def imports(py, mod):
        try:
            return subprocess.run([py, "-c", "import " + mod], capture_output=True,
                                  timeout=120).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            return False
    if peer in ("agjit_eager", "agjit_jit", "numpy"):
        return sys.executable
    if peer == "torch_eager":
        cands = [sys.executable, os.environ.get("AGJIT_TORCH_PYTHON"), "/work/peers-venv/bin/python"]
        mod = "torch"
    else:
        cands = [os.environ.get("AGJIT_MXNET_PYTHON"), "/work/mxenv/bin/python"]
        mod = "mxnet"
    for py in cands:
        if py and os.path.exists(py) and imports(py, mod):
            return py
    return None


def run_peer(peer, case, args, tmp, data_path, ref_path):
    py = peer_python(peer)
    if py is None:
        return {"status": "not installed"}
    out = os.path.join(tmp, "%s_%s.json" % (peer, case))
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if args.threads:
        for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
            env[v] = str(args.threads)
    if peer == "mxnet":
        env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        env["PYTHONPATH"] = ""            # never let agjit shadow the real package
    cmd = [py, os.path.abspath(__file__), "--child", peer, "--case", case, "--data", data_path,
           "--ref", ref_path, "--result", out, "--repeats", str(args.repeats),
           "--warmup", str(args.warmup), "--target-ms", str(args.target_ms)]
    if args.quick:
        cmd.append("--quick")
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout after %d s" % args.timeout}
    if p.returncode != 0 or not os.path.exists(out):
        tail = (p.stdout + p.stderr).strip().splitlines()[-3:]
        return {"status": "failed", "error": " | ".join(tail)}
    with open(out) as f:
        return json.load(f)


def fmt_ms(v):
    return "%.3g" % v if v < 100 else "%.0f" % v


def report(results, cases, peers, key="median_ms"):
    """Markdown table of ``key`` (median wall ms, or process CPU ms) per step, with the ratio
    to the fastest external peer and the first-call time."""
    lines = ["| workload | " + " | ".join(peers) + " |", "|---|" + "---:|" * len(peers)]
    for case in cases:
        row = results[case]
        ext = [row[p][key] for p in EXTERNAL if p in row and row[p].get("status") == "ok"]
        best = min(ext) if ext else None
        cells = []
        for p in peers:
            r = row.get(p, {})
            if r.get("status") != "ok":
                cells.append(r.get("status", "-"))
                continue
            c = "%s ms" % fmt_ms(r[key])
            if best:
                c += " (%.2fx)" % (r[key] / best)
            c += ", first %.2f s" % r["first_call_s"]
            if not r["check_ok"]:
                c += " ✗ err %.1e" % r["max_rel_err"]
            cells.append(c)
        lines.append("| %s | %s |" % (case, " | ".join(cells)))
    return "\n".join(lines)


def driver(args):
    cases = [c for c in args.only.split(",") if c]
    peers = [p for p in args.peers.split(",") if p]
    for c in cases:
        if c not in CASES:
            sys.exit("unknown case %s (known: %s)" % (c, ", ".join(CASES)))
    for p in peers:
        if p not in PEERS:
            sys.exit("unknown peer %s (known: %s)" % (p, ", ".join(PEERS)))
    print("# CNN training steps (W6 LeNet-5, W7 ResNet basic block)%s" % (" -- quick" if args.quick else ""))
    print("machine: %s, %d cores, Python %s, NumPy %s" % (platform.machine(), os.cpu_count() or 0,
                                                         platform.python_version(), np.__version__))
    print("BLAS: %s; threads per peer: %s" % (blas_info(), args.threads or "library default"))
    results = {}
    with tempfile.TemporaryDirectory(prefix="cnn_step_") as tmp:
        for case in cases:
            d = make_data(case, args.quick)
            data_path = os.path.join(tmp, case + "_data.npz")
            ref_path = os.path.join(tmp, case + "_ref.npz")
            np.savez(data_path, **d)
            ref = reference(case, d)
            np.savez(ref_path, **{k: np.asarray(v) for k, v in ref.items()})
            results[case] = {}
            for peer in peers:
                r = run_peer(peer, case, args, tmp, data_path, ref_path)
                results[case][peer] = r
                msg = ("%.3f ms median (CPU %.3f ms), first %.2f s%s, max rel err %.1e"
                       % (r["median_ms"], r["cpu_median_ms"], r["first_call_s"],
                          ", compiled kernels ready %.2f s later" % r["settle_s"]
                          if r.get("settle_s") else "", r["max_rel_err"])
                       if r.get("status") == "ok" else r.get("status") + (": " + r["error"] if r.get("error") else ""))
                print("  %s %-12s %s" % (case, peer, msg), flush=True)
    table = report(results, cases, peers)
    print("\n## Median ms per training step (ratio to the fastest of torch_eager/mxnet; "
          "first call)\n")
    print(table)
    cpu_table = report(results, cases, peers, key="cpu_median_ms")
    print("\n## Process CPU ms per step (all threads of the peer's process; with --threads 1 "
          "the measure least disturbed by other load)\n")
    print(cpu_table)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "cnn_results.json"), "w") as f:
            json.dump({"results": results, "blas": blas_info(), "quick": args.quick,
                       "threads": args.threads}, f, indent=1)
        with open(os.path.join(args.out, "cnn_results.md"), "w") as f:
            f.write("Median wall ms per step\n\n" + table + "\n\nProcess CPU ms per step\n\n"
                    + cpu_table + "\n")
    bad = [(c, p) for c in cases for p, r in results[c].items()
           if r.get("status") == "ok" and not r["check_ok"]]
    return 1 if bad else 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="W6,W7")
    ap.add_argument("--peers", default=",".join(PEERS))
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--target-ms", type=float, default=200.0)
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--threads", type=int, default=0,
                    help="BLAS/OpenMP/torch threads of every peer (0: each library's default; "
                         "MXNet then gets OMP_NUM_THREADS = cores)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--child", default=None)
    ap.add_argument("--case", default=None)
    ap.add_argument("--data", default=None)
    ap.add_argument("--ref", default=None)
    ap.add_argument("--result", default=None)
    args = ap.parse_args(argv)
    if args.child:
        child(args)
        return 0
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
