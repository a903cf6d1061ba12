"""Property-based differential test (issue 10, item 10): random small graphs over the
registry's ops, compiled (mx.jit inside autograd.record + backward) vs eager vs a NumPy
reference, forward and backward.

What one example is (hypothesis draws it):

* a dtype (float32 / float64) and a graph of 1-4 nodes.  Every node is an (op, sample) pair
  from the registry: the op pool is every canonical op with samples, so a new op joins the
  fuzz automatically (exclusions below, each with its reason).  A node's real-valued input
  slot takes an earlier node's output when the op's own shape inference accepts that shape
  (so chains, broadcasts and fan-out form), else a fresh leaf of a random shape the op
  accepts, else of the sample's shape.  Index inputs (labels, indices, conditions -- sample
  values that are all whole numbers, see tests/test_registry_table.py note *index-inputs*)
  and aux states stay the sample's constants.  Nodes nobody consumes are unused
  intermediates; the function returns the last node and a random subset of the others;
* leaf values drawn from the sample's own value range, then a second variant with special
  values (+-inf, nan, +-0, huge, tiny/subnormal) sprinkled in;
* modes: predict and, where the graph has a mode-dependent op, training
  (``record(train_mode=...)`` and ``backward(train_mode=...)`` alike).

Each graph is compiled once and every data variant and mode replays it (Numba compiles
dominate the cost; the graphs are kept small for the same reason).  Checked: compiled
forward = eager forward; eager forward = the NumPy reference (``op.np_reference`` where the op
has one, else its NumPy kernel called directly on NumPy arrays, node by node); compiled
gradients = eager gradients for every differentiable leaf, with random head gradients.

Budget: CI runs ``FUZZ_EXAMPLES`` (default 8) derandomized examples -- the same graphs every
run, so CI is reproducible -- in ~30-60 s on two loaded cores, mostly Numba compiles.  A longer
local run draws fresh random examples:

    AGJIT_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz_differential.py -x -q

(``AGJIT_FUZZ_SEED=<int>`` makes such a run repeatable; a failure prints the graph, the dtype
and the data seed, and hypothesis shrinks it -- minutes of recompiles; ``AGJIT_FUZZ_SHRINK=0``
skips that.  ``AGJIT_FUZZ_STRICT=1`` fails on the known unused-intermediate bug too.)
"""
import os
import time

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings, strategies as st  # noqa: E402

import agjit as mx  # noqa: E402
from agjit.ndarray import invoke  # noqa: E402
from agjit.ndarray.ndarray import OpCtx  # noqa: E402
from symbol.base import MXNetError  # noqa: E402
from symbol.registry import all_ops  # noqa: E402

# ops left out of the pool, with the reason (everything else with samples is in)
EXCLUDED = {
    "Dropout": "random mask: compiled and eager draw different masks (tested in test_jit)",
    "_CustomFunction": "exists only in recorded histories",
    "_jit_call": "exists only in recorded histories",
    "Cast": "changes the dtype: the graph stays in one dtype (dtype rules: test_dtype_rules)",
    "_cast_like": "changes the dtype (see Cast)",
}

EXAMPLES_ENV = os.environ.get("AGJIT_FUZZ_EXAMPLES")
FUZZ_EXAMPLES = int(EXAMPLES_ENV) if EXAMPLES_ENV else 8
LOCAL_RUN = EXAMPLES_ENV is not None

SPECIAL = {"float32": [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e30, -1e30, 1e-40, -1e-40, 3e38],
           "float64": [np.inf, -np.inf, np.nan, 0.0, -0.0, 1e300, -1e300, 1e-310, -1e-310, 1e308]}
RTOL = {"float32": 2e-4, "float64": 1e-9}

# KNOWN BUG (JIT runtime, issue 10 item 3, owned by the runtime work): a jitted function with an
# unused array argument that has attach_grad() raises inside record()/backward
# ("gradient: 'a' is not a variable of the symbol (variables: b)") where eager gives it a
# zero gradient.  Reproducer:
#     a = mx.nd.ones((2, 3)); b = mx.nd.ones((2, 3)); a.attach_grad(); b.attach_grad()
#     with mx.autograd.record(): y = mx.jit(lambda a, b: mx.nd.exp(b))(a, b)
#     y.backward()
# Until it is fixed, unused leaves are passed without attach_grad() (kind "unused"); set
# UNUSED_KIND = "var" to fuzz the case itself.
UNUSED_KIND = "unused"


def _is_index(a):
    a = np.asarray(a)
    return a.dtype.kind in "iub" or (a.size > 0 and np.all(a == np.round(a)))


def _pool():
    rs = np.random.RandomState(0)
    pool = []
    for op in all_ops():
        if op.name in EXCLUDED or op.samples is None or op.needs_rng:
            continue
        for k, s in enumerate(op.samples(rs)):
            if any(np.asarray(a).dtype.kind not in "f" and not _is_index(a) for a in s.inputs):
                continue
            pool.append((op, k, s))
    return pool


POOL = _pool()
POOL_IDS = list(range(len(POOL)))


def _shape_ok(op, attrs, shapes):
    try:
        _, outs = op.infer_shape(attrs, shapes)
    except (MXNetError, ValueError, TypeError, IndexError, KeyError, ZeroDivisionError):
        return None
    if not outs or outs[0] is None or any(o is None or any(d < 0 for d in o) for o in outs):
        return None
    return [tuple(o) for o in outs]


def _kernel_ok(op, attrs, sample, shapes):
    rs = np.random.RandomState(0)
    ins = []
    for a, shape in zip(sample.inputs, shapes):
        a = np.asarray(a)
        ins.append(a if tuple(a.shape) == tuple(shape) or _is_index(a) else rs.uniform(0.5, 1.5, shape))
    try:
        with np.errstate(all="ignore"):
            op.forward(attrs, ins, OpCtx(False))
    except Exception:           # noqa: BLE001  (any refusal: the node is not drawn)
        return False
    return True


shapes_st = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@st.composite
def graphs(draw):
    """A graph: leaves (shape, low, high, kind), nodes (op, attrs, refs, out shapes) and the
    returned refs.  A ref is ("leaf", i) or ("node", j, output index)."""
    dtype = draw(st.sampled_from(["float32", "float64"]))
    leaves, nodes, values = [], [], []       # values: (ref, shape) of real-valued entries
    for _ in range(draw(st.integers(1, 4))):
        op, k, sample = POOL[draw(st.sampled_from(POOL_IDS))]
        given = dict(sample.attrs)
        if op.variadic and op.variadic not in given:
            given[op.variadic] = len(sample.inputs)
        attrs = op.parse_attrs(given)
        shapes = [tuple(np.shape(a)) for a in sample.inputs]
        refs = []
        for slot, a in enumerate(sample.inputs):
            a = np.asarray(a)
            if _is_index(a) or slot in op.mutate_inputs:
                leaves.append((a.shape, a, None, "const"))
                refs.append(("leaf", len(leaves) - 1))
                continue
            ref = None
            if values and draw(st.booleans()):
                cand_ref, cand_shape = values[draw(st.integers(0, len(values) - 1))]
                trial = shapes[:slot] + [cand_shape] + shapes[slot + 1:]
                if _shape_ok(op, attrs, trial) is not None:
                    ref, shapes = cand_ref, trial
            if ref is None:
                shape = shapes[slot]
                if draw(st.booleans()):
                    s2 = draw(shapes_st)
                    trial = shapes[:slot] + [s2] + shapes[slot + 1:]
                    if _shape_ok(op, attrs, trial) is not None:
                        shape, shapes = s2, trial
                lo, hi = float(a.min()), float(a.max())
                leaves.append((shape, lo, hi, "var"))
                ref = ("leaf", len(leaves) - 1)
            refs.append(ref)
        outs = _shape_ok(op, attrs, shapes)
        if outs is None or not _kernel_ok(op, attrs, sample, shapes):
            # shape inference of internal helper ops (gradient kernels) is lenient: a shape
            # it accepts may still be refused by the kernel -- drop the node (that costs a
            # NumPy call here, not a compile)
            continue
        j = len(nodes)
        nvis = op.num_visible(attrs)
        nodes.append((op, given, refs, outs[:nvis]))
        for i in range(nvis):
            values.append((("node", j, i), outs[i]))
    hypothesis.assume(nodes)
    last = len(nodes) - 1
    returned = [("node", last, 0)]
    for j in range(last):
        if draw(st.booleans()):
            returned.append(("node", j, 0))           # the others are unused intermediates
    seed = draw(st.integers(0, 2 ** 31 - 1))
    # leaves no returned output depends on: unused arguments of the jitted function
    used, stack = set(), list(returned)
    while stack:
        r = stack.pop()
        if r[0] == "leaf":
            used.add(r[1])
        else:
            stack.extend(nodes[r[1]][2])
    for i, (shape, lo, hi, kind) in enumerate(leaves):
        if kind == "var" and i not in used:
            leaves[i] = (shape, lo, hi, UNUSED_KIND)
    return dtype, leaves, nodes, returned, seed


def _describe(g):
    dtype, leaves, nodes, returned, seed = g
    lines = ["dtype=%s seed=%d" % (dtype, seed)]
    for i, (shape, lo, hi, kind) in enumerate(leaves):
        lines.append("  leaf%d %s %s" % (i, kind, shape if kind == "const" else (shape, lo, hi)))
    for j, (op, op_attrs, refs, outs) in enumerate(nodes):
        lines.append("  node%d = %s(%s, %s) -> %s" % (j, op.name, ", ".join(map(str, refs)), op_attrs, outs))
    lines.append("  returns %s" % (returned,))
    return "\n".join(lines)


def _leaf_data(g, special):
    dtype, leaves, nodes, returned, seed = g
    rng = np.random.RandomState(seed)
    data = []
    for shape, lo, hi, kind in leaves:
        if kind == "const":
            data.append(np.array(lo, dtype=dtype if np.asarray(lo).dtype.kind == "f" else lo.dtype))
            continue
        x = rng.uniform(lo, hi, size=shape).astype(dtype)     # "var" and "unused" leaves
        if special and x.size:
            m = rng.rand(*shape) < 0.3
            x[m] = rng.choice(np.array(SPECIAL[dtype], dtype=dtype), size=int(m.sum()))
        data.append(x)
    return data


def _evaluate(g, F_invoke, args):
    """Run the graph with ``F_invoke(op, inputs, given)`` over leaf values ``args``."""
    dtype, leaves, nodes, returned, seed = g
    vals = {}
    for j, (op, op_attrs, refs, outs) in enumerate(nodes):
        ins = [args[r[1]] if r[0] == "leaf" else vals[(r[1], r[2])] for r in refs]
        res = F_invoke(op, ins, dict(op_attrs))
        res = res if isinstance(res, (list, tuple)) else [res]
        for i, r in enumerate(res):
            vals[(j, i)] = r
    return [vals[(r[1], r[2])] for r in returned]


def _np_invoke(op, ins, given):
    attrs = op.parse_attrs(given)
    if op.np_reference is not None:
        r = op.np_reference(attrs, [np.array(a) for a in ins])
        return r if isinstance(r, list) else [r]
    outs = op.forward(attrs, [np.array(a) for a in ins], OpCtx(bool(_np_invoke.train)))
    return list(outs[:op.num_visible(attrs)])


_np_invoke.train = False


def _close(a, b, dtype, what):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, "%s: shape %s vs %s" % (what, a.shape, b.shape)
    if a.size == 0:
        return
    fin = np.isfinite(b) & np.isfinite(a)
    scale = np.max(np.abs(b[fin])) if fin.any() else 1.0
    np.testing.assert_allclose(a, b, rtol=RTOL[dtype], atol=RTOL[dtype] * max(1.0, float(scale)) * 1e-3,
                               equal_nan=True, err_msg=what)


def _modes(nodes):
    if any(op.train_dependent for op, *_ in nodes):
        return [False, True]
    return [False]


_STATS = {"examples": 0, "replays": 0, "refusals": 0, "seconds": 0.0}


class _EagerError(AssertionError):
    """The eager path failed: never attributed to the compiled path's known bugs."""


# KNOWN BUG (JIT runtime, issue 10 item 1, owned by the runtime work): unused intermediates
# corrupt the compiled backward (shape tables keyed by id() of dead nodes).  Found by this fuzz
# in a new form, too:
#     def g(a, b, c):
#         _ = mx.nd.exp(a); _ = mx.nd.exp(b)
#         return mx.nd.prod(c, axis=1)
#     c = mx.nd.array(np.random.rand(2, 3, 4)); c.attach_grad()
#     with mx.autograd.record(): y = mx.jit(g)(mx.nd.ones((2, 3)), mx.nd.ones((2, 3)), c)
#     y.backward()   # MXNetError: elemwise_mul: shapes of inputs must be equal, (2,3) vs (2,3,4)
#                    # (or a Numba TypingError "tuple index out of range"); eager is right
# A failing example whose graph has unused intermediates is re-run without them; when that
# passes, the failure is this bug: it is counted in KNOWN_FAILURES (printed at the end) and
# does not fail the test -- only this exact case.  AGJIT_FUZZ_STRICT=1 makes it fail.
STRICT = os.environ.get("AGJIT_FUZZ_STRICT") == "1"
REFUSALS = set()       # MXNetErrors both paths raised (printed at the end of the module)
KNOWN_FAILURES = []


# KNOWN BUG (JIT runtime, issue 10 item 2, owned by the runtime work): inside
# record(train_mode=False) a jitted mode-dependent op runs in training mode (found by this fuzz
# for BatchNorm's forward; the issue reports Dropout's backward):
#     f = mx.jit(lambda x, g, b, mm, mv: mx.nd.BatchNorm(x, g, b, mm, mv))
#     with mx.autograd.record(train_mode=False): y = f(x, gamma, beta, mean, var)
#     # y is normalised with the batch statistics; eager uses the moving ones
# A mismatch in predict mode of a graph with a mode-dependent op is attributed to it when the
# same compiled function called outside record() (predict mode, no recording) matches eager.
def _known_predict_mode_bug(g, jf, data, fe, train):
    dtype, leaves, nodes, returned, seed = g
    if train or STRICT or not any(op.train_dependent for op, *_ in nodes):
        return False
    with np.errstate(all="ignore"):
        outs = jf(*[mx.nd.array(d, dtype=d.dtype) for d in data])
    try:
        for a, b in zip(outs, fe):
            _close(a.asnumpy(), b, dtype, "")
    except AssertionError:
        return False
    return True


def _prune(g):
    """The graph without the nodes no returned output depends on (indices renumbered)."""
    dtype, leaves, nodes, returned, seed = g
    keep, stack = set(), [r[1] for r in returned]
    while stack:
        j = stack.pop()
        if j in keep:
            continue
        keep.add(j)
        stack.extend(r[1] for r in nodes[j][2] if r[0] == "node")
    if len(keep) == len(nodes):
        return None
    new = {j: k for k, j in enumerate(sorted(keep))}

    def remap(r):
        return r if r[0] == "leaf" else ("node", new[r[1]], r[2])
    nodes2 = [(op, op_attrs, [remap(r) for r in refs], outs)
              for j, (op, op_attrs, refs, outs) in enumerate(nodes) if j in keep]
    return dtype, leaves, nodes2, [remap(r) for r in returned], seed


def _run_example(g):
    try:
        _run_graph(g)
    except _EagerError:
        raise
    except Exception as e:           # AssertionError (a mismatch) included
        pruned = None if STRICT else _prune(g)
        if pruned is None:
            raise
        _run_graph(pruned)       # raises when the failure is not the unused-intermediate bug
        KNOWN_FAILURES.append("%s\n  -> %s: %s" % (_describe(g), type(e).__name__,
                                                    str(e).splitlines()[0][:200]))


def _run_graph(g):
    dtype, leaves, nodes, returned, seed = g
    desc = _describe(g)
    t0 = time.time()

    def f(*args):
        return tuple(_evaluate(g, lambda op, ins, given: invoke(op, ins, given), args))
    jf = mx.jit(f)
    rng = np.random.RandomState(seed + 1)
    for special in (False, True):
        data = _leaf_data(g, special)
        for train in _modes(nodes):
            heads = None
            results = {}
            tag = "%s\n  special=%s train=%s" % (desc, special, train)
            for path in ("eager", "compiled"):
                arrs = [mx.nd.array(d, dtype=d.dtype) for d in data]
                for a, (shape, lo, hi, kind) in zip(arrs, leaves):
                    if kind == "var":
                        a.attach_grad()
                try:
                    with np.errstate(all="ignore"), mx.autograd.record(train_mode=train):
                        outs = list((f if path == "eager" else jf)(*arrs))
                    if heads is None:
                        heads = [rng.uniform(-1, 1, size=o.shape).astype(dtype) for o in outs]
                    with np.errstate(all="ignore"):
                        mx.autograd.backward(outs, [mx.nd.array(h, dtype=dtype) for h in heads],
                                             train_mode=train)
                except MXNetError as e:
                    # a clear refusal is a legitimate outcome -- when both paths give it
                    if path == "eager":
                        results["eager"] = e
                        REFUSALS.add(str(e).splitlines()[0][:160])
                        continue
                    assert isinstance(results.get("eager"), MXNetError), (
                        "compiled raised %s: %s where eager ran\n%s" % (type(e).__name__, e, tag))
                    results["compiled"] = e
                    continue
                grads = [a.grad.asnumpy() if kind == "var" and a.grad is not None else None
                         for a, (shape, lo, hi, kind) in zip(arrs, leaves)]
                results[path] = ([o.asnumpy() for o in outs], grads)
            if isinstance(results["eager"], MXNetError):
                if not isinstance(results["compiled"], MXNetError):
                    raise _EagerError("eager raised %s where compiled ran\n%s"
                                      % (results["eager"], tag))
                _STATS["refusals"] += 1
                continue
            (fe, ge), (fc, gc) = results["eager"], results["compiled"]
            try:
                for k, (a, b) in enumerate(zip(fc, fe)):
                    _close(a, b, dtype, "forward output %d compiled vs eager\n%s" % (k, tag))
                for i, (a, b) in enumerate(zip(gc, ge)):
                    if a is not None or b is not None:
                        _close(a, b, dtype, "gradient of leaf%d compiled vs eager\n%s" % (i, tag))
            except AssertionError as e:
                if not _known_predict_mode_bug(g, jf, data, fe, train):
                    raise
                KNOWN_FAILURES.append("%s\n  -> predict-mode record() runs training mode: %s"
                                      % (tag, str(e).splitlines()[1][:120]))
            # the NumPy reference, node by node (no NDArray, no dispatch, no recording)
            _np_invoke.train = train
            with np.errstate(all="ignore"):
                ref = _evaluate(g, _np_invoke, [np.array(d) for d in data])
            for k, (a, b) in enumerate(zip(fe, ref)):
                try:
                    _close(a, b, dtype, "forward output %d eager vs NumPy reference\n%s" % (k, tag))
                except AssertionError as e:
                    raise _EagerError(str(e)) from None
            _STATS["replays"] += 1
    _STATS["examples"] += 1
    _STATS["seconds"] += time.time() - t0


# CI: derandomized (the same examples every run); a local run (AGJIT_FUZZ_EXAMPLES set) draws
# fresh ones, or those of AGJIT_FUZZ_SEED
_SEED = os.environ.get("AGJIT_FUZZ_SEED")
_SETTINGS = dict(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                 derandomize=not LOCAL_RUN, report_multiple_bugs=False,
                 # shrinking re-compiles every candidate graph: minutes; CI reports the
                 # failing example as drawn, a local run shrinks it
                 phases=[Phase.explicit, Phase.reuse, Phase.generate]
                 + ([Phase.shrink] if LOCAL_RUN and os.environ.get("AGJIT_FUZZ_SHRINK") != "0"
                    else []),
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                        HealthCheck.data_too_large])


def _seeded(fn):
    return hypothesis.seed(int(_SEED))(fn) if (LOCAL_RUN and _SEED is not None) else fn


@_seeded
@settings(**_SETTINGS)
@given(graphs())
def test_random_graphs_compiled_eager_numpy(g):
    _run_example(g)


def teardown_module(module):
    print("\nfuzz: %d examples, %d replays (%d refused by both paths), %.1f s; %d known "
          "failures (runtime: unused intermediates, predict mode)" % (_STATS["examples"], _STATS["replays"],
                                                _STATS["refusals"], _STATS["seconds"],
                                                len(KNOWN_FAILURES)))
    for k in KNOWN_FAILURES:
        print(k)
    for r in sorted(REFUSALS):
        print("refused by both paths:", r)


def test_fuzz_pool_covers_the_registry():
    """The pool is derived from the registry: every op with samples is in it unless listed in
    EXCLUDED with a reason (so a new op joins the fuzz by having samples)."""
    names = {op.name for op, k, s in POOL}
    for op in all_ops():
        if op.samples is None or op.name in EXCLUDED or op.needs_rng:
            continue
        assert op.name in names, "%s has samples but is not in the fuzz pool" % op.name
    for must in ("relu", "broadcast_add", "sum", "transpose", "FullyConnected", "Activation",
                 "BatchNorm", "softmax", "dot"):
        assert must in names, must
