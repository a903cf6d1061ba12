"""Cost of a Gluon training step against the same math written with ``mx.jit`` directly.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/gluon_step.py \
        [--steps 200] [--steps-lenet 20] [--rounds 7] [--batch 32] [--only mlp,lenet] \
        [--variants jit,gluon_hybrid,...] [--clock wall|process] [--json FILE]

One step = ``with autograd.record(): loss = L(net(x), y)``, ``loss.backward()``,
``trainer.step(batch)`` on a fixed batch of scikit-learn's 8x8 digits (standardised), for

* **mlp**: 64 -> Dense(128, relu) -> Dense(10) (the MLP of agjit/demo.py and the notebooks);
* **lenet**: a LeNet for 1x8x8 images: Conv(16, 3x3, pad 1, relu) - MaxPool 2 -
  Conv(32, 3x3, pad 1, relu) - MaxPool 2 - Flatten - Dense(64, relu) - Dense(10).

Variants (same initial weights, same SGD with momentum 0.9 and wd 1e-4):

* ``jit``           -- the reference: ``mx.jit(loss_fn)`` of the mx.nd ops (FullyConnected,
                       Convolution, Pooling, relu, log_softmax/pick) + ``mx.Trainer``;
* ``jit_two_calls`` -- the same with two jitted functions, logits and loss of the logits: the
                       structure of a hybridized network followed by a hybridized loss (two
                       compiled tape nodes per step instead of one);
* ``gluon_hybrid``  -- ``net.hybridize()`` and ``loss.hybridize()`` + ``gluon.Trainer`` (the
                       loss applied to the network's deferred output runs as one composed
                       jitted call in step mode: agjit.gluon.block note *composition*);
* ``gluon_hybrid_net`` -- only the network hybridized (the loss runs eagerly);
* ``gluon_eager``   -- nothing hybridized (every layer's ops recorded one by one).

Before timing, three steps of every variant from the same weights must give the losses and
weights of the ``jit`` variant (else exit 1; a variant that raises is reported as FAILED and
not timed).  Kernels compile into a temporary cache unless ``AGJIT_CACHE_DIR`` is set.
Timing: the variants take turns in ``--rounds`` rounds of ``--steps`` (``--steps-lenet``)
steps each (so a load change on this shared machine hits all of them), every step timed alone
(``--clock wall``: perf_counter, ``process``: the process's CPU time) with the cyclic GC off;
reported: the median and the
minimum per step over all rounds, and each median over the ``jit`` median (target <= 1.10
for ``gluon_hybrid``, from the issue).  The BLAS in use is printed (threadpoolctl).
"""
import os
os.environ.setdefault("AGJIT_TIERED", "0")   # compiled speed: today's blocking compile (agjit.compiler.tier)
import sys

_BAD_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in _BAD_ENV):     # they slow OpenBLAS here; see benchmarks/README
    for _v in _BAD_ENV:
        os.environ.pop(_v, None)
    os.execv(sys.executable, [sys.executable] + sys.argv)

import tempfile  # noqa: E402

# kernels compile into a temporary cache unless AGJIT_CACHE_DIR says where (never ~/.cache)
if not os.environ.get("AGJIT_CACHE_DIR"):
    _TMP_CACHE = tempfile.mkdtemp(prefix="agjit-gluon-bench-")
    os.environ["AGJIT_CACHE_DIR"] = os.path.join(_TMP_CACHE, "agjit")
    os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(_TMP_CACHE, "numba"))

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import agjit as mx  # noqa: E402
from agjit import gluon  # noqa: E402
from agjit.gluon import nn  # noqa: E402

VARIANTS = ("jit", "jit_two_calls", "gluon_hybrid", "gluon_hybrid_net", "gluon_eager")
OPT = {"learning_rate": 0.05, "momentum": 0.9, "wd": 1e-4}
TARGET = 1.10


def digits_batch(batch, image):
    from sklearn.datasets import load_digits
    d = load_digits()
    x = d.data.astype(np.float32)
    x = (x - x.mean(0)) / np.where(x.std(0) == 0, 1, x.std(0))
    x = x[:batch].reshape((batch, 1, 8, 8) if image else (batch, 64))
    return mx.nd.array(x), mx.nd.array(d.target[:batch].astype(np.float32))


# ---------------------------------------------------------------------------------------
# the two models, as Gluon blocks and as a function of explicit weights
# ---------------------------------------------------------------------------------------
def gluon_net(model):
    net = nn.HybridSequential()
    with net.name_scope():
        if model == "mlp":
            net.add(nn.Dense(128, activation="relu", in_units=64), nn.Dense(10, in_units=128))
        else:
            net.add(nn.Conv2D(16, 3, padding=1, activation="relu", in_channels=1),
                    nn.MaxPool2D(2),
                    nn.Conv2D(32, 3, padding=1, activation="relu", in_channels=16),
                    nn.MaxPool2D(2), nn.Flatten(),
                    nn.Dense(64, activation="relu", in_units=128), nn.Dense(10, in_units=64))
    return net


def jit_loss_fn(model, w, split=False):
    """The same math with the mx.nd ops on the arrays of ``w`` (a list in the order of the
    Gluon net's collect_params()).  ``split``: (logits_fn, loss_of_logits_fn) instead."""
    if split:
        full = jit_loss_fn(model, w)
        return full.logits, lambda out, label: -mx.nd.pick(mx.nd.log_softmax(out), label)
    fc, relu = mx.nd.FullyConnected, mx.nd.relu
    if model == "mlp":
        w1, b1, w2, b2 = w

        def logits(x):
            return fc(relu(fc(x, w1, b1, num_hidden=128)), w2, b2, num_hidden=10)
    else:
        c1, cb1, c2, cb2, w1, b1, w2, b2 = w

        def logits(x):
            h = relu(mx.nd.Convolution(x, c1, cb1, kernel=(3, 3), pad=(1, 1), num_filter=16))
            h = mx.nd.Pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="max")
            h = relu(mx.nd.Convolution(h, c2, cb2, kernel=(3, 3), pad=(1, 1), num_filter=32))
            h = mx.nd.Pooling(h, kernel=(2, 2), stride=(2, 2), pool_type="max")
            h = relu(fc(h, w1, b1, num_hidden=64))
            return fc(h, w2, b2, num_hidden=10)

    def loss_fn(x, label):
        return -mx.nd.pick(mx.nd.log_softmax(logits(x)), label)
    loss_fn.logits = logits
    return loss_fn


def initial_weights(model, seed=0):
    net = gluon_net(model)
    mx.random.seed(seed)
    net.initialize(mx.init.Xavier(magnitude=2))
    return [p.data().asnumpy().copy() for p in net.collect_params().values()]


def make_step(model, variant, weights, batch):
    """(step function, loss-of-last-step getter, current weights getter)."""
    x, y = digits_batch(batch, model == "lenet")
    state = {}
    if variant in ("jit", "jit_two_calls"):
        w = [mx.nd.array(a) for a in weights]
        for a in w:
            a.attach_grad()
        if variant == "jit":
            f = mx.jit(jit_loss_fn(model, w))
        else:
            net_fn, loss_of = (mx.jit(g) for g in jit_loss_fn(model, w, split=True))

            def f(x, y):
                return loss_of(net_fn(x), y)
        trainer = mx.Trainer(w, "sgd", dict(OPT))

        def step():
            with mx.autograd.record():
                loss = f(x, y)
            loss.backward()
            trainer.step(batch)
            state["loss"] = loss
        return step, state, lambda: [a.asnumpy() for a in w]
    net = gluon_net(model)
    net.initialize()
    params = list(net.collect_params().values())
    for p, a in zip(params, weights):
        p.set_data(mx.nd.array(a))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    if variant in ("gluon_hybrid", "gluon_hybrid_net"):
        net.hybridize()
    if variant == "gluon_hybrid":
        loss_fn.hybridize()
    trainer = gluon.Trainer(net.collect_params(), "sgd", dict(OPT))

    def step():
        with mx.autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(batch)
        state["loss"] = loss
    return step, state, lambda: [p.data().asnumpy() for p in params]


def check_same_math(model, batch, variants):
    """Three steps of every variant from the same weights: losses and weights as ``jit``'s.
    Returns ({variant: max relative error}, {variant: error message of a variant that fails})."""
    weights = initial_weights(model)
    ref = None
    worst, failed = {}, {}
    for v in variants:
        try:
            step, state, current = make_step(model, v, weights, batch)
            losses = []
            for _ in range(3):
                step()
                losses.append(state["loss"].asnumpy().copy())
        except Exception as e:          # reported in the table, the other variants still run
            if v == "jit":
                raise
            failed[v] = "%s: %s" % (type(e).__name__, str(e).splitlines()[0][:200])
            continue
        got = (losses, current())
        if ref is None:
            ref = got
            continue
        err = max(float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-6))
                  for a, b in zip(got[0] + got[1], ref[0] + ref[1]))
        worst[v] = err
    return worst, failed


def time_variants(model, batch, variants, steps, rounds, failed, warmup=30,
                  clock=time.perf_counter):
    weights = initial_weights(model)
    runs = {v: make_step(model, v, weights, batch)[0] for v in variants}
    for v in list(variants):                   # traces, compiles, warms caches
        try:
            for _ in range(warmup):
                runs[v]()
        except Exception as e:
            if v == "jit":
                raise
            failed[v] = "in warm-up: %s: %s" % (type(e).__name__, str(e).splitlines()[0][:200])
            variants = [u for u in variants if u != v]
    samples = {v: [] for v in variants}
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            for v in variants:
                step, out = runs[v], samples[v]
                for _ in range(steps):
                    t = clock()
                    step()
                    out.append(clock() - t)
    finally:
        gc.enable()
    return {v: {"median_us": 1e6 * statistics.median(s), "min_us": 1e6 * min(s),
                "steps": len(s)} for v, s in samples.items()}


def blas_lines():
    try:
        import threadpoolctl
    except ImportError:
        return ["threadpoolctl not installed (pip install -e '.[bench]')"]
    return ["%s %s %s (%s, %d threads)" % (d.get("internal_api"), d.get("version"),
                                          d.get("architecture"), d.get("threading_layer"),
                                          d.get("num_threads", 0))
            for d in threadpoolctl.threadpool_info()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=200,
                    help="mlp: steps per variant per round")
    ap.add_argument("--steps-lenet", type=int, default=20,
                    help="lenet: steps per variant per round (its steps take ~100x longer)")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--only", default="mlp,lenet")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json", default=None, help="write the results here as JSON")
    ap.add_argument("--clock", choices=("wall", "process"), default="wall",
                    help="time each step by the wall clock (perf_counter) or by the process's "
                         "CPU time (process_time: steadier on a loaded machine; pin the BLAS "
                         "to one thread, OPENBLAS_NUM_THREADS=1, so it counts one core)")
    args = ap.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    assert variants[0] == "jit", "the first variant is the reference: jit"
    models = [m for m in args.only.split(",") if m]
    # touching the BLAS once so threadpoolctl sees it
    np.dot(np.ones((4, 4), np.float32), np.ones((4, 4), np.float32))
    blas = blas_lines()
    print("env: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset; OMP_NUM_THREADS=%s; clock %s; load %s"
          % (os.environ.get("OMP_NUM_THREADS", "(unset)"), args.clock,
             " ".join("%.2f" % v for v in os.getloadavg())))
    for line in blas:
        print("BLAS: " + line)
    results = {"blas": blas, "batch": args.batch, "steps": args.steps, "rounds": args.rounds,
               "clock": args.clock, "models": {}}
    ok = True
    for model in models:
        errs, failed = check_same_math(model, args.batch, variants)
        bad = {v: e for v, e in errs.items() if not e <= 1e-4}
        ok &= not bad and not failed
        runnable = [v for v in variants if v not in failed]
        steps = args.steps if model == "mlp" else args.steps_lenet
        warmup = 30 if model == "mlp" else 5
        t = time_variants(model, args.batch, runnable, steps, args.rounds, failed, warmup=warmup,
                          clock=time.process_time if args.clock == "process"
                          else time.perf_counter)
        ok &= not failed
        ref = t["jit"]["median_us"]
        for v in t:
            t[v]["ratio"] = t[v]["median_us"] / ref
            t[v]["max_rel_err_vs_jit"] = errs.get(v, 0.0)
        for v, msg in failed.items():
            t[v] = {"error": msg}
        results["models"][model] = t
        print("\n## %s, batch %d (%d steps per variant, median / min us per step)"
              % (model, args.batch, steps * args.rounds))
        print("%-17s %10s %10s %8s %12s" % ("variant", "median", "min", "x jit", "err vs jit"))
        for v in variants:
            r = t[v]
            if "error" in r:
                print("%-17s FAILED: %s" % (v, r["error"]))
                continue
            mark = ""
            if v == "gluon_hybrid":
                mark = "  (target <= %.2f: %s)" % (TARGET, "met" if r["ratio"] <= TARGET
                                                   else "NOT met")
            print("%-17s %10.1f %10.1f %8.3f %12.1e%s" % (v, r["median_us"], r["min_us"],
                                                         r["ratio"], r["max_rel_err_vs_jit"],
                                                         mark))
        if bad:
            print("NUMBERS DIFFER from the jit variant: %s" % bad)
    load = os.getloadavg()
    results["loadavg_end"] = list(load)
    print("\nload average at the end: %s" % " ".join("%.2f" % v for v in load))
    if args.json:
        from agjit.ndarray.utils import atomic_write
        atomic_write(args.json, [json.dumps(results, indent=1) + "\n"], mode="w")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
