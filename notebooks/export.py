# %% [markdown]
# # Exporting, inspecting and reloading graphs and models
#
# * a recorded computation → MXNet checkpoint (`PREFIX-symbol.json` + `PREFIX-0000.params`)
#   with `mx.model.export_recorded`;
# * inspecting it: the `agjit inspect` command (here through `agjit.cli.main`),
#   `Symbol.summary` and `infer_shape`;
# * reloading it: `mx.model.Model.load`, or `mx.model.load_checkpoint` + `Symbol.bind`;
# * the **backward graph**: `mx.autograd.get_symbol(loss, backward=True)` and
#   `Symbol.gradient`, exported and reloaded like any other graph.

# %%
# %matplotlib inline
import os, tempfile
import numpy as np
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
import agjit as mx
from agjit import cli

workdir = tempfile.mkdtemp(prefix="agjit-export-")

# %% [markdown]
# ## A small trained model
#
# A softmax-regression-plus-hidden-layer on the digits, trained for a few epochs with a
# compiled step (see `training.ipynb` for the details).

# %%
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

# %% [markdown]
# ## Export the recorded predictor
#
# Record the prediction once (in predict mode) and export it.  `params` names the arrays
# saved in the `.params` file; `inputs` names the arrays that stay inputs of the graph.

# %%
x = mx.nd.array(x_te)
with mx.autograd.record(train_mode=False):
    p = predict(x)
prefix = os.path.join(workdir, "digits")
sym, arg_params, aux_params = mx.model.export_recorded(p, prefix, 0, params=params,
                                                       inputs={"data": x})
print(sorted(os.listdir(workdir)))
print("arguments:", sym.list_arguments())

# %% [markdown]
# ## Inspect it
#
# The `agjit` command line: `agjit inspect FILE-symbol.json --params FILE-0000.params
# --shape data=1,64` (the `.params` file tells the parameters from the inputs) and
# `agjit inspect FILE-0000.params`.

# %%
rc = cli.main(["inspect", prefix + "-symbol.json", "--params", prefix + "-0000.params",
               "--shape", "data=1,64"])

# %%
rc = cli.main(["inspect", prefix + "-0000.params"])

# %%
loaded_sym = mx.sym.load(prefix + "-symbol.json")
print(loaded_sym.summary(shape={"data": (1, 64)}))
arg_shapes, out_shapes, aux_shapes = loaded_sym.infer_shape(data=(5, 64))
print(dict(zip(loaded_sym.list_arguments(), arg_shapes)), "->", out_shapes)

# %%
path = os.path.join(workdir, "digits.png")
rc = cli.main(["draw", prefix + "-symbol.json", "-o", path, "--shape", "data=1,64"])
# %matplotlib inline
# (the draw command switches matplotlib to its file backend; switch back to inline plots)
img = plt.imread(path)
plt.figure(figsize=(6, 6)); plt.imshow(img); plt.axis("off"); plt.show()

# %% [markdown]
# ## Reload it
#
# `Model.load` binds the graph with its parameters and predicts (in predict mode); the
# lower-level route is `load_checkpoint` and `Symbol.bind`.  Both reproduce the in-memory
# predictions.

# %%
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

# %% [markdown]
# ## The backward graph
#
# `get_symbol(loss, backward=True)` gives the graph that computes the gradients of the
# recorded loss w.r.t. its variables: its arguments are the forward inputs it needs plus the
# head gradient `<output>_head_grad`, its outputs `<var>_grad`.  It is an ordinary Symbol:
# it can be evaluated, saved as graph JSON, reloaded and drawn.

# %%
xb, yb = mx.nd.array(x_tr[:16]), mx.nd.array(y_tr[:16])
with mx.autograd.record():
    loss = loss_fn(xb, yb)
bwd = mx.autograd.get_symbol(loss, backward=True)
fwd = mx.autograd.get_symbol(loss)
print("forward arguments: ", fwd.list_arguments())
print("backward arguments:", bwd.list_arguments())
print("backward outputs:  ", bwd.list_outputs())
loss.backward()

# %%
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

# %%
bwd_file = os.path.join(workdir, "digits-backward-symbol.json")
bwd.save(bwd_file)
bwd2 = mx.sym.load(bwd_file)
print("saved and reloaded identical:", bwd2.tojson() == bwd.tojson())
print(bwd2.summary(shape={a: values[a].shape for a in bwd2.list_arguments()}))

# %% [markdown]
# `Symbol.gradient(wrt)` builds the same kind of graph from a symbol written with `mx.sym`:

# %%
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

# %%
import shutil
shutil.rmtree(workdir)        # the exported files were written to a temporary directory
