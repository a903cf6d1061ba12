"""gluon.contrib (nn, rnn, estimator) and mx.init.Bilinear / LSTMBias against real MXNet
1.9.1: the programs of tests/golden/gen_gluon_contrib_mxnet.py run here with agjit, and
their parameter names, outputs and gradients must equal the recorded
tests/golden/gluon_contrib_mxnet.json (regenerate with the command in that script)."""
import importlib.util
import json
import os
import warnings

import numpy as np
import pytest

import agjit as mx

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "golden", "gluon_contrib_mxnet.json")) as _f:
    GOLD = json.load(_f)
_spec = importlib.util.spec_from_file_location(
    "_gen_gluon_contrib", os.path.join(HERE, "golden", "gen_gluon_contrib_mxnet.py"))
GEN = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(GEN)


def _numeric(v):
    if isinstance(v, list):
        return all(_numeric(x) for x in v)
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _rectangular(v):
    try:
        np.asarray(v, dtype=np.float64)
    except ValueError:
        return False
    return True


def _compare(got, want, path=""):
    """Names/strings exactly, numbers to 1e-4 relative (float32 math in both)."""
    if isinstance(want, dict):
        assert isinstance(got, dict), path
        assert sorted(got) == sorted(want), "%s keys: %s vs %s" % (path, sorted(got),
                                                                   sorted(want))
        for k in want:
            _compare(got[k], want[k], path + "/" + k)
    elif isinstance(want, list) and _numeric(want) and _rectangular(want):
        np.testing.assert_allclose(np.asarray(got, dtype=np.float64),
                                   np.asarray(want, dtype=np.float64), rtol=1e-4, atol=2e-5,
                                   err_msg=path)
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), "%s: %r vs MXNet %r" % (
            path, got, want)
        for i, (g, w) in enumerate(zip(got, want)):
            _compare(g, w, "%s[%d]" % (path, i))
    elif _numeric(want):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5, err_msg=path)
    else:
        assert got == want, "%s: %r vs MXNet %r" % (path, got, want)


def test_golden_complete():
    assert sorted(GOLD) == sorted(GEN.CASES)
    assert not [k for k, v in GOLD.items() if "error" in v]


@pytest.fixture(autouse=True)
def _as_mxnet():
    """The golden programs say ``from mxnet.gluon ... import``: run them on agjit."""
    import sys
    prev = sys.modules.get("mxnet")
    mx.alias_as_mxnet()
    yield
    if prev is None:
        sys.modules.pop("mxnet", None)
    else:
        sys.modules["mxnet"] = prev


@pytest.mark.parametrize("case", sorted(GEN.CASES))
def test_case_matches_mxnet(case):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = json.loads(json.dumps(GEN.run_case(mx, case)))
    _compare(got, GOLD[case], case)


def _mxnet_python():
    root = os.path.dirname(HERE)
    for c in [os.environ.get("AGJIT_MXNET_PYTHON"),
              os.path.join(root, "..", "shared", "oracle", ".mxenv", "bin", "python"),
              "/work/mxenv/bin/python"]:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


def test_hybrid_stack_exports_to_mxnet(tmp_path):
    """The hybridized contrib stack (the golden case's graph, so its compiled kernels are
    reused) exports a symbol + params that real MXNet 1.9.1 imports and runs with agjit's
    outputs; SyncBatchNorm exports as BatchNorm (agjit's registry has no
    _contrib_SyncBatchNorm), which MXNet runs with the same numbers."""
    import subprocess
    import textwrap
    py = _mxnet_python()
    if py is None:
        pytest.skip("no MXNet interpreter (set AGJIT_MXNET_PYTHON)")
    with mx.name.NameManager():
        net = GEN.hybrid_stack(mx)
    net.initialize()
    net.hybridize()
    x = mx.nd.array(GEN._x((2, 8, 2, 2)) * 2)
    with mx.autograd.record():
        net(x)                          # train mode: moves the running statistics
    GEN._set_params(net, seed=3)
    prefix = str(tmp_path / "stack")
    net.export(prefix, epoch=1)
    with open(prefix + "-symbol.json") as f:
        ops = [n["op"] for n in json.load(f)["nodes"]]
    assert ops.count("Reshape") == 6 and ops.count("transpose") == 2 and "Concat" in ops
    assert "BatchNorm" in ops
    with mx.name.NameManager():
        eager = GEN.hybrid_stack(mx)     # not hybridized: the eager reference
    eager.initialize()
    eager(x)
    GEN._set_params(eager, seed=3)
    want = eager(x).asnumpy()
    np.save(str(tmp_path / "x.npy"), x.asnumpy())
    script = textwrap.dedent("""
        import sys, numpy as np, mxnet as mx
        p = sys.argv[1]
        net = mx.gluon.SymbolBlock.imports(p + '-symbol.json', ['data'], p + '-0001.params')
        out = net(mx.nd.array(np.load(sys.argv[2]))).asnumpy()
        np.save(sys.argv[3], out)
    """)
    env = dict(os.environ, MXNET_ENGINE_TYPE="NaiveEngine")
    env.pop("PYTHONPATH", None)
    r = subprocess.run([py, "-c", script, prefix, str(tmp_path / "x.npy"),
                        str(tmp_path / "out.npy")], capture_output=True, text=True,
                       timeout=240, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    got = np.load(str(tmp_path / "out.npy"))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("drop_states", [0.0, 0.5])
def test_variational_dropout_one_mask_per_sequence(drop_states):
    """Training mode: the output mask is drawn once and applied at every step (the same
    zeros in every step), survivors scaled by 1/(1-p); predict mode: the base cell."""
    from agjit.gluon import rnn
    from agjit.gluon.contrib.rnn import VariationalDropoutCell
    mx.random.seed(7)
    base = rnn.RNNCell(40, input_size=3, prefix='r_')
    cell = VariationalDropoutCell(base, drop_inputs=0.5 if drop_states else 0.0,
                                  drop_states=drop_states, drop_outputs=0.5)
    assert cell.prefix == 'r_vardrop' and sorted(cell.collect_params()) == [
        'r_h2h_bias', 'r_h2h_weight', 'r_i2h_bias', 'r_i2h_weight']
    cell.initialize()
    x = mx.nd.array(np.random.RandomState(0).uniform(0.5, 1, (2, 5, 3)))
    with mx.autograd.record():
        out, _ = cell.unroll(5, x, merge_outputs=True)
    out = out.asnumpy()
    zero = out == 0
    assert 0.2 < zero.mean() < 0.8
    for t in range(1, 5):
        assert (zero[:, t] == zero[:, 0]).all()      # one output mask for the sequence
    # predict mode equals the plain cell on the same weights
    cell.reset()
    pred, _ = cell.unroll(5, x, merge_outputs=True)
    base._modified = False
    ref, _ = base.unroll(5, x, merge_outputs=True)
    base._modified = True
    np.testing.assert_allclose(pred.asnumpy(), ref.asnumpy(), rtol=1e-6)
    if not drop_states:         # only the output mask: survivors are the cell's, doubled
        np.testing.assert_allclose(out[~zero], 2 * ref.asnumpy()[~zero], rtol=1e-5)
