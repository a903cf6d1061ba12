"""The registry table of tests/test_jit.py (every registered op on its first sample, ONE
jitted function) under autograd: the gradients of every table input from the compiled
training-forward and backward kernels equal eager's, compared per op.

A file of its own so that ``pytest -n 2 --dist loadfile`` can run these two compiles on one
worker while tests/test_jit.py's forward-kernel compile runs on the other (together they
were the largest set-up of the suite).
"""
import os
import sys

import numpy as np
import pytest

import agjit as mx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_jit import TABLE, _IDS, _IN_SLICES, _apply_all, _inputs  # noqa: E402


@pytest.fixture(scope="module")
def table_fn():
    return mx.jit(_apply_all)


@pytest.fixture(scope="module")
def table_backward(table_fn):
    """Eager and compiled gradients of every table input (one training forward and one
    backward kernel for the whole table)."""
    rs = np.random.RandomState(3)

    # a gradient flows through every differentiable op; the inputs of the others (random
    # samplers, fill_element_0index, backward-only helpers) take no gradient, and their outputs
    # get no head gradient
    diff_in = [op.differentiable and np.asarray(a).dtype.kind == "f"
               for op, s in TABLE for a in s.inputs]

    def run(fn, keep=None):
        ins = _inputs()
        for a, d in zip(ins, diff_in):
            if d:
                a.attach_grad()
        with mx.autograd.record():
            mx.random.seed(11)
            outs = fn(*ins)
        heads = [mx.nd.array(rs.uniform(-1, 1, size=o.shape), dtype=o.dtype) for o in outs]
        if keep is None:            # eager: the outputs that depend on a gradient input
            keep = [o._entry is not None for o in outs]
        mx.autograd.backward([o for o, k in zip(outs, keep) if k],
                             head_grads=[h for h, k in zip(heads, keep) if k])
        return [a.grad.asnumpy() if d else None for a, d in zip(ins, diff_in)], keep

    state = rs.get_state()
    g_eager, keep = run(_apply_all)
    rs.set_state(state)
    g_comp, _ = run(table_fn, keep)
    return g_eager, g_comp



@pytest.mark.parametrize("k", range(len(TABLE)), ids=_IDS)
def test_compiled_backward_equals_eager(table_backward, k):
    """The gradients of one op's inputs from the whole-table training kernels."""
    g_eager, g_comp = table_backward
    op = TABLE[k][0]
    for j in range(*_IN_SLICES[k]):
        if g_eager[j] is None:
            continue
        np.testing.assert_allclose(g_comp[j], g_eager[j], rtol=1e-6, atol=1e-9,
                                   err_msg="compiled gradient through %s (input %d)"
                                   % (op.name, j - _IN_SLICES[k][0]))
