"""The JIT on the autograd tape (agjit.tape note *compiled-calls*): a recorded jitted call is
one tape node whose ``function`` is a :class:`_JitNode` (a ``tape.CompiledNode``: its backward
runs the compiled backward kernel) and whose graph node is a :class:`_JitCallNode` (a
``tape.CompiledCall``: it expands to the traced graph for ``autograd.get_symbol``)."""
import numpy as np

from symbol.graph import Node
from symbol.registry import get_op
from ..tape import state, CompiledNode, CompiledCall, ONES
from ..ndarray.ndarray import _wrap
from .buffers import _swappable

__all__ = []

_new = object.__new__


class _JitNode(CompiledNode):
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

    @classmethod
    def for_step(cls, trace, mask, arrays, stash, bset, pool, swap_slots, train):
        """The node of a step-mode call (no saved values yet; note *step-mode*), without the
        keyword handling of ``__init__`` (note *dispatch*)."""
        self = _new(cls)
        self.trace = trace
        self.mask = mask
        self.arrays = arrays
        self.saved_vals = self.head_nodes = self.bwd = self.hooks = self.saved = None
        self.stash = stash
        self.bset = bset
        self.pool = pool
        self.swap_slots = swap_slots
        self.train = train
        return self

    def __del__(self):
        if self.pool is not None:
            self.pool.append(self.bset)

    def inputs_of(self, k):
        d = self.trace.rec_deps
        return None if d is None else d[k]

    def _run(self, out_grads, bwd_train=None):
        """Gradient arrays for head gradients ``out_grads`` (per output: an array, ``ONES``,
        or None where no gradient flows from that output) in backward mode ``bwd_train``
        (default: the thread's training flag, which autograd.backward sets to its
        ``train_mode``).  Returns (gradients per input of the graph -- kernel buffers, None
        where the input needs no gradient --, the buffer set they live in and its pool, or
        None, None for a step-mode stash); the caller gives the set back once it has read
        the gradients."""
        if self.stash is not None and len(out_grads) == 1 and out_grads[0] is ONES:
            return self.stash, None, None       # the step-mode call's speculation held
        tr = self.trace
        if self.stash is not None and len(out_grads) > 1 and (
                out_grads[tr._spec_head] is ONES and
                out_grads.count(None) == len(out_grads) - 1 or tr.speculated(out_grads)):
            # (a multi-output step, note *step-mode*: ONES for the speculated output and
            # nothing from the others -- what Gluon's composed call sees -- is checked first)
            return self.stash, None, None
        if bwd_train is None:
            bwd_train = state.training
        bwd_train = bool(bwd_train)
        present = [g is not None for g in out_grads]
        if not any(present):
            return [None] * len(self.mask), None, None
        if self.stash is not None:
            if tr.speculated(out_grads):
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
        covers = self.mask
        if tr.mode_dependent or not all(present):
            # the backward graph of this backward's mode (note *modes*) and of the heads
            # that have gradients (an absent head's branch is not built: its zero gradient
            # would multiply infinite partials into nan); the forward saved what every
            # mode and head needs
            _f, saved, bwd, head_nodes, hooks = tr.train_kernels(
                self.mask, self.train, bwd_train, None if all(present) else tuple(present))
            assert saved == self.saved
            covers = tr.bwd_covers.get(bwd, self.mask) if bwd is not None else \
                [False] * len(self.mask)
        bset = pool = None
        if bwd is not None:
            hg = []
            for g, h in zip(out_grads, head_nodes):
                if h is not None:
                    if g is ONES:
                        # one array of ones per head, reused (kernels never write their
                        # given arrays; step mode's head ones are shared the same way)
                        g = tr.head_ones.get(h)
                        if g is None:
                            g = tr.head_ones[h] = np.ascontiguousarray(
                                np.ones(tr.shapes[(h, 0)], dtype=tr.dtypes[(h, 0)]))
                    # (ascontiguousarray makes a 0-d array 1-d, as the kernels expect)
                    hg.append(g if g.ndim and g.flags.c_contiguous else np.ascontiguousarray(g))
            given = list(self.arrays) + hg + list(self.saved_vals)
            V, bset, pool = tr._execute(bwd, given, fresh=False, train=bwd_train, pooled=True)
            grads = iter(V[s] for s in bwd.lowered.out_slots)
        # None for an input only absent heads read: no gradient reaches it (eager's
        # backward from those heads does not see it either)
        res = [next(grads) if c else None for c in covers]
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
        res, bset, pool = self._run([g if g is None or g is ONES else g._data
                                     for g in out_grads], train)
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
        or None per recorded input; ``out_grads`` arrays, ONES or None.  The fast path
        of autograd.backward for a graph that is this one call; ``consume``: the graph is
        freed afterwards (no retain_graph), so the stash may be given away."""
        res, bset, pool = self._run(out_grads)
        swap = consume and pool is None and self.stash is not None
        tr = self.trace
        swap_slots = self.swap_slots
        j = -1
        for sink in sinks:
            j += 1
            if sink is None:
                continue
            k = j if tr.all_used else tr.used_pos[j]        # the graph's input of sink j
            r = res[k]
            if r is None:
                continue
            holder, req = sink
            buf = holder._data
            if req == "add":
                buf += r
            elif swap and r.size >= _SWAP_MIN and swap_slots[k] is not None \
                    and _swappable(buf, r):
                # hand the computed buffer over; the old one becomes the call's buffer
                # (a small one is cheaper to copy than to check)
                self.bset[swap_slots[k]] = buf
                holder._data = r
                self.stash[k] = None
            else:
                buf[...] = r        # (a buffer of another dtype takes the cast values)
        if pool is not None:
            pool.append(bset)


_SWAP_MIN = 64      # elements: below, a copy is cheaper than the reference check


class _JitCallNode(CompiledCall):
    """The graph node of a recorded jitted call: a ``_jit_call`` node that knows its trace,
    so ``autograd.get_symbol`` can inline the traced graph (tape note *compiled-calls*)."""
    __slots__ = ("trace",)

    def expand(self, inputs):
        tr = self.trace
        sub = {v: e for v, e in zip(tr.rec_nodes, inputs)}
        copies = {}

        def sentry(s, i):
            if s in sub:
                return sub[s]
            return (copies[s], i)

        for m in tr.order:
            if m.op is None:
                continue
            copies[m] = Node(m.op, "%s_%s" % (self.name, m.name), m.attrs,
                             [sentry(s, i) + (0,) for (s, i, _v) in m.inputs])
        return [sentry(h, i) for (h, i) in tr.heads]


# the op of a recorded jitted call's tape node (symbol/ops/custom.py)
_JIT_OP = get_op("_jit_call")
