"""``_CustomFunction``: the node a recorded ``autograd.Function`` call leaves in the graph."""
import numpy as np

from ..base import MXNetError
from ..registry import register, Attr


def _infer(attrs, ins):
    raise MXNetError("_CustomFunction: a custom autograd.Function node cannot be re-executed "
                     "from a graph; it only exists in recorded histories")


def _any_types(attrs, ins):
    return ins, [None]


register("_CustomFunction", inputs=lambda attrs: [], infer_shape=_infer, forward=None,
         infer_type=_any_types,
         gradient=None, lowerable=False, differentiable=False, grad_check=False,
         doc="A recorded autograd.Function call (its Python backward is not part of the graph).")


def _jit_infer(attrs, ins):
    raise MXNetError("_jit_call: a jitted call is inlined by autograd.get_symbol and cannot be "
                     "re-executed from a graph")


register("_jit_call", inputs=(), variadic="num_args",
         attrs={"num_args": Attr("int"), "num_outputs": Attr("int", 1)},
         num_outputs=lambda attrs: attrs["num_outputs"], infer_shape=_jit_infer, forward=None,
         infer_type=_any_types,
         gradient=None, lowerable=False, differentiable=False, grad_check=False,
         doc="A recorded mx.jit call: one tape node whose backward runs the compiled backward "
             "kernel (autograd.get_symbol inlines the traced graph).")


# ---------------------------------------------------------------------------------------------
# Custom: operators written in Python (mx.operator.CustomOp / CustomOpProp)
# ---------------------------------------------------------------------------------------------
# Note: custom-ops
#     ``Custom(*inputs, op_type=NAME, **kwargs)`` runs the CustomOpProp registered as NAME
#     (``mx.operator.register``).  Its schema comes from the prop, made with the node's
#     kwargs *as strings* (as MXNet passes them): inputs ``list_arguments()`` (missing ones are
#     auto-created as ``<name>_<arg>`` variables), outputs ``list_outputs()``, shapes and
#     dtypes from ``infer_shape`` / ``infer_type``.  The forward calls the prop's operator
#     (``create_operator(ctx, shapes, dtypes)``, one instance per distinct kwargs and input
#     shapes/dtypes, so state an operator keeps between its forward and backward survives) with
#     NDArrays, ``is_train`` as 1/0 and ``req`` as 'write'; the backward is the op
#     ``_backward_Custom`` calling the operator's ``backward``.  Recording and tracing are
#     paused while user code runs.  The graph JSON holds op ``Custom`` with ``op_type`` and the
#     kwargs, so MXNet loads it where the same op_type is registered.
#
#     ``symbol`` does not import agjit: agjit.operator installs the NDArray adapter
#     (:func:`set_adapter`) that wraps NumPy buffers for the user's code.
_PROPS = {}
_PROP_CACHE = {}
_OPERATORS = {}
_ADAPTER = {}


def set_adapter(wrap, unwrap, isolate, zeros):
    """Called by agjit.operator: how to hand arrays to user code and take them back."""
    _ADAPTER.update(wrap=wrap, unwrap=unwrap, isolate=isolate, zeros=zeros)


def register_prop(op_type, prop_cls):
    _PROPS[op_type] = prop_cls
    for k in [k for k in _PROP_CACHE if k[0] == op_type]:
        del _PROP_CACHE[k]
    for k in [k for k in _OPERATORS if k[0] == op_type]:
        del _OPERATORS[k]


def _kwargs(attrs):
    return {k: v for k, v in attrs.items() if k != "op_type"}


def prop_of(attrs):
    """The CustomOpProp instance for a node's attrs (MXNetError for an unknown op_type)."""
    op_type = attrs.get("op_type")
    if op_type not in _PROPS:
        raise MXNetError("Custom: operator type %r is not registered (registered: %s); use "
                         "mx.operator.register(%r) on a CustomOpProp"
                         % (op_type, sorted(_PROPS), op_type))
    key = (op_type, tuple(sorted(_kwargs(attrs).items())))
    prop = _PROP_CACHE.get(key)
    if prop is None:
        prop = _PROPS[op_type](**_kwargs(attrs))
        _PROP_CACHE[key] = prop
    return prop


from ..registry import OpDef as _OpDef  # noqa: E402


class _CustomOpDef(_OpDef):
    """The Custom op: attrs are free-form strings and the schema comes from the prop."""

    def __init__(self, name, **kw):
        super().__init__(name, **kw)
        self._nvis = None           # outputs come from the prop: never the 1-output fast paths
        self._n_inputs = None

    def parse_attrs(self, raw, strict=True, call=False):   # call: see OpDef.parse_attrs
        out = {}
        for k, v in raw.items():
            if k == "name" or (k.startswith("__") and k.endswith("__")):
                continue
            out[k] = v if isinstance(v, str) else str(v)
        if "op_type" not in out:
            raise MXNetError("Custom: required argument 'op_type' is missing")
        return out

    def input_names(self, attrs):
        if "op_type" not in attrs:
            return []
        return list(prop_of(attrs).list_arguments())

    def arg_names(self, attrs):
        return self.input_names(attrs)

    def num_outputs(self, attrs):
        return len(prop_of(attrs).list_outputs())

    def num_visible(self, attrs):
        return self.num_outputs(attrs)

    def output_names(self, attrs):
        return list(prop_of(attrs).list_outputs())

    def infer_shape(self, attrs, in_shapes):
        prop = prop_of(attrs)
        if any(s is None for s in in_shapes[:1]):
            return list(in_shapes), [None] * self.num_outputs(attrs)
        if prop.list_auxiliary_states():
            raise MXNetError("Custom %s: auxiliary states of custom ops are not supported"
                             % attrs["op_type"])
        # MXNet hands unknown shapes to the prop as empty lists
        res = prop.infer_shape([list(s) if s is not None else [] for s in in_shapes])
        ins, outs = res[0], res[1]
        return ([tuple(int(d) for d in s) if s is not None else None for s in ins],
                [tuple(int(d) for d in s) if s is not None else None for s in outs])

    def infer_type(self, attrs, in_types):
        prop = prop_of(attrs)
        known = [t for t in in_types if t is not None]
        if not known:
            return list(in_types), [None] * self.num_outputs(attrs)
        if any(t is None for t in in_types) and _default_infer_type(prop):
            # MXNet's default infer_type leaves unknown inputs (and so the outputs) unknown
            return list(in_types), [None] * self.num_outputs(attrs)
        codes = [np.dtype(t) for t in in_types]
        ins, outs = prop.infer_type(codes)[:2]
        return ([np.dtype(t).name for t in ins], [np.dtype(t).name for t in outs])


def _default_infer_type(prop):
    """Whether the prop keeps CustomOpProp's own infer_type (agjit.operator marks it)."""
    return getattr(type(prop).infer_type, "_agjit_default", False)


def _operator(attrs, in_np):
    """The operator instance for these attrs and input shapes/dtypes (created once)."""
    key = (attrs["op_type"], tuple(sorted(_kwargs(attrs).items())),
           tuple(a.shape for a in in_np), tuple(a.dtype.str for a in in_np))
    op = _OPERATORS.get(key)
    if op is None:
        prop = prop_of(attrs)
        shapes = [list(a.shape) for a in in_np]
        _ins, outs = prop.infer_shape(shapes)[:2]
        dtypes = [np.dtype(a.dtype) for a in in_np]
        op = _ADAPTER["isolate"](lambda: prop.create_operator(None, shapes, dtypes))
        _OPERATORS[key] = op
    return op


def _check_adapter():
    if not _ADAPTER:
        raise MXNetError("Custom: custom operators run only with agjit's runtime (import agjit)")


def _custom_forward(attrs, ins, ctx):
    _check_adapter()
    prop = prop_of(attrs)
    op = _operator(attrs, ins)
    _i, out_shapes = prop.infer_shape([list(a.shape) for a in ins])[:2]
    out_types = prop.infer_type([np.dtype(a.dtype) for a in ins])[1]
    wrap, unwrap, zeros = _ADAPTER["wrap"], _ADAPTER["unwrap"], _ADAPTER["zeros"]
    in_data = [wrap(a.copy()) for a in ins]
    out_data = [zeros(tuple(s), np.dtype(t)) for s, t in zip(out_shapes, out_types)]
    is_train = 1 if getattr(ctx, "is_train", False) else 0
    _ADAPTER["isolate"](lambda: op.forward(is_train=is_train, req=["write"] * len(out_data),
                                           in_data=in_data, out_data=out_data, aux=[]))
    return [unwrap(o) for o in out_data]


def _custom_gradient(F, attrs, ins, outs, og, ctx):
    n_in = len(ins)
    grads = F._backward_Custom(*(list(og) + list(ins) + list(outs)), **attrs)
    if n_in == 1:
        return [grads]
    return list(grads)


register("Custom", cls=_CustomOpDef, inputs=lambda attrs: [], attrs={"op_type": Attr("str")},
         forward=_custom_forward, gradient=_custom_gradient, is_loss=True, lowerable=False,
         grad_check=False, second_order=False,
         doc="A Python operator registered with mx.operator.register (note custom-ops).")


class _BackwardCustomOpDef(_CustomOpDef):
    """Inputs: out_grads, then in_data, then out_data; outputs: one gradient per input."""

    def input_names(self, attrs):
        if "op_type" not in attrs:
            return []
        prop = prop_of(attrs)
        outs, args = prop.list_outputs(), prop.list_arguments()
        return (["ograd_%s" % o for o in outs] + list(args) + ["out_%s" % o for o in outs])

    def arg_names(self, attrs):
        return self.input_names(attrs)

    def num_outputs(self, attrs):
        return len(prop_of(attrs).list_arguments())

    def output_names(self, attrs):
        return ["%s_grad" % a for a in prop_of(attrs).list_arguments()]

    def infer_shape(self, attrs, in_shapes):
        prop = prop_of(attrs)
        n_out, n_in = len(prop.list_outputs()), len(prop.list_arguments())
        data = in_shapes[n_out:n_out + n_in]
        return list(in_shapes), list(data)

    def infer_type(self, attrs, in_types):
        prop = prop_of(attrs)
        n_out, n_in = len(prop.list_outputs()), len(prop.list_arguments())
        return list(in_types), list(in_types[n_out:n_out + n_in])


def _custom_backward(attrs, ins, ctx):
    _check_adapter()
    prop = prop_of(attrs)
    n_out, n_in = len(prop.list_outputs()), len(prop.list_arguments())
    og, data, outs = ins[:n_out], ins[n_out:n_out + n_in], ins[n_out + n_in:]
    op = _operator(attrs, data)
    wrap, unwrap, zeros = _ADAPTER["wrap"], _ADAPTER["unwrap"], _ADAPTER["zeros"]
    if not getattr(prop, "need_top_grad_", True) or any(g is None for g in og):
        og = [np.zeros_like(o) for o in outs]
    in_grad = [zeros(a.shape, a.dtype) for a in data]
    _ADAPTER["isolate"](lambda: op.backward(
        req=["write"] * n_in, out_grad=[wrap(g.copy()) for g in og],
        in_data=[wrap(a.copy()) for a in data], out_data=[wrap(o.copy()) for o in outs],
        in_grad=in_grad, aux=[]))
    return [unwrap(g) for g in in_grad]


register("_backward_Custom", cls=_BackwardCustomOpDef, inputs=lambda attrs: [],
         attrs={"op_type": Attr("str")}, forward=_custom_backward,
         gradient=lambda F, attrs, ins, outs, og, ctx: [None] * len(ins), lowerable=False,
         grad_check=False, second_order=False, differentiable=False,
         doc="The backward of a Custom op: calls its operator's backward.")
