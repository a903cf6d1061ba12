"""Golden test of the generated source of the small-MLP training step (the step kernel
``mx.jit`` builds inside ``record()``): any change of the generated text -- names,
comments, statement order, imports -- fails here and is reviewed as a diff.

Regenerate after an intended change of the code generator (then read the diff):

    AGJIT_REGEN_GOLDEN=1 python -m pytest tests/test_codegen_golden.py

The traced function sits at the top of this file so its provenance comments
(``test_codegen_golden.py:<line>``) stay put when tests below are edited.
"""
import os

import numpy as np

import agjit as mx


def mlp_loss(x, label, w1, b1, w2, b2):
    h = mx.nd.relu(mx.nd.FullyConnected(x, w1, b1, num_hidden=16, name="fc0"))
    out = mx.nd.FullyConnected(h, w2, b2, num_hidden=4, name="fc1")
    return mx.nd.softmax_cross_entropy(out, label)


GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "mlp_step_source.txt")


def _step_source():
    rs = np.random.RandomState(0)
    x = mx.nd.array(rs.randn(8, 10).astype(np.float32))
    label = mx.nd.array(rs.randint(0, 4, size=8).astype(np.float32))
    params = [mx.nd.array(rs.randn(16, 10) * 0.3), mx.nd.zeros((16,)),
              mx.nd.array(rs.randn(4, 16) * 0.3), mx.nd.zeros((4,))]
    for p in params:
        p.attach_grad()
    f = mx.jit(mlp_loss)
    with mx.autograd.record():
        loss = f(x, label, *params)
    loss.backward()
    assert np.isfinite(params[0].grad.asnumpy()).all()
    return f.source()


def test_generated_source_of_the_mlp_training_step_matches_the_golden():
    src = _step_source()
    # where the kernel cache lives is not part of the generated text
    cache = os.environ.get("AGJIT_CACHE_DIR")
    if cache:
        src = src.replace(cache, "<AGJIT_CACHE_DIR>")
    # the path below names the golden file in a failure message, the src is pure ASCII
    if os.environ.get("AGJIT_REGEN_GOLDEN"):
        from symbol.base import atomic_write
        atomic_write(GOLDEN, [src], mode="w")
    with open(GOLDEN) as fh:
        want = fh.read()
    if src != want:
        import difflib
        diff = "".join(difflib.unified_diff(want.splitlines(True), src.splitlines(True),
                                            "golden", "generated"))
        raise AssertionError("generated step source differs from %s (regenerate with "
                             "AGJIT_REGEN_GOLDEN=1 after reviewing):\n%s" % (GOLDEN, diff))
