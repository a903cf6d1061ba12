"""``mx.random``: one seedable generator shared by eager kernels (Dropout) and compiled code."""
import threading

import numpy as np

__all__ = ["seed", "generator", "uniform", "normal", "randn", "randint", "exponential", "gamma",
           "poisson"]

_lock = threading.Lock()
_gen = [np.random.default_rng()]
_seed_value = [None]
_local = threading.local()      # a thread's private generator (see private())


def seed(seed_state, ctx="all"):
    """Seed the random number generator used by Dropout and ``mx.nd.random.*``."""
    if not isinstance(seed_state, (int, np.integer)) or isinstance(seed_state, bool):
        from symbol.base import MXNetError
        raise MXNetError("random.seed: seed_state must be an integer, got %r" % (seed_state,))
    with _lock:
        _gen[0] = np.random.default_rng(int(seed_state))
        _seed_value[0] = int(seed_state)


def generator():
    g = getattr(_local, "gen", None)
    return _gen[0] if g is None else g


class private:
    """``with private():`` -- this thread draws from a generator of its own, leaving the
    shared stream untouched (the JIT's background compile runs kernels on copies this way:
    agjit.compiler.tier note *tiers*)."""

    def __enter__(self):
        self._prev = getattr(_local, "gen", None)
        _local.gen = np.random.default_rng(0)
        return _local.gen

    def __exit__(self, *exc):
        _local.gen = self._prev
        return False


def _delegate(name):
    """``mx.random.<name>`` is ``mx.nd.random.<name>`` (imported when first called)."""
    def fn(*args, **kwargs):
        from .ndarray import random as r
        return getattr(r, name)(*args, **kwargs)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = "``mx.nd.random.%s``." % name
    return fn


uniform = _delegate("uniform")
normal = _delegate("normal")
randn = _delegate("randn")
randint = _delegate("randint")
exponential = _delegate("exponential")
gamma = _delegate("gamma")
poisson = _delegate("poisson")
