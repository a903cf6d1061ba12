"""Workloads, data, hand-written NumPy gradients and the peers of the agjit benchmark suite.

The workloads and their data follow the shared peer harness (../shared/bench/peers.py) so
the numbers here can be set beside its RESULTS.md:

* W1 -- one MLP training step without the update: forward, softmax cross-entropy averaged
  over the batch, backward for every weight and bias.  ``tiny`` 32x20->32->3, ``small``
  64x784->256->10, ``medium`` 256x784->1024->1024->10 (ReLU between layers).
* W2 -- ``f = sum(tanh(x*a + b) * sigmoid(x) + x*x)`` and its gradients for x, a, b on
  1e3 / 1e5 / 1e7 float32 elements.
* W3 -- a 20-op chain on shape (4,): five times ``y = sin(tanh(y*p + x))`` then ``sum``;
  gradients for x and p.

Data: ``numpy.random.default_rng(1234)`` drawn in the same order as the peer harness
(float32; W1 labels int64, W as (din, dout)).  A peer returns a :class:`Case`: ``step()``
runs one synchronous forward+backward, ``fetch()`` returns ``{"loss": float, name: array}``
with the grads in the layouts above (W1: ``W0, b0, W1, b1, ...``; W2: ``x, a, b``; W3:
``x, p``).  Nothing here times anything; see run.py.
"""
import os

import numpy as np

os.environ.setdefault("AGJIT_TIERED", "0")   # compiled speed: today's blocking compile (agjit.compiler.tier)

SEED = 1234
W1_SIZES = {
    "tiny": (32, (20, 32, 3)),
    "small": (64, (784, 256, 10)),
    "medium": (256, (784, 1024, 1024, 10)),
}
W2_SIZES = {"1e3": 1_000, "1e5": 100_000, "1e7": 10_000_000}
W3_N = 4
W3_BLOCKS = 5           # 4 ops per block (mul, add, tanh, sin) -> 20 ops, then sum

CASES = [f"W1/{k}" for k in W1_SIZES] + [f"W2/{k}" for k in W2_SIZES] + ["W3/chain20"]
QUICK_SKIP = {"W1/medium", "W2/1e7"}
CHECK_TOL = 2e-3        # max |got - ref| / max |ref| per output, vs float64


# --------------------------------------------------------------------------- data ---
def make_data(case):
    """Deterministic float32 inputs of a case (identical to the peer harness)."""
    wl, size = case.split("/")
    rng = np.random.default_rng(SEED)
    if wl == "W1":
        batch, dims = W1_SIZES[size]
        return w1_data(rng, batch, dims)
    if wl == "W2":
        n = W2_SIZES[size]
        x = rng.standard_normal(n, dtype=np.float32)
        a = rng.standard_normal(n, dtype=np.float32)
        b = rng.standard_normal(n, dtype=np.float32)
        return {"x": x, "a": a, "b": b, "n": n}
    if wl == "W3":
        x = rng.standard_normal(W3_N, dtype=np.float32)
        p = rng.standard_normal(W3_N, dtype=np.float32) * np.float32(0.5) + np.float32(1.0)
        return {"x": x, "p": p}
    raise KeyError(case)


def w1_data(rng, batch, dims):
    x = rng.standard_normal((batch, dims[0]), dtype=np.float32)
    y = rng.integers(0, dims[-1], size=batch).astype(np.int64)
    params = []
    for din, dout in zip(dims[:-1], dims[1:]):
        W = rng.standard_normal((din, dout), dtype=np.float32) * np.float32(np.sqrt(2.0 / din))
        b = rng.standard_normal(dout, dtype=np.float32) * np.float32(0.1)
        params.append((W, b))
    return {"x": x, "y": y, "params": params, "dims": dims, "batch": batch}


def grad_names(case, d):
    wl = case.split("/")[0]
    if wl == "W1":
        return [f"{k}{i}" for i in range(len(d["params"])) for k in ("W", "b")]
    return ["x", "a", "b"] if wl == "W2" else ["x", "p"]


# ------------------------------------------------------- hand-written gradients ---
def mlp_by_hand(x, y, params):
    """Forward + softmax cross-entropy (mean over the batch) + backward, by hand.

    Works in the dtype of the inputs (float32 for the timed peer, float64 for the
    reference).  Returns ``{"loss", "W0", "b0", ...}`` with W as (din, dout)."""
    n = x.shape[0]
    acts = [x]                       # input of each layer (post-ReLU)
    h = x
    last = len(params) - 1
    for i, (W, b) in enumerate(params):
        z = h @ W
        z += b
        if i < last:
            np.maximum(z, 0, out=z)
        acts.append(z)
        h = z
    rows = np.arange(n)
    zmax = h.max(axis=1, keepdims=True)
    p = h - zmax
    np.exp(p, out=p)
    denom = p.sum(axis=1, keepdims=True)
    # loss_i = log(sum_j exp(z_ij)) - z_i,y_i
    loss = float(np.mean(np.log(denom[:, 0]) + zmax[:, 0] - h[rows, y]))
    # d loss / d z = (softmax(z) - onehot(y)) / n
    p /= denom
    p[rows, y] -= 1
    p *= 1.0 / n
    dz = p
    out = {"loss": loss}
    for i in range(last, -1, -1):
        hin = acts[i]
        out[f"W{i}"] = hin.T @ dz
        out[f"b{i}"] = dz.sum(axis=0)
        if i:
            dz = dz @ params[i][0].T
            dz *= hin > 0            # ReLU: hin is the post-ReLU activation
    return out


def w2_by_hand(x, a, b):
    """f = sum(tanh(x*a+b)*sigmoid(x) + x*x) and df/dx, df/da, df/db."""
    t = x * a
    t += b
    np.tanh(t, out=t)                 # t = tanh(u)
    s = np.negative(x)
    np.exp(s, out=s)
    s += 1
    np.reciprocal(s, out=s)           # s = sigmoid(x)
    ts = t * s
    loss = float(ts.sum() + np.dot(x, x))
    gb = np.multiply(t, t, out=t)     # t is not needed after this
    np.subtract(1, gb, out=gb)
    gb *= s                           # (1 - tanh^2) * sigmoid = df/du
    ga = gb * x
    gx = gb * a
    np.subtract(1, s, out=s)
    ts *= s                           # tanh * sigmoid * (1 - sigmoid)
    gx += ts
    gx += x
    gx += x
    return {"loss": loss, "x": gx, "a": ga, "b": gb}


def chain_by_hand(x, p):
    """Five blocks y = sin(tanh(y*p + x)), loss = sum(y); grads for x and p."""
    y = x
    saved = []
    for _ in range(W3_BLOCKS):
        t = np.tanh(y * p + x)
        saved.append((y, t))
        y = np.sin(t)
    loss = float(y.sum())
    g = np.ones_like(x)
    gx = np.zeros_like(x)
    gp = np.zeros_like(p)
    for yin, t in reversed(saved):
        g = g * np.cos(t)
        g *= 1 - t * t                # now d loss / d (y*p + x)
        gx += g
        gp += g * yin
        g *= p                        # d loss / d yin
    gx += g                           # y0 is x itself
    return {"loss": loss, "x": gx, "p": gp}


def reference(case, d):
    """The float64 reference: the hand-written gradients on float64 copies."""
    f = lambda v: np.asarray(v, dtype=np.float64)  # noqa: E731
    wl = case.split("/")[0]
    if wl == "W1":
        return mlp_by_hand(f(d["x"]), d["y"], [(f(W), f(b)) for W, b in d["params"]])
    if wl == "W2":
        return w2_by_hand(f(d["x"]), f(d["a"]), f(d["b"]))
    return chain_by_hand(f(d["x"]), f(d["p"]))


def compare(got, ref):
    """Per output: max |got - ref| / max |ref| (inf when missing or misshapen)."""
    errs = {}
    for k, r in ref.items():
        if k not in got:
            errs[k] = float("inf")
            continue
        g = np.asarray(got[k], dtype=np.float64)
        r = np.asarray(r, dtype=np.float64)
        if g.shape != r.shape:
            errs[k] = float("inf")
            continue
        scale = max(float(np.max(np.abs(r))), 1e-12)
        errs[k] = float(np.max(np.abs(g - r)) / scale)
    return errs


def finite_difference_check(eps=1e-6, n_probe=6, seed=0):
    """Check the hand-written gradients against central differences in float64 on small
    instances of the three workloads.  Returns {workload: max relative error}."""
    rng = np.random.default_rng(seed)

    def probe(fn, args, grads, names):
        worst = 0.0
        for name, k in zip(names, range(len(args))):
            arr = args[k]
            for _ in range(n_probe):
                idx = tuple(int(rng.integers(0, s)) for s in arr.shape)
                old = arr[idx]
                arr[idx] = old + eps
                fp = fn(*args)["loss"]
                arr[idx] = old - eps
                fm = fn(*args)["loss"]
                arr[idx] = old
                num = (fp - fm) / (2 * eps)
                ana = grads[name][idx]
                worst = max(worst, abs(num - ana) / max(1.0, abs(num)))
        return worst

    out = {}
    d = w1_data(rng, 5, (4, 6, 3))
    flat = [np.asarray(v, np.float64) for W, b in d["params"] for v in (W, b)]

    def w1(*fl):
        return mlp_by_hand(np.asarray(d["x"], np.float64), d["y"],
                           [(fl[2 * i], fl[2 * i + 1]) for i in range(len(fl) // 2)])
    out["W1"] = probe(w1, flat, w1(*flat), ["W0", "b0", "W1", "b1"])
    xs = [rng.standard_normal(7) for _ in range(3)]
    out["W2"] = probe(w2_by_hand, xs, w2_by_hand(*xs), ["x", "a", "b"])
    xp = [rng.standard_normal(4), rng.standard_normal(4) * 0.5 + 1]
    out["W3"] = probe(chain_by_hand, xp, chain_by_hand(*xp), ["x", "p"])
    return out


# ---------------------------------------------------------------------- peers ---
class Case:
    """One workload instance of one peer: ``step()`` (synchronous fwd+bwd), ``fetch()``
    (loss and grads as NumPy, or None for floors), ``info`` (merged into the result)."""

    def __init__(self, step, fetch=None, info=None):
        self.step = step
        self.fetch = fetch
        self.info = info or {}


class Peer:
    name = "?"
    desc = ""
    kind = "peer"          # "project" | "reference" | "floor" | "peer"
    modules = ()           # ImportError on any of these -> the peer is skipped
    checked = True         # gradients are compared with the float64 reference

    def setup(self):
        return {}

    def cases(self):
        return list(CASES)

    def make(self, case, d):
        return getattr(self, case.split("/")[0].lower())(d)

    def w1(self, d):
        raise NotImplementedError

    def w2(self, d):
        raise NotImplementedError

    def w3(self, d):
        raise NotImplementedError


def _holder_case(fn, args):
    st = {}

    def step():
        st["r"] = fn(*args)
    return Case(step, lambda: st["r"])


class NumpyByHand(Peer):
    name = "numpy"
    desc = "NumPy, hand-written gradients (in-place where it helps)"
    kind = "reference"

    def setup(self):
        return {"numpy": np.__version__}

    def w1(self, d):
        return _holder_case(mlp_by_hand, (d["x"], d["y"], d["params"]))

    def w2(self, d):
        return _holder_case(w2_by_hand, (d["x"], d["a"], d["b"]))

    def w3(self, d):
        return _holder_case(chain_by_hand, (d["x"], d["p"]))


class CopyFloor(Peer):
    name = "copy_floor"
    desc = "np.copyto of the 24 bytes/element a fused W2 fwd+bwd must move (read x,a,b; write 3 grads)"
    kind = "floor"
    checked = False

    def cases(self):
        return [c for c in CASES if c.startswith("W2/")]

    def w2(self, d):
        src = np.concatenate([d["x"], d["a"], d["b"]])
        dst = np.empty_like(src)

        def step():
            np.copyto(dst, src)
        return Case(step, None, {"bytes_moved": 2 * src.nbytes})


# --- agjit -------------------------------------------------------------------------
def agjit_w1_fn(mx, n_layers, hidden):
    """The MLP loss written against agjit's MXNet API (FullyConnected: W is (dout, din))."""
    nd = mx.nd

    def loss_fn(x, y, *flat):
        h = x
        for i in range(n_layers):
            h = nd.FullyConnected(h, flat[2 * i], flat[2 * i + 1], num_hidden=hidden[i])
            if i < n_layers - 1:
                h = nd.relu(h)
        return -nd.mean(nd.pick(nd.log_softmax(h, axis=1), y, axis=1))
    return loss_fn


def agjit_w2_fn(mx):
    nd = mx.nd

    def loss_fn(x, a, b):
        return nd.sum(nd.tanh(x * a + b) * nd.sigmoid(x) + x * x)
    return loss_fn


def agjit_w3_fn(mx):
    nd = mx.nd

    def loss_fn(x, p):
        y = x
        for _ in range(W3_BLOCKS):
            y = nd.sin(nd.tanh(y * p + x))
        return nd.sum(y)
    return loss_fn


class AgjitEager(Peer):
    name = "agjit_eager"
    desc = "agjit eager: mx.nd ops under autograd.record(), loss.backward()"
    kind = "project"
    modules = ("agjit",)
    use_jit = False

    def setup(self):
        import agjit
        self.mx = agjit
        info = {"agjit": agjit.__version__}
        if self.use_jit:
            import numba
            info["numba"] = numba.__version__
        return info

    def wrap(self, fn):
        return self.mx.jit(fn) if self.use_jit else fn

    def _case(self, fn, args, leaves, names, transpose=()):
        """Case for ``loss = fn(*args)`` under record(); grads of ``leaves`` by name."""
        ag = self.mx.autograd
        f = self.wrap(fn)
        st = {}
        for t in leaves:
            t.attach_grad()

        def step():
            with ag.record():
                loss = f(*args)
            loss.backward()
            st["loss"] = loss

        def fetch():
            out = {"loss": float(st["loss"].asnumpy().reshape(-1)[0])}
            for nm, t in zip(names, leaves):
                g = t.grad.asnumpy()
                out[nm] = g.T.copy() if nm in transpose else g.copy()
            return out
        case = Case(step, fetch)
        case.fn = f
        case.args = args
        case.loss = st
        return case

    def w1(self, d):
        nd = self.mx.nd
        x = nd.array(d["x"])
        y = nd.array(d["y"].astype(np.float32))
        flat, names = [], []
        for i, (W, b) in enumerate(d["params"]):
            flat += [nd.array(np.ascontiguousarray(W.T)), nd.array(b)]
            names += [f"W{i}", f"b{i}"]
        hidden = [W.shape[1] for W, _ in d["params"]]
        fn = agjit_w1_fn(self.mx, len(hidden), hidden)
        return self._case(fn, [x, y] + flat, flat, names,
                          transpose={n for n in names if n[0] == "W"})

    def w2(self, d):
        nd = self.mx.nd
        xs = [nd.array(d[k]) for k in ("x", "a", "b")]
        return self._case(agjit_w2_fn(self.mx), xs, xs, ["x", "a", "b"])

    def w3(self, d):
        nd = self.mx.nd
        xs = [nd.array(d[k]) for k in ("x", "p")]
        return self._case(agjit_w3_fn(self.mx), xs, xs, ["x", "p"])


class AgjitJit(AgjitEager):
    name = "agjit_jit"
    desc = "agjit.jit(loss_fn) called under autograd.record() (one tape node), loss.backward()"
    use_jit = True


# --- optional peers ------------------------------------------------------------------
class TorchEager(Peer):
    name = "torch_eager"
    desc = "PyTorch eager autograd"
    modules = ("torch",)

    def setup(self):
        import torch
        self.torch = torch
        return {"torch": torch.__version__, "num_threads": torch.get_num_threads()}

    def _case(self, loss_fn, inputs, leaves, names):
        st = {}

        def step():
            for t in leaves:
                t.grad = None
            loss = loss_fn(*inputs)
            loss.backward()
            st["loss"] = loss

        def fetch():
            out = {"loss": float(st["loss"].item())}
            for nm, t in zip(names, leaves):
                out[nm] = t.grad.numpy().copy()
            return out
        return Case(step, fetch)

    def w1(self, d):
        torch = self.torch
        F = torch.nn.functional
        L = len(d["params"])
        flat, names = [], []
        for i, (W, b) in enumerate(d["params"]):
            flat += [torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)]
            names += [f"W{i}", f"b{i}"]

        def loss_fn(x, y, *fl):
            h = x
            for i in range(L):
                h = torch.addmm(fl[2 * i + 1], h, fl[2 * i])
                if i < L - 1:
                    h = torch.relu(h)
            return F.cross_entropy(h, y)
        args = [torch.from_numpy(d["x"]), torch.from_numpy(d["y"])] + flat
        return self._case(loss_fn, args, flat, names)

    def w2(self, d):
        torch = self.torch
        xs = [torch.tensor(d[k], requires_grad=True) for k in ("x", "a", "b")]

        def loss_fn(x, a, b):
            return (torch.tanh(x * a + b) * torch.sigmoid(x) + x * x).sum()
        return self._case(loss_fn, xs, xs, ["x", "a", "b"])

    def w3(self, d):
        torch = self.torch
        xs = [torch.tensor(d[k], requires_grad=True) for k in ("x", "p")]

        def loss_fn(x, p):
            y = x
            for _ in range(W3_BLOCKS):
                y = torch.sin(torch.tanh(y * p + x))
            return y.sum()
        return self._case(loss_fn, xs, xs, ["x", "p"])


class JaxJit(Peer):
    name = "jax_jit"
    desc = "jax.jit(jax.value_and_grad(loss)) on CPU"
    modules = ("jax",)

    def setup(self):
        import jax
        self.jax = jax
        return {"jax": jax.__version__}

    def _case(self, loss_fn, args, argnums, names):
        jax = self.jax
        f = jax.jit(jax.value_and_grad(loss_fn, argnums=argnums))
        args = [jax.device_put(a) for a in args]
        st = {}

        def step():
            r = f(*args)
            jax.block_until_ready(r)
            st["r"] = r

        def fetch():
            loss, grads = st["r"]
            out = {"loss": float(loss)}
            for nm, g in zip(names, grads):
                out[nm] = np.asarray(g)
            return out
        return Case(step, fetch)

    def w1(self, d):
        jnp = self.jax.numpy
        L = len(d["params"])
        flat, names = [], []
        for i, (W, b) in enumerate(d["params"]):
            flat += [W, b]
            names += [f"W{i}", f"b{i}"]

        def loss_fn(*fl_xy):
            fl, x, y = fl_xy[:-2], fl_xy[-2], fl_xy[-1]
            h = x
            for i in range(L):
                h = h @ fl[2 * i] + fl[2 * i + 1]
                if i < L - 1:
                    h = jnp.maximum(h, 0)
            logp = self.jax.nn.log_softmax(h, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
        return self._case(loss_fn, flat + [d["x"], d["y"]], tuple(range(len(flat))), names)

    def w2(self, d):
        jnp = self.jax.numpy

        def loss_fn(x, a, b):
            return jnp.sum(jnp.tanh(x * a + b) * self.jax.nn.sigmoid(x) + x * x)
        return self._case(loss_fn, [d["x"], d["a"], d["b"]], (0, 1, 2), ["x", "a", "b"])

    def w3(self, d):
        jnp = self.jax.numpy

        def loss_fn(x, p):
            y = x
            for _ in range(W3_BLOCKS):
                y = jnp.sin(jnp.tanh(y * p + x))
            return jnp.sum(y)
        return self._case(loss_fn, [d["x"], d["p"]], (0, 1), ["x", "p"])


PEERS = [AgjitJit, AgjitEager, NumpyByHand, CopyFloor, TorchEager, JaxJit]
PEER_BY_NAME = {p.name: p for p in PEERS}
