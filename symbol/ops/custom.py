"""``_CustomFunction``: the node a recorded ``autograd.Function`` call leaves in the graph."""
from ..base import MXNetError
from ..registry import register


def _infer(attrs, ins):
    raise MXNetError("_CustomFunction: a custom autograd.Function node cannot be re-executed "
                     "from a graph; it only exists in recorded histories")


register("_CustomFunction", inputs=lambda attrs: [], infer_shape=_infer, forward=None,
         gradient=None, lowerable=False, differentiable=False, grad_check=False,
         doc="A recorded autograd.Function call (its Python backward is not part of the graph).")
