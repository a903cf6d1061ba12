"""``mx.engine``: MXNet's engine knobs.  agjit runs every operator synchronously (there is no
asynchronous dependency engine to bundle operators in), so the bulk size is only recorded:
``set_bulk_size`` returns the previous value and ``with mx.engine.bulk(n):`` sets it for the
block and restores it after, as in MXNet, with no effect on execution.

>>> import agjit as mx
>>> with mx.engine.bulk(10):
...     x = mx.nd.zeros((1,))
...     for _ in range(3):
...         x += 1
>>> x.asnumpy().tolist()
[3.0]
"""

__all__ = ["set_bulk_size", "bulk"]

_bulk_size = [0]        # what MXNet 1.9.1 reports before any set_bulk_size


def set_bulk_size(size):
    """Set the bulk size (recorded only); returns the previous one."""
    prev = _bulk_size[0]
    _bulk_size[0] = int(size)
    return prev


class _BulkScope(object):
    """``with mx.engine.bulk(size):`` scope."""

    def __init__(self, size):
        self._size = size
        self._old_size = None

    def __enter__(self):
        self._old_size = set_bulk_size(self._size)
        return self

    def __exit__(self, ptype, value, trace):
        set_bulk_size(self._old_size)


def bulk(size):
    """A scope that sets the bulk size for its block (no effect on agjit's execution)."""
    return _BulkScope(size)
