"""``mx.jit``: trace a function into a graph, lower it to Numba kernels, cache and replay.

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
"""
import collections
import functools
import inspect
import logging
import os
import sys
import threading
import time
import warnings

import numpy as np

from symbol.base import MXNetError
from symbol.graph import Node, topo_order, verify
from symbol.registry import get_op, format_attr
from symbol.symbol import Symbol
from .. import tape
from ..tape import state, entry_of, set_recording
from ..ndarray.ndarray import NDArray, _wrap, _TRAIN, _PREDICT

log = logging.getLogger("agjit.jit")

__all__ = ["jit", "JitFunction", "CacheInfo", "eager_op"]

CacheInfo = collections.namedtuple(
    "CacheInfo", "hits misses traces compiles compile_seconds disk_hits")


class eager_op:
    """An op run through its NumPy kernel inside a replay (generated code calls this)."""

    def __init__(self, name, attrs_json):
        import json
        self.op = get_op(name)
        self.attrs = self.op.parse_attrs(json.loads(attrs_json), strict=False)
        self.forward = self.op.forward


_PKG_DIRS = None


def _user_site():
    """file:line of the innermost frame outside agjit/symbol (the user's code)."""
    global _PKG_DIRS
    if _PKG_DIRS is None:
        import symbol
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        _PKG_DIRS = (here + os.sep, os.path.dirname(os.path.abspath(symbol.__file__)) + os.sep)
    f = sys._getframe(2)
    while f is not None:
        fn = f.f_code.co_filename
        if not fn.startswith(_PKG_DIRS):
            return "%s:%d" % (os.path.basename(fn), f.f_lineno)
        f = f.f_back
    return ""


class Tracer:
    """Collects the ops of one traced call into a graph.

    No table here is keyed by ``id()`` of an object that can die (ids are reused once an
    object is freed): entry tables are keyed by the graph nodes themselves, and the table of
    traced arrays, keyed by ``id(array)`` because NDArray's ``==`` is elementwise, holds each
    array in its value, so a key's object lives as long as its entry."""

    def __init__(self):
        self.values = {}        # id(NDArray) -> (Node, index, the NDArray)
        self.inputs = []        # [(NDArray or None, Node)] positional first, then captures
        self.shapes = {}        # (node, i) -> shape
        self.dtypes = {}        # (node, i) -> dtype name
        self.provenance = {}    # node -> "file:line"
        self.n_ops = 0
        self.warned = set()

    def entry(self, arr):
        """The traced entry (Node, index) of ``arr``, or None."""
        v = self.values.get(id(arr))
        return None if v is None else (v[0], v[1])

    def add_input(self, arr, name):
        node = Node(None, name)
        self.values[id(arr)] = (node, 0, arr)
        self.inputs.append((arr, node))
        self.shapes[(node, 0)] = arr.shape
        self.dtypes[(node, 0)] = arr._data.dtype.name
        return (node, 0)

    def on_op(self, op, given, inputs, results):
        entries = []
        for x in inputs:
            e = self.values.get(id(x))
            e = self.add_input(x, "capture%d" % (len(self.inputs))) if e is None else e[:2]
            entries.append(e)
        attrs = {k: format_attr(v) for k, v in given.items()}
        node = Node(op, "n%d" % self.n_ops, attrs, [(n, i, 0) for n, i in entries])
        self.n_ops += 1
        self.provenance[node] = _user_site()
        for i, r in enumerate(results):
            self.values[id(r)] = (node, i, r)
            self.shapes[(node, i)] = r.shape
            self.dtypes[(node, i)] = r._data.dtype.name

    def frozen(self, arr, what):
        if id(arr) in self.values and what not in self.warned:
            self.warned.add(what)
            warnings.warn("agjit.jit: %s() on a traced array during tracing: its value is frozen "
                          "into the graph as a constant (data-dependent Python control flow is "
                          "not retraced)" % what, RuntimeWarning, stacklevel=4)


def infer_graph(order, shapes, dtypes):
    """Fill shapes/dtypes (keyed by entries ``(node, index)``) of every entry by forward
    inference from the known ones."""
    for n in order:
        if n.op is None:
            continue
        if all((n, i) in shapes for i in range(n.num_outputs())):
            continue
        ins = [shapes.get((s, i)) for (s, i, _v) in n.inputs]
        tys = [dtypes.get((s, i)) for (s, i, _v) in n.inputs]
        _, outs = n.op.infer_shape(n.parsed, ins)
        _, otys = n.op.infer_type(n.parsed, tys)
        for i, s in enumerate(outs):
            shapes[(n, i)] = None if s is None else tuple(s)
            t = otys[i] if i < len(otys) else otys[0]
            dtypes[(n, i)] = None if t is None else np.dtype(t).name


class _Kernel:
    """A lowered graph bound to its loaded module."""

    def __init__(self, lowered, module, kind):
        self.counted = False
        self.lowered = lowered
        self.module = module
        self.run = module.run
        self.kind = kind


class _Compiled:
    """Everything for one traced signature: graph, kernels, buffer plan."""

    def __init__(self):
        self.fwd = None
        self.train = None           # (kernel for forward+saved, saved entries)
        self.bwd = {}               # grad mask (+ modes, mode-dependent graphs) -> kernels
        self.step = {}              # grad mask -> (step kernel, head-grad arrays) or None


class KernelStats:
    """Compile counters shared by a JitFunction's traces or by one executor."""

    def __init__(self):
        self.compiles = 0
        self.disk_hits = 0
        self.compile_seconds = 0.0

    def load(self, lowered, kind, key):
        """Load the module of ``lowered`` under its kernel key (agjit.compiler.cache note
        *kernel-cache*)."""
        from .cache import load_module
        t0 = time.perf_counter()
        mod, _on_disk = load_module(key, lowered.digest, lowered.source)
        self.compile_seconds += time.perf_counter() - t0
        return _Kernel(lowered, mod, kind)

    def run_counted(self, kernel, V, P, ctx):
        """Run a kernel for the first time, counting the Numba compilations and disk-cache
        loads it triggers (dispatchers compile lazily on first call)."""
        mod = kernel.module
        disps = [v for k, v in vars(mod).items() if k.startswith("seg")]
        before = [(len(d.overloads), sum(d.stats.cache_hits.values())) for d in disps]
        t0 = time.perf_counter()
        try:
            kernel.run(V, P, ctx)
        except Exception as e:
            par = _parallel_flags(P)
            if not par:
                raise
            # a parallel variant Numba cannot compile: serial from now on (lower note
            # *parallel-loops*); the first run is simply redone
            log.info("parallel segment variant failed to compile (%s: %s); running serial",
                     type(e).__name__, str(e).splitlines()[0] if str(e) else "")
            for k in par:
                P[k] = False
            kernel.run(V, P, ctx)
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


class JitFunction:
    """A function compiled by :func:`jit`.  See the module note *jit-runtime*."""

    def __init__(self, fn, strict=None, reuse_outputs=False, name=None):
        functools.update_wrapper(self, fn)
        self._fn = fn
        self._strict = bool(int(os.environ.get("AGJIT_STRICT", "0"))) if strict is None else strict
        self._reuse = reuse_outputs
        self._traces = {}
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
        return CacheInfo(self._hits, self._misses, self._ntraces, st.compiles,
                         round(st.compile_seconds, 6), st.disk_hits)

    def explain(self):
        """Why each retrace happened, and which ops run eagerly inside the replay."""
        lines = list(self._explanations)
        tr = self._last
        if tr is not None:
            notes = tr.eager_notes()
            if notes:
                lines.append("eager segments in the replay:")
                lines.extend("  " + s for s in notes)
            else:
                lines.append("every op of the last traced graph is compiled (no eager segments)")
            for mask, why in tr.step_notes():
                lines.append("recorded calls with gradients for %s: %s" % (mask, why))
        return "\n".join(lines)

    def source(self):
        """The generated source of the last traced signature's kernels."""
        tr = self._require_trace()
        return "\n".join("# ---- %s kernel ----\n%s" % (k.kind, k.lowered.source)
                         for k in tr.kernels())

    def symbol(self):
        """The traced forward graph of the last signature, as a Symbol."""
        return self._require_trace().sym

    def _require_trace(self):
        if self._last is None:
            raise MXNetError("%s has not been called yet: nothing is traced" % self.__name__)
        return self._last

    # -- calls ------------------------------------------------------------------------------
    def _signature(self, args, kwargs):
        parts = []
        for i, a in enumerate(args):
            if type(a) is NDArray or isinstance(a, NDArray):
                d = a._data
                parts.append(("A", d.shape, d.dtype))
            else:
                try:
                    hash(a)
                except TypeError:
                    raise MXNetError(
                        "%s: positional argument %d (%s) is neither an NDArray nor hashable; "
                        "non-array arguments are static (part of the cache key) and must be "
                        "hashable -- pass arrays as mx.nd.array" % (self.__name__, i,
                                                                    type(a).__name__)) from None
                parts.append(("S", type(a).__name__, a))
        if kwargs:
            for k in sorted(kwargs):
                v = kwargs[k]
                try:
                    hash(v)
                except TypeError:
                    raise MXNetError("%s: keyword argument %r (%s) is static (part of the cache "
                                     "key) and must be hashable" % (self.__name__, k,
                                                                    type(v).__name__)) from None
                parts.append(("K", k, v))
        return (tuple(parts), state.training)

    def __call__(self, *args, **kwargs):
        sig = self._signature(args, kwargs)
        tr = self._traces.get(sig)
        if tr is not None and tr.still_valid():
            self._hits += 1
        else:
            with self._lock:
                # another thread may have traced this signature while we waited
                tr = self._traces.get(sig)
                if tr is not None and tr.still_valid():
                    self._hits += 1
                else:
                    self._misses += 1
                    tr = self._trace(sig, args, kwargs, stale=tr)
        self._last = tr
        return tr.call(self, [a for a in args if isinstance(a, NDArray)] if tr.has_static
                       else list(args))

    def _describe(self, sig):
        parts, training = sig
        out = {}
        k = 0
        for p in parts:
            if p[0] == "A" or p[0] == "S":
                name = self._params[k] if k < len(self._params) else "arg%d" % k
                k += 1
                if p[0] == "A":
                    out[name] = "%s[%s]" % (np.dtype(p[2]).name, ",".join(str(d) for d in p[1]))
                else:
                    out[name] = "%s %r" % (p[1], p[2])
            else:
                out[p[1]] = repr(p[2])
        out["training"] = str(training)
        return out

    def _explain_retrace(self, sig, site, stale):
        now = self._describe(sig)
        if stale is not None:
            msg = "%s retraced at %s: %s" % (self.__name__, site, stale.invalid_reason or
                                             "captured arrays changed")
        elif not self._history:
            return None
        else:
            best, best_d = None, None
            for old, _ in self._history:
                d = self._describe(old)
                diff = sum(1 for k in set(d) | set(now) if d.get(k) != now.get(k))
                if best is None or diff < best_d:
                    best, best_d = d, diff
            diffs = ["%s: now %s, before %s" % (k, now.get(k, "absent"), best.get(k, "absent"))
                     for k in now if now.get(k) != best.get(k)]
            diffs += ["%s: now absent, before %s" % (k, best[k]) for k in best if k not in now]
            msg = "%s retraced at %s: new signature; closest previous differs in %s" % (
                self.__name__, site, "; ".join(diffs) or "nothing visible")
        return msg

    def _trace(self, sig, args, kwargs, stale=None):
        site = _user_site()
        msg = self._explain_retrace(sig, site, stale)
        if msg is not None:
            self._explanations.append(msg)
            log.info(msg)
            if self._strict:
                raise MXNetError("strict mode: %s" % msg)
        tr = _Trace(self, sig, args, kwargs)
        self._traces[sig] = tr
        self._history.append((sig, site))
        self._ntraces += 1
        return tr

class CompiledGraph:
    """A graph with its compiled kernels and buffer plans (shapes fixed per instance).

    ``heads``: output entries; ``input_nodes``: the variables, in argument order;
    ``shapes``/``dtypes``: known entry shapes (at least the inputs'), completed by inference.
    Used by traced functions (:class:`_Trace`) and by Symbol executors.
    """

    def __init__(self, stats, heads, input_nodes, shapes, dtypes, provenance=None,
                 compile_after=0):
        self.stats = stats
        # tiering: the first ``compile_after`` runs use interpreted kernels (every op through
        # its NumPy kernel, no Numba compile); later runs use compiled ones
        self.compile_after = compile_after
        self.runs = 0
        self._tiers = {True: _Compiled(), False: _Compiled()}
        self.heads = list(heads)
        self.sym = Symbol(self.heads)
        self.input_nodes = list(input_nodes)
        self.order = topo_order(self.heads)
        self.provenance = provenance or {}
        self.shapes = dict(shapes)
        self.dtypes = dict(dtypes)
        infer_graph(self.order, self.shapes, self.dtypes)
        self.graph_hash = self._graph_hash()
        self.plans = {}
        self._step_plans = {}       # grad mask -> _StepPlan or None (not eligible)
        self._step_why = {}         # grad mask -> why recorded calls do not use step mode
        # graphs with ops whose forward or gradient depends on the training mode (Dropout,
        # BatchNorm) get their backward kernels per (forward mode, backward mode); see note
        # *modes*
        self.mode_dependent = any(n.op is not None and n.op.train_dependent
                                  for n in self.order)
        # every input is an input of a recorded call (a traced function narrows this to the
        # inputs its graph reads)
        self.all_used = True
        self.used_pos = list(range(len(self.input_nodes)))
        # kernels, plans and step plans are built once under this lock (note *threads*)
        self._lock = threading.RLock()

    @property
    def interpreted(self):
        return self.runs < self.compile_after

    @property
    def compiled(self):
        return self._tiers[self.interpreted]

    def _graph_hash(self):
        import hashlib
        h = hashlib.sha256(self.sym.tojson().encode())
        h.update(repr([n.name for n in self.input_nodes]).encode())
        return h.hexdigest()

    def eager_notes(self):
        notes = []
        if self.compiled.fwd is not None:
            notes.extend(self.compiled.fwd.lowered.eager_notes)
        for (ft, _saved, bk, _h, _hooks) in self.compiled.bwd.values():
            notes.extend(ft.lowered.eager_notes)
            notes.extend("backward: " + x for x in bk.lowered.eager_notes)
        for st in self.compiled.step.values():
            if st is not None:
                notes.extend("step: " + x for x in st[0].lowered.eager_notes)
        return list(dict.fromkeys(notes))

    def kernels(self):
        ks = [self.compiled.fwd]
        for (ft, _saved, bk, _h, _hooks) in self.compiled.bwd.values():
            ks += [ft, bk]
        ks += [st[0] for st in self.compiled.step.values() if st is not None]
        return [k for k in ks if k is not None]

    def run_forward(self, arrays, train, fresh=False, copy=True):
        """Forward-only kernel in training mode ``train``: returns the output arrays --
        copies, or with ``copy=False`` the kernel's buffers, which the next call (from any
        thread) may overwrite; with ``fresh`` the buffers are this call's own."""
        k = self.forward_kernel()
        self.runs += 1
        if fresh:
            V = self._execute(k, arrays, fresh=True, train=train)
            return [V[s] for s in k.lowered.out_slots]
        V, bset, pool = self._execute(k, arrays, fresh=False, train=train, pooled=True)
        outs = [V[s].copy() if copy else V[s] for s in k.lowered.out_slots]
        pool.append(bset)
        return outs

    def run_train(self, arrays, mask, train=True):
        """Forward in mode ``train`` saving what the backward kernel needs; returns
        (outputs, backward closure)."""
        fwd_train, saved, bwd, head_nodes, hooks = self.train_kernels(mask, train)
        self.runs += 1
        V, bset, pool = self._execute(fwd_train, arrays, fresh=False, train=train, pooled=True)
        out_slots = fwd_train.lowered.out_slots
        nh = len(self.heads)
        outs = [V[s].copy() for s in out_slots[:nh]]
        saved_vals = [V[s] for s in out_slots[nh:]]
        node = _JitNode(self, mask, arrays, saved_vals, head_nodes, bwd, hooks, saved,
                        bset=bset, pool=pool, train=train)     # see note *buffer-plan*
        return outs, node

    def run_step(self, arrays, mask, train=True):
        """Speculative training step (note *step-mode*): forward and the backward for a head
        gradient of ones in one kernel.  Returns (outputs, backward closure) or None when
        the graph is not eligible."""
        key = tuple(mask)
        sp = self._step_plans.get(key)
        if sp is None:
            if key in self._step_plans:
                return None
            with self._lock:
                if key in self._step_plans:
                    sp = self._step_plans[key]
                else:
                    st = self.step_kernel(mask)
                    sp = self._step_plans[key] = None if st is None else \
                        _StepPlan(self, st, mask)
            if sp is None:
                return None
        self.runs += 1
        pool = sp.pool
        V = _take(pool, sp.new_slots)
        V[:sp.n_given] = arrays + sp.ones
        ctx = _TRAIN if train else _PREDICT
        if sp.kernel.counted:
            sp.run(V, sp.P, ctx)
        else:
            self._first_run(sp.kernel, V, sp.P, ctx)
        outs = [V[s].copy() for s in sp.head_slots]
        stash = [None if s is None else V[s] for s in sp.grad_slots]
        node = _JitNode(self, mask, arrays, None, None, None, None, None, stash=stash,
                        bset=V, pool=pool, swap_slots=sp.swappable, train=train)
        return outs, node

    def _first_run(self, kernel, V, P, ctx):
        """A kernel's first run counts its compiles; once, under the lock (a second thread
        arriving meanwhile waits for the compile, then runs)."""
        with self._lock:
            if not kernel.counted:
                self.stats.run_counted(kernel, V, P, ctx)
                return
        kernel.run(V, P, ctx)

    # -- kernels --------------------------------------------------------------------------------
    def _lower(self, heads, given, kind, order=None, mask=(), ones=()):
        from .lower import lower_graph
        from .cache import KernelKey
        order = order if order is not None else topo_order(heads)
        infer_graph(order, self.shapes, self.dtypes)
        low = lower_graph(order, heads, given, self.shapes, self.dtypes,
                          self.provenance, name=self.graph_hash[:12] + ":" + kind,
                          interpret=self.interpreted, ones=ones)
        key = KernelKey(graph=self.graph_hash,
                        inputs=tuple((self.dtypes.get((n, i)),
                                      len(self.shapes.get((n, i)) or ()), "C")
                                     for n, i in given),
                        training=kind != "forward", grad_mask=tuple(bool(m) for m in mask),
                        kind=kind + ("/interpreted" if self.interpreted else ""))
        return self.stats.load(low, kind, key)

    def forward_kernel(self):
        c = self.compiled
        if c.fwd is None:
            with self._lock:
                if c.fwd is None:
                    given = [(n, 0) for n in self.input_nodes]
                    c.fwd = self._lower(self.heads, given, "forward")
        return c.fwd

    # Note: modes
    #     A call's training mode (``record(train_mode=)``, ``train_mode()``,
    #     ``predict_mode()``) is part of its signature and is the ctx of its forward kernels.
    #     The backward's ``train_mode`` is read when the backward runs.  For a graph with
    #     mode-dependent ops (OpDef.train_dependent: Dropout, BatchNorm) the backward graph
    #     is built per (forward mode, backward mode) -- ``autodiff.gradient(train=,
    #     forward_train=)`` -- and the forward saves what the backward graphs of both
    #     backward modes need, so a backward in either mode runs on the recorded forward
    #     (Dropout's mask is never redrawn).  Backward hooks (BatchNorm's moving statistics)
    #     run only in a training-mode backward and see the forward's mode, as in eager
    #     autograd.  Step mode, which speculates on a training-mode backward, is off for
    #     these graphs.  Other graphs have one backward graph whatever the modes.
    def train_kernels(self, mask, train=True, bwd_train=True):
        """(forward kernel saving what backward needs, saved entries, backward kernel, head
        grad var nodes, grad output index per input) for gradient mask ``mask``, a forward in
        mode ``train`` and a backward in mode ``bwd_train`` (note *modes*)."""
        c = self.compiled
        key = (tuple(mask), bool(train), bool(bwd_train)) if self.mode_dependent \
            else tuple(mask)
        res = c.bwd.get(key)
        if res is None:
            with self._lock:
                res = c.bwd.get(key)
                if res is None:
                    res = c.bwd[key] = self._train_kernels(mask, bool(train),
                                                           bool(bwd_train))
        return res

    def _train_kernels(self, mask, train, bwd_train):
        from symbol import autodiff
        wrt = [n.name for n, m in zip(self.input_nodes, mask) if m]
        if self.mode_dependent:
            gsyms = [autodiff.gradient(self.sym, wrt, train=b, forward_train=train)
                     for b in (True, False)]
            gsym = gsyms[0 if bwd_train else 1]
        else:
            gsym = autodiff.gradient(self.sym, wrt)
            gsyms = [gsym]
        borders = [topo_order(g._outputs) for g in gsyms]
        border = topo_order(gsym._outputs)
        fwd_nodes = set(self.order)
        # classify forward nodes to decide what to save (see lowering note)
        from .lower import _classify
        infer_graph(self.order, self.shapes, self.dtypes)
        saved = []
        seen = set()
        for n in (m for b in borders for m in b):
            if n.op is None or n not in fwd_nodes:
                continue
            if _classify(n, self.shapes, self.dtypes) != "fused" or n.op.backward_hook:
                for i in range(n.num_outputs()):
                    if (n, i) not in seen:
                        seen.add((n, i))
                        saved.append((n, i))
        hooks = [n for n in self.order if n.op is not None and n.op.backward_hook]
        for n in hooks:
            ents = [(s, i) for (s, i, _v) in n.inputs] + [(n, i) for i in range(n.num_outputs())]
            for (s, i) in ents:
                if s.op is not None and (s, i) not in seen:
                    seen.add((s, i))
                    saved.append((s, i))
        head_nodes = self._head_grad_vars(border, fwd_nodes)
        given_f = [(n, 0) for n in self.input_nodes]
        fwd_train = self._lower(list(self.heads) + saved, given_f, "forward_train", mask=mask)
        given_b = [(n, 0) for n in self.input_nodes] + \
            [(h, 0) for h in head_nodes if h is not None] + saved
        kind = "backward"
        if self.mode_dependent:
            kind += "/%s-%s" % ("train" if train else "predict",
                                "train" if bwd_train else "predict")
        bwd = self._lower(list(gsym._outputs), given_b, kind, order=border, mask=mask)
        return (fwd_train, saved, bwd, head_nodes, hooks)

    # Note: step-mode
    #     Inside record(), a call of a single-output jitted function runs ONE kernel that
    #     computes the forward and, speculatively, the gradients of every input needing one
    #     for a head gradient of ones -- what ``loss.backward()`` asks for.  The forward and
    #     backward loops over the same shape fuse into one pass (no saved intermediates,
    #     one dispatch).  The gradients wait in the call's buffer set until the backward:
    #     with head gradients of ones it hands them over (swapping buffers with a 'write'
    #     gradient nobody else references, else copying or adding); any other head gradient
    #     runs the ordinary training forward + backward kernels on the recorded inputs and
    #     turns step mode off for this signature.  Graphs drawing random numbers, mutating
    #     inputs or with backward hooks (BatchNorm's running statistics) never use it.
    def step_kernel(self, mask):
        c = self.compiled
        key = tuple(mask)
        if key in c.step:
            return c.step[key]
        with self._lock:
            if key in c.step:
                return c.step[key]
            return self._step_kernel(mask, c, key)

    def _step_kernel(self, mask, c, key):
        res = None
        special = sorted(set(n.op.name for n in self.order if n.op is not None and (
            n.op.needs_rng or n.op.backward_hook or n.op.mutate_inputs
            or n.op.train_dependent)))
        if len(self.heads) != 1:
            self._step_why[key] = ("ordinary training forward + backward kernels (step mode "
                                   "needs a single output)")
        elif special:
            self._step_why[key] = ("ordinary training forward + backward kernels (step mode is "
                                   "off for graphs with %s)" % ", ".join(special))
        else:
            from symbol import autodiff
            wrt = [n.name for n, m in zip(self.input_nodes, mask) if m]
            gsym = autodiff.gradient(self.sym, wrt)
            heads = list(self.heads) + list(gsym._outputs)
            order = topo_order(heads)
            fwd_nodes = set(self.order)
            head_vars = [hv for hv in self._head_grad_vars(order, fwd_nodes) if hv is not None]
            known = fwd_nodes | set(self.input_nodes) | set(head_vars)
            free = [n for n in order if n.op is None and n not in known]
            if not free:
                ones = [np.ones(self.shapes[(hv, 0)], self.dtypes[(hv, 0)])
                        for hv in head_vars]
                given = [(n, 0) for n in self.input_nodes] + [(hv, 0) for hv in head_vars]
                res = (self._lower(heads, given, "step", order=order, mask=mask,
                                   ones=[(hv, 0) for hv in head_vars]), ones)
        c.step[key] = res
        return res

    def step_missed(self, mask):
        """A backward asked for other head gradients than ones: stop speculating."""
        self.compiled.step[tuple(mask)] = None
        self._step_plans[tuple(mask)] = None
        self._step_why[tuple(mask)] = ("ordinary training forward + backward kernels (step mode "
                                       "switched off: a backward asked for head gradients "
                                       "other than ones)")

    def step_notes(self):
        """(inputs needing gradients, how recorded calls run) per gradient mask seen."""
        out = []
        names = [n.name for n in self.input_nodes]
        for mask, sp in self._step_plans.items():
            who = ", ".join(nm for nm, m in zip(names, mask) if m) or "none"
            if sp is not None:
                par = _parallel_flags(sp.P)
                why = "step mode (one forward+backward kernel%s)" % (
                    ", parallel loops in " + ", ".join("seg" + k[3:] for k in par) if par else "")
            else:
                why = self._step_why.get(mask, "ordinary training forward + backward kernels")
            out.append((who, why))
        return out

    def _head_grad_vars(self, order, fwd_nodes):
        """Per forward head, the ``<output>_head_grad`` variable of a backward graph (None
        where the gradient does not read it), given the head's shape and dtype."""
        by_name = {n.name: n for n in order if n.op is None and n not in fwd_nodes
                   and n.name.endswith("_head_grad")}
        out = []
        for (n, i) in self.heads:
            hv = by_name.get(n.output_name(i) + "_head_grad")
            out.append(hv)
            if hv is not None:
                self.shapes[(hv, 0)] = self.shapes[(n, i)]
                self.dtypes[(hv, 0)] = self.dtypes[(n, i)]
        return out

    # -- buffer plans ---------------------------------------------------------------------------
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
            kernel.run(V, P, ctx)
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

# held while a parallel segment variant runs (agjit.compiler.lower note *parallel-loops*)
PAR_LOCK = threading.Lock()


def _parallel_ok():
    """Whether large flat loops take the parallel segment variant (``AGJIT_PARALLEL=0``
    turns it off; with one Numba thread it still runs its blocked loops, which keeps the
    float32 partial sums of large reductions short)."""
    global _PAR_OK
    if _PAR_OK is None:
        _PAR_OK = os.environ.get("AGJIT_PARALLEL", "1") != "0"
    return _PAR_OK


class _StepPlan:
    """What a step-mode call needs at hand (note *step-mode*): the kernel, its head-gradient
    ones, slot numbers, and a pool of slot lists whose buffer slots hold preallocated
    buffers (one list per call in flight; see note *buffer-plan*)."""

    __slots__ = ("kernel", "run", "ones", "n_given", "n_slots", "bufs", "P", "pool",
                 "head_slots", "grad_slots", "swappable")

    def __init__(self, graph, st, mask):
        kernel, ones = st
        low = kernel.lowered
        self.kernel = kernel
        self.run = kernel.run
        self.ones = ones
        self.n_given = len(low.given_slots)
        assert list(low.given_slots) == list(range(self.n_given))
        self.n_slots = low.n_slots
        self.bufs, self.P, _pool = graph._plan(kernel)
        self.pool = []
        nh = len(graph.heads)
        self.head_slots = list(low.out_slots[:nh])
        grads = iter(low.out_slots[nh:])
        self.grad_slots = [next(grads) if m else None for m in mask]
        # gradients held in preallocated buffers (not views, inputs or eager results) may
        # be handed over to a variable's gradient
        buf = set(s for s, _shape, _dt in self.bufs)
        outs = [x for x in self.grad_slots if x is not None] + self.head_slots
        self.swappable = [s if s in buf and outs.count(s) == 1 else None
                          for s in self.grad_slots]

    def new_slots(self):
        V = [None] * self.n_slots
        for s, shape, dt in self.bufs:
            V[s] = np.empty(shape, dtype=dt)
        return V


class _Trace(CompiledGraph):
    """One traced signature of a jitted function: its graph, kernels and buffer plans."""

    def __init__(self, jf, sig, args, kwargs):
        from ..tape import state, set_recording
        from ..ndarray import ndarray as ndmod
        self.jf = jf
        self.invalid_reason = None
        tracer = Tracer()
        k = 0
        self.arg_positions = []
        for i, a in enumerate(args):
            if isinstance(a, NDArray):
                name = jf._params[i] if i < len(jf._params) and not jf._params[i].startswith("*") \
                    else "arg%d" % i
                tracer.add_input(a, name)
                self.arg_positions.append(i)
                k += 1
        n_pos = len(tracer.inputs)
        prev_tracer = state.tracer
        state.tracer = tracer
        prev_rec = set_recording(False)
        # the traced (eager) run must not consume random numbers: the replay that follows
        # draws them, so a seeded program gives the same masks on its first call as later
        from .. import random as _random
        gen = _random.generator()
        rng_state = gen.bit_generator.state
        try:
            out = jf._fn(*args, **kwargs)
        finally:
            set_recording(prev_rec)
            state.tracer = prev_tracer
            gen.bit_generator.state = rng_state
        self.single = isinstance(out, NDArray)
        outs = [out] if self.single else out
        if not isinstance(outs, (tuple, list)) or not all(isinstance(o, NDArray) for o in outs) \
                or not outs:
            raise MXNetError("%s must return an NDArray or a tuple/list of NDArrays, got %s"
                             % (jf.__name__, type(out).__name__))
        self.out_type = type(out) if not self.single else None
        heads = []
        for o in outs:
            e = tracer.entry(o)
            if e is None:
                e = tracer.add_input(o, "capture%d" % len(tracer.inputs))
            heads.append(e)
        self.n_pos = n_pos
        self.has_static = len(self.arg_positions) != len(args)
        self.captures = [a for a, _ in tracer.inputs[n_pos:]]
        self.capture_sigs = [(a._data.shape, a._data.dtype) for a in self.captures]
        CompiledGraph.__init__(self, jf.stats, heads, [n for _, n in tracer.inputs],
                               tracer.shapes, tracer.dtypes, tracer.provenance)
        # inputs the graph does not read (an unused argument) are no inputs of the recorded
        # call, as in eager mode: their gradient buffers are left alone
        order = set(self.order)
        self.used = [n in order for n in self.input_nodes]
        self.used_pos = [k for k, u in enumerate(self.used) if u]
        self.rec_nodes = [self.input_nodes[k] for k in self.used_pos]
        self.all_used = len(self.used_pos) == len(self.used)
        nin = len(self.used_pos)
        self.call_attrs = {"num_args": str(nin), "num_outputs": str(len(heads))}
        self.call_parsed = {"num_args": nin, "num_outputs": len(heads)}
        self.bindings = self._bindings()

    def _bindings(self):
        """Closure cells and globals the function reads that hold captured arrays."""
        fn = self.jf._fn
        ids = set(id(a) for a in self.captures)
        out = []
        code = getattr(fn, "__code__", None)
        if code is None:
            return out
        if fn.__closure__:
            for name, cell in zip(code.co_freevars, fn.__closure__):
                try:
                    v = cell.cell_contents
                except ValueError:
                    continue
                if isinstance(v, NDArray) and id(v) in ids:
                    out.append(("closure", name, cell, v))
        g = getattr(fn, "__globals__", {})
        for name in code.co_names:
            v = g.get(name)
            if isinstance(v, NDArray) and id(v) in ids:
                out.append(("global", name, g, v))
        return out

    def still_valid(self):
        for a, (shape, dt) in zip(self.captures, self.capture_sigs):
            if a._data.shape != shape or a._data.dtype != dt:
                self.invalid_reason = "captured array changed from %s[%s] to %s[%s]" % (
                    dt.name, ",".join(map(str, shape)), a._data.dtype.name,
                    ",".join(map(str, a._data.shape)))
                return False
        for kind, name, holder, v in self.bindings:
            cur = holder.cell_contents if kind == "closure" else holder.get(name)
            if cur is not v:
                self.invalid_reason = "%s %r now holds a different array" % (kind, name)
                return False
        return True

    # -- a call -----------------------------------------------------------------------------------
    def call(self, jf, pos_arrays):
        inputs = pos_arrays + self.captures if self.captures else pos_arrays
        arrays = [a._data if a._data.flags.c_contiguous else np.ascontiguousarray(a._data)
                  for a in inputs]
        mask = None
        if state.recording:
            used = self.used
            for k, a in enumerate(inputs):
                e = a._entry
                if e is not None and not e[0].cleared and used[k]:
                    if mask is None:
                        mask = [False] * len(inputs)
                    # a variable with a gradient buffer, or an op output (its graph may lead
                    # to one); constants need none
                    n = e[0]
                    mask[k] = not n.is_var or n.grad_req != "null"
        train = state.training
        if mask is None:
            outs = [_wrap(v) for v in self.run_forward(arrays, train, copy=not jf._reuse)]
            return outs[0] if self.single else self._pack(outs)
        if not any(mask):
            mask = [u and entry_of(a) is not None for a, u in zip(inputs, self.used)]
        r = self.run_step(arrays, mask, train)
        vals, node = r if r is not None else self.run_train(arrays, mask, train)
        outs = [_wrap(v) for v in vals]
        # one tape node (agjit.tape note *tape-model*); its graph node carries the trace for
        # get_symbol's inlining
        rec = inputs if self.all_used else [inputs[k] for k in self.used_pos]
        tn = tape.record(_JIT_OP, self.call_attrs, self.call_parsed, rec, outs,
                         function=node, node_cls=_JitCallNode)
        tn.sym.trace = self
        return outs[0] if self.single else self._pack(outs)

    def _pack(self, outs):
        return tuple(outs) if self.out_type is not list else list(outs)


class _JitNode:
    """The backward of one recorded jitted call (a tape node's ``function``).  A step-mode
    call (note *step-mode*) carries ``stash``: the gradients for head gradients of ones.
    ``train``: the mode the forward ran in (note *modes*).  Its gradients are per recorded
    input of the call (the inputs the graph reads, ``_Trace.used_pos``)."""

    __slots__ = ("trace", "mask", "arrays", "saved_vals", "head_nodes", "bwd", "hooks",
                 "saved", "stash", "bset", "pool", "swap_slots", "train")

    def __init__(self, trace, mask, arrays, saved_vals, head_nodes, bwd, hooks, saved,
                 stash=None, bset=None, pool=None, swap_slots=None, train=True):
        self.trace = trace
        self.mask = mask
        self.arrays = arrays
        self.saved_vals = saved_vals
        self.head_nodes = head_nodes
        self.bwd = bwd
        self.hooks = hooks
        self.saved = saved
        self.stash = stash
        self.bset = bset
        self.pool = pool          # the buffer set goes back to it when the node is freed
        self.swap_slots = swap_slots
        self.train = train

    def __del__(self):
        if self.pool is not None:
            self.pool.append(self.bset)

    def _run(self, out_grads, bwd_train=None):
        """Gradient arrays for head gradients ``out_grads`` (arrays; None means ones) in
        backward mode ``bwd_train`` (default: the thread's training flag, which
        autograd.backward sets to its ``train_mode``).  Returns (gradients per input of the
        graph -- kernel buffers, None where the input needs no gradient --, the buffer set
        they live in and its pool, or None, None for a step-mode stash); the caller gives
        the set back once it has read the gradients."""
        tr = self.trace
        if bwd_train is None:
            bwd_train = state.training
        bwd_train = bool(bwd_train)
        if self.stash is not None:
            if all(g is None or (g.size and (g == 1).all()) for g in out_grads):
                return self.stash, None, None
            # other head gradients: give up speculating for this signature and run the
            # ordinary kernels on the recorded inputs
            tr.step_missed(self.mask)
            fwd_train, saved, bwd, head_nodes, hooks = tr.train_kernels(self.mask, self.train)
            V = tr._execute(fwd_train, self.arrays, fresh=True, train=self.train)
            self.saved_vals = [V[s] for s in fwd_train.lowered.out_slots[len(tr.heads):]]
            self.saved, self.bwd, self.head_nodes, self.hooks = saved, bwd, head_nodes, hooks
            self.stash = None
        bwd, head_nodes, hooks = self.bwd, self.head_nodes, self.hooks
        if tr.mode_dependent:
            # the backward graph of this backward's mode (note *modes*); the forward saved
            # what both modes need
            _f, saved, bwd, head_nodes, hooks = tr.train_kernels(self.mask, self.train,
                                                                 bwd_train)
            assert saved == self.saved
        hg = []
        for g, h in zip(out_grads, head_nodes):
            if h is not None:
                if g is None:
                    shp = tr.shapes[(h, 0)]
                    g = np.ones(shp, dtype=tr.dtypes[(h, 0)])
                hg.append(np.ascontiguousarray(g))
        given = list(self.arrays) + hg + list(self.saved_vals)
        V, bset, pool = tr._execute(bwd, given, fresh=False, train=bwd_train, pooled=True)
        grads = iter(V[s] for s in bwd.lowered.out_slots)
        res = [next(grads) if m else None for m in self.mask]
        if hooks and bwd_train:
            # as eager autograd: only a training-mode backward runs the hooks, which see
            # the forward's mode (BatchNorm: the moving statistics move after a training
            # forward only)
            vals = {}
            for (n, i), v in zip(self.saved, self.saved_vals):
                vals[(n, i)] = v
            for k, n in enumerate(tr.input_nodes):
                vals[(n, 0)] = self.arrays[k]
            for n in hooks:
                ins = [vals[(s, i)] for (s, i, _v) in n.inputs]
                outs = [vals[(n, i)] for i in range(n.num_outputs())]
                n.op.backward_hook(n.parsed, ins, outs, self.train)
        return res, bset, pool

    def backward(self, *out_grads, train=None):
        """Gradients for every recorded input (fresh NDArrays; None where none is needed),
        in backward mode ``train`` (default: the thread's training flag)."""
        res, bset, pool = self._run([g._data for g in out_grads], train)
        tr = self.trace
        if not tr.all_used:
            res = [res[k] for k in tr.used_pos]
        out = [None if r is None else _wrap(r.copy()) for r in res]
        if pool is not None:
            pool.append(bset)
        return out

    def backward_into(self, out_grads, sinks, consume=False):
        """Compute the gradients and write (grad_req 'write') or add ('add') each one
        straight into its variable's gradient: ``sinks`` holds (gradient NDArray, grad_req)
        or None per recorded input; ``out_grads`` arrays, None meaning ones.  The fast path
        of autograd.backward for a graph that is this one call; ``consume``: the graph is
        freed afterwards (no retain_graph), so the stash may be given away."""
        res, bset, pool = self._run(out_grads)
        swap = consume and pool is None
        tr = self.trace
        pos = range(len(res)) if tr.all_used else tr.used_pos
        for k, sink in zip(pos, sinks):
            r = res[k]
            if r is None or sink is None:
                continue
            holder, req = sink
            buf = holder._data
            if req == "add":
                buf += r
            elif swap and self.swap_slots[k] is not None and _swappable(buf, r):
                # hand the computed buffer over; the old one becomes the call's buffer
                self.bset[self.swap_slots[k]] = buf
                holder._data = r
                self.stash[k] = None
            else:
                np.copyto(buf, r, casting="unsafe")
        if pool is not None:
            pool.append(bset)


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


class _JitCallNode(Node):
    """The graph node of a recorded jitted call: a ``_jit_call`` node that knows its trace
    (for get_symbol's inlining)."""
    __slots__ = ("trace",)


def _jit_op():
    return get_op("_jit_call")


_JIT_OP = None


def inline_jit_calls(sym):
    """Replace every ``_jit_call`` node reachable from ``sym`` by the traced graph it ran."""
    order = topo_order(sym._outputs)
    if not any(n.op is _JIT_OP for n in order):
        return sym
    new = {}

    def entry(src, i):
        m = new.get(src)
        if m is None:
            return (src, i)
        return m[i]

    for n in order:
        if n.op is None:
            continue
        ins = [entry(s, i) for (s, i, _v) in n.inputs]
        if n.op is _JIT_OP:
            tr = n.trace
            sub = {v: e for v, e in zip(tr.rec_nodes, ins)}
            copies = {}

            def sentry(s, i):
                if s in sub:
                    return sub[s]
                return (copies[s], i)

            for m in tr.order:
                if m.op is None:
                    continue
                copies[m] = Node(m.op, "%s_%s" % (n.name, m.name), m.attrs,
                                 [sentry(s, i) + (0,) for (s, i, _v) in m.inputs])
            new[n] = [sentry(h, i) for (h, i) in tr.heads]
        elif any(e != (s, i) for e, (s, i, _v) in zip(ins, n.inputs)):
            nn = Node(n.op, n.name, n.attrs, [e + (v,) for e, (_s, _i, v) in zip(ins, n.inputs)])
            new[n] = [(nn, i) for i in range(n.num_outputs())]
    out = Symbol([entry(n, i) for n, i in sym._outputs])
    verify(out._outputs)
    return out


def jit(fn=None, *, strict=None, reuse_outputs=False):
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

    Examples
    --------
    >>> @mx.jit
    ... def f(x):
    ...     return mx.nd.tanh(x) * 2 + 1
    >>> f(mx.nd.ones((2, 3))).shape
    (2, 3)
    """
    global _JIT_OP
    if _JIT_OP is None:
        _JIT_OP = _jit_op()
    if fn is None:
        return lambda f: JitFunction(f, strict=strict, reuse_outputs=reuse_outputs)
    if not callable(fn):
        raise MXNetError("jit: expected a callable, got %s" % type(fn).__name__)
    return JitFunction(fn, strict=strict, reuse_outputs=reuse_outputs)
