"""The code stays free of pyflakes' findings (unused imports and variables, undefined names,
names redefined while unused, shadowed imports), checked with ruff's ``F`` rules -- pyflakes'
checks, honouring ``# noqa`` where a module re-exports a name on purpose."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TREES = ["agjit", "symbol", "tests", "benchmarks", "notebooks"]


def test_no_pyflakes_findings():
    pytest.importorskip("ruff")
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F", "--no-cache",
                        "--output-format", "concise"] + TREES,
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
