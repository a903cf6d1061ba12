"""``agjit demo --quick`` end to end in a subprocess: it trains the digits MLP with compiled
replay to >= 95% held-out accuracy, exports, reloads and matches, and exits 0.

The subprocess inherits the per-run kernel cache of tests/conftest.py (AGJIT_CACHE_DIR and
NUMBA_CACHE_DIR), so it never writes into the user's cache.
"""
import os
import re
import subprocess
import sys

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("tqdm")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_quick(tmp_path):
    out_dir = tmp_path / "model"
    proc = subprocess.run(
        [sys.executable, "-m", "agjit", "demo", "--quick", "--no-progress",
         "--timing-steps", "30", "--out", str(out_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    # the seed example and the recorded MLP still open the demo
    assert "dy/dx  = [2. 4. 6. 8.]" in text
    assert "softmax_cross_entropy" in text
    m = re.search(r"held-out accuracy: ([0-9.]+)", text)
    assert m, text[-4000:]
    assert float(m.group(1)) >= 0.95
    m = re.search(r"reloaded predictions: max abs difference (\S+), accuracy ([0-9.]+) -> OK",
                  text)
    assert m, text[-4000:]
    assert float(m.group(1).rstrip(",")) <= 1e-5
    assert re.search(r"eager: +[0-9.]+ ms/step", text)
    assert re.search(r"compiled: +[0-9.]+ ms/step", text)
    assert (out_dir / "digits-mlp-symbol.json").is_file()
    assert (out_dir / "digits-mlp-0000.params").is_file()


def test_demo_bad_option_exits_nonzero():
    proc = subprocess.run([sys.executable, "-m", "agjit", "demo", "--epochs", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "--epochs" in proc.stderr
