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


def schedule(order, heads, given, shapes, dtypes, interpret=False, ones=()):
    """Schedule a graph (arguments as :func:`agjit.compiler.lower.lower_graph`)."""
    sc = Schedule()
    sc.ones = set((n, i) for n, i in ones)
    sc.heads = [(n, i) for n, i in heads]
    sc.given_slots = [sc.slot_of(e) for e in given]
    steps = _steps(sc, order, heads, given, shapes, dtypes, interpret)
    _buffers(sc, steps, order, heads)
    for st in steps:
        if st.kind == "fused":
            _loop_facts(sc, st, shapes, dtypes)
    _segments(sc, steps)
    return sc
