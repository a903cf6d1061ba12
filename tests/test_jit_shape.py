"""The JIT lowerings of the shape, indexing, reduction and creation ops: compiled forward and
backward equal eager for EVERY registry sample of these ops (tests/test_jit.py checks only
each op's first sample), no eager segment is left in the forward or backward graphs of
the samples, and a jitted attention-like step (batch_dot, softmax, split / Concat of heads,
slice) runs with no eager segment.

Numba compiles take seconds, so all samples go into ONE jitted function (one forward, one
training-forward and one backward kernel, module fixtures), compared per sample.
"""
import numpy as np
import pytest

import agjit as mx
from symbol.registry import get_op

# ops lowered in this family (each with every registry sample); their gradient ops are in
# the list too, so a backward graph through them has no eager segment
LOWERED = [
    "slice", "_slice_assign", "_slice_assign_scalar", "slice_axis", "_slice_axis_scatter",
    "Concat", "_concat_slice", "SliceChannel", "stack", "SwapAxis", "reverse",
    "broadcast_to", "broadcast_axis", "tile", "_tile_sum", "repeat", "_repeat_sum",
    "max", "min", "prod", "_prod_others", "nansum", "nanprod", "norm", "argmax", "argmin",
    "argmax_channel", "_split_v2", "slice_like", "_backward_slice_like", "depth_to_space",
    "space_to_depth", "take", "_take_scatter", "one_hot", "pick", "_pick_scatter", "batch_take",
    "gather_nd", "scatter_nd", "_gather_nd_backward", "SequenceMask", "SequenceLast",
    "_backward_SequenceLast", "SequenceReverse", "Crop", "_backward_Crop",
    "Cast", "_cast_like", "_zeros", "_ones", "_full", "_arange", "shape_array", "size_array",
]


# Lowered elsewhere (tests/test_jit_models_lowered.py): topk / sort / argsort /
# _topk_scatter, _linalg_gemm / _linalg_gemm2.  Not lowered (eager segments): float16 and
# bool arrays (agjit.compiler.oplower CALL_DTYPES; Numba has no CPU float16).
# ops that may still run eagerly inside these replays, with the reason
EAGER_OPS = {}


def _table():
    """Every sample but the first of each op: tests/test_jit.py's table compiles the first
    sample of every registered op (forward and backward) already."""
    rs = np.random.RandomState(7)
    out = []
    for name in LOWERED:
        op = get_op(name)
        for k, s in enumerate(op.samples(rs)):
            if k:
                out.append((op, k, s))
    return out


TABLE = _table()
_IDS = ["%s-%d" % (op.name, k) for op, k, _s in TABLE]


def _apply_all(*arrays):
    outs = []
    j = 0
    for op, _k, sample in TABLE:
        n = len(sample.inputs)
        r = mx.nd.invoke(op, list(arrays[j:j + n]), dict(sample.attrs))
        j += n
        outs.append(tuple(r) if isinstance(r, list) else (r,))
    return tuple(o for group in outs for o in group)


def _inputs():
    return [mx.nd.array(a, dtype="float64" if np.asarray(a).dtype.kind == "f"
                        else np.asarray(a).dtype)
            for _op, _k, s in TABLE for a in s.inputs]


def _out_slices():
    out, i = [], 0
    for op, _k, s in TABLE:
        attrs = op.parse_attrs(dict(s.attrs, **({op.variadic: len(s.inputs)}
                                                if op.variadic else {})))
        n = op.num_visible(attrs)
        out.append((i, i + n))
        i += n
    return out


_OUT = _out_slices()
_IN = []
_j = 0
for _op, _k, _s in TABLE:
    _IN.append((_j, _j + len(_s.inputs)))
    _j += len(_s.inputs)


@pytest.fixture(scope="module")
def table_fn():
    return mx.jit(_apply_all)


@pytest.fixture(scope="module")
def runs(table_fn):
    """Eager and compiled training runs of the whole table: the outputs (the compiled ones
    from the training-forward kernel), the gradients (the backward kernel) and explain()."""
    rs = np.random.RandomState(3)
    diff = [op.differentiable and np.asarray(a).dtype.kind == "f"
            for op, _k, s in TABLE for a in s.inputs]

    def run(fn, keep=None):
        ins = _inputs()
        for a, d in zip(ins, diff):
            if d:
                a.attach_grad()
        with mx.autograd.record():
            outs = fn(*ins)
        heads = [mx.nd.array(rs.uniform(-1, 1, size=o.shape), dtype=o.dtype) for o in outs]
        if keep is None:
            keep = [o._entry is not None for o in outs]
        mx.autograd.backward([o for o, k in zip(outs, keep) if k],
                             head_grads=[h for h, k in zip(heads, keep) if k])
        return outs, [a.grad.asnumpy() if d else None for a, d in zip(ins, diff)], keep

    state = rs.get_state()
    o_eager, g_eager, keep = run(_apply_all)
    rs.set_state(state)
    o_comp, g_comp, _ = run(table_fn, keep)
    return o_eager, o_comp, g_eager, g_comp, table_fn.explain()


@pytest.mark.parametrize("k", range(len(TABLE)), ids=_IDS)
def test_forward_equals_eager(runs, k):
    eager, comp = runs[:2]
    op = TABLE[k][0]
    for i in range(*_OUT[k]):
        np.testing.assert_allclose(comp[i].asnumpy(), eager[i].asnumpy(), rtol=1e-7, atol=1e-12,
                                   err_msg="compiled forward of %s" % _IDS[k])
        assert comp[i].shape == eager[i].shape and comp[i].dtype == eager[i].dtype, op.name


@pytest.mark.parametrize("k", range(len(TABLE)), ids=_IDS)
def test_backward_equals_eager(runs, k):
    g_eager, g_comp = runs[2:4]
    for j in range(*_IN[k]):
        if g_eager[j] is None:
            continue
        np.testing.assert_allclose(g_comp[j], g_eager[j], rtol=1e-7, atol=1e-12,
                                   err_msg="compiled gradient through %s (input %d)"
                                   % (_IDS[k], j - _IN[k][0]))


def _sample_graph(op, sample):
    """A symbol graph applying ``op`` to variables shaped like the sample (float samples as
    float64, integer ones keep their dtype), inferred: (order, heads, given, shapes, dtypes)."""
    from agjit.compiler.runtime import infer_graph
    from symbol.autodiff import SymbolBuilder
    from symbol.graph import topo_order
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
    out = SymbolBuilder("s").build(op, ins, attrs)
    heads = [e for o in (out if isinstance(out, list) else [out]) for e in o._outputs]
    order = topo_order(heads)
    infer_graph(order, shapes, dtypes)
    return order, heads, [(n, 0) for n in order if n.op is None], shapes, dtypes


@pytest.mark.parametrize("name", LOWERED)
def test_every_sample_schedules_without_eager_steps(name):
    """Every sample of the op (the first included) lowers with no eager step (no compile)."""
    from agjit.compiler import lower
    op = get_op(name)
    for k, sample in enumerate(op.samples(np.random.RandomState(7))):
        low = lower.lower_graph(*_sample_graph(op, sample))
        assert not low.eager_notes, (name, k, low.eager_notes)


def _eager_lines(text):
    return [ln for ln in text.splitlines() if "runs eagerly" in ln]


def test_no_eager_segment(runs):
    """Every sample's training forward and backward are compiled."""
    text = runs[4]
    print(text)
    bad = [ln for ln in _eager_lines(text)
           if not any("(%s)" % name in ln for name in EAGER_OPS)]
    assert not bad, "\n".join(bad)


def _attention_params(rs, d):
    return [mx.nd.array(rs.randn(d, d) * 0.3) for _ in range(4)]


def test_attention_step_compiled_without_eager_segments():
    """Multi-head self-attention (projections, heads split with SliceChannel, batch_dot,
    softmax, heads joined with Concat, the first position sliced out): the jitted training
    step equals eager and explain() lists no eager segment."""
    B, T, D, H = 2, 5, 8, 2
    rs = np.random.RandomState(0)
    x = mx.nd.array(rs.randn(B, T, D))
    scale = 1.0 / np.sqrt(D // H)
    results = []
    for use_jit in (False, True):
        params = _attention_params(np.random.RandomState(1), D)
        for p in params:
            p.attach_grad()
        wq, wk, wv, wo = params

        def step(x):
            flat = mx.nd.reshape(x, shape=(B * T, D))
            q, k, v = [mx.nd.reshape(mx.nd.FullyConnected(flat, w, num_hidden=D, no_bias=True),
                                     shape=(B, T, D)) for w in (wq, wk, wv)]
            qs = mx.nd.SliceChannel(q, num_outputs=H, axis=2)
            ks = mx.nd.SliceChannel(k, num_outputs=H, axis=2)
            vs = mx.nd.split(v, num_outputs=H, axis=2)
            heads = []
            for h in range(H):
                s = mx.nd.batch_dot(qs[h], ks[h], transpose_b=True) * scale
                heads.append(mx.nd.batch_dot(mx.nd.softmax(s, axis=-1), vs[h]))
            ctx = mx.nd.Concat(*heads, dim=2)
            out = mx.nd.FullyConnected(mx.nd.reshape(ctx, shape=(B * T, D)), wo, num_hidden=D,
                                       no_bias=True)
            first = mx.nd.slice_axis(mx.nd.reshape(out, shape=(B, T, D)), axis=1, begin=0, end=1)
            return mx.nd.sum(first * first) + mx.nd.sum(mx.nd.slice(out, begin=(1, 2),
                                                                    end=(None, 6)))

        f = mx.jit(step) if use_jit else step
        for _ in range(2):
            with mx.autograd.record():
                loss = f(x)
            loss.backward()
        results.append((loss.asnumpy(), [p.grad.asnumpy() for p in params]))
        if use_jit:
            text = f.explain()
            assert not _eager_lines(text), text
            assert "no eager segments" in text, text
    (l0, g0), (l1, g1) = results
    np.testing.assert_allclose(l1, l0, rtol=1e-5)
    for a, b in zip(g1, g0):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
