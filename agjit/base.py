"""``mx.base``: the error type (``MXNetError`` is a RuntimeError, as in MXNet) and
``mx_real_t``, MXNet's default real type (numpy.float32)."""
import numpy as _np

from symbol.base import MXNetError

mx_real_t = _np.float32


def register_class(registry, klass, kind):
    """Put ``klass`` into ``registry`` under its lower-case class name, warning (MXNet's
    text) when it replaces another class; returns ``klass`` (the body of MXNet's
    ``Optimizer.register`` / ``KVStoreBase.register`` decorators)."""
    assert isinstance(klass, type)
    name = klass.__name__.lower()
    if name in registry:
        import warnings
        warnings.warn('WARNING: New %s %s.%s is overriding existing %s %s.%s'
                      % (kind, klass.__module__, klass.__name__, kind,
                         registry[name].__module__, registry[name].__name__))
    registry[name] = klass
    return klass

__all__ = ["MXNetError", "mx_real_t"]
