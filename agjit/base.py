"""``mx.base``: the error type (``MXNetError`` is a RuntimeError, as in MXNet)."""
from symbol.base import MXNetError

__all__ = ["MXNetError"]
