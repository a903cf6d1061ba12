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
]

# (op, sample index): samples that keep running eagerly inside a replay, with the reason
EAGER_SAMPLES = {}


def _table():
    rs = np.random.RandomState(5)
    out = []
    for name in LOWERED:
        op = get_op(name)
        for k, s in enumerate(op.samples(rs)):
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
def forward(table_fn):
    ins = _inputs()
    return _apply_all(*ins), table_fn(*ins), table_fn.explain()


@pytest.fixture(scope="module")
def backward(table_fn, forward):
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
        return [a.grad.asnumpy() if d else None for a, d in zip(ins, diff)], keep

    state = rs.get_state()
    g_eager, keep = run(_apply_all)
    rs.set_state(state)
    g_comp, _ = run(table_fn, keep)
    return g_eager, g_comp, table_fn.explain()


@pytest.mark.parametrize("k", range(len(TABLE)), ids=_IDS)
def test_forward_equals_eager(forward, k):
    eager, comp, _ = forward
    op = TABLE[k][0]
    for i in range(*_OUT[k]):
        np.testing.assert_allclose(comp[i].asnumpy(), eager[i].asnumpy(), rtol=1e-7, atol=1e-12,
                                   err_msg="compiled forward of %s" % _IDS[k])
        assert comp[i].shape == eager[i].shape and comp[i].dtype == eager[i].dtype, op.name


@pytest.mark.parametrize("k", range(len(TABLE)), ids=_IDS)
def test_backward_equals_eager(backward, k):
    g_eager, g_comp, _ = backward
    for j in range(*_IN[k]):
        if g_eager[j] is None:
            continue
        np.testing.assert_allclose(g_comp[j], g_eager[j], rtol=1e-7, atol=1e-12,
                                   err_msg="compiled gradient through %s (input %d)"
                                   % (_IDS[k], j - _IN[k][0]))


def _eager_lines(text):
    return [ln for ln in text.splitlines() if "runs eagerly" in ln]


def test_no_eager_segment(forward, backward):
    """Every sample's forward, training forward and backward are compiled."""
    allowed = set(EAGER_SAMPLES.values())
    for text in (forward[2], backward[2]):
        bad = [ln for ln in _eager_lines(text) if not any(a in ln for a in allowed)]
        assert not bad, "\n".join(bad)
