"""``mx.base``: the error type (``MXNetError`` is a RuntimeError, as in MXNet) and
``mx_real_t``, MXNet's default real type (numpy.float32)."""
import numpy as _np

from symbol.base import MXNetError

mx_real_t = _np.float32

__all__ = ["MXNetError", "mx_real_t"]
