"""``mx.jit``: trace a function into a graph, lower it to Numba kernels, cache and replay.

The public decorator :func:`jit` and :class:`JitFunction` (cache of traces per signature,
introspection).  agjit/compiler/README.md follows one call through every module.

Note: jit-runtime
    *Tracing.*  The first call for a signature runs the function eagerly with a tracer
    installed (agjit.ndarray.invoke reports every op to it; autograd recording is paused).
    Positional NDArrays become graph inputs; any other NDArray an op reads (closure, global,
    a parameter) becomes an input *by reference*, so in-place parameter updates are seen at
    replay.  The traced graph is an ordinary :class:`symbol.Symbol`.

    *Signatures.*  A call's signature is the shapes and dtypes of the positional arrays, the
    static (non-array and keyword) arguments and the training flag.  A new signature
    retraces; the retrace is explained (``explain()`` and the ``agjit.jit`` logger) against
    the closest previous signature.  A replay also checks that captured arrays kept their
    shape/dtype and that the closure/global names the function read still hold the same
    arrays, and retraces otherwise.

    *Kernels.*  Forward graphs, and for recorded calls a training forward plus the backward
    graph (``symbol.autodiff.gradient``), are lowered (agjit.compiler.lower note *lowering*) and
    loaded through the kernel cache (agjit.compiler.cache note *kernel-cache*).  Kernels do not
    depend on shapes, so a new batch size costs a retrace and a new buffer plan but no Numba
    compile.

    *Autograd.*  Inside ``record()`` a call is ONE tape node: its backward runs the compiled
    backward kernel and returns gradients for every input that needs one; the ordinary
    autograd machinery then writes or adds them per grad_req.  ``autograd.get_symbol`` on a
    jitted output inlines the traced graph.  Higher-order gradients through a jitted call are
    not supported (the backward kernel is not recorded).

Note: dispatch
    A replay should cost little more than its kernel.  A call whose arguments are all plain
    NDArrays (no static or keyword arguments) is first compared with the last such call
    (``JitFunction._mono``: argument count, each argument's shape and dtype, the training
    flag -- compared, not hashed), then looked up by ``(shapes, dtypes, training flag)`` in
    ``JitFunction._fast``; both hold only traces of such calls and are emptied whenever a
    trace is made (so a retrace is never hidden by them); a trace with no captured arrays
    and no closure/global bindings (``unguarded``) skips the guard check.  Inside record()
    the call reads each input's autograd entry once, for the gradient mask and the tape
    node (``tape.record_entries``).  Everything else -- static arguments, keywords, NDArray subclasses -- takes
    the full :func:`signature` path, which also fills the fast table.  A step-mode call
    builds its tape node's backward object without keyword handling
    (``_JitNode.for_step``), and a backward with head gradients of ones hands the stash over
    before any other check; a recorded call's ones head gradient is allocated once per
    head (``CompiledGraph.head_ones``).
"""
import collections
import functools
import inspect
import os
import threading
import time

from symbol.base import MXNetError
from ..ndarray.ndarray import NDArray
from ..tape import state
from .signature import KernelStats, signature, explain_retrace, log
from .trace import _Trace, _user_site
from .tier import tiered_default

__all__ = ["jit", "JitFunction", "CacheInfo"]


# the compile counters, and the tiers (agjit.compiler.tier note *tiers*): how many calls ran
# interpreted / compiled, and the compile state ('off' when untiered, 'idle' before the first
# call, else 'compiling', 'compiled', 'failed' or several of them joined by '/')
CacheInfo = collections.namedtuple(
    "CacheInfo", "hits misses traces compiles compile_seconds disk_hits interpreted_calls "
                 "compiled_calls compile_state", defaults=(0, 0, "off"))


class JitFunction:
    """A function compiled by :func:`jit`.  See the module note *jit-runtime*."""

    def __init__(self, fn, strict=None, reuse_outputs=False, name=None, tiered=None):
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._tiered = tiered_default() if tiered is None else bool(tiered)
        # interpreted calls of a signature before its background compile is requested (0:
        # the first call; tests set it high to stay on the interpreted tier)
        self._tier_start_after = 0
        self._strict = bool(int(os.environ.get("AGJIT_STRICT", "0"))) if strict is None else strict
        self._reuse = reuse_outputs
        self._traces = {}
        self._fast = {}             # (shapes, dtypes of the array arguments, training) -> trace
        # (n args, their shapes, dtypes, training, trace) of the last call through _fast
        self._mono = None
        self._history = []          # (signature, callsite) of each trace
        self._explanations = []
        self._lock = threading.RLock()
        self._hits = self._misses = self._ntraces = 0
        self.stats = KernelStats()
        self._last = None
        try:
            self._params = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            self._params = []

    # -- introspection --------------------------------------------------------------------
    def cache_info(self):
        st = self.stats
        n_i = n_c = 0
        states = set()
        for tr in list(self._traces.values()):
            t = tr._tier
            if t is not None:
                n_i += t.n_interp
                n_c += t.n_comp
                for x in t.state().split("/"):
                    if x != "interpreted":
                        states.add(x)
        if not self._tiered:
            cstate = "off"
        else:
            cstate = "/".join(sorted(states)) or ("idle" if not n_i else "interpreted")
        return CacheInfo(self._hits, self._misses, self._ntraces, st.compiles,
                         round(st.compile_seconds, 6), st.disk_hits, n_i, n_c, cstate)

    def wait_compiled(self, timeout=None):
        """Block until the background compiles of every traced signature are done (compiled
        or failed; agjit.compiler.tier note *tiers*), at most ``timeout`` seconds (None:
        no limit).  Returns True when no compile is still running."""
        end = None if timeout is None else time.perf_counter() + timeout
        for tr in list(self._traces.values()):
            left = None if end is None else max(0.0, end - time.perf_counter())
            if not tr.wait_compiled(left):
                return False
        return True

    def explain(self):
        """Why each retrace happened, and which ops run eagerly inside the replay."""
        lines = list(self._explanations)
        tr = self._last
        if tr is not None:
            notes = tr.eager_notes()
            if notes:
                lines.append("eager segments in the replay:")
                lines.extend("  " + s for s in notes)
            elif tr._tier is not None and not tr.kernels():
                lines.append("the last traced graph has no compiled kernels yet (it runs on "
                             "the interpreted tier)")
            else:
                lines.append("every op of the last traced graph is compiled (no eager segments)")
            for mask, why in tr.step_notes():
                lines.append("recorded calls with gradients for %s: %s" % (mask, why))
        if not self._tiered:
            lines.append("tiers: off (every signature compiles on its first call)")
        else:
            for k, t in enumerate(list(self._traces.values())):
                if t._tier is not None:
                    lines.append("signature %d %s" % (k, t._tier.describe()))
        return "\n".join(lines)

    def source(self):
        """The generated source of the last traced signature's kernels, each under a line
        naming its kind and the cache file it was loaded from (``in memory`` when the disk
        cache is off or unusable)."""
        tr = self._require_trace()
        return "\n".join("# ---- %s kernel (%s) ----\n%s" % (
            k.kind, getattr(k.module, "__file__", None) or "in memory", k.lowered.source)
            for k in tr.kernels())

    def symbol(self):
        """The traced forward graph of the last signature, as a Symbol."""
        return self._require_trace().sym

    def _require_trace(self):
        if self._last is None:
            raise MXNetError("%s has not been called yet: nothing is traced" % self.__name__)
        return self._last

    # -- calls ------------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        # fast path (note *dispatch*): positional plain NDArrays matching the last such call
        m = self._mono
        if m is not None and not kwargs and len(args) == m[0] and state.training == m[3]:
            for a, sh, dt in zip(args, m[1], m[2]):
                if type(a) is not NDArray:
                    break
                d = a._data
                if d.shape != sh or d.dtype is not dt:
                    break
            else:
                tr = m[4]
                if tr.unguarded or tr.still_valid():
                    self._hits += 1
                    self._last = tr
                    return tr.call(self, list(args))
        if not kwargs and args:
            for a in args:
                if type(a) is not NDArray:
                    break
            else:
                return self._call_nd(list(args))
        tr = self._lookup(signature(self.__name__, args, kwargs), args, kwargs)
        self._last = tr
        return tr.call(self, [a for a in args if isinstance(a, NDArray)] if tr.has_static
                       else list(args))

    def _call_nd(self, args):
        """A call whose arguments ``args`` (a list) are all plain NDArrays (note *dispatch*):
        the key is the tuple of their numpy arrays' (shape, dtype) and the training flag,
        looked up in a table that holds only traces of such calls and is cleared whenever a
        trace is made; the call then becomes the one the next call compares with first."""
        shapes = tuple([a._data.shape for a in args])
        dtypes = tuple([a._data.dtype for a in args])
        training = state.training
        key = (shapes, dtypes, training)
        tr = self._fast.get(key)
        if tr is not None and (tr.unguarded or tr.still_valid()):
            self._hits += 1
        else:
            tr = self._lookup(signature(self.__name__, args, {}), args, {})
            if not tr.fast_ok:
                # a trace that depends on which arrays were passed never serves the fast
                # paths (they match shapes only)
                self._last = tr
                return tr.call(self, args)
            self._fast[key] = tr
        self._last = tr
        self._mono = (len(args), shapes, dtypes, training, tr)
        return tr.call(self, args)

    def _lookup(self, sig, args, kwargs):
        """The trace of ``sig`` if it may replay this call, else a new trace (made under the
        lock: another thread may have traced the signature while this one waited)."""
        tr = self._traces.get(sig)
        if tr is not None and _valid_for(tr, args):
            self._hits += 1
            return tr
        with self._lock:
            tr = self._traces.get(sig)
            if tr is not None and _valid_for(tr, args):
                self._hits += 1
                return tr
            self._misses += 1
            return self._trace(sig, args, kwargs, stale=tr)

    def _trace(self, sig, args, kwargs, stale=None):
        site = _user_site()
        msg = explain_retrace(self.__name__, self._params, self._history, sig, site, stale)
        if msg is not None:
            self._explanations.append(msg)
            log.info(msg)
            if self._strict:
                raise MXNetError("strict mode: %s" % msg)
        if self._tiered:
            # a first call: no background Numba work shares the GIL with it (compiler
            # note *gil-pacing*); released by the graph's next call
            from .warmup import hold
            hold()
        tr = _Trace(self, sig, args, kwargs)
        if self._tiered:
            tr.enable_tiers(self._tier_start_after)
        # no captured array and no closure/global binding to re-check on a replay
        tr.unguarded = not tr.captures and not tr.bindings
        self._fast.clear()
        self._mono = None
        self._traces[sig] = tr
        self._history.append((sig, site))
        self._ntraces += 1
        return tr


def _valid_for(tr, args):
    """A cached trace may replay this call: its captures and bindings hold, and the
    closures/globals that held a positional array still hold the one passed there."""
    if not tr.still_valid():
        return False
    if tr.pos_guards:
        return tr.guards_hold([a for a in args if isinstance(a, NDArray)])
    return True


def jit(fn=None, *, strict=None, reuse_outputs=False, tiered=None):
    """Trace ``fn`` once per signature, lower it to Numba kernels, cache and replay.

    Usable as ``@mx.jit`` or ``mx.jit(fn, strict=True)``.  See the module note
    *jit-runtime* for what is traced, what retraces and how it composes with autograd.

    Parameters
    ----------
    strict : bool, optional
        Raise MXNetError on any retrace after the first trace (default: the environment
        variable ``AGJIT_STRICT``).
    reuse_outputs : bool
        Return the kernel's output buffers instead of fresh copies (they are overwritten by
        the next call).
    tiered : bool, optional
        Run a new signature's first calls on the interpreted tier while its kernels compile
        in the background (agjit.compiler.tier note *tiers*); False compiles on the first
        call (default: the environment variable ``AGJIT_TIERED``, on unless ``0``).

    Examples
    --------
    >>> @mx.jit
    ... def f(x):
    ...     return mx.nd.tanh(x) * 2 + 1
    >>> f(mx.nd.ones((2, 3))).shape
    (2, 3)
    """
    if fn is None:
        return lambda f: JitFunction(f, strict=strict, reuse_outputs=reuse_outputs,
                                     tiered=tiered)
    if not callable(fn):
        raise MXNetError("jit: expected a callable, got %s" % type(fn).__name__)
    return JitFunction(fn, strict=strict, reuse_outputs=reuse_outputs, tiered=tiered)
