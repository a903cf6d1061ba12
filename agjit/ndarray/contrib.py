"""``mx.nd.contrib``: every registered ``_contrib_*`` operator under its short name
(``mx.nd.contrib.box_nms`` is ``_contrib_box_nms``)."""
from symbol.contrib import _NAMES

__all__ = list(_NAMES)


def _populate():
    from .. import ndarray as _nd
    g = globals()
    for n in _NAMES:
        g[n] = getattr(_nd, "_contrib_" + n)


_populate()
