"""Convolution and Pooling (with their backward helpers; bilinear gradients as in
symbol/ops/nn_dense.py note *bilinear-backward-ops*).

Every gradient is written with registered ops through ``F`` (registry note
*one-definition-per-op*).  Where a gradient needs something no public MXNet op does, a small
internal op named with a leading underscore is declared here with its own forward, gradient
and samples.

Note: conv-layouts
    Convolution's kernels work channel-first; with a channel-last ``layout`` (NWC, NHWC,
    NDHWC: data (N, *spatial, C), weight (num_filter, *kernel, C/num_group), as MXNet 1.9.1's
    CPU build runs them) the kernels of Convolution and its two backward helpers see every
    array of 3 or more dims with its last axis moved to position 1 and move it back in the
    results; shape inference converts shapes the same way; the bias gradient sums all axes
    but the last.  The backward helpers carry the layout.

Note: pooling-layouts
    Pooling's kernels work on channel-first data; with a channel-last ``layout`` (NWC, NHWC,
    NDHWC, which MXNet 1.9.1 runs on CPU) the kernels of Pooling and of its backward helpers
    see the arrays with the channel axis moved to position 1 and move it back in the results,
    and shape inference does the same on shapes.  The backward helpers carry the layout.
"""
import itertools
import numpy as np
from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, grad_needed
from ._lowering import KernelCall
from ._shape_lower import permute_copy
from ._nn_util import _BOOL_F, _data_led_type, _merge, _prod, _rand
from .nn_dense import _bwd_dot_type


# ---------------------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------------------
_LAYOUTS = {1: "NCW", 2: "NCHW", 3: "NCDHW"}
_LAYOUTS_CL = {1: "NWC", 2: "NHWC", 3: "NDHWC"}

_CONV_ATTRS = {"kernel": Attr("shape"), "stride": Attr("shape", ()), "dilate": Attr("shape", ()),
               "pad": Attr("shape", ()), "num_filter": Attr("int"), "num_group": Attr("int", 1),
               "workspace": Attr("int", 1024), "no_bias": _BOOL_F,
               "cudnn_tune": Attr("str", None, choices=("off", "limited_workspace", "fastest")),
               "cudnn_off": _BOOL_F, "layout": Attr("str", None, choices=("NCW", "NCHW", "NCDHW", "NHWC", "NDHWC", "NWC"))}


def _spatial_params(op, attrs, nsp, kernel):
    def tup(name, default):
        v = attrs.get(name) or ()
        if len(v) == 0:
            return (default,) * nsp
        if len(v) != nsp:
            raise MXNetError("%s: %s=%s must have %d entries (kernel=%s)" % (op, name, v, nsp, kernel))
        return tuple(v)
    return tup("stride", 1), tup("dilate", 1), tup("pad", 0)


def _conv_geom(attrs):
    k = tuple(attrs["kernel"])
    nsp = len(k)
    if nsp not in (1, 2, 3):
        raise MXNetError("Convolution: kernel must have 1, 2 or 3 entries, got %s" % (k,))
    lay = attrs["layout"]
    if lay is not None and lay not in (_LAYOUTS[nsp], _LAYOUTS_CL[nsp]):
        raise MXNetError("Convolution: layout %s does not fit a %d-D kernel (%s or %s)"
                         % (lay, nsp, _LAYOUTS[nsp], _LAYOUTS_CL[nsp]))
    s, d, p = _spatial_params("Convolution", attrs, nsp, k)
    if any(v <= 0 for v in k + s + d) or any(v < 0 for v in p):
        raise MXNetError("Convolution: kernel/stride/dilate must be positive and pad non-negative "
                         "(kernel=%s stride=%s dilate=%s pad=%s)" % (k, s, d, p))
    return k, s, d, p


def _conv_out_spatial(op, x_sp, k, s, d, p, dshape):
    out = []
    for x, kk, ss, dd, pp in zip(x_sp, k, s, d, p):
        if not x:
            out.append(0)
            continue
        ext = dd * (kk - 1) + 1
        if x + 2 * pp < ext:
            raise MXNetError("%s: kernel size (%s, dilated extent %d) exceeds the padded input %s "
                             "(pad=%s)" % (op, k, ext, fmt(dshape), p))
        out.append((x + 2 * pp - ext) // ss + 1)
    return tuple(out)


def _conv_cl(attrs):
    """True for a channel-last layout (note *conv-layouts*)."""
    return attrs["layout"] in ("NWC", "NHWC", "NDHWC")


def _to_cf_shape(s):
    return s if s is None or len(s) < 3 else (s[0], s[-1]) + tuple(s[1:-1])


def _to_cl_shape(s):
    return s if s is None or len(s) < 3 else (s[0],) + tuple(s[2:]) + (s[1],)


def _conv_layouts(fn):
    """A channel-first Convolution kernel run on channel-last data and weights."""
    def kernel(attrs, ins, ctx):
        if not _conv_cl(attrs):
            return fn(attrs, ins, ctx)
        outs = fn(dict(attrs, layout=None), [np.moveaxis(a, -1, 1) if a.ndim >= 3 else a
                                             for a in ins], ctx)
        return [np.ascontiguousarray(np.moveaxis(y, 1, -1)) if y.ndim >= 3 else y for y in outs]
    return kernel


def _conv_infer(attrs, ins, outs=None):
    if _conv_cl(attrs):
        res, outs = _conv_infer_cf(dict(attrs, layout=None), [_to_cf_shape(s) for s in ins],
                                   [_to_cf_shape(s) for s in outs or []])
        return [_to_cl_shape(s) for s in res], [_to_cl_shape(s) for s in outs]
    return _conv_infer_cf(attrs, ins, outs)


def _conv_infer_cf(attrs, ins, outs=None):
    op = "Convolution"
    k, s, d, p = _conv_geom(attrs)
    nf, ng = attrs["num_filter"], attrs["num_group"]
    if nf <= 0 or ng <= 0 or nf % ng:
        raise MXNetError("%s: num_filter=%d must be positive and divisible by num_group=%d" % (op, nf, ng))
    has_bias = not attrs["no_bias"]
    if has_bias and len(ins) < 3:
        raise MXNetError("%s: bias is required unless no_bias=True" % op)
    x, w = ins[0], ins[1]
    if x is None:   # MXNet's ConvolutionShape infers nothing before the data shape is known
        return list(ins), [None]
    out = None
    if x is not None:
        if len(x) != len(k) + 2:
            raise MXNetError("%s: data must be %d-D (%s) for kernel %s, got %s"
                             % (op, len(k) + 2, _LAYOUTS[len(k)], k, fmt(x)))
        c = x[1]
        if c and c % ng:
            raise MXNetError("%s: input channels %d not divisible by num_group=%d" % (op, c, ng))
        try:
            w = _merge(op, "weight", w, (nf, c // ng if c else 0) + k)
        except MXNetError:
            raise MXNetError("%s: weight shape %s is inconsistent with data %s (expected %s)"
                             % (op, fmt(w), fmt(x), fmt((nf, c // ng) + k))) from None
        out = (x[0], nf) + _conv_out_spatial(op, x[2:], k, s, d, p, x)
    elif w is not None:
        w = _merge(op, "weight", w, (nf, 0) + k)
    res = [x, w]
    if has_bias:
        try:
            res.append(_merge(op, "bias", ins[2], (nf,)))
        except MXNetError:
            raise MXNetError("%s: bias shape %s must be (%d,)" % (op, fmt(ins[2]), nf)) from None
    elif len(ins) > 2:
        res.append(ins[2])
    o = outs[0] if outs else None
    if o is not None and len(o) == len(out):
        # ConvolutionShape's incomplete inference: the batch size, and each spatial size
        # whose stride is 1, flow back from the output
        out = _merge(op, "output", out, o)
        back = [out[0], x[1]]
        for i in range(len(k)):
            if out[2 + i] and s[i] == 1:
                back.append(out[2 + i] + d[i] * (k[i] - 1) - 2 * p[i])
            else:
                back.append(0)
        res[0] = _merge(op, "data", x, tuple(back))
    return res, [out]


def _win(start, dil, size, stride):
    return slice(start * dil, start * dil + stride * (size - 1) + 1, stride)


def _conv_setup(attrs, xshape):
    k, s, d, p = _conv_geom(attrs)
    osp = _conv_out_spatial("Convolution", xshape[2:], k, s, d, p, xshape)
    return k, s, d, p, osp


def _pad(x, p, value=0.0):
    if not any(p):
        return x
    return np.pad(x, [(0, 0), (0, 0)] + [(q, q) for q in p], constant_values=value)


def _compute_dtype(*arrays):
    """Dtype the convolution GEMMs run in: the inputs' result type, float16 widened to
    float32 (NumPy has no float16 BLAS; the result is rounded back once)."""
    dt = np.result_type(*arrays)
    return np.dtype(np.float32) if dt == np.float16 else dt


def _window_view(xp, k, s, d, osp, lead):
    """Read-only strided view of ``xp`` (``lead`` leading axes, then the padded spatial axes)
    as (*lead_shape, *kernel, *out_spatial): element [..., o_k, o_y] is
    xp[..., o_y * stride + o_k * dilate] (no copy)."""
    st = xp.strides
    nsp = len(k)
    shape = xp.shape[:lead] + tuple(k) + tuple(osp)
    strides = (st[:lead] + tuple(st[lead + i] * d[i] for i in range(nsp))
               + tuple(st[lead + i] * s[i] for i in range(nsp)))
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


def _im2col(x, G, k, s, d, p, osp, dt, batch_inner=False):
    """Columns of ``x`` (n, c, *spatial) in dtype ``dt``, one strided copy: (n, G, c/G*K, O),
    or with ``batch_inner`` (G, c/G*K, n*O) so a GEMM can reduce over batch and space."""
    n, c = x.shape[:2]
    cg, K, O = c // G, _prod(k), _prod(osp)
    xp = _pad(np.asarray(x, dtype=dt), p)
    xp = xp.reshape((n, G, cg) + xp.shape[2:])
    v = _window_view(xp, k, s, d, osp, 3)                      # (n, G, cg, *k, *osp)
    if not batch_inner:
        return np.ascontiguousarray(v).reshape(n, G, cg * K, O)
    nsp = len(k)
    order = (1, 2) + tuple(range(3, 3 + nsp)) + (0,) + tuple(range(3 + nsp, 3 + 2 * nsp))
    return np.ascontiguousarray(v.transpose(order)).reshape(G, cg * K, n * O)


def _conv_np(x, w, attrs):
    """Forward: im2col + a GEMM per sample and group (BLAS)."""
    k, s, d, p, osp = _conv_setup(attrs, x.shape)
    G = attrs["num_group"]
    n, c = x.shape[:2]
    f = w.shape[0]
    dt = _compute_dtype(x, w)
    cg, fg, K = c // G, f // G, _prod(k)
    cols = _im2col(x, G, k, s, d, p, osp, dt)                  # (n, G, cg*K, O)
    out = np.matmul(np.asarray(w, dtype=dt).reshape(G, fg, cg * K), cols)   # (n, G, fg, O)
    return out.reshape((n, f) + tuple(osp)).astype(np.result_type(x, w), copy=False)


def _conv_bwd_data_np(g, x, w, attrs):
    """Data gradient (``x`` gives only the shape): W^T @ ograd per sample and group (BLAS),
    then col2im: one strided slice-add per kernel offset onto the padded gradient."""
    k, s, d, p, osp = _conv_setup(attrs, x.shape)
    G = attrs["num_group"]
    n, c = x.shape[:2]
    f = w.shape[0]
    cg, fg, K, O = c // G, f // G, _prod(k), _prod(osp)
    dt = _compute_dtype(g, w)
    fullpad = tuple(dd * (kk - 1) - pp for kk, dd, pp in zip(k, d, p))
    if K > 1 and all(v == 1 for v in s) and min(fullpad) >= 0 and f * _prod(x.shape[2:]) <= c * O:
        # stride 1: the "full" convolution of ograd with the flipped, transposed kernel --
        # im2col + GEMM, cheaper than a GEMM plus K scatter-adds unless ograd's columns
        # (f * input spatial) outgrow the scattered ones (c * output spatial)
        wt = np.asarray(w, dtype=dt).reshape((G, fg, cg) + tuple(k)).swapaxes(1, 2)
        wt = wt[(slice(None),) * 3 + (slice(None, None, -1),) * len(k)].reshape((c, fg) + tuple(k))
        gx = _conv_np(np.asarray(g, dtype=dt), wt, {"kernel": k, "stride": s, "dilate": d,
                                                    "pad": fullpad, "num_group": G, "layout": None})
        return np.ascontiguousarray(gx, dtype=g.dtype)
    gg = np.asarray(g, dtype=dt).reshape(n, G, fg, O)
    wg = np.asarray(w, dtype=dt).reshape(G, fg, cg * K)
    cols = np.matmul(wg.swapaxes(1, 2), gg)                    # (n, G, cg*K, O)
    if K == 1 and not any(p) and all(v == 1 for v in s):
        return np.ascontiguousarray(cols.reshape(x.shape), dtype=g.dtype)
    psp = tuple(q + 2 * pp for q, pp in zip(x.shape[2:], p))
    gxp = np.zeros((n, G, cg) + psp, dtype=dt)
    cols = cols.reshape((n, G, cg) + tuple(k) + tuple(osp))
    for off in itertools.product(*[range(kk) for kk in k]):
        sl = (slice(None),) * 3 + tuple(_win(o, dd, os_, ss) for o, dd, os_, ss in zip(off, d, osp, s))
        gxp[sl] += cols[(slice(None),) * 3 + off]
    crop = (slice(None), slice(None)) + tuple(slice(pp, pp + q) for pp, q in zip(p, x.shape[2:]))
    return np.ascontiguousarray(gxp.reshape((n, c) + psp)[crop], dtype=g.dtype)


def _conv_bwd_weight_np(g, x, w, attrs):
    """Weight gradient: one GEMM per group, ograd (f/G, n*O) @ im2col(x)^T (n*O, c/G*K)."""
    k, s, d, p, osp = _conv_setup(attrs, x.shape)
    G = attrs["num_group"]
    n, c = x.shape[:2]
    f = w.shape[0]
    fg, O = f // G, _prod(osp)
    dt = _compute_dtype(g, x)
    cols = _im2col(x, G, k, s, d, p, osp, dt, batch_inner=True)   # (G, cg*K, n*O)
    gg = np.asarray(g, dtype=dt).reshape(n, G, fg, O).transpose(1, 2, 0, 3).reshape(G, fg, n * O)
    gw = np.matmul(gg, cols.swapaxes(1, 2))                    # (G, fg, cg*K)
    return gw.reshape(w.shape).astype(g.dtype, copy=False)


def _conv_fwd(attrs, ins, ctx):
    x, w = ins[0], ins[1]
    y = _conv_np(x, w, attrs)
    if not attrs["no_bias"]:
        y = y + ins[2].reshape((1, -1) + (1,) * (y.ndim - 2))
    return [np.ascontiguousarray(y.astype(x.dtype, copy=False))]


def _conv_kw(attrs):
    keys = ("kernel", "stride", "dilate", "pad", "num_filter", "num_group", "layout")
    return {k: attrs[k] for k in keys if attrs[k] != _CONV_ATTRS[k].default}


def _conv_grad(F, attrs, ins, outs, og, ctx):
    x, w = ins[0], ins[1]
    g = og[0]
    kw = _conv_kw(attrs)
    res = [F._backward_Convolution_data(g, x, w, **kw) if grad_needed(ctx, 0) else None,
           F._backward_Convolution_weight(g, x, w, **kw) if grad_needed(ctx, 1) else None]
    if len(ins) > 2:
        res.append(F.sum(g, axis=-1 if _conv_cl(attrs) else 1, exclude=True)
                   if grad_needed(ctx, 2) else None)
    return res


def _conv_samples(rng):
    r = lambda *s: _rand(rng, s)
    return [Sample([r(1, 2, 5, 5), r(3, 2, 3, 3), r(3)], {"kernel": (3, 3), "num_filter": 3}),
            Sample([r(2, 2, 5, 4), r(3, 2, 3, 3)],
                   {"kernel": (3, 3), "num_filter": 3, "no_bias": True, "pad": (1, 1), "stride": (2, 2)}),
            Sample([r(1, 4, 6, 6), r(4, 2, 2, 2), r(4)],
                   {"kernel": (2, 2), "num_filter": 4, "num_group": 2, "dilate": (2, 1)}),
            Sample([r(2, 2, 7), r(3, 2, 3), r(3)], {"kernel": (3,), "num_filter": 3, "stride": (2,)}),
            Sample([r(1, 1, 4, 4, 3), r(2, 1, 2, 2, 2), r(2)],
                   {"kernel": (2, 2, 2), "num_filter": 2, "pad": (1, 0, 1)}),
            Sample([r(2, 5, 4, 4), r(2, 3, 2, 2), r(2)],
                   {"kernel": (3, 2), "num_filter": 2, "num_group": 2, "stride": (2, 1),
                    "pad": (1, 0), "layout": "NHWC"}),
            Sample([r(1, 6, 2), r(3, 2, 2)], {"kernel": (2,), "num_filter": 3, "no_bias": True,
                                               "dilate": (2,), "layout": "NWC"})]


# ---------------------------------------------------------------------------------------
# Lowerings (note *conv-lowering*)
# ---------------------------------------------------------------------------------------
# Note: conv-lowering
#     Inside ``mx.jit`` Convolution, Deconvolution, Pooling and their gradient ops are one
#     kernel-library call each: 1-D and 2-D through the 2-D kernels of
#     agjit.compiler.kernels_nn (1-D viewed with H = 1), 3-D through
#     agjit.compiler.kernels_nn3d.  A channel-last layout (NWC / NHWC / NDHWC) copies the
#     channel-last inputs into channel-first scratch arrays (every array of 3 or more
#     dims: data, weight, output gradient), runs the channel-first kernel into a
#     channel-first scratch output and copies it back (what the eager kernels do with
#     np.moveaxis, note *conv-layouts*).  Geometry arguments are int64 values, from the
#     attrs or (Deconvolution's target_shape pad) from the run's shapes.
def _int_args(*vals):
    """Geometry arguments of a kernel-library call as typed int64 values: a bare literal
    would make Numba compile one specialisation of the kernel per distinct geometry.  A
    string is an expression of the run's shapes (Deconvolution's target_shape pad)."""
    return ", ".join("np.int64(%s)" % v if isinstance(v, str) else "np.int64(%d)" % int(v)
                     for v in vals)


def _as_4d(ctx, var, ndim, lines):
    """A 4-D name for ``var`` (a 1-D op's 3-D array viewed with H = 1; 2-D and 3-D ops'
    arrays pass)."""
    if ndim != 3:
        return var
    t = ctx.tmp("v")
    lines.append("%s = %s.reshape((%s.shape[0], %s.shape[1], 1, %s.shape[2]))"
                 % (t, var, var, var, var))
    return t


def _cf_perm(nd):
    """Axis order taking a channel-last array to channel-first (``x.transpose(perm)``)."""
    return (0, nd - 1) + tuple(range(1, nd - 1))


def _cl_perm(nd):
    return (0,) + tuple(range(2, nd)) + (1,)


def _cf_copy(ctx, lines, var, nd):
    """A channel-first copy of the channel-last array ``var`` (note *conv-lowering*)."""
    t = ctx.tmp("c")
    perm = _cf_perm(nd)
    lines.append("%s = np.empty((%s), dtype=np.%s)" % (
        t, ", ".join("%s.shape[%d]" % (var, j) for j in perm), ctx.dtype))
    lines.extend(permute_copy(ctx, var, t, perm))
    return t


def _cl_store(ctx, lines, cf, var, nd):
    """Copy the channel-first result ``cf`` into the channel-last output ``var``."""
    lines.extend(permute_copy(ctx, cf, var, _cl_perm(nd)))


def _conv_geom_lowered(attrs):
    """(stride, pad, dilate) of a Convolution as 2-D (1-D as H = 1) or 3-D tuples (note
    *conv-lowering*)."""
    k, s, d, p = _conv_geom(dict(attrs, layout=None))
    if len(k) == 1:
        s, d, p = (1,) + s, (1,) + d, (0,) + p
    return s, p, d


def conv_lowering(kernel, arrays, geom, bias=None):
    """A KernelCall running kernel-library ``kernel`` (conv2d_fwd / conv2d_bwd_data /
    conv2d_bwd_weight of agjit.compiler.kernels_nn; for 3-D data its conv3d_* twin of
    agjit.compiler.kernels_nn3d) on the op's inputs ``arrays`` (two input indices, in the
    kernel's order) into the output; ``geom(ctx)`` gives (stride, pad, dilate) as 2-D
    tuples (3-D for 3-D data) or None (the op then runs eagerly); ``bias``: the input
    index of a bias added per channel (fused into conv2d_fwd, else add_channel_bias).
    Deconvolution (symbol/ops/nn_extra.py) declares its lowerings with this too."""
    k3 = kernel.replace("2d", "3d")

    def lower(ctx):
        nd = ctx.in_ndim[arrays[0]]
        if nd not in (3, 4, 5) or ctx.in_ndim[arrays[1]] != nd or ctx.out_ndim[0] != nd:
            return None
        geo = geom(ctx)
        if geo is None or len(geo[0]) != (3 if nd == 5 else 2):
            return None
        s, p, d = geo
        lines = []
        cl = _conv_cl(ctx.attrs)
        ins = list(ctx.ins)
        out_cf = ctx.outs[0]
        if cl:
            for i in arrays:
                ins[i] = _cf_copy(ctx, lines, ins[i], nd)
            out_cf = ctx.tmp("c")
            lines.append("%s = np.empty((%s), dtype=np.%s)" % (
                out_cf, ", ".join("%s.shape[%d]" % (ctx.outs[0], j) for j in _cf_perm(nd)),
                ctx.dtype))
        a0, a1 = (_as_4d(ctx, ins[i], nd, lines) for i in arrays)
        out = _as_4d(ctx, out_cf, nd, lines)
        g = _int_args(*(tuple(s) + tuple(p) + tuple(d) + (ctx.attrs["num_group"],)))
        has_bias = bias is not None and len(ctx.ins) > bias and not ctx.attrs["no_bias"]
        wino = nd == 4 and not cl and _wino_picks(ctx, kernel, arrays, s, p, d)
        if wino:
            w_ = ctx.fn("wino_fwd" if kernel == "conv2d_fwd" else "wino_bwd_data")
            if kernel == "conv2d_fwd":
                b = ctx.ins[bias] if has_bias else "%s.reshape(-1)" % out
                lines.append("%s(%s, %s, %s, %s, %s, np.int64(%d))"
                             % (w_, a0, a1, b, out, _int_args(p[0], p[1]), has_bias))
            else:
                lines.append("%s(%s, %s, %s, %s)" % (w_, a0, a1, out, _int_args(p[0], p[1])))
            return lines
        fn = ctx.fn(k3 if nd == 5 else kernel)
        if kernel == "conv2d_fwd":
            b = ctx.ins[bias] if has_bias else "%s.reshape(-1)" % out
            lines.append("%s(%s, %s, %s, %s, %s, np.int64(%d))"
                         % (fn, a0, a1, b, out, g, has_bias))
        else:
            lines.append("%s(%s, %s, %s, %s)" % (fn, a0, a1, out, g))
            if has_bias:
                lines.append("%s(%s, %s)" % (ctx.fn("add_channel_bias"), out, ctx.ins[bias]))
        if cl:
            _cl_store(ctx, lines, out_cf, ctx.outs[0], nd)
        return lines
    wino = {"conv2d_fwd": ("wino_fwd",), "conv2d_bwd_data": ("wino_bwd_data",)}.get(kernel, ())
    return KernelCall(lower, uses=(kernel, k3) + (("add_channel_bias",) if bias is not None
                                                  else ()) + wino)


def _wino_picks(ctx, kernel, arrays, s, p, d):
    """True when this 2-D Convolution forward / data gradient runs on the Winograd kernels
    (agjit.compiler.kernels_nn note *winograd-dispatch*): decided here, at lowering time,
    on the call's shapes, so a convolution that keeps im2col never makes Numba compile
    them.  Only the Convolution ops themselves (a Deconvolution's conv2d_bwd_data has its
    own output-size rules)."""
    if ctx.node.op.name not in ("Convolution", "_backward_Convolution_data"):
        return False
    from ._conv_rules import wino_dispatch
    x, w = ctx.in_shapes[arrays[0]], ctx.in_shapes[arrays[1]]
    o = ctx.out_shapes[0]
    if x is None or w is None or o is None or len(w) != 4:
        return False
    if kernel == "conv2d_fwd":          # x (n, c, H, W) -> o (n, f, OH, OW)
        n, c, H, W = x
        f, OH, OW = o[1], o[2], o[3]
    elif kernel == "conv2d_bwd_data":   # gy (n, f, OH, OW) -> gx (n, c, H, W)
        n, f, OH, OW = x
        c, H, W = o[1], o[2], o[3]
    else:
        return False
    if tuple(w) != (f, c, 3, 3) or OH != H + 2 * p[0] - 2 or OW != W + 2 * p[1] - 2:
        return False
    return wino_dispatch(kernel, n, c, f, H, W, tuple(s), tuple(p), tuple(d),
                         ctx.attrs["num_group"])


def _conv_geom_ctx(ctx):
    return _conv_geom_lowered(ctx.attrs)


_conv_type = _data_led_type("Convolution", ["data", "weight", "bias"])


register("Convolution", inputs=("data", "weight", "bias"), attrs=dict(_CONV_ATTRS),
         infer_type=_conv_type, infer_shape=_conv_infer, forward=_conv_layouts(_conv_fwd), gradient=_conv_grad,
         lowering=conv_lowering("conv2d_fwd", (0, 1), _conv_geom_ctx, bias=2),
         optional_inputs=("bias",), samples=_conv_samples,
         doc="N-D convolution (NCW/NCHW/NCDHW, or channel-last NWC/NHWC/NDHWC with weights "
             "(num_filter, *kernel, channels/num_group); note *conv-layouts*) with stride, "
             "dilation, zero padding and groups; "
             "weight is (num_filter, channels/num_group, *kernel).")


def _known(shape):
    return shape is not None and all(shape)


def bwd_geometry_check(op, fwd, fwd_infer, attrs, ins):
    """Refuse a gradient op whose ``ograd`` is not the shape the forward op ``fwd`` gives
    for ``data`` and ``weight`` (the kernels index all three by one geometry: a weight of
    another shape would be read past its end)."""
    g, x, w = ins
    if not (_known(g) and _known(x) and _known(w)):
        return
    try:
        out = fwd_infer(dict(attrs, no_bias=True), [x, w])[1][0]
        bad = out is None or tuple(out) != tuple(g)
    except MXNetError as e:
        raise MXNetError("%s: data %s and weight %s do not fit %s's geometry (%s)"
                         % (op, fmt(x), fmt(w), fwd, e)) from None
    if bad:
        raise MXNetError("%s: ograd %s does not match the %s output %s of data %s and weight %s"
                         % (op, fmt(g), fwd, fmt(out), fmt(x), fmt(w)))


def _conv_bwd_infer(which):
    name = ("_backward_Convolution_data", "_backward_Convolution_weight")[which]

    def infer(attrs, ins):
        g, x, w = ins
        bwd_geometry_check(name, "Convolution", _conv_infer, attrs, ins)
        return ins, [x if which == 0 else w]
    return infer


def _conv_bwd_data_grad(F, attrs, ins, outs, og, ctx):
    g, x, w = ins
    kw = _conv_kw(attrs)
    return [F.Convolution(og[0], w, no_bias=True, **kw) if grad_needed(ctx, 0) else None, None,
            F._backward_Convolution_weight(g, og[0], w, **kw) if grad_needed(ctx, 2) else None]


def _conv_bwd_weight_grad(F, attrs, ins, outs, og, ctx):
    g, x, w = ins
    kw = _conv_kw(attrs)
    return [F.Convolution(x, og[0], no_bias=True, **kw) if grad_needed(ctx, 0) else None,
            F._backward_Convolution_data(g, x, og[0], **kw) if grad_needed(ctx, 1) else None, None]


def _conv_bwd_samples(rng):
    out = []
    for smp in _conv_samples(rng):
        x, w = smp.inputs[:2]
        a = dict(smp.attrs)
        a.pop("no_bias", None)
        full = {k: a.get(k, v.default) for k, v in _CONV_ATTRS.items()}
        g = _rand(rng, _conv_infer(dict(full, no_bias=True), [x.shape, w.shape])[1][0])
        out.append(Sample([g, x, w], a))
    return out


_CONV_BWD_ATTRS = {k: v for k, v in _CONV_ATTRS.items() if k != "no_bias"}
_CONV_BWD_ATTRS["no_bias"] = Attr("bool", True)
register("_backward_Convolution_data", inputs=("ograd", "data", "weight"), attrs=_CONV_BWD_ATTRS,
         infer_shape=_conv_bwd_infer(0), infer_type=_bwd_dot_type(0),
         forward=_conv_layouts(lambda attrs, ins, ctx: [_conv_bwd_data_np(ins[0], ins[1], ins[2], attrs)]),
         gradient=_conv_bwd_data_grad, samples=_conv_bwd_samples,
         lowering=conv_lowering("conv2d_bwd_data", (0, 2), _conv_geom_ctx),
         doc="Convolution gradient w.r.t. data (note *bilinear-backward-ops*; data gives the shape).")
register("_backward_Convolution_weight", inputs=("ograd", "data", "weight"), attrs=_CONV_BWD_ATTRS,
         infer_shape=_conv_bwd_infer(1), infer_type=_bwd_dot_type(1),
         forward=_conv_layouts(lambda attrs, ins, ctx: [_conv_bwd_weight_np(ins[0], ins[1], ins[2], attrs)]),
         gradient=_conv_bwd_weight_grad, samples=_conv_bwd_samples,
         lowering=conv_lowering("conv2d_bwd_weight", (0, 1), _conv_geom_ctx),
         doc="Convolution gradient w.r.t. weight (note *bilinear-backward-ops*; weight gives the "
             "shape).")

# ---------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------
_POOL_ATTRS = {"kernel": Attr("shape", ()),
               "pool_type": Attr("str", "max", choices=("max", "avg", "sum", "lp")),
               "global_pool": _BOOL_F, "cudnn_off": _BOOL_F,
               "pooling_convention": Attr("str", "valid", choices=("valid", "full", "same")),
               "stride": Attr("shape", ()), "pad": Attr("shape", ()),
               "p_value": Attr("int_or_none", None), "count_include_pad": Attr("bool", True),
               "layout": Attr("str", None, choices=("NCW", "NCHW", "NCDHW", "NWC", "NHWC", "NDHWC"))}


def _pool_geom(attrs, dshape):
    """(kernel, stride, pad, out_spatial, extra right padding for 'full')."""
    op = "Pooling"
    if attrs["pool_type"] == "lp":
        raise MXNetError("Pooling: pool_type='lp' is not supported (use max, avg or sum)")
    if attrs["pooling_convention"] == "same":
        raise MXNetError("Pooling: pooling_convention='same' is not supported (use valid or full)")
    nsp = len(dshape) - 2
    if nsp not in (1, 2, 3):
        raise MXNetError("Pooling: data must be 3-D, 4-D or 5-D (N, C, spatial...), got %s" % fmt(dshape))
    lay = attrs["layout"]
    if lay is not None and lay != _LAYOUTS[nsp]:
        raise MXNetError("Pooling: layout %s does not match data %s (%s or %s expected)"
                         % (lay, fmt(dshape), _LAYOUTS[nsp], _LAYOUTS_CL[nsp]))
    if attrs["global_pool"]:
        k = tuple(dshape[2:])
        return k, (1,) * nsp, (0,) * nsp, (1,) * nsp, (0,) * nsp
    k = tuple(attrs["kernel"])
    if len(k) != nsp:
        raise MXNetError("Pooling: kernel=%s must have %d entries for data %s" % (k, nsp, fmt(dshape)))
    s, _, p = _spatial_params(op, attrs, nsp, k)
    if any(v <= 0 for v in k + s) or any(v < 0 for v in p):
        raise MXNetError("Pooling: kernel and stride must be positive, pad non-negative "
                         "(kernel=%s stride=%s pad=%s)" % (k, s, p))
    out, extra = [], []
    for x, kk, ss, pp in zip(dshape[2:], k, s, p):
        if not x:
            out.append(0)
            extra.append(0)
            continue
        if x + 2 * pp < kk:
            raise MXNetError("Pooling: kernel %s is larger than the padded input %s (pad=%s)"
                             % (k, fmt(dshape), p))
        if attrs["pooling_convention"] == "full":
            o = -(-(x + 2 * pp - kk) // ss) + 1
        else:
            o = (x + 2 * pp - kk) // ss + 1
        out.append(o)
        extra.append(max(0, (o - 1) * ss + kk - (x + 2 * pp)))
    return k, s, p, tuple(out), tuple(extra)


def _pool_channel_last(attrs, ndim):
    """True for a channel-last layout (note *pooling-layouts*); checks it fits ``ndim``."""
    lay = attrs["layout"]
    if lay not in ("NWC", "NHWC", "NDHWC"):
        return False
    if _LAYOUTS_CL.get(ndim - 2) != lay:
        raise MXNetError("Pooling: layout %s does not match %d-D data" % (lay, ndim))
    return True


def _cf_shape(s):
    return (s[0], s[-1]) + tuple(s[1:-1])


def _cl_shape(s):
    return (s[0],) + tuple(s[2:]) + (s[1],)


def _pool_layouts(fn):
    """Run a channel-first Pooling kernel on channel-last arrays (note *pooling-layouts*)."""
    def kernel(attrs, ins, ctx):
        if not _pool_channel_last(attrs, ins[-1].ndim):
            return fn(attrs, ins, ctx)
        outs = fn(dict(attrs, layout=None), [np.moveaxis(x, -1, 1) for x in ins], ctx)
        return [np.ascontiguousarray(np.moveaxis(y, 1, -1)) for y in outs]
    return kernel


def _pool_infer(attrs, ins):
    d = ins[0]
    if d is None:
        return ins, [None]
    if not attrs["global_pool"] and not attrs["kernel"]:
        raise MXNetError("Pooling: kernel is required unless global_pool=True")
    if _pool_channel_last(attrs, len(d)):
        k, s, p, osp, _ = _pool_geom(dict(attrs, layout=None), _cf_shape(d))
        return ins, [_cl_shape((d[0], d[-1]) + osp)]
    k, s, p, osp, _ = _pool_geom(attrs, d)
    return ins, [tuple(d[:2]) + osp]


def _pool_padded(x, p, extra, value):
    if not any(p) and not any(extra):
        return x
    return np.pad(x, [(0, 0), (0, 0)] + [(q, q + e) for q, e in zip(p, extra)], constant_values=value)


def _pool_windows(k, s, osp):
    for off in itertools.product(*[range(kk) for kk in k]):
        yield off, (slice(None), slice(None)) + tuple(_win(o, 1, os_, ss) for o, os_, ss in zip(off, osp, s))


def _pool_count(attrs, xshape, k, s, p, osp, extra, dtype):
    """Per-output divisor of avg pooling (MXNet: window clipped to the padded input, or to the
    data itself without count_include_pad)."""
    sp = xshape[2:]
    if attrs["count_include_pad"]:
        m = np.ones(tuple(q + 2 * pp for q, pp in zip(sp, p)), dtype=dtype)
        m = np.pad(m, [(0, e) for e in extra])
    else:
        m = np.pad(np.ones(sp, dtype=dtype), [(pp, pp + e) for pp, e in zip(p, extra)])
    cnt = np.zeros(osp, dtype=dtype)
    for off, sl in _pool_windows(k, s, osp):
        cnt += m[sl[2:]]
    return np.maximum(cnt, 1)


def _pool_global(attrs, x):
    """True when every window is the whole spatial extent (global pooling, or a kernel that
    covers the unpadded input once): the kernels then reduce over one flattened axis."""
    if attrs["global_pool"]:
        return True
    k, s, p, osp, extra = _pool_geom(attrs, x.shape)
    return tuple(k) == tuple(x.shape[2:]) and not any(p) and not any(extra)


def _pool_fwd(attrs, ins, ctx):
    x = ins[0]
    k, s, p, osp, extra = _pool_geom(attrs, x.shape)
    t = attrs["pool_type"]
    if _pool_global(attrs, x) and x.size:
        flat = x.reshape(x.shape[:2] + (-1,))
        if t == "max":
            out = flat.max(axis=-1)
        else:
            acc = np.float32 if x.dtype == np.float16 else None
            out = flat.sum(axis=-1, dtype=acc)
            if t == "avg":
                out = out / max(1, flat.shape[-1])
            out = out.astype(x.dtype, copy=False)
        return [np.ascontiguousarray(out.reshape(x.shape[:2] + osp))]
    if t == "max":
        # MXNet starts from the lowest finite value, so an all-padding window gives that
        lo = np.finfo(x.dtype).min if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        xp = _pool_padded(x, p, extra, lo)
        out = np.full(x.shape[:2] + osp, lo, dtype=x.dtype)
        for off, sl in _pool_windows(k, s, osp):
            np.maximum(out, xp[sl], out=out)
        return [out]
    xp = _pool_padded(x, p, extra, 0.0)
    out = np.zeros(x.shape[:2] + osp, dtype=x.dtype)
    for off, sl in _pool_windows(k, s, osp):
        out += xp[sl]
    if t == "avg":
        out /= _pool_count(attrs, x.shape, k, s, p, osp, extra, x.dtype)
    return [out]


def _pool_first_max(x, k, s, p, osp, extra):
    """Per kernel offset (in window order): the window slice and the mask of the windows
    whose *first* maximum sits at that offset (MXNet 1.9.1 routes the gradient of tied
    maxima to the first in row-major window order; padding never wins over data, NaN is
    skipped).  O(K) passes over the output, no window copy."""
    if any(p) or any(extra):
        lo = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        x = _pool_padded(x, p, extra, lo)
    wins = list(_pool_windows(k, s, osp))
    best = np.array(x[wins[0][1]])
    for off, sl in wins[1:]:
        np.fmax(best, x[sl], out=best)
    taken = np.zeros(best.shape, dtype=bool)
    hit = np.empty(best.shape, dtype=bool)
    for off, sl in wins:
        np.equal(x[sl], best, out=hit)
        hit &= ~taken
        taken |= hit
        yield sl, hit


def _pool_argmax(x, k, s, p, osp, extra):
    """Index (in window order) of the first maximum of each window."""
    arg = np.zeros(x.shape[:2] + tuple(osp), dtype=np.int64)
    for i, (sl, hit) in enumerate(_pool_first_max(x, k, s, p, osp, extra)):
        arg[hit] = i
    return arg


def _pool_bwd_np(g, x, attrs):
    """Scatter the output gradient back onto the input windows."""
    k, s, p, osp, extra = _pool_geom(attrs, x.shape)
    t = attrs["pool_type"]
    if _pool_global(attrs, x) and x.size:
        flat = x.reshape(x.shape[:2] + (-1,))
        gf = g.reshape(x.shape[:2] + (1,))
        if t == "max":
            gx = (np.arange(flat.shape[-1]) == np.argmax(flat, axis=-1)[..., None]) * gf
        else:
            gs = gf / max(1, flat.shape[-1]) if t == "avg" else gf
            gx = np.broadcast_to(gs, flat.shape)
        return np.ascontiguousarray(gx.reshape(x.shape), dtype=g.dtype)
    psp = tuple(q + 2 * pp + e for q, pp, e in zip(x.shape[2:], p, extra))
    gx = np.zeros(x.shape[:2] + psp, dtype=g.dtype)
    if t == "max":
        for sl, hit in _pool_first_max(x, k, s, p, osp, extra):
            gx[sl] += hit * g
    else:
        gs = g / _pool_count(attrs, x.shape, k, s, p, osp, extra, g.dtype) if t == "avg" else g
        for off, sl in _pool_windows(k, s, osp):
            gx[sl] += gs
    crop = (slice(None), slice(None)) + tuple(slice(pp, pp + q) for pp, q in zip(p, x.shape[2:]))
    return np.ascontiguousarray(gx[crop])


def _pool_select_np(g, x, attrs):
    """For max pooling: pick, per output window, ``g`` at the input argmax."""
    k, s, p, osp, extra = _pool_geom(attrs, x.shape)
    gp = _pool_padded(g, p, extra, 0.0)
    out = np.zeros(x.shape[:2] + osp, dtype=g.dtype)
    for sl, hit in _pool_first_max(x, k, s, p, osp, extra):
        np.copyto(out, gp[sl], where=hit)
    return out


def _pool_kw(attrs):
    keys = ("kernel", "pool_type", "global_pool", "pooling_convention", "stride", "pad",
            "count_include_pad", "layout")
    return {k: attrs[k] for k in keys if attrs[k] != _POOL_ATTRS[k].default}


def _pool_grad(F, attrs, ins, outs, og, ctx):
    return [F._backward_Pooling(og[0], ins[0], **_pool_kw(attrs))]


def _pool_samples(rng):
    r = lambda *s: _rand(rng, s)
    return [Sample([r(1, 2, 5, 5)], {"kernel": (2, 2), "pool_type": "avg", "stride": (2, 2)}),
            Sample([r(1, 2, 5, 5)], {"kernel": (2, 2), "pool_type": "max"}),
            Sample([r(2, 2, 4, 4)], {"kernel": (1, 1), "pool_type": "avg", "global_pool": True}),
            Sample([r(1, 2, 5, 4)], {"kernel": (3, 2), "pool_type": "max", "stride": (2, 2),
                                     "pad": (1, 1)}),
            Sample([r(1, 1, 5, 5)], {"kernel": (3, 3), "pool_type": "avg", "stride": (2, 2), "pad": (1, 1),
                                     "count_include_pad": False, "pooling_convention": "full"}),
            Sample([r(1, 2, 6, 5)], {"kernel": (2, 2), "pool_type": "sum", "stride": (2, 2),
                                     "pooling_convention": "full"}),
            Sample([r(2, 2, 7)], {"kernel": (3,), "pool_type": "max", "stride": (2,)}),
            Sample([r(1, 1, 4, 3, 4)], {"kernel": (2, 2, 2), "pool_type": "avg", "pad": (1, 0, 1)}),
            Sample([r(2, 5, 4, 3)], {"kernel": (2, 2), "pool_type": "max", "stride": (2, 1),
                                     "layout": "NHWC"}),
            Sample([r(1, 5, 2)], {"kernel": (3,), "pool_type": "avg", "pad": (1,), "layout": "NWC",
                                  "pooling_convention": "full", "stride": (2,)}),
            Sample([r(1, 3, 2, 3, 2)], {"kernel": (1, 1, 1), "global_pool": True, "pool_type": "avg",
                                        "layout": "NDHWC"}),
            Sample([r(1, 2, 3, 4, 3)], {"kernel": (2, 2, 2), "pool_type": "max", "stride": (1, 2, 1),
                                        "pad": (1, 0, 1)}),
            Sample([r(2, 1, 3, 3, 4)], {"kernel": (2, 2, 3), "pool_type": "sum", "stride": (2, 2, 2),
                                        "pooling_convention": "full"})]


def _pool_lowering(kernel):
    """Pooling (max/avg/sum; global; valid/full; count_include_pad), _backward_Pooling and
    _pooling_max_select: window loops of agjit.compiler.kernels_nn (2-D; 1-D as H = 1) and
    agjit.compiler.kernels_nn3d (3-D).  Channel-last layouts run them on channel-first
    copies (note *conv-lowering*).  The geometry comes from the attrs only (a global window
    is kernel -1, sized by the kernel at run time): a kernel module is reused for other
    shapes of the same graph."""
    k3 = kernel.replace("2d", "3d")

    def lower(ctx):
        a = ctx.attrs
        nd = ctx.in_ndim[-1]
        if nd not in (3, 4, 5) or any(n != nd for n in ctx.in_ndim) or \
                a["pool_type"] not in ("max", "avg", "sum") or \
                a["pooling_convention"] not in ("valid", "full"):
            return None
        cl = _pool_channel_last(a, nd)
        if kernel == "pool2d_select" and a["pool_type"] != "max":
            return None
        if a["global_pool"]:
            nsp = max(2, nd - 2)
            k, s, p = (-1,) * nsp, (1,) * nsp, (0,) * nsp
        else:
            k = tuple(a["kernel"])
            if len(k) != nd - 2:
                return None
            s, _, p = _spatial_params("Pooling", a, nd - 2, k)
            if nd == 3:
                k, s, p = (1,) + k, (1,) + s, (0,) + p
        lines = []
        ins, out_cf = list(ctx.ins), ctx.outs[0]
        if cl:
            ins = [_cf_copy(ctx, lines, x, nd) for x in ins]
            out_cf = ctx.tmp("c")
            lines.append("%s = np.empty((%s), dtype=np.%s)" % (
                out_cf, ", ".join("%s.shape[%d]" % (ctx.outs[0], j) for j in _cf_perm(nd)),
                ctx.dtype))
        v = [_as_4d(ctx, x, nd, lines) for x in ins]
        out = _as_4d(ctx, out_cf, nd, lines)
        geo = _int_args(*(tuple(k) + tuple(s) + tuple(p)))
        mode = _int_args({"max": 0, "avg": 1, "sum": 2}[a["pool_type"]],
                         int(bool(a["count_include_pad"])))
        fn = ctx.fn(k3 if nd == 5 else kernel)
        if kernel == "pool2d_fwd":
            lo = ctx.const(float(np.finfo(ctx.dtype).min))
            lines.append("%s(%s, %s, %s, %s, %s)" % (fn, v[0], out, geo, mode, lo))
        elif kernel == "pool2d_bwd":
            lines.append("%s(%s, %s, %s, %s, %s)" % (fn, v[0], v[1], out, geo, mode))
        else:
            lines.append("%s(%s, %s, %s, %s)" % (fn, v[0], v[1], out, geo))
        if cl:
            _cl_store(ctx, lines, out_cf, ctx.outs[0], nd)
        return lines
    return KernelCall(lower, uses=(kernel, k3))


register("Pooling", inputs=("data",), attrs=dict(_POOL_ATTRS), infer_shape=_pool_infer,
         forward=_pool_layouts(_pool_fwd), gradient=_pool_grad, lowering=_pool_lowering("pool2d_fwd"),
         samples=_pool_samples,
         doc="Max/avg/sum pooling over 1-3 spatial axes (NCW/NCHW/NCDHW, or channel-last "
             "NWC/NHWC/NDHWC via ``layout``).  Default stride 1, "
             "pad 0; 'valid' output is floor((x + 2p - k)/s) + 1, 'full' uses ceil.  avg counts "
             "padded zeros when count_include_pad (default True).")


def _pool_bwd_grad(F, attrs, ins, outs, og, ctx):
    kw = _pool_kw(attrs)
    if attrs["pool_type"] == "max":
        return [F._pooling_max_select(og[0], ins[1], **kw), None]
    return [F.Pooling(og[0], **kw), None]


def _pool_bwd_samples(rng):
    out = []
    for smp in _pool_samples(rng):
        x = smp.inputs[0]
        full = {k: smp.attrs.get(k, v.default) for k, v in _POOL_ATTRS.items()}
        out.append(Sample([_rand(rng, _pool_infer(full, [x.shape])[1][0]), x], smp.attrs))
    return out


register("_backward_Pooling", inputs=("ograd", "data"), attrs=dict(_POOL_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [ins[1]]), infer_type=_bwd_dot_type(0),
         forward=_pool_layouts(lambda attrs, ins, ctx: [_pool_bwd_np(ins[0], ins[1], attrs)]),
         gradient=_pool_bwd_grad, lowering=_pool_lowering("pool2d_bwd"), samples=_pool_bwd_samples,
         doc="Pooling gradient: ograd scattered onto the windows (max: to the first argmax).  "
             "data is read only for the argmax and the shape, so it gets no gradient.")


def _pool_sel_infer(attrs, ins):
    g, d = ins
    if d is None:
        return ins, [None]
    return ins, [_pool_infer(attrs, [d])[1][0]]


def _pool_sel_samples(rng):
    return [Sample([_rand(rng, smp.inputs[0].shape), smp.inputs[0]], smp.attrs)
            for smp in _pool_samples(rng) if smp.attrs.get("pool_type") == "max"]


register("_pooling_max_select", inputs=("data", "like"), attrs=dict(_POOL_ATTRS),
         infer_shape=_pool_sel_infer, infer_type=_bwd_dot_type(0),
         forward=_pool_layouts(lambda attrs, ins, ctx: [_pool_select_np(ins[0], ins[1], attrs)]),
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._backward_Pooling(og[0], ins[1], **_pool_kw(attrs)), None],
         lowering=_pool_lowering("pool2d_select"), samples=_pool_sel_samples,
         doc="Max pooling's routing applied to ``data``: per window, data at the argmax of "
             "``like`` (the adjoint of _backward_Pooling with pool_type='max').")
