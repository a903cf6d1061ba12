"""agjit: MXNet-style imperative arrays with autograd recording, graph export as MXNet
Symbols, and Numba-compiled replay.

>>> import agjit as mx
>>> x = mx.nd.array([1, 2, 3, 4]); x.attach_grad()
>>> with mx.autograd.record():
...     y = x * x + 1
>>> y.backward(); x.grad.asnumpy().tolist()
[2.0, 4.0, 6.0, 8.0]
"""
__version__ = "0.1.0"

import symbol as sym  # noqa: E402
import symbol  # noqa: E402,F401
from . import base  # noqa: E402
from .base import MXNetError  # noqa: E402
from . import context  # noqa: E402
from .context import Context, cpu, gpu, cpu_pinned, num_gpus  # noqa: E402
from . import random  # noqa: E402
from . import ndarray  # noqa: E402
from . import ndarray as nd  # noqa: E402
from . import autograd  # noqa: E402
from . import model  # noqa: E402  (mx.model: checkpoints and Model)
from symbol import name, attribute  # noqa: E402  (mx.name.Prefix, mx.attribute.AttrScope)
from symbol.attribute import AttrScope  # noqa: E402
from . import lr_scheduler, optimizer, metric, io, initializer  # noqa: E402  (training helpers)
from . import initializer as init  # noqa: E402
from .optimizer import Trainer  # noqa: E402
from . import callback  # noqa: E402  (mx.callback)
from . import operator  # noqa: E402  (mx.operator: CustomOp)
from symbol import visualization  # noqa: E402
from symbol import visualization as viz  # noqa: E402  (mx.viz)

__all__ = ["nd", "ndarray", "autograd", "sym", "symbol", "cpu", "gpu", "Context", "MXNetError", "jit",
           "base", "random", "context", "num_gpus", "name", "attribute", "AttrScope",
           "lr_scheduler", "optimizer", "metric", "io", "init", "initializer", "Trainer", "callback", "operator", "test_utils", "viz", "visualization"]


def jit(fn=None, **options):
    """``mx.jit`` -- trace, lower to Numba, cache and replay; see :func:`agjit.compiler.runtime.jit`.

    Numba is imported on first use, so ``import agjit`` stays light.
    """
    from .compiler.runtime import jit as _jit
    return _jit(fn, **options)


# submodules imported on first use, so ``import agjit`` stays light (test_utils pulls in
# numpy.testing)
_LAZY = {"test_utils", "module"}
_ALIASES = {"mod": "module"}


def __getattr__(name):
    name = _ALIASES.get(name, name)
    if name in _LAZY:
        import importlib
        return importlib.import_module("." + name, __name__)
    if name.startswith("__"):
        raise AttributeError(name)
    from symbol._missing import missing
    raise missing("mx", name, [k for k in globals() if not k.startswith("_")] + list(_LAZY)
                  + list(_ALIASES))
