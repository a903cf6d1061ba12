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
