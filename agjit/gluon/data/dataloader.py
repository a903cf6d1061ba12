"""``DataLoader``: mini-batches from a Dataset, in this process or in worker processes
(MXNet 1.9.1's ``gluon.data.dataloader``).

Note: dataloader-workers
    With ``num_workers > 0`` a ``multiprocessing.Pool`` is made when the loader is built (the
    ``fork`` start method where the platform has it, so the dataset and ``batchify_fn`` --
    lambdas included -- reach the workers without pickling).  Each batch of indices is one
    task; up to ``prefetch`` (default ``2 * num_workers``) tasks are in flight and results are
    handed out in sampler order, so the batches equal those of ``num_workers=0``.  Workers
    send NumPy arrays back (agjit arrays live in ordinary process memory, there is no
    ``cpu_shared`` context) and the parent wraps them as NDArrays again.  An exception in a
    worker is re-raised in the parent -- the same exception when it can be pickled, else a
    RuntimeError naming its type -- chained (``raise ... from``) to a
    :class:`WorkerTraceback` carrying the worker's formatted traceback.  The pool is
    terminated when the loader is collected and at interpreter exit (``weakref.finalize``),
    so a script never hangs on exit.  ``thread_pool=True`` uses threads instead.
    ``pin_memory``/``pin_device_id`` are accepted and change nothing (CPU only).
"""
import multiprocessing
import multiprocessing.pool
import pickle
import traceback
import weakref

import numpy as np

from ... import ndarray as nd
from . import sampler as _sampler

__all__ = ["DataLoader", "default_batchify_fn", "default_mp_batchify_fn", "WorkerTraceback"]


def default_batchify_fn(data):
    """Collate a list of samples: NDArrays are stacked (``nd.stack``), tuples become a list of
    batched fields, anything else goes through ``np.asarray`` and becomes an NDArray of that
    NumPy dtype (Python ints -> int64, floats -> float64, as MXNet).

    >>> default_batchify_fn([(mx.nd.ones(2), 1), (mx.nd.zeros(2), 2)])[1].dtype
    <class 'numpy.int64'>
    """
    if isinstance(data[0], nd.NDArray):
        return nd.stack(*data)
    if isinstance(data[0], tuple):
        return [default_batchify_fn(list(field)) for field in zip(*data)]
    data = np.asarray(data)
    return nd.array(data, dtype=data.dtype)


# MXNet's multiprocessing variant stacks into shared memory; here the result is the same batch
default_mp_batchify_fn = default_batchify_fn


def _as_in_context(data, ctx):
    if isinstance(data, nd.NDArray):
        return data.as_in_context(ctx)
    if isinstance(data, (list, tuple)):
        return [_as_in_context(d, ctx) for d in data]
    return data


# ---------------------------------------------------------------------------------------
# worker side (see the note dataloader-workers)
# ---------------------------------------------------------------------------------------
class _Boxed(object):
    """An NDArray travelling between processes as its NumPy buffer."""
    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getstate__(self):
        return self.array

    def __setstate__(self, state):
        self.array = state


def _pack(obj):
    if isinstance(obj, nd.NDArray):
        return _Boxed(obj.asnumpy())
    if type(obj) in (list, tuple):
        return type(obj)(_pack(o) for o in obj)
    if type(obj) is dict:
        return {k: _pack(v) for k, v in obj.items()}
    return obj


def _unpack(obj):
    if isinstance(obj, _Boxed):
        return nd.array(obj.array, dtype=obj.array.dtype)
    if type(obj) in (list, tuple):
        return type(obj)(_unpack(o) for o in obj)
    if type(obj) is dict:
        return {k: _unpack(v) for k, v in obj.items()}
    return obj


class WorkerTraceback(Exception):
    """The formatted traceback of an exception raised in a DataLoader worker (attached as the
    ``__cause__`` of the exception re-raised in the parent)."""

    def __str__(self):
        return "\n\nexception in a DataLoader worker:\n\n" + self.args[0]


_worker_state = {}


def _worker_initializer(dataset, batchify_fn):
    _worker_state["dataset"] = dataset
    _worker_state["batchify_fn"] = batchify_fn


def _failure(e):
    tb = traceback.format_exc()
    try:
        payload = pickle.dumps(e)
        pickle.loads(payload)
    except Exception:           # an exception that does not survive pickling
        payload = None
    return False, (payload, type(e).__name__, str(e), tb)


def _worker_fn(samples):
    try:
        dataset = _worker_state["dataset"]
        batch = _worker_state["batchify_fn"]([dataset[i] for i in samples])
        return True, _pack(batch)
    except Exception as e:
        return _failure(e)


def _thread_worker_fn(samples, batchify_fn, dataset):
    try:
        return True, batchify_fn([dataset[i] for i in samples])
    except Exception as e:
        return False, e


def _reraise(payload):
    blob, name, msg, tb = payload
    exc = None
    if blob is not None:
        try:
            exc = pickle.loads(blob)
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = RuntimeError("%s: %s" % (name, msg))
    raise exc from WorkerTraceback(tb)


class _MultiWorkerIter(object):
    """Hands out the workers' batches in sampler order, keeping ``prefetch`` tasks queued."""

    def __init__(self, pool, batchify_fn, batch_sampler, prefetch, timeout, threaded, dataset):
        self._pool = pool
        self._batchify_fn = batchify_fn
        self._iter = iter(batch_sampler)
        self._len = len(batch_sampler)
        self._timeout = timeout
        self._threaded = threaded
        self._dataset = dataset
        self._buffer = {}
        self._rcvd_idx = 0
        self._sent_idx = 0
        for _ in range(prefetch):
            self._push_next()

    def __len__(self):
        return self._len

    def _push_next(self):
        r = next(self._iter, None)
        if r is None:
            return
        if self._threaded:
            res = self._pool.apply_async(_thread_worker_fn, (r, self._batchify_fn, self._dataset))
        else:
            res = self._pool.apply_async(_worker_fn, (list(r),))
        self._buffer[self._sent_idx] = res
        self._sent_idx += 1

    def __next__(self):
        self._push_next()
        if self._rcvd_idx == self._sent_idx:
            raise StopIteration
        res = self._buffer.pop(self._rcvd_idx)
        try:
            ok, payload = res.get(self._timeout)
        except multiprocessing.TimeoutError:
            raise multiprocessing.TimeoutError(
                "DataLoader: a worker gave no batch within timeout=%s seconds (a slow dataset or "
                "transform? raise timeout=)" % (self._timeout,)) from None
        self._rcvd_idx += 1
        if ok:
            return payload if self._threaded else _unpack(payload)
        if self._threaded:
            raise payload
        _reraise(payload)

    next = __next__

    def __iter__(self):
        return self


def _make_pool(num_workers, dataset, batchify_fn):
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ctx.Pool(num_workers, initializer=_worker_initializer, initargs=(dataset, batchify_fn))


class DataLoader(object):
    """Loads mini-batches from ``dataset``.

    Parameters
    ----------
    dataset : Dataset
    batch_size : int
        Required unless ``batch_sampler`` is given.
    shuffle : bool
        A fresh random order per epoch (not together with ``sampler``).
    sampler : Sampler
        Order of the samples.
    last_batch : {'keep', 'discard', 'rollover'}
        What to do with a short final batch (default 'keep').
    batch_sampler : Sampler
        Yields lists of indices; excludes batch_size, shuffle, sampler and last_batch.
    batchify_fn : callable
        Turns a list of samples into a batch (default :func:`default_batchify_fn`).
    num_workers : int
        Worker processes (0: load in this process); see the note *dataloader-workers*.
    pin_memory, pin_device_id : accepted, no effect (CPU only).
    prefetch : int
        Batches in flight with workers (default ``2 * num_workers``).
    thread_pool : bool
        Use threads instead of processes.
    timeout : float
        Seconds to wait for one batch from a worker.
    auto_reload : bool
        Start the next epoch's prefetching as soon as one ends.

    >>> loader = DataLoader(ArrayDataset(mx.nd.zeros((5, 2))), batch_size=2)
    >>> [b.shape for b in loader]
    [(2, 2), (2, 2), (1, 2)]
    """

    def __init__(self, dataset, batch_size=None, shuffle=False, sampler=None,
                 last_batch=None, batch_sampler=None, batchify_fn=None,
                 num_workers=0, pin_memory=False, pin_device_id=0,
                 prefetch=None, thread_pool=False, timeout=120, auto_reload=False):
        self._dataset = dataset
        self._pin_memory = pin_memory
        self._pin_device_id = pin_device_id
        self._thread_pool = thread_pool
        self._timeout = timeout
        assert timeout > 0, "timeout must be positive, given {}".format(timeout)
        if batch_sampler is None:
            if batch_size is None:
                raise ValueError("batch_size must be specified unless batch_sampler is specified")
            if sampler is None:
                if shuffle:
                    sampler = _sampler.RandomSampler(len(dataset))
                else:
                    sampler = _sampler.SequentialSampler(len(dataset))
            elif shuffle:
                raise ValueError("shuffle must not be specified if sampler is specified")
            batch_sampler = _sampler.BatchSampler(sampler, batch_size,
                                                  last_batch if last_batch else "keep")
        elif batch_size is not None or shuffle or sampler is not None or last_batch is not None:
            raise ValueError("batch_size, shuffle, sampler and last_batch must not be specified "
                             "if batch_sampler is specified.")
        self._batch_sampler = batch_sampler
        self._num_workers = num_workers if num_workers >= 0 else 0
        self._prefetch = max(0, int(prefetch) if prefetch is not None else 2 * self._num_workers)
        if batchify_fn is None:
            batchify_fn = default_mp_batchify_fn if num_workers > 0 else default_batchify_fn
        self._batchify_fn = batchify_fn
        self._worker_pool = None
        if self._num_workers > 0:
            if self._thread_pool:
                self._worker_pool = multiprocessing.pool.ThreadPool(self._num_workers)
            else:
                self._worker_pool = _make_pool(self._num_workers, dataset, batchify_fn)
            self._finalizer = weakref.finalize(self, self._worker_pool.terminate)
        self.auto_reload = auto_reload
        self._iter = None
        if self.auto_reload:
            self.refresh()

    def __iter__(self):
        if self._iter is None:
            self.refresh()
        t = self._iter
        self._iter = None       # one prefetching iterator is used once
        for item in t:
            yield item
        if self._iter is None and self.auto_reload:
            self.refresh()

    def _prefetch_iter(self):
        if self._num_workers == 0:
            def same_process_iter():
                for batch in self._batch_sampler:
                    yield self._batchify_fn([self._dataset[idx] for idx in batch])
            return same_process_iter()
        return _MultiWorkerIter(self._worker_pool, self._batchify_fn, self._batch_sampler,
                                self._prefetch, self._timeout, self._thread_pool, self._dataset)

    def __len__(self):
        return len(self._batch_sampler)

    def refresh(self):
        """Start a new epoch's iterator (and its prefetching)."""
        self._iter = self._prefetch_iter()

    def clean(self):
        """Drop the pending iterator."""
        self._iter = None

    def __del__(self):
        fin = getattr(self, "_finalizer", None)
        if fin is not None:
            fin()
