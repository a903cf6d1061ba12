"""Shape/dtype inference over a traced graph's entry tables, before lowering: the JIT uses the
one inference engine of ``symbol.infer`` (the one the executors and ``Symbol.infer_shape``
use), with the traced values as the known entries."""
from symbol.infer import infer_graph as _infer

__all__ = ["infer_graph"]


def infer_graph(order, shapes, dtypes):
    """Fill ``shapes``/``dtypes`` (keyed by entries ``(node, index)``; dtypes as names) of
    every entry from the known ones.  Raises MXNetError on inconsistent values."""
    s, t = _infer(order, shapes, dtypes, use_attrs=False)
    shapes.update((k, None if v is None else tuple(v)) for k, v in s.items())
    dtypes.update(t)
