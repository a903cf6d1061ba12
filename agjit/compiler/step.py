"""Step mode: one forward+backward kernel for a recorded call of a single-output jitted
function, speculating on a head gradient of ones.

Note: step-mode
    Inside record(), a call of a single-output jitted function runs ONE kernel that
    computes the forward and, speculatively, the gradients of every input needing one
    for a head gradient of ones -- what ``loss.backward()`` asks for.  The forward and
    backward loops over the same shape fuse into one pass (no saved intermediates,
    one dispatch).  The gradients wait in the call's buffer set until the backward:
    with head gradients of ones it hands them over (swapping buffers with a 'write'
    gradient nobody else references, else copying or adding); any other head gradient
    runs the ordinary training forward + backward kernels on the recorded inputs and
    turns step mode off for this signature.  Graphs drawing random numbers, mutating
    inputs or with backward hooks (BatchNorm's running statistics) never use it.

    A multi-output function is eligible only when its JitFunction names the output the
    backward will start from (``step_head``: Gluon's composition of a hybridized network
    with the hybridized loss applied to its output, agjit.gluon.block note *composition*):
    the kernel speculates on ones for that output and no gradient from the others, and
    computes gradients for the inputs that output reads (the others get none, as a
    backward from that output alone gives them none).
"""
import numpy as np

from symbol.graph import topo_order
from symbol.symbol import Symbol
from ..ndarray.ndarray import _TRAIN, _PREDICT
from .buffers import _parallel_flags
from ..tape import ONES
from .tape_bridge import _JitNode

__all__ = ["StepMode"]


class StepMode:
    """Mixin of :class:`agjit.compiler.program.CompiledGraph`: step kernels, step plans and
    what explain() says about them (``self._step_plans``, ``self._step_why``)."""

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
        try:
            V = pool.pop()              # atomic under the GIL (buffers note *threads*)
        except IndexError:
            V = sp.new_slots()
        V[:sp.n_given] = arrays + sp.ones if sp.ones else arrays
        if sp.kernel.counted:
            try:
                sp.run(V, sp.P, _TRAIN if train else _PREDICT)
            except Exception as e:      # name the running node (zero cost when nothing raises)
                from .signature import annotate_error
                annotate_error(sp.kernel, e)
                raise
        else:
            self._first_run(sp.kernel, V, sp.P, _TRAIN if train else _PREDICT)
        outs = [V[s].copy() for s in sp.head_slots]
        stash = [None if s is None else V[s] for s in sp.grad_slots]
        return outs, _JitNode.for_step(self, mask, arrays, stash, V, pool, sp.swappable, train)

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
        sh = self.step_head()
        if sh is None:
            self._step_why[key] = ("ordinary training forward + backward kernels (step mode "
                                   "needs a single output)")
        elif special:
            self._step_why[key] = ("ordinary training forward + backward kernels (step mode is "
                                   "off for graphs with %s)" % ", ".join(special))
        else:
            from symbol import autodiff
            if len(self.heads) == 1:
                covers = [bool(m) for m in mask]
                sub = self.sym
            else:       # gradients of the speculated output only
                sub = Symbol([self.heads[sh]])
                reach = set(topo_order(sub._outputs))
                covers = [bool(m) and n in reach for n, m in zip(self.input_nodes, mask)]
            wrt = [n.name for n, m in zip(self.input_nodes, covers) if m]
            gsym = autodiff.gradient(sub, wrt) if wrt else None
            heads = list(self.heads) + (list(gsym._outputs) if gsym is not None else [])
            order = topo_order(heads)
            fwd_nodes = set(self.order)
            head_vars = [hv for hv in self._head_grad_vars(order, fwd_nodes) if hv is not None]
            known = fwd_nodes | set(self.input_nodes) | set(head_vars)
            free = [n for n in order if n.op is None and n not in known]
            if not free and gsym is not None:
                ones = [np.ones(self.shapes[(hv, 0)], self.dtypes[(hv, 0)])
                        for hv in head_vars]
                given = [(n, 0) for n in self.input_nodes] + [(hv, 0) for hv in head_vars]
                kind = "step" if len(self.heads) == 1 else "step/head%d" % sh
                res = (self._lower(heads, given, kind, order=order, mask=mask,
                                   ones=[(hv, 0) for hv in head_vars]), ones, covers)
        c.step[key] = res
        return res

    def step_head(self):
        """The output a step kernel speculates on (0 for a single-output graph), or None:
        not eligible (a multi-output function whose JitFunction names no ``step_head``)."""
        if len(self.heads) == 1:
            return 0
        jf = getattr(self, "jf", None)
        sh = getattr(jf, "step_head", None)
        return sh if sh is not None and 0 <= sh < len(self.heads) else None

    def speculated(self, out_grads):
        """Whether head gradients ``out_grads`` (arrays, ONES or None per output) are what
        a step kernel computed its gradients for: ones (an array of ones, or ONES) for
        the speculated output, None for every other."""
        sh = self._spec_head
        k = 0
        for g in out_grads:
            if k == sh:
                if g is not ONES and (g is None or not (g.size and (g == 1).all())):
                    return False
            elif g is not None:
                return False
            k += 1
        return True

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


class _StepPlan:
    """What a step-mode call needs at hand (note *step-mode*): the kernel, its head-gradient
    ones, slot numbers, and a pool of slot lists whose buffer slots hold preallocated
    buffers (one list per call in flight; see note *buffer-plan*)."""

    __slots__ = ("kernel", "run", "ones", "n_given", "n_slots", "bufs", "plan", "P", "pool",
                 "head_slots", "grad_slots", "swappable")

    def __init__(self, graph, st, mask):
        kernel, ones, covers = st
        graph._spec_head = graph.step_head()    # read by speculated()
        low = kernel.lowered
        self.kernel = kernel
        self.run = kernel.run
        self.ones = ones
        self.n_given = len(low.given_slots)
        assert list(low.given_slots) == list(range(self.n_given))
        self.n_slots = low.n_slots
        self.plan = graph._plan(kernel)
        self.bufs, self.P = self.plan.bufs, self.plan.P
        self.pool = []
        nh = len(graph.heads)
        self.head_slots = list(low.out_slots[:nh])
        grads = iter(low.out_slots[nh:])
        self.grad_slots = [next(grads) if c else None for c in covers]
        # gradients held in preallocated buffers (not views, inputs or eager results) may
        # be handed over to a variable's gradient
        buf = set(self.plan.own_slots)
        outs = [x for x in self.grad_slots if x is not None] + self.head_slots
        self.swappable = [s if s in buf and outs.count(s) == 1 else None
                          for s in self.grad_slots]

    def new_slots(self):
        return self.plan.new_slots(self.n_slots)

