"""``mx.sym.zeros`` / ``ones`` / ``full`` / ``arange``: the creation ops as Symbols, writing
the attributes MXNet's front end writes (``dtype`` always; ``full``'s value as a float)."""
from . import api as _api

__all__ = ["zeros", "ones", "full", "arange"]


def _dt(dtype):
    return "float32" if dtype is None else dtype


def zeros(shape, dtype=None, **kwargs):
    return _api.OP_FUNCTIONS["_zeros"](shape=shape, dtype=_dt(dtype), **kwargs)


def ones(shape, dtype=None, **kwargs):
    return _api.OP_FUNCTIONS["_ones"](shape=shape, dtype=_dt(dtype), **kwargs)


def full(shape, val, dtype=None, **kwargs):
    return _api.OP_FUNCTIONS["_full"](shape=shape, value=float(val), dtype=_dt(dtype), **kwargs)


def arange(start, stop=None, step=1.0, repeat=1, infer_range=False, name=None, dtype=None):
    return _api.OP_FUNCTIONS["_arange"](start=start, stop=stop, step=step, repeat=repeat,
                                        infer_range=infer_range, name=name, dtype=_dt(dtype))
