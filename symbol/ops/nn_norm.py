"""Dropout and the normalisations: Dropout, BatchNorm, LayerNorm.

Every gradient is written with registered ops through ``F`` (registry note
*one-definition-per-op*).  Where a gradient needs something no public MXNet op does, a small
internal op named with a leading underscore is declared here with its own forward, gradient
and samples.

Note: batchnorm-moving-stats
    MXNet 1.9.1 updates ``moving_mean``/``moving_var`` in the *backward* pass, not in the
    training forward (FINDINGS §5).  BatchNorm's ``backward_hook`` does that update in place
    on the aux arrays, only when the forward ran in training mode without
    ``use_global_stats`` and the backward runs with ``train_mode=True``.  ``fix_gamma``
    treats gamma as 1 without writing into the user's array.

Note: batchnorm-modes
    The forward's mode and backward's ``train_mode`` may differ (``record(train_mode=False)``
    then ``backward()``, or ``backward(train_mode=False)`` after a training forward).  MXNet
    1.9.1 (observed, tests/test_trust_jit.py): the backward's mode picks the formula -- the
    batch-statistics one (mean of the head gradient and of ``g * xhat`` subtracted) or the
    moving-statistics one (``g * gamma / sqrt(moving_var + eps)``) -- and the batch formula
    normalises with the statistics the forward used, so after a predict-mode forward it
    uses the moving statistics.  Dropout's gradient is its forward mask whatever the
    backward's mode (identity after a predict-mode forward).
"""
import numpy as np
from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, norm_axis, ctx_train, ctx_forward_train
from ._nn_util import _BOOL_F, _merge, _prod, _rand


# ---------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------
def _dropout_infer(attrs, ins):
    p = attrs["p"]
    if not 0.0 <= p <= 1.0:
        raise MXNetError("Dropout: p must be in [0, 1], got %r" % p)
    d = ins[0]
    if d is not None:
        for a in attrs["axes"]:
            norm_axis("Dropout", a, len(d), "axes")
    return ins, [d, d]


def _dropout_fwd(attrs, ins, ctx):
    x = ins[0]
    p = attrs["p"]
    active = attrs["mode"] == "always" or ctx_train(ctx)
    if not active or p == 0.0:
        return [x.copy(), np.ones_like(x)]
    shape = list(x.shape)
    for a in attrs["axes"]:
        shape[a % x.ndim] = 1
    keep = ctx.rng.random(tuple(shape)) < (1.0 - p)
    scale = 0.0 if p >= 1.0 else 1.0 / (1.0 - p)
    mask = np.ascontiguousarray(np.broadcast_to((keep * scale).astype(x.dtype), x.shape))
    return [x * mask, mask]


register("Dropout", inputs=("data",),
         attrs={"p": Attr("float", 0.5), "mode": Attr("str", "training", choices=("training", "always")),
                "axes": Attr("shape", ()), "cudnn_off": _BOOL_F},
         infer_shape=_dropout_infer, forward=_dropout_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.elemwise_mul(og[0], outs[1])],
         num_outputs=2, num_visible=1, output_names=("output", "mask"),
         train_dependent=True, needs_rng=True, lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (3, 4))], {"p": 0.5}),
                              Sample([_rand(rng, (2, 3, 2))], {"p": 0.3, "axes": (1,)}),
                              Sample([_rand(rng, (4,))], {"p": 0.0, "mode": "always"})],
         doc="Dropout: in training (or mode='always') keeps each element with probability 1-p and "
             "scales it by 1/(1-p); otherwise the identity.  Output 1 is the scaled mask.")

# ---------------------------------------------------------------------------------------
# BatchNorm / LayerNorm
# ---------------------------------------------------------------------------------------
def _bn_infer(attrs, ins):
    d = ins[0]
    if d is None:
        # BatchNormShape infers nothing before the data shape is known; agjit still refuses
        # channel parameters that disagree with each other (MXNet accepts them silently)
        c = None
        for s in ins[1:]:
            if s is not None:
                c = _merge("BatchNorm", "channel parameters (gamma, beta, moving_mean, "
                           "moving_var)", c, s)
        return list(ins), [None, None, None]
    ax = norm_axis("BatchNorm", attrs["axis"], len(d))
    c = (d[ax],)
    names = ("gamma", "beta", "moving_mean", "moving_var")
    res = [d]
    for n, s in zip(names, ins[1:]):
        try:
            res.append(_merge("BatchNorm", n, s, c))
        except MXNetError:
            raise MXNetError("BatchNorm: %s shape %s must be %s (data %s, axis=%d)"
                             % (n, fmt(s), fmt(c), fmt(d), attrs["axis"])) from None
    return res, [d, c, c]


def _bn_training(attrs, ctx):
    return ctx_train(ctx) and not attrs["use_global_stats"]


def _bcast(v, ndim, ax):
    shape = [1] * ndim
    shape[ax] = v.shape[0]
    return v.reshape(shape)


def _bn_type(attrs, ins):
    """MXNet's BatchNorm type rule: gamma, beta and the moving statistics have the parameter
    dtype -- float32 for float16 data, else the data dtype (Check failed: ... This layer
    requires uniform type)."""
    from ..registry import check_uniform
    names = ["data", "gamma", "beta", "moving_mean", "moving_var"]
    d = ins[0]
    if d is None:
        pt = check_uniform("BatchNorm", names, ins, first=1)
        ins = list(ins)
        return ins, [None, pt, pt]
    dn = np.dtype(d).name
    pt = "float32" if dn == "float16" else dn
    check_uniform("BatchNorm", names, ins, expected=pt, first=1)
    return [dn] + [pt] * (len(ins) - 1), [dn, dn, dn]


def _bn_fwd(attrs, ins, ctx):
    """Data seen as (pre, C, post): statistics from two contiguous-axis reductions (float32
    for float16 data), then one centred copy scaled and shifted in place."""
    x, gamma, beta, mm, mv = ins
    ax = attrs["axis"] % x.ndim
    dt = x.dtype
    ct = np.result_type(dt, gamma.dtype)
    if ct.kind != "f":
        ct = np.dtype(np.float64)
    C = x.shape[ax]
    x3 = x.reshape(_prod(x.shape[:ax]), C, _prod(x.shape[ax + 1:]))
    m = x3.shape[0] * x3.shape[2]
    if _bn_training(attrs, ctx):
        mean = x3.sum(axis=2, dtype=ct).sum(axis=0) / max(m, 1)
        xc = np.subtract(x3, mean[None, :, None], dtype=ct)
        var = np.einsum("pcq,pcq->c", xc, xc) / max(m, 1)
    else:
        mean, var = np.asarray(mm, dtype=ct), np.asarray(mv, dtype=ct)
        xc = np.subtract(x3, mean[None, :, None], dtype=ct)
    g = np.ones(C, dtype=ct) if attrs["fix_gamma"] else np.asarray(gamma, dtype=ct)
    xc *= (g / np.sqrt(var + attrs["eps"]))[None, :, None]
    xc += np.asarray(beta, dtype=ct)[None, :, None]
    return [xc.reshape(x.shape).astype(dt, copy=False), np.array(mean, dtype=dt), np.array(var, dtype=dt)]


def _dtype_of(F, v, like):
    """``v`` cast to the dtype of ``like`` where both are known and differ (BatchNorm's
    float32 parameters of float16 data; every other op refuses mixed dtypes)."""
    dv, dl = getattr(v, "dtype", None), getattr(like, "dtype", None)
    if dv is not None and dl is not None and dv != dl:
        return F._cast_like(v, like)
    return v


def _bn_grad(F, attrs, ins, outs, og, ctx):
    """Training backward (``ctx.is_train``, i.e. backward's train_mode): the batch-statistics
    formula, over the statistics the forward normalised with -- the batch's after a training
    forward, the moving ones after a predict-mode forward (MXNet 1.9.1 reads the forward's
    saved mean/variance; note *batchnorm-modes*).  Predict backward: the moving-statistics
    formula whatever the forward did."""
    x, gamma, beta, mm, mv = ins
    g = og[0]
    ax, eps = attrs["axis"], attrs["eps"]
    red = {"axis": ax, "exclude": True}
    if _bn_training(attrs, ctx) and ctx_forward_train(ctx):
        mu = F.mean(x, keepdims=True, **red)
        xc = F.broadcast_sub(x, mu)
        var = F.mean(F.square(xc), keepdims=True, **red)
        rstd = F.rsqrt(F._plus_scalar(var, scalar=eps))
        xhat = F.broadcast_mul(xc, rstd)
    else:
        xc = F.broadcast_sub(x, F._nn_channel_view(_dtype_of(F, mm, x), x, axis=ax))
        rstd = F._nn_channel_view(F.rsqrt(F._plus_scalar(_dtype_of(F, mv, x), scalar=eps)), x, axis=ax)
        xhat = F.broadcast_mul(xc, rstd)
    gbeta = F.sum(g, **red)
    if attrs["fix_gamma"]:
        ggamma = F.zeros_like(gamma)
        scale = rstd
    else:
        ggamma = F.sum(F.elemwise_mul(g, xhat), **red)
        scale = F.broadcast_mul(rstd, F._nn_channel_view(_dtype_of(F, gamma, x), x, axis=ax))
    if _bn_training(attrs, ctx):
        gm = F.mean(g, keepdims=True, **red)
        gxm = F.mean(F.elemwise_mul(g, xhat), keepdims=True, **red)
        inner = F.elemwise_sub(F.broadcast_sub(g, gm), F.broadcast_mul(xhat, gxm))
        gx = F.broadcast_mul(inner, scale)
    else:
        gx = F.broadcast_mul(g, scale)
    return [gx, ggamma, gbeta, None, None]


def _bn_hook(attrs, ins, outs, was_train):
    """Update the moving statistics (note *batchnorm-moving-stats*)."""
    if not was_train or attrs["use_global_stats"]:
        return
    m = attrs["momentum"]
    mm, mv = ins[3], ins[4]
    mm[...] = mm * m + outs[1].astype(mm.dtype) * (1.0 - m)
    mv[...] = mv * m + outs[2].astype(mv.dtype) * (1.0 - m)


def _bn_samples(rng):
    def ins(shape, c):
        return [_rand(rng, shape), _rand(rng, (c,), 0.5, 1.5), _rand(rng, (c,)),
                _rand(rng, (c,), -0.5, 0.5), _rand(rng, (c,), 0.5, 1.5)]
    return [Sample(ins((4, 3), 3), {"fix_gamma": False}),
            Sample(ins((2, 3, 2, 2), 3), {}),
            Sample(ins((2, 2, 3), 3), {"fix_gamma": False, "axis": -1, "eps": 1e-4}),
            Sample(ins((3, 2), 2), {"fix_gamma": False, "use_global_stats": True}),
            Sample(ins((3, 2), 2), {"fix_gamma": False, "output_mean_var": True, "momentum": 0.5})]


register("BatchNorm", inputs=("data", "gamma", "beta", "moving_mean", "moving_var"),
         attrs={"eps": Attr("float", 1e-3), "momentum": Attr("float", 0.9),
                "fix_gamma": Attr("bool", True), "use_global_stats": _BOOL_F,
                "output_mean_var": _BOOL_F, "axis": Attr("int", 1), "cudnn_off": _BOOL_F,
                "min_calib_range": Attr("float_or_none", None),
                "max_calib_range": Attr("float_or_none", None)},
         infer_shape=_bn_infer, infer_type=_bn_type, type_check_uniform=True,
         forward=_bn_fwd, gradient=_bn_grad,
         backward_hook=_bn_hook,
         num_outputs=3, num_visible=lambda attrs: 3 if attrs["output_mean_var"] else 1,
         output_names=("output", "mean", "var"), mutate_inputs=(3, 4),
         train_dependent=True, lowerable=False, samples=_bn_samples,
         doc="Batch normalisation over every axis but ``axis``; training uses the batch mean and "
             "biased variance, prediction (or use_global_stats) the moving statistics, which "
             "the backward pass updates (note *batchnorm-moving-stats*).")


def _ln_infer(attrs, ins):
    d = ins[0]
    if d is None:   # LayerNormShape infers nothing before the data shape is known
        if ins[1] is not None and ins[2] is not None:
            _merge("LayerNorm", "gamma/beta", ins[1], ins[2])   # but they must agree
        return list(ins), [None, None, None]
    ax = norm_axis("LayerNorm", attrs["axis"], len(d))
    c = (d[ax],)
    res = [d]
    for n, s in zip(("gamma", "beta"), ins[1:]):
        try:
            res.append(_merge("LayerNorm", n, s, c))
        except MXNetError:
            raise MXNetError("LayerNorm: %s shape %s must be %s (data %s, axis=%d)"
                             % (n, fmt(s), fmt(c), fmt(d), attrs["axis"])) from None
    st = list(d)
    st[ax] = 1
    return res, [d, tuple(st), tuple(st)]


def _ln_fwd(attrs, ins, ctx):
    x, gamma, beta = ins
    ax = attrs["axis"] % x.ndim
    mean = x.mean(axis=ax, keepdims=True)
    std = np.sqrt(x.var(axis=ax, keepdims=True) + attrs["eps"])
    y = (x - mean) / std * _bcast(gamma, x.ndim, ax) + _bcast(beta, x.ndim, ax)
    dt = x.dtype
    return [y.astype(dt, copy=False), mean.astype(dt, copy=False), std.astype(dt, copy=False)]


def _ln_grad(F, attrs, ins, outs, og, ctx):
    x, gamma, beta = ins
    g = og[0]
    ax = attrs["axis"]
    mu = F.mean(x, axis=ax, keepdims=True)
    xc = F.broadcast_sub(x, mu)
    rstd = F.rsqrt(F._plus_scalar(F.mean(F.square(xc), axis=ax, keepdims=True), scalar=attrs["eps"]))
    xhat = F.broadcast_mul(xc, rstd)
    gg = F.broadcast_mul(g, F._nn_channel_view(gamma, x, axis=ax))
    inner = F.elemwise_sub(F.broadcast_sub(gg, F.mean(gg, axis=ax, keepdims=True)),
                           F.broadcast_mul(xhat, F.mean(F.elemwise_mul(gg, xhat), axis=ax, keepdims=True)))
    gx = F.broadcast_mul(inner, rstd)
    ggamma = F.sum(F.elemwise_mul(g, xhat), axis=ax, exclude=True)
    gbeta = F.sum(g, axis=ax, exclude=True)
    return [gx, ggamma, gbeta]


register("LayerNorm", inputs=("data", "gamma", "beta"),
         attrs={"axis": Attr("int", -1), "eps": Attr("float", 1e-5), "output_mean_var": _BOOL_F},
         infer_shape=_ln_infer, forward=_ln_fwd, gradient=_ln_grad,
         num_outputs=3, num_visible=lambda attrs: 3 if attrs["output_mean_var"] else 1,
         output_names=("output", "mean", "std"), lowerable=False,
         samples=lambda rng: [Sample([_rand(rng, (3, 4)), _rand(rng, (4,), 0.5, 1.5), _rand(rng, (4,))]),
                              Sample([_rand(rng, (2, 3, 2)), _rand(rng, (3,), 0.5, 1.5), _rand(rng, (3,))],
                                     {"axis": 1, "eps": 1e-3})],
         doc="Layer normalisation along ``axis``; hidden outputs are the mean and std "
             "(keepdims shapes).")
