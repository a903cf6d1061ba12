"""The symbol package: MXNet-compatible Symbol graph IR, graph JSON and shape/type inference.

``import agjit as mx`` makes this package ``mx.sym``: ``Variable``/``var``, ``Group``,
``load``/``load_json``, every registered operator as a function (``FullyConnected``,
``broadcast_add``, ...), ``maximum``/``minimum``/``power``, and the :class:`Symbol` methods.

Importable on its own: it never imports agjit, not even inside functions (executors and custom
ops reach agjit through hooks agjit installs: symbol.executor, symbol.ops.custom).

>>> import symbol as sym
>>> net = sym.Activation(sym.FullyConnected(sym.Variable('data'), num_hidden=4, name='fc'),
...                      act_type='relu', name='relu1')
>>> net.list_arguments()
['data', 'fc_weight', 'fc_bias']
>>> net.infer_shape(data=(2, 3))[0]
[(2, 3), (4, 3), (4,)]
"""
import os as _os

from .base import MXNetError
from . import ops  # noqa: F401  (registers every operator)
from .registry import get_op, all_ops
from .symbol import Symbol, NotImplementedForSymbol
from . import name  # noqa: F401
from . import attribute  # noqa: F401
from .name import NameManager, Prefix
from .attribute import AttrScope
from . import api  # noqa: F401
from .api import Variable, var, Group, maximum, minimum, power, pow  # noqa: A004
from .api import _internal  # noqa: F401
from . import random  # noqa: F401  (mx.sym.random)
from . import linalg  # noqa: F401  (mx.sym.linalg)
from . import contrib  # noqa: F401  (mx.sym.contrib)
from .creation import zeros, ones, full, arange  # noqa: F401,E402

__all__ = ["MXNetError", "Symbol", "get_op", "all_ops", "Variable", "var", "Group", "load",
           "load_json", "fromjson", "maximum", "minimum", "power", "pow", "AttrScope",
           "NameManager", "Prefix", "NotImplementedForSymbol"]


def load_json(json_str):
    """Load a Symbol from MXNet graph JSON text (see :func:`symbol.json_io.load_json`).

    >>> s = Variable('x') + 1
    >>> load_json(s.tojson()).tojson() == s.tojson()
    True
    """
    if not isinstance(json_str, str):
        raise TypeError("json_str needs to be string, got %s" % type(json_str).__name__)
    from . import json_io
    return json_io.load_json(json_str)


fromjson = load_json


def split_v2(ary, indices_or_sections, axis=0, squeeze_axis=False):
    """Split ``ary`` into ``indices_or_sections`` equal parts (an int) or at the given cut
    points (a tuple), MXNet's ``split_v2`` (op ``_split_v2``)."""
    from .ops.fluent_extra import split_v2_attrs
    return api.OP_FUNCTIONS["_split_v2"](ary, **split_v2_attrs(indices_or_sections, axis,
                                                                squeeze_axis))


def load(fname):
    """Load a Symbol saved with :meth:`Symbol.save` (a ``-symbol.json`` file)."""
    if not isinstance(fname, (str, _os.PathLike)):
        raise TypeError("fname need to be string")
    with open(fname, "r", encoding="utf-8") as f:
        text = f.read()
    return load_json(text)


def _export_ops(namespace):
    for _n, _fn in api.OP_FUNCTIONS.items():
        if _n not in namespace:
            namespace[_n] = _fn


_export_ops(globals())


def __getattr__(attr):
    if attr.startswith("__"):
        raise AttributeError(attr)
    from ._missing import missing
    raise missing("mx.sym", attr, [k for k in globals() if not k.startswith("_")])
