"""benchmarks/cnn_step.py (W6 LeNet-5 / W7 ResNet-block training steps): the hand-written
NumPy gradients (the float64 reference of every peer) against finite differences, and a
quick run of the NumPy and agjit-eager peers that must print the table with every gradient
within tolerance (a missing peer says "not installed")."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
try:
    import cnn_step
finally:
    sys.path.pop(0)


@pytest.mark.parametrize("case", ["W6", "W7"])
def test_hand_gradients_match_finite_differences(case):
    assert cnn_step.finite_difference_check(case) < 1e-5


def test_quick_run_prints_table():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT
    env["OPENBLAS_NUM_THREADS"] = "1"     # a shared 2-core machine: no BLAS thread stalls
    p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "cnn_step.py"), "--quick",
                        "--peers", "numpy,agjit_eager", "--repeats", "1", "--warmup", "0",
                        "--target-ms", "1"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "| workload | numpy | agjit_eager |" in p.stdout, p.stdout
    rows = [ln for ln in p.stdout.splitlines() if ln.startswith("| W")]
    assert len(rows) == 4 and all(" ms" in r and "✗" not in r for r in rows), p.stdout  # wall + CPU
    assert "## Process CPU ms per step" in p.stdout


def test_missing_peer_is_reported(monkeypatch):
    monkeypatch.setattr(cnn_step, "peer_python", lambda peer: None)
    r = cnn_step.run_peer("mxnet", "W6", None, None, None, None)
    assert r == {"status": "not installed"}
    table = cnn_step.report({"W6": {"mxnet": r}}, ["W6"], ["mxnet"])
    assert "not installed" in table
