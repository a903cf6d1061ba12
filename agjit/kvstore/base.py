"""``mx.kv.KVStoreBase`` and ``mx.kv.create``.

Note: kv-create
    ``create(name)`` follows MXNet 1.9.1: a name registered with ``KVStoreBase.register``
    gives that class; ``'local'``, ``'device'`` and any other name without ``dist`` give a
    one-process :class:`~agjit.kvstore.kvstore.KVStore` whose ``type`` is the name (MXNet's
    C++ factory treats unknown names as local too).  ``'dist_sync'``,
    ``'dist_device_sync'``, ``'dist_sync_device'`` and ``'horovod'`` give the MPI store
    (:class:`~agjit.kvstore.kvstore.DistKVStore`: synchronous allreduce, the sum over
    workers as MXNet's ``dist_sync``).  ``'dist_async'`` (a parameter server updating
    asynchronously) and ``'nccl'`` (GPUs) are refused with an MXNetError, and so is a name
    that is not a string (TypeError, as MXNet).
"""
from symbol.base import MXNetError
from ..base import register_class

__all__ = ["KVStoreBase", "create"]


class KVStoreBase(object):
    """The interface every KVStore has (MXNet's ``mx.kv.KVStoreBase``)."""

    OPTIMIZER = 'optimizer'
    kv_registry = {}

    def broadcast(self, key, value, out, priority=0):
        raise NotImplementedError()

    def pushpull(self, key, value, out=None, priority=0):
        raise NotImplementedError()

    def set_optimizer(self, optimizer):
        raise NotImplementedError()

    def save_optimizer_states(self, fname, dump_optimizer=False):
        raise NotImplementedError()

    def load_optimizer_states(self, fname):
        raise NotImplementedError()

    def is_capable(self, capability):
        raise NotImplementedError()

    @property
    def type(self):
        raise NotImplementedError()

    @property
    def rank(self):
        raise NotImplementedError()

    @property
    def num_workers(self):
        raise NotImplementedError()

    @staticmethod
    def register(klass):
        """Register a KVStore class under its lower-case class name (a decorator, as in
        MXNet); ``create(name)`` then returns ``klass()``."""
        return register_class(KVStoreBase.kv_registry, klass, "kvstore")


_DIST_NAMES = ("dist_sync", "dist_device_sync", "dist_sync_device", "horovod")


def create(name='local'):
    """Create a KVStore (note *kv-create*).

    >>> kv = mx.kv.create('local')
    >>> kv.type, kv.rank, kv.num_workers
    ('local', 0, 1)
    """
    if not isinstance(name, str):
        raise TypeError('name must be a string')
    from .kvstore import KVStore, DistKVStore
    lname = name.lower()
    if lname in KVStoreBase.kv_registry:
        return KVStoreBase.kv_registry[lname]()
    if 'async' in lname and 'dist' in lname:
        raise MXNetError("kvstore %r: asynchronous parameter-server training is not available "
                         "in agjit (no parameter server); use 'dist_sync' (synchronous "
                         "allreduce over MPI)" % name)
    if 'nccl' in lname:
        raise MXNetError("kvstore %r: agjit runs on the CPU only (no NCCL); use 'local', "
                         "'device' or 'dist_sync'" % name)
    if lname in _DIST_NAMES:
        return DistKVStore(name)
    if 'dist' in lname:
        raise MXNetError("kvstore %r is not known; the distributed kvstores are %s"
                         % (name, ", ".join(repr(n) for n in _DIST_NAMES)))
    return KVStore(name)
