"""Scheduling: a graph -> steps (fused loops, kernel calls, views, eager ops), the values
that live in buffers, and the segments (one Numba function each) -- see agjit.compiler.lower
note *lowering*.  Nothing here writes source text; agjit.compiler.codegen does.
"""
from . import oplower

__all__ = ["Step", "Schedule", "schedule"]


class Step:
    """One step: ``kind`` 'fused' (``nodes`` one loop), 'call', 'view' or 'eager' (one node).
    A fused step also knows its loop shape, whether it reads every operand flat (``flat``),
    the entry its loop sizes come from (``size_entry``) and its cost per element."""

    __slots__ = ("kind", "nodes", "shape", "flat", "size_entry", "ext_inputs", "cost")

    def __init__(self, kind, nodes):
        self.kind = kind
        self.nodes = nodes
        self.shape = None
        self.flat = False
        self.size_entry = None
        self.ext_inputs = []
        self.cost = 0

    @property
    def node(self):
        return self.nodes[0]


class Segment:
    """Consecutive fused/call steps compiled as one Numba function; ``parallel`` when every
    step is a flat loop (it then gets a parallel variant, lower note *parallel-loops*)."""

    __slots__ = ("index", "steps", "parallel")

    def __init__(self, index, steps):
        self.index = index
        self.steps = steps
        self.parallel = all(st.kind == "fused" and st.flat for st in steps)


class Schedule:
    """The scheduled graph.  ``items`` in run order: Segment | Step (view / eager);
    ``slots``: one per distinct value (aliases share their source's slot);
    ``materialised``: entries written to memory; ``buffer_slots`` need a preallocated
    buffer, ``view_slots`` hold views."""

    def __init__(self):
        self.items = []
        self.slot = {}
        self.alias = {}
        self.node_of_slot = []
        self.given_slots = []
        self.out_slots = []
        self.buffer_slots = []
        self.view_slots = []
        self.materialised = set()
        self.ones = set()
        self.heads = []
        self.life = {}          # buffer slot -> (first step, last step) that touches it
        self.pinned = set()     # buffer slots a result may refer to (note *buffer-liveness*)

    def slot_of(self, e):
        k = (e[0], e[1])
        a = self.alias.get(k)
        if a is not None:
            return self.slot_of(a)
        s = self.slot.get(k)
        if s is None:
            s = len(self.node_of_slot)
            self.slot[k] = s
            self.node_of_slot.append((e[0], e[1]))
        return s

    @property
    def segments(self):
        return [it for it in self.items if isinstance(it, Segment)]


def _fusible_reduction(n, group, gshape, shapes):
    """A full sum/mean (a Reduction over every axis) of a value computed by the open loop,
    where the loop has an input of the loop's full shape to read its sizes from."""
    if not oplower.is_reduction(n) or len(n.inputs) != 1:
        return False
    src, i, _v = n.inputs[0]
    ids = set(id(m) for m in group)
    if id(src) not in ids or oplower.is_reduction(src) or \
            tuple(shapes.get((src, i)) or ()) != tuple(gshape):
        return False
    nd = len(gshape)
    if nd == 0 or tuple(oplower.node_lowering(n).axes(n.parsed, nd)) != tuple(range(nd)):
        return False
    return any(tuple(shapes.get((s, k)) or ()) == tuple(gshape)
               for m in group for (s, k, _v) in m.inputs if id(s) not in ids)


def _steps(sc, order, heads, given, shapes, dtypes, interpret):
    given_ids = set((n, i) for n, i in given)
    head_keys = set((n, i) for n, i in heads)
    produced = set()      # entries computed into buffers by this kernel's loops and calls
    aliased_src = set()   # entries already returned through an aliased gradient output
    steps = []
    cur, cur_shape, cur_red = [], None, set()

    def close():
        nonlocal cur, cur_shape
        if cur:
            steps.append(Step("fused", cur))
        cur, cur_shape = [], None
        cur_red.clear()

    for n in order:
        if n.op is None:
            continue
        if all((n, i) in given_ids for i in range(n.num_outputs())):
            continue          # value supplied by the caller (saved forward value)
        kind = oplower.classify(n, shapes, dtypes)
        if kind == "fused" and not interpret and oplower.is_alias(n):
            src, si, _v = n.inputs[0]
            k = (src, si)
            while k in sc.alias:               # through same-shape views
                k = sc.alias[k]
            if k in produced and k not in head_keys and k not in aliased_src and \
                    tuple(shapes.get(k) or ()) == tuple(shapes.get((n, 0)) or ()):
                # the value is already in a buffer of this kernel that nothing else
                # returns: return that buffer instead of copying it
                sc.alias[(n, 0)] = (src, si)
                aliased_src.add(k)
                continue
        if kind == "view" and not interpret:
            src, si, _v = n.inputs[0]
            ishape, oshape = shapes.get((src, si)), shapes.get((n, 0))
            if ishape is not None and tuple(ishape) == tuple(oshape) and \
                    dtypes.get((src, si)) == dtypes.get((n, 0)):
                # a reshape to the same shape (FullyConnected's weight gradient, flatten of
                # 2-D data): the same slot, no step -- so no segment split either
                sc.alias[(n, 0)] = (src, si)
                continue
        if interpret and kind in ("fused", "call"):
            kind = "eager"
        if kind in ("fused", "call"):
            for i in range(n.num_outputs()):
                produced.add((n, i))
        if kind == "fused":
            oshape = shapes.get((n, 0))
            # join the open loop unless it reads a reduction of that same loop (available
            # only after the loop)
            if cur and oshape == cur_shape and len(cur) < _max_fused() and not any(
                    id(src) in cur_red for (src, _i, _v) in n.inputs):
                cur.append(n)
            else:
                close()
                cur, cur_shape = [n], oshape
        elif kind == "call" and cur and len(cur) < _max_fused() and \
                _fusible_reduction(n, cur, cur_shape, shapes):
            cur.append(n)     # a full sum/mean of a loop value: accumulated inside the loop
            cur_red.add(id(n))
        else:
            close()
            steps.append(Step(kind, [n]))
    close()
    return steps


def _max_fused():
    from .lower import MAX_FUSED_NODES
    return MAX_FUSED_NODES


def _buffers(sc, steps, order, heads):
    """Which values are written to memory (materialised) and which slots need buffers."""
    uses = {}
    for n in order:
        for (src, i, _v) in n.inputs:
            uses.setdefault((src, i), []).append(n)
    head_keys = set((n, i) for n, i in heads)
    member = {}
    for k, st in enumerate(steps):
        if st.kind == "fused":
            for n in st.nodes:
                member[id(n)] = k
    sc.out_slots = [sc.slot_of(e) for e in heads]
    for k, st in enumerate(steps):
        if st.kind == "fused":
            for n in st.nodes:
                key = (n, 0)
                escapes = key in head_keys or any(member.get(id(c)) != k
                                                  for c in uses.get(key, []))
                if escapes:
                    sc.materialised.add(key)
                    sc.buffer_slots.append(sc.slot_of(key))
        elif st.kind == "call":
            for i in range(st.node.num_outputs()):
                sc.materialised.add((st.node, i))
                sc.buffer_slots.append(sc.slot_of((st.node, i)))
        else:
            for i in range(st.node.num_outputs()):
                sc.materialised.add((st.node, i))
                s = sc.slot_of((st.node, i))
                if st.kind == "view":
                    sc.view_slots.append(s)


# Note: buffer-liveness
#     Steps run in schedule order; step ``k`` reads and writes the slots codegen passes it
#     (a fused loop: its loop-size entry, the operands it reads from memory and the values
#     it materialises; a call: its inputs and outputs).  A view step's slot is a view of its
#     input's buffer, and an eager step's results may be views of its inputs (a NumPy
#     transpose, a slice), so every use of such a slot is a use of the buffers it may
#     view (its *roots*).  A buffer slot is live from the first to the last step touching
#     it or a slot rooted in it; two buffers whose live ranges are disjoint may share
#     memory (the buffer plan, agjit.compiler.buffers note *buffer-plan*).  Buffers that a
#     returned slot may view are *pinned*: they outlive the kernel (returned, saved for a
#     backward, handed over to a gradient) and get memory of their own.
def _lifetimes(sc, steps):
    """``sc.life`` (buffer slot -> first and last step using it) and ``sc.pinned``."""
    buffers = set(sc.buffer_slots)
    roots = {}          # slot -> buffer slots it may view (itself for a buffer)

    def rooted(s):
        r = roots.get(s)
        if r is None:
            r = roots[s] = frozenset([s]) if s in buffers else frozenset()
        return r

    life = sc.life

    def touch(s, k):
        for b in rooted(s):
            f, last = life.get(b, (k, k))
            life[b] = (min(f, k), max(last, k))

    for k, st in enumerate(steps):
        if st.kind == "fused":
            ids = set(id(n) for n in st.nodes)
            touch(sc.slot_of(st.size_entry), k)
            for n in st.nodes:
                red = oplower.is_reduction(n)
                for (s, i, _v) in n.inputs:
                    if id(s) not in ids and (s, i) not in sc.ones and not red:
                        touch(sc.slot_of((s, i)), k)
                if (n, 0) in sc.materialised or red:
                    touch(sc.slot_of((n, 0)), k)
            continue
        n = st.node
        ins = [sc.slot_of((s, i)) for (s, i, _v) in n.inputs]
        outs = [sc.slot_of((n, i)) for i in range(n.num_outputs())]
        if st.kind in ("view", "eager"):
            src = frozenset().union(*[rooted(s) for s in ins]) if ins else frozenset()
            for s in outs:
                roots[s] = rooted(s) | src
        for s in ins + outs:
            touch(s, k)
    end = len(steps)
    for s in sc.out_slots:
        for b in rooted(s):
            sc.pinned.add(b)
            f, _last = life.get(b, (end, end))
            life[b] = (f, end)
    for b in buffers:
        life.setdefault(b, (end, end))


def _loop_facts(sc, st, shapes, dtypes):
    """A fused step's loop shape, flatness, loop-size entry and cost."""
    nodes = st.nodes
    ids = set(id(n) for n in nodes)
    st.shape = oshape = tuple(shapes[(nodes[0], 0)])
    # the loop-size source: the first materialised member, else an input of the full shape
    for n in nodes:
        if (n, 0) in sc.materialised and not oplower.is_reduction(n):
            st.size_entry = (n, 0)
            break
    if st.size_entry is None:
        for n in nodes:
            for (s, i, _v) in n.inputs:
                if id(s) not in ids and tuple(shapes[(s, i)]) == oshape:
                    st.size_entry = (s, i)
                    break
            if st.size_entry is not None:
                break
    flat = True
    for n in nodes:
        for (s, i, _v) in n.inputs:
            if id(s) in ids or oplower.is_reduction(n) or (s, i) in sc.ones:
                continue
            if tuple(shapes[(s, i)]) != oshape:
                flat = False
            st.ext_inputs.append((s, i))
    st.flat = flat or len(oshape) == 0
    st.cost = oplower.loop_cost(nodes, shapes, dtypes)


def _segments(sc, steps):
    """Consecutive fused/call steps grouped into bounded segments (lower note *lowering*)."""
    from .lower import MAX_SEGMENT_LINES, MAX_SEGMENT_STEPS
    seg, cost = [], 0

    def flush():
        nonlocal seg, cost
        if seg:
            sc.items.append(Segment(len(sc.segments), seg))
        seg, cost = [], 0

    for st in steps:
        if st.kind in ("fused", "call"):
            c = len(st.nodes) if st.kind == "fused" else 8
            if seg and cost + c > MAX_SEGMENT_LINES:
                flush()
            seg.append(st)
            cost += c
            if len(seg) >= MAX_SEGMENT_STEPS:
                flush()
            continue
        flush()
        sc.items.append(st)
    flush()


# Note: backward-order
#     A backward graph's topological order from symbol.graph.topo_order (a DFS from the
#     gradient outputs, the first parameter's first) runs the whole chain of activation
#     gradients down to the first layer before any other parameter's gradient: every
#     activation gradient stays live until its layer's weight gradient runs at the end, so
#     the backward held about as much as the forward again.  :func:`memory_order` re-sorts
#     it topologically, ready nodes taken in the order eager autograd runs them -- the
#     forward node each one was made for (symbol.autodiff note *backward-provenance*) from
#     the last to the first, the DFS position breaking ties -- so an activation gradient
#     dies as soon as its layer's gradients are computed.  Forward graphs, and graphs that
#     draw random numbers or mutate inputs (whose order is part of their meaning), keep
#     their order.
def memory_order(order, given=()):
    """``order`` (a topological order of a graph whose ``given`` entries the caller
    supplies) re-sorted for short buffer lifetimes (note *backward-order*); the same list
    when the graph is no backward graph."""
    import heapq
    from symbol.autodiff import forward_node
    from symbol.graph import topo_order
    given = set((n, i) for n, i in given)
    # supplied (variables, saved forward values): no step, first
    fixed = [n for n in order if n.op is None or all(
        (n, i) in given for i in range(n.num_outputs()))]
    fixed_ids = set(id(n) for n in fixed)
    ops = [n for n in order if id(n) not in fixed_ids]
    if any(n.op.needs_rng or n.op.mutate_inputs for n in ops):
        return order
    made_for = {id(n): forward_node(n) for n in ops}
    if not any(f is not None for f in made_for.values()):
        return order
    # positions in the forward graph: the forward nodes of this graph and those the
    # backward nodes were made for
    fwd = [n for n in order if made_for.get(id(n)) is None] + \
        [f for f in made_for.values() if f is not None]
    fpos = {id(m): k for k, m in enumerate(topo_order(fwd))}
    dfs = {id(n): k for k, n in enumerate(order)}

    def key(n):
        f = made_for[id(n)]
        if f is None:
            f = n                           # a forward node the backward recomputes
        elif f.op is None and n.inputs:
            return (-len(fpos) - 1, dfs[id(n)])     # an argument's gradient: when ready
        return (-fpos.get(id(f), -1), dfs[id(n)])

    waiting = {}
    users = {}
    ready = []
    computed = set(id(n) for n in ops)
    for n in ops:
        deps = set(id(s) for (s, _i, _v) in n.inputs if id(s) in computed)
        waiting[id(n)] = len(deps)
        for d in deps:
            users.setdefault(d, []).append(n)
        if not deps:
            heapq.heappush(ready, (key(n), n))
    out = list(fixed)
    while ready:
        _k, n = heapq.heappop(ready)
        out.append(n)
        for u in users.get(id(n), ()):
            waiting[id(u)] -= 1
            if not waiting[id(u)]:
                heapq.heappush(ready, (key(u), u))
    assert len(out) == len(order)
    return out


def schedule(order, heads, given, shapes, dtypes, interpret=False, ones=()):
    """Schedule a graph (arguments as :func:`agjit.compiler.lower.lower_graph`)."""
    order = memory_order(order, given)
    sc = Schedule()
    sc.ones = set((n, i) for n, i in ones)
    sc.heads = [(n, i) for n, i in heads]
    sc.given_slots = [sc.slot_of(e) for e in given]
    steps = _steps(sc, order, heads, given, shapes, dtypes, interpret)
    _buffers(sc, steps, order, heads)
    for st in steps:
        if st.kind == "fused":
            _loop_facts(sc, st, shapes, dtypes)
    _lifetimes(sc, steps)
    _segments(sc, steps)
    return sc
