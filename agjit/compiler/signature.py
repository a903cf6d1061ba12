"""Signatures of jitted calls (the cache key of a trace) and how a retrace is explained;
loaded kernels and the compile counters of a JitFunction or an executor."""
import collections
import logging
import time

import numpy as np

from symbol.base import MXNetError
from ..tape import state
from ..ndarray.ndarray import NDArray
from .buffers import _parallel_flags

log = logging.getLogger("agjit.jit")

__all__ = ["CacheInfo", "KernelStats", "signature", "describe", "explain_retrace"]

CacheInfo = collections.namedtuple(
    "CacheInfo", "hits misses traces compiles compile_seconds disk_hits")


def signature(name, args, kwargs):
    """The cache key of a call: per positional argument ("A", shape, dtype) for arrays or
    ("S", type name, value) for static values, ("K", name, value) per keyword argument
    (sorted), and the training flag."""
    parts = []
    ids = None
    for i, a in enumerate(args):
        if type(a) is NDArray or isinstance(a, NDArray):
            d = a._data
            parts.append(("A", d.shape, d.dtype))
            ids = [id(a)] if ids is None else ids + [id(a)]
        else:
            try:
                hash(a)
            except TypeError:
                raise MXNetError(
                    "%s: positional argument %d (%s) is neither an NDArray nor hashable; "
                    "non-array arguments are static (part of the cache key) and must be "
                    "hashable -- pass arrays as mx.nd.array" % (name, i,
                                                                type(a).__name__)) from None
            parts.append(("S", type(a).__name__, a))
    if kwargs:
        for k in sorted(kwargs):
            v = kwargs[k]
            try:
                hash(v)
            except TypeError:
                raise MXNetError("%s: keyword argument %r (%s) is static (part of the cache "
                                 "key) and must be hashable" % (name, k,
                                                                type(v).__name__)) from None
            parts.append(("K", k, v))
    if ids is not None and len(set(ids)) < len(ids):
        # the same array passed at several positions: a trace of such a call reads one graph
        # input for all of them, so it is only valid for calls with the same pattern
        parts.append(("alias", alias_pattern(ids)))
    return (tuple(parts), state.training)


def alias_pattern(ids):
    """Per positional array, the index of the first position holding the same object."""
    first = {}
    return tuple([first.setdefault(i, k) for k, i in enumerate(ids)])


def describe(params, sig):
    """A signature as {argument name: "float32[2,3]" / "int 3" / repr, "training": ...}
    (``params``: the function's parameter names)."""
    parts, training = sig
    out = {}
    k = 0
    for p in parts:
        if p[0] == "A" or p[0] == "S":
            name = params[k] if k < len(params) else "arg%d" % k
            k += 1
            if p[0] == "A":
                out[name] = "%s[%s]" % (np.dtype(p[2]).name, ",".join(str(d) for d in p[1]))
            else:
                out[name] = "%s %r" % (p[1], p[2])
        elif p[0] == "alias":
            out["same array at positions"] = repr(p[1])
        else:
            out[p[1]] = repr(p[2])
    out["training"] = str(training)
    return out


def explain_retrace(name, params, history, sig, site, stale):
    """Why ``sig`` is traced: the stale trace's reason, or the difference to the closest
    signature in ``history`` ([(signature, callsite)]); None for the first trace."""
    now = describe(params, sig)
    if stale is not None:
        msg = "%s retraced at %s: %s" % (name, site, stale.invalid_reason or
                                         "captured arrays changed")
    elif not history:
        return None
    else:
        best, best_d = None, None
        for old, _ in history:
            d = describe(params, old)
            diff = sum(1 for k in set(d) | set(now) if d.get(k) != now.get(k))
            if best is None or diff < best_d:
                best, best_d = d, diff
        diffs = ["%s: now %s, before %s" % (k, now.get(k, "absent"), best.get(k, "absent"))
                 for k in now if now.get(k) != best.get(k)]
        diffs += ["%s: now absent, before %s" % (k, best[k]) for k in best if k not in now]
        msg = "%s retraced at %s: new signature; closest previous differs in %s" % (
            name, site, "; ".join(diffs) or "nothing visible")
    return msg


class _Kernel:
    """A lowered graph bound to its loaded module."""

    def __init__(self, lowered, module, kind):
        self.counted = False
        self.lowered = lowered
        self.module = module
        self.run = module.run
        self.kind = kind


# lines cache.load_module puts above the generated source (kernel key, code digest)
_HEADER_LINES = 2


def annotate_error(kernel, exc):
    """Name, on an exception raised while ``kernel`` ran, the graph node whose generated code
    was running (the deepest frame of the kernel's module), through the lowering's line ->
    node map: a note on the exception (shown under its traceback), once per exception."""
    try:
        g = vars(kernel.module)
        line, tb = None, exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_globals is g:
                line = tb.tb_lineno
            tb = tb.tb_next
        if line is None or getattr(exc, "_agjit_annotated", False):
            return
        node = kernel.lowered.node_at(line, offset=_HEADER_LINES)
        where = getattr(kernel.module, "__file__", None) or "in memory"
        if node is None:
            what = "generated line %d" % line
        else:
            from .lower import safe_text
            op = node.op.name if node.op is not None else "variable"
            what = "node %s (%s), generated line %d" % (safe_text(node.name), op, line)
        exc.add_note("agjit: raised in the %s kernel at %s of %s" % (kernel.kind, what, where))
        exc._agjit_annotated = True
    except Exception:       # never let the annotation hide the error itself
        pass


def run_kernel(kernel, V, P, ctx):
    """``kernel.run(V, P, ctx)``, naming the running node on an error (annotate_error)."""
    try:
        kernel.run(V, P, ctx)
    except Exception as e:
        annotate_error(kernel, e)
        raise


class KernelStats:
    """Compile counters shared by a JitFunction's traces or by one executor."""

    def __init__(self):
        self.compiles = 0
        self.disk_hits = 0
        self.compile_seconds = 0.0

    def load(self, lowered, kind, key):
        """Load the module of ``lowered`` under its kernel key (agjit.compiler.cache note
        *kernel-cache*)."""
        from .import_guard import first_import
        first_import()                  # note *import-race*
        from .cache import load_module
        t0 = time.perf_counter()
        mod, _on_disk = load_module(key, lowered.digest, lowered.source)
        self.compile_seconds += time.perf_counter() - t0
        return _Kernel(lowered, mod, kind)

    def run_counted(self, kernel, V, P, ctx):
        """Run a kernel for the first time, counting the Numba compilations and disk-cache
        loads it triggers (dispatchers compile lazily on first call)."""
        mod = kernel.module
        # a content-addressed segment can serve several seg<k> names (cache note
        # *segment-kernels*): each dispatcher counted once
        disps = list({id(v): v for k, v in vars(mod).items() if k.startswith("seg")}.values())
        before = [(len(d.overloads), sum(d.stats.cache_hits.values())) for d in disps]
        t0 = time.perf_counter()
        try:
            kernel.run(V, P, ctx)
        except Exception as e:
            par = _parallel_flags(P)
            if not par:
                annotate_error(kernel, e)
                raise
            # a parallel variant Numba cannot compile: serial from now on (lower note
            # *parallel-loops*); the first run is simply redone
            log.info("parallel segment variant failed to compile (%s: %s); running serial",
                     type(e).__name__, str(e).splitlines()[0] if str(e) else "")
            for k in par:
                P[k] = False
            run_kernel(kernel, V, P, ctx)
        loaded = False
        for d, (n0, h0) in zip(disps, before):
            n1 = len(d.overloads)
            if n1 > n0:
                loaded = True
                hits = sum(d.stats.cache_hits.values()) - h0
                self.disk_hits += hits
                self.compiles += (n1 - n0) - hits
        if loaded:      # the first run's time is compile (or cache load) time, counted once
            self.compile_seconds += time.perf_counter() - t0
        kernel.counted = True
