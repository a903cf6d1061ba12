"""Shape and dtype inference against real MXNet 1.9.1's answers (tests/golden/infer.json,
written by tests/golden/make_infer.py, which runs the same cases here on agjit): what
``infer_shape`` / ``infer_shape_partial`` / ``infer_type`` return for every argument, output
and auxiliary state -- forward, backward (an input from an output or a label) and with
unknown dimensions -- the warnings they give and the errors they raise."""
import json
import os
import sys
import warnings

import pytest

import agjit as mx

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "golden"))
import make_infer  # noqa: E402

GOLD = json.load(open(os.path.join(HERE, "golden", "infer.json")))


def _run_case(name):
    fn = next(f for f in make_infer.CASES if f.__name__ == name)
    r = make_infer.Recorder(mx)
    try:
        fn(mx, r)
    except Exception as e:  # noqa: BLE001
        r.out.append({"kind": "build", "error": type(e).__name__, "msg": str(e)})
    return r.out


def _diff(want, got):
    """Differences between one recorded call of MXNet and agjit (warning texts compared on
    their first line, which names what could not be decided)."""
    if want.get("error") or got.get("error"):
        if want.get("error") != got.get("error"):
            return "error: mxnet %s, agjit %s %s" % (want.get("error"), got.get("error"),
                                                    got.get("msg", ""))
        return None
    for k in ("args", "outs", "aux"):
        if want[k] != got[k]:
            return "%s: mxnet %s, agjit %s" % (k, want[k], got[k])
    if bool(want["warn"]) != bool(got["warn"]):
        return "warnings: mxnet %s, agjit %s" % (want["warn"], got["warn"])
    return None


@pytest.mark.parametrize("name", sorted(GOLD))
def test_inference_matches_mxnet(name):
    want = GOLD[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = _run_case(name)
    assert len(got) == len(want), (got, want)
    bad = ["call %d (%s): %s" % (i, w["kind"], d) for i, (w, g) in enumerate(zip(want, got))
           for d in [_diff(w, g)] if d]
    assert not bad, "\n".join(bad)


def test_every_case_has_a_golden():
    assert sorted(f.__name__ for f in make_infer.CASES) == sorted(GOLD)


def test_warning_names_the_undecided_arguments():
    net = mx.sym.Variable("a", shape=(0, 4)) + mx.sym.Variable("b")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        assert net.infer_shape() == (None, None, None)
    text = str(w[0].message)
    assert "Cannot decide shape for the following arguments" in text
    assert "a: (0, 4)" in text and "b: ()" in text
