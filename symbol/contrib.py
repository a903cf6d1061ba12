"""``mx.sym.contrib``: every registered ``_contrib_*`` operator under its short name
(``mx.sym.contrib.box_nms`` is ``_contrib_box_nms``), as MXNet's contrib namespace."""
from . import api as _api

_NAMES = tuple(sorted(k[len("_contrib_"):] for k in _api.OP_FUNCTIONS if k.startswith("_contrib_")))
__all__ = list(_NAMES)

for _n in _NAMES:
    # made under the short name, so auto-names are MXNet's (box_nms0, multiboxprior0)
    globals()[_n] = _api._make_op_function(_api.get_op("_contrib_" + _n), _n)
del _n
