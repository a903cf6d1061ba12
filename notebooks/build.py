"""Write the notebooks of this folder from the cell sources below and execute them in place
(nbclient), so they are committed with their outputs::

    .venv/bin/python notebooks/build.py            # all of them
    .venv/bin/python notebooks/build.py tour       # one

Edit the cells here, not in the .ipynb files.  tests/test_notebooks.py executes every
notebook of this folder.
"""
import os
import sys
import time

import nbformat
from nbclient import NotebookClient

HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL = {"display_name": "Python 3", "language": "python", "name": "python3"}


def md(text):
    return nbformat.v4.new_markdown_cell(text.strip("\n"))


def code(text):
    return nbformat.v4.new_code_cell(text.strip("\n"))


# ---------------------------------------------------------------------------------------
TOUR = [
    md("""
# A tour of agjit's autograd recording

`import agjit as mx` gives MXNet 1.x's imperative API on NumPy: `mx.nd` arrays, and
`mx.autograd` recording the operations run inside `record()` so that `backward()` can
differentiate them.  The recorded history is also an MXNet **Symbol**: it can be printed,
saved as MXNet graph JSON and drawn.
"""),
    code("""
%matplotlib inline
import json
import numpy as np
import matplotlib.pyplot as plt
import agjit as mx
"""),
    md("""
## record and backward

`attach_grad()` marks an array as a variable; operations inside `autograd.record()` are put
on the tape, and `backward()` writes d y / d x into `x.grad`.
"""),
    code("""
x = mx.nd.array([1, 2, 3, 4])
x.attach_grad()
with mx.autograd.record():
    y = x * x + 1
y.backward()
print("y     =", y.asnumpy())
print("dy/dx =", x.grad.asnumpy())
"""),
    md("""
## pause, train_mode and predict_mode

Recording and the training flag are two separate thread-local switches.  `record()` turns
both on (`record(train_mode=False)` only the first); `pause()` stops recording inside a
recorded block (for bookkeeping that must not be differentiated); `train_mode()` and
`predict_mode()` change only the training flag, which decides how `Dropout` and
`BatchNorm` behave.
"""),
    code("""
print("outside:           recording=%s training=%s"
      % (mx.autograd.is_recording(), mx.autograd.is_training()))
with mx.autograd.record():
    print("record():          recording=%s training=%s"
          % (mx.autograd.is_recording(), mx.autograd.is_training()))
    with mx.autograd.pause():
        print("  pause():         recording=%s training=%s"
              % (mx.autograd.is_recording(), mx.autograd.is_training()))
    with mx.autograd.predict_mode():
        print("  predict_mode():  recording=%s training=%s"
              % (mx.autograd.is_recording(), mx.autograd.is_training()))
with mx.autograd.record(train_mode=False):
    print("record(False):     recording=%s training=%s"
          % (mx.autograd.is_recording(), mx.autograd.is_training()))
with mx.autograd.train_mode():
    print("train_mode():      recording=%s training=%s"
          % (mx.autograd.is_recording(), mx.autograd.is_training()))
"""),
    code("""
mx.random.seed(0)
ones = mx.nd.ones((2, 8))
with mx.autograd.record():                    # training: Dropout zeroes and rescales
    print(mx.nd.Dropout(ones, p=0.5).asnumpy())
    with mx.autograd.predict_mode():          # predicting: Dropout is the identity
        print(mx.nd.Dropout(ones, p=0.5).asnumpy())
"""),
    code("""
w = mx.nd.array([2.0, -1.0]); w.attach_grad()
with mx.autograd.record():
    z = w * 3
    with mx.autograd.pause():
        scale = (z * z).sum()                 # not recorded: a constant for backward
    loss = (z * scale).sum()
loss.backward()
print("scale =", scale.asscalar(), " d loss / d w =", w.grad.asnumpy(),
      "(= 3 * scale, the paused part is not differentiated)")
"""),
    md("""
## The recorded graph as a Symbol

`autograd.get_symbol(y)` returns the history of `y` as a Symbol.  Recorded variables are
named as MXNet names them: `var<k>` for arrays with `attach_grad()`, `null<k>` for other
inputs, `node_<k>` for the operations.
"""),
    code("""
rs = np.random.RandomState(0)
data = mx.nd.array(rs.randn(8, 5))
label = mx.nd.array(rs.randint(0, 3, size=8))
w1, b1 = mx.nd.array(rs.randn(16, 5) * 0.3), mx.nd.zeros((16,))
w2, b2 = mx.nd.array(rs.randn(3, 16) * 0.3), mx.nd.zeros((3,))
for p in (w1, b1, w2, b2):
    p.attach_grad()
with mx.autograd.record():
    h = mx.nd.relu(mx.nd.FullyConnected(data, w1, b1, num_hidden=16))
    out = mx.nd.FullyConnected(h, w2, b2, num_hidden=3)
    loss = mx.nd.softmax_cross_entropy(out, label) / 8
sym = mx.autograd.get_symbol(loss)
print("arguments:", sym.list_arguments())
print("outputs:  ", sym.list_outputs())
"""),
    md("""
`tojson()` writes the graph exactly as MXNet 1.9.1 writes it; `mx.sym.load_json` reads it
back.
"""),
    code("""
text = sym.tojson()
graph = json.loads(text)
for n in graph["nodes"]:
    print("%-8s %-22s attrs=%-18s inputs=%s"
          % (n["name"], n["op"], n.get("attrs", {}), [e[0] for e in n["inputs"]]))
print("heads:", graph["heads"], " mxnet version attr:", graph["attrs"])
again = mx.sym.load_json(text)
print("round trip identical:", again.tojson() == text)
"""),
    md("""
## Shapes and drawing

`infer_shape` propagates the input shapes through the graph; `summary` tabulates it;
`draw` draws it with matplotlib (no Graphviz needed), labelling ops with their output
shapes.
"""),
    code("""
# the generated names depend on how many arrays were recorded before: take them from
# the symbol (they are listed in the order the recording first saw them)
names = sym.list_arguments()
shapes = dict(zip(names, [data.shape, w1.shape, b1.shape, w2.shape, b2.shape, label.shape]))
arg_shapes, out_shapes, aux_shapes = sym.infer_shape(**shapes)
print("output shape:", out_shapes)
print(sym.summary(shape={names[0]: data.shape, names[-1]: label.shape}))
"""),
    code("""
sym.draw(shapes=shapes)          # sizes its figure to the graph; ax=... draws into yours
plt.show()
"""),
    md("""
The same graph is available as a `networkx.DiGraph` and as Graphviz DOT text:
"""),
    code("""
g = sym.to_networkx(shapes=shapes)
print(g.number_of_nodes(), "nodes,", g.number_of_edges(), "edges")
print("\\n".join(sym.to_dot(shapes=shapes).splitlines()[:8]) + "\\n...")
"""),
    md("""
## Backward

`loss.backward()` fills the gradients of every variable.
"""),
    code("""
loss.backward()
for name, p in zip(["w1", "b1", "w2", "b2"], [w1, b1, w2, b2]):
    print("%-2s grad shape %-8s sum|g| = %.6f" % (name, p.grad.shape, np.abs(p.grad.asnumpy()).sum()))
"""),
]

# ---------------------------------------------------------------------------------------
TRAINING = [
    md("""
# Compiled training on the digits data

An MLP (64 → 128 → relu → 10) on scikit-learn's bundled 8×8 digits, trained with
**compiled replay**: `mx.jit(loss_fn)` traces the loss once, lowers it to Numba kernels and
replays them.  Inside `autograd.record()` a jitted call is one tape node, and
`loss.backward()` runs the compiled backward kernel.  `mx.Trainer.step` applies SGD with
momentum to all parameters in one fused compiled update.
"""),
    code("""
%matplotlib inline
import statistics
import time
import numpy as np
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
import agjit as mx
"""),
    md("""
## Data

Standardised features (statistics of the training split), 25% held out, fixed seed.
"""),
    code("""
SEED = 0
digits = load_digits()
X = digits.data.astype(np.float32)
y = digits.target.astype(np.float32)
x_tr, x_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=SEED, stratify=y)
mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
std[std == 0] = 1.0
x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
print(x_tr.shape, x_te.shape)
"""),
    code("""
fig, axes = plt.subplots(1, 8, figsize=(10, 1.6))
for ax, img, t in zip(axes, digits.images, digits.target):
    ax.imshow(img, cmap="gray_r")
    ax.set_title(str(t))
    ax.axis("off")
plt.show()
"""),
    md("""
## Model

Plain NDArrays as parameters, initialised with `mx.init.Xavier`.  The loss function reads
them from the enclosing scope; `mx.jit` captures them *by reference*, so the in-place
updates of the Trainer are seen by every replay.
"""),
    code("""
HIDDEN, BATCH, LR = 128, 32, 0.05

def make_params():
    init = mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2)
    params = {"fc1_weight": mx.nd.zeros((HIDDEN, 64)), "fc1_bias": mx.nd.zeros((HIDDEN,)),
              "fc2_weight": mx.nd.zeros((10, HIDDEN)), "fc2_bias": mx.nd.zeros((10,))}
    for name, p in params.items():
        init(name, p)
        p.attach_grad()
    return params

def make_loss(params):
    def logits(x):
        h = mx.nd.relu(mx.nd.FullyConnected(x, params["fc1_weight"], params["fc1_bias"],
                                            num_hidden=HIDDEN))
        return mx.nd.FullyConnected(h, params["fc2_weight"], params["fc2_bias"], num_hidden=10)

    def loss_fn(x, label):
        out = logits(x)
        return mx.nd.softmax_cross_entropy(out, label), out   # summed loss, and the logits
    return logits, loss_fn

mx.random.seed(SEED)
np.random.seed(SEED)           # NDArrayIter shuffles with NumPy's global generator
params = make_params()
logits, loss_fn = make_loss(params)
step = mx.jit(loss_fn)
trainer = mx.Trainer(params, "sgd", {"learning_rate": LR, "momentum": 0.9, "wd": 1e-4})
"""),
    md("""
## The training loop
"""),
    code("""
EPOCHS = 15
it = mx.io.NDArrayIter(x_tr, y_tr, batch_size=BATCH, shuffle=True, last_batch_handle="discard")
metric = mx.metric.Accuracy()
x_test = mx.nd.array(x_te)
history = {"loss": [], "train_acc": [], "test_acc": []}
t0 = time.perf_counter()
for epoch in range(EPOCHS):
    it.reset(); metric.reset()
    total, n = 0.0, 0
    for batch in it:
        x, label = batch.data[0], batch.label[0]
        with mx.autograd.record():
            loss, out = step(x, label)     # compiled forward (one tape node)
        loss.backward()                    # compiled backward kernel
        trainer.step(BATCH)                # fused compiled SGD update
        metric.update([label], [out])
        total += float(loss.asscalar()); n += BATCH
    test_acc = float((logits(x_test).asnumpy().argmax(1) == y_te).mean())
    history["loss"].append(total / n)
    history["train_acc"].append(metric.get()[1])
    history["test_acc"].append(test_acc)
seconds = time.perf_counter() - t0
print("trained %d epochs in %.2f s; held-out accuracy %.4f"
      % (EPOCHS, seconds, history["test_acc"][-1]))
print(step.cache_info())
print(step.explain())
"""),
    code("""
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.5))
epochs = np.arange(1, EPOCHS + 1)
a1.plot(epochs, history["loss"], "o-")
a1.set_yscale("log"); a1.set_xlabel("epoch"); a1.set_ylabel("mean training loss")
a2.plot(epochs, history["train_acc"], "o-", label="train")
a2.plot(epochs, history["test_acc"], "s-", label="held out")
a2.axhline(0.95, color="gray", ls=":", label="95%")
a2.set_xlabel("epoch"); a2.set_ylabel("accuracy"); a2.legend()
plt.tight_layout(); plt.show()
"""),
    md("""
## What was compiled

`step.source()` is the generated Numba code (forward for training, then backward); each
line names the op and the line of the traced Python code.
"""),
    code("""
print("\\n".join(step.source().splitlines()[:40]))
"""),
    md("""
## Eager vs compiled time per training step

One full step (record, forward, backward, SGD update) for a few batch sizes, median of 150
steps each.  A new batch size retraces the function but reuses the compiled kernels (they
read every size at run time).
"""),
    code("""
def time_step(fn, trainer, batch, n_steps=150, warmup=10):
    rs = np.random.RandomState(1)
    idx = rs.choice(len(x_tr), batch, replace=False)
    x, label = mx.nd.array(x_tr[idx]), mx.nd.array(y_tr[idx])
    times = []
    for k in range(n_steps + warmup):
        t = time.perf_counter()
        with mx.autograd.record():
            loss, _ = fn(x, label)
        loss.backward()
        trainer.step(batch)
        loss.wait_to_read()
        times.append(time.perf_counter() - t)
    return statistics.median(times[warmup:])

batches = [16, 64, 256]
eager_ms, compiled_ms = [], []
for b in batches:
    p = make_params(); _, fn = make_loss(p)
    eager_ms.append(1e3 * time_step(fn, mx.Trainer(p, "sgd", {"learning_rate": LR}), b))
    p = make_params(); _, fn = make_loss(p)
    compiled_ms.append(1e3 * time_step(mx.jit(fn), mx.Trainer(p, "sgd", {"learning_rate": LR}), b))
for b, e, c in zip(batches, eager_ms, compiled_ms):
    print("batch %4d: eager %.3f ms/step, compiled %.3f ms/step (%.1fx)" % (b, e, c, e / c))
"""),
    code("""
pos = np.arange(len(batches))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar(pos - 0.2, eager_ms, 0.4, label="eager")
ax.bar(pos + 0.2, compiled_ms, 0.4, label="compiled (mx.jit)")
ax.set_xticks(pos, [str(b) for b in batches])
ax.set_xlabel("batch size"); ax.set_ylabel("ms per training step (median)")
ax.legend(); plt.tight_layout(); plt.show()
"""),
]

# ---------------------------------------------------------------------------------------
EXPORT = [
    md("""
# Exporting, inspecting and reloading graphs and models

* a recorded computation → MXNet checkpoint (`PREFIX-symbol.json` + `PREFIX-0000.params`)
  with `mx.model.export_recorded`;
* inspecting it: the `agjit inspect` command (here through `agjit.cli.main`),
  `Symbol.summary` and `infer_shape`;
* reloading it: `mx.model.Model.load`, or `mx.model.load_checkpoint` + `Symbol.bind`;
* the **backward graph**: `mx.autograd.get_symbol(loss, backward=True)` and
  `Symbol.gradient`, exported and reloaded like any other graph.
"""),
    code("""
%matplotlib inline
import json, os, tempfile
import numpy as np
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
import agjit as mx
from agjit import cli

workdir = tempfile.mkdtemp(prefix="agjit-export-")
"""),
    md("""
## A small trained model

A softmax-regression-plus-hidden-layer on the digits, trained for a few epochs with a
compiled step (see `training.ipynb` for the details).
"""),
    code("""
digits = load_digits()
X = digits.data.astype(np.float32); y = digits.target.astype(np.float32)
x_tr, x_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
mean, std = x_tr.mean(0), x_tr.std(0); std[std == 0] = 1
x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std

mx.random.seed(0); np.random.seed(0)
init = mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2)
params = {"fc1_weight": mx.nd.zeros((32, 64)), "fc1_bias": mx.nd.zeros((32,)),
          "fc2_weight": mx.nd.zeros((10, 32)), "fc2_bias": mx.nd.zeros((10,))}
for k, p in params.items():
    init(k, p); p.attach_grad()

def predict(x):
    h = mx.nd.relu(mx.nd.FullyConnected(x, params["fc1_weight"], params["fc1_bias"], num_hidden=32))
    return mx.nd.softmax(mx.nd.FullyConnected(h, params["fc2_weight"], params["fc2_bias"], num_hidden=10))

def loss_fn(x, label):
    h = mx.nd.relu(mx.nd.FullyConnected(x, params["fc1_weight"], params["fc1_bias"], num_hidden=32))
    out = mx.nd.FullyConnected(h, params["fc2_weight"], params["fc2_bias"], num_hidden=10)
    return mx.nd.softmax_cross_entropy(out, label)

step = mx.jit(loss_fn)
trainer = mx.Trainer(params, "sgd", {"learning_rate": 0.05, "momentum": 0.9})
it = mx.io.NDArrayIter(x_tr, y_tr, batch_size=32, shuffle=True, last_batch_handle="discard")
for epoch in range(8):
    it.reset()
    for batch in it:
        with mx.autograd.record():
            loss = step(batch.data[0], batch.label[0])
        loss.backward()
        trainer.step(32)
probs = predict(mx.nd.array(x_te)).asnumpy()
print("held-out accuracy: %.4f" % (probs.argmax(1) == y_te).mean())
"""),
    md("""
## Export the recorded predictor

Record the prediction once (in predict mode) and export it.  `params` names the arrays
saved in the `.params` file; `inputs` names the arrays that stay inputs of the graph.
"""),
    code("""
x = mx.nd.array(x_te)
with mx.autograd.record(train_mode=False):
    p = predict(x)
prefix = os.path.join(workdir, "digits")
sym, arg_params, aux_params = mx.model.export_recorded(p, prefix, 0, params=params,
                                                       inputs={"data": x})
print(sorted(os.listdir(workdir)))
print("arguments:", sym.list_arguments())
"""),
    md("""
## Inspect it

The `agjit` command line: `agjit inspect FILE-symbol.json --params FILE-0000.params
--shape data=1,64` (the `.params` file tells the parameters from the inputs) and
`agjit inspect FILE-0000.params`.
"""),
    code("""
rc = cli.main(["inspect", prefix + "-symbol.json", "--params", prefix + "-0000.params",
               "--shape", "data=1,64"])
"""),
    code("""
rc = cli.main(["inspect", prefix + "-0000.params"])
"""),
    code("""
loaded_sym = mx.sym.load(prefix + "-symbol.json")
print(loaded_sym.summary(shape={"data": (1, 64)}))
arg_shapes, out_shapes, aux_shapes = loaded_sym.infer_shape(data=(5, 64))
print(dict(zip(loaded_sym.list_arguments(), arg_shapes)), "->", out_shapes)
"""),
    code("""
path = os.path.join(workdir, "digits.png")
rc = cli.main(["draw", prefix + "-symbol.json", "-o", path, "--shape", "data=1,64"])
%matplotlib inline
# (the draw command switches matplotlib to its file backend; switch back to inline plots)
img = plt.imread(path)
plt.figure(figsize=(6, 6)); plt.imshow(img); plt.axis("off"); plt.show()
"""),
    md("""
## Reload it

`Model.load` binds the graph with its parameters and predicts (in predict mode); the
lower-level route is `load_checkpoint` and `Symbol.bind`.  Both reproduce the in-memory
predictions.
"""),
    code("""
model = mx.model.Model.load(prefix, 0)
print(model)
again = model.predict(data=x_te).asnumpy()
print("Model.load: max abs difference %.3g" % np.abs(again - probs).max())

sym2, args2, aux2 = mx.model.load_checkpoint(prefix, 0)
args2["data"] = mx.nd.array(x_te)
ex = sym2.bind(mx.cpu(), args2, grad_req="null")
out = ex.forward(is_train=False)[0].asnumpy()
print("load_checkpoint + bind: max abs difference %.3g" % np.abs(out - probs).max())
assert np.abs(again - probs).max() <= 1e-6 and np.abs(out - probs).max() <= 1e-6
"""),
    md("""
## The backward graph

`get_symbol(loss, backward=True)` gives the graph that computes the gradients of the
recorded loss w.r.t. its variables: its arguments are the forward inputs it needs plus the
head gradient `<output>_head_grad`, its outputs `<var>_grad`.  It is an ordinary Symbol:
it can be evaluated, saved as graph JSON, reloaded and drawn.
"""),
    code("""
xb, yb = mx.nd.array(x_tr[:16]), mx.nd.array(y_tr[:16])
with mx.autograd.record():
    loss = loss_fn(xb, yb)
bwd = mx.autograd.get_symbol(loss, backward=True)
fwd = mx.autograd.get_symbol(loss)
print("forward arguments: ", fwd.list_arguments())
print("backward arguments:", bwd.list_arguments())
print("backward outputs:  ", bwd.list_outputs())
loss.backward()
"""),
    code("""
# feed the backward graph: forward arguments by position, head gradient = 1
values = dict(zip(fwd.list_arguments(),
                  [xb, params["fc1_weight"], params["fc1_bias"], params["fc2_weight"],
                   params["fc2_bias"], yb]))
head = [a for a in bwd.list_arguments() if a.endswith("_head_grad")][0]
values[head] = mx.nd.ones((1,))
grads = bwd.eval(**{a: values[a] for a in bwd.list_arguments()})
for name, g in zip(["fc1_weight", "fc1_bias", "fc2_weight", "fc2_bias"], grads):
    d = np.abs(g.asnumpy() - params[name].grad.asnumpy()).max()
    print("%-10s shape %-9s max |backward graph - loss.backward()| = %.3g" % (name, g.shape, d))
"""),
    code("""
bwd_file = os.path.join(workdir, "digits-backward-symbol.json")
bwd.save(bwd_file)
bwd2 = mx.sym.load(bwd_file)
print("saved and reloaded identical:", bwd2.tojson() == bwd.tojson())
print(bwd2.summary(shape={a: values[a].shape for a in bwd2.list_arguments()}))
"""),
    md("""
`Symbol.gradient(wrt)` builds the same kind of graph from a symbol written with `mx.sym`:
"""),
    code("""
data = mx.sym.var("data"); label = mx.sym.var("label")
net = mx.sym.FullyConnected(data, num_hidden=10, name="fc")
ce = mx.sym.softmax_cross_entropy(net, label, name="ce")
g = ce.gradient(["fc_weight", "fc_bias"])
print("arguments:", g.list_arguments())
print("outputs:  ", g.list_outputs())
shapes = {"data": (16, 64), "fc_weight": (10, 64), "fc_bias": (10,), "label": (16,),
          "ce_output_head_grad": (1,)}
shapes = {k: v for k, v in shapes.items() if k in g.list_arguments()}
print(g.infer_shape(**shapes)[1])
g.draw(shapes=shapes)
plt.show()
"""),
    code("""
import shutil
shutil.rmtree(workdir)        # the exported files were written to a temporary directory
"""),
]

# ---------------------------------------------------------------------------------------
GLUON = [
    md("""
# A Gluon CNN on the digits, hybridized

The Gluon API of MXNet 1.x on agjit: a `HybridSequential` of convolution, pooling and Dense
layers trained on scikit-learn's bundled 8×8 digits with `gluon.Trainer` and
`SoftmaxCrossEntropyLoss`, the data served by `gluon.data.DataLoader`.
`net.hybridize()` is MXNet's "record once, compile the static graph, replay" — here it
runs on `mx.jit`: the first call traces the network into one graph and compiles it to Numba
kernels, and every later call inside `autograd.record()` is **one** compiled tape node
whose backward is one compiled kernel.  At the end the trained network is exported in
MXNet's format (`-symbol.json` + `.params`, loadable by real MXNet 1.9.1) and reloaded with
`gluon.SymbolBlock.imports`.
"""),
    code("""
%matplotlib inline
import os, shutil, tempfile, time
import numpy as np
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm
import agjit as mx
from agjit import autograd, gluon
from agjit.gluon import nn
"""),
    md("""
## Data

The 1797 images as `(N, 1, 8, 8)` float32, standardised with the training split's mean and
standard deviation; 25% held out (stratified, fixed seed).  `ArrayDataset` + `DataLoader`
shuffle the training set every epoch.
"""),
    code("""
SEED, BATCH = 0, 32
digits = load_digits()
X = digits.images.astype(np.float32)[:, None, :, :]          # (N, 1, 8, 8)
y = digits.target.astype(np.float32)
x_tr, x_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=SEED, stratify=y)
mean, std = x_tr.mean(), x_tr.std()
x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std

mx.random.seed(SEED)
np.random.seed(SEED)                 # the DataLoader's shuffling uses NumPy's generator
train_data = gluon.data.DataLoader(gluon.data.ArrayDataset(x_tr, y_tr), batch_size=BATCH,
                                   shuffle=True, last_batch="discard")
x_test = mx.nd.array(x_te)
print("train", x_tr.shape, "held out", x_te.shape, "batches per epoch", len(train_data))
"""),
    md("""
## The network

Two 3×3 convolutions with relu and 2×2 max pooling (8×8 → 4×4 → 2×2), then two Dense
layers.  Shapes of the first layers' weights are inferred on the first call (deferred
initialisation); the parameter names are MXNet's (`hybridsequential0_conv0_weight`, ...).
"""),
    code("""
net = nn.HybridSequential()
with net.name_scope():
    net.add(nn.Conv2D(8, kernel_size=3, padding=1, activation="relu"),
            nn.MaxPool2D(pool_size=2),
            nn.Conv2D(16, kernel_size=3, padding=1, activation="relu"),
            nn.MaxPool2D(pool_size=2),
            nn.Flatten(),
            nn.Dense(32, activation="relu"),
            nn.Dense(10))
net.initialize(mx.init.Xavier(magnitude=2))
net.hybridize()                      # calls from now on run mx.jit's compiled kernels
loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
trainer = gluon.Trainer(net.collect_params(), "sgd",
                        {"learning_rate": 0.05, "momentum": 0.9, "wd": 1e-4})
print(net)
"""),
    md("""
## Training

The first step traces and compiles (its time is printed separately); the rest replay the
compiled forward and backward kernels, and `trainer.step` is one fused compiled SGD update.
The progress bar shows the running loss and accuracies per epoch.
"""),
    code("""
EPOCHS = 8
metric = mx.metric.Accuracy()
history = {"loss": [], "train_acc": [], "test_acc": []}
first_step = None
t0 = time.perf_counter()
bar = tqdm(range(EPOCHS), desc="epochs", ncols=90)
for epoch in bar:
    metric.reset()
    total, n = 0.0, 0
    for data, label in train_data:
        t = time.perf_counter()
        with autograd.record():
            out = net(data)                  # one compiled tape node
            loss = loss_fn(out, label)
        loss.backward()                      # the compiled backward kernel
        trainer.step(data.shape[0])
        if first_step is None:
            first_step = time.perf_counter() - t
        metric.update([label], [out])
        total += float(loss.sum().asscalar()); n += data.shape[0]
    test_acc = float((net(x_test).asnumpy().argmax(1) == y_te).mean())   # predict mode
    history["loss"].append(total / n)
    history["train_acc"].append(metric.get()[1])
    history["test_acc"].append(test_acc)
    bar.set_postfix(loss="%.4f" % history["loss"][-1], train="%.3f" % history["train_acc"][-1],
                    held_out="%.3f" % test_acc)
bar.close()
seconds = time.perf_counter() - t0
print("first step (trace + compile): %.1f s; %d epochs in %.1f s; held-out accuracy %.4f"
      % (first_step, EPOCHS, seconds, history["test_acc"][-1]))
"""),
    code("""
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.5))
epochs = np.arange(1, EPOCHS + 1)
a1.plot(epochs, history["loss"], "o-")
a1.set_yscale("log"); a1.set_xlabel("epoch"); a1.set_ylabel("mean training loss")
a2.plot(epochs, history["train_acc"], "o-", label="train")
a2.plot(epochs, history["test_acc"], "s-", label="held out")
a2.set_xlabel("epoch"); a2.set_ylabel("accuracy"); a2.legend()
plt.tight_layout(); plt.show()
"""),
    code("""
pred = net(x_test).asnumpy().argmax(1)
wrong = np.flatnonzero(pred != y_te)[:8]
fig, axes = plt.subplots(1, max(len(wrong), 1), figsize=(10, 1.8), squeeze=False)
for ax, k in zip(axes[0], wrong):
    ax.imshow(x_te[k, 0], cmap="gray_r"); ax.set_title("%d (true %d)" % (pred[k], y_te[k]))
for ax in axes[0]:
    ax.axis("off")
plt.suptitle("held-out digits the network gets wrong (%d of %d)" % ((pred != y_te).sum(), len(y_te)))
plt.show()
"""),
    md("""
## Export and reload

`export(path, epoch)` writes the traced graph (`path-symbol.json`, the input named `data`)
and the parameters (`path-0008.params`, keys `arg:<name>` / `aux:<name>`) as MXNet does.
`SymbolBlock.imports` rebuilds a block from the two files; its predictions equal the
trained network's.
"""),
    code("""
workdir = tempfile.mkdtemp(prefix="agjit-gluon-")
prefix = os.path.join(workdir, "digits-cnn")
net.export(prefix, epoch=EPOCHS)
print(sorted(os.listdir(workdir)))
loaded = gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"],
                                   prefix + "-%04d.params" % EPOCHS)
print(loaded)
print("parameters:", list(loaded.collect_params().keys()))
"""),
    code("""
p_net = net(x_test).asnumpy()
p_loaded = loaded(x_test).asnumpy()
diff = np.abs(p_net - p_loaded).max()
print("max |trained - reloaded| = %.3g; same predicted classes: %s"
      % (diff, bool((p_net.argmax(1) == p_loaded.argmax(1)).all())))
assert diff <= 1e-5 and (p_net.argmax(1) == p_loaded.argmax(1)).all()
"""),
    code("""
shutil.rmtree(workdir)        # the exported files were written to a temporary directory
"""),
]

NOTEBOOKS = {"tour": TOUR, "training": TRAINING, "export": EXPORT, "gluon": GLUON}


def build(name, timeout=120):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNEL
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = NOTEBOOKS[name]
    path = os.path.join(HERE, name + ".ipynb")
    t0 = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": HERE}}).execute()
    for i, cell in enumerate(nb.cells):          # stable ids: small diffs on rebuild
        cell["id"] = "%s-%02d" % (name, i)
    nbformat.write(nb, path)
    print("%s: executed in %.1f s" % (path, time.perf_counter() - t0))


if __name__ == "__main__":
    for n in sys.argv[1:] or list(NOTEBOOKS):
        build(n)
