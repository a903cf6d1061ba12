# %% [markdown]
# # Compiled training on the digits data
#
# An MLP (64 → 128 → relu → 10) on scikit-learn's bundled 8×8 digits, trained with
# **compiled replay**: `mx.jit(loss_fn)` traces the loss once, lowers it to Numba kernels and
# replays them.  Inside `autograd.record()` a jitted call is one tape node, and
# `loss.backward()` runs the compiled backward kernel.  `mx.Trainer.step` applies SGD with
# momentum to all parameters in one fused compiled update.

# %%
# %matplotlib inline
import statistics
import time
import numpy as np
import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
import agjit as mx

# %% [markdown]
# ## Data
#
# Standardised features (statistics of the training split), 25% held out, fixed seed.

# %%
SEED = 0
digits = load_digits()
X = digits.data.astype(np.float32)
y = digits.target.astype(np.float32)
x_tr, x_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=SEED, stratify=y)
mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
std[std == 0] = 1.0
x_tr, x_te = (x_tr - mean) / std, (x_te - mean) / std
print(x_tr.shape, x_te.shape)

# %%
fig, axes = plt.subplots(1, 8, figsize=(10, 1.6))
for ax, img, t in zip(axes, digits.images, digits.target):
    ax.imshow(img, cmap="gray_r")
    ax.set_title(str(t))
    ax.axis("off")
plt.show()

# %% [markdown]
# ## Model
#
# Plain NDArrays as parameters, initialised with `mx.init.Xavier`.  The loss function reads
# them from the enclosing scope; `mx.jit` captures them *by reference*, so the in-place
# updates of the Trainer are seen by every replay.

# %%
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

# %% [markdown]
# ## The training loop

# %%
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

# %%
fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.5))
epochs = np.arange(1, EPOCHS + 1)
a1.plot(epochs, history["loss"], "o-")
a1.set_yscale("log"); a1.set_xlabel("epoch"); a1.set_ylabel("mean training loss")
a2.plot(epochs, history["train_acc"], "o-", label="train")
a2.plot(epochs, history["test_acc"], "s-", label="held out")
a2.axhline(0.95, color="gray", ls=":", label="95%")
a2.set_xlabel("epoch"); a2.set_ylabel("accuracy"); a2.legend()
plt.tight_layout(); plt.show()

# %% [markdown]
# ## What was compiled
#
# `step.source()` is the generated Numba code (forward for training, then backward); each
# line names the op and the line of the traced Python code.

# %%
print("\n".join(step.source().splitlines()[:40]))


# %% [markdown]
# ## Eager vs compiled time per training step
#
# One full step (record, forward, backward, SGD update) for a few batch sizes, median of 150
# steps each.  A new batch size retraces the function but reuses the compiled kernels (they
# read every size at run time).

# %%
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

# %%
pos = np.arange(len(batches))
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar(pos - 0.2, eager_ms, 0.4, label="eager")
ax.bar(pos + 0.2, compiled_ms, 0.4, label="compiled (mx.jit)")
ax.set_xticks(pos, [str(b) for b in batches])
ax.set_xlabel("batch size"); ax.set_ylabel("ms per training step (median)")
ax.legend(); plt.tight_layout(); plt.show()
