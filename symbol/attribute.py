"""``mx.AttrScope``: attributes attached to every symbol created inside a ``with`` block.

Keys are stored as given; MXNet's hidden keys (``ctx_group``, ``lr_mult``, ``wd_mult``,
``force_mirroring``, ``mirror_stage``) become ``__key__`` when a node is created.  A key that
is neither hidden nor ``__dunder__`` is handed to operators as a parameter, so an operator
that does not know it raises MXNetError (as in MXNet).

>>> import symbol as sym
>>> with AttrScope(ctx_group='dev1'):
...     w = sym.Variable('w')
>>> w.attr('ctx_group')
'dev1'
"""
import threading

__all__ = ["AttrScope"]


class _AttrScopeMeta(type):
    @property
    def current(cls):
        value = getattr(AttrScope._current, "value", None)
        if value is None:
            value = AttrScope._current.value = AttrScope()
        return value

    @current.setter
    def current(cls, value):
        AttrScope._current.value = value


class AttrScope(metaclass=_AttrScopeMeta):
    """Attribute scope; every value must be a string."""

    _current = threading.local()

    def __init__(self, **kwargs):
        self._old_scope = None
        for key, value in kwargs.items():
            if not isinstance(value, str):
                raise ValueError("AttrScope: attribute %s=%r must be a string" % (key, value))
        self._attr = kwargs

    def get(self, attr):
        """The scope's attributes updated with ``attr`` (a new dict)."""
        if self._attr:
            ret = dict(self._attr)
            if attr:
                ret.update(attr)
            return ret
        return dict(attr) if attr else {}

    def __enter__(self):
        self._old_scope = AttrScope.current
        merged = dict(self._old_scope._attr)
        merged.update(self._attr)
        self._attr = merged
        AttrScope._current.value = self
        return self

    def __exit__(self, ptype, value, trace):
        assert self._old_scope is not None, "AttrScope.__exit__ without __enter__"
        AttrScope._current.value = self._old_scope
