"""A compiled graph: a Symbol's heads and inputs with fixed shapes, its kernels (forward,
training forward + backward per gradient mask and mode, step) and their tiers.  Used by a
traced signature of ``mx.jit`` (agjit.compiler.trace ``_Trace``) and by the executors
(agjit.executor).  Buffer plans: agjit.compiler.buffers; step mode: agjit.compiler.step."""
import re
import threading

from symbol.graph import topo_order
from symbol.symbol import Symbol
from .buffers import BufferPlans
from .signature import run_kernel
from .shapes import infer_graph
from .step import StepMode
from .tape_bridge import _JitNode

__all__ = ["CompiledGraph"]

_FWD = ("forward",)


class _Compiled:
    """Everything for one traced signature: graph, kernels, buffer plan."""

    def __init__(self):
        self.fwd = None
        self.train = None           # (kernel for forward+saved, saved entries)
        self.bwd = {}               # grad mask (+ modes, mode-dependent graphs) -> kernels
        self.step = {}              # grad mask -> (step kernel, head-grad arrays) or None


_HEAD_GRAD_NAME = re.compile(r"_head_grad\d*\Z")


class CompiledGraph(StepMode, BufferPlans):
    """A graph with its compiled kernels and buffer plans (shapes fixed per instance).

    ``heads``: output entries; ``input_nodes``: the variables, in argument order;
    ``shapes``/``dtypes``: known entry shapes (at least the inputs'), completed by inference.
    Used by traced functions (:class:`_Trace`) and by Symbol executors.
    """

    def __init__(self, stats, heads, input_nodes, shapes, dtypes, provenance=None,
                 compile_after=0, tiered=False):
        self.stats = stats
        # untiered: the first ``compile_after`` runs use interpreted kernels (generated glue
        # with every op through its NumPy kernel), later runs compile on the calling thread;
        # tiered (agjit.compiler.tier note *tiers*): calls run on the interpreted tier until
        # a background compile of their kernels is done (requested at the
        # ``compile_after``-th call)
        self.compile_after = 0 if tiered else compile_after
        self._tier = None
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
        self._arenas = []           # free scratch arenas (buffers note *buffer-plan*)
        self._arena_bytes = 0
        self._step_plans = {}       # grad mask -> _StepPlan or None (not eligible)
        self._step_why = {}         # grad mask -> why recorded calls do not use step mode
        self.head_ones = {}         # head-gradient node -> its ones, reused (tape_bridge)
        self.bwd_covers = {}        # backward kernel of some heads -> inputs it computes
        self.rec_deps = None        # per head, the recorded inputs it reads (None: all)
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
        if tiered:
            self.enable_tiers(compile_after)

    def enable_tiers(self, start_after=0):
        """Run on the interpreted tier until the compiled kernels of a call's need are built
        off the calling thread (agjit.compiler.tier note *tiers*); the compile is requested
        at the ``start_after``-th call (0 or 1: the first)."""
        from .tier import Tiers
        self.compile_after = 0
        self._tier = Tiers(self, start_after)

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
            if bk is not None:
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
        return list(dict.fromkeys(k for k in ks if k is not None))

    # -- calls: the interpreted tier until the compiled kernels are ready -----------------
    def run_forward(self, arrays, train, fresh=False, copy=True):
        """Forward-only kernel in training mode ``train``: returns the output arrays --
        copies, or with ``copy=False`` the kernel's buffers, which the next call (from any
        thread) may overwrite; with ``fresh`` the buffers are this call's own."""
        t = self._tier
        if t is not None:
            if _FWD not in t.ready:
                t.count("interpreted")
                outs = t.interp.run_forward(arrays, train)
                t.request(_FWD, arrays)
                return outs
            t.count("compiled")
        return self._compiled_forward(arrays, train, fresh, copy)

    def run_train(self, arrays, mask, train=True):
        """Forward in mode ``train`` saving what the backward kernel needs; returns
        (outputs, backward closure)."""
        t = self._tier
        if t is not None:
            need = ("train", tuple(mask), bool(train))
            if need not in t.ready:
                t.count("interpreted")
                r = t.interp.run_train(arrays, mask, train)
                t.request(need, arrays)
                return r
            t.count("compiled")
        return self._compiled_train(arrays, mask, train)

    def run_step(self, arrays, mask, train=True):
        """A recorded call of a jitted function: the step kernel (agjit.compiler.step note
        *step-mode*), or None when the graph is not eligible (the caller then runs
        :meth:`run_train`); on the interpreted tier (outputs, backward closure)."""
        t = self._tier
        if t is not None:
            need = ("step", tuple(mask), bool(train))
            if need not in t.ready:
                t.count("interpreted")
                r = t.interp.run_train(arrays, mask, train)
                t.request(need, arrays)
                return r
            r = StepMode.run_step(self, arrays, mask, train)
            if r is not None:
                t.count("compiled")
            return r
        return StepMode.run_step(self, arrays, mask, train)

    def _compiled_step(self, arrays, mask, train=True):
        return StepMode.run_step(self, arrays, mask, train)

    def wait_compiled(self, timeout=None):
        """Block until the requested background compiles are done; True when none runs."""
        return True if self._tier is None else self._tier.wait(timeout)

    def _compiled_forward(self, arrays, train, fresh=False, copy=True):
        k = self.forward_kernel()
        self.runs += 1
        if fresh:
            V = self._execute(k, arrays, fresh=True, train=train)
            return [V[s] for s in k.lowered.out_slots]
        V, bset, pool = self._execute(k, arrays, fresh=False, train=train, pooled=True)
        outs = [V[s].copy() if copy else V[s] for s in k.lowered.out_slots]
        pool.append(bset)
        return outs

    def _compiled_train(self, arrays, mask, train=True):
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

    def _first_run(self, kernel, V, P, ctx):
        """A kernel's first run counts its compiles; once, under the lock (a second thread
        arriving meanwhile waits for the compile, then runs)."""
        with self._lock:
            if not kernel.counted:
                self.stats.run_counted(kernel, V, P, ctx)
                return
        run_kernel(kernel, V, P, ctx)

    # -- kernels --------------------------------------------------------------------------------
    def _lower(self, heads, given, kind, order=None, mask=(), ones=()):
        from .import_guard import first_import, LIBRARY_MODULES
        first_import(LIBRARY_MODULES)     # note *import-race*: not beside the set-up thread
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
    def train_kernels(self, mask, train=True, bwd_train=True, heads=None):
        """(forward kernel saving what backward needs, saved entries, backward kernel, head
        grad var nodes, nodes with backward hooks) for gradient mask ``mask``, a forward in
        mode ``train`` and a backward in mode ``bwd_train`` (note *modes*).  ``heads``: which
        outputs have head gradients (None: all; see note *partial-heads*)."""
        c = self.compiled
        key = (tuple(mask), bool(train), bool(bwd_train)) if self.mode_dependent \
            else tuple(mask)
        if heads is not None:
            key = ("heads", key, tuple(heads))
        res = c.bwd.get(key)
        if res is None:
            with self._lock:
                res = c.bwd.get(key)
                if res is None:
                    res = c.bwd[key] = (
                        self._train_kernels(mask, bool(train), bool(bwd_train)) if heads is None
                        else self._partial_kernels(mask, bool(train), bool(bwd_train), heads))
        return res

    # Note: partial-heads
    #     A backward from some outputs of a multi-output graph only (``y[1].backward()``)
    #     runs a backward graph built from those heads alone, as eager autograd skips the
    #     ops only absent heads reach: feeding zeros for the absent heads into the full
    #     backward would multiply them with infinite partials (``d sqrt(x)/dx`` at 0) into
    #     nan.  It reads what the full training forward saved; inputs only absent heads read
    #     get no gradient (``bwd_covers``: which inputs a backward kernel computes).
    def _partial_kernels(self, mask, train, bwd_train, heads):
        from symbol import autodiff
        fwd_train, saved, _bwd, _h, hooks = self.train_kernels(mask, train, bwd_train)
        sub = Symbol([h for h, p in zip(self.heads, heads) if p])
        sub_order = topo_order(sub._outputs)
        reach = set(sub_order)
        covers = [bool(m) and n in reach for n, m in zip(self.input_nodes, mask)]
        hooks = [n for n in hooks if n in reach]
        wrt = [n.name for n, c in zip(self.input_nodes, covers) if c]
        if not wrt:
            return (fwd_train, saved, None, [None] * len(self.heads), hooks)
        gsym = autodiff.gradient(sub, wrt, train=bwd_train, forward_train=train) \
            if self.mode_dependent else autodiff.gradient(sub, wrt)
        border = topo_order(gsym._outputs)
        head_nodes = self._head_grad_vars(border, set(self.order), heads)
        given_b = [(n, 0) for n in self.input_nodes] + \
            [(h, 0) for h in head_nodes if h is not None] + saved
        kind = "backward/heads-" + "".join("1" if p else "0" for p in heads)
        if self.mode_dependent:
            kind += "/%s-%s" % ("train" if train else "predict",
                                "train" if bwd_train else "predict")
        bwd = self._lower(list(gsym._outputs), given_b, kind, order=border, mask=mask)
        self.bwd_covers[bwd] = covers
        return (fwd_train, saved, bwd, head_nodes, hooks)

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

    def _head_grad_vars(self, order, fwd_nodes, present=None):
        """Per forward head, the ``<output>_head_grad`` variable of a backward graph (None
        where the gradient does not read it, or the head is not one of the ``present`` ones
        the graph was built from), given the head's shape and dtype."""
        by_name = {n.name: n for n in order if n.op is None and n not in fwd_nodes
                   and _HEAD_GRAD_NAME.search(n.name)}
        out = []
        used = set()
        for k, (n, i) in enumerate(self.heads):
            if present is not None and not present[k]:
                out.append(None)
                continue
            # symbol.autodiff names a head returned twice (f returning (y, y)) "<out>_head_grad",
            # then "<out>_head_grad1", ...: follow the same sequence
            base = name = n.output_name(i) + "_head_grad"
            k = 1
            while name in used:
                name = "%s%d" % (base, k)
                k += 1
            used.add(name)
            hv = by_name.get(name)
            out.append(hv)
            if hv is not None:
                self.shapes[(hv, 0)] = self.shapes[(n, i)]
                self.dtypes[(hv, 0)] = self.dtypes[(n, i)]
        return out

