"""Run the MXNet 1.9.1 differential oracle (../shared/oracle) against agjit.

Each group of recorded MXNet programs runs in subprocesses; every case must PASS.  Skipped when
the oracle is not checked out beside the project.  Deselect with ``-m "not oracle"``.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORACLE = os.path.join(ROOT, "..", "shared", "oracle", "oracle.py")

GROUPS = ["ag_*", "gs_*,sym_*,err_*"]


@pytest.mark.oracle
@pytest.mark.parametrize("cases", GROUPS)
def test_oracle_group(cases):
    if not os.path.exists(ORACLE):
        pytest.skip("../shared/oracle is absent")
    cmd = [sys.executable, ORACLE, "check", "--impl", "agjit", "--python", sys.executable,
           "-j", "2", "--cases", cases]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    lines = [ln for ln in output.splitlines() if ln.startswith(("PASS", "FAIL", "ERROR"))]
    bad = [ln for ln in lines if not ln.startswith("PASS")]
    if proc.returncode != 0 or bad or not lines:
        print(output)
    assert lines, "the oracle ran no case for %r:\n%s" % (cases, output)
    assert not bad, "%d oracle case(s) failed for %r:\n%s" % (len(bad), cases, "\n".join(bad))
    assert proc.returncode == 0, output
