"""What an op's typed lowering (symbol.lowering note *lowering-contract*) means to the
compiler: references resolved to kernel-library objects, the per-element cost of a fused
loop, a node's classification (fused / call / view / eager) and a KernelCall's statements.

Every decision the lowering takes about an op is read from its declared lowering object
here -- no op is recognised by its name.
"""
import builtins
import math

import numpy as np

from symbol.lowering import Elementwise, Alias, View, KernelCall, Reduction
from symbol.ops._lowering import LowerCtx

__all__ = ["resolve", "node_lowering", "expr_lowering", "call_lines", "classify",
           "is_reduction", "loop_cost", "CallLines", "BUILTIN_REFS"]

# builtins a template may call (cost 0); the modules np / math are always resolvable
# (spelled through the objects: op names such as "abs" never appear as strings here)
BUILTIN_REFS = frozenset(f.__name__ for f in (abs, min, max, int, float))


class Ref:
    """A resolved kernel-library reference: ``module`` to import ``name`` from (None for a
    builtin or an attribute of np / math, which need no import of their own beyond the
    module), the Python object, and its cost per element (None: not an elementwise
    function)."""

    __slots__ = ("ref", "module", "name", "obj", "cost")

    def __init__(self, ref, module, name, obj, cost):
        self.ref, self.module, self.name, self.obj, self.cost = ref, module, name, obj, cost


_RESOLVED = {}


def resolve(ref):
    """The :class:`Ref` for a lowering's reference ``ref``; LookupError if it names nothing
    the kernel library, NumPy, math or the allowed builtins provide."""
    hit = _RESOLVED.get(ref)
    if hit is not None:
        return hit
    from . import kernels
    from .kernels import LIBRARY, TRANSCENDENTAL
    if ref in LIBRARY:
        obj, cost = LIBRARY[ref]
        out = Ref(ref, kernels.__name__, ref, obj, cost)
    elif ref in BUILTIN_REFS:
        out = Ref(ref, None, ref, getattr(builtins, ref), 0)
    else:
        mod, _, attr = ref.partition(".")
        table = {"np": np, "math": math}.get(mod)
        obj = getattr(table, attr, None) if table is not None and attr and \
            not attr.startswith("_") else None
        if obj is None or not callable(obj):
            raise LookupError("lowering reference %r names no kernel-library function, "
                              "np/math function or allowed builtin" % (ref,))
        # np.float32(...) is a typed constant, not maths
        out = Ref(ref, mod, attr, obj, 0 if attr.startswith("float") else TRANSCENDENTAL)
    _RESOLVED[ref] = out
    return out


def node_lowering(n):
    """The node's lowering for its attrs (a ByAttr case picked), or None."""
    low = n.op.lowering if n.op is not None else None
    return None if low is None else low.select(n.parsed)


def expr_lowering(n, shapes=None, dtypes=None):
    """The :class:`Elementwise` a node fuses as, or None: its declared one, or -- given
    shapes -- the template its KernelCall returns for these attrs/shapes."""
    low = node_lowering(n)
    if isinstance(low, Elementwise):
        return low
    if isinstance(low, KernelCall) and shapes is not None:
        got = call_lines(n, shapes, dtypes)
        if isinstance(got, Elementwise):
            return got
    return None


def is_reduction(n):
    return isinstance(node_lowering(n), Reduction)


def is_alias(n):
    return isinstance(node_lowering(n), Alias)


def elementwise_cost(low):
    """Work per element of one fused op (see lower note *parallel-loops*): the declared
    cost, else 1 + the declared costs of the functions it calls."""
    if low.cost is not None:
        return low.cost
    return 1 + sum(resolve(r).cost or 0 for r in low.calls)


def loop_cost(nodes, shapes, dtypes):
    """Rough work per element of a fused loop: the sum of its members' costs (a reduction
    accumulated in the loop costs 1)."""
    cost = 0
    for n in nodes:
        low = expr_lowering(n, shapes, dtypes)
        cost += 1 if low is None else elementwise_cost(low)
    return cost


def classify(n, shapes, dtypes):
    """'view', 'fused', 'call' or 'eager' for one node (see lower note *lowering*)."""
    low = node_lowering(n)
    if isinstance(low, View) and n.num_outputs() == 1 and shapes.get((n, 0)) is not None:
        return "view"
    if isinstance(low, KernelCall) and low.any_dtype:
        ents = [(s, i) for (s, i, _v) in n.inputs] + [(n, i) for i in range(n.num_outputs())]
        if any(dtypes.get(e) not in CALL_DTYPES for e in ents):
            return "eager"
        return "call" if isinstance(call_lines(n, shapes, dtypes), CallLines) else "eager"
    dt = dtypes.get((n, 0))
    if dt not in ("float32", "float64"):
        return "eager"
    for (s, i, _v) in n.inputs:
        if dtypes.get((s, i)) != dt:
            return "eager"
    if expr_lowering(n, shapes, dtypes) is not None and n.num_outputs() == 1:
        oshape = shapes.get((n, 0))
        if oshape is None:
            return "eager"
        for (s, i, _v) in n.inputs:
            ishape = shapes.get((s, i))
            if ishape is None or len(ishape) > len(oshape):
                return "eager"
            for a, b in zip(ishape[::-1], oshape[::-1]):
                if a != b and a != 1:
                    return "eager"
        return "fused"
    if isinstance(low, KernelCall) and isinstance(call_lines(n, shapes, dtypes), CallLines):
        return "call"
    return "eager"


# the dtypes an ``any_dtype`` KernelCall may read and write (Numba arrays of these)
CALL_DTYPES = frozenset(("float32", "float64", "int8", "uint8", "int32", "int64"))

PLACE_IN = "__IN%d__"
PLACE_OUT = "__OUT%d__"


class CallLines:
    """A KernelCall's statements (with placeholder names, see codegen) and the library
    functions they call."""

    __slots__ = ("lines", "used")

    def __init__(self, lines, used):
        self.lines = tuple(lines)
        self.used = tuple(used)


_call_cache = {}


def call_lines(n, shapes, dtypes):
    """A KernelCall node's :class:`CallLines`, an :class:`Elementwise` (the op is
    elementwise for these attrs/shapes), or None (not supported here)."""
    low = node_lowering(n)
    if not isinstance(low, KernelCall):
        return None
    in_shapes = [shapes.get((s, i)) for (s, i, _v) in n.inputs]
    out_shapes = [shapes.get((n, i)) for i in range(n.num_outputs())]
    # the lines depend on the shapes and dtype too: one node is lowered with other shapes
    # when a symbol is bound again with other input shapes
    key = (n, tuple(map(_hashable, in_shapes)), tuple(map(_hashable, out_shapes)),
           dtypes.get((n, 0)))
    hit = _call_cache.get(key, _call_cache)
    if hit is not _call_cache:
        return hit
    if any(x is None for x in in_shapes) or any(x is None for x in out_shapes):
        out = None
    else:
        ctx = LowerCtx(n, [PLACE_IN % k for k in range(len(in_shapes))],
                       [PLACE_OUT % k for k in range(len(out_shapes))], in_shapes, out_shapes,
                       dtypes.get((n, 0)), [0], uses=low.uses)
        got = low.emit(ctx)
        if isinstance(got, str):
            out = Elementwise(got)
        elif isinstance(got, Elementwise) or got is None:
            out = got
        else:
            out = CallLines(got, ctx.used)
    if len(_call_cache) > 4096:
        _call_cache.clear()
    _call_cache[key] = out
    return out


def _hashable(shape):
    return None if shape is None else tuple(shape)
