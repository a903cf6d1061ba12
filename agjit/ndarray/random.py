"""``mx.nd.random``: sampling functions drawing from the generator seeded by mx.random.seed."""
import numpy as np

from ..context import check_context
from .ndarray import _wrap
from .. import random as _random
from symbol.base import dtype_name

__all__ = ["uniform", "normal", "randn", "randint"]


def _shape(shape):
    if shape is None:
        return (1,)
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def _dt(dtype):
    return np.dtype("float32" if dtype is None else dtype_name(dtype))


def uniform(low=0, high=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    check_context(ctx, "random.uniform")
    a = _random.generator().uniform(low, high, size=_shape(shape)).astype(_dt(dtype))
    if out is not None:
        out[:] = a
        return out
    return _wrap(a)


def normal(loc=0, scale=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    check_context(ctx, "random.normal")
    a = _random.generator().normal(loc, scale, size=_shape(shape)).astype(_dt(dtype))
    if out is not None:
        out[:] = a
        return out
    return _wrap(a)


def randn(*shape, **kwargs):
    return normal(shape=shape or None, **kwargs)


def randint(low, high, shape=None, dtype=None, ctx=None, **kwargs):
    check_context(ctx, "random.randint")
    a = _random.generator().integers(low, high, size=_shape(shape)).astype(
        np.dtype("int32" if dtype is None else dtype_name(dtype)))
    return _wrap(a)
