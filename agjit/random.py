"""``mx.random``: one seedable generator shared by eager kernels (Dropout) and compiled code."""
import threading

import numpy as np

__all__ = ["seed", "generator", "uniform", "normal", "randn", "randint", "exponential", "gamma",
           "poisson"]

_lock = threading.Lock()
_gen = [np.random.default_rng()]
_seed_value = [None]


def seed(seed_state, ctx="all"):
    """Seed the random number generator used by Dropout and ``mx.nd.random.*``."""
    if not isinstance(seed_state, (int, np.integer)) or isinstance(seed_state, bool):
        from symbol.base import MXNetError
        raise MXNetError("random.seed: seed_state must be an integer, got %r" % (seed_state,))
    with _lock:
        _gen[0] = np.random.default_rng(int(seed_state))
        _seed_value[0] = int(seed_state)


def generator():
    return _gen[0]


def uniform(*args, **kwargs):
    from .ndarray import random as r
    return r.uniform(*args, **kwargs)


def normal(*args, **kwargs):
    from .ndarray import random as r
    return r.normal(*args, **kwargs)


def randn(*args, **kwargs):
    from .ndarray import random as r
    return r.randn(*args, **kwargs)


def randint(*args, **kwargs):
    from .ndarray import random as r
    return r.randint(*args, **kwargs)


def exponential(*args, **kwargs):
    from .ndarray import random as r
    return r.exponential(*args, **kwargs)


def gamma(*args, **kwargs):
    from .ndarray import random as r
    return r.gamma(*args, **kwargs)


def poisson(*args, **kwargs):
    from .ndarray import random as r
    return r.poisson(*args, **kwargs)
