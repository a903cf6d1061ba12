"""``lint()``: checks of the typed state one compiler stage hands to the next.

Note: lint
    ``verify()`` (symbol.graph) checks a graph's structure; the lowering consumes more: a
    shape and dtype for every entry, inputs that are either given or computed earlier, and
    shapes that op inference agrees with.  :func:`lint` checks exactly that for a graph
    (after tracing, inference and autodiff), :func:`lint_schedule` for a schedule (every
    value a step reads is given, a buffer or produced by an earlier step; buffers and views
    have shapes).  Both raise :class:`LintError` listing every problem found (at most
    ``limit``); tests run them after every pass.  They are checks, not repairs: the
    compiler never calls them on its hot path.
"""
from symbol.base import MXNetError

__all__ = ["LintError", "lint", "lint_schedule"]


class LintError(MXNetError):
    """The typed IR handed between compiler stages is inconsistent."""


def _ent(n, i):
    return "%s[%d] (%s)" % (n.name, i, n.op_name)


def lint(order, heads, given, shapes, dtypes, stage="graph", limit=20):
    """Check a typed graph: ``order`` topological, every entry typed, inputs covered,
    op inference agreeing with the recorded shapes and dtypes."""
    problems = []
    seen = set()
    given = set((n, i) for n, i in given)
    for n in order:
        for (s, i, _v) in n.inputs:
            if s not in seen and (s, i) not in given:
                problems.append("%s reads %s, which is neither given nor computed before it"
                                % (_ent(n, 0), _ent(s, i)))
        seen.add(n)
        if n.op is None and (n, 0) not in given:
            problems.append("variable %s is neither given nor computed" % n.name)
        for i in range(n.num_outputs()):
            if shapes.get((n, i)) is None:
                problems.append("%s has no shape" % _ent(n, i))
            if dtypes.get((n, i)) is None:
                problems.append("%s has no dtype" % _ent(n, i))
        if n.op is None or all((n, i) in given for i in range(n.num_outputs())):
            continue
        ins = [shapes.get((s, i)) for (s, i, _v) in n.inputs]
        tys = [dtypes.get((s, i)) for (s, i, _v) in n.inputs]
        try:
            _, outs = n.op.infer_shape(n.parsed, ins)
            _, otys = n.op.infer_type(n.parsed, tys)
        except MXNetError as e:
            problems.append("%s: inference refuses the recorded inputs: %s" % (_ent(n, 0), e))
            continue
        for i, s in enumerate(outs):
            rec = shapes.get((n, i))
            if s is not None and rec is not None and tuple(s) != tuple(rec):
                problems.append("%s: inference gives shape %s, recorded %s"
                                % (_ent(n, i), tuple(s), tuple(rec)))
            t = otys[i] if i < len(otys) else None
            rt = dtypes.get((n, i))
            if t is not None and rt is not None and _dt(t) != _dt(rt):
                problems.append("%s: inference gives dtype %s, recorded %s"
                                % (_ent(n, i), _dt(t), _dt(rt)))
    for (n, i) in heads:
        if n not in seen:
            problems.append("head %s is not in the graph" % _ent(n, i))
    _raise(problems, stage, limit)


def lint_schedule(sc, shapes, dtypes, stage="schedule", limit=20):
    """Check a :class:`agjit.compiler.schedule.Schedule`: every value a step reads is given,
    aliased to an available value or produced by an earlier step; buffers and views are
    typed; every returned slot is available at the end."""
    from .schedule import Segment
    problems = []
    avail = set(sc.given_slots)
    ones = set(sc.slot_of(e) for e in sc.ones)
    steps = [st for it in sc.items for st in (it.steps if isinstance(it, Segment) else [it])]
    for st in steps:
        local = set(id(n) for n in st.nodes)
        for n in st.nodes:
            for (s, i, _v) in n.inputs:
                if id(s) in local:
                    continue
                slot = sc.slot_of((s, i))
                if slot not in avail and slot not in ones:
                    problems.append("step %s reads %s before anything computes it"
                                    % (_ent(n, 0), _ent(s, i)))
        for n in st.nodes:
            for i in range(n.num_outputs()):
                if st.kind != "fused" or (n, i) in sc.materialised:
                    avail.add(sc.slot_of((n, i)))
    for s in list(sc.buffer_slots) + list(sc.view_slots):
        n, i = sc.node_of_slot[s]
        if shapes.get((n, i)) is None or dtypes.get((n, i)) is None:
            problems.append("buffer/view slot %d of %s is untyped" % (s, _ent(n, i)))
    for s in sc.out_slots:
        if s not in avail:
            n, i = sc.node_of_slot[s]
            problems.append("returned %s is never computed" % _ent(n, i))
    _raise(problems, stage, limit)


def _dt(t):
    import numpy as np
    return t if isinstance(t, str) else np.dtype(t).name


def _raise(problems, stage, limit):
    if problems:
        more = "" if len(problems) <= limit else "\n  ... and %d more" % (len(problems) - limit)
        raise LintError("agjit.compiler lint after %s: %d problem(s):\n  %s%s" % (
            stage, len(problems), "\n  ".join(problems[:limit]), more))
