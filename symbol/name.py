"""Automatic naming of Symbol operator nodes (``mx.name``).

``NameManager.current.get(name, hint)`` returns ``name`` when one is given, otherwise
``hint`` followed by a per-hint counter that starts at 0 (``fullyconnected0``,
``fullyconnected1``, ``_plus0`` ...), as MXNet 1.x does.  A ``with NameManager():`` block
starts fresh counters; ``Prefix('blk_')`` prepends a prefix to every name it hands out,
explicit names included.

>>> import symbol as sym
>>> with Prefix('blk_'):
...     sym.FullyConnected(sym.Variable('x'), num_hidden=2).name
'blk_fullyconnected0'
"""
import threading

__all__ = ["NameManager", "Prefix", "current"]


class _NameManagerMeta(type):
    @property
    def current(cls):
        """The innermost active manager of this thread (a process-wide default otherwise)."""
        value = getattr(NameManager._current, "value", None)
        if value is None:
            value = NameManager._current.value = NameManager()
        return value

    @current.setter
    def current(cls, value):
        NameManager._current.value = value


class NameManager(metaclass=_NameManagerMeta):
    """Hands out unique default names; usable as a ``with`` scope."""

    _current = threading.local()

    def __init__(self):
        self._counter = {}
        self._old_manager = None

    def get(self, name, hint):
        """``name`` if given, else ``hint + str(counter[hint])`` (then the counter advances)."""
        if name:
            return name
        n = self._counter.get(hint, 0)
        self._counter[hint] = n + 1
        return "%s%d" % (hint, n)

    def __enter__(self):
        self._old_manager = NameManager.current
        NameManager._current.value = self
        return self

    def __exit__(self, ptype, value, trace):
        assert self._old_manager is not None, "NameManager.__exit__ without __enter__"
        NameManager._current.value = self._old_manager
        self._old_manager = None


class Prefix(NameManager):
    """A NameManager that prepends ``prefix`` to every name (also to explicit ones)."""

    def __init__(self, prefix):
        super().__init__()
        self._prefix = prefix

    def get(self, name, hint):
        return self._prefix + super().get(name, hint)


def current():
    return NameManager.current
