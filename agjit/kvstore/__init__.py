"""``mx.kv`` / ``mx.kvstore``: key-value stores for data-parallel training.

``mx.kv.create('local')`` / ``'device'`` sum in one process; ``'dist_sync'``,
``'dist_device_sync'`` and ``'horovod'`` allreduce over MPI (mpi4py + Open MPI) between the
processes that ``agjit launch -n N script.py`` (or ``mpirun -np N python script.py``)
starts.  See :mod:`agjit.kvstore.kvstore` (notes *kv-semantics*, *kv-dist*) and
:mod:`agjit.kvstore._mpi` (notes *kv-buckets*, *kv-faults*).  Importing this package does
not import mpi4py (that initialises MPI); creating a distributed store does.
"""
from .base import KVStoreBase, create  # noqa: F401
from .kvstore import KVStore, DistKVStore  # noqa: F401
from . import base, kvstore  # noqa: F401

__all__ = ["KVStoreBase", "KVStore", "DistKVStore", "create"]
