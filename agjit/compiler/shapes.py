"""Forward shape/dtype inference over a traced graph's entry tables (used by the JIT runtime
before lowering).  A unified inference shared with the executors and ``Symbol.infer_shape``
is planned (symbol/infer.py); this is the JIT's loop, unchanged."""
import numpy as np

__all__ = ["infer_graph"]


def infer_graph(order, shapes, dtypes):
    """Fill shapes/dtypes (keyed by entries ``(node, index)``) of every entry by forward
    inference from the known ones."""
    for n in order:
        if n.op is None:
            continue
        if all((n, i) in shapes for i in range(n.num_outputs())):
            continue
        ins = [shapes.get((s, i)) for (s, i, _v) in n.inputs]
        tys = [dtypes.get((s, i)) for (s, i, _v) in n.inputs]
        _, outs = n.op.infer_shape(n.parsed, ins)
        _, otys = n.op.infer_type(n.parsed, tys)
        for i, s in enumerate(outs):
            shapes[(n, i)] = None if s is None else tuple(s)
            t = otys[i] if i < len(otys) else otys[0]
            dtypes[(n, i)] = None if t is None else np.dtype(t).name
