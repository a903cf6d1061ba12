"""``mx.library``: loading custom operator libraries.  MXNet 1.9.1 loads a compiled C++
library of custom operators/partitioners (``lib_api.h``) into its engine; agjit has no C++
engine to load one into, so :func:`load` checks the path as MXNet does and then raises a
clear MXNetError.  Custom operators for agjit are written in Python with
``mx.operator.CustomOp`` / ``mx.operator.register``."""
import os

from symbol.base import MXNetError

__all__ = ['load']


def load(path, verbose=True):
    """Refuses to load the custom C++ operator library at ``path`` (see the module doc)."""
    if not os.path.exists(path):
        raise MXNetError("load path %s does NOT exist" % path)
    if not os.path.isabs(path):
        raise MXNetError("load path %s is not an absolute path" % path)
    raise MXNetError("Error loading library: '%s': agjit cannot load compiled MXNet custom "
                     "operator libraries (it has no C++ engine); write the operator in Python "
                     "with mx.operator.CustomOp and mx.operator.register instead" % path)
