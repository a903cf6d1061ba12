"""Tiered execution: a new signature runs at once on the interpreted tier while its Numba
kernels compile off the calling thread; the next call after they are ready runs them.

Note: tiers
    *Interpreted tier.*  :class:`Interpreter` runs a CompiledGraph's nodes in topological
    order through the eager forwards: the registry's NumPy kernels (``op.forward``), and
    for the ops of agjit.eager_kernels (Convolution, Pooling, BatchNorm...) the library's
    compiled kernels once that module's thread has them, so an interpreted step costs
    what the eager step costs; no code generation, no kernel cache and no Numba -- this
    module does not import Numba, so Numba's one-time set-up (import, typing registry)
    stays off the first call.  A recorded call keeps every
    forward value of the call; its tape node (:class:`_InterpNode`, a
    ``tape.CompiledNode``) runs the backward graph the compiled tier would compile
    (``symbol.autodiff.gradient`` of the same graph, per gradient mask, mode and present
    heads) through the same NumPy kernels, reusing the forward's values, so a Dropout
    mask is never redrawn.  Both tiers draw random numbers in graph order from the same
    generator, so a seeded program draws the same masks on either tier.  Step mode is a
    compiled-tier thing; BatchNorm's backward hooks run as on the compiled tier.

    *Compiling.*  A call whose kernels are not ready asks :class:`Tiers` for a compile of
    its *need* (``("forward",)``, ``("step", mask, train)`` for a recorded call of a jitted
    function, ``("train", mask, train)`` for an executor).  One background thread per
    process (:class:`_Compiler`) serves the queue: it runs the compiled tier once on copies
    of the call's inputs, with a private random generator (``agjit.random.private``), so
    lowering, the kernel cache, Numba's compile and buffer plans are all done as the
    first compiled call would do them, without touching the caller's arrays or random
    stream.  With ``AGJIT_TIER_WORKER=process`` a compile worker process compiles the
    same kernels first into the disk cache (agjit.compiler.tier_worker), and the thread
    then only loads them (see the README's *Tiers* for which blocks the caller less); the
    worker starts with the first need that the disk cache holds no hint of (a warm cache
    starts none: the thread loads the kernels itself).  The thread's Numba set-up, loads
    and lowering share the GIL with the program's steps: they are paced (compiler note
    *gil-pacing* in agjit.compiler.warmup).  Once a need is compiled, calls with that need
    switch to the compiled kernels.

    *Failure.*  A compile that raises warns once (RuntimeWarning naming the graph and the
    kernel) and the need stays on the interpreted tier for good: never a crash of a call.
    *Exit.*  The thread is a daemon: interpreter exit does not wait for a compile; an
    atexit hook stops the queue and the worker process (terminated, its pipes closed).
    Cache files are written atomically (symbol.base.atomic_write), so an exit mid-compile
    leaves no partial file.

    ``mx.jit(..., tiered=False)`` or ``AGJIT_TIERED=0`` compiles on the calling thread, as
    before tiering (tests and benchmarks of compiled speed).
"""
import atexit
import collections
import os
import threading
import time
import warnings
import weakref

import numpy as np

from ..tape import state, CompiledNode, ONES
from .warmup import note_call as _note_call, pacing as _pacing, release as _release, \
    wait_hold as _wait_hold
from ..ndarray.ndarray import _wrap, _TRAIN, _PREDICT, EAGER_FORWARD as _EAGER_FORWARD

__all__ = ["tiered_default", "Tiers", "Interpreter"]


def tiered_default():
    """Whether new jitted functions and executors are tiered (``AGJIT_TIERED``, default on)."""
    return os.environ.get("AGJIT_TIERED", "1") not in ("0", "false", "False", "no", "off")


def _worker_kind():
    """``AGJIT_TIER_WORKER``: ``process`` (default: a compile worker process fills the disk
    cache, the thread only loads) or ``thread`` (the thread compiles; also what ``process``
    falls back to when the disk cache is off or the worker cannot start)."""
    k = os.environ.get("AGJIT_TIER_WORKER", "process")
    return k if k in ("thread", "process") else "process"


# -- the interpreted tier --------------------------------------------------------------------
class Interpreter:
    """Runs a CompiledGraph's forward and backward graphs through the NumPy kernels."""

    def __init__(self, graph):
        self.g = graph
        self._bwd = {}
        self._lock = threading.Lock()       # not the graph's: a compile may hold that one
        self._ones = {}

    @staticmethod
    def run_nodes(order, env, ctx, shapes=None):
        """Compute every op node of ``order`` whose outputs are not in ``env`` yet.  An op
        the compiler lowers as an alias or a view of input 0 (a backward graph's
        ``_gradient_output`` and ``_nn_reshape_like``, Reshape, Flatten...) is that view
        here too, not the copy its NumPy kernel makes (``shapes``: the forward graph's
        inferred shapes, for a view whose target shape only they know)."""
        with np.errstate(all="ignore"):
            for n in order:
                if n.op is None or (n, 0) in env:
                    continue
                ins = [env[(s, i)] for (s, i, _v) in n.inputs]
                kind = getattr(n.op.lowering, "kind", None)
                if kind == "alias":
                    env[(n, 0)] = ins[0]
                    continue
                if kind == "view" and not n.op.mutate_inputs:
                    to = ins[1].shape if n.op.name == "_nn_reshape_like" else \
                        None if shapes is None else shapes.get((n, 0))
                    if to is not None:
                        env[(n, 0)] = np.asarray(ins[0]).reshape(to)
                        continue
                # the eager forward: for Convolution, Pooling, BatchNorm... the library's
                # compiled kernels once agjit.eager_kernels has them (as an eager step)
                outs = (_EAGER_FORWARD.get(n.op) or n.op.forward)(n.parsed, ins, ctx)
                for i, o in enumerate(outs):
                    env[(n, i)] = o

    def forward(self, arrays, train):
        """(env of every forward value, output arrays) for input ``arrays``."""
        g = self.g
        env = self._traced_env(g)
        for n, a in zip(g.input_nodes, arrays):
            env[(n, 0)] = a
        traced = len(env) > len(arrays)
        self.run_nodes(g.order, env, _TRAIN if train else _PREDICT, g.shapes)
        outs = []
        for e in g.heads:
            o = np.asarray(env[e])
            # outputs are the caller's own arrays, as the compiled tier's copies (a view
            # -- of an input or of a value the backward reads -- is copied)
            if traced or o.base is not None or any(np.may_share_memory(o, a) for a in arrays) \
                    or any(x is o for x in outs):
                o = o.copy()
            outs.append(o)
        return env, outs

    @staticmethod
    def _traced_env(g):
        """For the call right after a trace (the same arguments): the values the traced
        eager run computed, so the first call does not compute its forward twice -- unless
        the graph draws random numbers (the trace restored the generator, the call draws
        the masks itself) or mutates its inputs."""
        tv = getattr(g, "traced_values", None)
        if tv is None:
            return {}
        g.traced_values = None
        if any(n.op is not None and (n.op.needs_rng or n.op.mutate_inputs) for n in g.order):
            return {}
        ops = set(n for n in g.order if n.op is not None)
        return {e: a._data for a, e in tv._d.values() if e[0] in ops}

    def run_forward(self, arrays, train):
        return self.forward(arrays, train)[1]

    def run_train(self, arrays, mask, train):
        env, outs = self.forward(arrays, train)
        return outs, _InterpNode(self, mask, list(arrays), env, bool(train))

    def backward_graph(self, mask, train, bwd_train, heads):
        """(backward order, gradient outputs, head-grad var per head, covers, hooks) of the
        gradient graph for ``mask``, modes and present ``heads`` (a tuple of bools)."""
        g = self.g
        key = (tuple(mask), train, bwd_train, heads) if g.mode_dependent else \
            (tuple(mask), heads)
        res = self._bwd.get(key)
        if res is not None:
            return res
        with self._lock:
            res = self._bwd.get(key)
            if res is None:
                res = self._bwd[key] = self._build(mask, train, bwd_train, heads)
        return res

    def _build(self, mask, train, bwd_train, heads):
        from symbol import autodiff
        from symbol.graph import topo_order
        from symbol.symbol import Symbol
        g = self.g
        if all(heads):
            sym, reach = g.sym, None
        else:
            sym = Symbol([h for h, p in zip(g.heads, heads) if p])
            reach = set(topo_order(sym._outputs))
        covers = [bool(m) and (reach is None or n in reach)
                  for n, m in zip(g.input_nodes, mask)]
        hooks = [n for n in g.order if n.op is not None and n.op.backward_hook
                 and (reach is None or n in reach)]
        wrt = [n.name for n, c in zip(g.input_nodes, covers) if c]
        if not wrt:
            return None, [], [None] * len(g.heads), covers, hooks
        gsym = autodiff.gradient(sym, wrt, train=bwd_train, forward_train=train) \
            if g.mode_dependent else autodiff.gradient(sym, wrt)
        border = topo_order(gsym._outputs)
        fwd = set(g.order)
        by_name = {n.name: n for n in border if n.op is None and n not in fwd
                   and n.name.endswith("_head_grad")}
        head_vars = [by_name.get(n.output_name(i) + "_head_grad") for (n, i) in g.heads]
        return border, list(gsym._outputs), head_vars, covers, hooks

    def ones(self, e):
        o = self._ones.get(e)
        if o is None:
            v = self.g.dtypes.get(e)
            o = self._ones[e] = np.ones(self.g.shapes[e], dtype=v or "float32")
        return o


class _InterpNode(CompiledNode):
    """The backward of one recorded call run on the interpreted tier (a tape node's
    ``function``): it holds every forward value of the call."""

    __slots__ = ("interp", "mask", "arrays", "env", "train")

    def __init__(self, interp, mask, arrays, env, train):
        self.interp = interp
        self.mask = mask
        self.arrays = arrays
        self.env = env
        self.train = train

    def inputs_of(self, k):
        d = self.interp.g.rec_deps
        return None if d is None else d[k]

    def _run(self, out_grads, bwd_train=None):
        """Per input of the graph, its gradient array (None where it needs none) for head
        gradients ``out_grads`` (arrays, ONES or None per output)."""
        ip = self.interp
        g = ip.g
        bwd_train = bool(state.training if bwd_train is None else bwd_train)
        present = tuple(x is not None for x in out_grads)
        if not any(present):
            return [None] * len(self.mask)
        border, gouts, head_vars, covers, hooks = ip.backward_graph(
            self.mask, self.train, bwd_train, present)
        res = [None] * len(self.mask)
        if border is not None:
            env = dict(self.env)
            for x, h, e in zip(out_grads, head_vars, g.heads):
                if h is not None and x is not None:
                    env[(h, 0)] = ip.ones(e) if x is ONES else np.asarray(x)
            Interpreter.run_nodes(border, env, _TRAIN if bwd_train else _PREDICT)
            vals = iter(env[e] for e in gouts)
            res = [next(vals) if c else None for c in covers]
        if hooks and bwd_train:
            # as the compiled tier and eager autograd: only a training-mode backward runs the
            # hooks (BatchNorm's moving statistics), which see the forward's mode
            for n in hooks:
                ins = [self.env[(s, i)] for (s, i, _v) in n.inputs]
                outs = [self.env[(n, i)] for i in range(n.num_outputs())]
                n.op.backward_hook(n.parsed, ins, outs, self.train)
        return res

    def backward(self, *out_grads, train=None):
        res = self._run([x if x is None or x is ONES else x._data for x in out_grads], train)
        g = self.interp.g
        if not g.all_used:
            res = [res[k] for k in g.used_pos]
        return [None if r is None else _wrap(np.array(r, copy=True)) for r in res]

    def backward_into(self, out_grads, sinks, consume=False):
        res = self._run(out_grads)
        g = self.interp.g
        pos = range(len(res)) if g.all_used else g.used_pos
        for k, sink in zip(pos, sinks):
            r = res[k]
            if r is None or sink is None:
                continue
            holder, req = sink
            buf = holder._data
            if req == "add":
                buf += r
            else:
                np.copyto(buf, r, casting="unsafe")


# -- compile state per graph -------------------------------------------------------------------
class _Job:
    __slots__ = ("need", "arrays", "state", "error", "t_queued", "t_done", "event", "how")

    def __init__(self, need, arrays):
        self.need = need
        self.arrays = arrays
        self.state = "queued"
        self.error = None
        self.t_queued = time.perf_counter()
        self.t_done = None
        self.event = threading.Event()
        self.how = None


class Tiers:
    """The tier state of one CompiledGraph: its interpreter, which needs are compiled, the
    compile jobs and the tier of each call (run-length encoded)."""

    def __init__(self, graph, start_after=0):
        self.g = graph
        self.interp = Interpreter(graph)
        self.ready = set()          # needs whose compiled kernels are built and run once
        self.failed = set()
        self.jobs = {}              # need -> _Job
        self.pending = []           # jobs of the first call, submitted by the next one
        self.start_after = start_after   # interpreted calls before a compile is requested
        self.history = []           # [[tier, calls]]
        self.n_interp = 0
        self.n_comp = 0
        self._lock = threading.Lock()
        _ALL.add(self)

    # calls --------------------------------------------------------------------------------
    def count(self, tier):
        _note_call()
        if self.history:
            _release()      # not a first call: the held first call is over (*gil-pacing*)
        with self._lock:
            h = self.history
            if h and h[-1][0] == tier:
                h[-1][1] += 1
            else:
                h.append([tier, 1])
            if tier == "compiled":
                self.n_comp += 1
            else:
                self.n_interp += 1
        if self.pending:
            self._flush()

    def request(self, need, arrays):
        """Queue the compile of ``need`` (once), from copies of the call's ``arrays``.  A
        request of a graph's first call starts with its next call (or ``wait``): the first
        call's backward does not share the GIL with the compile thread, and a function
        called once compiles nothing."""
        if need in self.jobs or self.n_interp < self.start_after:
            return
        with self._lock:
            if need in self.jobs:
                return
            job = self.jobs[need] = _Job(need, [np.array(a, copy=True) for a in arrays])
            if self.n_interp + self.n_comp <= 1:
                self.pending.append(job)
                return
        _compiler().submit(self, job)

    def _flush(self):
        with self._lock:
            jobs, self.pending = self.pending, []
        for job in jobs:
            _compiler().submit(self, job)

    # what the compile thread does -----------------------------------------------------------
    def compile_need(self, job):
        from .. import random as _random
        g = self.g
        need = job.need
        arrays = job.arrays
        job.arrays = None
        with _random.private():
            if need[0] == "forward":
                g._compiled_forward(arrays, need[1] if len(need) > 1 else False, fresh=True)
                done = [need]
            else:
                _kind, mask, train = need
                mask = list(mask)
                r = g._compiled_step(arrays, mask, train) if need[0] == "step" else None
                if r is None:
                    _outs, node = g._compiled_train(arrays, mask, train)
                    # the backward kernel of a training-mode backward from every head
                    node._run([ONES] * len(g.heads), True)
                    done = [need, ("train", tuple(mask), train)]
                else:
                    done = [need]
        with self._lock:
            self.ready.update(done)

    def fail(self, job, exc):
        with self._lock:
            self.failed.add(job.need)
        what = "forward" if job.need[0] == "forward" else (
            "%s (gradients for %s)" % ("training step" if job.need[0] == "step"
                                       else "training forward/backward",
                                       ", ".join(n.name for n, m in zip(self.g.input_nodes,
                                                                         job.need[1]) if m)
                                       or "none"))
        jf = getattr(self.g, "jf", None)
        owner = ("%s, graph" % jf.__name__) if jf is not None else "graph"
        warnings.warn("agjit.jit: the background compile of the %s kernel (%s %s) failed "
                      "(%s: %s); this signature keeps running on the interpreted tier"
                      % (what, owner, self.g.graph_hash[:12], type(exc).__name__,
                         str(exc).splitlines()[0] if str(exc) else ""), RuntimeWarning,
                      stacklevel=2)

    # introspection -------------------------------------------------------------------------
    def state(self):
        """'interpreted' (nothing requested), 'compiling', 'compiled', 'failed' or a mix."""
        states = set()
        for need, job in list(self.jobs.items()):
            states.add("failed" if need in self.failed else
                       "compiled" if need in self.ready else "compiling")
        if not states:
            return "interpreted"
        return "/".join(sorted(states))

    def wait(self, timeout=None):
        """Block until every requested compile has finished (or failed); True when none is
        still running."""
        end = None if timeout is None else time.perf_counter() + timeout
        if self.pending:
            _release()
            self._flush()
        for job in list(self.jobs.values()):
            left = None if end is None else max(0.0, end - time.perf_counter())
            if not job.event.wait(left):
                return False
        return True

    def describe(self):
        calls = ", ".join("%s x%d" % (t, n) for t, n in self.history) or "no calls"
        parts = []
        for need, job in list(self.jobs.items()):
            what = need[0] if need[0] == "forward" else "%s %s" % (
                need[0], "".join("1" if m else "0" for m in need[1]))
            if need in self.failed:
                st = "failed (%s)" % job.error
            elif need in self.ready:
                st = "compiled in %.2f s (%s)" % (job.t_done - job.t_queued, job.how)
            else:
                st = job.state
            parts.append("%s: %s" % (what, st))
        return "tiers: %s; compile: %s" % (calls, "; ".join(parts) or "not requested")


# -- the compile thread ------------------------------------------------------------------------
class _Compiler:
    """One daemon thread per process serving the compile queue (note *tiers*)."""

    def __init__(self):
        self.queue = collections.deque()
        self.cv = threading.Condition()
        self.stopped = False
        self.thread = None
        self.worker = None          # tier_worker.WorkerClient or False (unusable)
        self.set_up = False

    def submit(self, tiers, job):
        with self.cv:
            if self.stopped:
                return
            self.queue.append((tiers, job))
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="agjit-compile",
                                               daemon=True)
                self.thread.start()
            self.cv.notify()

    def _loop(self):
        warmed = False
        while True:
            with self.cv:
                while not self.queue and not self.stopped:
                    self.cv.wait()
                if self.stopped:
                    return
                tiers, job = self.queue.popleft()
            if not warmed:
                # the kernel library's warm-up (agjit.compiler.warmup, which imports Numba)
                # starts with the first compile job -- a graph's second call: the first
                # call of a tiered function runs without Numba, on a GIL of its own
                warmed = True
                try:
                    from .warmup import warm_library
                    warm_library()
                except Exception:   # pragma: no cover - a warm-up failure costs only speed
                    pass
            job.state = "compiling"
            _wait_hold()                # another function's first call
            try:
                with _pacing():         # compiler note *gil-pacing*
                    job.how = self._precompile(tiers, job)
                    self._set_up()
                    tiers.compile_need(job)
                _hint(tiers.g, job.need)
            except BaseException as e:      # never let a compile kill the thread
                if self.stopped:
                    return
                job.error = "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e)
                                        else "")
                job.state = "failed"
                try:
                    tiers.fail(job, e)
                except Exception:
                    pass
            else:
                job.state = "compiled"
            job.t_done = time.perf_counter()
            job.event.set()

    def _set_up(self):
        """Numba's one-time set-up on this thread, paced and with the GC quiet (compiler
        note *setup-gil*), before a load or a compile would do it unpaced."""
        if not self.set_up:
            self.set_up = True
            from .warmup import numba_setup
            numba_setup()

    def _start_worker(self):
        if self.worker is None and _worker_kind() == "process":
            from . import tier_worker
            try:
                self.worker = tier_worker.WorkerClient.start() or False
            except Exception:
                self.worker = False

    def _precompile(self, tiers, job):
        """With a compile worker process: have it compile ``job``'s kernels into the disk
        cache first (the thread then loads them).  Returns how the job was compiled."""
        if _worker_kind() != "process":
            return "thread"
        if _hint(tiers.g, job.need, check=True):
            return "thread (loaded from the disk cache)"
        self._start_worker()
        if not self.worker:
            return "thread"
        sent = self.worker.send(tiers.g, job.need, job.arrays)
        self._set_up()          # meanwhile: Numba's set-up, which loading needs anyway
        ok = sent and self.worker.receive(tiers.g)
        return "process" if ok else "thread (worker failed)"

    def stop(self):
        with self.cv:
            self.stopped = True
            self.queue.clear()
            self.cv.notify_all()
        w = self.worker
        if w:
            w.close()


_COMPILER = []
_COMPILER_LOCK = threading.Lock()
_ALL = weakref.WeakSet()        # every Tiers, for the fork hook


def _after_fork_in_child():
    """A forked child has neither the compile thread nor its own worker: it gets new ones
    on demand, and the compiles that were in flight are requested again by the next call
    (their jobs are dropped)."""
    _COMPILER.clear()
    for t in list(_ALL):
        t._lock = threading.Lock()
        t.pending = []
        for need, job in list(t.jobs.items()):
            if not job.event.is_set():
                del t.jobs[need]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _compiler():
    if not _COMPILER:
        with _COMPILER_LOCK:
            if not _COMPILER:
                _COMPILER.append(_Compiler())
                atexit.register(_COMPILER[0].stop)
    return _COMPILER[0]


def _hint_path(graph, need):
    """The path of :func:`_hint`'s file for ``need`` of ``graph`` (None: disk cache off)."""
    import hashlib
    import agjit
    from .cache_paths import cache_enabled, cache_dir
    if not cache_enabled():
        return None
    name = hashlib.sha256(repr((graph.graph_hash, need, agjit.agjit_version)).encode()).hexdigest()
    return os.path.join(os.path.abspath(cache_dir()), "tier-hints", name[:32])


def _hint(graph, need, check=False):
    """A hint in the disk cache that ``need`` of ``graph`` was compiled there before (an
    empty file named by a hash of the graph, the need and the agjit version): with it the
    compile thread loads the kernels itself instead of asking the worker, which would only
    load them too.  ``check``: whether the hint exists; else write it.  A stale hint only
    costs an in-thread compile."""
    path = _hint_path(graph, need)
    if path is None:
        return False
    if check:       # before Numba's set-up: no numba_cache (a refused directory has no hint)
        return os.path.exists(path)
    from .import_guard import first_import
    first_import()                      # note *import-race*
    from .numba_cache import cache_root
    from symbol.base import atomic_write
    if cache_root() is None:
        return False
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        atomic_write(path, [b""], perm=0o600)
    except OSError:
        pass
    return True
