"""Shared pytest configuration for the agjit test suite.

* registers the ``oracle`` marker (``pytest -m "not oracle"`` skips the MXNet oracle runs);
* resets the thread-local autograd flags around every test, so a test that deliberately leaks
  state (the scope-restore quirk, a failing assertion inside ``record()``) cannot change the
  behaviour of the next one;
* small helpers used by several test files.
"""
import atexit
import os
import re
import shutil
import tempfile

import numpy as np
import pytest

# One kernel cache per test run, in a temporary directory: tests never write into the user's
# cache, and every compiled-path test (and the subprocesses they start) shares what was
# compiled.  Numba's own cache goes there too; it must be set before numba is imported, and
# `import agjit` does not import numba.
# With pytest-xdist (`-n 2`) the controller makes the directory before it starts the workers,
# which inherit its environment and share it; only the process that made it removes it.
_KERNEL_CACHE = os.environ.get("AGJIT_TEST_CACHE_ROOT")
if not _KERNEL_CACHE or not os.path.isdir(_KERNEL_CACHE):
    _KERNEL_CACHE = tempfile.mkdtemp(prefix="agjit-test-cache-")
    os.environ["AGJIT_TEST_CACHE_ROOT"] = _KERNEL_CACHE
    atexit.register(shutil.rmtree, _KERNEL_CACHE, True)
os.environ["AGJIT_CACHE_DIR"] = os.path.join(_KERNEL_CACHE, "agjit")
os.environ["NUMBA_CACHE_DIR"] = os.path.join(_KERNEL_CACHE, "numba")
# The compiled-path tests expect a signature's first call to run compiled kernels: tiered
# execution (agjit.compiler.tier) is off unless a test turns it on (tests/test_tiered*.py)
# or the run sets AGJIT_TIERED=1.
os.environ.setdefault("AGJIT_TIERED", "0")
# Eager CNN/BatchNorm ops switch from their NumPy kernels to the compiled ones when a
# background thread has them (agjit.eager_kernels): results then differ in the last bits
# from call to call, which tests comparing two eager runs exactly would see.  The suite runs
# the NumPy kernels unless a test picks a mode (tests/test_eager_fast.py).
os.environ.setdefault("AGJIT_EAGER_KERNELS", "0")

import agjit as mx
from agjit import tape


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes tens of seconds (benchmark smoke runs)")
    config.addinivalue_line(
        "markers", "oracle: runs the MXNet 1.9.1 differential oracle in subprocesses "
                   "(deselect with -m \"not oracle\")")


@pytest.fixture(autouse=True)
def _clean_autograd_state():
    """Every test starts and ends with recording and training switched off."""
    tape.set_recording(False)
    tape.set_training(False)
    yield
    tape.set_recording(False)
    tape.set_training(False)


@pytest.fixture
def rng():
    return np.random.RandomState(1234)


def var_index(arr):
    """The counter value k of an array's autograd variable name ``var<k>`` / ``null<k>``."""
    names = mx.autograd.get_symbol(arr).list_arguments()
    assert len(names) == 1, names
    m = re.fullmatch(r"(?:var|null)(\d+)", names[0])
    assert m, names
    return int(m.group(1))


def next_var_index():
    """The number the next ``var<k>``/``null<k>`` will get (consumes one number)."""
    probe = mx.nd.zeros((1,))
    probe.attach_grad()
    return var_index(probe) + 1
