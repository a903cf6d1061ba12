"""Smoke test of the benchmark suite: a minimal ``benchmarks/run.py --quick --only W3`` run in
a subprocess prints its tables and writes results.json/results.md.

Slow-ish (a fresh process compiles the W3 kernels unless the run's kernel cache is warm):
marked ``slow``; skip with ``-m "not slow"`` or AGJIT_SKIP_BENCH_SMOKE=1.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_skip = pytest.mark.skipif(os.environ.get("AGJIT_SKIP_BENCH_SMOKE") == "1",
                           reason="AGJIT_SKIP_BENCH_SMOKE=1")


def test_hand_gradients_match_finite_differences():
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import workloads
    finally:
        sys.path.pop(0)
    errs = workloads.finite_difference_check()
    assert max(errs.values()) < 1e-6, errs


@pytest.mark.slow
@_skip
def test_quick_w3_run_prints_tables(tmp_path):
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    out = tmp_path / "res"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--quick",
                        "--only", "W3", "--peers", "agjit_jit,agjit_eager,numpy",
                        "--repeats", "2", "--target-ms", "5", "--out", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "## Median us per step" in p.stdout
    assert "## Ratios" in p.stdout and "W3/chain20" in p.stdout
    res = json.loads((out / "results.json").read_text())
    jit = res["timings"]["agjit_jit"]["W3/chain20"]
    assert jit["status"] == "ok" and jit["check_ok"], jit
    assert (out / "results.md").exists()
