"""Buffer plans and pools of a compiled graph (notes *buffer-plan*, *threads*), the parallel
switch, and the buffer swap of a step-mode backward."""
import os
import sys

import numpy as np

from ..ndarray.ndarray import _TRAIN, _PREDICT

__all__ = ["BufferPlans"]


class BufferPlans:
    """Mixin of :class:`agjit.compiler.program.CompiledGraph`: one buffer plan per kernel
    (``self.plans``), built under ``self._lock``, and the run of a kernel on a buffer set
    taken from the plan's pool."""

    # Note: buffer-plan
    #     A CompiledGraph has fixed shapes (one per traced signature or executor), so each
    #     kernel has one plan: the shape/dtype of every buffer slot, and a pool of free
    #     buffer sets.  A run takes a set from the pool (a new one when it is empty) and
    #     gives it back when nothing reads it any more: forward-only and backward kernels
    #     right after their results are copied out, a training forward when the backward
    #     closure that reads its saved values is freed.  So a training loop allocates
    #     nothing per step but its outputs, two forwards before their backwards never share
    #     buffers, and neither do calls running at the same time in several threads.
    #
    # Note: threads
    #     Replays are safe from any number of threads.  No buffer set is shared by two runs
    #     in flight: each run owns the set it took from its pool (``list.pop``/``append``
    #     are atomic under the GIL; the kernels release the GIL, so runs overlap).  Kernels,
    #     buffer plans and step plans are built once, under the graph's lock, as is a
    #     kernel's first (compiling) run; the lookups of the built ones take no lock.
    #     Measured on the small-MLP step (W1/tiny): a pool pop/append per kernel run is
    #     within the noise of the old shared persistent buffers.
    def _plan(self, kernel):
        p = self.plans.get(kernel)
        if p is None:
            with self._lock:
                p = self.plans.get(kernel)
                if p is None:
                    p = self.plans[kernel] = self._new_plan(kernel)
        return p

    def _new_plan(self, kernel):
        low = kernel.lowered
        shapes = {}
        dts = {}
        for s, (n, i) in enumerate(low.node_of_slot):
            shapes[s] = self.shapes.get((n, i))
            dts[s] = self.dtypes.get((n, i))
        bufs = [(s, tuple(shapes[s]), dts[s]) for s in low.buffer_slots]
        from . import lower
        for idx, slots in low.par_segments:     # lower note *parallel-loops*
            sizes = [(int(np.prod(shapes[s] or ())), cost, red) for s, cost, red in slots]
            shapes["par%d" % idx] = _parallel_ok() and any(
                n * cost >= lower.PAR_WORK or (red and n >= lower.RED_SERIAL_MAX)
                for n, cost, red in sizes)
        return (bufs, shapes, [])       # plan, view shapes, pool of free buffer sets

    def _execute(self, kernel, given_arrays, fresh, train, pooled=False):
        """Run ``kernel``; returns the slot list V -- and with ``pooled`` the buffer set and
        the pool it goes back to (``pool.append(bset)``) once nothing reads V any more.
        Without ``pooled`` the buffers are fresh (``fresh`` must be set)."""
        low = kernel.lowered
        bufs, P, pool = self._plan(kernel)
        V = [None] * low.n_slots
        for s, a in zip(low.given_slots, given_arrays):
            V[s] = a
        if pooled:
            try:
                bset = pool.pop()           # atomic under the GIL (note *threads*)
            except IndexError:
                bset = [np.empty(shape, dtype=dt) for _s, shape, dt in bufs]
        else:
            assert fresh
            bset = [np.empty(shape, dtype=dt) for _s, shape, dt in bufs]
        for (s, _shape, _dt), b in zip(bufs, bset):
            V[s] = b
        ctx = _TRAIN if train else _PREDICT
        if kernel.counted:
            try:
                kernel.run(V, P, ctx)
            except Exception as e:      # name the running node (zero cost when nothing raises)
                from .signature import annotate_error
                annotate_error(kernel, e)
                raise
        else:
            self._first_run(kernel, V, P, ctx)
        if pooled:
            return V, bset, pool
        return V


_PAR_OK = None


def _take(pool, make):
    """A free buffer set from ``pool``, or ``make()`` when it is empty (another thread may
    empty it between a check and a pop, so no check: note *threads*)."""
    try:
        return pool.pop()
    except IndexError:
        return make()


def _parallel_flags(P):
    """The ``par<k>`` keys of a buffer plan that are set (segments run in parallel)."""
    return [k for k in P if isinstance(k, str) and k.startswith("par") and P[k]]



def _parallel_ok():
    """Whether large flat loops take the parallel segment variant (``AGJIT_PARALLEL=0``
    turns it off; with one Numba thread it still runs its blocked loops, which keeps the
    float32 partial sums of large reductions short)."""
    global _PAR_OK
    if _PAR_OK is None:
        _PAR_OK = os.environ.get("AGJIT_PARALLEL", "1") != "0"
    return _PAR_OK


def _swappable(buf, r):
    """``buf`` (a variable's gradient buffer) may be replaced by ``r`` (a buffer of a
    step-mode call): same layout and nobody but the gradient NDArray references ``buf``
    (no views, no NDArray handed out by ``.grad``, no optimizer address table) -- the
    references counted are the holder's slot, the caller's local, this function's
    parameter and getrefcount's own."""
    # ``r`` is a C-contiguous buffer of the plan; equal dtype, shape and strides make
    # ``buf`` one too
    return (buf.base is None and sys.getrefcount(buf) <= _BUF_REFS and buf.shape == r.shape
            and buf.dtype == r.dtype and buf.strides == r.strides and buf.flags.writeable)


_BUF_REFS = 4
