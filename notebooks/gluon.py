# %% [markdown]
# # A Gluon CNN on the digits, hybridized
#
# The Gluon API of MXNet 1.x on agjit: a `HybridSequential` of convolution, pooling and Dense
# layers trained on scikit-learn's bundled 8×8 digits with `gluon.Trainer` and
# `SoftmaxCrossEntropyLoss`, the data served by `gluon.data.DataLoader`.
# `net.hybridize()` is MXNet's "record once, compile the static graph, replay" — here it
# runs on `mx.jit`: the first call traces the network into one graph and compiles it to Numba
# kernels, and every later call inside `autograd.record()` is **one** compiled tape node
# whose backward is one compiled kernel.  At the end the trained network is exported in
# MXNet's format (`-symbol.json` + `.params`, loadable by real MXNet 1.9.1) and reloaded with
# `gluon.SymbolBlock.imports`.

# %%
# %matplotlib inline
import os, shutil, tempfile, time
import numpy as np
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm
import agjit as mx
from agjit import autograd, gluon
from agjit.gluon import nn

# %% [markdown]
# ## Data
#
# The 1797 images as `(N, 1, 8, 8)` float32, standardised with the training split's mean and
# standard deviation; 25% held out (stratified, fixed seed).  `ArrayDataset` + `DataLoader`
# shuffle the training set every epoch.

# %%
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

# %% [markdown]
# ## The network
#
# Two 3×3 convolutions with relu and 2×2 max pooling (8×8 → 4×4 → 2×2), then two Dense
# layers.  Shapes of the first layers' weights are inferred on the first call (deferred
# initialisation); the parameter names are MXNet's (`hybridsequential0_conv0_weight`, ...).

# %%
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

# %% [markdown]
# ## Training
#
# The first step traces and compiles (its time is printed separately); the rest replay the
# compiled forward and backward kernels, and `trainer.step` is one fused compiled SGD update.
# The progress bar shows the running loss and accuracies per epoch.

# %%
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

# %%
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.5))
epochs = np.arange(1, EPOCHS + 1)
a1.plot(epochs, history["loss"], "o-")
a1.set_yscale("log"); a1.set_xlabel("epoch"); a1.set_ylabel("mean training loss")
a2.plot(epochs, history["train_acc"], "o-", label="train")
a2.plot(epochs, history["test_acc"], "s-", label="held out")
a2.set_xlabel("epoch"); a2.set_ylabel("accuracy"); a2.legend()
plt.tight_layout(); plt.show()

# %%
pred = net(x_test).asnumpy().argmax(1)
wrong = np.flatnonzero(pred != y_te)[:8]
fig, axes = plt.subplots(1, max(len(wrong), 1), figsize=(10, 1.8), squeeze=False)
for ax, k in zip(axes[0], wrong):
    ax.imshow(x_te[k, 0], cmap="gray_r"); ax.set_title("%d (true %d)" % (pred[k], y_te[k]))
for ax in axes[0]:
    ax.axis("off")
plt.suptitle("held-out digits the network gets wrong (%d of %d)" % ((pred != y_te).sum(), len(y_te)))
plt.show()

# %% [markdown]
# ## Export and reload
#
# `export(path, epoch)` writes the traced graph (`path-symbol.json`, the input named `data`)
# and the parameters (`path-0008.params`, keys `arg:<name>` / `aux:<name>`) as MXNet does.
# `SymbolBlock.imports` rebuilds a block from the two files; its predictions equal the
# trained network's.

# %%
workdir = tempfile.mkdtemp(prefix="agjit-gluon-")
prefix = os.path.join(workdir, "digits-cnn")
net.export(prefix, epoch=EPOCHS)
print(sorted(os.listdir(workdir)))
loaded = gluon.SymbolBlock.imports(prefix + "-symbol.json", ["data"],
                                   prefix + "-%04d.params" % EPOCHS)
print(loaded)
print("parameters:", list(loaded.collect_params().keys()))

# %%
p_net = net(x_test).asnumpy()
p_loaded = loaded(x_test).asnumpy()
diff = np.abs(p_net - p_loaded).max()
print("max |trained - reloaded| = %.3g; same predicted classes: %s"
      % (diff, bool((p_net.argmax(1) == p_loaded.argmax(1)).all())))
assert diff <= 1e-5 and (p_net.argmax(1) == p_loaded.argmax(1)).all()

# %%
shutil.rmtree(workdir)        # the exported files were written to a temporary directory
