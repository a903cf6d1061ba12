"""More neural-network operators, the ones Gluon's layers need beyond symbol/ops/nn_*.py:
erf, Deconvolution, InstanceNorm, GroupNorm, L2Normalization, Pad, UpSampling.

Every gradient is written with registered ops through ``F`` (registry note
*one-definition-per-op*); backward helpers carry a leading underscore.

Note: deconvolution-as-adjoint
    ``Deconvolution(x, w)`` is the adjoint of ``Convolution`` with respect to its data: with
    ``w`` of shape (C_in, C_out/group, *k`), the convolution that maps the deconvolution's
    output back to its input has num_filter = C_in, the same kernel, stride, dilation and
    (effective) pad.  So the forward reuses Convolution's data-gradient kernel, the data
    gradient is that convolution, and the weight gradient is Convolution's weight gradient
    with the roles of data and output gradient swapped.  The output size is
    ``s(in-1) + d(k-1) + 1 - 2p + adj``; with ``target_shape`` MXNet derives pad and adj:
    ``t = s(in-1) + d(k-1) + 1 - target``, ``adj = t % 2``, ``pad = (t + 1) // 2``.
    ``adj`` must stay below the stride (as MXNet checks), which makes the adjoint
    convolution's output size equal to the input size.  The two ``_backward_Deconvolution_*``
    helpers form a closed bilinear set (nn_dense.py note *bilinear-backward-ops*).

Note: grouped-norm-gradient
    InstanceNorm and GroupNorm normalise ``x`` viewed as (N, G, M) over its last axis and
    apply one scale/shift per row group (per channel for InstanceNorm, per *group* for
    GroupNorm in MXNet 1.9.1: gamma/beta have shape (num_groups,)).  Their gradients share
    one formula on that view: ``gx = rstd (gg - mean(gg) - xhat mean(gg xhat))`` with
    ``gg = g * gamma``.
"""
import math

import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, merge_shape, unary_infer, grad_needed
from .nn_conv import (bwd_geometry_check, _conv_np, _conv_bwd_data_np, _conv_bwd_weight_np,
                      _spatial_params, _LAYOUTS, conv_lowering)
from .nn_dense import _bwd_dot_type
from .nn_norm import _lower_rownorm, _f64
from ._lowering import KernelCall

_BOOL_F = Attr("bool", False)


def _rand(rng, shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape)


# ---------------------------------------------------------------------------------------
# erf (GELU's gradient needs it)
# ---------------------------------------------------------------------------------------
def _erf_np(x):
    from scipy.special import erf
    return np.asarray(erf(x)).astype(x.dtype, copy=False)


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

register("erf", inputs=("data",), infer_shape=unary_infer("erf"),
         forward=lambda attrs, ins, ctx: [_erf_np(ins[0])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.elemwise_mul(og[0], F._mul_scalar(
             F.exp(F.negative(F.square(ins[0]))), scalar=_TWO_OVER_SQRT_PI))],
         lowering="math.erf({0})", eager_infer=False,
         samples=lambda rng: [Sample([_rand(rng, (2, 3))]), Sample([_rand(rng, (4,))])],
         doc="Gauss error function, elementwise.")


# ---------------------------------------------------------------------------------------
# Deconvolution
# ---------------------------------------------------------------------------------------
_DC_LAYOUTS = ("NCW", "NCHW", "NCDHW", "NHWC", "NDHWC")
_DC_ATTRS = {"kernel": Attr("shape"), "stride": Attr("shape", ()), "dilate": Attr("shape", ()),
             "pad": Attr("shape", ()), "adj": Attr("shape", ()), "target_shape": Attr("shape", ()),
             "num_filter": Attr("int"), "num_group": Attr("int", 1), "workspace": Attr("int", 512),
             "no_bias": Attr("bool", True),
             "cudnn_tune": Attr("str", None, choices=("off", "limited_workspace", "fastest")),
             "cudnn_off": _BOOL_F, "layout": Attr("str", None, choices=_DC_LAYOUTS)}


def _dc_geom(attrs, in_sp):
    """(kernel, stride, dilate, effective pad, effective adj, out spatial) for input spatial
    dims ``in_sp`` (0 = unknown gives 0).  See note *deconvolution-as-adjoint*."""
    op = "Deconvolution"
    k = tuple(attrs["kernel"])
    nsp = len(k)
    if nsp not in (1, 2, 3):
        raise MXNetError("%s: kernel must have 1, 2 or 3 entries, got %s" % (op, k))
    lay = attrs["layout"]
    if lay is not None and lay != _LAYOUTS[nsp]:
        raise MXNetError("%s: layout %s is not supported (only %s for a %d-D kernel)"
                         % (op, lay, _LAYOUTS[nsp], nsp))
    s, d, p = _spatial_params(op, attrs, nsp, k)
    adj = tuple(attrs["adj"]) or (0,) * nsp
    tgt = tuple(attrs["target_shape"])
    for name, v in (("adj", adj), ("target_shape", tgt)):
        if v and len(v) != nsp:
            raise MXNetError("%s: %s=%s must have %d entries (kernel=%s)" % (op, name, v, nsp, k))
    if any(v <= 0 for v in k + s + d) or any(v < 0 for v in p + adj):
        raise MXNetError("%s: kernel/stride/dilate must be positive, pad/adj non-negative "
                         "(kernel=%s stride=%s dilate=%s pad=%s adj=%s)" % (op, k, s, d, p, adj))
    use_tgt = bool(tgt) and any(t != 0 for t in tgt)
    pe, ae, out = [], [], []
    for i in range(nsp):
        ext = d[i] * (k[i] - 1) + 1
        x = in_sp[i] if in_sp is not None else 0
        pp, aa = p[i], adj[i]
        if use_tgt and x:
            full = s[i] * (x - 1) + ext
            if full < tgt[i]:
                raise MXNetError("%s: target_shape %s is too big for input spatial %s (at most "
                                 "%d on axis %d)" % (op, tgt, tuple(in_sp), full, i))
            t = full - tgt[i]
            aa, pp = t % 2, (t + 1) // 2
        if aa >= s[i]:
            raise MXNetError("%s: adj=%s must be smaller than stride=%s" % (op, adj, s))
        pe.append(pp)
        ae.append(aa)
        if not x:
            out.append(0)
            continue
        o = s[i] * (x - 1) + ext - 2 * pp + aa
        if o <= 0:
            raise MXNetError("%s: pad=%s is too large for input spatial %s (kernel %s, stride %s): "
                             "the output would be empty" % (op, p, tuple(in_sp), k, s))
        out.append(o)
    return k, s, d, tuple(pe), tuple(ae), tuple(out)


def _dc_conv_attrs(attrs, in_sp):
    """Attrs of the adjoint Convolution (note *deconvolution-as-adjoint*)."""
    k, s, d, p, a, osp = _dc_geom(attrs, in_sp)
    return {"kernel": k, "stride": s, "dilate": d, "pad": p, "num_group": attrs["num_group"],
            "layout": None}, osp


def _dc_infer(attrs, ins):
    op = "Deconvolution"
    nf, ng = attrs["num_filter"], attrs["num_group"]
    k = tuple(attrs["kernel"])
    if nf <= 0 or ng <= 0 or nf % ng:
        raise MXNetError("%s: num_filter=%d must be positive and divisible by num_group=%d" % (op, nf, ng))
    if attrs["no_bias"] and len(ins) > 2:
        raise MXNetError("%s: a bias input was given but no_bias=True (the default for "
                         "Deconvolution); pass no_bias=False to use a bias" % op)
    if not attrs["no_bias"] and len(ins) < 3:
        raise MXNetError("%s: bias is required when no_bias=False" % op)
    x, w = ins[0], ins[1]
    if x is None:
        _dc_geom(attrs, None)
        return list(ins), [None]
    if len(x) != len(k) + 2:
        raise MXNetError("%s: data must be %d-D (%s) for kernel %s, got %s"
                         % (op, len(k) + 2, _LAYOUTS.get(len(k), "?"), k, fmt(x)))
    c = x[1]
    if c and c % ng:
        raise MXNetError("%s: input channels %d not divisible by num_group=%d" % (op, c, ng))
    want = (c, nf // ng) + k
    try:
        w = merge_shape(op, "weight", w, want)
    except MXNetError:
        raise MXNetError("%s: weight shape %s is inconsistent with data %s (expected %s: "
                         "(in_channels, num_filter/num_group, *kernel))"
                         % (op, fmt(w), fmt(x), fmt(want))) from None
    osp = _dc_geom(attrs, x[2:])[5]
    res = [x, w]
    if len(ins) > 2:
        try:
            res.append(merge_shape(op, "bias", ins[2], (nf,)))
        except MXNetError:
            raise MXNetError("%s: bias shape %s must be (%d,)" % (op, fmt(ins[2]), nf)) from None
    return res, [(x[0], nf) + osp]


def _dc_np(x, w, attrs):
    cattrs, osp = _dc_conv_attrs(attrs, x.shape[2:])
    like = np.broadcast_to(np.zeros((), dtype=x.dtype), (x.shape[0], attrs["num_filter"]) + osp)
    return _conv_bwd_data_np(x, like, w, cattrs)


def _dc_fwd(attrs, ins, ctx):
    x, w = ins[0], ins[1]
    y = _dc_np(x, w, attrs)
    if len(ins) > 2:
        y = y + ins[2].reshape((1, -1) + (1,) * (y.ndim - 2))
    return [np.ascontiguousarray(y.astype(x.dtype, copy=False))]


def _dc_kw(attrs):
    keys = ("kernel", "stride", "dilate", "pad", "adj", "target_shape", "num_filter", "num_group")
    return {k: attrs[k] for k in keys if attrs[k] != _DC_ATTRS[k].default}


def _dc_grad(F, attrs, ins, outs, og, ctx):
    x, w = ins[0], ins[1]
    g = og[0]
    kw = _dc_kw(attrs)
    res = [F._backward_Deconvolution_data(g, x, w, **kw) if grad_needed(ctx, 0) else None,
           F._backward_Deconvolution_weight(g, x, w, **kw) if grad_needed(ctx, 1) else None]
    if len(ins) > 2:
        res.append(F.sum(g, axis=1, exclude=True) if grad_needed(ctx, 2) else None)
    return res


def _dc_samples(rng):
    r = lambda *s: _rand(rng, s)
    return [Sample([r(1, 2, 3, 3), r(2, 3, 3, 3)], {"kernel": (3, 3), "num_filter": 3}),
            Sample([r(1, 2, 3, 3), r(2, 3, 3, 3), r(3)],
                   {"kernel": (3, 3), "num_filter": 3, "no_bias": False}),
            Sample([r(2, 2, 3, 2), r(2, 2, 3, 3)],
                   {"kernel": (3, 3), "num_filter": 2, "stride": (2, 2), "pad": (1, 1), "adj": (1, 0)}),
            Sample([r(1, 4, 3, 3), r(4, 1, 2, 2)],
                   {"kernel": (2, 2), "num_filter": 2, "num_group": 2, "dilate": (2, 1)}),
            Sample([r(2, 2, 4), r(2, 2, 3), r(4)],
                   {"kernel": (3,), "num_filter": 4, "num_group": 2, "stride": (2,), "adj": (1,),
                    "no_bias": False}),
            Sample([r(1, 2, 4, 4), r(2, 3, 3, 3)],
                   {"kernel": (3, 3), "num_filter": 3, "stride": (2, 2), "target_shape": (8, 8)}),
            Sample([r(1, 1, 2, 3, 2), r(1, 2, 2, 2, 2)], {"kernel": (2, 2, 2), "num_filter": 2,
                                                         "pad": (1, 0, 0)})]


def _dc_geom_lowered(data_index):
    """geom(ctx) of conv_lowering: (stride, pad, dilate) of the adjoint convolution as 2-D
    (1-D as H = 1) or 3-D tuples.  With a target_shape the pad depends on the input size
    (note *deconvolution-as-adjoint*): it is computed at run time from the shape of the
    op's input ``data_index`` (the deconvolution's data), so the kernel module stays right
    for other shapes of the same graph."""
    def geom(ctx):
        a = ctx.attrs
        k, s, d, p, _adj, _out = _dc_geom(a, None)
        tgt = tuple(a["target_shape"])
        if any(tgt):
            x = ctx.ins[data_index]
            p = tuple("(%d * (%s.shape[%d] - 1) + %d - %d + 1) // 2"
                      % (s[i], x, 2 + i, d[i] * (k[i] - 1) + 1, tgt[i]) for i in range(len(k)))
        if len(k) == 1:
            s, d, p = (1,) + s, (1,) + d, (0,) + p
        return s, p, d
    return geom


register("Deconvolution", inputs=("data", "weight", "bias"), attrs=dict(_DC_ATTRS),
         infer_shape=_dc_infer, forward=_dc_fwd, gradient=_dc_grad,
         lowering=conv_lowering("conv2d_bwd_data", (0, 1), _dc_geom_lowered(0), bias=2),
         optional_inputs=("bias",), samples=_dc_samples,
         doc="Transposed convolution (NCW/NCHW/NCDHW); weight is (in_channels, "
             "num_filter/num_group, *kernel); no_bias defaults to True (note "
             "*deconvolution-as-adjoint*).")


def _dc_bwd_infer(which):
    name = ("_backward_Deconvolution_data", "_backward_Deconvolution_weight")[which]

    def infer(attrs, ins):
        bwd_geometry_check(name, "Deconvolution", _dc_infer, attrs, ins)
        return ins, [ins[1] if which == 0 else ins[2]]
    return infer


def _dc_bwd_data_np(g, x, w, attrs):
    cattrs, osp = _dc_conv_attrs(attrs, x.shape[2:])
    return np.ascontiguousarray(_conv_np(g, w, cattrs).astype(x.dtype, copy=False))


def _dc_bwd_weight_np(g, x, w, attrs):
    cattrs, osp = _dc_conv_attrs(attrs, x.shape[2:])
    return np.ascontiguousarray(_conv_bwd_weight_np(x, g, w, cattrs).astype(w.dtype, copy=False))


def _dc_bwd_data_grad(F, attrs, ins, outs, og, ctx):
    g, x, w = ins
    kw = _dc_kw(attrs)
    return [F.Deconvolution(og[0], w, **kw) if grad_needed(ctx, 0) else None, None,
            F._backward_Deconvolution_weight(g, og[0], w, **kw) if grad_needed(ctx, 2) else None]


def _dc_bwd_weight_grad(F, attrs, ins, outs, og, ctx):
    g, x, w = ins
    kw = _dc_kw(attrs)
    return [F.Deconvolution(x, og[0], **kw) if grad_needed(ctx, 0) else None,
            F._backward_Deconvolution_data(g, x, og[0], **kw) if grad_needed(ctx, 1) else None, None]


def _dc_bwd_samples(rng):
    out = []
    for smp in _dc_samples(rng):
        x, w = smp.inputs[:2]
        a = dict(smp.attrs)
        a.pop("no_bias", None)
        full = {k: a.get(k, v.default) for k, v in _DC_ATTRS.items()}
        g = _rand(rng, _dc_infer(full, [x.shape, w.shape])[1][0])
        out.append(Sample([g, x, w], a))
    return out


register("_backward_Deconvolution_data", inputs=("ograd", "data", "weight"), attrs=dict(_DC_ATTRS),
         infer_shape=_dc_bwd_infer(0), infer_type=_bwd_dot_type(0),
         forward=lambda attrs, ins, ctx: [_dc_bwd_data_np(ins[0], ins[1], ins[2], attrs)],
         gradient=_dc_bwd_data_grad, samples=_dc_bwd_samples,
         lowering=conv_lowering("conv2d_fwd", (0, 2), _dc_geom_lowered(1)),
         doc="Deconvolution gradient w.r.t. data: the adjoint Convolution of ograd (data gives "
             "the shape; note *deconvolution-as-adjoint*).")
register("_backward_Deconvolution_weight", inputs=("ograd", "data", "weight"), attrs=dict(_DC_ATTRS),
         infer_shape=_dc_bwd_infer(1), infer_type=_bwd_dot_type(1),
         forward=lambda attrs, ins, ctx: [_dc_bwd_weight_np(ins[0], ins[1], ins[2], attrs)],
         gradient=_dc_bwd_weight_grad, samples=_dc_bwd_samples,
         lowering=conv_lowering("conv2d_bwd_weight", (1, 0), _dc_geom_lowered(1)),
         doc="Deconvolution gradient w.r.t. weight (weight gives the shape; note "
             "*deconvolution-as-adjoint*).")


# ---------------------------------------------------------------------------------------
# InstanceNorm / GroupNorm (note grouped-norm-gradient)
# ---------------------------------------------------------------------------------------
def _rows_norm_np(x3, eps):
    mean = x3.mean(axis=2, keepdims=True)
    var = x3.var(axis=2, keepdims=True)
    std = np.sqrt(var + eps)
    return (x3 - mean) / std, mean, var, std


def _rows_norm_grad(F, x3, g3, gamma, eps):
    """(gx3, ggamma, gbeta) for y3 = xhat(x3) * gamma[row] + beta[row] on an (N, G, M) view."""
    mu = F.mean(x3, axis=2, keepdims=True)
    xc = F.broadcast_sub(x3, mu)
    rstd = F.rsqrt(F._plus_scalar(F.mean(F.square(xc), axis=2, keepdims=True), scalar=eps))
    xhat = F.broadcast_mul(xc, rstd)
    gg = F.broadcast_mul(g3, F._nn_channel_view(gamma, x3, axis=1))
    inner = F.elemwise_sub(F.broadcast_sub(gg, F.mean(gg, axis=2, keepdims=True)),
                           F.broadcast_mul(xhat, F.mean(F.elemwise_mul(gg, xhat), axis=2, keepdims=True)))
    gx3 = F.broadcast_mul(inner, rstd)
    # sums over axes 2 then 0 (two contiguous reductions the JIT lowers)
    ggamma = F.sum(F.sum(F.elemwise_mul(g3, xhat), axis=2), axis=0)
    gbeta = F.sum(F.sum(g3, axis=2), axis=0)
    return gx3, ggamma, gbeta


def _in_infer(attrs, ins):
    op = "InstanceNorm"
    d = ins[0]
    if d is None:
        c = None
        for s in ins[1:]:
            if s is not None:
                c = merge_shape(op, "gamma/beta", c, s)
        return [d, c, c], [None, None, None]
    if len(d) < 3:
        raise MXNetError("%s: only input tensors of rank >= 3 (N, C, spatial...) are supported, "
                         "got %s" % (op, fmt(d)))
    c = (d[1],)
    res = [d]
    for n, s in zip(("gamma", "beta"), ins[1:]):
        try:
            res.append(merge_shape(op, n, s, c))
        except MXNetError:
            raise MXNetError("%s: %s shape %s must be %s (data %s)"
                             % (op, n, fmt(s), fmt(c), fmt(d))) from None
    st = (d[0], d[1])
    return res, [d, st, st]


def _in_fwd(attrs, ins, ctx):
    x, gamma, beta = ins
    n, c = x.shape[:2]
    xhat, mean, var, std = _rows_norm_np(x.reshape(n, c, -1), attrs["eps"])
    y = xhat * gamma.reshape(1, c, 1) + beta.reshape(1, c, 1)
    dt = x.dtype
    return [np.ascontiguousarray(y.reshape(x.shape).astype(dt, copy=False)),
            mean.reshape(n, c).astype(dt), var.reshape(n, c).astype(dt)]


def _in_grad(F, attrs, ins, outs, og, ctx):
    x, gamma, beta = ins
    x3 = F.Reshape(x, shape=(0, 0, -1))
    g3 = F.Reshape(og[0], shape=(0, 0, -1))
    gx3, gg, gb = _rows_norm_grad(F, x3, g3, gamma, attrs["eps"])
    return [F._nn_reshape_like(gx3, x), gg, gb]


register("InstanceNorm", inputs=("data", "gamma", "beta"), attrs={"eps": Attr("float", 1e-3)},
         infer_shape=_in_infer, forward=_in_fwd, gradient=_in_grad,
         num_outputs=3, num_visible=1, output_names=("output", "mean", "var"),
         lowering=_lower_rownorm("in"),
         samples=lambda rng: [
             Sample([_rand(rng, (2, 3, 2, 2)), _rand(rng, (3,), 0.5, 1.5), _rand(rng, (3,))]),
             Sample([_rand(rng, (2, 2, 5)), _rand(rng, (2,), 0.5, 1.5), _rand(rng, (2,))], {"eps": 0.1})],
         doc="Instance normalisation: per sample and channel over the spatial axes (biased "
             "variance), then gamma[c] * xhat + beta[c].")


def _gn_infer(attrs, ins):
    op = "GroupNorm"
    G = attrs["num_groups"]
    if G <= 0:
        raise MXNetError("%s: num_groups must be positive, got %d" % (op, G))
    d = ins[0]
    gs = (G,)
    res = [d]
    for n, s in zip(("gamma", "beta"), ins[1:]):
        try:
            res.append(merge_shape(op, n, s, gs))
        except MXNetError:
            raise MXNetError("%s: %s shape %s must be (num_groups,) = %s in MXNet 1.9.1"
                             % (op, n, fmt(s), fmt(gs))) from None
    if d is None:
        return res, [None, None, None]
    if len(d) < 2:
        raise MXNetError("%s: data must have at least 2 dimensions (N, C, ...), got %s" % (op, fmt(d)))
    if d[1] and d[1] % G:
        raise MXNetError("%s: channels %d of data %s are not divisible by num_groups=%d"
                         % (op, d[1], fmt(d), G))
    st = (d[0], G)
    return res, [d, st, st]


def _gn_fwd(attrs, ins, ctx):
    x, gamma, beta = ins
    G = attrs["num_groups"]
    n = x.shape[0]
    xhat, mean, var, std = _rows_norm_np(x.reshape(n, G, -1), attrs["eps"])
    y = xhat * gamma.reshape(1, G, 1) + beta.reshape(1, G, 1)
    dt = x.dtype
    return [np.ascontiguousarray(y.reshape(x.shape).astype(dt, copy=False)),
            mean.reshape(n, G).astype(dt), std.reshape(n, G).astype(dt)]


def _gn_grad(F, attrs, ins, outs, og, ctx):
    x, gamma, beta = ins
    G = attrs["num_groups"]
    x3 = F.Reshape(x, shape=(0, G, -1))
    g3 = F.Reshape(og[0], shape=(0, G, -1))
    gx3, gg, gb = _rows_norm_grad(F, x3, g3, gamma, attrs["eps"])
    return [F._nn_reshape_like(gx3, x), gg, gb]


register("GroupNorm", inputs=("data", "gamma", "beta"),
         attrs={"num_groups": Attr("int", 1), "eps": Attr("float", 1e-5), "output_mean_var": _BOOL_F},
         infer_shape=_gn_infer, forward=_gn_fwd, gradient=_gn_grad,
         num_outputs=3, num_visible=lambda attrs: 3 if attrs["output_mean_var"] else 1,
         output_names=("output", "mean", "std"), lowering=_lower_rownorm("gn"),
         samples=lambda rng: [
             Sample([_rand(rng, (2, 4, 3)), _rand(rng, (2,), 0.5, 1.5), _rand(rng, (2,))], {"num_groups": 2}),
             Sample([_rand(rng, (2, 3, 2, 2)), _rand(rng, (1,), 0.5, 1.5), _rand(rng, (1,))], {"eps": 0.01}),
             Sample([_rand(rng, (3, 4)), _rand(rng, (2,), 0.5, 1.5), _rand(rng, (2,))],
                    {"num_groups": 2})],
         doc="Group normalisation: channels split into num_groups groups, each normalised per "
             "sample over its channels and spatial axes; gamma/beta have shape (num_groups,) "
             "as in MXNet 1.9.1 (one scale per group).  Hidden outputs: mean and std, (N, G).")


# ---------------------------------------------------------------------------------------
# L2Normalization
# ---------------------------------------------------------------------------------------
def _l2_axes(mode, ndim):
    if mode == "instance":
        return tuple(range(1, ndim))
    if mode == "channel":
        return (1,)
    return tuple(range(2, ndim))


def _l2_red(mode):
    if mode == "instance":
        return {"axis": 0, "exclude": True}
    if mode == "channel":
        return {"axis": 1}
    return {"axis": (0, 1), "exclude": True}


def _l2_infer(attrs, ins):
    d = ins[0]
    if d is None:
        return ins, [None, None]
    mode = attrs["mode"]
    if len(d) < 1:
        raise MXNetError("L2Normalization: data must have at least 1 dimension")
    if mode != "instance" and len(d) < 3:
        raise MXNetError("L2Normalization: mode=%r needs at least 3 dimensions, got data %s"
                         % (mode, fmt(d)))
    if mode == "instance":
        ns = (d[0],)
    elif mode == "channel":
        ns = (d[0], 1) + tuple(d[2:])
    else:
        ns = (d[0], d[1])
    return ins, [d, ns]


def _l2_fwd(attrs, ins, ctx):
    x = ins[0]
    ax = _l2_axes(attrs["mode"], x.ndim)
    norm = np.sqrt(np.sum(np.square(x), axis=ax, keepdims=True) + attrs["eps"])
    y = (x / norm).astype(x.dtype, copy=False)
    ns = _l2_infer(attrs, [x.shape])[1][1]
    return [np.ascontiguousarray(y), norm.reshape(ns).astype(x.dtype)]


def _l2_grad(F, attrs, ins, outs, og, ctx):
    x, y, g = ins[0], outs[0], og[0]
    red = _l2_red(attrs["mode"])
    n = F.sqrt(F._plus_scalar(F.sum(F.square(x), keepdims=True, **red), scalar=attrs["eps"]))
    s = F.sum(F.elemwise_mul(g, y), keepdims=True, **red)
    return [F.broadcast_div(F.elemwise_sub(g, F.broadcast_mul(y, s)), n)]


def _lower_l2(ctx):
    """One kernel over the data viewed as (pre, reduced, post): instance (N, rest, 1),
    channel (N, C, rest), spatial (N*C, rest, 1)."""
    nd = ctx.in_ndim[0]
    mode = ctx.attrs["mode"]
    if nd < (2 if mode == "instance" else 3):
        return None
    x, out, norm = ctx.ins[0], ctx.outs[0], ctx.outs[1]

    def dims(ks):
        return " * ".join(["1"] + ["%s.shape[%d]" % (x, k) for k in ks])
    pre, mid, post = {"instance": ([0], range(1, nd), []), "channel": ([0], [1], range(2, nd)),
                      "spatial": ([0, 1], range(2, nd), [])}[mode]
    sh = ctx.tmp("s")
    x3, o3, n2 = ctx.tmp("v"), ctx.tmp("v"), ctx.tmp("v")
    return ["%s = (%s, %s, %s)" % (sh, dims(pre), dims(mid), dims(post)),
            "%s = %s.reshape(%s)" % (x3, x, sh), "%s = %s.reshape(%s)" % (o3, out, sh),
            "%s = %s.reshape((%s[0], %s[2]))" % (n2, norm, sh, sh),
            "%s(%s, %s, %s, %s)" % (ctx.fn("l2norm_fwd"), x3, o3, n2, _f64(ctx.attrs["eps"]))]


register("L2Normalization", inputs=("data",),
         attrs={"eps": Attr("float", 1e-10),
                "mode": Attr("str", "instance", choices=("channel", "instance", "spatial"))},
         infer_shape=_l2_infer, forward=_l2_fwd, gradient=_l2_grad,
         num_outputs=2, num_visible=1, output_names=("output", "norm"),
         lowering=KernelCall(_lower_l2, uses=("l2norm_fwd",)),
         samples=lambda rng: [Sample([_rand(rng, (2, 3, 2))], {"mode": m}) for m in
                              ("instance", "channel", "spatial")] + [
             Sample([_rand(rng, (3, 4))], {"eps": 0.5})],
         doc="x / sqrt(sum(x^2) + eps) over every axis but 0 (instance), over axis 1 (channel) "
             "or over the spatial axes 2.. (spatial).")


# ---------------------------------------------------------------------------------------
# Pad
# ---------------------------------------------------------------------------------------
_PAD_ATTRS = {"mode": Attr("str", choices=("constant", "edge", "reflect")),
              "pad_width": Attr("shape"), "constant_value": Attr("float", 0.0)}


def _pad_pairs(attrs, dshape):
    op = "Pad"
    pw = tuple(attrs["pad_width"])
    nd = len(dshape)
    if nd not in (4, 5):
        raise MXNetError("%s: only 4-D or 5-D input is supported, got data %s" % (op, fmt(dshape)))
    if len(pw) != 2 * nd:
        raise MXNetError("%s: pad_width=%s must have 2 * ndim = %d entries for data %s"
                         % (op, pw, 2 * nd, fmt(dshape)))
    if any(pw[:4]):
        raise MXNetError("%s: padding the batch and channel axes is not supported "
                         "(pad_width=%s must start with four zeros)" % (op, pw))
    if any(v < 0 for v in pw):
        raise MXNetError("%s: pad_width=%s must be non-negative" % (op, pw))
    pairs = [(pw[2 * i], pw[2 * i + 1]) for i in range(nd)]
    if attrs["mode"] == "reflect":
        for (b, a), x in zip(pairs[2:], dshape[2:]):
            if x and (b >= x or a >= x):
                raise MXNetError("%s: reflection padding %s must be smaller than the input size "
                                 "on each axis (data %s)" % (op, pw, fmt(dshape)))
    return pairs


def _pad_infer(attrs, ins):
    d = ins[0]
    if d is None:
        return ins, [None]
    pairs = _pad_pairs(attrs, d)
    return ins, [tuple((x + b + a) if x else 0 for x, (b, a) in zip(d, pairs))]


def _pad_fwd(attrs, ins, ctx):
    x = ins[0]
    pairs = _pad_pairs(attrs, x.shape)
    if attrs["mode"] == "constant":
        y = np.pad(x, pairs, mode="constant", constant_values=attrs["constant_value"])
    else:
        y = np.pad(x, pairs, mode=attrs["mode"])
    return [np.ascontiguousarray(y.astype(x.dtype, copy=False))]


def _pad_source(mode, n, before, after):
    """For each padded position along one axis, its source index (-1: a constant)."""
    j = np.arange(n + before + after) - before
    if mode == "constant":
        return np.where((j >= 0) & (j < n), j, -1)
    if mode == "edge":
        return np.clip(j, 0, n - 1)
    j = np.abs(j)
    return np.where(j > n - 1, 2 * (n - 1) - j, j)


def _pad_bwd_np(g, x, attrs):
    pairs = _pad_pairs(attrs, x.shape)
    out = g
    for ax in range(2, x.ndim):
        b, a = pairs[ax]
        if not b and not a:
            continue
        src = _pad_source(attrs["mode"], x.shape[ax], b, a)
        gt = np.moveaxis(out, ax, 0)
        acc = np.zeros((x.shape[ax],) + gt.shape[1:], dtype=g.dtype)
        keep = src >= 0
        np.add.at(acc, src[keep], gt[keep])
        out = np.moveaxis(acc, 0, ax)
    return np.ascontiguousarray(out)


def _pad_kw(attrs):
    return {"mode": attrs["mode"], "pad_width": attrs["pad_width"]}


def _pad_samples(rng):
    r = lambda *s: _rand(rng, s)
    return [Sample([r(1, 2, 2, 3)], {"mode": "constant", "pad_width": (0, 0, 0, 0, 1, 1, 2, 1),
                                     "constant_value": 0.5}),
            Sample([r(1, 2, 2, 3)], {"mode": "edge", "pad_width": (0, 0, 0, 0, 1, 2, 2, 1)}),
            Sample([r(2, 1, 3, 3)], {"mode": "reflect", "pad_width": (0, 0, 0, 0, 2, 1, 1, 2)}),
            Sample([r(1, 1, 2, 3, 3)], {"mode": "reflect", "pad_width": (0, 0, 0, 0, 1, 0, 0, 2, 1, 1)})]


def _lower_pad(backward):
    """Pad / _backward_Pad inside ``mx.jit``: loops over the padded array, each position's
    source index per spatial axis computed as ``_pad_source`` does (constant: outside the
    data; edge: clipped; reflect: mirrored); the forward copies (or writes the constant),
    the backward adds the gradient onto the source (into a zeroed data-shaped output)."""
    def emit(ctx):
        a = ctx.attrs
        nd = ctx.out_ndim[0]
        if nd not in (4, 5):
            return None
        pw = tuple(a["pad_width"])
        mode = a["mode"]
        if backward:
            big, small = ctx.ins[0], ctx.outs[0]
        else:
            big, small = ctx.outs[0], ctx.ins[0]
        lines = []
        if backward:
            z = ctx.tmp("i")
            lines += ["for %s in range(%s.size):" % (z, small),
                      "    %s.reshape(-1)[%s] = 0" % (small, z)]
        idx = [ctx.tmp("i") for _ in range(nd)]
        ind = ""
        for k in range(nd):
            lines.append("%sfor %s in range(%s.shape[%d]):" % (ind, idx[k], big, k))
            ind += "    "
        src, inside = list(idx[:2]), []
        for k in range(2, nd):
            j, n = ctx.tmp("j"), "%s.shape[%d]" % (small, k)
            lines.append("%s%s = %s - %d" % (ind, j, idx[k], pw[2 * k]))
            if mode == "edge":
                lines.append("%s%s = min(max(%s, 0), %s - 1)" % (ind, j, j, n))
            elif mode == "reflect":
                lines += ["%s%s = abs(%s)" % (ind, j, j),
                          "%sif %s > %s - 1:" % (ind, j, n),
                          "%s    %s = 2 * (%s - 1) - %s" % (ind, j, n, j)]
            else:
                inside.append("0 <= %s < %s" % (j, n))
            src.append(j)
        bpos, spos = ", ".join(idx), ", ".join(src)
        if backward:
            body = ["%s[%s] += %s[%s]" % (small, spos, big, bpos)]
            if inside:
                body = ["if %s:" % " and ".join(inside), "    " + body[0]]
        elif inside:
            body = ["if %s:" % " and ".join(inside),
                    "    %s[%s] = %s[%s]" % (big, bpos, small, spos),
                    "else:",
                    "    %s[%s] = %s" % (big, bpos, ctx.const(a["constant_value"]))]
        else:
            body = ["%s[%s] = %s[%s]" % (big, bpos, small, spos)]
        return lines + [ind + ln for ln in body]
    return emit


register("Pad", inputs=("data",), attrs=dict(_PAD_ATTRS), aliases=("pad",),
         infer_shape=_pad_infer, forward=_pad_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._backward_Pad(og[0], ins[0], **_pad_kw(attrs))],
         lowering=_lower_pad(False), samples=_pad_samples,
         doc="Pads the spatial axes of 4-D/5-D data (constant with constant_value, edge, or "
             "reflect, which needs pads smaller than the axis); pad_width is (before_1, after_1, "
             "...) with zeros for N and C.")


def _pad_bwd_samples(rng):
    out = []
    for smp in _pad_samples(rng):
        x = smp.inputs[0]
        a = dict(smp.attrs)
        a.pop("constant_value", None)
        full = dict(a, constant_value=0.0)
        out.append(Sample([_rand(rng, _pad_infer(full, [x.shape])[1][0]), x], a))
    return out


register("_backward_Pad", inputs=("ograd", "data"), attrs=dict(_PAD_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [ins[1]]), infer_type=_bwd_dot_type(0),
         forward=lambda attrs, ins, ctx: [_pad_bwd_np(ins[0], ins[1], attrs)],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F.Pad(og[0], constant_value=0.0, **_pad_kw(attrs)), None],
         lowering=_lower_pad(True), samples=_pad_bwd_samples,
         doc="Pad's gradient: each padded position's gradient added to its source element "
             "(constants get none); data gives the shape.  Its adjoint is Pad with 0 constants.")


# ---------------------------------------------------------------------------------------
# UpSampling
# ---------------------------------------------------------------------------------------
def _up_inputs(attrs):
    if attrs.get("sample_type") == "bilinear":
        return ("data", "weight")
    return ["arg%d" % i for i in range(attrs.get("num_args") or 1)]


def _bilinear_attrs(attrs):
    s = attrs["scale"]
    k = 2 * s - s % 2
    p = int(math.ceil((s - 1) / 2.0))
    nf = attrs["num_filter"]
    return {"kernel": (k, k), "stride": (s, s), "pad": (p, p), "num_filter": nf, "num_group": nf,
            "no_bias": True}


def _dc_full(kw):
    return {k: kw.get(k, v.default) for k, v in _DC_ATTRS.items()}


def _up_infer(attrs, ins):
    op = "UpSampling"
    s = attrs["scale"]
    if s <= 0:
        raise MXNetError("%s: scale must be positive, got %d" % (op, s))
    if attrs["sample_type"] == "bilinear":
        if len(ins) != 2:
            raise MXNetError("%s: bilinear upsampling takes 2 inputs (data, weight), got %d" % (op, len(ins)))
        d, w = ins
        if attrs["num_filter"] <= 0:
            raise MXNetError("%s: bilinear upsampling needs num_filter (the number of channels)" % op)
        if d is None:
            return ins, [None]
        if len(d) != 4:
            raise MXNetError("%s: data must be 4-D (N, C, H, W), got %s" % (op, fmt(d)))
        (x, w2), outs = _dc_infer(_dc_full(_bilinear_attrs(attrs)), [d, w])
        return [x, w2], outs
    known = [x for x in ins if x is not None]
    if len(known) < len(ins):
        return ins, [None]
    for x in ins:
        if len(x) != 4:
            raise MXNetError("%s: every input must be 4-D (N, C, H, W), got %s" % (op, fmt(x)))
    oh, ow = ins[0][2] * s, ins[0][3] * s
    c = 0
    for x in ins:
        if x[0] != ins[0][0]:
            raise MXNetError("%s: inputs must have the same batch size, got %s"
                             % (op, ", ".join(fmt(i) for i in ins)))
        if oh % x[2] or ow % x[3] or oh // x[2] != ow // x[3]:
            raise MXNetError("%s: input %s cannot be upsampled by an integer factor to the "
                             "output size (%d, %d)" % (op, fmt(x), oh, ow))
        if attrs["multi_input_mode"] == "sum":
            if x[1] != ins[0][1]:
                raise MXNetError("%s: multi_input_mode='sum' needs equal channels, got %s"
                                 % (op, ", ".join(fmt(i) for i in ins)))
            c = x[1]
        else:
            c += x[1]
    return ins, [(ins[0][0], c, oh, ow)]


def _up_fwd(attrs, ins, ctx):
    if attrs["sample_type"] == "bilinear":
        x, w = ins
        return [np.ascontiguousarray(_dc_np(x, w, _dc_full(_bilinear_attrs(attrs)))
                                     .astype(x.dtype, copy=False))]
    oh = ins[0].shape[2] * attrs["scale"]
    parts = []
    for x in ins:
        b = oh // x.shape[2]
        parts.append(np.repeat(np.repeat(x, b, axis=2), b, axis=3))
    if len(parts) == 1:
        y = parts[0]
    elif attrs["multi_input_mode"] == "sum":
        y = sum(parts[1:], parts[0])
    else:
        y = np.concatenate(parts, axis=1)
    return [np.ascontiguousarray(y.astype(ins[0].dtype, copy=False))]


def _up_grad(F, attrs, ins, outs, og, ctx):
    g = og[0]
    s = attrs["scale"]
    if attrs["sample_type"] == "bilinear":
        x, w = ins
        kw = _bilinear_attrs(attrs)
        kw.pop("no_bias")
        return [F._backward_Deconvolution_data(g, x, w, **kw),
                F._backward_Deconvolution_weight(g, x, w, **kw)]
    if len(ins) == 1:
        return [F.Pooling(g, kernel=(s, s), stride=(s, s), pool_type="sum")]
    kw = {"scale": s, "multi_input_mode": attrs["multi_input_mode"]}
    return [F._backward_UpSampling_nearest(g, *ins, index=i, **kw) for i in range(len(ins))]


def _up_slot(attrs, data, gshape):
    """(channel slice of the output, repeat factor) of input ``index``."""
    i = attrs["index"]
    if not 0 <= i < len(data):
        raise MXNetError("UpSampling gradient: index %d out of range for %d inputs" % (i, len(data)))
    x = data[i]
    c0 = 0 if attrs["multi_input_mode"] == "sum" else sum(d.shape[1] for d in data[:i])
    return slice(c0, c0 + x.shape[1]), gshape[2] // x.shape[2]


def _up_nearest_bwd_np(attrs, ins):
    """Input ``index``'s gradient: its channel slice of ograd (concat) or all of it (sum),
    summed over each block of the repeat factor output_height / input_height."""
    g, data = ins[0], ins[1:]
    cs, b = _up_slot(attrs, data, g.shape)
    n, c, h, w = data[attrs["index"]].shape
    return [np.ascontiguousarray(g[:, cs].reshape(n, c, h, b, w, b).sum(axis=(3, 5)))]


def _up_nearest_place_np(attrs, ins):
    """The adjoint: ``h`` (input ``index``'s shape) repeated into its slot of a zero array
    shaped like ograd."""
    h, like, data = ins[0], ins[1], ins[2:]
    cs, b = _up_slot(attrs, data, like.shape)
    out = np.zeros(like.shape, dtype=h.dtype)
    out[:, cs] = np.repeat(np.repeat(h, b, axis=2), b, axis=3)
    return [out]


def _up_kw(attrs):
    return {"index": attrs["index"], "scale": attrs["scale"],
            "multi_input_mode": attrs["multi_input_mode"]}


def _up_nearest_bwd_samples(rng):
    out = []
    for smp in _up_samples(rng):
        if smp.attrs["sample_type"] != "nearest" or len(smp.inputs) < 2:
            continue
        full = dict({"num_filter": 0, "multi_input_mode": "concat", "num_args": len(smp.inputs)},
                    **smp.attrs)
        g = _rand(rng, _up_infer(full, [x.shape for x in smp.inputs])[1][0])
        for i in range(len(smp.inputs)):
            out.append(Sample([g] + list(smp.inputs),
                              {"index": i, "scale": smp.attrs["scale"],
                               "multi_input_mode": full["multi_input_mode"]}))
    return out


def _up_place_samples(rng):
    return [Sample([_rand(rng, smp.inputs[1 + smp.attrs["index"]].shape)] + list(smp.inputs),
                   smp.attrs) for smp in _up_nearest_bwd_samples(rng)]


def _lower_up_nearest(kind):
    """Nearest UpSampling inside ``mx.jit`` (``fwd``: every input repeated by its factor
    output_height // input_height into its channel slot -- or added, multi_input_mode='sum',
    in input order as the eager kernel), its gradient for input ``index`` (``bwd``: ograd's
    slot summed over each factor x factor block) and that gradient's adjoint (``place``).
    Bilinear upsampling runs eagerly."""
    def emit(ctx):
        a = ctx.attrs
        if kind == "fwd" and a["sample_type"] != "nearest":
            return None
        if any(n != 4 for n in ctx.in_ndim):
            return None
        out = ctx.outs[0]
        s_ = a["multi_input_mode"] == "sum"
        n, c, y, x = (ctx.tmp(v) for v in "ncyx")
        lines = []
        if kind == "fwd":
            c0 = ctx.tmp("o")
            lines.append("%s = 0" % c0)
            for k, v in enumerate(ctx.ins):
                b = ctx.tmp("b")
                op = "+=" if s_ and k else "="
                lines += ["%s = %s.shape[2] // %s.shape[2]" % (b, out, v),
                          "for %s in range(%s.shape[0]):" % (n, v),
                          "    for %s in range(%s.shape[1]):" % (c, v),
                          "        for %s in range(%s.shape[2]):" % (y, out),
                          "            for %s in range(%s.shape[3]):" % (x, out),
                          "                %s[%s, %s + %s, %s, %s] %s %s[%s, %s, %s // %s, %s // %s]"
                          % (out, n, c0, c, y, x, op, v, n, c, y, b, x, b)]
                if not s_:
                    lines.append("%s += %s.shape[1]" % (c0, v))
            return lines
        i = a["index"]
        data = ctx.ins[1:] if kind == "bwd" else ctx.ins[2:]
        if not 0 <= i < len(data):
            return None
        g = ctx.ins[0]
        big = g if kind == "bwd" else ctx.ins[1]          # ograd / like: the output's shape
        c0 = " + ".join(["0"] + ([] if s_ else ["%s.shape[1]" % d for d in data[:i]]))
        small = out if kind == "bwd" else g
        b = ctx.tmp("b")
        lines.append("%s = %s.shape[2] // %s.shape[2]" % (b, big, small))
        if kind == "bwd":
            p, q = ctx.tmp("p"), ctx.tmp("q")
            return lines + [
                "for %s in range(%s.shape[0]):" % (n, out),
                "    for %s in range(%s.shape[1]):" % (c, out),
                "        for %s in range(%s.shape[2]):" % (y, out),
                "            for %s in range(%s.shape[3]):" % (x, out),
                "                %s[%s, %s, %s, %s] = 0" % (out, n, c, y, x),
                "                for %s in range(%s):" % (p, b),
                "                    for %s in range(%s):" % (q, b),
                "                        %s[%s, %s, %s, %s] += %s[%s, %s + %s, %s * %s + %s, "
                "%s * %s + %s]" % (out, n, c, y, x, g, n, c0, c, y, b, p, x, b, q)]
        z = ctx.tmp("i")
        return lines + [
            "for %s in range(%s.size):" % (z, out),
            "    %s.reshape(-1)[%s] = 0" % (out, z),
            "for %s in range(%s.shape[0]):" % (n, g),
            "    for %s in range(%s.shape[1]):" % (c, g),
            "        for %s in range(%s.shape[2]):" % (y, out),
            "            for %s in range(%s.shape[3]):" % (x, out),
            "                %s[%s, %s + %s, %s, %s] = %s[%s, %s, %s // %s, %s // %s]"
            % (out, n, c0, c, y, x, g, n, c, y, b, x, b)]
    return emit


_UP_BWD_ATTRS = {"num_args": Attr("int"), "index": Attr("int"), "scale": Attr("int"),
                 "multi_input_mode": Attr("str", "concat", choices=("concat", "sum"))}

register("_backward_UpSampling_nearest", inputs=(), variadic="num_args", attrs=dict(_UP_BWD_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [ins[1 + attrs["index"]]]),
         infer_type=lambda attrs, ins: (ins, [ins[0]]),
         forward=lambda attrs, ins, ctx: _up_nearest_bwd_np(attrs, ins),
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._upsampling_nearest_place(og[0], *ins, **_up_kw(attrs))] + [None] * (len(ins) - 1),
         lowering=_lower_up_nearest("bwd"), samples=_up_nearest_bwd_samples,
         doc="Gradient of nearest UpSampling with several inputs for input ``index`` (inputs: "
             "ograd, then every UpSampling input, which give the channel offsets and repeat "
             "factors).")
register("_upsampling_nearest_place", inputs=(), variadic="num_args", attrs=dict(_UP_BWD_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [ins[1]]),
         infer_type=lambda attrs, ins: (ins, [ins[0]]),
         forward=lambda attrs, ins, ctx: _up_nearest_place_np(attrs, ins),
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._backward_UpSampling_nearest(og[0], *ins[2:], **_up_kw(attrs))] + [None] * (len(ins) - 1),
         lowering=_lower_up_nearest("place"), samples=_up_place_samples,
         doc="The adjoint of _backward_UpSampling_nearest: h repeated into input ``index``'s "
             "slot of a zero array shaped like ``like`` (inputs: h, like, the UpSampling "
             "inputs).")


def _up_samples(rng):
    r = lambda *s: _rand(rng, s)
    return [Sample([r(1, 2, 2, 2)], {"scale": 2, "sample_type": "nearest"}),
            Sample([r(2, 1, 2, 3)], {"scale": 3, "sample_type": "nearest"}),
            Sample([r(1, 2, 2, 2), r(1, 1, 1, 1)], {"scale": 2, "sample_type": "nearest"}),
            Sample([r(1, 2, 2, 2), r(1, 2, 4, 4)], {"scale": 2, "sample_type": "nearest",
                                                    "multi_input_mode": "sum"}),
            Sample([r(1, 2, 2, 3), r(2, 1, 4, 4)], {"scale": 2, "sample_type": "bilinear", "num_filter": 2}),
            Sample([r(1, 1, 2, 2), r(1, 1, 5, 5)], {"scale": 3, "sample_type": "bilinear", "num_filter": 1})]


register("UpSampling", inputs=_up_inputs, variadic="num_args",
         attrs={"scale": Attr("int"), "num_filter": Attr("int", 0),
                "sample_type": Attr("str", choices=("bilinear", "nearest")),
                "multi_input_mode": Attr("str", "concat", choices=("concat", "sum")),
                "num_args": Attr("int"), "workspace": Attr("int", 512)},
         infer_shape=_up_infer, forward=_up_fwd, gradient=_up_grad,
         lowering=_lower_up_nearest("fwd"), samples=_up_samples,
         doc="Upsampling of 4-D data: nearest (every input repeated up to scale x the first "
             "input's size, then concatenated along C or summed) or bilinear (a depthwise "
             "Deconvolution with kernel 2s - s%2, stride s, pad ceil((s-1)/2) and the given "
             "weight (num_filter, 1, k, k)).")
