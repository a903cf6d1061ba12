"""Two small blocks the zoo's networks are built from (MXNet keeps them in
``gluon.contrib.nn``): ``HybridConcurrent`` feeds one input to every child and concatenates
their outputs along ``axis``; ``Identity`` passes its input through."""
from ...block import HybridBlock
from ...nn import HybridSequential

__all__ = ["HybridConcurrent", "Identity"]


class HybridConcurrent(HybridSequential):
    """Children run side by side on the same input; outputs joined with ``concat(dim=axis)``."""

    def __init__(self, axis=-1, prefix=None, params=None):
        super(HybridConcurrent, self).__init__(prefix=prefix, params=params)
        self.axis = axis

    def hybrid_forward(self, F, x):
        outs = [self[i](x) for i in range(len(self))]
        return F.concat(*outs, dim=self.axis)


class Identity(HybridBlock):
    """Returns its input unchanged (the shortcut branch of a DenseNet layer)."""

    def __init__(self, prefix=None, params=None):
        super(Identity, self).__init__(prefix=prefix, params=params)

    def hybrid_forward(self, F, x):
        return x
