"""The ``agjit demo``: recording, compiled training, export and reload in one run.

Run with ``agjit demo`` (or ``python -m agjit demo``, ``python -m agjit.demo``)::

    agjit demo [--epochs N] [--batch-size B] [--out DIR] [--quick] [--seed S]

1. the seed example ``y = x*x + 1`` with its gradient and graph JSON;
2. a recorded two-layer MLP: its gradients and the node table of the recorded graph;
3. an MLP (64 -> 128 -> relu -> 10) trained on scikit-learn's bundled 8x8 digits
   (standardised features, 25% held out, fixed seed) with compiled replay: ``mx.jit`` of the
   loss inside ``autograd.record()``, ``backward()`` running the compiled backward kernel and
   the fused compiled SGD update of ``mx.Trainer``; a tqdm bar shows loss and accuracy;
4. the trained predictor is exported as an MXNet checkpoint (``mx.model.export_recorded``),
   reloaded (``mx.model.Model.load``) and its predictions compared with the in-memory model;
5. eager vs compiled time per training step (median of a few hundred steps each).

Exit status 0 when the held-out accuracy is at least 95% and the reloaded model matches;
1 otherwise.  Needs scikit-learn and tqdm (``pip install agjit[demo]``).
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

import agjit as mx

TARGET_ACCURACY = 0.95
RELOAD_TOL = 1e-5


# ---------------------------------------------------------------------------------------
# 1-2: recording
# ---------------------------------------------------------------------------------------
def seed_example():
    print("== 1. seed example: y = x * x + 1 ==")
    x = mx.nd.array([1, 2, 3, 4])
    x.attach_grad()
    with mx.autograd.record():
        y = x * x + 1
    sym = mx.autograd.get_symbol(y)
    y.backward()
    print("y      =", y.asnumpy())
    print("dy/dx  =", x.grad.asnumpy())
    print("graph JSON:", json.dumps(json.loads(sym.tojson())["nodes"]))


def mlp_example():
    print("\n== 2. recorded two-layer MLP (FullyConnected -> relu -> FullyConnected -> "
          "softmax cross-entropy) ==")
    rs = np.random.RandomState(0)
    x = mx.nd.array(rs.randn(8, 5))
    label = mx.nd.array(rs.randint(0, 3, size=8))
    w1, b1 = mx.nd.array(rs.randn(16, 5) * 0.3), mx.nd.zeros((16,))
    w2, b2 = mx.nd.array(rs.randn(3, 16) * 0.3), mx.nd.zeros((3,))
    params = {"w1": w1, "b1": b1, "w2": w2, "b2": b2}
    for p in params.values():
        p.attach_grad()
    with mx.autograd.record():
        h = mx.nd.relu(mx.nd.FullyConnected(x, w1, b1, num_hidden=16))
        out = mx.nd.FullyConnected(h, w2, b2, num_hidden=3)
        loss = mx.nd.softmax_cross_entropy(out, label) / 8
    sym = mx.autograd.get_symbol(loss)
    loss.backward()
    print("loss = %.6f" % float(loss.asscalar()))
    for name, p in params.items():
        g = p.grad.asnumpy()
        print("d loss / d %-2s shape %-8s sum|g| = %.6f" % (name, g.shape, float(np.abs(g).sum())))
    print("%-10s %-22s %s" % ("node", "op", "inputs"))
    for n in json.loads(sym.tojson())["nodes"]:
        print("%-10s %-22s %s" % (n["name"], n["op"], [e[0] for e in n["inputs"]]))


# ---------------------------------------------------------------------------------------
# 3-5: digits
# ---------------------------------------------------------------------------------------
def load_data(seed):
    """Standardised float32 digits, split 75/25 (stratified, fixed seed)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = digits.data.astype(np.float32)
    y = digits.target.astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=seed,
                                              stratify=y)
    mean = x_tr.mean(axis=0)
    std = x_tr.std(axis=0)
    std[std == 0] = 1.0                   # constant (always blank) pixels
    return (x_tr - mean) / std, y_tr, (x_te - mean) / std, y_te


class MLP:
    """Parameters of a 64 -> hidden -> relu -> 10 network (named as MXNet names them)."""

    def __init__(self, n_in, hidden, n_out):
        init = mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2)
        self.hidden, self.n_out = hidden, n_out
        self.params = {
            "fc1_weight": mx.nd.zeros((hidden, n_in)), "fc1_bias": mx.nd.zeros((hidden,)),
            "fc2_weight": mx.nd.zeros((n_out, hidden)), "fc2_bias": mx.nd.zeros((n_out,)),
        }
        for name, p in self.params.items():
            init(name, p)
            p.attach_grad()

    def logits(self, x):
        p = self.params
        h = mx.nd.relu(mx.nd.FullyConnected(x, p["fc1_weight"], p["fc1_bias"],
                                            num_hidden=self.hidden))
        return mx.nd.FullyConnected(h, p["fc2_weight"], p["fc2_bias"], num_hidden=self.n_out)

    def loss(self, x, label):
        """Summed softmax cross-entropy of a batch (the Trainer divides by the batch size),
        and the logits for the accuracy metric."""
        out = self.logits(x)
        return mx.nd.softmax_cross_entropy(out, label), out

    def predict(self, x):
        return mx.nd.softmax(self.logits(x))


def make_trainer(model, lr):
    return mx.Trainer(model.params, "sgd", {"learning_rate": lr, "momentum": 0.9, "wd": 1e-4})


def accuracy(probs, y):
    return float((np.asarray(probs).argmax(axis=1) == y).mean())


def train(model, data, epochs, batch_size, lr, progress=True):
    """Compiled training: returns (seconds, history of (epoch, mean loss, train acc,
    test acc))."""
    from tqdm import tqdm
    x_tr, y_tr, x_te, y_te = data
    step = mx.jit(model.loss)              # traced once, then replayed from compiled kernels
    trainer = make_trainer(model, lr)
    it = mx.io.NDArrayIter(x_tr, y_tr, batch_size=batch_size, shuffle=True,
                           last_batch_handle="discard")
    metric = mx.metric.Accuracy()
    n_batches = len(x_tr) // batch_size
    x_test = mx.nd.array(x_te)
    history = []
    first_step = None
    bar = tqdm(total=epochs * n_batches, desc="training", unit="step", disable=not progress,
               mininterval=0.2, ncols=100)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        it.reset()
        metric.reset()
        total = 0.0
        for batch in it:
            x, label = batch.data[0], batch.label[0]
            with mx.autograd.record():
                loss, out = step(x, label)
            loss.backward()                # the compiled backward kernel
            trainer.step(batch_size)       # the fused compiled SGD update
            metric.update([label], [out])
            total += float(loss.asscalar())
            if first_step is None:         # trace + lowering + Numba compile (or cache load)
                first_step = time.perf_counter() - t0
            bar.update(1)
        test_acc = accuracy(model.predict(x_test).asnumpy(), y_te)
        history.append((epoch + 1, total / (n_batches * batch_size), metric.get()[1], test_acc))
        bar.set_postfix_str("loss=%.4f acc=%.3f test_acc=%.3f" % history[-1][1:])
    seconds = time.perf_counter() - t0
    bar.close()
    return seconds, first_step, history, step


def export_and_reload(model, x_te, out_dir):
    """Record the predictor, export it as a checkpoint, reload it and compare."""
    prefix = os.path.join(out_dir, "digits-mlp")
    x = mx.nd.array(x_te)
    with mx.autograd.record(train_mode=False):
        probs = model.predict(x)
    sym, _args, _aux = mx.model.export_recorded(probs, prefix, 0, params=model.params,
                                                inputs={"data": x})
    for f in ("%s-symbol.json" % prefix, "%s-0000.params" % prefix):
        print("wrote %s (%d bytes)" % (f, os.path.getsize(f)))
    print("graph: arguments %s, outputs %s" % (sym.list_arguments(), sym.list_outputs()))
    loaded = mx.model.Model.load(prefix, 0)
    print("reloaded:", loaded)
    again = loaded.predict(data=x_te).asnumpy()
    diff = float(np.abs(again - probs.asnumpy()).max())
    return prefix, again, diff


def time_steps(model_factory, data, batch_size, lr, n_steps, compiled):
    """Median seconds of one full training step (record + forward + backward + update)."""
    x_tr, y_tr = data[0], data[1]
    model = model_factory()
    fn = mx.jit(model.loss) if compiled else model.loss
    trainer = make_trainer(model, lr)
    rs = np.random.RandomState(1)
    batches = []
    for _ in range(16):
        idx = rs.choice(len(x_tr), batch_size, replace=False)
        batches.append((mx.nd.array(x_tr[idx]), mx.nd.array(y_tr[idx])))
    times = []
    for k in range(n_steps + 10):          # 10 warm-up steps (the first compiled one traces)
        x, label = batches[k % len(batches)]
        t = time.perf_counter()
        with mx.autograd.record():
            loss, _out = fn(x, label)
        loss.backward()
        trainer.step(batch_size)
        loss.wait_to_read()
        times.append(time.perf_counter() - t)
        if compiled and k == 0:
            fn.wait_compiled()             # time the compiled tier (agjit.compiler.tier)
    return statistics.median(times[10:])


def digits_example(args):
    print("\n== 3. training an MLP on the digits data with compiled replay ==")
    mx.random.seed(args.seed)
    np.random.seed(args.seed)              # NDArrayIter shuffles with NumPy's global generator
    data = load_data(args.seed)
    x_tr, y_tr, x_te, y_te = data
    print("digits: %d train / %d test samples, %d features, 10 classes"
          % (len(x_tr), len(x_te), x_tr.shape[1]))

    def factory():
        return MLP(x_tr.shape[1], args.hidden, 10)

    model = factory()
    seconds, first_step, history, step = train(model, data, args.epochs, args.batch_size, args.lr,
                                   progress=not args.no_progress)
    for epoch, loss, tr_acc, te_acc in history:
        if epoch == 1 or epoch == len(history) or epoch % 5 == 0:
            print("epoch %3d  loss %.4f  train acc %.4f  test acc %.4f"
                  % (epoch, loss, tr_acc, te_acc))
    info = step.cache_info()
    print("training time: %.2f s for %d epochs, of which %.2f s in the first step (trace, "
          "lowering and Numba compile or kernel-cache load: %d kernels compiled, %d loaded "
          "from the disk cache); %d traces, %d compiled replays"
          % (seconds, args.epochs, first_step, info.compiles, info.disk_hits, info.traces,
             info.hits))
    probs = model.predict(mx.nd.array(x_te)).asnumpy()
    acc = accuracy(probs, y_te)
    print("held-out accuracy: %.4f (target >= %.2f)" % (acc, TARGET_ACCURACY))

    print("\n== 4. export and reload ==")
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        prefix, again, diff = export_and_reload(model, x_te, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="agjit-demo-") as d:
            prefix, again, diff = export_and_reload(model, x_te, d)
    reload_ok = diff <= RELOAD_TOL and accuracy(again, y_te) == acc
    print("reloaded predictions: max abs difference %.3g, accuracy %.4f -> %s"
          % (diff, accuracy(again, y_te), "OK" if reload_ok else "MISMATCH"))
    if args.out:
        print("inspect it with: agjit inspect %s-symbol.json --shape data=1,%d"
              % (prefix, x_tr.shape[1]))

    print("\n== 5. eager vs compiled training step (batch %d, median of %d steps) =="
          % (args.batch_size, args.timing_steps))
    eager = time_steps(factory, data, args.batch_size, args.lr, args.timing_steps, False)
    compiled = time_steps(factory, data, args.batch_size, args.lr, args.timing_steps, True)
    print("eager:    %.3f ms/step" % (eager * 1e3))
    print("compiled: %.3f ms/step (%.1fx faster)" % (compiled * 1e3, eager / compiled))

    print("\nsummary: accuracy %.4f, training %.2f s, reload max abs diff %.3g, "
          "eager %.3f ms/step, compiled %.3f ms/step"
          % (acc, seconds, diff, eager * 1e3, compiled * 1e3))
    ok = True
    if acc < TARGET_ACCURACY:
        print("FAILED: held-out accuracy %.4f < %.2f" % (acc, TARGET_ACCURACY), file=sys.stderr)
        ok = False
    if not reload_ok:
        print("FAILED: the reloaded model's predictions differ (max abs diff %.3g)" % diff,
              file=sys.stderr)
        ok = False
    return ok


def build_parser():
    p = argparse.ArgumentParser(prog="agjit demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default 20; 10 with --quick)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--hidden", type=int, default=128, help="hidden units")
    p.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (momentum 0.9)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR",
                   help="write the exported checkpoint here (default: a temporary directory)")
    p.add_argument("--quick", action="store_true",
                   help="fewer epochs and timing steps (for tests)")
    p.add_argument("--timing-steps", type=int, default=None,
                   help="steps timed per mode (default 300; 100 with --quick)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv=None):
    """Run the demo; returns the exit status (0: accuracy and reload check passed)."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.epochs is None:
        args.epochs = 10 if args.quick else 20
    if args.timing_steps is None:
        args.timing_steps = 100 if args.quick else 300
    if args.epochs < 1 or args.batch_size < 1 or args.timing_steps < 1 or args.hidden < 1:
        print("agjit demo: --epochs, --batch-size, --hidden and --timing-steps must be "
              "positive", file=sys.stderr)
        return 2
    try:
        import sklearn  # noqa: F401
        import tqdm  # noqa: F401
    except ImportError as e:
        print("agjit demo: needs scikit-learn and tqdm (pip install 'agjit[demo]'): %s" % e,
              file=sys.stderr)
        return 1
    seed_example()
    mlp_example()
    return 0 if digits_example(args) else 1


if __name__ == "__main__":
    sys.exit(main())
