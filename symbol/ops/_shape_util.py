"""Helpers shared by the shape op families (symbol/ops/shape_*.py): samples, axis
normalisation, the first-input type rule, like-shaped helper inference.
"""
from ..base import MXNetError


def _rand(rng, shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape)


def _known(s):
    return s is not None and 0 not in s


def _axis(op, axis, ndim, name="axis"):
    """Normalise an axis in [-ndim, ndim)."""
    a = axis + ndim if axis < 0 else axis
    if not 0 <= a < ndim:
        raise MXNetError("%s: %s=%d is out of range for an input with %d dimensions"
                         % (op, name, axis, ndim))
    return a


def _new_axis(op, axis, ndim):
    """Normalise the position of a new axis inserted into an ``ndim``-d input: [-ndim-1, ndim]."""
    a = axis + ndim + 1 if axis < 0 else axis
    if not 0 <= a <= ndim:
        raise MXNetError("%s: axis=%d is out of range [%d, %d] for a new axis of an input with %d "
                         "dimensions" % (op, axis, -ndim - 1, ndim, ndim))
    return a


def _first_type(attrs, ins):
    """Output dtype follows the first input; the other inputs (indices, likes) are free."""
    return ins, [ins[0]]


def _like_infer(op):
    """infer_shape of a helper ``(data, ..., like)`` whose output has ``like``'s shape."""
    def infer(attrs, ins):
        return ins, [ins[-1]]
    return infer
