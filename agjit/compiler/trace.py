"""Tracing a jitted call: the :class:`Tracer` that agjit.ndarray.invoke reports every op to,
and :class:`_Trace`, one traced signature -- its graph (a CompiledGraph), the captured arrays
and the guards that tell a replay whether they still hold (see agjit.compiler.decorator note
*jit-runtime*)."""
import os
import sys
import warnings

import numpy as np

from symbol.base import MXNetError
from symbol.graph import Node
from symbol.registry import format_attr
from .. import tape
from ..tape import state, set_recording, TapeObserver
from ..ndarray.ndarray import NDArray, _wrap
from .program import CompiledGraph
from .tape_bridge import _JitCallNode, _JIT_OP

__all__ = ["Tracer"]


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


class IdentityMap:
    """A dict keyed by object identity that holds its keys, so no key's id can be reused by
    another object while it is in the map (for NDArrays, whose ``==`` is elementwise)."""

    __slots__ = ("_d",)

    def __init__(self):
        self._d = {}            # id(obj) -> (obj, value)

    def get(self, obj, default=None):
        v = self._d.get(id(obj))
        return default if v is None else v[1]

    def __setitem__(self, obj, value):
        self._d[id(obj)] = (obj, value)

    def __contains__(self, obj):
        return id(obj) in self._d

    def __len__(self):
        return len(self._d)


class Tracer(TapeObserver):
    """Collects the ops of one traced call into a graph (installed as the thread's
    ``tape.TapeObserver`` while the function runs).

    No table here is keyed by ``id()`` of an object that can die (ids are reused once an
    object is freed): entry tables are keyed by the graph nodes themselves, and the table of
    traced arrays is an :class:`IdentityMap`, which holds its arrays."""

    def __init__(self):
        self.values = IdentityMap()     # NDArray -> (Node, index)
        self.inputs = []        # [(NDArray or None, Node)] positional first, then captures
        self.shapes = {}        # (node, i) -> shape
        self.dtypes = {}        # (node, i) -> dtype name
        self.provenance = {}    # node -> "file:line"
        self.n_ops = 0
        self.warned = set()

    def entry(self, arr):
        """The traced entry (Node, index) of ``arr``, or None."""
        return self.values.get(arr)

    def add_input(self, arr, name, bind=True):
        """A graph input for ``arr``; ``bind=False``: an input ops never read (a position
        holding an array that is already an input)."""
        node = Node(None, name)
        if bind:
            self.values[arr] = (node, 0)
        self.inputs.append((arr, node))
        self.shapes[(node, 0)] = arr.shape
        self.dtypes[(node, 0)] = arr._data.dtype.name
        return (node, 0)

    def on_op(self, op, given, inputs, results):
        entries = []
        for x in inputs:
            e = self.values.get(x)
            if e is None:
                e = self.add_input(x, "capture%d" % (len(self.inputs)))
            entries.append(e)
        attrs = {k: format_attr(v) for k, v in given.items()}
        node = Node(op, "n%d" % self.n_ops, attrs, [(n, i, 0) for n, i in entries])
        self.n_ops += 1
        self.provenance[node] = _user_site()
        for i, r in enumerate(results):
            self.values[r] = (node, i)
            self.shapes[(node, i)] = r.shape
            self.dtypes[(node, i)] = r._data.dtype.name

    def frozen(self, arr, what):
        if arr in self.values and what not in self.warned:
            self.warned.add(what)
            warnings.warn("agjit.jit: %s() on a traced array during tracing: its value is frozen "
                          "into the graph as a constant (data-dependent Python control flow is "
                          "not retraced)" % what, RuntimeWarning, stacklevel=4)


class _Trace(CompiledGraph):
    """One traced signature of a jitted function: its graph, kernels and buffer plans."""

    def __init__(self, jf, sig, args, kwargs):
        self.jf = jf
        self.invalid_reason = None
        tracer = Tracer()
        k = 0
        self.arg_positions = []
        # an array passed at several positions is ONE graph input (the ops cannot tell which
        # position they read it through): the later positions become unread inputs, and the
        # signature carries the pattern (signature.alias_pattern), so a call with distinct
        # arrays retraces instead of replaying a graph that reads only the first of them
        self.aliased = False
        for i, a in enumerate(args):
            if isinstance(a, NDArray):
                name = jf._params[i] if i < len(jf._params) and not jf._params[i].startswith("*") \
                    else "arg%d" % i
                if a in tracer.values:
                    self.aliased = True
                    tracer.add_input(a, name, bind=False)
                else:
                    tracer.add_input(a, name)
                self.arg_positions.append(i)
                k += 1
        n_pos = len(tracer.inputs)
        prev_tracer = tape.set_tracer(tracer)
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
            tape.set_tracer(prev_tracer)
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
        # the traced run's values: the interpreted tier's first call reuses them
        # (agjit.compiler.tier note *tiers*)
        self.traced_values = tracer.values if getattr(jf, "_tiered", False) else None
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
        self.node_extra = {"trace": self}
        self.bindings = self._bindings()
        self.pos_guards = self._pos_guards([a for a in args if isinstance(a, NDArray)])
        # the dispatch fast paths (decorator note *dispatch*) match shapes only: a trace that
        # also depends on which objects were passed goes through the signature path
        self.fast_ok = not self.aliased and not self.pos_guards
        # per output, the inputs it depends on: an output that depends on no recorded input
        # gets no autograd entry, as an eager op on unrecorded inputs (a backward from it
        # raises as in eager mode and MXNet)
        self.head_deps = None
        if len(heads) > 1:
            deps = {n: frozenset([k]) for k, n in enumerate(self.input_nodes)}
            for n in self.order:
                if n.op is not None:
                    deps[n] = frozenset().union(*[deps[s] for s, _i, _v in n.inputs])
            hd = [deps[h] for h, _i in heads]
            if any(d != frozenset(self.used_pos) for d in hd):
                self.head_deps = hd
                self.rec_deps = [frozenset(j for j, p in enumerate(self.used_pos) if p in d)
                                 for d in hd]

    def _held_arrays(self):
        """(kind, name, holder, array) for each closure cell and global the function reads
        that holds an NDArray."""
        fn = self.jf._fn
        code = getattr(fn, "__code__", None)
        if code is None:
            return
        if fn.__closure__:
            for name, cell in zip(code.co_freevars, fn.__closure__):
                try:
                    v = cell.cell_contents
                except ValueError:
                    continue
                if isinstance(v, NDArray):
                    yield "closure", name, cell, v
        g = getattr(fn, "__globals__", {})
        for name in code.co_names:
            v = g.get(name)
            if isinstance(v, NDArray):
                yield "global", name, g, v

    def _bindings(self):
        """Closure cells and globals the function reads that hold captured arrays."""
        caps = IdentityMap()
        for a in self.captures:
            caps[a] = True
        return [b for b in self._held_arrays() if b[3] in caps]

    def _pos_guards(self, pos_arrays):
        """Closure cells and globals the function reads that held a positional array when it
        was traced: the ops read such an array through the argument's graph input, so a
        replay is only right while the argument is still that same object."""
        if not pos_arrays:
            return []
        pos = IdentityMap()
        for k, a in enumerate(pos_arrays):
            if pos.get(a) is None:
                pos[a] = k
        return [(kind, name, holder, pos.get(v)) for kind, name, holder, v in self._held_arrays()
                if v in pos]

    def guards_hold(self, pos_arrays):
        """Whether each closure/global of :meth:`_pos_guards` still holds the array passed at
        its position (else ``invalid_reason`` says which does not)."""
        for kind, name, holder, k in self.pos_guards:
            try:
                cur = holder.cell_contents if kind == "closure" else holder.get(name)
            except ValueError:
                cur = None
            if k >= len(pos_arrays) or cur is not pos_arrays[k]:
                self.invalid_reason = ("%s %r was traced as the array passed as argument %d "
                                       "and is not that array now" % (kind, name, k))
                return False
        return True

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
        """Run this signature on ``pos_arrays`` (the call's NDArrays): forward only, or
        inside record() the step or training kernels and ONE tape node (agjit.tape note
        *tape-model*)."""
        inputs = pos_arrays + self.captures if self.captures else pos_arrays
        arrays = [a._data for a in inputs]
        for d in arrays:
            if not d.flags.c_contiguous:
                arrays = [np.ascontiguousarray(d) for d in arrays]
                break
        mask = None
        if state.recording:
            used = self.used
            ents = [a._entry for a in inputs]       # live autograd entries, None elsewhere
            k = -1
            for e in ents:
                k += 1
                if e is not None:
                    n = e[0]
                    if n.cleared:
                        ents[k] = None
                    elif used[k]:
                        if mask is None:
                            mask = [False] * len(inputs)
                        # a variable with a gradient buffer, or an op output (its graph may
                        # lead to one); constants need none
                        mask[k] = not n.is_var or n.grad_req != "null"
        train = state.training
        if mask is None:
            outs = [_wrap(v) for v in self.run_forward(arrays, train, copy=not jf._reuse)]
            return outs[0] if self.single else self._pack(outs)
        if not any(mask):
            mask = [u and e is not None for e, u in zip(ents, used)]
        r = self.run_step(arrays, mask, train)
        vals, node = r if r is not None else self.run_train(arrays, mask, train)
        outs = [_wrap(v) for v in vals]
        # an output that depends on no input with autograd information gets no entry
        dead = None if self.head_deps is None else \
            [o for o, d in zip(outs, self.head_deps) if not any(map(ents.__getitem__, d))]
        # one tape node (agjit.tape note *tape-model*); its graph node carries the trace for
        # get_symbol's inlining (built on first use, knowing this trace: tape.TapeNode.sym)
        rec = inputs
        if not self.all_used:
            rec = [inputs[k] for k in self.used_pos]
            ents = [ents[k] for k in self.used_pos]
        tape.record_entries(_JIT_OP, self.call_attrs, self.call_parsed, rec, ents, outs,
                            node, _JitCallNode, self.node_extra)
        if dead:
            for o in dead:
                o._entry = None
        return outs[0] if self.single else self._pack(outs)

    def _pack(self, outs):
        return tuple(outs) if self.out_type is not list else list(outs)
