"""Elementwise operators: unary math, binary broadcast/elemwise ops, scalar ops, comparisons.

Every gradient is written with registered ops through ``F`` (see registry note
*one-definition-per-op*), so it can be recorded again (higher order) and exported as a graph.
``lowering`` is the scalar expression the JIT fuses into one loop: ``{0}``/``{1}`` are the
inputs, ``{s}`` the scalar attr, names resolve in the JIT's kernel library.
"""
import math

import numpy as np

from ..registry import register, Attr, Sample, get_op as _get_op
from ._lowering import Elementwise, KernelCall
from ._common import unary_infer, broadcast_infer, elemwise_infer, same_shape, quiet_call, grad_needed

_F = Attr("float")


def _rand(rng, shape=(2, 3), lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape)


def _keep(out, like):
    """Elementwise results keep the input dtype (MXNet never promotes); NumPy returns scalars
    for 0-d inputs, which become 0-d arrays again."""
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    if out.dtype is not like.dtype and out.dtype != like.dtype:
        return out.astype(like.dtype)
    return out


def _self_quiet(op):
    """Mark an op whose kernel silences NumPy's floating-point warnings itself (quiet_call),
    so the eager dispatch need not wrap it again."""
    op.fp_quiet = True
    return op


def _sign_np(x):
    """MXNet's sign: sign(nan) = 0 (NumPy's is nan)."""
    s = np.sign(x)
    if s.dtype.kind == "f":
        s = np.where(s == s, s, s.dtype.type(0))
    return s


def _round_np(x):
    """MXNet's round: halves away from zero (NumPy rounds them to even).  x - trunc(x) is
    exact, so 0.49999997 stays 0."""
    t = np.trunc(x)
    if x.dtype.kind != "f":
        return t
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(x - t) >= 0.5, t + np.where(x > 0, 1, -1).astype(x.dtype), t)


def _rint_np(x):
    """MXNet's rint: floor(x), plus one when the fraction is above one half (a half rounds
    down: 1.5 -> 1, -1.5 -> -2, 2.5 -> 2)."""
    f = np.floor(x)
    if x.dtype.kind != "f":
        return f
    with np.errstate(invalid="ignore"):
        return np.where(x - f <= 0.5, f, f + x.dtype.type(1))


# ---------------------------------------------------------------------------------------
# unary math
# ---------------------------------------------------------------------------------------
def _unary(name, fwd, grad, lowering=None, lo=-2.0, hi=2.0, second_order=True, **kw):
    def forward(attrs, ins, ctx, _f=fwd):
        x = ins[0]
        return [_keep(quiet_call(_f, x), x)]

    def samples(rng, _lo=lo, _hi=hi):
        return [Sample([_rand(rng, (2, 3), _lo, _hi)]), Sample([_rand(rng, (4,), _lo, _hi)])]

    return _self_quiet(register(name, inputs=("data",), infer_shape=unary_infer(name), forward=forward,
                    gradient=grad, lowering=lowering, samples=samples,
                    second_order=second_order, eager_infer=False, **kw))


def _g(fn):
    """Adapt ``fn(F, x, y, dy) -> dx`` to the registry's gradient signature."""
    def grad(F, attrs, ins, outs, og, ctx):
        return [fn(F, ins[0], outs[0], og[0])]
    return grad


_unary("exp", np.exp, _g(lambda F, x, y, g: F.elemwise_mul(g, y)), "exp({0})")
_unary("log", np.log, _g(lambda F, x, y, g: F.elemwise_div(g, x)), "log({0})", lo=0.2, hi=3.0)
_unary("sqrt", np.sqrt, _g(lambda F, x, y, g: F.elemwise_div(F._mul_scalar(g, scalar=0.5), y)),
       "sqrt({0})", lo=0.2, hi=3.0)
_unary("rsqrt", lambda x: 1.0 / np.sqrt(x),
       # -0.5 / (sqrt(x) * x), MXNet's form: it keeps the sign of zero (rsqrt'(-0) = -inf)
       _g(lambda F, x, y, g: F.elemwise_mul(g, F._rdiv_scalar(F.elemwise_mul(F.sqrt(x), x), scalar=-0.5))),
       "(1.0 / sqrt({0}))", lo=0.2, hi=3.0)
_unary("square", np.square, _g(lambda F, x, y, g: F.elemwise_mul(g, F._mul_scalar(x, scalar=2.0))),
       "({0} * {0})")
_unary("abs", np.abs, _g(lambda F, x, y, g: F.elemwise_mul(g, F.sign(x))), "abs({0})")
_unary("sign", _sign_np, _g(lambda F, x, y, g: F.zeros_like(x)), "sign({0})")
_unary("sin", np.sin, _g(lambda F, x, y, g: F.elemwise_mul(g, F.cos(x))), "sin({0})")
_unary("cos", np.cos, _g(lambda F, x, y, g: F.elemwise_mul(g, F.negative(F.sin(x)))), "cos({0})")
_unary("tan", np.tan, _g(lambda F, x, y, g: F.elemwise_mul(g, F._plus_scalar(F.square(y), scalar=1.0))),
       "tan({0})", lo=-1.0, hi=1.0)
_unary("tanh", np.tanh, _g(lambda F, x, y, g: F.elemwise_mul(g, F._rminus_scalar(F.square(y), scalar=1.0))),
       "tanh({0})")
_unary("sigmoid", lambda x: 1.0 / (1.0 + np.exp(-x)),
       _g(lambda F, x, y, g: F.elemwise_mul(g, F.elemwise_mul(y, F._rminus_scalar(y, scalar=1.0)))),
       "sigmoid({0})")
_unary("relu", lambda x: np.maximum(x, 0), _g(lambda F, x, y, g: F._backward_relu(g, y)),
       "relu({0})")


def _relu_slope(F, x):
    """d relu / dx as MXNet's relu_grad computes it: 1 for x > 0, 0 for x <= 0, nan for nan."""
    return F._backward_relu(F.ones_like(x), x)


_unary("softsign", lambda x: x / (1.0 + np.abs(x)),
       _g(lambda F, x, y, g: F.elemwise_div(g, F.square(F._plus_scalar(F.abs(x), scalar=1.0)))),
       "({0} / (1.0 + abs({0})))")
_unary("log1p", np.log1p, _g(lambda F, x, y, g: F.elemwise_div(g, F._plus_scalar(x, scalar=1.0))),
       "log1p({0})", lo=-0.5, hi=2.0)
_unary("expm1", np.expm1, _g(lambda F, x, y, g: F.elemwise_mul(g, F.exp(x))), "expm1({0})")
_unary("reciprocal", lambda x: 1.0 / x,
       _g(lambda F, x, y, g: F.negative(F.elemwise_mul(g, F.square(y)))), "(1.0 / {0})", lo=0.3, hi=3.0)
_unary("negative", np.negative, _g(lambda F, x, y, g: F.negative(g)), "(-{0})")
_unary("floor", np.floor, _g(lambda F, x, y, g: F.zeros_like(x)), "floor({0})")
_unary("ceil", np.ceil, _g(lambda F, x, y, g: F.zeros_like(x)), "ceil({0})")
_unary("round", _round_np, _g(lambda F, x, y, g: F.zeros_like(x)), "round({0})",
       doc="Round to the nearest integer, halves away from zero (0.5 -> 1, -2.5 -> -3).")
_unary("rint", _rint_np, _g(lambda F, x, y, g: F.zeros_like(x)), "K.rint({0})",
       doc="Round to the nearest integer, halves towards -inf (1.5 -> 1, -1.5 -> -2), as MXNet.")
_unary("fix", np.trunc, _g(lambda F, x, y, g: F.zeros_like(x)), "K.trunc({0})",
       doc="Round towards zero.")
_unary("trunc", np.trunc, _g(lambda F, x, y, g: F.zeros_like(x)), "K.trunc({0})",
       doc="Round towards zero (the integer part).")
_unary("log2", np.log2, _g(lambda F, x, y, g: F.elemwise_div(g, F._mul_scalar(x, scalar=float(np.log(2.0))))),
       "log2({0})", lo=0.2, hi=3.0)
_unary("log10", np.log10, _g(lambda F, x, y, g: F.elemwise_div(g, F._mul_scalar(x, scalar=float(np.log(10.0))))),
       "log10({0})", lo=0.2, hi=3.0)


# ---------------------------------------------------------------------------------------
# binary ops: broadcast_* (NDArray operators) and elemwise_* (Symbol operators)
# ---------------------------------------------------------------------------------------
def _bin_samples(broadcast, lo=-2.0, hi=2.0):
    def samples(rng):
        s = [Sample([_rand(rng, (2, 3), lo, hi), _rand(rng, (2, 3), lo, hi)])]
        if broadcast:
            s.append(Sample([_rand(rng, (2, 3), lo, hi), _rand(rng, (1, 3), lo, hi)]))
            s.append(Sample([_rand(rng, (2, 1, 3), lo, hi), _rand(rng, (4, 1), lo, hi)]))
        return s
    return samples


def _binary(name, fwd, grad, lowering, broadcast, lo=-2.0, hi=2.0, **kw):
    def forward(attrs, ins, ctx, _f=fwd):
        a = ins[0]
        return [_keep(quiet_call(_f, a, ins[1]), a)]

    infer = broadcast_infer(name) if broadcast else elemwise_infer(name, ["lhs", "rhs"])
    return _self_quiet(register(name, inputs=("lhs", "rhs"), infer_shape=infer, forward=forward,
                    gradient=grad, lowering=lowering, samples=_bin_samples(broadcast, lo, hi),
                    eager_infer=not broadcast, **kw))


def _bg(fa, fb, broadcast):
    """Gradient of a binary op from ``fa(F, a, b, y, g)`` / ``fb(...)`` computed at the output
    shape; broadcast ops reduce each back to its operand's shape."""
    def grad(F, attrs, ins, outs, og, ctx):
        a, b = ins
        y, g = outs[0], og[0]
        ga = fa(F, a, b, y, g) if fa is not None and grad_needed(ctx, 0) else None
        gb = fb(F, a, b, y, g) if fb is not None and grad_needed(ctx, 1) else None
        if broadcast:
            ga = None if ga is None else F._reduce_sum_like(ga, a)
            gb = None if gb is None else F._reduce_sum_like(gb, b)
        return [ga, gb]
    return grad


def _mul(F, u, v, broadcast):
    return F.broadcast_mul(u, v) if broadcast else F.elemwise_mul(u, v)


def _div(F, u, v, broadcast):
    return F.broadcast_div(u, v) if broadcast else F.elemwise_div(u, v)


def _zeros(F, a, b, y, g):
    return F.zeros_like(g)


def _backward_relu_np(g, y):
    # g * relu_grad(y), relu_grad(y) = y for nan (MXNet passes nan through), else (y > 0)
    return g * np.where(y != y, y, (y > 0).astype(y.dtype))


# MXNet's name for relu's gradient (ograd, relu's output); one loop op in compiled code
# instead of the comparison + nan-passing arithmetic it replaces
_binary("_backward_relu", _backward_relu_np,
        _bg(lambda F, a, b, y, g: F._backward_relu(g, b), _zeros, False),
        "({0} * ({1} if {1} != {1} else (1.0 if {1} > 0.0 else 0.0)))", False)


def _mod_np(a, b):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, np.zeros_like(a), np.mod(a, np.where(b == 0, 1, b)))


def _pow_np(a, b):
    """C's pow (MXNet's, and the compiled path's): NumPy computes x ** 0.5 as sqrt(x), which
    gives sqrt(-inf) = nan and sqrt(-0) = -0 where pow gives +inf and +0."""
    r = np.power(a, b)
    half = b == 0.5
    if half is True or (half is not False and np.any(half)):
        r = np.asarray(r)
        fix = half & ((a == -np.inf) | (a == 0))
        if np.any(fix):
            r = np.where(fix, np.where(a == 0, 0.0, np.inf).astype(r.dtype), r)
    return r


def _define_binaries(prefix, broadcast):
    B = broadcast
    P = prefix
    _binary(P + "add", np.add, _bg(lambda F, a, b, y, g: g, lambda F, a, b, y, g: g, B),
            "({0} + {1})", B)
    _binary(P + "sub", np.subtract, _bg(lambda F, a, b, y, g: g, lambda F, a, b, y, g: F.negative(g), B),
            "({0} - {1})", B)
    _binary(P + "mul", np.multiply,
            _bg(lambda F, a, b, y, g: _mul(F, g, b, B), lambda F, a, b, y, g: _mul(F, g, a, B), B),
            "({0} * {1})", B)
    _binary(P + "div", np.divide,
            _bg(lambda F, a, b, y, g: _div(F, g, b, B),
                # MXNet's -a / b^2 (not -y / b): b^2 overflows where MXNet's does
                lambda F, a, b, y, g: F.negative(_div(F, _mul(F, g, a, B), _mul(F, b, b, B), B)), B),
            "({0} / {1})", B, lo=0.5, hi=2.0)


_define_binaries("broadcast_", True)
_define_binaries("elemwise_", False)

_binary("broadcast_mod", _mod_np,
        _bg(lambda F, a, b, y, g: g,
            lambda F, a, b, y, g: F.broadcast_mul(g, F.negative(F.floor(F.broadcast_div(a, b)))), True),
        "mod({0}, {1})", True, lo=0.5, hi=3.0, grad_check=False)
_binary("broadcast_power", _pow_np,
        _bg(lambda F, a, b, y, g: F.broadcast_mul(g, F.broadcast_mul(b, F.broadcast_power(a, F._minus_scalar(b, scalar=1.0)))),
            lambda F, a, b, y, g: F.broadcast_mul(g, F.broadcast_mul(y, F.log(a))), True),
        "({0} ** {1})", True, lo=0.5, hi=2.0)
_binary("_power", _pow_np,
        _bg(lambda F, a, b, y, g: F.elemwise_mul(g, F.elemwise_mul(b, F._power(a, F._minus_scalar(b, scalar=1.0)))),
            lambda F, a, b, y, g: F.elemwise_mul(g, F.elemwise_mul(y, F.log(a))), False),
        "({0} ** {1})", False, lo=0.5, hi=2.0, hint="_power")
_binary("broadcast_maximum", np.maximum,
        _bg(lambda F, a, b, y, g: F.broadcast_mul(g, F.broadcast_greater_equal(a, b)),
            lambda F, a, b, y, g: F.broadcast_mul(g, F.broadcast_lesser(a, b)), True),
        "K.maximum({0}, {1})", True)
_binary("broadcast_minimum", np.minimum,
        _bg(lambda F, a, b, y, g: F.broadcast_mul(g, F.broadcast_lesser_equal(a, b)),
            lambda F, a, b, y, g: F.broadcast_mul(g, F.broadcast_greater(a, b)), True),
        "K.minimum({0}, {1})", True)
_binary("_maximum", np.maximum,
        _bg(lambda F, a, b, y, g: F.elemwise_mul(g, F._greater_equal(a, b)),
            lambda F, a, b, y, g: F.elemwise_mul(g, F._lesser(a, b)), False),
        "K.maximum({0}, {1})", False, hint="_maximum")
_binary("_minimum", np.minimum,
        _bg(lambda F, a, b, y, g: F.elemwise_mul(g, F._lesser_equal(a, b)),
            lambda F, a, b, y, g: F.elemwise_mul(g, F._greater(a, b)), False),
        "K.minimum({0}, {1})", False, hint="_minimum")
_binary("_mod", _mod_np,
        _bg(lambda F, a, b, y, g: g,
            lambda F, a, b, y, g: F.elemwise_mul(g, F.negative(F.floor(F.elemwise_div(a, b)))), False),
        "mod({0}, {1})", False, lo=0.5, hi=3.0, grad_check=False, hint="_mod")

_CMP = {"equal": (np.equal, "=="), "not_equal": (np.not_equal, "!="), "greater": (np.greater, ">"),
        "greater_equal": (np.greater_equal, ">="), "lesser": (np.less, "<"),
        "lesser_equal": (np.less_equal, "<=")}
for _n, (_f, _o) in _CMP.items():
    _binary("broadcast_" + _n, _f, _bg(_zeros, _zeros, True), "(1.0 if {0} %s {1} else 0.0)" % _o, True,
            grad_check=False)
    _binary("_" + _n, _f, _bg(_zeros, _zeros, False), "(1.0 if {0} %s {1} else 0.0)" % _o, False,
            grad_check=False, hint="_" + _n)


# ---------------------------------------------------------------------------------------
# scalar ops
# ---------------------------------------------------------------------------------------
def _scalar(name, fwd, grad, lowering, hint=None, lo=-2.0, hi=2.0, scalars=(1.5, -0.5), **kw):
    def forward(attrs, ins, ctx, _f=fwd):
        x = ins[0]
        return [_keep(quiet_call(_f, x, attrs["scalar"]), x)]

    def samples(rng, _lo=lo, _hi=hi):
        return [Sample([_rand(rng, (2, 3), _lo, _hi)], {"scalar": scalars[0]}),
                Sample([_rand(rng, (3,), _lo, _hi)], {"scalar": scalars[1]})]

    def sgrad(F, attrs, ins, outs, og, ctx, _g=grad):
        return [_g(F, ins[0], attrs["scalar"], outs[0], og[0])]

    return _self_quiet(register(name, inputs=("data",), attrs={"scalar": Attr("float", 1.0)},
                    infer_shape=unary_infer(name), forward=forward, gradient=sgrad,
                    lowering=lowering, samples=samples, eager_infer=False,
                    hint=hint or name.replace("_scalar", "scalar"), **kw))


_scalar("_plus_scalar", lambda x, s: x + s, lambda F, x, s, y, g: g, "({0} + {s})")
_scalar("_minus_scalar", lambda x, s: x - s, lambda F, x, s, y, g: g, "({0} - {s})")
_scalar("_rminus_scalar", lambda x, s: s - x, lambda F, x, s, y, g: F.negative(g), "({s} - {0})")
_scalar("_mul_scalar", lambda x, s: x * s, lambda F, x, s, y, g: F._mul_scalar(g, scalar=s), "({0} * {s})")
_scalar("_div_scalar", lambda x, s: x / s, lambda F, x, s, y, g: F._div_scalar(g, scalar=s), "({0} / {s})")
_scalar("_rdiv_scalar", lambda x, s: s / x,
        lambda F, x, s, y, g: F.negative(F.elemwise_div(F.elemwise_mul(g, y), x)), "({s} / {0})",
        lo=0.5, hi=2.0)
_scalar("_power_scalar", lambda x, s: _pow_np(x, s),
        lambda F, x, s, y, g: F.elemwise_mul(g, F._mul_scalar(F._power_scalar(x, scalar=s - 1.0), scalar=s)),
        "({0} ** {s})", lo=0.5, hi=2.0)
def _log_base(s):
    """log of _rpower_scalar's base: -inf for 0 (MXNet's log(0)), nan for a negative base."""
    return math.log(s) if s > 0 else (-math.inf if s == 0 else math.nan)


_scalar("_rpower_scalar", lambda x, s: _pow_np(x.dtype.type(s), x),
        lambda F, x, s, y, g: F.elemwise_mul(g, F._mul_scalar(y, scalar=_log_base(s))),
        "({s} ** {0})", hint="_rpower_scalar", scalars=(1.5, 0.5))  # a negative base is NaN
_scalar("_mod_scalar", lambda x, s: _mod_np(x, np.asarray(s, x.dtype)), lambda F, x, s, y, g: g, "mod({0}, {s})",
        grad_check=False)
_scalar("_rmod_scalar", lambda x, s: _mod_np(np.asarray(s, x.dtype), x),
        lambda F, x, s, y, g: F.elemwise_mul(g, F.negative(F.floor(F._rdiv_scalar(x, scalar=s)))),
        "mod({s}, {0})", grad_check=False, lo=0.5, hi=2.0)
_scalar("_maximum_scalar", lambda x, s: np.maximum(x, s),
        lambda F, x, s, y, g: F.elemwise_mul(g, F._greater_equal_scalar(x, scalar=s)), "K.maximum({0}, {s})")
_scalar("_minimum_scalar", lambda x, s: np.minimum(x, s),
        lambda F, x, s, y, g: F.elemwise_mul(g, F._lesser_equal_scalar(x, scalar=s)), "K.minimum({0}, {s})")
for _n, (_f, _o) in _CMP.items():
    _scalar("_%s_scalar" % _n, (lambda f: lambda x, s: f(x, s))(_f),
            lambda F, x, s, y, g: F.zeros_like(g), "(1.0 if {0} %s {s} else 0.0)" % _o,
            hint="_%s_scalar" % _n, grad_check=False)
for _n, _f, _t in (("and", np.logical_and, "(1.0 if ({0} != 0) and ({s} != 0) else 0.0)"),
                   ("or", np.logical_or, "(1.0 if ({0} != 0) or ({s} != 0) else 0.0)"),
                   ("xor", np.logical_xor, "(1.0 if ({0} != 0) != ({s} != 0) else 0.0)")):
    # 1/0 in the input dtype, no gradient (what mx.nd.logical_and(x, scalar) calls)
    _scalar("_logical_%s_scalar" % _n, (lambda f: lambda x, s: f(x != 0, s != 0))(_f),
            lambda F, x, s, y, g: F.zeros_like(g), _t, hint="_logical_%s_scalar" % _n,
            grad_check=False)


# ---------------------------------------------------------------------------------------
# n-ary and identity-like ops
# ---------------------------------------------------------------------------------------
def _add_n_infer(attrs, ins, outs=None):
    s = same_shape("add_n", list(ins) + list(outs or [])[:1])
    return [s] * len(ins), [s]


def _add_n_fwd(attrs, ins, ctx):
    out = ins[0].copy()
    for a in ins[1:]:
        out += a
    return [out]


register("add_n", inputs=(), variadic="num_args", attrs={"num_args": Attr("int")},
         infer_shape=_add_n_infer, forward=_add_n_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [og[0]] * len(ins),
         aliases=("ElementWiseSum",), lowering=Elementwise.nary_sum(),
         samples=lambda rng: [Sample([_rand(rng), _rand(rng), _rand(rng)], {"num_args": 3})])


def _identity_infer(attrs, ins, outs=None):
    s = same_shape("identity", [ins[0]] + list(outs or [])[:1], ["data", "output"])
    return [s], [s]


register("BlockGrad", inputs=("data",), infer_shape=_identity_infer,
         forward=lambda attrs, ins, ctx: [ins[0].copy()],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.zeros_like(og[0])],
         aliases=("stop_gradient",), lowering="{0}", grad_check=False,
         samples=lambda rng: [Sample([_rand(rng)])])

register("_copyto", inputs=("data",), infer_shape=_identity_infer,
         forward=lambda attrs, ins, ctx: [ins[0].copy()],
         gradient=lambda F, attrs, ins, outs, og, ctx: [og[0]],
         lowering="{0}", samples=lambda rng: [Sample([_rand(rng)])])

# MXNet 1.9.1 serialises identity as `_copy`; it has no op `_identity` and refuses to load it.
register("_copy", inputs=("data",), infer_shape=_identity_infer,
         forward=lambda attrs, ins, ctx: [ins[0].copy()],
         gradient=lambda F, attrs, ins, outs, og, ctx: [og[0]],
         aliases=("identity",), lowering="{0}", samples=lambda rng: [Sample([_rand(rng)])])


def _lower_cast(ctx):
    """A converting copy (float -> int truncates, as astype; float16 and bool arrays run
    eagerly, agjit.compiler.oplower CALL_DTYPES)."""
    return ["%s[...] = %s" % (ctx.outs[0], ctx.ins[0])]


_CAST_LOWERING = KernelCall(_lower_cast, any_dtype=True)


def _cast_type(attrs, ins):
    return ins, [attrs["dtype"]]


register("Cast", inputs=("data",), attrs={"dtype": Attr("dtype")}, infer_shape=_identity_infer,
         infer_type=_cast_type, forward=lambda attrs, ins, ctx: [ins[0].astype(attrs["dtype"])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._cast_like(og[0], ins[0])],
         aliases=("cast",), lowering=_CAST_LOWERING,
         samples=lambda rng: [Sample([_rand(rng)], {"dtype": "float64"})])


def _cast_like_type(attrs, ins):
    return ins, [ins[1]]


register("_cast_like", inputs=("data", "like"), infer_shape=lambda a, ins: (ins, [ins[0]]),
         infer_type=_cast_like_type,
         forward=lambda attrs, ins, ctx: [ins[0].astype(ins[1].dtype)],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._cast_like(og[0], ins[0]), None],
         lowering=_CAST_LOWERING, grad_check=False,
         samples=lambda rng: [Sample([_rand(rng), _rand(rng)])])


def _const_like(fill):
    def forward(attrs, ins, ctx):
        return [np.full_like(ins[0], fill)]
    return forward


register("zeros_like", inputs=("data",), infer_shape=_identity_infer, forward=_const_like(0),
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.zeros_like(og[0])], lowering="0.0",
         grad_check=False, samples=lambda rng: [Sample([_rand(rng)])])
register("ones_like", inputs=("data",), infer_shape=_identity_infer, forward=_const_like(1),
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.zeros_like(og[0])], lowering="1.0",
         grad_check=False, samples=lambda rng: [Sample([_rand(rng)])])


# ---------------------------------------------------------------------------------------
# clip / where / Activation / LeakyReLU
# ---------------------------------------------------------------------------------------
def _clip_fwd(attrs, ins, ctx):
    return [_keep(quiet_call(np.clip, ins[0], attrs["a_min"], attrs["a_max"]), ins[0])]


def _clip_grad(F, attrs, ins, outs, og, ctx):
    # MXNet passes the gradient unless x is outside [a_min, a_max]: nan passes it
    x = ins[0]
    out = F.elemwise_add(F._lesser_scalar(x, scalar=attrs["a_min"]),
                         F._greater_scalar(x, scalar=attrs["a_max"]))
    return [F.elemwise_mul(og[0], F._rminus_scalar(out, scalar=1.0))]


register("clip", inputs=("data",), attrs={"a_min": Attr("float"), "a_max": Attr("float")},
         infer_shape=unary_infer("clip"), forward=_clip_fwd, gradient=_clip_grad,
         lowering="K.minimum(K.maximum({0}, {a_min}), {a_max})",
         samples=lambda rng: [Sample([_rand(rng)], {"a_min": -0.5, "a_max": 0.7})])


def _where_infer(attrs, ins, outs=None):
    c, x, y = ins
    if c is None or 0 in c:    # WhereOpShape waits for the whole condition shape
        return ins, [None]
    s = same_shape("where", [x, y] + list(outs or [])[:1], ["x", "y", "output"])
    if c is not None and s is not None and tuple(c) != tuple(s) and not (len(c) == 1 and c[0] == s[0]):
        from ..base import MXNetError
        raise MXNetError("where: condition shape %s must equal x/y shape %s (or be 1-D of the "
                         "first dimension)" % (c, s))
    return [c, s, s], [s]


def _where_type(attrs, ins):
    """x and y share one dtype (MXNet refuses a mix); the condition may have any dtype."""
    from ..registry import check_uniform
    t = check_uniform("where", ["condition", "x", "y"], ins, first=1)
    return [ins[0], t, t], [t]


def _where_fwd(attrs, ins, ctx):
    c, x, y = ins
    if c.shape != x.shape:
        c = c.reshape(c.shape + (1,) * (x.ndim - c.ndim))
    return [np.where(c != 0, x, y)]


def _where_grad(F, attrs, ins, outs, og, ctx):
    c = ins[0]
    g = og[0]
    z = F.zeros_like(g)
    return [F.zeros_like(c), F.where(c, g, z), F.where(c, z, g)]


register("where", inputs=("condition", "x", "y"), infer_shape=_where_infer, forward=_where_fwd,
         gradient=_where_grad, lowering="({1} if {0} != 0 else {2})",
         infer_type=_where_type,
         samples=lambda rng: [Sample([(rng.rand(2, 3) > 0.5).astype("float64"), _rand(rng), _rand(rng)])],
         grad_check=True)


_ACT = ("relu", "sigmoid", "tanh", "softrelu", "softsign")


def _softrelu(x):
    return np.logaddexp(0, x)


def _act_fwd(attrs, ins, ctx):
    return quiet_call(_act_fwd_np, attrs, ins[0])


def _act_fwd_np(attrs, x):
    t = attrs["act_type"]
    if t == "relu":
        y = np.maximum(x, 0)
    elif t == "sigmoid":
        y = 1.0 / (1.0 + np.exp(-x))
    elif t == "tanh":
        y = np.tanh(x)
    elif t == "softrelu":
        y = _softrelu(x)
    else:
        y = x / (1.0 + np.abs(x))
    return [_keep(np.asarray(y), x)]


def _act_grad(F, attrs, ins, outs, og, ctx):
    x, y, g = ins[0], outs[0], og[0]
    t = attrs["act_type"]
    if t == "relu":
        d = _relu_slope(F, x)
    elif t == "sigmoid":
        d = F.elemwise_mul(y, F._rminus_scalar(y, scalar=1.0))
    elif t == "tanh":
        d = F._rminus_scalar(F.square(y), scalar=1.0)
    elif t == "softrelu":
        d = F.sigmoid(x)
    else:
        d = F.reciprocal(F.square(F._plus_scalar(F.abs(x), scalar=1.0)))
    return [F.elemwise_mul(g, d)]


register("Activation", inputs=("data",), attrs={"act_type": Attr("str", choices=_ACT)},
         infer_shape=unary_infer("Activation"), forward=_act_fwd, gradient=_act_grad,
         lowering={"relu": "relu({0})", "sigmoid": "sigmoid({0})", "tanh": "tanh({0})",
                   "softrelu": "softrelu({0})", "softsign": "({0} / (1.0 + abs({0})))"},
         samples=lambda rng: [Sample([_rand(rng)], {"act_type": t}) for t in _ACT])


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_LAMBDA = 1.0507009873554804934193349852946


def _leaky_inputs(attrs):
    # nd.LeakyReLU(x, gamma, act_type='prelu') maps positional inputs before the attrs are
    # parsed (attrs == {}): gamma is then an optional second input
    t = attrs.get("act_type")
    return ("data", "gamma") if t in (None, "prelu") else ("data",)


def _prelu_gamma(x, gamma):
    """gamma broadcast against x: (1,) everywhere, (C,) along axis 1, or x's own shape."""
    if gamma.shape == x.shape or gamma.size == 1:
        return gamma.reshape(gamma.shape if gamma.shape == x.shape else ())
    shape = [1] * x.ndim
    shape[1 if x.ndim > 1 else 0] = gamma.shape[0]
    return gamma.reshape(shape)


def _leaky_infer(attrs, ins):
    d = ins[0]
    if attrs["act_type"] != "prelu":
        return ins, [d] * (2 if attrs["act_type"] == "rrelu" else 1)
    if len(ins) < 2:
        from ..base import MXNetError
        raise MXNetError("LeakyReLU: act_type='prelu' needs the gamma input")
    g = ins[1]
    if d is not None and g is None:
        g = (d[1] if len(d) > 1 else d[0],)
    if d is not None and g is not None and tuple(g) != tuple(d) and len(g) == 1:
        c = d[1] if len(d) > 1 else d[0]
        if g[0] not in (1, c, 0):
            from ..base import MXNetError
            raise MXNetError("LeakyReLU: prelu gamma of shape %s does not match data %s (expected "
                             "(1,), (%d,) or the data shape)" % (tuple(g), tuple(d), c))
    return [d, g], [d]


def _leaky_slope(attrs, x, ctx):
    lo, hi = attrs["lower_bound"], attrs["upper_bound"]
    if ctx is not None and getattr(ctx, "is_train", False):
        return ctx.rng.uniform(lo, hi, size=x.shape).astype(x.dtype)
    return np.full(x.shape, (lo + hi) / 2.0, dtype=x.dtype)


def _leaky_fwd(attrs, ins, ctx):
    return quiet_call(_leaky_fwd_np, attrs, ins, ctx)


def _leaky_fwd_np(attrs, ins, ctx):
    x = ins[0]
    t = attrs["act_type"]
    s = attrs["slope"]
    if t == "leaky":
        y = np.where(x > 0, x, x * s)
    elif t == "elu":
        y = np.where(x > 0, x, s * np.expm1(x))
    elif t == "selu":
        y = _SELU_LAMBDA * np.where(x > 0, x, _SELU_ALPHA * np.expm1(x))
    elif t == "gelu":
        from scipy.special import erf
        y = 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))
    elif t == "prelu":
        y = np.where(x > 0, x, x * _prelu_gamma(x, ins[1]))
    else:   # rrelu
        m = _leaky_slope(attrs, x, ctx)
        return [_keep(np.where(x > 0, x, x * m), x), m]
    return [_keep(y, x)]


def _leaky_grad(F, attrs, ins, outs, og, ctx):
    x, y, g = ins[0], outs[0], og[0]
    s = attrs["slope"]
    t = attrs["act_type"]
    # nan takes the x <= 0 branch, as in MXNet's own kernels (float64, or the build without
    # MKLDNN); the float32 MKLDNN kernels of leaky and elu give nan the slope 1 instead
    pos = F._greater_scalar(x, scalar=0.0)
    neg = F._rminus_scalar(pos, scalar=1.0)
    if t == "leaky":
        d = F.elemwise_add(pos, F._mul_scalar(neg, scalar=s))
    elif t == "elu":
        # where(), not neg * (y + s): y = inf for x = inf
        d = F.elemwise_add(pos, F.where(neg, F._plus_scalar(y, scalar=s), F.zeros_like(y)))
    elif t == "selu":
        # MXNet 1.9.1 differentiates selu from its output as lambda * (y + alpha) for
        # x <= 0, not the true derivative y + lambda*alpha (equal only at x = 0); its numbers
        # are the spec, so selu has no finite-difference sample
        d = F.elemwise_add(F._mul_scalar(pos, scalar=_SELU_LAMBDA), F.where(
            neg, F._mul_scalar(F._plus_scalar(y, scalar=_SELU_ALPHA), scalar=_SELU_LAMBDA),
            F.zeros_like(y)))
    elif t == "gelu":
        # Phi(x) + x * phi(x)
        phi = F._mul_scalar(F.exp(F._mul_scalar(F.square(x), scalar=-0.5)),
                            scalar=float(1.0 / np.sqrt(2.0 * np.pi)))
        cdf = F._mul_scalar(F._plus_scalar(F.erf(F._mul_scalar(x, scalar=float(1.0 / np.sqrt(2.0)))),
                                           scalar=1.0), scalar=0.5)
        d = F.elemwise_add(cdf, F.elemwise_mul(x, phi))
    elif t == "prelu":
        gamma = ins[1]
        gneg = F.elemwise_mul(g, neg)
        gx = F.elemwise_add(F.elemwise_mul(g, pos), F.elemwise_mul(gneg, F._prelu_bcast(gamma, x)))
        return [gx, F._prelu_reduce(F.elemwise_mul(gneg, x), gamma)]
    else:   # rrelu: the slope of the forward (its hidden mask output)
        d = F.elemwise_add(pos, F.elemwise_mul(neg, outs[1]))
    return [F.elemwise_mul(g, d)]


def _prelu_bcast_np(gamma, like):
    return np.ascontiguousarray(np.broadcast_to(_prelu_gamma(like, gamma), like.shape))


def _prelu_reduce_np(data, gamma):
    if gamma.shape == data.shape:
        return data.copy()
    if gamma.size == 1:
        return np.asarray(data.sum(), dtype=data.dtype).reshape(gamma.shape)
    ax = 1 if data.ndim > 1 else 0
    return np.ascontiguousarray(data.sum(axis=tuple(i for i in range(data.ndim) if i != ax)))


def _prelu_samples(rng, swap):
    out = []
    for xs, gs in (((2, 3, 2), (3,)), ((2, 3), (1,)), ((4,), (4,)), ((2, 3), (2, 3))):
        a, b = rng.uniform(0.1, 0.5, size=gs), _rand(rng, xs)
        out.append(Sample([b, a] if swap else [a, b]))
    return out


def _prelu_view(ctx, lines, x, nd, gamma):
    """(P, C, Q) names of ``x`` viewed around prelu's gamma axis, decided at run time as
    ``_prelu_gamma`` does: gamma of x's size elementwise, of size 1 everywhere, else (C,)
    along axis 1 (axis 0 of 1-D data); returns (gamma flat, P, C, Q)."""
    g, P, C, Q = ctx.tmp("g"), ctx.tmp("p"), ctx.tmp("c"), ctx.tmp("q")
    lines += ["%s = %s.reshape(%s.size)" % (g, gamma, gamma),
              "%s = %s.size" % (C, g),
              "if %s == %s.size:" % (C, x),
              "    %s = 1" % P, "    %s = 1" % Q,
              "elif %s == 1:" % C,
              "    %s = 1" % P, "    %s = %s.size" % (Q, x),
              "else:",
              "    %s = %s" % (P, "%s.shape[0]" % x if nd > 1 else "1"),
              "    %s = %s.size // max(%s * %s, 1)" % (Q, x, P, C)]
    return g, P, C, Q


def _prelu_loops(ctx, P, C, Q, body):
    p, c, q = ctx.tmp("i"), ctx.tmp("j"), ctx.tmp("k")
    return (["for %s in range(%s):" % (p, P), "    for %s in range(%s):" % (c, C),
             "        for %s in range(%s):" % (q, Q)]
            + ["            " + ln for ln in body(p, c, q)])


def _lower_prelu(ctx):
    """LeakyReLU(act_type='prelu'): x if x > 0 else x * gamma (broadcast as eager)."""
    nd = ctx.in_ndim[0]
    if nd == 0 or len(ctx.ins) < 2:
        return None
    x, out = ctx.ins[0], ctx.outs[0]
    lines = []
    g, P, C, Q = _prelu_view(ctx, lines, x, nd, ctx.ins[1])
    x3, o3, t = ctx.tmp("x"), ctx.tmp("o"), ctx.tmp("t")
    lines += ["%s = %s.reshape((%s, %s, %s))" % (x3, x, P, C, Q),
              "%s = %s.reshape((%s, %s, %s))" % (o3, out, P, C, Q)]
    return lines + _prelu_loops(ctx, P, C, Q, lambda i, j, k: [
        "%s = %s[%s, %s, %s]" % (t, x3, i, j, k),
        "%s[%s, %s, %s] = %s if %s > 0 else %s * %s[%s]" % (o3, i, j, k, t, t, t, g, j)])


def _lower_prelu_bcast(ctx):
    nd = ctx.out_ndim[0]
    if nd == 0:
        return None
    like, out = ctx.ins[1], ctx.outs[0]
    lines = []
    g, P, C, Q = _prelu_view(ctx, lines, like, nd, ctx.ins[0])
    o3 = ctx.tmp("o")
    lines.append("%s = %s.reshape((%s, %s, %s))" % (o3, out, P, C, Q))
    return lines + _prelu_loops(ctx, P, C, Q, lambda i, j, k: [
        "%s[%s, %s, %s] = %s[%s]" % (o3, i, j, k, g, j)])


def _lower_prelu_reduce(ctx):
    nd = ctx.in_ndim[0]
    if nd == 0:
        return None
    data, out = ctx.ins[0], ctx.outs[0]
    lines = []
    g, P, C, Q = _prelu_view(ctx, lines, data, nd, ctx.ins[1])
    d3, o1, c = ctx.tmp("d"), ctx.tmp("o"), ctx.tmp("c")
    lines += ["%s = %s.reshape((%s, %s, %s))" % (d3, data, P, C, Q),
              "%s = %s.reshape(%s.size)" % (o1, out, out),
              "for %s in range(%s):" % (c, C),
              "    %s[%s] = 0" % (o1, c)]
    return lines + _prelu_loops(ctx, P, C, Q, lambda i, j, k: [
        "%s[%s] += %s[%s, %s, %s]" % (o1, j, d3, i, j, k)])


register("_prelu_bcast", inputs=("gamma", "like"),
         infer_shape=lambda attrs, ins: (ins, [ins[1]]),
         infer_type=lambda attrs, ins: (ins, [ins[0] or ins[1]]),
         forward=lambda attrs, ins, ctx: [_prelu_bcast_np(ins[0], ins[1])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._prelu_reduce(og[0], ins[0]), None],
         lowering=_lower_prelu_bcast, samples=lambda rng: _prelu_samples(rng, False),
         doc="prelu's gamma broadcast to ``like`` ((1,): everywhere, (C,): along axis 1, or "
             "like's own shape).")
register("_prelu_reduce", inputs=("data", "gamma"),
         infer_shape=lambda attrs, ins: (ins, [ins[1]]),
         infer_type=lambda attrs, ins: (ins, [ins[0] or ins[1]]),
         forward=lambda attrs, ins, ctx: [_prelu_reduce_np(ins[0], ins[1])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._prelu_bcast(og[0], ins[0]), None],
         lowering=_lower_prelu_reduce, samples=lambda rng: _prelu_samples(rng, True),
         doc="The adjoint of _prelu_bcast: ``data`` summed down to gamma's shape.")


def _leaky_samples(rng):
    return [Sample([_rand(rng)], {"slope": 0.1}),
            Sample([_rand(rng)], {"act_type": "elu", "slope": 0.3}),
            Sample([_rand(rng)], {"act_type": "gelu"}),
            Sample([_rand(rng, (2, 3, 2)), rng.uniform(0.1, 0.5, size=(3,))], {"act_type": "prelu"}),
            Sample([_rand(rng, (2, 3)), rng.uniform(0.1, 0.5, size=(1,))], {"act_type": "prelu"}),
            Sample([_rand(rng, (4,)), rng.uniform(0.1, 0.5, size=(1,))], {"act_type": "prelu"})]


register("LeakyReLU", inputs=_leaky_inputs, optional_inputs=("gamma",),
         attrs={"act_type": Attr("str", "leaky", choices=("leaky", "elu", "prelu", "rrelu", "selu", "gelu")),
                "slope": Attr("float", 0.25), "lower_bound": Attr("float", 0.125),
                "upper_bound": Attr("float", 0.334)},
         num_outputs=lambda attrs: 2 if attrs["act_type"] == "rrelu" else 1, num_visible=1,
         infer_shape=_leaky_infer, forward=_leaky_fwd, gradient=_leaky_grad,
         lowering={"leaky": "({0} if {0} > 0 else {0} * {slope})",
                   "elu": "({0} if {0} > 0 else {slope} * expm1({0}))",
                   "selu": "(%r * {0} if {0} > 0 else %r * expm1({0}))"
                           % (_SELU_LAMBDA, _SELU_LAMBDA * _SELU_ALPHA),
                   # the eager kernel's order: 0.5 * x * (1 + erf(x / sqrt(2)))
                   "gelu": "(0.5 * {0} * (1.0 + math.erf({0} / %r)))" % math.sqrt(2.0),
                   "prelu": KernelCall(_lower_prelu)},
         samples=_leaky_samples,
         doc="Leaky rectifiers: leaky (slope), elu (slope * (e^x - 1) for x <= 0), selu "
             "(MXNet's gradient lambda * (y + alpha) for x <= 0), gelu (erf form), prelu "
             "(learned gamma of shape (1,), (C,) on axis 1, or data's shape), rrelu (random "
             "slope in [lower_bound, upper_bound] when training, their mean otherwise).  At "
             "x = 0 the derivative is the x <= 0 branch's.")


# ---------------------------------------------------------------------------------------
# broadcasting helpers used by gradients (reduce a gradient back to an operand's shape)
# ---------------------------------------------------------------------------------------
def _sum_to(g, shape):
    shape = tuple(shape)
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape)
                                      if d == 1 and g.shape[lead + i] != 1)
    return np.sum(g, axis=axes, keepdims=False).reshape(shape) if axes else g.reshape(shape)


def _rsl_infer(attrs, ins):
    d, like = ins
    if d is not None and like is not None and all(d) and all(like):
        from ._common import broadcast_shapes
        from ..base import MXNetError
        if len(like) > len(d) or broadcast_shapes("_reduce_sum_like", like, d) != tuple(d):
            raise MXNetError("_reduce_sum_like: data %s is not a broadcast of like %s"
                             % (tuple(d), tuple(like)))
    return ins, [ins[1]]


def _rsl_type(attrs, ins):
    return ins, [ins[0]]


def _lower_reduce_sum_like(ctx):
    """Zero the output, then accumulate every element of ``data`` into the output index
    with 0 on the dimensions ``like`` broadcasts (decided from the traced shapes)."""
    from ._lowering import loop_nest, index_expr
    gs, ls = ctx.in_shapes
    nd, nl = len(gs), len(ls)
    if tuple(gs) == tuple(ls):
        return "{0}"                    # nothing to reduce: fuses as a copy
    if nl > nd:
        return None
    g, out = ctx.ins[0], ctx.outs[0]
    f, k = ctx.tmp("f"), ctx.tmp("k")
    lines = ["%s = %s.reshape(-1)" % (f, out),
             "for %s in range(%s.size):" % (k, f),
             "    %s[%s] = 0" % (f, k)]
    loops, idx, ind = loop_nest(g, nd, None, ctx)
    lines += loops
    dst = ["0" if ls[j] == 1 and gs[nd - nl + j] != 1 else idx[nd - nl + j] for j in range(nl)]
    lines.append("%s%s += %s" % (ind, index_expr(out, dst), index_expr(g, idx)))
    return lines


register("_reduce_sum_like", inputs=("data", "like"), infer_shape=_rsl_infer, infer_type=_rsl_type,
         forward=lambda attrs, ins, ctx: [np.ascontiguousarray(_sum_to(ins[0], ins[1].shape)).astype(ins[0].dtype, copy=False)],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.broadcast_like(og[0], ins[0]), None],
         lowering=_lower_reduce_sum_like,
         doc="Sum ``data`` over the axes where ``like`` is broadcast (gradient of broadcasting).",
         samples=lambda rng: [Sample([_rand(rng, (2, 3)), _rand(rng, (1, 3))]),
                              Sample([_rand(rng, (4, 2, 3)), _rand(rng, (2, 1))])])


def _bl_infer(attrs, ins):
    from ._common import broadcast_shapes
    a, b = ins
    if a is not None and b is not None:
        broadcast_shapes("broadcast_like", a, b)
    return ins, [b]


register("broadcast_like", inputs=("lhs", "rhs"), infer_shape=_bl_infer, infer_type=_rsl_type,
         forward=lambda attrs, ins, ctx: [np.ascontiguousarray(np.broadcast_to(ins[0], ins[1].shape))],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._reduce_sum_like(og[0], ins[0]), None],
         lowering="{0}",
         samples=lambda rng: [Sample([_rand(rng, (1, 3)), _rand(rng, (2, 3))])])


# kernels that call quiet_call themselves (see _self_quiet)
for _name in ("clip", "Activation", "LeakyReLU"):
    _self_quiet(_get_op(_name))
