"""``mx.util``: the NumPy-shape switches of MXNet 1.x (``mx.np_shape``, ``mx.is_np_shape``,
``mx.set_np_shape``, ``mx.use_np_shape``).  Under NumPy shape semantics ``infer_shape``
reads and writes -1 for an unknown dimension and None for an unknown shape (the state lives
in :mod:`symbol.infer`, per thread)."""
import functools

from symbol.infer import is_np_shape, set_np_shape

__all__ = ["np_shape", "is_np_shape", "set_np_shape", "use_np_shape"]


class _NumpyShapeScope:
    """``with mx.np_shape(active=True):`` -- NumPy shape semantics inside the block."""

    def __init__(self, is_np_shape=True):  # noqa: D107 -- MXNet's parameter name
        self._enter = bool(is_np_shape)
        self._prev = None

    def __enter__(self):
        self._prev = set_np_shape(self._enter)
        return self

    def __exit__(self, *exc):
        set_np_shape(self._prev)
        return False


def np_shape(active=True):
    """A scope with NumPy shape semantics on (or off with ``active=False``)."""
    return _NumpyShapeScope(active)


def use_np_shape(func):
    """Decorator: run ``func`` (or every method of a class) under ``np_shape(True)``."""
    if isinstance(func, type):
        for name, m in list(vars(func).items()):
            if callable(m) and not name.startswith("__"):
                setattr(func, name, use_np_shape(m))
        return func

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with np_shape(True):
            return func(*args, **kwargs)
    return wrapper
