"""Shared shape/type inference helpers for op definitions.

Shapes are tuples of ints; ``None`` is an unknown shape.  Every helper raises MXNetError with
the op name and the shapes involved.
"""
import contextlib

import numpy as np

from ..base import MXNetError

__all__ = ["fmt", "merge_shape", "same_shape", "broadcast_shapes", "norm_axis", "norm_axes",
           "unary_infer", "elemwise_infer", "broadcast_infer", "ctx_train", "ctx_forward_train",
           "grad_needed", "fail", "blas_serial"]


def fmt(shape):
    return "None" if shape is None else "(%s)" % ",".join(str(d) for d in shape)


def fail(op, msg, *shapes):
    raise MXNetError("%s: %s%s" % (op, msg, (" (shapes: %s)" % ", ".join(fmt(s) for s in shapes)) if shapes else ""))


def merge_shape(op, what, a, b):
    """Merge two partially known shapes; MXNetError if they conflict."""
    if a is None:
        return b
    if b is None:
        return a
    a, b = tuple(a), tuple(b)
    if a == b:
        return a
    if len(a) != len(b):
        raise MXNetError("%s: inconsistent shapes for %s: %s vs %s" % (op, what, fmt(a), fmt(b)))
    out = []
    for x, y in zip(a, b):
        if x == 0:
            out.append(y)
        elif y == 0 or x == y:
            out.append(x)
        else:
            raise MXNetError("%s: inconsistent shapes for %s: %s vs %s" % (op, what, fmt(a), fmt(b)))
    return tuple(out)


def same_shape(op, shapes, names=None):
    s = None
    for i, sh in enumerate(shapes):
        what = names[i] if names else "input %d" % i
        try:
            s = merge_shape(op, what, s, sh)
        except MXNetError:
            raise MXNetError("%s: shapes of inputs must be equal, got %s" % (
                op, ", ".join("%s %s" % ((names[j] if names else "input %d" % j), fmt(x))
                              for j, x in enumerate(shapes)))) from None
    return s


def broadcast_shapes(op, a, b):
    """NumPy broadcasting of two shapes; a dimension unknown (0) on either side stays
    unknown (MXNet's BinaryBroadcastShape)."""
    if a is None or b is None:
        return None
    la, lb = len(a), len(b)
    n = max(la, lb)
    ap = (1,) * (n - la) + tuple(a)
    bp = (1,) * (n - lb) + tuple(b)
    out = []
    for x, y in zip(ap, bp):
        if x == 0 or y == 0:
            out.append(0)
        elif x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            raise MXNetError("%s: operands could not be broadcast together with shapes %s %s"
                             % (op, fmt(a), fmt(b)))
    return tuple(out)


def norm_axis(op, axis, ndim, name="axis"):
    if not -ndim <= axis < max(ndim, 1):
        raise MXNetError("%s: %s=%d is out of range for an array of %d dimensions"
                         % (op, name, axis, ndim))
    return axis % ndim if ndim else 0


def norm_axes(op, axis, ndim, exclude=False):
    """Normalise a reduction axis attr (None, int or tuple) to a sorted tuple of axes."""
    if axis is None or axis == ():
        axes = tuple(range(ndim))
        if exclude:
            axes = ()
        return axes
    if isinstance(axis, int):
        axis = (axis,)
    axes = sorted(set(norm_axis(op, a, ndim) for a in axis))
    if len(axes) != len(axis):
        raise MXNetError("%s: duplicate axes in %s" % (op, (axis,)))
    if exclude:
        axes = [a for a in range(ndim) if a not in axes]
    return tuple(axes)


def unary_infer(op):
    """One input, one output of the same shape, inferred either way (MXNet's
    ElemwiseShape<1, 1>)."""
    def infer(attrs, ins, outs=None):
        s = same_shape(op, [ins[0]] + list(outs or [])[:1], ["data", "output"])
        return [s] + list(ins[1:]), [s]
    return infer


def elemwise_infer(op, names=None):
    """Inputs and the output share one shape, inferred either way (ElemwiseShape)."""
    def infer(attrs, ins, outs=None):
        o = list(outs or [])[:1]
        s = same_shape(op, list(ins) + o, (list(names) + ["output"]) if names else None)
        return [s] * len(ins), [s]
    return infer


def broadcast_infer(op):
    """NumPy broadcasting; nothing is inferred until both ranks are known, and the
    inputs are never inferred from the output (MXNet's BinaryBroadcastShape)."""
    def infer(attrs, ins, outs=None):
        a, b = ins[0], ins[1]
        if a is None or b is None:
            return ins, [None]
        if tuple(a) == tuple(b):
            return ins, [tuple(a)]
        return ins, [broadcast_shapes(op, a, b)]
    return infer


def ctx_train(ctx):
    return bool(ctx is not None and getattr(ctx, "is_train", False))


def ctx_forward_train(ctx):
    """In a gradient rule: whether the forward ran in training mode (``ctx.is_train`` is the
    backward's mode; they differ for ``record(train_mode=False)`` + ``backward()``)."""
    if ctx is None:
        return False
    return bool(getattr(ctx, "forward_train", getattr(ctx, "is_train", False)))


def grad_needed(ctx, k):
    """In a gradient rule: whether input ``k`` needs a gradient.  The backward walks (eager
    ``agjit.autograd`` and ``symbol.autodiff``) set ``ctx.needs``, one bool per input: False
    where the input leads to no differentiated variable, so the rule may return None for it
    instead of computing a gradient nobody reads.  Without a mask every input is needed (a
    rule that ignores the mask stays correct: its extra gradients are dropped)."""
    needs = getattr(ctx, "needs", None)
    return needs is None or k >= len(needs) or bool(needs[k])


def float_types(op):
    """infer_type for ops whose output dtype follows the (first) input."""
    def infer(attrs, ins):
        known = [t for t in ins if t is not None]
        t = known[0] if known else None
        return [t if x is None else x for x in ins], [t]
    return infer


def as_np_dtype(t):
    return np.dtype(t)


# -- floating-point warnings -------------------------------------------------------------------
# MXNet's kernels print nothing for overflow, 0/0, inf - inf or a nan cast: agjit's NumPy
# kernels run with NumPy's floating-point errors ignored (the IEEE values are the same).
# np.errstate costs ~4 us a use; setting NumPy's error-state context variable directly costs
# well under 1 us, so that is used where this NumPy has it.
try:
    from numpy._core import _ufunc_config as _ufc
    _EXT_VAR = _ufc._extobj_contextvar
    with np.errstate(all="ignore"):
        _EXT_QUIET = _EXT_VAR.get()
except (ImportError, AttributeError):        # another NumPy: the public context manager
    _EXT_VAR = None


def quiet_call(f, *args):
    """``f(*args)`` with NumPy's floating-point warnings off (thread- and context-local)."""
    if _EXT_VAR is None:
        with np.errstate(all="ignore"):
            return f(*args)
    token = _EXT_VAR.set(_EXT_QUIET)
    try:
        return f(*args)
    finally:
        _EXT_VAR.reset(token)


# Note: blas-serial
#     An op whose NumPy kernel runs many small GEMMs in a loop (the RNN recurrence: 20 x 256
#     by 256 x 1024 per time step of W9) runs the loop under ``blas_serial()``: BLAS held at
#     one thread, so OpenBLAS does not fork and join its threads for every small GEMM
#     (measured on W9, 2 cores with other load: process CPU ms per step 1560 with 2 BLAS
#     threads, 285 with 1).  The runtime installs the implementation
#     (agjit.compiler.kernels_nn, sharing the flag of its sample-parallel convolutions);
#     symbol never imports agjit, so without it this is a no-op.
_BLAS_SERIAL = [contextlib.nullcontext]


def blas_serial():
    """A context holding BLAS at one thread where the runtime provides one."""
    return _BLAS_SERIAL[0]()
