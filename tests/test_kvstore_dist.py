"""Data-parallel training over MPI: ``mpirun -np 2`` on this machine (tests/_kv_worker.py).

* 2-process Gluon MLP (update on the workers, on the store, float16 on the wire), CNN
  ('horovod'), 5 steps each, and Module.fit (compiled executors) over a sharded NDArrayIter: both ranks end with identical parameters, equal to single-process training on the
  concatenated batch; pushpull of many mixed-size arrays in small buckets;
* faults: a rank killed by SIGKILL, a rank raising (through ``agjit launch``), a rank that
  hangs -- the other rank exits with a clear error within seconds;
* the launcher: ``[rank]`` prefixes and exit-status propagation.

Skipped, with the reason, when ``mpirun`` or ``mpi4py`` is missing (CI installs both).
"""
import importlib.util
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "_kv_worker.py")

MPIRUN = shutil.which("mpirun")
pytestmark = [
    pytest.mark.skipif(MPIRUN is None, reason="mpirun not found (Debian: apt-get install "
                                              "openmpi-bin libopenmpi-dev)"),
    pytest.mark.skipif(importlib.util.find_spec("mpi4py") is None,
                       reason="mpi4py not installed (pip install 'agjit[dist]')"),
]


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OPENBLAS_NUM_THREADS="1")
    env.update(extra)
    return env


def _mpirun(args, timeout=120, **env):
    cmd = [MPIRUN, "-np", "2", "--oversubscribe", sys.executable, "-u", WORKER] + args
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, env=_env(**env), timeout=timeout)
    return r, time.monotonic() - t0


@pytest.fixture(scope="module")
def sys_path_worker():
    sys.path.insert(0, HERE)
    try:
        import _kv_worker
        yield _kv_worker
    finally:
        sys.path.remove(HERE)


def test_two_processes_train_like_one_on_the_whole_batch(tmp_path, sys_path_worker,
                                                         fault_jobs):
    w = sys_path_worker
    # the single-process references first: they also fill the shared kernel cache
    # (AGJIT_CACHE_DIR of this test run) that the ranks' compiled paths then load
    ref = {}
    for tag, kw in (("mlp", dict(make=w.mlp, shape=(8,), classes=4, kvstore=None)),
                    ("mlp_uok", dict(make=w.mlp, shape=(8,), classes=4, kvstore=None, seed=1)),
                    ("cnn", dict(make=w.cnn, shape=(1, 8, 8), classes=3, kvstore=None, seed=2)),
                    ("mlp_f16", dict(make=w.mlp, shape=(8,), classes=4, kvstore=None, seed=4))):
        for k, v in w.train_gluon(rank=0, num_workers=1, **kw).items():
            ref[tag + "/" + k] = v
    for k, v in w.train_module(0, 1, "local").items():
        ref["mod/" + k] = v

    r, dt = _mpirun(["train", str(tmp_path)], timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    r0 = dict(np.load(tmp_path / "rank0.npz"))
    r1 = dict(np.load(tmp_path / "rank1.npz"))
    assert r0.pop("meta/rank_workers").tolist() == [0, 2]
    assert r1.pop("meta/rank_workers").tolist() == [1, 2]
    assert sorted(r0) == sorted(r1)
    for k in r0:                                    # replicas stay bit-identical
        np.testing.assert_array_equal(r0[k], r1[k], err_msg=k)
    assert sorted(k for k in r0 if not k.startswith("pushpull")) == sorted(ref)
    for k, v in ref.items():
        tol = dict(rtol=2e-2, atol=2e-3) if k.startswith("mlp_f16") else \
            dict(rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(r0[k], v, err_msg=k, **tol)
    a0, a1 = w.mixed_arrays(0), w.mixed_arrays(1)
    for i in range(len(a0)):
        np.testing.assert_array_equal(r0["pushpull_f32/%d" % i], a0[i] + a1[i])
        np.testing.assert_allclose(r0["pushpull_f16/%d" % i], a0[i] + a1[i], rtol=2e-3,
                                   atol=1e-2)
    # rank 0's checkpoint is complete and nothing temporary is left
    import agjit as mx
    assert mx.nd.load(str(tmp_path / "ck.params"))["w"].asnumpy().tolist() == [1, 1, 1]
    assert sorted(os.listdir(tmp_path)) == ["ck.params", "rank0.npz", "rank1.npz"]


def _start(cmd, **env):
    return (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env(**env)), time.monotonic())


@pytest.fixture(scope="module")
def fault_jobs():
    """The three fault runs, started at once (they mostly wait) so that they overlap each
    other and the training test: {name: (returncode, seconds, stdout, stderr)}."""
    mpi = [MPIRUN, "-np", "2", "--oversubscribe", sys.executable, "-u", WORKER, "fault"]
    jobs = {"kill": _start(mpi + ["kill"]),
            "hang": _start(mpi + ["hang"], AGJIT_KV_TIMEOUT="3"),
            "raise": _start([sys.executable, "-m", "agjit", "launch", "-n", "2", WORKER,
                             "fault", "raise"])}
    done = {}

    def result(name):
        if name not in done:
            proc, t0 = jobs[name]
            try:
                out, err = proc.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            done[name] = (proc.returncode, time.monotonic() - t0, out, err)
        return done[name]
    yield result
    for name in jobs:
        result(name)


def test_killed_rank_stops_the_other(fault_jobs):
    rc, dt, so, se = fault_jobs("kill")
    out = so + se
    assert rc != 0, out
    assert dt < 60, dt
    assert "rank 0 finished" not in out
    assert "exited on signal 9" in out or "stopped by SIGTERM" in out, out[-3000:]


def test_hanging_rank_times_out(fault_jobs):
    rc, dt, so, se = fault_jobs("hang")
    out = so + se
    assert rc != 0, out
    assert dt < 60, dt
    assert "did not complete within 3 s (AGJIT_KV_TIMEOUT)" in out, out[-3000:]


def test_launch_raise_propagates_with_prefixes(fault_jobs):
    rc, dt, so, se = fault_jobs("raise")
    assert rc == 1 and dt < 60, (rc, dt, so, se)
    assert "[0] rank 0 step 1" in so and "[1] rank 1 step 1" in so, so
    assert "[1] ValueError: boom at step 2" in se, se[-3000:]
    # rank 0 names the cause: the goodbye rank 1 sent before aborting
    assert "rank 1 failed: ValueError: boom at step 2" in se, se[-3000:]
    assert "[0] rank 0 finished" not in so
