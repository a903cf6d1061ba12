"""``mx.nd.linalg``: the ``_linalg_*`` operators under their short names (gemm2, potrf...)."""
from symbol.linalg import _NAMES

__all__ = list(_NAMES)


def _populate():
    from .. import ndarray as _nd
    g = globals()
    for n in _NAMES:
        g[n] = getattr(_nd, "_linalg_" + n)


_populate()
