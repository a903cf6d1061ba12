"""The softmax family and its losses: softmax, log_softmax, SoftmaxOutput,
softmax_cross_entropy.

Every gradient is written with registered ops through ``F`` (registry note
*one-definition-per-op*).  Where a gradient needs something no public MXNet op does, a small
internal op named with a leading underscore is declared here with its own forward, gradient
and samples.
"""
import numpy as np
from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._lowering import KernelCall, typed_const
from ._common import fmt, norm_axis
from ._nn_util import _BOOL_F, _data_led_type, _merge, _prod, _rand


# ---------------------------------------------------------------------------------------
# softmax / log_softmax
# ---------------------------------------------------------------------------------------
_SM_ATTRS = {"axis": Attr("int", -1), "temperature": Attr("float_or_none", None),
             "dtype": Attr("dtype", None), "use_length": Attr("bool", False)}


def _sm_infer(name):
    def infer(attrs, ins):
        d = ins[0]
        if attrs["use_length"]:
            if name != "softmax":
                # MXNet 1.9.1's log_softmax/softmin take one input: "expects 2 inputs, got 1"
                raise MXNetError("%s: use_length=True needs a length input, which only "
                                 "softmax takes" % name)
            if len(ins) < 2:
                raise MXNetError("%s: use_length=True needs the input 'length' (an integer "
                                 "array shaped as data without axis); got data only" % name)
            l = ins[1]
            if d is not None:
                ax = norm_axis(name, attrs["axis"], len(d))
                want = tuple(d[:ax]) + tuple(d[ax + 1:])
                try:
                    l = _merge(name, "length", l, want)
                except MXNetError:
                    raise MXNetError("%s: length shape %s must be the data shape %s without "
                                     "axis %d, i.e. %s" % (name, fmt(l), fmt(d), attrs["axis"],
                                                           fmt(want))) from None
            return [d, l], [d]
        if d is not None:
            norm_axis(name, attrs["axis"], len(d))
        return ins, [d]
    return infer


def _sm_inputs(attrs):
    # nd.softmax(x, length, use_length=True) maps positional inputs before the attrs are
    # parsed (attrs == {}): length is then an optional second input (MXNet's signature)
    return ("data", "length") if attrs.get("use_length", True) else ("data",)


def _sm_type(attrs, ins):
    t = ins[0]
    return ins, [attrs["dtype"] if attrs["dtype"] is not None else t]


def _softmax_np(x, axis, temp, log):
    z = x / temp if temp is not None and temp != 1.0 else x
    z = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(z)
    s = np.sum(e, axis=axis, keepdims=True)
    return z - np.log(s) if log else e / s


_LENGTH_DTYPES = ("int8", "int32", "int64")


def _softmax_len_np(x, length, axis, temp):
    """softmax over the first length[...] entries along ``axis``, 0 after them (MXNet 1.9.1:
    a row with length <= 0 is all zeros; integer lengths only; a length beyond the axis
    reads past the row in MXNet, refused here)."""
    if length.dtype.name not in _LENGTH_DTYPES:
        raise MXNetError("softmax: use_length=True needs an integer length (%s), got %s"
                         % ("/".join(_LENGTH_DTYPES), length.dtype.name))
    ax = axis % x.ndim
    n = x.shape[ax]
    if length.size and int(length.max()) > n:
        raise MXNetError("softmax: length %d exceeds the size %d of axis %d of data %s"
                         % (int(length.max()), n, axis, fmt(x.shape)))
    shape = [1] * x.ndim
    shape[ax] = n
    mask = np.arange(n).reshape(shape) < np.expand_dims(length.astype(np.int64), ax)
    z = x / temp if temp is not None and temp != 1.0 else x
    with np.errstate(invalid="ignore", over="ignore"):
        zm = np.where(mask, z, -np.inf)
        m = np.max(zm, axis=ax, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        e = np.where(mask, np.exp(np.where(mask, z, 0) - m), 0)
        s = np.sum(e, axis=ax, keepdims=True)
        return np.where(s > 0, e / np.where(s > 0, s, 1), 0)


def _sm_fwd(log):
    def forward(attrs, ins, ctx):
        x = ins[0]
        if attrs["use_length"]:
            y = _softmax_len_np(x, ins[1], attrs["axis"], attrs["temperature"])
        else:
            y = _softmax_np(x, attrs["axis"], attrs["temperature"], log)
        dt = attrs["dtype"] if attrs["dtype"] is not None else x.dtype
        return [y.astype(dt, copy=False)]
    return forward


def _temp_scale(F, attrs, gx):
    t = attrs["temperature"]
    if t is not None and t != 1.0:
        gx = F._div_scalar(gx, scalar=t)
    return gx


def _softmax_grad(F, attrs, ins, outs, og, ctx):
    # with use_length the masked entries of y are 0, so they get no gradient and add
    # nothing to the sum; the integer length gets none (MXNet: zeros)
    y, g = outs[0], og[0]
    s = F.sum(F.elemwise_mul(g, y), axis=attrs["axis"], keepdims=True)
    gx = F.elemwise_mul(F.broadcast_sub(g, s), y)
    gx = _temp_scale(F, attrs, gx)
    if attrs["dtype"] is not None:
        gx = F._cast_like(gx, ins[0])
    return [gx, None] if attrs["use_length"] else [gx]


def _log_softmax_grad(F, attrs, ins, outs, og, ctx):
    # one op (one fused pass where lowered) instead of sum / exp / mul / sub over the data
    gx = F._backward_log_softmax(outs[0], og[0], axis=attrs["axis"],
                                 temperature=attrs["temperature"])
    if attrs["dtype"] is not None:
        gx = F._cast_like(gx, ins[0])
    return [gx]


def _inv_temp(attrs):
    t = attrs["temperature"]
    return 1.0 if t is None else 1.0 / float(t)


def _bls_infer(attrs, ins):
    y, g = ins
    m = _merge("_backward_log_softmax", "out_grad", y, g)
    if m is not None:
        norm_axis("_backward_log_softmax", attrs["axis"], len(m))
    return [m, m], [m]


def _bls_fwd(attrs, ins, ctx):
    y, g = ins
    gx = g - np.exp(y) * np.sum(g, axis=attrs["axis"], keepdims=True)
    t = attrs["temperature"]
    if t is not None and t != 1.0:
        gx = gx / np.asarray(t, dtype=gx.dtype)
    return [gx.astype(g.dtype, copy=False)]


def _bls_grad(F, attrs, ins, outs, og, ctx):
    # gx = (g - e * sum(g)) / t with e = exp(y): dy = -u e sum(g) / t,
    # dg = (u - sum(u e)) / t (u the gradient of gx)
    y, g = ins
    u = _temp_scale(F, attrs, og[0])
    e = F.exp(y)
    sg = F.sum(g, axis=attrs["axis"], keepdims=True)
    dy = F.negative(F.broadcast_mul(F.elemwise_mul(u, e), sg))
    dg = F.broadcast_sub(u, F.sum(F.elemwise_mul(u, e), axis=attrs["axis"], keepdims=True))
    return [dy, dg]


def _lower_bls(ctx):
    nd = ctx.in_ndim[0]
    if nd < 1 or ctx.in_ndim[1] != nd:
        return None
    y, g, out = ctx.ins[0], ctx.ins[1], ctx.outs[0]
    ax = norm_axis("_backward_log_softmax", ctx.attrs["axis"], nd)
    inv = _inv_temp(ctx.attrs)
    if ax == nd - 1:
        c = ctx.tmp("c")
        return ["%s = %s.shape[%d]" % (c, y, nd - 1),
                "%s(%s.reshape((-1, %s)), %s.reshape((-1, %s)), %s.reshape((-1, %s)), %s)"
                % (ctx.fn("log_softmax_bwd_rows"), y, c, g, c, out, c, repr(inv))]

    def dims(ks):
        return " * ".join(["1"] + ["%s.shape[%d]" % (y, k) for k in ks])
    sh = ctx.tmp("s")
    return ["%s = (%s, %s, %s)" % (sh, dims(range(ax)), dims([ax]), dims(range(ax + 1, nd))),
            "%s(%s.reshape(%s), %s.reshape(%s), %s.reshape(%s), %s)"
            % (ctx.fn("log_softmax_bwd_mid"), y, sh, g, sh, out, sh, repr(inv))]


def _bls_samples(rng):
    def pair(shape):
        x = _rand(rng, shape)
        y = x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True))
        return [y, _rand(rng, shape)]
    return [Sample(pair((2, 4))), Sample(pair((3, 2, 4)), {"axis": 1}),
            Sample(pair((2, 3)), {"temperature": 2.0})]


def _sm_samples(rng):
    return [Sample([_rand(rng, (2, 4))]), Sample([_rand(rng, (3, 2))], {"axis": 0}),
            Sample([_rand(rng, (2, 3))], {"temperature": 2.0}),
            Sample([_rand(rng, (2, 3, 2))], {"axis": 1, "temperature": 0.5})]


def _softmax_samples(rng):
    """softmax's samples, and masking by length (a row of length 0 is all zeros)."""
    return _sm_samples(rng) + [
        Sample([_rand(rng, (3, 4)), np.array([1, 4, 0], dtype=np.int32)], {"use_length": True}),
        Sample([_rand(rng, (2, 3, 4)), np.array([[1, 3, 2, 3], [2, 1, 3, 3]], dtype=np.int64)],
               {"use_length": True, "axis": 1, "temperature": 2.0})]


def _lower_softmax(log, sign=1.0):
    """Row kernels over the last axis (the data viewed as (rows, n)); another axis: the data
    viewed as (pre, n, post) (``softmax_mid``).  ``sign`` -1: softmin."""
    def lower(ctx):
        a = ctx.attrs
        nd = ctx.in_ndim[0]
        if nd < 1 or (a["dtype"] is not None and a["dtype"] != ctx.dtype):
            return None
        if a["use_length"]:
            return _lower_softmax_length(ctx) if not log and sign == 1.0 else None
        x, out = ctx.ins[0], ctx.outs[0]
        t = a["temperature"]
        inv = sign * (1.0 if t is None else 1.0 / float(t))
        ax = norm_axis("softmax", a["axis"], nd)
        if ax != nd - 1 or sign != 1.0:
            return _mid_call(ctx, x, out, [list(range(ax)), [ax], list(range(ax + 1, nd))],
                             inv, log)
        c = ctx.tmp("c")
        return ["%s = %s.shape[%d]" % (c, x, nd - 1),
                "%s(%s.reshape((-1, %s)), %s.reshape((-1, %s)), %s)"
                % (ctx.fn("log_softmax_rows" if log else "softmax_rows"), x, c, out, c, repr(inv))]
    return lower


def _lower_softmax_length(ctx):
    """softmax with use_length: data and output viewed (outer, axis, inner), the length
    (outer, inner); each row's first L entries get the softmax, the rest 0.  A length
    beyond the axis is refused as in eager (the kernel raises ValueError
    'softmax.length_exceeds_axis'; it never reads past a row)."""
    from ._shape_lower import view3
    nd = ctx.in_ndim[0]
    if ctx.in_ndim[1] != nd - 1:
        return None
    ax = norm_axis("softmax", ctx.attrs["axis"], nd)
    x, ln, out = ctx.ins[0], ctx.ins[1], ctx.outs[0]
    lx, x3 = view3(ctx, x, nd, ax, ax)
    lo, o3 = view3(ctx, out, nd, ax, ax)
    t = ctx.attrs["temperature"]
    inv = typed_const(1.0 if t is None else 1.0 / float(t), "float64")
    lf, i, j, k, n, m, s, e, c = (ctx.tmp("l"), ctx.tmp("i"), ctx.tmp("i"), ctx.tmp("i"),
                                  ctx.tmp("n"), ctx.tmp("m"), ctx.tmp("s"), ctx.tmp("e"),
                                  ctx.tmp("c"))
    return lx + lo + [
        "%s = %s.reshape(%s.size)" % (lf, ln, ln),
        "%s = %s.shape[1]" % (c, x3),
        "for %s in range(%s.shape[0]):" % (i, x3),
        "    for %s in range(%s.shape[2]):" % (k, x3),
        "        %s = int(%s[%s * %s.shape[2] + %s])" % (n, lf, i, x3, k),
        "        if %s > %s:" % (n, c),
        # the kernel source may hold no free text (lower note *untrusted-text*)
        "            raise ValueError('softmax.length_exceeds_axis')",
        "        %s = -np.inf" % m,
        "        for %s in range(%s):" % (j, n),
        "            %s = max(%s, %s[%s, %s, %s] * %s)" % (m, m, x3, i, j, k, inv),
        "        %s = 0.0" % s,
        "        for %s in range(%s):" % (j, n),
        "            %s = np.exp(%s[%s, %s, %s] * %s - %s)" % (e, x3, i, j, k, inv, m),
        "            %s[%s, %s, %s] = %s" % (o3, i, j, k, e),
        "            %s += %s" % (s, e),
        "        for %s in range(%s):" % (j, n),
        "            %s[%s, %s, %s] = %s[%s, %s, %s] / %s" % (o3, i, j, k, o3, i, j, k, s),
        "        for %s in range(max(%s, 0), %s):" % (j, n, c),
        "            %s[%s, %s, %s] = 0.0" % (o3, i, j, k)]


def _mid_call(ctx, x, out, groups, scale, log):
    """``softmax_mid`` over ``x`` viewed as (pre, mid, post), the dims of each in ``groups``."""
    def dims(ks):
        return " * ".join(["1"] + ["%s.shape[%d]" % (x, k) for k in ks])
    sh = ctx.tmp("s")
    return ["%s = (%s, %s, %s)" % ((sh,) + tuple(dims(g) for g in groups)),
            "%s(%s.reshape(%s), %s.reshape(%s), %s, %s)" % (
                ctx.fn("softmax_mid"), x, sh, out, sh, typed_const(scale, "float64"),
                "True" if log else "False")]


def softmax_lowering(log=False, sign=1.0):
    """The KernelCall of softmax / log_softmax / softmin (math_extra.py); any_dtype for
    softmax's integer length (every other input and output has the data's dtype)."""
    return KernelCall(_lower_softmax(log, sign), any_dtype=True,
                      uses=("log_softmax_rows" if log else "softmax_rows", "softmax_mid"))


def _lower_softmax_activation(ctx):
    """SoftmaxActivation: 'instance' over every axis but 0, 'channel' over axis 1."""
    nd = ctx.in_ndim[0]
    x, out = ctx.ins[0], ctx.outs[0]
    if ctx.attrs["mode"] == "channel":
        if nd < 2:
            return None
        groups = [[0], [1], list(range(2, nd))]
    else:
        groups = [[0], list(range(1, nd)), []] if nd > 1 else [[], [0], []]
    return _mid_call(ctx, x, out, groups, 1.0, False)


softmax_activation_lowering = KernelCall(_lower_softmax_activation, uses=("softmax_mid",))


register("softmax", inputs=_sm_inputs, optional_inputs=("length",), attrs=dict(_SM_ATTRS), infer_shape=_sm_infer("softmax"),
         infer_type=_sm_type, forward=_sm_fwd(False), gradient=_softmax_grad, lowering=softmax_lowering(),
         samples=_softmax_samples,
         doc="softmax(data / temperature) along ``axis`` (default -1); with use_length=True "
             "over the first length[...] entries of each row (an integer array shaped as "
             "data without axis), 0 after them.")
register("log_softmax", inputs=("data",), attrs=dict(_SM_ATTRS), infer_shape=_sm_infer("log_softmax"),
         infer_type=_sm_type, forward=_sm_fwd(True), gradient=_log_softmax_grad, lowering=softmax_lowering(True),
         samples=_sm_samples, doc="log(softmax(data / temperature)) along ``axis`` (default -1).")

register("_backward_log_softmax", inputs=("output", "out_grad"),
         attrs={"axis": Attr("int", -1), "temperature": Attr("float_or_none", None)},
         infer_shape=_bls_infer, forward=_bls_fwd,
         infer_type=_data_led_type("_backward_log_softmax", ["output", "out_grad"]),
         gradient=_bls_grad,
         lowering=KernelCall(_lower_bls, uses=("log_softmax_bwd_rows", "log_softmax_bwd_mid")),
         samples=_bls_samples,
         doc="log_softmax's gradient from its output y and the output's gradient g: "
             "(g - exp(y) * sum(g, axis)) / temperature.")

# ---------------------------------------------------------------------------------------
# SoftmaxOutput / softmax_cross_entropy
# ---------------------------------------------------------------------------------------
_SO_ATTRS = {"grad_scale": Attr("float", 1.0), "ignore_label": Attr("float", -1.0),
             "multi_output": _BOOL_F, "use_ignore": _BOOL_F, "preserve_shape": _BOOL_F,
             "normalization": Attr("str", "null", choices=("null", "batch", "valid")),
             "out_grad": _BOOL_F, "smooth_alpha": Attr("float", 0.0)}


def _so_label_shapes(attrs, d):
    """Label shapes SoftmaxOutput accepts for data shape ``d``; the first is the inferred one."""
    if attrs["multi_output"]:
        return [(d[0], _prod(d[2:])), (d[0],) + tuple(d[2:])]
    if attrs["preserve_shape"]:
        return [tuple(d[:-1]), tuple(d)]
    return [(d[0],), tuple(d)]


def _so_infer(attrs, ins):
    d, l = ins
    if d is None:
        return ins, [None]
    if len(d) < 2 and not attrs["preserve_shape"]:
        raise MXNetError("SoftmaxOutput: data must have at least 2 dimensions, got %s" % fmt(d))
    if attrs["multi_output"] and len(d) < 2:
        raise MXNetError("SoftmaxOutput: multi_output needs data of at least 2 dimensions")
    cands = _so_label_shapes(attrs, d)
    if l is None:
        l = cands[0]
    else:
        for c in cands:
            try:
                l = _merge("SoftmaxOutput", "label", l, c)
                break
            except MXNetError:
                continue
        else:
            raise MXNetError("SoftmaxOutput: label shape %s does not match data shape %s "
                             "(expected %s)" % (fmt(l), fmt(d), fmt(cands[0])))
    return [d, l], [d]


def _so_view(attrs, x):
    """Data as (rows, classes, inner) with softmax over axis 1."""
    if attrs["multi_output"]:
        return x.reshape(x.shape[0], x.shape[1], -1)
    if attrs["preserve_shape"]:
        return x.reshape(-1, x.shape[-1], 1)
    return x.reshape(x.shape[0], -1, 1)


def _so_fwd(attrs, ins, ctx):
    x = ins[0]
    y = _softmax_np(_so_view(attrs, x), 1, None, False)
    return [y.reshape(x.shape).astype(x.dtype, copy=False)]


def _so_target_np(attrs, data, label):
    """Target distribution (smoothed one-hot, or the label itself for probability labels)
    and the per-element gradient scale (grad_scale / normaliser, zero where ignored)."""
    v = _so_view(attrs, data)
    n, k, inner = v.shape
    if label.size == data.size and label.shape == data.shape and not attrs["multi_output"]:
        tgt = label.astype(data.dtype).reshape(v.shape)
        scale = np.full(v.shape, attrs["grad_scale"], dtype=data.dtype)
        if attrs["normalization"] == "batch":
            scale /= data.shape[0]
        return tgt.reshape(data.shape), scale.reshape(data.shape)
    lab = label.reshape(n, inner)
    li = lab.astype(np.int64)
    alpha = attrs["smooth_alpha"]
    onehot = (li[:, None, :] == np.arange(k)[None, :, None])
    if alpha:
        tgt = np.where(onehot, 1.0 - alpha, alpha / max(k - 1, 1))
    else:
        tgt = onehot.astype(np.float64)
    keep = np.ones((n, 1, inner))
    if attrs["use_ignore"]:
        keep = (li != int(attrs["ignore_label"]))[:, None, :].astype(np.float64)
    norm = attrs["normalization"]
    # multi_output: MXNet divides 'null' by the spatial size d and 'batch' by N*d
    spatial = float(inner) if attrs["multi_output"] else 1.0
    if norm == "batch":
        cnt = float(n) * spatial
    elif norm == "valid":
        if attrs["use_ignore"]:
            cnt = float(max(int(keep.sum()), 1))
        else:
            cnt = float(max(int((li != int(attrs["ignore_label"])).sum()), 1))
    else:
        cnt = spatial
    scale = np.broadcast_to(keep * (attrs["grad_scale"] / cnt), v.shape)
    return (tgt.astype(data.dtype).reshape(data.shape),
            np.ascontiguousarray(scale, dtype=data.dtype).reshape(data.shape))


def _so_grad(F, attrs, ins, outs, og, ctx):
    x, label = ins
    y = outs[0]
    kw = {k: attrs[k] for k in _SO_ATTRS if attrs[k] != _SO_ATTRS[k].default}
    tgt = F._softmax_output_target(y, label, **kw)
    scale = F._softmax_output_scale(y, label, **kw)
    gx = F.elemwise_mul(F.elemwise_sub(y, tgt), scale)
    if attrs["out_grad"]:
        gx = F.elemwise_mul(gx, og[0])
    return [gx, F.zeros_like(label)]


def _so_samples(rng):
    return [Sample([_rand(rng, (3, 4)), np.array([1.0, 0.0, 3.0])]),
            Sample([_rand(rng, (3, 4)), np.array([1.0, 2.0, 3.0])],
                   {"normalization": "batch", "grad_scale": 2.0}),
            Sample([_rand(rng, (2, 3, 2)), np.array([[0.0, 2.0], [1.0, 1.0]])], {"multi_output": True}),
            Sample([_rand(rng, (2, 2, 3)), np.array([[0.0, 2.0], [1.0, -1.0]])],
                   {"preserve_shape": True, "use_ignore": True, "normalization": "valid"}),
            Sample([_rand(rng, (3, 4)), np.array([1.0, 0.0, 3.0])], {"smooth_alpha": 0.1})]


def _lower_softmax_output(ctx):
    """Forward of SoftmaxOutput on (batch, classes) data: a softmax row kernel."""
    a = ctx.attrs
    if ctx.in_ndim[0] != 2 or a["multi_output"] or a["preserve_shape"]:
        return None
    return ["%s(%s, %s, 1.0)" % (ctx.fn("softmax_rows"), ctx.ins[0], ctx.outs[0])]


register("SoftmaxOutput", inputs=("data", "label"), attrs=dict(_SO_ATTRS), infer_shape=_so_infer,
         infer_type=_data_led_type("SoftmaxOutput", ["data", "label"]),
         forward=_so_fwd, gradient=_so_grad, aliases=("Softmax",), is_loss=True,
         lowering=KernelCall(_lower_softmax_output, uses=("softmax_rows",)), grad_check=False, second_order=False, samples=_so_samples,
         doc="Softmax forward; backward is (softmax - one_hot(label)) * grad_scale / normaliser, "
             "ignoring the head gradient (unless out_grad=True).  The label gets a zero gradient.")


def _so_helper_infer(attrs, ins):
    d, l = ins
    return ins, [d]


def _lower_so_target(ctx):
    """One-hot targets of integer class labels for (batch, classes) data (no smoothing,
    ignore label or probability labels: those run eagerly)."""
    a = ctx.attrs
    ds, ls = ctx.in_shapes
    if ctx.in_ndim != [2, 1] or a["smooth_alpha"] or a["multi_output"] or \
            a["preserve_shape"] or a["use_ignore"] or ds[0] * ds[1] == ls[0]:
        return None
    lab, out = ctx.ins[1], ctx.outs[0]
    i, j, k = ctx.tmp("i"), ctx.tmp("i"), ctx.tmp("k")
    return ["for %s in range(%s.shape[0]):" % (i, out),
            "    %s = int(%s[%s])" % (k, lab, i),
            "    for %s in range(%s.shape[1]):" % (j, out),
            "        %s[%s, %s] = %s if %s == %s else %s" % (out, i, j, ctx.const(1.0), j, k,
                                                        ctx.const(0.0))]


def _so_helper(name, idx, doc, lowering=None):
    register(name, inputs=("data", "label"), attrs=dict(_SO_ATTRS), infer_shape=_so_helper_infer,
             forward=lambda attrs, ins, ctx: [_so_target_np(attrs, ins[0], ins[1])[idx]],
             gradient=lambda F, attrs, ins, outs, og, ctx: [None, None],
             lowering=lowering, lowerable=lowering is not None, grad_check=False, doc=doc,
             samples=_so_samples)


_so_helper("_softmax_output_target", 0,
           "SoftmaxOutput's target distribution (smoothed one-hot of label) in data's shape; a "
           "constant of the label, so it passes no gradient.", lowering=_lower_so_target)
_so_helper("_softmax_output_scale", 1,
           "SoftmaxOutput's per-element gradient scale (grad_scale / normaliser, 0 where the "
           "label is ignored) in data's shape; passes no gradient.")


def _sce_infer(attrs, ins):
    d, l = ins
    if d is not None:
        if len(d) != 2:
            raise MXNetError("softmax_cross_entropy: data must be 2-D (batch, classes), got %s" % fmt(d))
        try:
            l = _merge("softmax_cross_entropy", "label", l, (d[0],))
        except MXNetError:
            raise MXNetError("softmax_cross_entropy: label shape %s must be (%d,) for data %s"
                             % (fmt(l), d[0], fmt(d))) from None
    return [d, l], [(1,)]


def _sce_fwd(attrs, ins, ctx):
    x, label = ins
    lp = _softmax_np(x, -1, None, True)
    li = np.clip(label.astype(np.int64), 0, x.shape[1] - 1)
    return [np.asarray([-lp[np.arange(x.shape[0]), li].sum()], dtype=x.dtype)]


def _sce_grad(F, attrs, ins, outs, og, ctx):
    x, label = ins
    tgt = F._softmax_output_target(x, label)
    return [F.broadcast_mul(F.elemwise_sub(F.softmax(x), tgt), og[0]), None]


def _lower_sce(ctx):
    if ctx.in_ndim != [2, 1]:
        return None
    return ["%s(%s, %s, %s)" % (ctx.fn("softmax_cross_entropy_rows"), ctx.ins[0], ctx.ins[1],
                                ctx.outs[0])]


register("softmax_cross_entropy", inputs=("data", "label"), infer_shape=_sce_infer,
         forward=_sce_fwd, gradient=_sce_grad,
         lowering=KernelCall(_lower_sce, uses=("softmax_cross_entropy_rows",)),
         samples=lambda rng: [Sample([_rand(rng, (3, 4)), np.array([1.0, 0.0, 3.0])])],
         doc="Softmax cross-entropy summed over the batch; output shape (1,).")
