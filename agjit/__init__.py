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

__all__ = ["nd", "ndarray", "autograd", "sym", "symbol", "cpu", "gpu", "Context", "MXNetError", "jit",
           "base", "random", "context", "num_gpus", "name", "attribute", "AttrScope",
           "lr_scheduler", "optimizer", "metric", "io", "init", "initializer", "Trainer"]


def jit(fn=None, **options):
    """``mx.jit`` -- trace, lower to Numba, cache and replay; see :func:`agjit.compiler.runtime.jit`.

    Numba is imported on first use, so ``import agjit`` stays light.
    """
    from .compiler.runtime import jit as _jit
    return _jit(fn, **options)


def __getattr__(name):
    # mx.gluon is imported on first use, so ``import agjit`` stays light.
    if name == "gluon":
        import importlib
        return importlib.import_module(".gluon", __name__)
    raise AttributeError("module 'agjit' has no attribute %r" % name)
