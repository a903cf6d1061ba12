"""More elementwise math: inverse and hyperbolic trigonometry, degrees/radians, cube roots,
gamma functions, erfinv, logical ops, and softmin (MXNet 1.9.1's definitions; values checked
against real MXNet in tests/test_math_extra_ops.py).

Gradients are written with registered ops; the special functions' derivatives use the
helper ``_digamma``.  Logical ops return 1/0 in the input's dtype and pass no gradient.
"""
import numpy as np
from scipy import special

from ..registry import register, Attr, Sample
from ._common import unary_infer, broadcast_infer
from .elemwise import _unary, _g, _keep, _bin_samples
from .nn_softmax import softmax_lowering


def _F(F, x, s):
    return F._mul_scalar(x, scalar=s)


_unary("arcsin", np.arcsin, _g(lambda F, x, y, g: F.elemwise_mul(
    g, F.rsqrt(F._rminus_scalar(F.square(x), scalar=1.0)))), "math.asin({0})", lo=-0.9, hi=0.9)
_unary("arccos", np.arccos, _g(lambda F, x, y, g: F.negative(F.elemwise_mul(
    g, F.rsqrt(F._rminus_scalar(F.square(x), scalar=1.0))))), "math.acos({0})", lo=-0.9, hi=0.9)
_unary("arctan", np.arctan, _g(lambda F, x, y, g: F.elemwise_div(
    g, F._plus_scalar(F.square(x), scalar=1.0))), "math.atan({0})")
_unary("sinh", np.sinh, _g(lambda F, x, y, g: F.elemwise_mul(g, F.cosh(x))), "math.sinh({0})")
_unary("cosh", np.cosh, _g(lambda F, x, y, g: F.elemwise_mul(g, F.sinh(x))), "math.cosh({0})")
def _asinh_slope(F, x):
    """1 / sqrt(x^2 + 1) without overflowing x^2 (float32 |x| > 1.8e19): for |x| > 1 it is
    computed as r / sqrt(1 + r^2) with r = 1/|x| (MXNet gives 1e-30 at 1e30, not 0)."""
    r = F.reciprocal(F._maximum_scalar(F.abs(x), scalar=1.0))
    big = F.elemwise_mul(r, F.rsqrt(F._plus_scalar(F.square(r), scalar=1.0)))
    small = F.rsqrt(F._plus_scalar(F.square(x), scalar=1.0))
    return F.where(F._greater_scalar(F.abs(x), scalar=1.0), big, small)


_unary("arcsinh", np.arcsinh, _g(lambda F, x, y, g: F.elemwise_mul(g, _asinh_slope(F, x))),
       "math.asinh({0})")
_unary("arccosh", np.arccosh, _g(lambda F, x, y, g: F.elemwise_mul(
    g, F.rsqrt(F._minus_scalar(F.square(x), scalar=1.0)))), "math.acosh({0})", lo=1.2, hi=3.0)
_unary("arctanh", np.arctanh, _g(lambda F, x, y, g: F.elemwise_div(
    g, F._rminus_scalar(F.square(x), scalar=1.0))), "math.atanh({0})", lo=-0.9, hi=0.9)
_unary("degrees", np.degrees, _g(lambda F, x, y, g: _F(F, g, float(180.0 / np.pi))),
       "({0} * %r)" % float(180.0 / np.pi))
_unary("radians", np.radians, _g(lambda F, x, y, g: _F(F, g, float(np.pi / 180.0))),
       "({0} * %r)" % float(np.pi / 180.0))
_unary("cbrt", np.cbrt, _g(lambda F, x, y, g: F.elemwise_div(
    g, _F(F, F.square(y), 3.0))), "np.cbrt({0})", lo=0.3, hi=3.0)
_unary("rcbrt", lambda x: 1.0 / np.cbrt(x), _g(lambda F, x, y, g: F.elemwise_mul(
    g, _F(F, F.elemwise_div(y, x), -1.0 / 3.0))), "(1.0 / np.cbrt({0}))", lo=0.3, hi=3.0)
_unary("gamma", special.gamma, _g(lambda F, x, y, g: F.elemwise_mul(
    g, F.elemwise_mul(y, F._digamma(x)))), lo=0.3, hi=3.0, second_order=False)
_unary("gammaln", lambda x: np.where(x == -np.inf, np.inf, special.gammaln(x)), _g(lambda F, x, y, g: F.elemwise_mul(g, F._digamma(x))),
       lo=0.3, hi=3.0, second_order=False)
_unary("erfinv", special.erfinv, _g(lambda F, x, y, g: F.elemwise_mul(
    g, _F(F, F.exp(F.square(y)), float(np.sqrt(np.pi) / 2.0)))), "erfinv({0})", lo=-0.9, hi=0.9,
    second_order=False)
def _digamma_np(x):
    """digamma with MXNet's values at its poles (0, -0, the negative integers and -inf):
    +inf in float32 (and float16), the largest double in float64, where SciPy gives -inf/nan."""
    y = special.digamma(x)
    pole = (x <= 0) & (np.floor(x) == x)
    if not pole.any():
        return y
    big = np.finfo(np.float64).max if x.dtype == np.float64 else np.inf
    return np.where(pole, big, y)


_unary("_digamma", _digamma_np, None, lo=0.3, hi=3.0, differentiable=False,
       doc="The digamma function (the derivative of gammaln), a gradient helper.")
_unary("logical_not", lambda x: (x == 0), _g(lambda F, x, y, g: F.zeros_like(x)),
       "(1.0 if {0} == 0 else 0.0)", grad_check=False)


def _logical(name, fn, template):
    def forward(attrs, ins, ctx):
        a, b = ins
        return [_keep(fn(a != 0, b != 0), a)]

    def grad(F, attrs, ins, outs, og, ctx):
        return [F.zeros_like(ins[0]), F.zeros_like(ins[1])]

    register(name, inputs=("lhs", "rhs"), infer_shape=broadcast_infer(name), forward=forward,
             gradient=grad, lowering=template, samples=_bin_samples(True), grad_check=False,
             doc="Elementwise logical %s with broadcasting (1/0 in the input dtype)."
                 % name.rsplit("_", 1)[-1])


_logical("broadcast_logical_and", np.logical_and, "(1.0 if ({0} != 0) and ({1} != 0) else 0.0)")
_logical("broadcast_logical_or", np.logical_or, "(1.0 if ({0} != 0) or ({1} != 0) else 0.0)")
_logical("broadcast_logical_xor", np.logical_xor, "(1.0 if ({0} != 0) != ({1} != 0) else 0.0)")


def _softmin_fwd(attrs, ins, ctx):
    x = ins[0]
    z = -x if attrs["temperature"] in (None, 1.0) else -x / attrs["temperature"]
    z = z - np.max(z, axis=attrs["axis"], keepdims=True)
    e = np.exp(z)
    return [(e / np.sum(e, axis=attrs["axis"], keepdims=True)).astype(attrs["dtype"] or x.dtype)]


def _softmin_grad(F, attrs, ins, outs, og, ctx):
    y, g = outs[0], og[0]
    s = F.sum(F.elemwise_mul(g, y), axis=attrs["axis"], keepdims=True)
    gx = F.negative(F.elemwise_mul(y, F.broadcast_sub(g, s)))
    t = attrs["temperature"]
    return [gx if t in (None, 1.0) else F._mul_scalar(gx, scalar=1.0 / t)]


register("softmin", inputs=("data",),
         attrs={"axis": Attr("int", -1), "temperature": Attr("float_or_none", None),
                "dtype": Attr("dtype", None), "use_length": Attr("bool", False)},
         infer_shape=unary_infer("softmin"),
         infer_type=lambda attrs, ins: (ins, [attrs["dtype"] or ins[0]]),
         forward=_softmin_fwd, gradient=_softmin_grad, lowering=softmax_lowering(sign=-1.0),
         doc="softmax(-data / temperature) along axis.",
         samples=lambda rng: [Sample([rng.uniform(-2, 2, (3, 4))]),
                              Sample([rng.uniform(-2, 2, (3, 4))], {"axis": 0, "temperature": 2.0})])


# hard_sigmoid: clip(alpha * x + beta, 0, 1); the gradient is alpha strictly inside the ramp
def _hard_sigmoid_fwd(attrs, ins, ctx):
    x = ins[0]
    y = np.clip(attrs["alpha"] * x + attrs["beta"], 0.0, 1.0)
    return [_keep(y, x)]


def _hard_sigmoid_grad(F, attrs, ins, outs, og, ctx):
    a, b = attrs["alpha"], attrs["beta"]
    x = ins[0]
    inside = F.elemwise_mul(F._greater_scalar(x, scalar=-b / a),
                            F._lesser_scalar(x, scalar=(1.0 - b) / a))
    return [F.elemwise_mul(og[0], F._mul_scalar(inside, scalar=a))]


register("hard_sigmoid", inputs=("data",),
         attrs={"alpha": Attr("float", 0.2), "beta": Attr("float", 0.5)},
         infer_shape=unary_infer("hard_sigmoid"), forward=_hard_sigmoid_fwd,
         gradient=_hard_sigmoid_grad,
         lowering="K.minimum(K.maximum({alpha} * {0} + {beta}, 0.0), 1.0)",
         doc="max(0, min(1, alpha * data + beta)).",
         samples=lambda rng: [Sample([rng.uniform(-4, 4, (3, 4))]),
                              Sample([rng.uniform(-2, 2, (3, 4))], {"alpha": 0.5, "beta": 0.25})])
