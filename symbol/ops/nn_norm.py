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

Note: compiled-norm-ops
    Inside ``mx.jit`` (agjit.compiler.kernels_norm): BatchNorm's forward is one kernel over
    the data viewed as (pre, C, post), reading the run's training mode
    (``LowerCtx.runtime("train")``) to pick batch or moving statistics; its gradient is one
    op, ``_backward_BatchNorm`` (three passes: statistics, per-channel sums, gx), which like
    MXNet's has no gradient of its own; the moving statistics still move in the backward
    hook, on the host, as eager.  Dropout draws its mask inside the kernel from the
    ``mx.random`` generator itself (``LowerCtx.runtime("rng")``: Numba drives NumPy's
    ``Generator`` bit generator with NumPy's own ``random()`` algorithm), one double per
    mask element in C order compared with ``1 - p`` exactly as the eager kernel does, so a
    seed gives the same mask compiled or eager and the stream moves on by the same amount.
    LayerNorm (and InstanceNorm / GroupNorm, nn_extra.py) share one row-normalisation
    kernel.
"""
import numpy as np
from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, norm_axis, ctx_train, ctx_forward_train
from ._lowering import KernelCall, typed_const
from ._nn_util import _BOOL_F, _merge, _prod, _rand


def _dims(x, ks):
    """Source of the product of ``x``'s dims ``ks`` (``1`` for none)."""
    return " * ".join(["1"] + ["%s.shape[%d]" % (x, k) for k in ks])


def _view3(ctx, lines, x, nd, ax):
    """Lines viewing ``x`` (ndim ``nd``) as (pre, dims[ax], post); returns the view's name."""
    v = ctx.tmp("v")
    lines.append("%s = %s.reshape((%s, %s.shape[%d], %s))" % (
        v, x, _dims(x, range(ax)), x, ax, _dims(x, range(ax + 1, nd))))
    return v


def _f64(v):
    return typed_const(v, "float64")


def _flag(v):
    return "True" if v else "False"


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


def _lower_dropout(ctx):
    """The mask drawn inside the kernel from the ``mx.random`` generator, in the order and
    with the comparisons of the eager kernel (same numbers for the same seed), then
    ``out = x * mask`` over the data (the mask broadcast along ``axes``)."""
    a = ctx.attrs
    nd = ctx.in_ndim[0]
    if nd == 0:
        return None
    x, out, mask = ctx.ins[0], ctx.outs[0], ctx.outs[1]
    n, i = ctx.tmp("n"), ctx.tmp("i")
    off = ["%s = %s.size" % (n, x),
           "for %s in range(%s):" % (i, n),
           "    %s.reshape(-1)[%s] = %s.reshape(-1)[%s]" % (out, i, x, i),
           "    %s.reshape(-1)[%s] = %s" % (mask, i, ctx.const(1.0))]
    p = a["p"]
    if p == 0.0:
        return off
    axes = set(k % nd for k in a["axes"])
    m = ctx.tmp("m")
    mshape = "(%s,)" % ", ".join("1" if k in axes else "%s.shape[%d]" % (x, k) for k in range(nd))
    scale = 0.0 if p >= 1.0 else 1.0 / (1.0 - p)
    idx = [ctx.tmp("i") for _ in range(nd)]
    lines = ["if %s:" % ("True" if a["mode"] == "always" else ctx.runtime("train")),
             "    %s = np.empty(%s, dtype=np.%s)" % (m, mshape, ctx.dtype),
             "    %s(%s, %s.reshape(-1), %s, %s)" % (ctx.fn("dropout_draw"), ctx.runtime("rng"), m,
                                                  _f64(1.0 - p), _f64(scale))]
    ind = "    "
    for k in range(nd):
        lines.append("%sfor %s in range(%s.shape[%d]):" % (ind, idx[k], x, k))
        ind += "    "
    full = ", ".join(idx)
    part = ", ".join("0" if k in axes else idx[k] for k in range(nd))
    lines += ["%s%s[%s] = %s[%s]" % (ind, mask, full, m, part),
              "%s%s[%s] = %s[%s] * %s[%s]" % (ind, out, full, x, full, mask, full),
              "else:"] + ["    " + ln for ln in off]
    return lines


register("Dropout", inputs=("data",),
         attrs={"p": Attr("float", 0.5), "mode": Attr("str", "training", choices=("training", "always")),
                "axes": Attr("shape", ()), "cudnn_off": _BOOL_F},
         infer_shape=_dropout_infer, forward=_dropout_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.elemwise_mul(og[0], outs[1])],
         num_outputs=2, num_visible=1, output_names=("output", "mask"),
         train_dependent=True, needs_rng=True,
         lowering=KernelCall(_lower_dropout, uses=("dropout_draw",)),
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


def _bn_grad(F, attrs, ins, outs, og, ctx):
    """One fused op, ``_backward_BatchNorm`` (MXNet's backward of BatchNorm, which has no
    gradient of its own either), with the modes decided here (note *batchnorm-modes*):
    a training backward (``ctx.is_train``) uses the batch-statistics formula, over the
    statistics the forward normalised with -- the batch's after a training forward, the
    moving ones after a predict-mode forward; a predict backward uses the moving-statistics
    formula whatever the forward did."""
    x, gamma, beta, mm, mv = ins
    batch_formula = _bn_training(attrs, ctx)
    gx, gg, gb = F._backward_BatchNorm(og[0], x, gamma, mm, mv, eps=attrs["eps"],
                                       fix_gamma=attrs["fix_gamma"], axis=attrs["axis"],
                                       batch_stats=batch_formula and ctx_forward_train(ctx),
                                       batch_formula=batch_formula)
    return [gx, gg, gb, None, None]


def _bn_bwd_np(attrs, ins, ctx):
    """gx, ggamma, gbeta of BatchNorm on the (pre, C, post) view: statistics from the batch
    (``batch_stats``) or the moving inputs, per-channel sums of g and g * xhat, then the
    batch-statistics formula (``batch_formula``) or g * gamma * rstd."""
    g, x, gamma, mm, mv = ins
    ax = attrs["axis"] % x.ndim
    ct = np.result_type(x.dtype, gamma.dtype)
    if ct.kind != "f":
        ct = np.dtype(np.float64)
    C = x.shape[ax]
    shp = (_prod(x.shape[:ax]), C, _prod(x.shape[ax + 1:]))
    x3 = x.reshape(shp).astype(ct, copy=False)
    g3 = g.reshape(shp).astype(ct, copy=False)
    m = max(shp[0] * shp[2], 1)
    if attrs["batch_stats"]:
        mean = x3.sum(axis=(0, 2)) / m
        xc = x3 - mean[None, :, None]
        var = np.einsum("pcq,pcq->c", xc, xc) / m
    else:
        mean, var = np.asarray(mm, dtype=ct), np.asarray(mv, dtype=ct)
        xc = x3 - mean[None, :, None]
    rstd = 1.0 / np.sqrt(var + attrs["eps"])
    xhat = xc * rstd[None, :, None]
    sg = g3.sum(axis=(0, 2))
    sgx = np.einsum("pcq,pcq->c", g3, xhat)
    sc = rstd if attrs["fix_gamma"] else rstd * np.asarray(gamma, dtype=ct)
    if attrs["batch_formula"]:
        gx = (g3 - (sg / m)[None, :, None] - xhat * (sgx / m)[None, :, None]) * sc[None, :, None]
    else:
        gx = g3 * sc[None, :, None]
    gg = np.zeros(C, dtype=ct) if attrs["fix_gamma"] else sgx
    return [gx.reshape(x.shape).astype(x.dtype, copy=False), gg.astype(gamma.dtype),
            sg.astype(gamma.dtype)]


def _lower_bn(ctx):
    """Forward: statistics, normalisation, scale and shift in one kernel over the data
    viewed as (pre, C, post); the run's training mode picks batch or moving statistics."""
    a = ctx.attrs
    nd = ctx.in_ndim[0]
    if nd < 1:
        return None
    lines = []
    x3 = _view3(ctx, lines, ctx.ins[0], nd, a["axis"] % nd)
    o3 = _view3(ctx, lines, ctx.outs[0], nd, a["axis"] % nd)
    train = "False" if a["use_global_stats"] else ctx.runtime("train")
    lines.append("%s(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)" % (
        ctx.fn("bn_fwd"), x3, ctx.ins[1], ctx.ins[2], ctx.ins[3], ctx.ins[4], o3, ctx.outs[1],
        ctx.outs[2], _f64(a["eps"]), _flag(a["fix_gamma"]), train))
    return lines


def _lower_bn_bwd(ctx):
    a = ctx.attrs
    nd = ctx.in_ndim[1]
    if nd < 1 or ctx.in_ndim[0] != nd:
        return None
    ax = a["axis"] % nd
    lines = []
    g3 = _view3(ctx, lines, ctx.ins[0], nd, ax)
    x3 = _view3(ctx, lines, ctx.ins[1], nd, ax)
    gx3 = _view3(ctx, lines, ctx.outs[0], nd, ax)
    lines.append("%s(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)" % (
        ctx.fn("bn_bwd"), g3, x3, ctx.ins[2], ctx.ins[3], ctx.ins[4], gx3, ctx.outs[1],
        ctx.outs[2], _f64(a["eps"]), _flag(a["fix_gamma"]), _flag(a["batch_stats"]),
        _flag(a["batch_formula"])))
    return lines


def _bn_bwd_infer(attrs, ins):
    g, x, gamma, mm, mv = ins
    if x is None:
        x = g
    c = None
    if x is not None:
        c = (x[norm_axis("_backward_BatchNorm", attrs["axis"], len(x))],)
    for s in (gamma, mm, mv):
        if s is not None:
            c = _merge("_backward_BatchNorm", "channel parameters", c, s)
    return [x, x, c, c, c], [x, c, c]


def _bn_bwd_type(attrs, ins):
    g, x, gamma, mm, mv = ins
    d = x or g
    pt = gamma or mm or mv or (None if d is None else
                               ("float32" if np.dtype(d).name == "float16" else d))
    return [d, d, pt, pt, pt], [d, pt, pt]


def _bn_bwd_samples(rng):
    def ins(shape, c):
        return [_rand(rng, shape), _rand(rng, shape), _rand(rng, (c,), 0.5, 1.5),
                _rand(rng, (c,), -0.5, 0.5), _rand(rng, (c,), 0.5, 1.5)]
    return [Sample(ins((4, 3), 3), {"fix_gamma": False, "batch_stats": True,
                                    "batch_formula": True}),
            Sample(ins((2, 3, 2, 2), 3), {"batch_stats": True, "batch_formula": True}),
            Sample(ins((2, 2, 3), 3), {"fix_gamma": False, "axis": -1, "eps": 1e-4,
                                       "batch_formula": True}),
            Sample(ins((3, 2), 2), {"fix_gamma": False})]


register("_backward_BatchNorm", inputs=("ograd", "data", "gamma", "moving_mean", "moving_var"),
         attrs={"eps": Attr("float", 1e-3), "fix_gamma": Attr("bool", True),
                "axis": Attr("int", 1), "batch_stats": _BOOL_F, "batch_formula": _BOOL_F},
         infer_shape=_bn_bwd_infer, infer_type=_bn_bwd_type, forward=_bn_bwd_np,
         gradient=None, differentiable=False, num_outputs=3,
         output_names=("data_grad", "gamma_grad", "beta_grad"),
         lowering=KernelCall(_lower_bn_bwd, uses=("bn_bwd",)), samples=_bn_bwd_samples,
         doc="BatchNorm's gradients (data, gamma, beta) for head gradient ``ograd``: batch "
             "statistics of ``data`` (``batch_stats``) or the moving ones, the batch-statistics "
             "formula (``batch_formula``) or ``ograd * gamma / sqrt(moving_var + eps)``.  Not "
             "differentiable, as in MXNet 1.9.1.")


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
         train_dependent=True, lowering=KernelCall(_lower_bn, uses=("bn_fwd",)),
         second_order=False, samples=_bn_samples,
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
    ggamma = _sum_but(F, F.elemwise_mul(g, xhat), ax)
    gbeta = _sum_but(F, g, ax)
    return [gx, ggamma, gbeta]


def _sum_but(F, v, ax):
    """Sum over every axis but ``ax`` as two sums over contiguous axes (the JIT lowers
    those; the rank is unknown here, so the axes are counted from ax's side): for ax >= 0
    the leading axes then all but axis 0, for ax < 0 the trailing ones then all but -1."""
    if ax >= 0:
        v = F.sum(v, axis=tuple(range(ax))) if ax > 0 else v
        return F.sum(v, axis=0, exclude=True)
    v = F.sum(v, axis=tuple(range(ax + 1, 0))) if ax < -1 else v
    return F.sum(v, axis=-1, exclude=True)


def _lower_rownorm(kind):
    """LayerNorm ('ln': over ``axis``, gamma per position along it), InstanceNorm ('in':
    per sample and channel over the rest, gamma per channel) and GroupNorm ('gn': per sample
    and group, gamma per group): one kernel normalising axis 1 of a (pre, C, post) view."""
    def lower(ctx):
        a = ctx.attrs
        nd = ctx.in_ndim[0]
        if nd < (1 if kind == "ln" else 2):
            return None
        x, gamma, beta = ctx.ins
        out, mean, dev = ctx.outs
        lines = []
        if kind == "ln":
            ax = a["axis"] % nd
            x3 = _view3(ctx, lines, x, nd, ax)
            o3 = _view3(ctx, lines, out, nd, ax)
            groups, per_row = "np.int64(1)", "False"
        else:
            rows = ctx.tmp("r")
            g = "%s.shape[1]" % x if kind == "in" else "np.int64(%d)" % a["num_groups"]
            lines.append("%s = %s.shape[0] * %s" % (rows, x, g))
            x3, o3 = ctx.tmp("v"), ctx.tmp("v")
            lines += ["%s = %s.reshape((%s, %s.size // max(%s, 1), 1))" % (v, y, rows, y, rows)
                      for v, y in ((x3, x), (o3, out))]
            groups, per_row = g, "True"
        m2, d2 = ctx.tmp("m"), ctx.tmp("d")
        lines += ["%s = %s.reshape((%s.shape[0], %s.shape[2]))" % (v, y, x3, x3)
                  for v, y in ((m2, mean), (d2, dev))]
        lines.append("%s(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)" % (
            ctx.fn("rownorm_fwd"), x3, gamma, beta, o3, m2, d2, _f64(a["eps"]), per_row,
            groups, "False" if kind == "in" else "True"))
        return lines
    return KernelCall(lower, uses=("rownorm_fwd",))


register("LayerNorm", inputs=("data", "gamma", "beta"),
         attrs={"axis": Attr("int", -1), "eps": Attr("float", 1e-5), "output_mean_var": _BOOL_F},
         infer_shape=_ln_infer, forward=_ln_fwd, gradient=_ln_grad,
         num_outputs=3, num_visible=lambda attrs: 3 if attrs["output_mean_var"] else 1,
         output_names=("output", "mean", "std"), lowering=_lower_rownorm("ln"),
         samples=lambda rng: [Sample([_rand(rng, (3, 4)), _rand(rng, (4,), 0.5, 1.5), _rand(rng, (4,))]),
                              Sample([_rand(rng, (2, 3, 2)), _rand(rng, (3,), 0.5, 1.5), _rand(rng, (3,))],
                                     {"axis": 1, "eps": 1e-3})],
         doc="Layer normalisation along ``axis``; hidden outputs are the mean and std "
             "(keepdims shapes).")
