"""``mx.kv.KVStore`` (one process) and :class:`DistKVStore` (allreduce over MPI).

Note: kv-semantics
    MXNet 1.9.1's KVStore semantics, checked against real MXNet for 'local' / 'device':

    * keys are ints or strs (one kind per store: "Mixed key types are not allowed"), alone
      or in a list; a single key's value may be a list of arrays (the copies of one
      parameter on several devices) and a list of keys takes a list of such values;
    * ``init`` stores a copy of the value (a second ``init`` of a key is an error);
      ``push`` sums the arrays given for a key (and, in a distributed store, over all
      workers) and then either runs the updater -- ``set_optimizer`` or ``_set_updater``:
      ``updater(key, summed, stored)`` -- or replaces the stored value with the sum;
      ``pull`` copies the stored value into every ``out`` array (``out`` is required);
      ``pushpull`` is ``push`` then ``pull`` (into ``value`` when ``out`` is None);
      ``broadcast`` is ``init`` then ``pull``;
    * an unknown key, a shape that differs from the stored one, or a value that is not an
      NDArray is an MXNetError naming the key (MXNet reports some of these only later,
      asynchronously, or as AssertionError: the errors here are both).

    With ``set_optimizer`` one push of several keys is one fused optimizer step over
    them (``agjit.optimizer`` note *fused-optimizer-step*).

Note: kv-dist
    :class:`DistKVStore` ('dist_sync', 'dist_device_sync', 'horovod') keeps a replica of
    every value on every worker.  ``init`` broadcasts rank 0's values (so all workers start
    from the same parameters); ``push`` allreduces the local sums over the workers in
    buckets (``agjit.kvstore._mpi`` note *kv-buckets*) and every worker runs the same
    update on its replica, so ``pull`` needs no communication and every worker holds the
    same numbers -- the result of MXNet's ``dist_sync`` (gradients are summed over
    workers, not averaged: pass the global batch size to ``Trainer.step``; ``Module``
    multiplies by ``num_workers`` itself, as MXNet).  Faults end in an MXNetError on every
    rank, never a hang (``agjit.kvstore._mpi`` note *kv-faults*).  In a process that no MPI
    launcher started (no ``OMPI_COMM_WORLD_SIZE`` / ``PMI_SIZE`` / ``PMIX_RANK`` in the
    environment) the store has one worker, works as 'local' and does not initialise MPI;
    under a launcher without mpi4py it is an MXNetError saying what to install.
"""
import numpy as np

from symbol.base import MXNetError, atomic_write
from ..ndarray.ndarray import NDArray, _wrap
from .base import KVStoreBase

__all__ = ["KVStore", "DistKVStore"]


class _KVError(MXNetError, AssertionError):
    """A KVStore argument error (MXNet raises AssertionError for these)."""


def _key_of(k):
    if isinstance(k, (bool, np.bool_)):
        raise _KVError("unexpected type for keys: %s" % type(k))
    if isinstance(k, (int, np.integer)):
        return int(k)
    if isinstance(k, str):
        return k
    raise _KVError("unexpected type for keys: %s" % type(k))


def _as_list(what, key, value):
    if isinstance(value, NDArray):
        return [value]
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, NDArray) for v in value):
        return list(value)
    raise _KVError("%s: the value of key %r must be an NDArray or a list of NDArrays, got %s"
                   % (what, key, type(value).__name__ if not isinstance(value, (list, tuple))
                      else "a list of " + ", ".join(sorted({type(v).__name__ for v in value}))
                      if value else "an empty list"))


def _pairs(what, key, value):
    """[(key, [NDArray, ...]), ...] of a call's keys and values."""
    if isinstance(key, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(key):
            raise _KVError("%s: %d keys need a list of %d values, got %s"
                           % (what, len(key), len(key),
                              "%d values" % len(value) if isinstance(value, (list, tuple))
                              else type(value).__name__))
        return [(_key_of(k), _as_list(what, k, v)) for k, v in zip(key, value)]
    return [(_key_of(key), _as_list(what, key, value))]


class KVStore(KVStoreBase):
    """A one-process key-value store (``mx.kv.create('local')`` / ``'device'``; note
    *kv-semantics*).

    >>> kv = mx.kv.create('local')
    >>> kv.init(3, mx.nd.ones((2, 3)))
    >>> kv.push(3, [mx.nd.ones((2, 3)) * 2, mx.nd.ones((2, 3)) * 3])
    >>> out = mx.nd.zeros((2, 3)); kv.pull(3, out=out); out.asnumpy()[0].tolist()
    [5.0, 5.0, 5.0]
    """

    def __init__(self, name='local'):
        self._type = name
        self._store = {}        # key -> NDArray (the stored value)
        self._recv = {}         # key -> NDArray (persistent buffer of the pushed sum)
        self._key_kind = None
        self._updater = None
        self._optimizer = None
        self._compression = None

    def __repr__(self):
        return "<%s %s rank %d of %d, %d keys>" % (type(self).__name__, self._type, self.rank,
                                                    self.num_workers, len(self._store))

    # -- properties ---------------------------------------------------------------------------
    @property
    def type(self):
        """The name the store was created with."""
        return self._type

    @property
    def rank(self):
        """This worker's rank (0 in one process)."""
        return 0

    @property
    def num_workers(self):
        """The number of workers (1 in one process)."""
        return 1

    # -- what a distributed store overrides -----------------------------------------------------
    def _reduce(self, arrays, what):
        """Sum NumPy ``arrays`` over the workers in place (nothing in one process)."""

    def _bcast(self, arrays, what):
        """Overwrite NumPy ``arrays`` with rank 0's (nothing in one process)."""

    def _check_same(self, text, what):
        """Fail unless every worker passes the same signature ``text``."""

    # -- keys ---------------------------------------------------------------------------------
    def _kind(self, keys):
        for k in keys:
            kind = str if isinstance(k, str) else int
            if self._key_kind is None:
                self._key_kind = kind
            elif self._key_kind is not kind:
                raise MXNetError("kvstore: key %r: Mixed key types are not allowed (this store "
                                 "uses %s keys)" % (k, self._key_kind.__name__))

    def _stored(self, what, key):
        v = self._store.get(key)
        if v is None:
            raise MXNetError("kvstore %s: key %r has not been inited" % (what, key))
        return v

    # -- the interface --------------------------------------------------------------------------
    def init(self, key, value):
        """Initialise ``key`` (or a list of keys) with a copy of ``value``; in a distributed
        store every worker gets rank 0's value."""
        pairs = _pairs("init", key, value)
        keys = [k for k, _ in pairs]
        self._kind(keys)
        seen = set()
        for k, vals in pairs:
            if k in self._store or k in seen or len(vals) > 1:
                raise MXNetError("kvstore init: duplicate init of key %r. Please double check "
                                 "if you called kv.init or kv.broadcast with this key multiple "
                                 "times" % (k,))
            seen.add(k)
        self._check_same(repr([(k, tuple(v[0].shape), str(v[0].dtype)) for k, v in pairs]),
                         "init of keys %s" % _fmt_keys(keys))
        new = [np.array(vals[0]._data, copy=True, order="C") for _, vals in pairs]
        self._bcast(new, "init of keys %s" % _fmt_keys(keys))
        for (k, _), a in zip(pairs, new):
            self._store[k] = _wrap(a)

    def push(self, key, value, priority=0):
        """Sum the values of each key (over the arrays given and the workers) and update the
        stored value: with the updater if one is set, else by replacing it."""
        pairs = _pairs("push", key, value)
        self._kind([k for k, _ in pairs])
        recvs = []
        for k, vals in pairs:
            stored = self._stored("push", k)
            r = self._recv.get(k)
            if r is None:
                r = self._recv[k] = _wrap(np.empty_like(stored._data))
            rb = r._data
            for j, v in enumerate(vals):
                if tuple(v.shape) != rb.shape:
                    raise MXNetError("kvstore push: key %r was inited with shape %s, pushed "
                                     "value %d has shape %s" % (k, rb.shape, j, tuple(v.shape)))
                if j == 0:
                    np.copyto(rb, v._data, casting="unsafe")
                else:
                    np.add(rb, v._data, out=rb, casting="unsafe")
            recvs.append(r)
        self._reduce_checked([k for k, _ in pairs], [r._data for r in recvs], "push")
        self._apply([k for k, _ in pairs], recvs)

    def _reduce_checked(self, keys, arrays, what):
        if self.num_workers > 1:
            sig = getattr(self, "_push_sigs", None)
            if sig is None:
                sig = self._push_sigs = set()
            key = tuple(keys)
            if key not in sig:
                self._check_same(repr([(k, a.shape, str(a.dtype)) for k, a in zip(keys, arrays)]),
                                 "%s of keys %s" % (what, _fmt_keys(keys)))
                if len(sig) > 256:
                    sig.clear()
                sig.add(key)
            self._reduce(arrays, "%s of keys %s" % (what, _fmt_keys(keys)))

    def _apply(self, keys, recvs):
        upd = self._updater
        if upd is None:
            for k, r in zip(keys, recvs):
                np.copyto(self._store[k]._data, r._data)
            return
        from ..optimizer import Updater
        if isinstance(upd, Updater):
            upd(list(keys), list(recvs), [self._store[k] for k in keys])
        else:
            for k, r in zip(keys, recvs):
                upd(k, r, self._store[k])

    def pull(self, key, out=None, priority=0, ignore_sparse=True):
        """Copy the stored value of each key into every array of ``out``."""
        if out is None:
            raise _KVError("kvstore pull: out is required (the arrays to copy the values "
                           "into)")
        pairs = _pairs("pull", key, out)
        self._kind([k for k, _ in pairs])
        for k, outs in pairs:
            src = self._stored("pull", k)._data
            for o in outs:
                if tuple(o.shape) != src.shape:
                    raise MXNetError("kvstore pull: key %r has shape %s, out has shape %s"
                                     % (k, src.shape, tuple(o.shape)))
                np.copyto(o._data, src, casting="unsafe")

    def pushpull(self, key, value, out=None, priority=0):
        """``push(key, value)`` then ``pull(key, out)`` -- into ``value`` when ``out`` is
        None."""
        self.push(key, value, priority)
        self.pull(key, value if out is None else out, priority)

    def broadcast(self, key, value, out, priority=0):
        """``init(key, value)`` (rank 0's value in a distributed store) then
        ``pull(key, out)``."""
        self.init(key, value)
        self.pull(key, out, priority)

    def row_sparse_pull(self, key, out=None, priority=0, row_ids=None):
        """Refused: agjit has no row_sparse storage."""
        raise MXNetError("kvstore row_sparse_pull: agjit has no row_sparse arrays (every "
                         "array is dense); use pull")

    def set_gradient_compression(self, compression_params):
        """``{'type': 'fp16'}`` sends float32 gradients as float16 in a distributed store;
        MXNet's ``'2bit'`` is accepted by a one-process store (nothing to send) and refused by
        a distributed one."""
        if not isinstance(compression_params, dict) or 'type' not in compression_params:
            raise _KVError("compression_params must be a dict with a 'type', got %r"
                           % (compression_params,))
        ctype = compression_params['type']
        if ctype not in ('2bit', 'fp16', 'none'):
            raise MXNetError("Unknown type for gradient compression %s" % (ctype,))
        self._compression = dict(compression_params)

    def set_optimizer(self, optimizer):
        """Update values on the store with ``optimizer`` (``update_on_kvstore``)."""
        from .. import optimizer as opt
        if not isinstance(optimizer, opt.Optimizer):
            raise _KVError("set_optimizer needs an Optimizer, got %s" % type(optimizer).__name__)
        self._optimizer = optimizer
        self._updater = opt.get_updater(optimizer)

    def _set_updater(self, updater):
        """Use ``updater(key, summed, stored)`` on every push."""
        self._updater = updater

    def is_capable(self, capability):
        """Whether the store can ``capability`` ('optimizer': update on the store)."""
        if str(capability).lower() == KVStoreBase.OPTIMIZER:
            return True
        raise ValueError('Unknown capability: {}'.format(capability))

    def save_optimizer_states(self, fname, dump_optimizer=False):
        """Write the updater's states (agjit's safe states format, atomically)."""
        from ..optimizer import Updater
        if not isinstance(self._updater, Updater):
            raise _KVError("Cannot save states for distributed training" if self._updater
                           is None else "save_optimizer_states needs the updater of "
                           "set_optimizer, not a custom one")
        atomic_write(fname, [self._updater.get_states(dump_optimizer)])

    def load_optimizer_states(self, fname):
        """Read what :meth:`save_optimizer_states` wrote."""
        from ..optimizer import Updater
        if not isinstance(self._updater, Updater):
            raise _KVError("Cannot load states for distributed training")
        with open(fname, 'rb') as f:
            self._updater.set_states(f.read())
        self._optimizer = self._updater.optimizer

    def _barrier(self):
        """Wait until every worker is here (nothing in one process)."""

    barrier = _barrier

    # -- agjit's fast path for Trainer / Module ------------------------------------------------
    def _allreduce_(self, keys, arrays):
        """Sum NDArrays ``arrays`` over the workers in place, bypassing the stored values
        (``Trainer.allreduce_grads`` with ``update_on_kvstore=False``)."""
        if self.num_workers > 1:
            self._reduce_checked(list(keys), [a._data for a in arrays], "allreduce")


def _fmt_keys(keys):
    if len(keys) <= 4:
        return "[%s]" % ", ".join(map(repr, keys))
    return "[%r, %r, ... %r] (%d keys)" % (keys[0], keys[1], keys[-1], len(keys))


class DistKVStore(KVStore):
    """The distributed store over MPI: 'dist_sync', 'dist_device_sync', 'horovod' (note
    *kv-dist*)."""

    def __init__(self, name='dist_sync'):
        super(DistKVStore, self).__init__(name)
        from . import _mpi
        self._comm = None
        self._reducer = None
        if _mpi.launched_under_mpi():
            self._comm = _mpi.get_comm("kvstore %r" % name)
            self._reducer = _mpi.Reducer(self._comm)

    @property
    def rank(self):
        return self._comm.rank if self._comm is not None else 0

    @property
    def num_workers(self):
        return self._comm.size if self._comm is not None else 1

    @property
    def bucket_bytes(self):
        """The allreduce bucket size in bytes (``AGJIT_KV_BUCKET_BYTES``)."""
        return self._reducer.bucket_bytes if self._reducer is not None else 0

    @bucket_bytes.setter
    def bucket_bytes(self, n):
        if self._reducer is not None:
            self._reducer.bucket_bytes = max(1, int(n))

    @property
    def timeout(self):
        """Seconds a collective may wait for the other workers (``AGJIT_KV_TIMEOUT``)."""
        return self._comm.timeout if self._comm is not None else None

    @timeout.setter
    def timeout(self, seconds):
        if self._comm is not None:
            self._comm.timeout = float(seconds)

    def _reduce(self, arrays, what):
        if self._reducer is not None:
            self._reducer.allreduce(arrays, "kvstore %s: %s" % (self._type, what))

    def _bcast(self, arrays, what):
        if self._reducer is not None:
            self._reducer.broadcast(arrays, 0, "kvstore %s: %s" % (self._type, what))

    def _check_same(self, text, what):
        if self._comm is not None:
            self._comm.check_same(text, "kvstore %s: %s" % (self._type, what))

    def set_gradient_compression(self, compression_params):
        super(DistKVStore, self).set_gradient_compression(compression_params)
        ctype = compression_params['type']
        if ctype == '2bit':
            raise MXNetError("kvstore %s: 2-bit gradient compression is not available in "
                             "agjit; use {'type': 'fp16'} (float16 on the wire)" % self._type)
        if self._reducer is not None:
            self._reducer.fp16 = ctype == 'fp16'

    def _barrier(self):
        if self._comm is not None:
            self._comm.barrier("kvstore %s: barrier" % self._type)

    barrier = _barrier
