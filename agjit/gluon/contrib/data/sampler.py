"""``IntervalSampler``: indices of ``[0, length)`` taken every ``interval`` items."""
from ...data import sampler

__all__ = ['IntervalSampler']


class IntervalSampler(sampler.Sampler):
    """Yields ``0, interval, 2*interval, ...``; with ``rollover`` (default) it then starts
    again from 1, 2, ... until every index was visited.  ``len()`` is ``length`` either way
    (as MXNet's, even when ``rollover=False`` yields fewer).

    >>> from agjit.gluon.contrib.data import IntervalSampler
    >>> list(IntervalSampler(7, interval=3))
    [0, 3, 6, 1, 4, 2, 5]
    >>> list(IntervalSampler(7, interval=3, rollover=False))
    [0, 3, 6]
    """

    def __init__(self, length, interval, rollover=True):
        assert interval <= length, \
            "Interval {} must be smaller than or equal to length {}".format(interval, length)
        self._length = length
        self._interval = interval
        self._rollover = rollover

    def __iter__(self):
        for start in range(self._interval if self._rollover else 1):
            yield from range(start, self._length, self._interval)

    def __len__(self):
        return self._length
