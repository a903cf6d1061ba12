"""The MPI layer of agjit's distributed KVStore (mpi4py over Open MPI).

Note: kv-faults
    Every collective is non-blocking (``Iallreduce`` / ``Ibcast``) and waited on by polling
    (:meth:`Comm.wait`), so a rank never blocks inside MPI where nothing can stop it.  A
    wait ends with an MXNetError, never a hang, when

    * another rank said goodbye before joining this collective: every rank counts the
      collectives it starts (the same sequence on every rank, the program being SPMD) and,
      on leaving -- normal exit, ``sys.exit``, an uncaught exception -- sends every other rank
      a small message on a private communicator with that count (and the exception, if
      any).  A waiter whose collective number is above a leaver's count knows the leaver
      will never join and fails at once, naming the rank and its error;
    * ``AGJIT_KV_TIMEOUT`` seconds (default 600) pass: a rank that hangs or was lost
      without a word.

    An uncaught exception on a rank prints its traceback, sends the goodbye and calls
    ``MPI_Abort``, so ``mpirun`` stops every rank (without it Open MPI's ``MPI_Finalize``
    waits for the other ranks, which wait in their collective: a deadlock).  A rank killed
    by a signal is seen by ``mpirun``, which sends SIGTERM to the others; a rank that gets
    SIGTERM while agjit's handler is installed (only when the program had none) prints one
    line saying why, with the dead rank's goodbye if one arrived, and exits with 143.

Note: kv-buckets
    :class:`Reducer` allreduces a list of arrays in *buckets* of at most ``bucket_bytes``
    (``AGJIT_KV_BUCKET_BYTES``, default :data:`DEFAULT_BUCKET_BYTES`, measured with
    ``benchmarks/allreduce.py``).  Arrays of one dtype are packed in order into a flat
    buffer (kept between calls for the same layout); a bucket's ``Iallreduce`` starts as
    soon as it is packed, so packing the next bucket overlaps it; results are copied back
    into the arrays themselves (the ``.grad`` buffers).  A bucket that is one contiguous
    array of a type MPI sums natively is reduced in place without packing.  With
    ``fp16=True`` float32 arrays travel as float16 (half the bytes; sums rounded to
    float16).  float16 has no MPI type, so it is reduced with a user-defined MPI operation
    over 16-bit words.
"""
import atexit
import json
import os
import signal
import sys
import time

import numpy as np

from symbol.base import MXNetError

__all__ = ["Comm", "Reducer", "get_comm", "mpi_available", "launched_under_mpi",
           "DEFAULT_BUCKET_BYTES"]

# measured with benchmarks/allreduce.py on the 2-core machine (see README "Distributed
# training"): throughput is flat from 1 MiB up, and smaller buckets start sooner
DEFAULT_BUCKET_BYTES = 4 << 20
DEFAULT_TIMEOUT = 600.0
_BYE_TAG = 7
_BYE_BYTES = 2048

_ENV_SIZE = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS",
             "SLURM_NTASKS")


def launched_under_mpi():
    """The world size an MPI launcher announced in the environment (0 when none)."""
    for k in _ENV_SIZE[:3]:
        v = os.environ.get(k)
        if v and v.isdigit():
            return int(v)
    if os.environ.get("PMIX_RANK") is not None or os.environ.get("PMI_RANK") is not None:
        return 2        # launched, size unknown: treat as distributed
    return 0


def mpi_available():
    """Whether ``mpi4py`` can be imported (without initialising MPI)."""
    import importlib.util
    return importlib.util.find_spec("mpi4py") is not None


def _import_mpi(what):
    try:
        import mpi4py
        mpi4py.rc.threads = True
        from mpi4py import MPI
    except ImportError as e:
        raise MXNetError(
            "%s needs MPI: install Open MPI (Debian: apt-get install openmpi-bin libopenmpi-dev) "
            "and mpi4py (pip install 'agjit[dist]'), then start the ranks with "
            "`agjit launch -n N script.py` or `mpirun -np N python script.py` (%s)" % (what, e)) \
            from None
    return MPI


def _env_float(name, default):
    v = os.environ.get(name)
    if v is None or v == "":
        return default
    try:
        return float(v)
    except ValueError:
        raise MXNetError("%s must be a number of seconds, got %r" % (name, v)) from None


class Comm(object):
    """One process-wide duplicate of ``MPI.COMM_WORLD`` for the KVStore's collectives, the
    goodbye channel and the fault hooks (note *kv-faults*)."""

    def __init__(self, what="kvstore"):
        MPI = _import_mpi(what)
        self.MPI = MPI
        world = MPI.COMM_WORLD
        world.Set_errhandler(MPI.ERRORS_RETURN)
        self.rank = world.Get_rank()
        self.size = world.Get_size()
        self.timeout = _env_float("AGJIT_KV_TIMEOUT", DEFAULT_TIMEOUT)
        self.seq = 0                # collectives started by this rank
        self.left = {}              # rank -> goodbye dict
        self.broken = None
        self.comm = self._dup(world)
        self.ctl = self._dup(world)
        self._bye_buf = bytearray(_BYE_BYTES)
        self._bye_req = self.ctl.Irecv([self._bye_buf, MPI.BYTE], source=MPI.ANY_SOURCE,
                                       tag=_BYE_TAG)
        self._said_bye = False
        self._half_op = None
        self._install_hooks()

    # -- set-up -------------------------------------------------------------------------------
    def _dup(self, world):
        # Idup so that a rank which never creates a store is a timeout, not a hang
        try:
            comm, req = world.Idup()
        except (AttributeError, NotImplementedError):   # pragma: no cover - MPI-2
            return world.Dup()
        t0 = time.monotonic()
        while not req.Test():
            if time.monotonic() - t0 > self.timeout:
                raise MXNetError("kvstore: rank %d of %d: the other ranks did not create a "
                                 "distributed kvstore within %g s (AGJIT_KV_TIMEOUT)"
                                 % (self.rank, self.size, self.timeout))
            time.sleep(0.0005)
        comm.Set_errhandler(self.MPI.ERRORS_RETURN)
        return comm

    def _install_hooks(self):
        prev = sys.excepthook

        def excepthook(etype, value, tb):
            if self.size > 1:
                err = "%s: %s" % (etype.__name__, str(value).splitlines()[0][:300]
                                  if str(value) else "")
                self.say_bye(err)
            try:
                prev(etype, value, tb)
            finally:
                if self.size > 1:
                    sys.stderr.write("agjit kvstore: rank %d raised %s; aborting the MPI job "
                                     "so that the other ranks stop\n" % (self.rank, etype.__name__))
                    sys.stderr.flush()
                    sys.stdout.flush()
                    time.sleep(0.2)          # let the others report the goodbye first
                    self.MPI.COMM_WORLD.Abort(1)

        sys.excepthook = excepthook
        atexit.register(self._at_exit)
        if self.size > 1:
            try:
                if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
                    signal.signal(signal.SIGTERM, self._on_sigterm)
            except ValueError:      # not the main thread
                pass

    def _on_sigterm(self, signum, frame):
        self._poll_bye()
        why = self._bye_text() or "another rank failed or the job was cancelled"
        try:
            sys.stdout.flush()
            sys.stderr.write("agjit kvstore: rank %d: stopped by SIGTERM from the MPI launcher "
                             "(%s)\n" % (self.rank, why))
            sys.stderr.flush()
        finally:
            os._exit(128 + signal.SIGTERM)

    def _at_exit(self):
        self.say_bye(None)
        try:
            if not self._bye_req.Test():
                self._bye_req.Cancel()
                self._bye_req.Wait()
        except Exception:  # noqa: BLE001 - leaving anyway
            pass

    # -- goodbyes -------------------------------------------------------------------------------
    def say_bye(self, error):
        """Tell every other rank that this one leaves after ``self.seq`` collectives."""
        if self._said_bye or self.size == 1:
            return
        self._said_bye = True
        msg = json.dumps({"rank": self.rank, "started": self.seq, "error": error})
        data = msg.encode("utf-8")[:_BYE_BYTES]
        reqs = []
        try:
            for r in range(self.size):
                if r != self.rank:
                    reqs.append(self.ctl.Isend([data, self.MPI.BYTE], dest=r, tag=_BYE_TAG))
            t0 = time.monotonic()
            while reqs and not self.MPI.Request.Testall(reqs):
                if time.monotonic() - t0 > 2.0:
                    break
                time.sleep(0.001)
        except Exception:  # noqa: BLE001 - best effort while leaving
            pass

    def _poll_bye(self):
        MPI = self.MPI
        try:
            while True:
                status = MPI.Status()
                if not self._bye_req.Test(status):
                    return
                n = status.Get_count(MPI.BYTE)
                try:
                    msg = json.loads(bytes(self._bye_buf[:n]).decode("utf-8"))
                    self.left[int(msg["rank"])] = msg
                except (ValueError, KeyError, TypeError):
                    self.left[status.Get_source()] = {"rank": status.Get_source(),
                                                      "started": -1, "error": None}
                self._bye_req = self.ctl.Irecv([self._bye_buf, MPI.BYTE],
                                               source=MPI.ANY_SOURCE, tag=_BYE_TAG)
        except MPI.Exception:
            return

    def _bye_text(self):
        parts = []
        for r in sorted(self.left):
            m = self.left[r]
            if m.get("error"):
                parts.append("rank %d failed: %s" % (r, m["error"]))
            else:
                parts.append("rank %d exited after %d collectives" % (r, m.get("started", -1)))
        return "; ".join(parts)

    # -- collectives ----------------------------------------------------------------------------
    def _check(self):
        if self.broken:
            raise MXNetError("kvstore: rank %d: the distributed kvstore is unusable after an "
                             "earlier failure (%s)" % (self.rank, self.broken))

    def start(self, fn, *args, **kwargs):
        """Start a non-blocking collective ``fn`` of the communicator; returns (req, seq)."""
        self._check()
        self.seq += 1
        try:
            return fn(*args, **kwargs), self.seq
        except self.MPI.Exception as e:
            self.broken = "MPI error: %s" % e
            raise MXNetError("kvstore: rank %d: MPI failed to start a collective: %s"
                             % (self.rank, e)) from None

    def wait(self, req, seq, what):
        """Wait for ``req`` (collective number ``seq``) by polling: MXNetError when a rank
        that left will never join or after the timeout (note *kv-faults*)."""
        MPI = self.MPI
        try:
            if req.Test():
                return
            t0 = time.monotonic()
            spin_end = t0 + 0.002
            n = 0
            while True:
                if req.Test():
                    return
                n += 1
                now = time.monotonic()
                if n % 64 == 0 or now > spin_end:
                    self._poll_bye()
                    lost = [r for r, m in self.left.items() if m.get("started", -1) < seq]
                    if lost:
                        self.broken = self._bye_text()
                        raise MXNetError(
                            "kvstore: rank %d: %s waits for rank(s) %s, which left the job (%s)"
                            % (self.rank, what, ", ".join(map(str, sorted(lost))),
                               self._bye_text()))
                    if now - t0 > self.timeout:
                        self.broken = "timeout"
                        raise MXNetError(
                            "kvstore: rank %d: %s did not complete within %g s "
                            "(AGJIT_KV_TIMEOUT): another rank died, hangs or runs different "
                            "collectives" % (self.rank, what, self.timeout))
                if now > spin_end:
                    time.sleep(0.0002 if now - t0 < 0.05 else 0.001)
        except MPI.Exception as e:
            self.broken = "MPI error: %s" % e
            raise MXNetError("kvstore: rank %d: %s failed in MPI: %s"
                             % (self.rank, what, e)) from None

    def allreduce(self, buf, what="allreduce", op=None):
        """Sum ``buf`` (contiguous NumPy array) over all ranks in place."""
        if self.size == 1:
            return
        req, seq = self.start_allreduce(buf, op)
        self.wait(req, seq, what)

    def start_allreduce(self, buf, op=None):
        MPI = self.MPI
        if buf.dtype == np.float16:
            return self.start(self.comm.Iallreduce, MPI.IN_PLACE,
                              [buf.view(np.uint16), MPI.UINT16_T], op=self.half_sum())
        return self.start(self.comm.Iallreduce, MPI.IN_PLACE, buf, op=op or MPI.SUM)

    def bcast(self, buf, root=0, what="broadcast"):
        if self.size == 1:
            return
        MPI = self.MPI
        if buf.dtype == np.float16:
            spec = [buf.view(np.uint16), MPI.UINT16_T]
        else:
            spec = buf
        req, seq = self.start(self.comm.Ibcast, spec, root=root)
        self.wait(req, seq, what)

    def barrier(self, what="barrier"):
        if self.size == 1:
            return
        req, seq = self.start(self.comm.Ibarrier)
        self.wait(req, seq, what)

    def check_same(self, text, what):
        """MXNetError unless every rank passes the same ``text`` (a signature)."""
        if self.size == 1:
            return
        import hashlib
        h = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:7], "little")
        v = np.array([h, -h], dtype=np.int64)
        self.allreduce(v, what, op=self.MPI.MAX)
        if v[0] != -v[1]:
            raise MXNetError("kvstore: rank %d: %s differs between ranks (every rank must "
                             "use the same keys, shapes and dtypes in the same order); this "
                             "rank has %s" % (self.rank, what, text[:400]))

    def half_sum(self):
        if self._half_op is None:
            def _add(inbuf, inoutbuf, datatype):
                a = np.frombuffer(inbuf, dtype=np.float16)
                b = np.frombuffer(inoutbuf, dtype=np.float16)
                np.add(b, a, out=b)
            self._half_op = self.MPI.Op.Create(_add, commute=True)
        return self._half_op


_COMM = None


def get_comm(what="kvstore"):
    """The process-wide :class:`Comm` (created on first use)."""
    global _COMM
    if _COMM is None:
        _COMM = Comm(what)
    return _COMM


_NATIVE = {np.dtype(t) for t in ("float32", "float64", "int32", "int64", "int8", "uint8")}


class Reducer(object):
    """Bucketed in-place allreduce of lists of NumPy arrays (note *kv-buckets*)."""

    def __init__(self, comm, bucket_bytes=None, fp16=False):
        self.comm = comm
        if bucket_bytes is None:
            bucket_bytes = int(_env_float("AGJIT_KV_BUCKET_BYTES", DEFAULT_BUCKET_BYTES))
        self.bucket_bytes = max(1, int(bucket_bytes))
        self.fp16 = bool(fp16)
        self._buffers = {}

    def _plan(self, arrays):
        """Buckets: lists of indices into ``arrays`` of one dtype, in order."""
        buckets = []
        open_ = {}          # wire dtype -> [index list, bytes] of the bucket being filled
        for i, a in enumerate(arrays):
            wire = self._wire(a.dtype)
            nbytes = a.size * wire.itemsize
            cur = open_.get(wire)
            if cur is None or (cur[1] and cur[1] + nbytes > self.bucket_bytes):
                cur = open_[wire] = [[], 0]
                buckets.append((wire, cur[0]))
            cur[0].append(i)
            cur[1] += nbytes
        return buckets

    def _wire(self, dtype):
        dtype = np.dtype(dtype)
        if self.fp16 and dtype == np.float32:
            return np.dtype(np.float16)
        return dtype

    def allreduce(self, arrays, what="allreduce"):
        """Sum every array of ``arrays`` (NumPy, any layout) over the ranks, in place."""
        comm = self.comm
        if comm.size == 1 or not arrays:
            return
        plan = self._plan(arrays)
        pending = []
        nb = len(plan)
        for k, (wire, idx) in enumerate(plan):
            if len(idx) == 1:
                a = arrays[idx[0]]
                if a.dtype == wire and a.flags.c_contiguous and a.flags.writeable and \
                        (wire in _NATIVE or wire == np.float16):
                    req, seq = comm.start_allreduce(a.reshape(-1))
                    pending.append((req, seq, None, idx, k))
                    continue
            sizes = tuple(arrays[i].size for i in idx)
            key = (wire.str, sizes)
            buf = self._buffers.get(key)
            if buf is None:
                if len(self._buffers) > 64:
                    self._buffers.clear()
                buf = self._buffers[key] = np.empty(sum(sizes), dtype=wire)
            off = 0
            for i, n in zip(idx, sizes):
                buf[off:off + n] = arrays[i].reshape(-1)
                off += n
            req, seq = comm.start_allreduce(buf)
            pending.append((req, seq, buf, idx, k))
        for req, seq, buf, idx, k in pending:
            comm.wait(req, seq, "%s (bucket %d of %d, %d arrays)" % (what, k + 1, nb, len(idx)))
            if buf is None:
                continue
            off = 0
            for i in idx:
                a = arrays[i]
                n = a.size
                np.copyto(a, buf[off:off + n].reshape(a.shape), casting="unsafe")
                off += n

    def broadcast(self, arrays, root=0, what="broadcast"):
        """Overwrite every array with rank ``root``'s (bucketed like :meth:`allreduce`,
        never compressed)."""
        comm = self.comm
        if comm.size == 1 or not arrays:
            return
        fp16, self.fp16 = self.fp16, False
        try:
            plan = self._plan(arrays)
        finally:
            self.fp16 = fp16
        for k, (wire, idx) in enumerate(plan):
            sizes = [arrays[i].size for i in idx]
            buf = np.empty(sum(sizes), dtype=wire)
            off = 0
            for i, n in zip(idx, sizes):
                buf[off:off + n] = arrays[i].reshape(-1)
                off += n
            comm.bcast(buf, root, "%s (bucket %d of %d)" % (what, k + 1, len(plan)))
            off = 0
            for i, n in zip(idx, sizes):
                a = arrays[i]
                np.copyto(a, buf[off:off + n].reshape(a.shape))
                off += n
