"""Buffer plans and pools of a compiled graph (notes *buffer-plan*, *threads*), the parallel
switch, and the buffer swap of a step-mode backward."""
import os
import sys

import numpy as np

from ..ndarray.ndarray import _TRAIN, _PREDICT

__all__ = ["BufferPlans", "Plan"]


class BufferPlans:
    """Mixin of :class:`agjit.compiler.program.CompiledGraph`: one buffer plan per kernel
    (``self.plans``), built under ``self._lock``, and the run of a kernel on a buffer set
    taken from the plan's pool."""

    # Note: buffer-plan
    #     A CompiledGraph has fixed shapes (one per traced signature or executor), so each
    #     kernel has one plan (:class:`Plan`): the shape/dtype of every buffer slot, split by
    #     the kernel's buffer liveness (schedule note *buffer-liveness*) into
    #
    #     * *own* buffers -- the pinned ones a result may refer to: outputs, a training
    #       forward's saved values, a step's gradients.  A run takes a set of them from the
    #       plan's pool (a new one when it is empty) and gives it back when nothing reads
    #       them any more: forward-only and backward kernels right after their results are
    #       copied out, a training forward when the backward closure that reads its saved
    #       values is freed;
    #     * *scratch* buffers -- intermediates dead when the kernel returns.  They live at
    #       offsets of one byte arena, placed so that buffers live at the same time never
    #       overlap and the others share memory (:func:`_place`); a run takes an arena from
    #       the graph's arena pool and gives it back as soon as the kernel returns, so the
    #       forward, training-forward and backward kernels of a graph share one arena
    #       (sized for the largest of them) instead of each keeping its intermediates.
    #
    #     So a training loop allocates nothing per step but its outputs, two forwards before
    #     their backwards never share buffers, and neither do calls running at the same
    #     time in several threads.  A step-mode call keeps its whole slot list, arena
    #     included, until its backward (agjit.compiler.step note *step-mode*).
    #
    # Note: threads
    #     Replays are safe from any number of threads.  No buffer set or arena is shared by
    #     two runs in flight: each run owns the set and the arena it took from their pools
    #     (``list.pop``/``append`` are atomic under the GIL; the kernels release the GIL,
    #     so runs overlap).  Kernels, buffer plans and step plans are built once, under the
    #     graph's lock, as is a kernel's first (compiling) run; the lookups of the built
    #     ones take no lock.  Measured on the small-MLP step (W1/tiny): a pool pop/append
    #     per kernel run is within the noise of the old shared persistent buffers.
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
        bufs = [(s, tuple(shapes[s]), dts[s]) for s in dict.fromkeys(low.buffer_slots)]
        from . import lower
        for idx, slots in low.par_segments:     # lower note *parallel-loops*
            sizes = [(int(np.prod(shapes[s] or ())), cost, red) for s, cost, red in slots]
            shapes["par%d" % idx] = _parallel_ok() and any(
                n * cost >= lower.PAR_WORK or (red and n >= lower.RED_SERIAL_MAX)
                for n, cost, red in sizes)
        return Plan(bufs, shapes, low.life, low.pinned)

    def _take_arena(self, plan):
        """(entry, scratch views of ``plan``) from the graph's arena pool; ``entry`` goes back
        with ``self._arenas.append(entry)`` once the kernel has returned."""
        try:
            entry = self._arenas.pop()      # atomic under the GIL (note *threads*)
        except IndexError:
            entry = None
        if entry is None or entry[0].nbytes < plan.scratch_bytes:
            # (a smaller arena is dropped: every new one has the largest size asked so far)
            need = self._arena_bytes = max(plan.scratch_bytes, self._arena_bytes)
            entry = (_arena(need), {})
        views = entry[1].get(plan)
        if views is None:
            views = entry[1][plan] = plan.scratch_views(entry[0])
        return entry, views

    def _execute(self, kernel, given_arrays, fresh, train, pooled=False):
        """Run ``kernel``; returns the slot list V -- and with ``pooled`` the set of own
        buffers and the pool it goes back to (``pool.append(bset)``) once nothing reads the
        results any more.  Without ``pooled`` the own buffers are fresh (``fresh`` must be
        set).  Scratch buffers (note *buffer-plan*) are only valid during the run."""
        low = kernel.lowered
        plan = self._plan(kernel)
        pool = plan.pool
        V = [None] * low.n_slots
        for s, a in zip(low.given_slots, given_arrays):
            V[s] = a
        if pooled:
            try:
                bset = pool.pop()           # atomic under the GIL (note *threads*)
            except IndexError:
                bset = plan.new_own()
        else:
            assert fresh
            bset = plan.new_own()
        for s, b in zip(plan.own_slots, bset):
            V[s] = b
        entry = None
        if plan.scratch_slots:
            entry, views = self._take_arena(plan)
            for s, b in zip(plan.scratch_slots, views):
                V[s] = b
        ctx = _TRAIN if train else _PREDICT
        try:
            if kernel.counted:
                try:
                    kernel.run(V, plan.P, ctx)
                except Exception as e:  # name the running node (zero cost when nothing raises)
                    from .signature import annotate_error
                    annotate_error(kernel, e)
                    raise
            else:
                self._first_run(kernel, V, plan.P, ctx)
        finally:
            if entry is not None:
                for s in plan.scratch_slots:
                    V[s] = None         # nothing reads the arena after the run
                self._arenas.append(entry)
        if pooled:
            return V, bset, pool
        return V


_ALIGN = 64


class Plan:
    """The buffer plan of one kernel (note *buffer-plan*): ``bufs`` (slot, shape, dtype) of
    every buffer slot; ``P`` the view shapes and parallel flags the kernel reads; the own
    (pinned) buffers' slots and their ``pool`` of free sets; the scratch buffers' slots,
    their byte offsets in an arena of ``scratch_bytes``."""

    __slots__ = ("bufs", "P", "pool", "own", "own_slots", "scratch", "scratch_slots",
                 "scratch_bytes")

    def __init__(self, bufs, P, life, pinned):
        self.bufs = bufs
        self.P = P
        self.pool = []
        self.own = [(s, shape, dt) for s, shape, dt in bufs if s in pinned]
        self.own_slots = [s for s, _shape, _dt in self.own]
        loose = [(s, shape, dt) for s, shape, dt in bufs if s not in pinned]
        offsets, self.scratch_bytes = _place(
            [(s, _nbytes(shape, dt)) + tuple(life.get(s, (0, 1 << 30))) for s, shape, dt in loose])
        self.scratch = [(s, shape, dt, offsets[s]) for s, shape, dt in loose]
        self.scratch_slots = [s for s, _shape, _dt in loose]

    def new_own(self):
        return [np.empty(shape, dtype=dt) for _s, shape, dt in self.own]

    def scratch_views(self, arena):
        """The scratch buffers as C-contiguous views of ``arena`` (see :func:`_arena`)."""
        return [np.ndarray(shape, dtype=dt, buffer=arena, offset=off)
                for _s, shape, dt, off in self.scratch]

    def new_slots(self, n_slots):
        """A slot list with every buffer slot filled: own buffers and the scratch views of an
        arena of its own (a step-mode call keeps it until its backward)."""
        V = [None] * n_slots
        for s, b in zip(self.own_slots, self.new_own()):
            V[s] = b
        if self.scratch:
            for s, b in zip(self.scratch_slots, self.scratch_views(_arena(self.scratch_bytes))):
                V[s] = b
        return V


def _nbytes(shape, dt):
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize


def _arena(nbytes):
    """A byte array of at least ``nbytes`` whose start is aligned to _ALIGN bytes (a view of
    a slightly larger allocation)."""
    raw = np.empty(nbytes + _ALIGN, dtype=np.uint8)
    pad = (-raw.ctypes.data) % _ALIGN
    return raw[pad:pad + nbytes]


def _place(items):
    """Byte offsets for buffers ``(slot, nbytes, first, last)`` live over steps
    ``first..last``: two buffers live at a common step never overlap.  Largest first, each
    at the lowest aligned offset clear of the placed buffers it meets in time (greedy by
    size: within a few percent of the best for chains of layers).  Returns (offsets, bytes
    in all)."""
    offsets = {}
    placed = []         # (offset, end, first, last)
    total = 0
    for s, nb, f, last in sorted(items, key=lambda t: (-t[1], t[2], t[0])):
        size = -(-max(nb, 1) // _ALIGN) * _ALIGN
        off = 0
        for o, e in sorted((o, e) for o, e, pf, pl in placed if pf <= last and f <= pl):
            if off + size <= o:
                break
            off = max(off, e)
        offsets[s] = off
        placed.append((off, off + size, f, last))
        total = max(total, off + size)
    return offsets, total


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
