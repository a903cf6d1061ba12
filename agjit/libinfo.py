"""``mx.libinfo``: library information (MXNet's module of the same name).  agjit has no
shared library or C headers, so ``find_lib_path`` / ``find_include_path`` raise MXNetError
saying so; ``__version__`` is ``mx.__version__``."""
from symbol.base import MXNetError
from . import __version__  # noqa: F401  (mx.libinfo.__version__ == mx.__version__)

__all__ = ['find_lib_path', 'find_include_path']


def find_lib_path(prefix='libmxnet'):
    raise MXNetError("find_lib_path: agjit is pure Python (NumPy + Numba) and has no %s shared "
                     "library" % prefix)


def find_include_path():
    raise MXNetError("find_include_path: agjit has no C/C++ headers (it is NumPy + Numba)")
