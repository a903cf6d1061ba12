"""Samplers: iterables of dataset indices (MXNet 1.9.1's ``gluon.data.sampler``)."""
import numpy as np

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "FilterSampler", "BatchSampler",
           "IntervalSampler", "SplitSampler"]

_LAST_BATCH = ("keep", "discard", "rollover")


def _bad_last_batch(value):
    return ValueError("last_batch must be one of 'keep', 'discard', or 'rollover', but got %s"
                      % (value,))


class Sampler(object):
    """Base class: ``__iter__`` yields indices, ``__len__`` counts them."""

    def __iter__(self):
        raise NotImplementedError

    def __len__(self):
        raise NotImplementedError


class SequentialSampler(Sampler):
    """``start, start+1, ..., start+length-1``.

    >>> list(SequentialSampler(3, start=2))
    [2, 3, 4]
    """

    def __init__(self, length, start=0):
        self._length = length
        self._start = start

    def __iter__(self):
        return iter(range(self._start, self._start + self._length))

    def __len__(self):
        return self._length


class RandomSampler(Sampler):
    """A fresh random permutation of ``range(length)`` per pass (NumPy's global RNG, as
    MXNet)."""

    def __init__(self, length):
        self._length = length

    def __iter__(self):
        indices = np.arange(self._length)
        np.random.shuffle(indices)
        return iter(indices)

    def __len__(self):
        return self._length


class FilterSampler(Sampler):
    """The indices of the samples of ``dataset`` for which ``fn(sample)`` is true."""

    def __init__(self, fn, dataset):
        self._fn = fn
        self._dataset = dataset
        self._indices = [i for i in range(len(dataset)) if fn(dataset[i])]

    def __iter__(self):
        return iter(self._indices)

    def __len__(self):
        return len(self._indices)


class IntervalSampler(Sampler):
    """Every ``interval``-th index of ``range(length)``; with ``rollover`` (default) it then
    starts again from 1, 2, ... until every index was visited (``mx.gluon.contrib.data``).

    >>> list(IntervalSampler(7, 3))
    [0, 3, 6, 1, 4, 2, 5]
    """

    def __init__(self, length, interval, rollover=True):
        assert interval <= length, \
            "Interval %d must be smaller than or equal to length %d" % (interval, length)
        self._length = length
        self._interval = interval
        self._rollover = rollover

    def __iter__(self):
        for start in range(self._interval if self._rollover else 1):
            for j in range(start, self._length, self._interval):
                yield j

    def __len__(self):
        return self._length


class SplitSampler(Sampler):
    """The ``part_index``-th of ``num_parts`` equal contiguous parts of ``range(length)``,
    for data-parallel training (``SplitSampler(len(dataset), kv.num_workers, kv.rank)``;
    the sampler of MXNet's distributed-training examples, made part of agjit's
    ``gluon.data``).  Each part has ``length // num_parts`` indices (the remainder is
    dropped so that all workers run the same number of batches); with ``shuffle`` (the
    examples' behaviour, default) they come in a new random order (NumPy's global
    generator) every epoch, else in order.

    >>> list(SplitSampler(10, num_parts=3, part_index=1, shuffle=False))
    [3, 4, 5]
    """

    def __init__(self, length, num_parts=1, part_index=0, shuffle=True):
        if not (isinstance(num_parts, (int, np.integer)) and num_parts >= 1
                and isinstance(part_index, (int, np.integer)) and 0 <= part_index < num_parts):
            raise ValueError("SplitSampler: part_index must be in [0, num_parts) and "
                             "num_parts >= 1, got part_index=%r, num_parts=%r"
                             % (part_index, num_parts))
        self._part_len = int(length) // int(num_parts)
        self._start = self._part_len * int(part_index)
        self._shuffle = shuffle

    def __iter__(self):
        idx = np.arange(self._start, self._start + self._part_len)
        if self._shuffle:
            idx = np.random.permutation(idx)
        return iter(idx.tolist())

    def __len__(self):
        return self._part_len


class BatchSampler(Sampler):
    """Groups the indices of ``sampler`` into lists of ``batch_size``.

    ``last_batch``: ``'keep'`` yields the short final batch, ``'discard'`` drops it,
    ``'rollover'`` carries its indices to the front of the next pass.

    >>> list(BatchSampler(SequentialSampler(5), 2, 'keep'))
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler, batch_size, last_batch="keep"):
        self._sampler = sampler
        self._batch_size = batch_size
        self._last_batch = last_batch
        self._prev = []

    def __iter__(self):
        batch, self._prev = self._prev, []
        for i in self._sampler:
            batch.append(i)
            if len(batch) == self._batch_size:
                yield batch
                batch = []
        if batch:
            if self._last_batch == "keep":
                yield batch
            elif self._last_batch == "discard":
                return
            elif self._last_batch == "rollover":
                self._prev = batch
            else:
                raise _bad_last_batch(self._last_batch)

    def __len__(self):
        if self._last_batch == "keep":
            return (len(self._sampler) + self._batch_size - 1) // self._batch_size
        if self._last_batch == "discard":
            return len(self._sampler) // self._batch_size
        if self._last_batch == "rollover":
            return (len(self._prev) + len(self._sampler)) // self._batch_size
        raise _bad_last_batch(self._last_batch)
