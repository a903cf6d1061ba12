"""``mx.util``: the NumPy-shape switches of MXNet 1.x (``mx.np_shape``, ``mx.is_np_shape``,
``mx.set_np_shape``, ``mx.use_np_shape``).  Under NumPy shape semantics ``infer_shape``
reads and writes -1 for an unknown dimension and None for an unknown shape (the state lives
in :mod:`symbol.infer`, per thread)."""
import functools

from symbol.infer import is_np_shape, set_np_shape

__all__ = ["np_shape", "is_np_shape", "set_np_shape", "use_np_shape", "is_np_array",
           "np_array", "use_np_array", "use_np", "set_np", "reset_np", "getenv", "setenv",
           "get_gpu_count", "get_gpu_memory"]


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


# -- NumPy-array switches (note: no-mx-np) -------------------------------------------------------
# agjit implements MXNet 1.x's ``mx.nd`` arrays, not the ``mx.np`` / ``mx.npx`` NumPy-compatible
# arrays of MXNet 1.6+.  So NumPy-array semantics are always off: ``is_np_array()`` is False,
# and asking to turn them on (``np_array(True)``, ``set_np(array=True)``, calling a function
# decorated with ``use_np`` / ``use_np_array``) raises MXNetError instead of running code that
# expects ``mx.np`` arrays with ``mx.nd`` ones.  ``set_np(shape=True, array=False)`` and
# ``reset_np()`` work (they only touch the shape switch).

def _no_np_array(what):
    from symbol.base import MXNetError
    return MXNetError("%s: agjit implements MXNet 1.x's mx.nd arrays, not the mx.np/mx.npx "
                      "NumPy-compatible arrays, so NumPy-array semantics cannot be turned on"
                      % what)


def is_np_array():
    """Always False: agjit has no ``mx.np`` arrays (note *no-mx-np*)."""
    return False


class _NumpyArrayScope:
    def __init__(self, is_np_array=True):  # noqa: D107 -- MXNet's parameter name
        self._active = bool(is_np_array)

    def __enter__(self):
        if self._active:
            raise _no_np_array("np_array(True)")
        return self

    def __exit__(self, *exc):
        return False


def np_array(active=True):
    """A scope with NumPy-array semantics; only ``active=False`` is possible in agjit."""
    return _NumpyArrayScope(active)


def _wrap_all(func, wrap):
    """``wrap`` a function, or every method (and ``__init__``) of a class."""
    if isinstance(func, type):
        for name, m in list(vars(func).items()):
            if callable(m) and (not name.startswith("__") or name == "__init__"):
                setattr(func, name, wrap(m))
        return func
    return wrap(func)


def use_np_array(func):
    """Decorator (function or class): calls raise MXNetError (note *no-mx-np*)."""
    def wrap(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            raise _no_np_array("use_np_array(%s)" % getattr(f, "__qualname__", f))
        return wrapper
    return _wrap_all(func, wrap)


def use_np(func):
    """``use_np_shape(use_np_array(func))``: calls raise MXNetError (note *no-mx-np*)."""
    return use_np_shape(use_np_array(func))


def set_np(shape=True, array=True):
    """Set the NumPy shape switch; ``array=True`` raises MXNetError (note *no-mx-np*)."""
    if not shape and array:
        raise ValueError('NumPy Shape semantics is required in using NumPy array semantics.')
    if array:
        raise _no_np_array("set_np(array=True)")
    set_np_shape(shape)


def reset_np():
    """Turn NumPy shape (and array) semantics off."""
    set_np_shape(False)


def getenv(name):
    """The value of environment variable ``name`` (None when unset)."""
    import os
    return os.environ.get(name)


def setenv(name, value):
    """Set (or with ``value=None`` remove) environment variable ``name``."""
    import os
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = str(value)


def get_gpu_count():
    """0: agjit runs on the CPU."""
    return 0


def get_gpu_memory(gpu_dev_id):
    from symbol.base import MXNetError
    raise MXNetError("get_gpu_memory(%r): agjit runs on the CPU only (no GPU)" % (gpu_dev_id,))
