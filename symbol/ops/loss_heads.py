"""Loss-head operators of MXNet 1.x's symbolic API: LinearRegressionOutput,
LogisticRegressionOutput, MAERegressionOutput, MakeLoss / make_loss and SVMOutput.

Each is an identity-like forward (sigmoid for the logistic head) whose backward ignores the
head gradient and writes the loss gradient directly, as MXNet does (FINDINGS.md "Loss
heads"); the label gets a zero gradient.  The gradients are dedicated ``_*_grad`` ops so that
backward graphs stay ordinary Symbols; those ops are constants of their inputs (no gradient
of their own).

* regression heads: ``(out - label) * grad_scale / m`` (MAE: ``sign(out - label)``), ``m`` =
  outputs per sample = ``label.size / label.shape[0]``; no division by the batch;
* MakeLoss: ``grad_scale`` everywhere, divided by the batch size (``normalization='batch'``)
  or by the number of outputs above ``valid_thresh`` (``'valid'``); make_loss is MakeLoss's
  older twin with its own op name and output name ``<name>_loss``;
* SVMOutput: squared hinge, one-vs-all, unnormalised: for the label class
  ``-2 reg max(0, margin - x)``, for the others ``+2 reg max(0, margin + x)``; with
  ``use_linear`` the hinge's ``-reg [margin - x > 0]`` / ``+reg [margin + x > 0]``.
"""
import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt
from ._lowering import KernelCall, typed_const


def _rand(rng, shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape)


def _prod(s):
    p = 1
    for d in s:
        p *= d
    return p


def _label_like_data(op):
    """Label shape = data shape when unknown; otherwise the sizes must agree (MXNet also takes
    a (N,) label for (N, 1) data)."""
    def infer(attrs, ins):
        d, l = ins
        if d is None:
            return ins, [None]
        if l is None:
            return [d, tuple(d)], [d]
        if all(x > 0 for x in d) and all(x > 0 for x in l) and _prod(d) != _prod(l):
            raise MXNetError("%s: label shape %s does not match data shape %s"
                             % (op, fmt(l), fmt(d)))
        return ins, [d]
    return infer


_REG_MODES = ("linear", "logistic", "mae")


def _regression_grad_np(attrs, ins, ctx):
    out, label = ins
    diff = out - label.reshape(out.shape).astype(out.dtype)
    if attrs["mode"] == "mae":
        diff = np.sign(diff)
    m = label.size / label.shape[0] if label.ndim and label.shape[0] else 1.0
    return [(diff * (attrs["grad_scale"] / m)).astype(out.dtype)]


def _lower_regression(kind, mode=None):
    """Regression heads (kind 'fwd': identity or sigmoid of the data; the label is not
    read) and their gradient ('grad': (out - label) or its sign, times grad_scale / outputs
    per sample, a constant of the label's trace shape).  Elementwise where the label has the
    data's shape, else a flat loop (a (N,) label of (N, 1) data)."""
    def lower(ctx):
        a = ctx.attrs
        if kind == "fwd":
            expr = "sigmoid({0})" if mode == "logistic" else "{0}"
        else:
            ls = ctx.in_shapes[1]
            m = _prod(ls) / ls[0] if len(ls) and ls[0] else 1.0
            d = "({0} - {1})"
            expr = "%s * %s" % ("sign(%s)" % d if a["mode"] == "mae" else d,
                               ctx.const(a["grad_scale"] / m))
        if tuple(ctx.in_shapes[1]) == tuple(ctx.out_shapes[0]):
            return expr
        for f in ("sigmoid", "sign"):
            if f + "(" in expr:
                ctx.fn(f)
        i, n = ctx.tmp("i"), ctx.tmp("n")
        ops = ["%s.reshape(-1)[%s]" % (v, i) for v in ctx.ins]
        return ["%s = %s.size" % (n, ctx.outs[0]),
                "for %s in range(%s):" % (i, n),
                "    %s.reshape(-1)[%s] = %s" % (ctx.outs[0], i, expr.format(*ops))]
    return KernelCall(lower, uses=("sigmoid", "sign"))


register("_regression_output_grad", inputs=("out", "label"),
         attrs={"mode": Attr("str", "linear", choices=_REG_MODES), "grad_scale": Attr("float", 1.0)},
         infer_shape=lambda attrs, ins: (ins, [ins[0]]),
         infer_type=lambda attrs, ins: (ins, [ins[0]]),
         forward=_regression_grad_np, gradient=lambda F, attrs, ins, outs, og, ctx: [None, None],
         lowering=_lower_regression("grad"), grad_check=False, second_order=False,
         doc="Gradient of a regression head: (out - label) (or its sign) * grad_scale / outputs "
             "per sample.",
         samples=lambda rng: [Sample([_rand(rng, (3, 4)), _rand(rng, (3, 4))], {"mode": "mae"}),
                              Sample([_rand(rng, (3, 1)), _rand(rng, (3,))], {"grad_scale": 2.0})])


def _regression_head(name, mode, fwd, doc):
    def grad(F, attrs, ins, outs, og, ctx):
        return [F._regression_output_grad(outs[0], ins[1], mode=mode,
                                          grad_scale=attrs["grad_scale"]),
                F.zeros_like(ins[1])]
    register(name, inputs=("data", "label"), attrs={"grad_scale": Attr("float", 1.0)},
             infer_shape=_label_like_data(name), forward=lambda attrs, ins, ctx: [fwd(ins[0])],
             gradient=grad, is_loss=True, lowering=_lower_regression("fwd", mode), grad_check=False,
             second_order=False, doc=doc,
             samples=lambda rng: [Sample([_rand(rng, (3, 4)), _rand(rng, (3, 4), 0, 1)]),
                                  Sample([_rand(rng, (4, 1)), _rand(rng, (4,), 0, 1)],
                                         {"grad_scale": 3.0})])


def _sigmoid(x):
    return (1.0 / (1.0 + np.exp(-x))).astype(x.dtype)


_regression_head("LinearRegressionOutput", "linear", lambda x: x.copy(),
                 "Identity forward; backward (out - label) * grad_scale / outputs per sample.")
_regression_head("LogisticRegressionOutput", "logistic", _sigmoid,
                 "Sigmoid forward; backward (sigmoid(x) - label) * grad_scale / outputs per sample.")
_regression_head("MAERegressionOutput", "mae", lambda x: x.copy(),
                 "Identity forward; backward sign(out - label) * grad_scale / outputs per sample.")


_ML_ATTRS = {"grad_scale": Attr("float", 1.0), "valid_thresh": Attr("float", 0.0),
             "normalization": Attr("str", "null", choices=("null", "batch", "valid"))}


def _makeloss_grad_np(attrs, ins, ctx):
    x = ins[0]
    scale = attrs["grad_scale"]
    if attrs["normalization"] == "batch":
        scale /= x.shape[0] if x.ndim and x.shape[0] else 1
    elif attrs["normalization"] == "valid":
        scale /= max(int(np.sum(x > attrs["valid_thresh"])), 1)
    return [np.full(x.shape, scale, dtype=x.dtype)]


def _lower_makeloss_grad(ctx):
    """grad_scale everywhere, divided by the batch size or by the count above valid_thresh
    (both read at run time)."""
    a = ctx.attrs
    x, out = ctx.ins[0], ctx.outs[0]
    n, i, c = ctx.tmp("n"), ctx.tmp("i"), ctx.tmp("c")
    lines = ["%s = %s.size" % (n, x), "%s = %s" % (c, typed_const(a["grad_scale"], "float64"))]
    if a["normalization"] == "batch":
        lines.append("%s = %s / max(%s.shape[0], 1)" % (c, c, x) if ctx.in_ndim[0] else "pass")
    elif a["normalization"] == "valid":
        k = ctx.tmp("k")
        lines += ["%s = 0" % k,
                  "for %s in range(%s):" % (i, n),
                  "    if %s.reshape(-1)[%s] > %s:" % (x, i, ctx.const(a["valid_thresh"])),
                  "        %s += 1" % k,
                  "%s = %s / max(%s, 1)" % (c, c, k)]
    lines += ["for %s in range(%s):" % (i, n),
              "    %s.reshape(-1)[%s] = %s" % (out, i, c)]
    return lines


register("_makeloss_grad", inputs=("data",), attrs=dict(_ML_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [ins[0]]), forward=_makeloss_grad_np,
         gradient=lambda F, attrs, ins, outs, og, ctx: [None], grad_check=False,
         lowering=KernelCall(_lower_makeloss_grad), second_order=False,
         doc="MakeLoss's gradient: grad_scale / normaliser everywhere.",
         samples=lambda rng: [Sample([_rand(rng, (3, 4))], {"normalization": "valid",
                                                            "valid_thresh": 0.5})])


def _makeloss(name, output_name, doc):
    def grad(F, attrs, ins, outs, og, ctx):
        return [F._makeloss_grad(ins[0], **{k: attrs[k] for k in _ML_ATTRS})]
    register(name, inputs=("data",), attrs=dict(_ML_ATTRS),
             infer_shape=lambda attrs, ins: (ins, [ins[0]]),
             forward=lambda attrs, ins, ctx: [ins[0].copy()], gradient=grad, is_loss=True,
             output_names=(output_name,), lowering="{0}", grad_check=False,
             second_order=False, doc=doc,
             samples=lambda rng: [Sample([_rand(rng, (3, 4))]),
                                  Sample([_rand(rng, (3, 4))], {"normalization": "batch",
                                                                "grad_scale": 0.5})])


_makeloss("MakeLoss", "output", "Marks its input as a loss: identity forward, backward "
          "grad_scale (/ batch or / valid count), ignoring the head gradient.")
_makeloss("make_loss", "loss", "The older twin of MakeLoss (own op name; output <name>_loss).")


_SVM_ATTRS = {"margin": Attr("float", 1.0), "regularization_coefficient": Attr("float", 1.0),
              "use_linear": Attr("bool", False)}


def _svm_infer(attrs, ins):
    d, l = ins
    if d is None:
        return ins, [None]
    want = tuple(d[:1]) if len(d) >= 1 else None
    if l is not None and want is not None and all(x > 0 for x in l) and \
            _prod(l) != _prod(d) // max(d[-1], 1):
        raise MXNetError("SVMOutput: label shape %s does not match data shape %s (one label "
                         "per row)" % (fmt(l), fmt(d)))
    return [d, l if l is not None else tuple(d[:-1])], [d]


def _svm_grad_np(attrs, ins, ctx):
    x, label = ins
    rows = x.reshape(-1, x.shape[-1])
    lab = label.reshape(-1).astype(np.int64)
    is_y = lab[:, None] == np.arange(rows.shape[1])[None, :]
    m, reg = attrs["margin"], attrs["regularization_coefficient"]
    if attrs["use_linear"]:
        g = np.where(is_y, -reg * (m - rows > 0), reg * (m + rows > 0))
    else:
        g = np.where(is_y, -2 * reg * np.maximum(0, m - rows), 2 * reg * np.maximum(0, m + rows))
    return [g.reshape(x.shape).astype(x.dtype)]


register("_svm_output_grad", inputs=("data", "label"), attrs=dict(_SVM_ATTRS),
         infer_shape=lambda attrs, ins: (ins, [ins[0]]),
         infer_type=lambda attrs, ins: (ins, [ins[0]]), forward=_svm_grad_np,
         gradient=lambda F, attrs, ins, outs, og, ctx: [None, None], lowerable=False,
         grad_check=False, second_order=False, doc="SVMOutput's one-vs-all hinge gradient.",
         samples=lambda rng: [Sample([_rand(rng, (4, 3)), np.array([0.0, 2.0, 1.0, 2.0])],
                                     {"use_linear": True})])


register("SVMOutput", inputs=("data", "label"), attrs=dict(_SVM_ATTRS), infer_shape=_svm_infer,
         forward=lambda attrs, ins, ctx: [ins[0].copy()],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._svm_output_grad(ins[0], ins[1], **{k: attrs[k] for k in _SVM_ATTRS}),
             F.zeros_like(ins[1])],
         is_loss=True, lowerable=False, grad_check=False, second_order=False,
         doc="Identity forward; backward the squared (or linear) hinge gradient, one-vs-all.",
         samples=lambda rng: [Sample([_rand(rng, (4, 3)), np.array([0.0, 2.0, 1.0, 2.0])]),
                              Sample([_rand(rng, (4, 3)), np.array([0.0, 2.0, 1.0, 2.0])],
                                     {"margin": 0.5, "regularization_coefficient": 2.0})])
