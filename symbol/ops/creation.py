"""Array-creation operators with no inputs: ``_zeros``, ``_ones``, ``_full``, ``_arange``
(what ``mx.sym.zeros`` / ``ones`` / ``full`` / ``arange`` write, and what MXNet's exported RNN
models use for their begin states).  A 0 in ``shape`` is a dimension of size 0, as the
engine allocates it when nothing infers it."""
import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._lowering import KernelCall

_DT = Attr("dtype", "float32")


# Note: creation-shape-inference
#     As in MXNet, a 0 in a creation op's ``shape`` is an unknown dimension for graph inference:
#     the consumers fill it in (an RNN's begin state ``zeros(shape=(0, H))`` gets the batch
#     size of the FullyConnected it feeds).  Executors run such a node with the inferred shape
#     (symbol.infer.concretize_creation_shapes); what nothing infers stays 0 -- a dimension of
#     size 0 when the node runs on its own (``mx.nd.zeros((0, 3))``).
CREATION_OPS = frozenset(("_zeros", "_ones", "_full"))


def _shape_infer(op):
    def infer(attrs, ins, outs=None):
        shape = tuple(attrs["shape"])
        if any(d < 0 for d in shape):
            raise MXNetError("%s: shape must not have negative dimensions, got %s" % (op, shape))
        o = outs[0] if outs else None
        if o is not None and len(o) == len(shape) and 0 in shape:
            bad = [k for k, (a, b) in enumerate(zip(shape, o)) if a and b and a != b]
            if bad:
                raise MXNetError("%s: shape %s conflicts with the inferred %s" % (op, shape, tuple(o)))
            shape = tuple(a or b for a, b in zip(shape, o))
        return ins, [shape]
    return infer


def _dtype_infer(attrs, ins):
    return ins, [attrs["dtype"] or "float32"]


def _fill_lowering(value_of):
    """A fill of the output with the constant (any numeric output dtype)."""
    def emit(ctx):
        v = value_of(ctx.attrs)
        lit = repr(float(v)) if ctx.dtype.startswith("float") else str(int(v))
        return ["%s[...] = np.%s(%s)" % (ctx.outs[0], ctx.dtype, lit)]
    return KernelCall(emit, any_dtype=True)


def _filled(op, value_of):
    register(op, inputs=(), attrs={"shape": Attr("shape", ()), "ctx": Attr("str", ""), "dtype": _DT},
             infer_shape=_shape_infer(op), infer_type=_dtype_infer,
             forward=lambda attrs, ins, ctx: [np.full(tuple(attrs["shape"]), value_of(attrs),
                                                      dtype=attrs["dtype"] or "float32")],
             gradient=None, differentiable=False, lowering=_fill_lowering(value_of),
             doc="An array of shape filled with a constant.",
             samples=lambda rng: [Sample([], {"shape": (2, 3)})])


_filled("_zeros", lambda attrs: 0)
_filled("_ones", lambda attrs: 1)

register("_full", inputs=(), attrs={"shape": Attr("shape", ()), "ctx": Attr("str", ""), "dtype": _DT,
                                    "value": Attr("float")},
         infer_shape=_shape_infer("_full"), infer_type=_dtype_infer,
         forward=lambda attrs, ins, ctx: [np.full(tuple(attrs["shape"]), attrs["value"],
                                                  dtype=attrs["dtype"] or "float32")],
         gradient=None, differentiable=False,
         lowering=_fill_lowering(lambda attrs: attrs["value"]),
         doc="An array of shape filled with value.",
         samples=lambda rng: [Sample([], {"shape": (2,), "value": 5.0})])


def _arange_np(attrs):
    start, stop, step = attrs["start"], attrs["stop"], attrs["step"]
    if stop is None:
        start, stop = 0.0, start
    if step == 0:
        raise MXNetError("_arange: step must not be 0")
    n = int(np.ceil((stop - start) / step))
    if n < 0:
        n = 0
    vals = start + step * np.arange(n, dtype=np.float64)
    return np.repeat(vals, attrs["repeat"]).astype(attrs["dtype"] or "float32")


def _lower_arange(ctx):
    """start + step * (i // repeat) in float64, converted to the output dtype (as
    _arange_np)."""
    a = ctx.attrs
    start, step = a["start"], a["step"]
    if a["stop"] is None:
        start = 0.0
    i = ctx.tmp("i")
    out = ctx.outs[0]
    return ["for %s in range(%s.shape[0]):" % (i, out),
            "    %s[%s] = np.float64(%r) + np.float64(%r) * (%s // %d)"
            % (out, i, float(start), float(step), i, max(1, a["repeat"]))]


def _arange_infer(attrs, ins):
    if attrs["infer_range"]:
        raise MXNetError("_arange: infer_range=True is not supported; give stop")
    return ins, [_arange_np(attrs).shape]


register("_arange", inputs=(),
         attrs={"start": Attr("float"), "stop": Attr("float_or_none", None), "step": Attr("float", 1.0),
                "repeat": Attr("int", 1), "infer_range": Attr("bool", False), "ctx": Attr("str", ""),
                "dtype": _DT},
         infer_shape=_arange_infer, infer_type=_dtype_infer,
         forward=lambda attrs, ins, ctx: [_arange_np(attrs)],
         gradient=None, differentiable=False,
         lowering=KernelCall(_lower_arange, any_dtype=True),
         doc="Evenly spaced values in [start, stop), each repeated repeat times.",
         samples=lambda rng: [Sample([], {"start": 0, "stop": 5, "step": 2}),
                              Sample([], {"start": 3, "repeat": 2})])
