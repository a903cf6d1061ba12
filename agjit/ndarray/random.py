"""``mx.nd.random``: sampling functions drawing from the generator seeded by mx.random.seed.

Scalar distribution parameters sample ``shape`` (default ``(1,)``) values; NDArray parameters
run MXNet's ``_sample_*`` ops, giving one draw of ``shape`` per parameter element (output
shape ``param.shape + shape``), as MXNet does.
"""
import numpy as np

from ..context import check_context
from .ndarray import NDArray, _wrap, invoke
from .. import random as _random
from symbol.base import dtype_name, MXNetError
from symbol.registry import get_op

__all__ = ["uniform", "normal", "randn", "randint", "exponential", "gamma", "poisson",
           "multinomial", "shuffle", "uniform_like", "normal_like", "exponential_like",
           "gamma_like", "poisson_like"]


def _shape(shape):
    if shape is None:
        return (1,)
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def _dt(dtype, default="float32"):
    return np.dtype(default if dtype is None else dtype_name(dtype))


def _out(a, out):
    if out is not None:
        out[:] = a
        return out
    return a


def _draw(fname, params, sample_op, draw, shape, dtype, ctx, out):
    check_context(ctx, "random." + fname)
    tensors = [isinstance(p, NDArray) for p in params]
    if any(tensors):
        if sample_op is None:
            raise MXNetError("random.%s: NDArray distribution parameters are not supported; "
                             "pass scalars" % fname)
        if not all(tensors):
            raise MXNetError("random.%s: distribution parameters must be all NDArrays or all "
                             "scalars, got %s" % (fname, [type(p).__name__ for p in params]))
        given = {}
        if shape is not None:
            given["shape"] = _shape(shape)
        if dtype is not None:
            given["dtype"] = dtype
        return _out(invoke(get_op(sample_op), list(params), given), out)
    a = np.asarray(draw(_random.generator(), _shape(shape))).astype(_dt(dtype))
    return _out(_wrap(a), out)


def uniform(low=0, high=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples from [low, high)."""
    return _draw("uniform", (low, high), "_sample_uniform",
                 lambda g, s: g.uniform(low, high, size=s), shape, dtype, ctx, out)


def normal(loc=0, scale=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples from N(loc, scale^2)."""
    return _draw("normal", (loc, scale), "_sample_normal",
                 lambda g, s: g.normal(loc, scale, size=s), shape, dtype, ctx, out)


def randn(*shape, **kwargs):
    """Standard normal samples of the given shape (``loc``/``scale`` keywords allowed)."""
    return normal(shape=shape or None, **kwargs)


def exponential(scale=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples from an exponential distribution with the given scale (1/rate)."""
    return _draw("exponential", (scale,), None,
                 lambda g, s: g.exponential(scale, size=s), shape, dtype, ctx, out)


def gamma(alpha=1, beta=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples from a gamma distribution with shape ``alpha`` and scale ``beta``."""
    return _draw("gamma", (alpha, beta), None,
                 lambda g, s: g.gamma(alpha, beta, size=s), shape, dtype, ctx, out)


def poisson(lam=1, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Samples from a Poisson distribution (returned as floats, as MXNet does)."""
    return _draw("poisson", (lam,), None,
                 lambda g, s: g.poisson(lam, size=s), shape, dtype, ctx, out)


def randint(low, high, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Integers sampled uniformly from [low, high); int32 unless ``dtype`` says int64."""
    check_context(ctx, "random.randint")
    a = _random.generator().integers(low, high, size=_shape(shape)).astype(_dt(dtype, "int32"))
    return _out(_wrap(a), out)


def multinomial(data, shape=None, get_prob=False, out=None, dtype="int32", **kwargs):
    """Samples indices from the categorical distributions along ``data``'s last axis (op
    ``_sample_multinomial``); with ``get_prob`` also returns their log-probabilities."""
    given = {"get_prob": bool(get_prob), "dtype": dtype}
    if shape is not None:
        given["shape"] = shape if not isinstance(shape, (int, np.integer)) else (int(shape),)
    return invoke(get_op("_sample_multinomial"), [data], given, out=out)


def shuffle(data, **kwargs):
    """A random permutation of ``data`` along its first axis (op ``_shuffle``)."""
    return invoke(get_op("_shuffle"), [data], {}, out=kwargs.get("out"))


def _like(op, data, given, out):
    if not isinstance(data, NDArray):
        raise MXNetError("random.%s: data must be an NDArray, got %s"
                         % (op[len("_random_"):], type(data).__name__))
    return invoke(get_op(op), [data], given, out=out)


def uniform_like(data=None, low=0, high=1, out=None, **kwargs):
    """Uniform samples in [low, high) with ``data``'s shape and dtype."""
    return _like("_random_uniform_like", data, {"low": low, "high": high}, out)


def normal_like(data=None, loc=0, scale=1, out=None, **kwargs):
    """N(loc, scale^2) samples with ``data``'s shape and dtype."""
    return _like("_random_normal_like", data, {"loc": loc, "scale": scale}, out)


def exponential_like(data=None, lam=1, out=None, **kwargs):
    """Exponential samples (rate ``lam``) with ``data``'s shape and dtype."""
    return _like("_random_exponential_like", data, {"lam": lam}, out)


def gamma_like(data=None, alpha=1, beta=1, out=None, **kwargs):
    """Gamma samples (shape ``alpha``, scale ``beta``) with ``data``'s shape and dtype."""
    return _like("_random_gamma_like", data, {"alpha": alpha, "beta": beta}, out)


def poisson_like(data=None, lam=1, out=None, **kwargs):
    """Poisson samples with ``data``'s shape and dtype."""
    return _like("_random_poisson_like", data, {"lam": lam}, out)
