"""``mx.sym.random``: symbolic sampling ops.  Unlike the legacy ``sym.random_normal`` (which
writes only the attributes passed), these write the distribution parameters always, as MXNet's
front end does: ``sym.random.normal(shape=(2,))`` serialises ``loc="0" scale="1"``.  Symbol
parameters select the ``_sample_*`` ops."""
from .symbol import Symbol
from .base import MXNetError
from . import api

__all__ = ["uniform", "normal", "randint"]


def _call(fname, legacy, sample, params, shape, dtype, kwargs):
    given = dict(kwargs)
    if shape is not None:
        given["shape"] = shape
    if dtype is not None:
        given["dtype"] = dtype
    if any(isinstance(v, Symbol) for v in params.values()):
        if sample is None or not all(isinstance(v, Symbol) for v in params.values()):
            raise MXNetError("random.%s: distribution parameters must be all Symbols or all "
                             "scalars" % fname)
        return api.OP_FUNCTIONS[sample](*params.values(), **given)
    given = dict(params, **given)
    return api.OP_FUNCTIONS[legacy](**given)


def uniform(low=0, high=1, shape=None, dtype=None, **kwargs):
    return _call("uniform", "_random_uniform", "_sample_uniform", {"low": low, "high": high},
                 shape, dtype, kwargs)


def normal(loc=0, scale=1, shape=None, dtype=None, **kwargs):
    return _call("normal", "_random_normal", "_sample_normal", {"loc": loc, "scale": scale},
                 shape, dtype, kwargs)


def randint(low, high, shape=None, dtype=None, **kwargs):
    return _call("randint", "_random_randint", None, {"low": low, "high": high}, shape, dtype,
                 kwargs)
