"""W8-W10 model definitions shared by every peer of ``model_step.py``.

* **W8** ResNet-18 v1 (the Gluon model-zoo ``resnet18_v1``: 7x7/2 conv - BN - relu - 3x3/2 max
  pool - 4 stages of 2 basic blocks (64, 128, 256, 512; 1x1/2 projection shortcut at the
  first block of stages 2-4) - global average pool - FC 1000), NCHW float32 224x224.
  Inference uses the moving statistics; the training step uses batch statistics.
* **W9** 2-layer LSTM language model: Embedding(10000, 256) - LSTM(256, 2 layers, TNC,
  zero initial states) - Dense(10000) per step - softmax cross-entropy over the vocabulary,
  mean over seq 35 x batch 20.
* **W10** Transformer encoder block (post-LN): multi-head self-attention (d 256, 4 heads,
  ``batch_dot`` on (batch*heads, seq, 64)), residual + LayerNorm, FFN 256-1024(relu)-256,
  residual + LayerNorm, then mean over the sequence and FC 10 with softmax cross-entropy as
  the loss head; input (batch 16, seq 128, 256).

Parameters are one ordered list of ``(name, shape)`` per model (``param_spec``); the name's
last ``_``-separated words are the Gluon parameter's suffix (``weight``, ``gamma``,
``running_var``, ``i2h_bias``...), which the MXNet-style loader checks.  ``make_data`` draws
inputs, labels and parameters with NumPy (``default_rng(seed)``), so every peer computes on
the same numbers (passed to the children as an ``.npz``).

This module imports only NumPy at module level; each framework's builder imports its
framework inside the function, so it loads under every peer's interpreter.
"""
import numpy as np

BN_EPS = 1e-5
LN_EPS = 1e-5


# ==================================================================== sizes/spec ===
def sizes(model, quick=False):
    if model == "W8":
        return {"hw": 64, "classes": 10, "width": 8} if quick else \
            {"hw": 224, "classes": 1000, "width": 64}
    if model == "W9":
        return {"vocab": 50, "hidden": 8, "seq": 5, "batch": 3, "layers": 2} if quick else \
            {"vocab": 10000, "hidden": 256, "seq": 35, "batch": 20, "layers": 2}
    if model == "W10":
        return {"d": 16, "heads": 4, "seq": 8, "batch": 2, "ffn": 32, "classes": 10} if quick \
            else {"d": 256, "heads": 4, "seq": 128, "batch": 16, "ffn": 1024, "classes": 10}
    raise ValueError("unknown model %r" % model)


def _bn(prefix, c):
    return [(prefix + "_" + s, (c,)) for s in ("gamma", "beta", "running_mean", "running_var")]


def resnet18_blocks(width):
    """(prefix, in_channels, channels, stride, downsample) of the 8 basic blocks."""
    out, cin = [], width
    for s, mult in enumerate((1, 2, 4, 8)):
        c = width * mult
        for b in range(2):
            first = b == 0
            stride = 2 if (first and s > 0) else 1
            out.append(("s%db%d" % (s + 1, b), cin if first else c, c, stride, first and s > 0))
        cin = c
    return out


def param_spec(model, quick=False):
    sz = sizes(model, quick)
    if model == "W8":
        w = sz["width"]
        spec = [("conv0_weight", (w, 3, 7, 7))] + _bn("bn0", w)
        for p, cin, c, _stride, down in resnet18_blocks(w):
            spec += [(p + "_conv1_weight", (c, cin, 3, 3))] + _bn(p + "_bn1", c)
            spec += [(p + "_conv2_weight", (c, c, 3, 3))] + _bn(p + "_bn2", c)
            if down:
                spec += [(p + "_down_weight", (c, cin, 1, 1))] + _bn(p + "_dbn", c)
        return spec + [("fc_weight", (sz["classes"], 8 * w)), ("fc_bias", (sz["classes"],))]
    if model == "W9":
        v, h = sz["vocab"], sz["hidden"]
        spec = [("emb_weight", (v, h))]
        for i in range(sz["layers"]):
            spec += [("l%d_i2h_weight" % i, (4 * h, h)), ("l%d_h2h_weight" % i, (4 * h, h)),
                     ("l%d_i2h_bias" % i, (4 * h,)), ("l%d_h2h_bias" % i, (4 * h,))]
        return spec + [("dec_weight", (v, h)), ("dec_bias", (v,))]
    d, f, k = sz["d"], sz["ffn"], sz["classes"]
    spec = []
    for n in ("q", "k", "v", "o"):
        spec += [("w%s_weight" % n, (d, d)), ("w%s_bias" % n, (d,))]
    spec += [("ln1_gamma", (d,)), ("ln1_beta", (d,)), ("ffn1_weight", (f, d)), ("ffn1_bias", (f,)),
             ("ffn2_weight", (d, f)), ("ffn2_bias", (d,)), ("ln2_gamma", (d,)), ("ln2_beta", (d,)),
             ("fc_weight", (k, d)), ("fc_bias", (k,))]
    return spec


def grad_names(model, quick=False):
    """Parameters whose gradients every training peer returns for the spot check."""
    if model == "W8":
        return ["conv0_weight", "bn0_gamma", "s3b0_down_weight", "s4b1_conv2_weight", "fc_weight"]
    if model == "W9":
        return ["emb_weight", "l0_i2h_weight", "l1_h2h_bias", "dec_weight"]
    return ["wq_weight", "wv_bias", "ln1_gamma", "ffn1_weight", "fc_weight"]


def make_data(model, quick=False, batch=None, seed=1234):
    rng = np.random.default_rng(seed)
    sz = sizes(model, quick)
    d = {}
    for name, shape in param_spec(model, quick):
        if name.endswith("gamma"):
            a = 1 + 0.1 * rng.standard_normal(shape)
        elif name.endswith("running_var"):
            a = rng.uniform(0.5, 1.5, shape)
        elif name.endswith(("beta", "running_mean")) or name.endswith("bias"):
            a = 0.1 * rng.standard_normal(shape)
        elif model == "W9" and name in ("emb_weight",):
            a = 0.1 * rng.standard_normal(shape)
        elif model == "W9" and "h2h" in name or "i2h" in name:
            a = rng.uniform(-1, 1, shape) / np.sqrt(sz["hidden"])
        else:
            fan_in = int(np.prod(shape[1:]))
            a = rng.standard_normal(shape) * np.sqrt((2.0 if model == "W8" else 1.0) / fan_in)
        d[name] = a.astype(np.float32)
    if model == "W8":
        n = batch or 1
        d["x"] = rng.standard_normal((n, 3, sz["hw"], sz["hw"])).astype(np.float32)
        d["y"] = rng.integers(0, sz["classes"], size=n).astype(np.int64)
    elif model == "W9":
        shape = (sz["seq"], sz["batch"])
        d["x"] = rng.integers(0, sz["vocab"], size=shape).astype(np.int64)
        d["y"] = rng.integers(0, sz["vocab"], size=shape).astype(np.int64)
    else:
        n = batch or sz["batch"]
        d["x"] = rng.standard_normal((n, sz["seq"], sz["d"])).astype(np.float32)
        d["y"] = rng.integers(0, sz["classes"], size=n).astype(np.int64)
    return d


# ============================================================ MXNet-style (Gluon) ===
def mx_net(mx, model, quick=False):
    """The Gluon network for agjit or real MXNet 1.9.1 (same code under both)."""
    gluon, nn = mx.gluon, mx.gluon.nn
    sz = sizes(model, quick)
    if model == "W8":
        from importlib import import_module
        vision = import_module(mx.__name__ + ".gluon.model_zoo.vision")
        if quick:
            # the model-zoo class at a tiny width: same layer structure as resnet18_v1
            w = sz["width"]
            return vision.ResNetV1(vision.BasicBlockV1, [2, 2, 2, 2],
                                   [w, w, 2 * w, 4 * w, 8 * w], classes=sz["classes"])
        return vision.resnet18_v1()
    if model == "W9":
        class LM(gluon.HybridBlock):
            def __init__(self, **kw):
                super(LM, self).__init__(**kw)
                with self.name_scope():
                    self.emb = nn.Embedding(sz["vocab"], sz["hidden"])
                    self.rnn = gluon.rnn.LSTM(sz["hidden"], num_layers=sz["layers"], layout="TNC",
                                              input_size=sz["hidden"])
                    self.dec = nn.Dense(sz["vocab"], flatten=False, in_units=sz["hidden"])

            def hybrid_forward(self, F, x):
                return self.dec(self.rnn(self.emb(x)))
        return LM()

    spec = param_spec(model, quick)
    d, h = sz["d"], sz["heads"]
    scale = 1.0 / np.sqrt(d // h)

    class Encoder(gluon.HybridBlock):
        def __init__(self, **kw):
            super(Encoder, self).__init__(**kw)
            with self.name_scope():
                for name, shape in spec:
                    setattr(self, name, self.params.get(name, shape=shape))

        def hybrid_forward(self, F, x, **p):
            def fc(t, n, units):
                return F.FullyConnected(t, p[n + "_weight"], p[n + "_bias"], num_hidden=units,
                                        flatten=False)

            def split(t):        # (B, T, d) -> (B*H, T, d/H)
                t = F.reshape(t, shape=(0, 0, h, -1))
                return F.reshape(F.transpose(t, axes=(0, 2, 1, 3)), shape=(-3, 0, 0))
            q, k, v = split(fc(x, "wq", d)), split(fc(x, "wk", d)), split(fc(x, "wv", d))
            att = F.softmax(F.batch_dot(q, k, transpose_b=True) * scale, axis=-1)
            c = F.batch_dot(att, v)                                   # (B*H, T, dh)
            c = F.reshape(c, shape=(-4, -1, h, 0, 0))                 # (B, H, T, dh)
            c = F.reshape(F.transpose(c, axes=(0, 2, 1, 3)), shape=(0, 0, -1))
            x1 = F.LayerNorm(x + fc(c, "wo", d), p["ln1_gamma"], p["ln1_beta"], axis=-1,
                             eps=LN_EPS)
            f = fc(F.relu(fc(x1, "ffn1", sz["ffn"])), "ffn2", d)
            x2 = F.LayerNorm(x1 + f, p["ln2_gamma"], p["ln2_beta"], axis=-1, eps=LN_EPS)
            return fc(F.mean(x2, axis=1), "fc", sz["classes"])
    return Encoder()


def gluon_suffix(model, name):
    """How the Gluon parameter's name ends for spec entry ``name``."""
    if model == "W10" or (model == "W9" and name.startswith("l")):
        return name
    for tail in ("running_mean", "running_var"):
        if name.endswith(tail):
            return tail
    return name.rsplit("_", 1)[1]


def mx_load(mx, net, model, d, quick=False):
    """Initialise ``net`` (one forward for deferred shapes) and set every parameter from
    ``d`` in ``param_spec`` order, checking the Gluon name's suffix and the shape."""
    net.initialize()
    nd = mx.nd
    if model == "W8":
        net(nd.array(np.zeros((1, 3, 32, 32), np.float32)))
    elif model == "W9":
        net(nd.array(np.zeros((2, 1), np.float32)))
    params = list(net.collect_params().values())
    spec = param_spec(model, quick)
    if len(params) != len(spec):
        raise RuntimeError("%s: %d Gluon parameters, spec has %d" % (model, len(params), len(spec)))
    out = {}
    for p, (name, shape) in zip(params, spec):
        suffix = gluon_suffix(model, name)
        if not p.name.endswith(suffix) or tuple(p.shape) != tuple(shape):
            raise RuntimeError("%s: Gluon parameter %s %s does not match spec %s %s"
                               % (model, p.name, p.shape, name, shape))
        p.set_data(nd.array(d[name]))
        out[name] = p
    return out


# ======================================================================= PyTorch ===
def torch_model(model, d, quick=False, requires_grad=True):
    """(params: name -> leaf tensor, forward(x, train)); W9 uses ``torch.nn.LSTM``."""
    import torch
    F = torch.nn.functional
    sz = sizes(model, quick)
    P = {k: torch.tensor(d[k], requires_grad=requires_grad and not (
        k.endswith("running_mean") or k.endswith("running_var"))) for k, _ in param_spec(model, quick)}

    if model == "W8":
        def bn(t, p, train):
            return F.batch_norm(t, P[p + "_running_mean"].detach().clone() if train else
                                P[p + "_running_mean"],
                                P[p + "_running_var"].detach().clone() if train else
                                P[p + "_running_var"],
                                P[p + "_gamma"], P[p + "_beta"], train, 0.1, BN_EPS)

        def forward(x, train):
            h = torch.relu(bn(F.conv2d(x, P["conv0_weight"], stride=2, padding=3), "bn0", train))
            h = F.max_pool2d(h, 3, 2, 1)
            for p, _cin, _c, stride, down in resnet18_blocks(sz["width"]):
                r = torch.relu(bn(F.conv2d(h, P[p + "_conv1_weight"], stride=stride, padding=1),
                                  p + "_bn1", train))
                r = bn(F.conv2d(r, P[p + "_conv2_weight"], padding=1), p + "_bn2", train)
                if down:
                    h = bn(F.conv2d(h, P[p + "_down_weight"], stride=stride), p + "_dbn", train)
                h = torch.relu(h + r)
            return F.linear(h.mean((2, 3)), P["fc_weight"], P["fc_bias"])
    elif model == "W9":
        m, P = torch_lstm_module(d, quick, requires_grad)

        def forward(x, train):
            return m(x)
    else:
        dm, nh = sz["d"], sz["heads"]

        def forward(x, train):
            b, t, _ = x.shape

            def fc(u, n):
                return F.linear(u, P[n + "_weight"], P[n + "_bias"])

            def split(u):
                return u.reshape(b, t, nh, -1).transpose(1, 2)
            q, k, v = split(fc(x, "wq")), split(fc(x, "wk")), split(fc(x, "wv"))
            att = torch.softmax(q @ k.transpose(-1, -2) / np.sqrt(dm // nh), -1)
            c = (att @ v).transpose(1, 2).reshape(b, t, dm)
            x1 = F.layer_norm(x + fc(c, "wo"), (dm,), P["ln1_gamma"], P["ln1_beta"], LN_EPS)
            f = fc(torch.relu(fc(x1, "ffn1")), "ffn2")
            x2 = F.layer_norm(x1 + f, (dm,), P["ln2_gamma"], P["ln2_beta"], LN_EPS)
            return fc(x2.mean(1), "fc")
    return P, forward


def torch_lstm_module(d, quick=False, requires_grad=True):
    """W9 with torch.nn.LSTM (PyTorch's fused LSTM kernel) on the same weights."""
    import torch
    sz = sizes("W9", quick)

    class LM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Embedding(sz["vocab"], sz["hidden"])
            self.rnn = torch.nn.LSTM(sz["hidden"], sz["hidden"], sz["layers"])
            self.dec = torch.nn.Linear(sz["hidden"], sz["vocab"])

        def forward(self, x):
            return self.dec(self.rnn(self.emb(x))[0])
    m = LM()
    with torch.no_grad():
        m.emb.weight.copy_(torch.from_numpy(d["emb_weight"]))
        for i in range(sz["layers"]):
            for a, b in (("weight_ih", "i2h_weight"), ("weight_hh", "h2h_weight"),
                         ("bias_ih", "i2h_bias"), ("bias_hh", "h2h_bias")):
                getattr(m.rnn, "%s_l%d" % (a, i)).copy_(torch.from_numpy(d["l%d_%s" % (i, b)]))
        m.dec.weight.copy_(torch.from_numpy(d["dec_weight"]))
        m.dec.bias.copy_(torch.from_numpy(d["dec_bias"]))
    m.requires_grad_(requires_grad)
    named = {"emb_weight": m.emb.weight, "dec_weight": m.dec.weight, "dec_bias": m.dec.bias}
    for i in range(sz["layers"]):
        named["l%d_i2h_weight" % i] = getattr(m.rnn, "weight_ih_l%d" % i)
        named["l%d_h2h_weight" % i] = getattr(m.rnn, "weight_hh_l%d" % i)
        named["l%d_i2h_bias" % i] = getattr(m.rnn, "bias_ih_l%d" % i)
        named["l%d_h2h_bias" % i] = getattr(m.rnn, "bias_hh_l%d" % i)
    return m, named


# =========================================================================== JAX ===
def jax_model(model, quick=False):
    """forward(params, x, train) in JAX (params: dict name -> array)."""
    import jax
    import jax.numpy as jnp
    from jax import lax
    sz = sizes(model, quick)

    if model == "W8":
        def conv(x, w, stride, pad):
            return lax.conv_general_dilated(x, w, (stride, stride), ((pad, pad), (pad, pad)),
                                            dimension_numbers=("NCHW", "OIHW", "NCHW"))

        def bn(P, t, p, train):
            g = P[p + "_gamma"].reshape(1, -1, 1, 1)
            b = P[p + "_beta"].reshape(1, -1, 1, 1)
            if train:
                mu = t.mean((0, 2, 3), keepdims=True)
                var = ((t - mu) ** 2).mean((0, 2, 3), keepdims=True)
            else:
                mu = P[p + "_running_mean"].reshape(1, -1, 1, 1)
                var = P[p + "_running_var"].reshape(1, -1, 1, 1)
            return (t - mu) * lax.rsqrt(var + BN_EPS) * g + b

        def forward(P, x, train):
            h = jax.nn.relu(bn(P, conv(x, P["conv0_weight"], 2, 3), "bn0", train))
            h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 3, 3), (1, 1, 2, 2),
                                  ((0, 0), (0, 0), (1, 1), (1, 1)))
            for p, _cin, _c, stride, down in resnet18_blocks(sz["width"]):
                r = jax.nn.relu(bn(P, conv(h, P[p + "_conv1_weight"], stride, 1), p + "_bn1", train))
                r = bn(P, conv(r, P[p + "_conv2_weight"], 1, 1), p + "_bn2", train)
                if down:
                    h = bn(P, conv(h, P[p + "_down_weight"], stride, 0), p + "_dbn", train)
                h = jax.nn.relu(h + r)
            return h.mean((2, 3)) @ P["fc_weight"].T + P["fc_bias"]
    elif model == "W9":
        def forward(P, x, train):
            h = P["emb_weight"][x]
            n = x.shape[1]
            hid = sz["hidden"]
            for i in range(sz["layers"]):
                wh = P["l%d_h2h_weight" % i]
                xi = h @ P["l%d_i2h_weight" % i].T + P["l%d_i2h_bias" % i] + P["l%d_h2h_bias" % i]

                def cell(carry, g_in, wh=wh):
                    hs, cs = carry
                    g = g_in + hs @ wh.T
                    ig, fg, cg, og = jnp.split(g, 4, axis=1)
                    cs = jax.nn.sigmoid(fg) * cs + jax.nn.sigmoid(ig) * jnp.tanh(cg)
                    hs = jax.nn.sigmoid(og) * jnp.tanh(cs)
                    return (hs, cs), hs
                z = jnp.zeros((n, hid), h.dtype)
                _, h = lax.scan(cell, (z, z), xi)
            return h @ P["dec_weight"].T + P["dec_bias"]
    else:
        dm, nh = sz["d"], sz["heads"]

        def ln(t, g, b):
            mu = t.mean(-1, keepdims=True)
            var = ((t - mu) ** 2).mean(-1, keepdims=True)
            return (t - mu) * lax.rsqrt(var + LN_EPS) * g + b

        def forward(P, x, train):
            b, t, _ = x.shape

            def fc(u, n):
                return u @ P[n + "_weight"].T + P[n + "_bias"]

            def split(u):
                return u.reshape(b, t, nh, -1).transpose(0, 2, 1, 3)
            q, k, v = split(fc(x, "wq")), split(fc(x, "wk")), split(fc(x, "wv"))
            att = jax.nn.softmax(q @ k.transpose(0, 1, 3, 2) / np.sqrt(dm // nh), -1)
            c = (att @ v).transpose(0, 2, 1, 3).reshape(b, t, dm)
            x1 = ln(x + fc(c, "wo"), P["ln1_gamma"], P["ln1_beta"])
            f = fc(jax.nn.relu(fc(x1, "ffn1")), "ffn2")
            x2 = ln(x1 + f, P["ln2_gamma"], P["ln2_beta"])
            return fc(x2.mean(1), "fc")
    return forward


# ===================================================================== NumPy by hand ===
def numpy_encoder_forward(d, quick=False):
    """W10 forward (logits) in NumPy: the float64 check of the block's definition."""
    sz = sizes("W10", quick)
    dm, nh = sz["d"], sz["heads"]
    x = d["x"]
    b, t, _ = x.shape

    def fc(u, n):
        return u @ d[n + "_weight"].T + d[n + "_bias"]

    def split(u):
        return u.reshape(b, t, nh, -1).transpose(0, 2, 1, 3)

    def ln(u, g, be):
        mu = u.mean(-1, keepdims=True)
        xc = u - mu
        return xc / np.sqrt((xc * xc).mean(-1, keepdims=True) + LN_EPS) * g + be
    q, k, v = split(fc(x, "wq")), split(fc(x, "wk")), split(fc(x, "wv"))
    s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dm // nh)
    s = np.exp(s - s.max(-1, keepdims=True))
    att = s / s.sum(-1, keepdims=True)
    c = (att @ v).transpose(0, 2, 1, 3).reshape(b, t, dm)
    x1 = ln(x + fc(c, "wo"), d["ln1_gamma"], d["ln1_beta"])
    x2 = ln(x1 + fc(np.maximum(fc(x1, "ffn1"), 0), "ffn2"), d["ln2_gamma"], d["ln2_beta"])
    return fc(x2.mean(1), "fc")


def softmax_ce(z, y):
    """Mean softmax cross-entropy over all rows of ``z`` (last axis = classes)."""
    z = z.reshape(-1, z.shape[-1])
    y = y.reshape(-1)
    zs = z - z.max(1, keepdims=True)
    logp = zs - np.log(np.exp(zs).sum(1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())
