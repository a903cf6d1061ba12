"""Smoke test of benchmarks/gluon_step.py: a tiny run (MLP only, the hybridized Gluon variant
against the mx.jit reference, a few steps) in a subprocess exits 0, which needs the Gluon
step to reproduce the losses and weights of the mx.jit step over three SGD steps, and
writes its JSON with the timings.  Marked ``slow`` (compiles the kernels of both)."""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_gluon_step_benchmark_runs_and_checks_numbers(tmp_path):
    pytest.importorskip("sklearn")
    env = dict(os.environ)
    env.pop("OPENBLAS_CORETYPE", None)
    env.pop("OPENBLAS_L2_SIZE", None)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    out = tmp_path / "g.json"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gluon_step.py"),
                        "--only", "mlp", "--variants", "jit,gluon_hybrid", "--steps", "3",
                        "--rounds", "1", "--json", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "gluon_hybrid" in p.stdout and "BLAS:" in p.stdout
    res = json.loads(out.read_text())["models"]["mlp"]
    assert set(res) == {"jit", "gluon_hybrid"}
    for v, r in res.items():
        assert r["max_rel_err_vs_jit"] <= 1e-4 and r["median_us"] > 0, (v, r)
    assert res["jit"]["ratio"] == 1.0
