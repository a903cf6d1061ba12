"""Source-text helpers of the shape, indexing and reduction lowerings (KernelCall ``emit``
functions in shape_*.py, reduce.py, creation.py, ...; symbol.lowering note
*lowering-contract*).

Copies are written as NumPy basic-slicing statements (``out[...] = x[1:3, ::-1]``), which
Numba compiles to loops: slice bounds come from the attrs with Python's meaning of None and
negative values (the same elements as MXNet's rule once shape inference has accepted the
bounds), so the text depends on ndims and attrs, never on the traced sizes.  Reductions
view their input as (outer, reduced, inner) with sizes read at run time, as sum does.
"""
from ..lowering import KernelCall

__all__ = ["bound", "py_slice", "index_key", "shape_prod", "view3", "call", "assign"]


def bound(v):
    """A slice bound's text: '' for None."""
    return "" if v is None else str(int(v))


def py_slice(b=None, e=None, s=None):
    return "%s:%s%s" % (bound(b), bound(e), "" if s is None or s == 1 else ":%d" % s)


def index_key(nd, parts):
    """``[p0, p1, ...]`` over ``nd`` axes, ``parts`` mapping an axis to its index text (the
    other axes taken whole); ``[...]`` when nothing is indexed."""
    if not parts:
        return "[...]"
    return "[%s]" % ", ".join(parts.get(k, ":") for k in range(nd))


def shape_prod(var, axes):
    """The run-time product of ``var``'s sizes on ``axes`` (text; "1" when empty)."""
    return " * ".join(["1"] + ["%s.shape[%d]" % (var, k) for k in axes])


def view3(ctx, var, nd, first, last):
    """Statements and the name of ``var`` viewed as (outer, axes first..last, inner)."""
    t = ctx.tmp("v")
    return (["%s = %s.reshape((%s, %s, %s))" % (
        t, var, shape_prod(var, range(first)), shape_prod(var, range(first, last + 1)),
        shape_prod(var, range(last + 1, nd)))], t)


def assign(out, expr):
    return "%s[...] = %s" % (out, expr)


def call(emit, *uses):
    """The KernelCall of an emit function calling the library functions ``uses``."""
    return KernelCall(emit, uses=uses)


def permute_copy(ctx, src, dst, perm):
    """Loops over ``dst`` with dst[i_0, .., i_k] = src[..] where src axis perm[k] is i_k
    (``dst = src.transpose(perm)``)."""
    from ._lowering import loop_nest, index_expr
    lines, idx, ind = loop_nest(dst, len(perm), None, ctx)
    s = [None] * len(perm)
    for k, j in enumerate(perm):
        s[j] = idx[k]
    lines.append("%s%s = %s" % (ind, index_expr(dst, idx), index_expr(src, s)))
    return lines


def reshaped(ctx, var, dims):
    """Statements and the name of ``var`` reshaped to ``dims`` (texts)."""
    t = ctx.tmp("r")
    return ["%s = %s.reshape((%s,))" % (t, var, ", ".join(dims))], t
