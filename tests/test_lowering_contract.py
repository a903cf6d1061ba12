"""The contract between ops and the JIT (symbol.lowering note *lowering-contract*), walked
over the registry -- no Numba compile here, so it is fast:

* every reference of every declared lowering (template calls, KernelCall ``uses``)
  resolves to a kernel-library, NumPy/math or builtin function, and generated modules
  import exactly what their schedule uses;
* every op that declares a lowering lowers: one of its samples schedules with no eager
  step, and its generated source passes the source check (tests/test_jit.py runs the
  compiled kernels of the same samples against eager);
* the lowering code special-cases no op by name: no string constant of the compiler's
  lowering modules is a registered op name;
* ``lint()`` passes after every stage (trace/inference, autodiff, schedule) of a small
  MLP training step and catches a deliberately wrong shape, an uncovered input and a
  schedule that reads a value before it is computed.
"""
import ast
import os

import numpy as np
import pytest

from agjit.compiler import lower, oplower, lint as lint_mod
from agjit.compiler.schedule import schedule
from agjit.compiler.kernels import LIBRARY
from symbol.graph import topo_order
from symbol.lowering import ByAttr, Elementwise, KernelCall, Lowering
from symbol.registry import all_ops, all_names

_LOWERED = [op for op in all_ops() if op.lowering is not None]
_IDS = [op.name for op in _LOWERED]


def _cases(low):
    return list(low.cases.values()) if isinstance(low, ByAttr) else [low]


@pytest.mark.parametrize("op", _LOWERED, ids=_IDS)
def test_lowering_is_typed_and_its_references_resolve(op):
    assert isinstance(op.lowering, Lowering), op.lowering
    assert op.lowerable
    for low in _cases(op.lowering):
        for ref in low.refs():
            r = oplower.resolve(ref)
            assert callable(r.obj), ref
            if isinstance(low, Elementwise):
                assert r.cost is not None, "%s calls %s, which is not elementwise" % (op.name, ref)
        if isinstance(low, KernelCall):
            for ref in low.uses:
                assert ref in LIBRARY, "%s uses %s, not in the kernel library" % (op.name, ref)


def test_unknown_reference_is_refused():
    with pytest.raises(LookupError):
        oplower.resolve("no_such_kernel")
    with pytest.raises(LookupError):
        oplower.resolve("np._private")
    with pytest.raises(LookupError):
        oplower.resolve("os.system")


def test_lowerable_without_a_lowering_is_refused():
    from symbol.registry import OpDef
    with pytest.raises(ValueError, match="lowerable=True needs a lowering"):
        OpDef("_contract_probe", lowerable=True)


def _sample_graph(op, sample):
    """A symbol graph applying ``op`` to float64 variables shaped like the sample (integer
    samples keep their dtype), its typed entries and the variables."""
    import agjit as mx
    attrs = dict(sample.attrs)
    ins, shapes, dtypes = [], {}, {}
    for k, a in enumerate(sample.inputs):
        a = np.asarray(a)
        v = mx.sym.var("in%d" % k)
        ins.append(v)
        n = v._outputs[0][0]
        shapes[(n, 0)] = tuple(a.shape)
        dtypes[(n, 0)] = "float64" if a.dtype.kind == "f" else a.dtype.name
    if op.variadic:
        attrs.setdefault(op.variadic, len(ins))
    from symbol.autodiff import SymbolBuilder
    out = SymbolBuilder("s").build(op, ins, attrs)
    heads = [e for o in (out if isinstance(out, list) else [out]) for e in o._outputs]
    order = topo_order(heads)
    given = [(n, 0) for n in order if n.op is None]
    from agjit.compiler.runtime import infer_graph
    infer_graph(order, shapes, dtypes)
    return order, heads, given, shapes, dtypes


@pytest.mark.parametrize("op", [o for o in _LOWERED if o.samples is not None],
                         ids=[o.name for o in _LOWERED if o.samples is not None])
def test_declared_lowering_lowers(op):
    """Some sample of the op lowers with no eager step; its source passes the check and
    imports exactly the library functions it calls."""
    rs = np.random.RandomState(7)
    why = []
    for sample in op.samples(rs):
        try:
            order, heads, given, shapes, dtypes = _sample_graph(op, sample)
        except Exception as e:          # a sample that only the eager path accepts
            why.append("%s: %s" % (type(e).__name__, e))
            continue
        low = lower.lower_graph(order, heads, given, shapes, dtypes)
        lint_mod.lint(order, heads, given, shapes, dtypes, stage="inference")
        lint_mod.lint_schedule(schedule(order, heads, given, shapes, dtypes), shapes, dtypes)
        if low.eager_notes:
            why.append("; ".join(low.eager_notes))
            continue
        tree = ast.parse(low.source)
        imported = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module == "agjit.compiler.kernels":
                imported |= {a.name for a in node.names}
        called = {n.func.id for n in ast.walk(tree)
                  if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert imported == called & set(LIBRARY), (imported, called)
        # the modules the statements name are imported too (div_sqrt_dim wrote math.sqrt
        # without it: a NameError in Numba's typing when no other op of the graph needed math)
        named = {n.value.id for n in ast.walk(tree) if isinstance(n, ast.Attribute)
                 and isinstance(n.value, ast.Name) and n.value.id in ("math", "np")}
        bound = {a.asname or a.name for node in tree.body if isinstance(node, ast.Import)
                 for a in node.names}
        assert named <= bound, (named, bound)
        return
    pytest.fail("%s declares a lowering but no sample lowers without eager steps: %s"
                % (op.name, " | ".join(why)))


_LOWERING_MODULES = ("lower.py", "schedule.py", "codegen.py", "oplower.py")


def test_no_op_is_special_cased_by_name():
    names = set(all_names())
    here = os.path.dirname(lower.__file__)
    found = []
    for f in _LOWERING_MODULES:
        with open(os.path.join(here, f)) as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                    node.value in names:
                found.append("%s:%d %r" % (f, node.lineno, node.value))
    assert not found, "op names special-cased in the lowering: %s" % found


# ---------------------------------------------------------------------------------------
# lint after every stage
# ---------------------------------------------------------------------------------------
def _mlp():
    import agjit as mx
    x, w1, b1, w2, b2, lab = (mx.sym.var(n) for n in ("x", "w1", "b1", "w2", "b2", "label"))
    h = mx.sym.Activation(mx.sym.FullyConnected(x, w1, b1, num_hidden=8, name="fc0"),
                          act_type="relu", name="relu0")
    out = mx.sym.FullyConnected(h, w2, b2, num_hidden=3, name="fc1")
    loss = mx.sym.softmax_cross_entropy(out, lab, name="loss")
    shapes = {"x": (4, 5), "w1": (8, 5), "b1": (8,), "w2": (3, 8), "b2": (3,), "label": (4,)}
    return loss, shapes


def _typed(sym, shapes):
    from agjit.compiler.runtime import infer_graph
    heads = list(sym._outputs)
    order = topo_order(heads)
    sh, dt = {}, {}
    for n in order:
        if n.op is None and n.name in shapes:
            sh[(n, 0)], dt[(n, 0)] = shapes[n.name], "float32"
    infer_graph(order, sh, dt)
    return order, heads, sh, dt


def test_lint_passes_after_every_stage_of_an_mlp_step():
    from symbol import autodiff
    loss, shapes = _mlp()
    order, heads, sh, dt = _typed(loss, shapes)
    given = [(n, 0) for n in order if n.op is None]
    lint_mod.lint(order, heads, given, sh, dt, stage="inference")
    sc = schedule(order, heads, given, sh, dt)
    lint_mod.lint_schedule(sc, sh, dt, stage="forward schedule")
    g = autodiff.gradient(loss, ["w1", "b1", "w2", "b2"])
    shapes_b = dict(shapes, loss_output_head_grad=(1,))
    border, bheads, bsh, bdt = _typed(g, shapes_b)
    bgiven = [(n, 0) for n in border if n.op is None]
    lint_mod.lint(border, bheads, bgiven, bsh, bdt, stage="autodiff")
    bsc = schedule(border, bheads, bgiven, bsh, bdt)
    lint_mod.lint_schedule(bsc, bsh, bdt, stage="backward schedule")
    # every backward node knows the forward node it came from (not by its name)
    fwd = set(order)
    new = [n for n in border if n not in fwd]
    assert new
    for n in new:
        assert autodiff.forward_node(n) in fwd, n


def test_lint_catches_wrong_shapes_uncovered_inputs_and_early_reads():
    loss, shapes = _mlp()
    order, heads, sh, dt = _typed(loss, shapes)
    given = [(n, 0) for n in order if n.op is None]
    fc0 = next(n for n in order if n.name == "fc0")
    bad = dict(sh)
    bad[(fc0, 0)] = (4, 9)
    with pytest.raises(lint_mod.LintError, match=r"fc0\[0\].*inference gives shape \(4, 8\)"):
        lint_mod.lint(order, heads, given, bad, dt)
    untyped = dict(dt)
    del untyped[(fc0, 0)]
    with pytest.raises(lint_mod.LintError, match="has no dtype"):
        lint_mod.lint(order, heads, given, sh, untyped)
    with pytest.raises(lint_mod.LintError, match="neither given nor computed"):
        lint_mod.lint(order, heads, given[1:], sh, dt)
    sc = schedule(order, heads, given, sh, dt)
    from agjit.compiler.schedule import Segment
    sc.items.reverse()                 # the loss read before the layers computing it
    for it in sc.items:
        if isinstance(it, Segment):
            it.steps.reverse()
    with pytest.raises(lint_mod.LintError, match="before anything computes it"):
        lint_mod.lint_schedule(sc, sh, dt)


def test_line_map_names_and_backward_provenance_in_the_generated_source():
    """Lowered.node_at maps each generated statement to its node; values carry graph names;
    backward statements say which forward node they are the gradient of."""
    from symbol import autodiff
    loss, shapes = _mlp()
    order, heads, sh, dt = _typed(loss, shapes)
    given = [(n, 0) for n in order if n.op is None]
    low = lower.lower_graph(order, heads, given, sh, dt)
    lines = low.source.splitlines()
    k = next(i for i, ln in enumerate(lines) if "relu(" in ln and not ln.lstrip().startswith("#"))
    assert low.node_at(k + 1).name == "relu0"
    assert low.node_at(k + 3, offset=2).name == "relu0"
    assert low.node_at(0) is None and low.node_at(len(lines) + 5) is None
    assert "def seg0(x, w1, b1, fc0_out" in low.source, low.source
    for i, ln in enumerate(lines):      # a node's statement follows its comment (or its loop's)
        n = low.node_at(i + 1)
        if n is not None and n.op is not None and not ln.lstrip().startswith("#"):
            above = [lines[j] for j in range(i) if low.node_at(j + 1) is n and (
                lines[j].lstrip().startswith("# %s " % n.name) or
                lines[j].lstrip().startswith("# loop over"))]
            assert above, (i, ln)
    g = autodiff.gradient(loss, ["w1", "b1", "w2", "b2"])
    border, bheads, bsh, bdt = _typed(g, dict(shapes, loss_output_head_grad=(1,)))
    blow = lower.lower_graph(border, bheads, [(n, 0) for n in border if n.op is None], bsh, bdt)
    assert "(grad of fc0)" in blow.source and "(grad of loss)" in blow.source
    assert "w1_grad" in blow.source and "b2_grad" in blow.source
