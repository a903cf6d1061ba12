"""The JIT on the autograd tape: a recorded jitted call is one tape node whose backward runs
the compiled backward kernel (:class:`_JitNode`); its graph node carries the trace, so
``autograd.get_symbol`` can inline the traced graph (:func:`inline_jit_calls`)."""
import numpy as np

from symbol.graph import Node, topo_order, verify
from symbol.registry import get_op
from symbol.symbol import Symbol
from ..tape import state
from ..ndarray.ndarray import _wrap
from .buffers import _swappable

__all__ = ["inline_jit_calls"]


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


class _JitCallNode(Node):
    """The graph node of a recorded jitted call: a ``_jit_call`` node that knows its trace
    (for get_symbol's inlining)."""
    __slots__ = ("trace",)


# the op of a recorded jitted call's tape node (symbol/ops/custom.py)
_JIT_OP = get_op("_jit_call")


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

