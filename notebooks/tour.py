# %% [markdown]
# # A tour of agjit's autograd recording
#
# `import agjit as mx` gives MXNet 1.x's imperative API on NumPy: `mx.nd` arrays, and
# `mx.autograd` recording the operations run inside `record()` so that `backward()` can
# differentiate them.  The recorded history is also an MXNet **Symbol**: it can be printed,
# saved as MXNet graph JSON and drawn.

# %%
# %matplotlib inline
import json
import numpy as np
import matplotlib.pyplot as plt
import agjit as mx

# %% [markdown]
# ## record and backward
#
# `attach_grad()` marks an array as a variable; operations inside `autograd.record()` are put
# on the tape, and `backward()` writes d y / d x into `x.grad`.

# %%
x = mx.nd.array([1, 2, 3, 4])
x.attach_grad()
with mx.autograd.record():
    y = x * x + 1
y.backward()
print("y     =", y.asnumpy())
print("dy/dx =", x.grad.asnumpy())

# %% [markdown]
# ## pause, train_mode and predict_mode
#
# Recording and the training flag are two separate thread-local switches.  `record()` turns
# both on (`record(train_mode=False)` only the first); `pause()` stops recording inside a
# recorded block (for bookkeeping that must not be differentiated); `train_mode()` and
# `predict_mode()` change only the training flag, which decides how `Dropout` and
# `BatchNorm` behave.

# %%
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

# %%
mx.random.seed(0)
ones = mx.nd.ones((2, 8))
with mx.autograd.record():                    # training: Dropout zeroes and rescales
    print(mx.nd.Dropout(ones, p=0.5).asnumpy())
    with mx.autograd.predict_mode():          # predicting: Dropout is the identity
        print(mx.nd.Dropout(ones, p=0.5).asnumpy())

# %%
w = mx.nd.array([2.0, -1.0]); w.attach_grad()
with mx.autograd.record():
    z = w * 3
    with mx.autograd.pause():
        scale = (z * z).sum()                 # not recorded: a constant for backward
    loss = (z * scale).sum()
loss.backward()
print("scale =", scale.asscalar(), " d loss / d w =", w.grad.asnumpy(),
      "(= 3 * scale, the paused part is not differentiated)")

# %% [markdown]
# ## The recorded graph as a Symbol
#
# `autograd.get_symbol(y)` returns the history of `y` as a Symbol.  Recorded variables are
# named as MXNet names them: `var<k>` for arrays with `attach_grad()`, `null<k>` for other
# inputs, `node_<k>` for the operations.

# %%
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

# %% [markdown]
# `tojson()` writes the graph exactly as MXNet 1.9.1 writes it; `mx.sym.load_json` reads it
# back.

# %%
text = sym.tojson()
graph = json.loads(text)
for n in graph["nodes"]:
    print("%-8s %-22s attrs=%-18s inputs=%s"
          % (n["name"], n["op"], n.get("attrs", {}), [e[0] for e in n["inputs"]]))
print("heads:", graph["heads"], " mxnet version attr:", graph["attrs"])
again = mx.sym.load_json(text)
print("round trip identical:", again.tojson() == text)

# %% [markdown]
# ## Shapes and drawing
#
# `infer_shape` propagates the input shapes through the graph; `summary` tabulates it;
# `draw` draws it with matplotlib (no Graphviz needed), labelling ops with their output
# shapes.

# %%
# the generated names depend on how many arrays were recorded before: take them from
# the symbol (they are listed in the order the recording first saw them)
names = sym.list_arguments()
shapes = dict(zip(names, [data.shape, w1.shape, b1.shape, w2.shape, b2.shape, label.shape]))
arg_shapes, out_shapes, aux_shapes = sym.infer_shape(**shapes)
print("output shape:", out_shapes)
print(sym.summary(shape={names[0]: data.shape, names[-1]: label.shape}))

# %%
sym.draw(shapes=shapes)          # sizes its figure to the graph; ax=... draws into yours
plt.show()

# %% [markdown]
# The same graph is available as a `networkx.DiGraph` and as Graphviz DOT text:

# %%
g = sym.to_networkx(shapes=shapes)
print(g.number_of_nodes(), "nodes,", g.number_of_edges(), "edges")
print("\n".join(sym.to_dot(shapes=shapes).splitlines()[:8]) + "\n...")

# %% [markdown]
# ## Backward
#
# `loss.backward()` fills the gradients of every variable.

# %%
loss.backward()
for name, p in zip(["w1", "b1", "w2", "b2"], [w1, b1, w2, b2]):
    print("%-2s grad shape %-8s sum|g| = %.6f" % (name, p.grad.shape, np.abs(p.grad.asnumpy()).sum()))
