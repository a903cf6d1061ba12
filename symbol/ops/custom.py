"""``_CustomFunction``: the node a recorded ``autograd.Function`` call leaves in the graph."""
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
