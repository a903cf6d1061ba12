"""Small ``_contrib_*`` operators MXNet 1.9.1 programs use: index_copy, index_array,
quadratic (the custom-operator tutorial's op), gradientmultiplier, round_ste / sign_ste
(straight-through estimators) and allclose.  Values checked against real MXNet in
tests/test_programs_s7.py."""
import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import unary_infer


def _rand(rng, shape=(2, 3)):
    return rng.uniform(-1.0, 1.0, shape)


# -- index_copy(old_tensor, index_vector, new_tensor): old with rows index[i] = new[i] ---------
def _ic_infer(attrs, ins):
    old, idx, new = ins
    if old is not None and new is not None:
        if len(old) != len(new) or tuple(old[1:]) != tuple(new[1:]):
            raise MXNetError("_contrib_index_copy: new_tensor shape %s must be old_tensor shape "
                             "%s but for the first axis" % (tuple(new), tuple(old)))
    if idx is not None and new is not None and (len(idx) != 1 or idx[0] != new[0]):
        raise MXNetError("_contrib_index_copy: index_vector must be 1-D with new_tensor's "
                         "first dimension (%d), got shape %s" % (new[0], tuple(idx)))
    return ins, [old]


def _ic_fwd(attrs, ins, ctx):
    old, idx, new = ins
    out = old.copy()
    out[idx.astype(np.int64)] = new
    return [out]


def _ic_types(attrs, ins):
    return ins, [ins[0]]


register("_contrib_index_copy", inputs=("old_tensor", "index_vector", "new_tensor"),
         infer_shape=_ic_infer, infer_type=_ic_types, forward=_ic_fwd, type_check_uniform=False,
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._contrib_index_copy(og[0], ins[1], F.zeros_like(ins[2])), None,
             F.take(og[0], ins[1], axis=0)],
         lowerable=False, second_order=False, grad_check=False,
         doc="old_tensor with its rows index_vector[i] replaced by new_tensor[i].",
         samples=lambda rng: [Sample([_rand(rng, (4, 2)), np.array([3.0, 0.0]),
                                      _rand(rng, (2, 2))])])


# -- index_array: the coordinates of every element (int64, last axis = the axes asked) ------
def _ia_axes(attrs, nd):
    axes = attrs["axes"]
    if axes is None:
        return list(range(nd))
    out = []
    for a in axes:
        if not -nd <= a < nd:
            raise MXNetError("_contrib_index_array: axis %d out of range for a %d-D input"
                             % (a, nd))
        out.append(a % nd)
    return out


def _ia_infer(attrs, ins):
    d = ins[0]
    if d is None:
        return ins, [None]
    return ins, [tuple(d) + (len(_ia_axes(attrs, len(d))),)]


def _ia_fwd(attrs, ins, ctx):
    x = ins[0]
    grids = np.indices(x.shape, dtype=np.int64)
    axes = _ia_axes(attrs, x.ndim)
    return [np.stack([grids[a] for a in axes], axis=-1) if axes else
            np.zeros(x.shape + (0,), np.int64)]


register("_contrib_index_array", inputs=("data",), attrs={"axes": Attr("tuple_or_none", None)},
         infer_shape=_ia_infer, infer_type=lambda attrs, ins: (ins, ["int64"]),
         forward=_ia_fwd, differentiable=False, lowerable=False,
         doc="For each element of data its index along ``axes`` (default all), as int64.",
         samples=lambda rng: [Sample([_rand(rng, (2, 3))]),
                              Sample([_rand(rng, (2, 3, 2))], {"axes": (2, 0)})])


# -- quadratic: a x^2 + b x + c ---------------------------------------------------------------
_QUAD = {"a": Attr("float", 0.0), "b": Attr("float", 0.0), "c": Attr("float", 0.0)}


def _quad_fwd(attrs, ins, ctx):
    x = ins[0]
    return [(attrs["a"] * x * x + attrs["b"] * x + attrs["c"]).astype(x.dtype, copy=False)]


register("_contrib_quadratic", inputs=("data",), attrs=dict(_QUAD),
         infer_shape=unary_infer("quadratic"), forward=_quad_fwd,
         gradient=lambda F, attrs, ins, outs, og, ctx: [F.elemwise_mul(og[0], F._plus_scalar(
             F._mul_scalar(ins[0], scalar=2.0 * attrs["a"]), scalar=attrs["b"]))],
         lowering="({a} * {0} * {0} + {b} * {0} + {c})",
         doc="a * data^2 + b * data + c, elementwise.",
         samples=lambda rng: [Sample([_rand(rng)], {"a": 1.5, "b": -2.0, "c": 0.5})])


# -- gradientmultiplier / round_ste / sign_ste: forward f(x), backward a fixed map --------------
register("_contrib_gradientmultiplier", inputs=("data",), attrs={"scalar": Attr("float", 1.0)},
         infer_shape=unary_infer("gradientmultiplier"),
         forward=lambda attrs, ins, ctx: [ins[0].copy()],
         gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._mul_scalar(og[0], scalar=attrs["scalar"])],
         lowering="{0}", grad_check=False,
         doc="Identity forward; the backward multiplies the gradient by ``scalar`` (-1: a "
             "gradient-reversal layer).",
         samples=lambda rng: [Sample([_rand(rng)], {"scalar": -0.5})])
register("_contrib_round_ste", inputs=("data",), infer_shape=unary_infer("round_ste"),
         forward=lambda attrs, ins, ctx: [np.where(ins[0] >= 0, np.floor(ins[0] + 0.5),
                                                   np.ceil(ins[0] - 0.5)).astype(ins[0].dtype)],
         gradient=lambda F, attrs, ins, outs, og, ctx: [og[0]], lowerable=False,
         grad_check=False,
         doc="round (half away from zero) with a straight-through (identity) gradient.",
         samples=lambda rng: [Sample([_rand(rng) * 3])])
register("_contrib_sign_ste", inputs=("data",), infer_shape=unary_infer("sign_ste"),
         forward=lambda attrs, ins, ctx: [np.sign(ins[0])],
         gradient=lambda F, attrs, ins, outs, og, ctx: [og[0]], lowerable=False,
         grad_check=False,
         doc="sign with a straight-through (identity) gradient.",
         samples=lambda rng: [Sample([_rand(rng)])])


# -- allclose(a, b): one element, 1 if |a-b| <= atol + rtol*|b| everywhere -----------------------
def _allclose_fwd(attrs, ins, ctx):
    a, b = ins
    ok = np.allclose(a, b, rtol=attrs["rtol"], atol=attrs["atol"], equal_nan=attrs["equal_nan"])
    return [np.array(1 if ok else 0, dtype=np.uint8)]


register("_contrib_allclose", inputs=("a", "b"),
         attrs={"rtol": Attr("float", 1e-5), "atol": Attr("float", 1e-8),
                "equal_nan": Attr("bool", True)},
         infer_shape=lambda attrs, ins: (ins, [()]),
         infer_type=lambda attrs, ins: (ins, ["uint8"]), forward=_allclose_fwd,
         differentiable=False, lowerable=False,
         doc="Whether every |a - b| <= atol + rtol * |b| (a 0-d uint8 array, as MXNet).",
         samples=lambda rng: [Sample([_rand(rng), _rand(rng)])])
