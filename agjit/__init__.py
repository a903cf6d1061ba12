"""agjit: MXNet-style imperative arrays with autograd recording, graph export as MXNet
Symbols, and Numba-compiled replay.

>>> import agjit as mx
>>> x = mx.nd.array([1, 2, 3, 4]); x.attach_grad()
>>> with mx.autograd.record():
...     y = x * x + 1
>>> y.backward(); x.grad.asnumpy().tolist()
[2.0, 4.0, 6.0, 8.0]
"""
# ``mx.__version__`` is the MXNet API level agjit implements, so that MXNet programs which
# gate on it (``LooseVersion(mx.__version__) >= "1.6"``) take their MXNet 1.9.1 branch;
# agjit's own release (the package metadata) is ``agjit_version``.
__version__ = "1.9.1"
agjit_version = "0.1.0"

import symbol as sym  # noqa: E402
import symbol  # noqa: E402,F401
from . import base  # noqa: E402
from .base import MXNetError  # noqa: E402
from . import context  # noqa: E402
from .context import Context, cpu, gpu, cpu_pinned, num_gpus, current_context  # noqa: E402,F401
from . import util  # noqa: E402,F401  (mx.util: np_shape switches)
from .util import np_shape, is_np_shape, set_np_shape, use_np_shape  # noqa: E402,F401
from . import random  # noqa: E402
from . import ndarray  # noqa: E402
from . import ndarray as nd  # noqa: E402
from . import autograd  # noqa: E402
from . import model  # noqa: E402,F401  (mx.model: checkpoints and Model)
from symbol import name, attribute  # noqa: E402  (mx.name.Prefix, mx.attribute.AttrScope)
from symbol.attribute import AttrScope  # noqa: E402
from . import lr_scheduler, optimizer, metric, io, initializer  # noqa: E402  (training helpers)
from . import executor  # noqa: E402,F401  (mx.executor; installs Symbol.bind's executors)
from . import initializer as init  # noqa: E402
from .optimizer import Trainer  # noqa: E402
from . import callback  # noqa: E402  (mx.callback)
from . import operator  # noqa: E402  (mx.operator: CustomOp)
from . import recordio  # noqa: E402  (mx.recordio: .rec/.idx files)
from . import rnn  # noqa: E402  (mx.rnn: symbolic cells of MXNet 1.x)
from symbol import visualization  # noqa: E402
from symbol import visualization as viz  # noqa: E402  (mx.viz)

__all__ = ["nd", "ndarray", "autograd", "sym", "symbol", "cpu", "gpu", "Context", "MXNetError", "jit",
           "base", "random", "context", "num_gpus", "name", "attribute", "AttrScope",
           "lr_scheduler", "optimizer", "metric", "io", "init", "initializer", "Trainer",
           "callback", "operator", "test_utils", "viz", "visualization", "alias_as_mxnet",
           "kv", "kvstore", "recordio", "rnn", "profiler", "runtime", "engine", "libinfo",
           "library", "current_context"]


def jit(fn=None, **options):
    """``mx.jit`` -- trace, lower to Numba, cache and replay; see :func:`agjit.compiler.decorator.jit`.

    Numba is imported on first use, so ``import agjit`` stays light.
    """
    from .compiler.decorator import jit as _jit
    tiered = options.get("tiered")
    if tiered is False or (tiered is None and not _tiered_default()):
        # a blocking compile is coming: warm the kernel library in the background now
        # (compiler note *library-warm-up*); a tiered function's first calls run without
        # Numba, and its compile thread starts the warm-up (agjit.compiler.tier)
        from .compiler.warmup import warm_library
        warm_library()
    return _jit(fn, **options)


def _tiered_default():
    from .compiler.tier import tiered_default
    return tiered_default()


class _MXNetAliasFinder:
    """Note: mxnet-alias.  While ``sys.modules['mxnet']`` is agjit (``alias_as_mxnet()``),
    ``import mxnet.X.Y`` gives agjit's module ``agjit.X.Y`` itself (the same object, not a
    second copy): ``mxnet.sym`` / ``mxnet.symbol`` are the top-level ``symbol`` package,
    ``mxnet.nd`` is ``agjit.ndarray`` and ``mxnet.init`` is ``agjit.initializer``.  The
    finder does nothing while ``mxnet`` is anything else (e.g. the real MXNet)."""

    _ROOTS = {"sym": "symbol", "symbol": "symbol", "nd": __name__ + ".ndarray",
              "init": __name__ + ".initializer", "mod": __name__ + ".module",
              "kv": __name__ + ".kvstore",
              "viz": "symbol.visualization", "visualization": "symbol.visualization"}

    def find_spec(self, fullname, path=None, target=None):
        import sys
        if not fullname.startswith("mxnet.") or sys.modules.get("mxnet") is not sys.modules[__name__]:
            return None
        import importlib.util
        head, _, rest = fullname[len("mxnet."):].partition(".")
        real = self._ROOTS.get(head, __name__ + "." + head) + ("." + rest if rest else "")
        return importlib.util.spec_from_loader(fullname, _MXNetAliasLoader(real))


class _MXNetAliasLoader:
    def __init__(self, real):
        self.real = real

    def create_module(self, spec):
        import importlib
        try:
            return importlib.import_module(self.real)
        except ModuleNotFoundError:
            raise ModuleNotFoundError("No module named %r (agjit has no %s)"
                                      % (spec.name, self.real), name=spec.name) from None

    def exec_module(self, module):
        pass


def _install_alias_finder():
    import sys
    if not any(isinstance(f, _MXNetAliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MXNetAliasFinder())


_install_alias_finder()


def alias_as_mxnet():
    """Make ``import mxnet`` (and ``from mxnet import gluon, nd, autograd``,
    ``from mxnet.gluon import nn`` ...) give agjit's modules, so an MXNet 1.x program runs
    unchanged.  Returns agjit.  See the note *mxnet-alias* (``_MXNetAliasFinder``).

    >>> import sys; mx = alias_as_mxnet()
    >>> import mxnet.gluon.nn; mxnet.gluon.nn is mx.gluon.nn
    True
    """
    import sys
    sys.modules["mxnet"] = sys.modules[__name__]
    return sys.modules[__name__]


# submodules imported on first use, so ``import agjit`` stays light (test_utils pulls in
# numpy.testing; gluon is large)
_LAZY = {"test_utils", "module", "gluon", "kvstore", "profiler", "runtime", "engine",
         "libinfo", "library"}
_ALIASES = {"mod": "module", "kv": "kvstore"}


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
