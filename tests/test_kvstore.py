"""mx.kv in one process: MXNet 1.9.1's KVStore semantics (the numbers below were read from
real MXNet 1.9.1 for 'local' / 'device'), the store in Trainer and Module, sharding, the
launcher's command line and its errors.  Multi-process runs: tests/test_kvstore_dist.py."""
import os
import subprocess
import sys

import numpy as np
import pytest

import agjit as mx
from agjit import gluon
from agjit.base import MXNetError


def _np(a):
    return a.asnumpy().tolist()


def test_create_types_and_refusals():
    for name in ("local", "device", "local_allreduce_cpu"):
        kv = mx.kv.create(name)
        assert (kv.type, kv.rank, kv.num_workers) == (name, 0, 1)
        assert isinstance(kv, mx.kv.KVStore) and isinstance(kv, mx.kvstore.KVStoreBase)
    assert mx.kv.create().type == "local"
    kv = mx.kv.create("dist_sync")          # no MPI launcher: one worker, MPI untouched
    assert (kv.type, kv.num_workers, kv.rank) == ("dist_sync", 1, 0)
    assert "mpi4py.MPI" not in sys.modules or os.environ.get("OMPI_COMM_WORLD_SIZE")
    with pytest.raises(MXNetError, match="asynchronous parameter-server"):
        mx.kv.create("dist_async")
    with pytest.raises(MXNetError, match="no NCCL"):
        mx.kv.create("nccl")
    with pytest.raises(MXNetError, match="not known"):
        mx.kv.create("dist_bogus")
    with pytest.raises(TypeError, match="name must be a string"):
        mx.kv.create(3)


def test_init_push_pull_semantics():
    kv = mx.kv.create("local")
    kv.init(3, mx.nd.ones((2, 3)))
    a = mx.nd.zeros((2, 3))
    kv.pull(3, out=a)
    assert _np(a) == [[1.0] * 3] * 2
    kv.push(3, mx.nd.ones((2, 3)) * 8)                  # no updater: replaced
    kv.pull(3, out=a)
    assert _np(a) == [[8.0] * 3] * 2
    kv.push(3, [mx.nd.ones((2, 3)) * 2, mx.nd.ones((2, 3)) * 3])    # summed: 5
    outs = [mx.nd.zeros((2, 3)), mx.nd.zeros((2, 3))]
    kv.pull(3, out=outs)
    assert [_np(o)[0][0] for o in outs] == [5.0, 5.0]
    with pytest.raises(MXNetError, match="duplicate init of key 3"):
        kv.init(3, mx.nd.ones((2, 3)))
    with pytest.raises(MXNetError, match="key 9 has not been inited"):
        kv.pull(9, out=mx.nd.zeros((2, 3)))
    with pytest.raises(MXNetError, match="key 9 has not been inited"):
        kv.push(9, mx.nd.zeros((2, 3)))
    with pytest.raises(MXNetError, match=r"Mixed key types are not allowed"):
        kv.init("w", mx.nd.ones((4,)))
    with pytest.raises(MXNetError, match=r"inited with shape \(2, 3\), pushed value 0 has "
                                         r"shape \(3, 3\)"):
        kv.push(3, mx.nd.ones((3, 3)))
    with pytest.raises(MXNetError, match=r"key 3 has shape \(2, 3\), out has shape"):
        kv.pull(3, out=mx.nd.ones((3, 3)))
    with pytest.raises(AssertionError, match="unexpected type for keys"):
        kv.push(1.5, mx.nd.ones(2))
    with pytest.raises(AssertionError, match="out is required"):
        kv.pull(3)
    with pytest.raises(AssertionError, match="2 keys need a list of 2 values"):
        kv.init([7, 8], [mx.nd.ones(1)])
    with pytest.raises(AssertionError, match="must be an NDArray"):
        kv.init(10, [1, 2])


def test_str_keys_pushpull_broadcast_and_refusals():
    kv = mx.kv.create("device")
    kv.init(["a", "b"], [mx.nd.ones((2,)), mx.nd.ones((3,)) * 2])
    o = [mx.nd.zeros((2,)), mx.nd.zeros((3,))]
    kv.pull(["a", "b"], out=o)
    assert [_np(x) for x in o] == [[1, 1], [2, 2, 2]]
    kv.pushpull(["a", "b"], [mx.nd.ones((2,)) * 5, mx.nd.ones((3,)) * 7], out=o)
    assert [_np(x) for x in o] == [[5, 5], [7, 7, 7]]
    v = [mx.nd.ones((2,)), mx.nd.ones((2,)) * 2]
    kv.pushpull("a", v)                                  # no out: into the values, summed
    assert [_np(x) for x in v] == [[3, 3], [3, 3]]
    o3 = mx.nd.zeros((2,))
    kv.broadcast("c", mx.nd.ones((2,)) * 9, out=o3)
    assert _np(o3) == [9, 9]
    with pytest.raises(MXNetError, match="duplicate init of key 'c'"):
        kv.broadcast("c", mx.nd.ones((2,)), out=o3)
    with pytest.raises(MXNetError, match="row_sparse"):
        kv.row_sparse_pull("a", out=o[0], row_ids=mx.nd.array([0]))
    with pytest.raises(MXNetError, match="Unknown type for gradient compression"):
        kv.set_gradient_compression({"type": "3bit"})
    kv.set_gradient_compression({"type": "2bit", "threshold": 0.5})
    assert kv.is_capable("optimizer") is True
    with pytest.raises(ValueError, match="Unknown capability"):
        kv.is_capable("teleport")
    kv._barrier()
    kv.barrier()


def test_optimizer_on_store_and_states(tmp_path):
    kv = mx.kv.create("local")
    with pytest.raises(AssertionError, match="Cannot save states"):
        kv.save_optimizer_states(str(tmp_path / "x"))
    kv.set_optimizer(mx.optimizer.SGD(learning_rate=0.1))
    kv.init(0, mx.nd.ones((2,)))
    o = mx.nd.zeros((2,))
    kv.push(0, mx.nd.ones((2,)) * 2)
    kv.pull(0, out=o)
    np.testing.assert_allclose(o.asnumpy(), [0.8, 0.8], rtol=1e-6)     # MXNet: [0.8 0.8]
    kv.push(0, [mx.nd.ones((2,)), mx.nd.ones((2,))])
    kv.pull(0, out=o)
    np.testing.assert_allclose(o.asnumpy(), [0.6, 0.6], rtol=1e-6)     # MXNet: [0.6 0.6]
    # several keys in one pushpull (one fused update); MXNet: [0.9 0.9], [0.8 0.8 0.8]
    kv2 = mx.kv.create("local")
    kv2.set_optimizer(mx.optimizer.SGD(learning_rate=0.1, momentum=0.9))
    kv2.init([0, 1], [mx.nd.ones((2,)), mx.nd.ones((3,))])
    outs = [mx.nd.zeros((2,)), mx.nd.zeros((3,))]
    kv2.pushpull([0, 1], [mx.nd.ones((2,)), mx.nd.ones((3,)) * 2], out=outs)
    np.testing.assert_allclose(outs[0].asnumpy(), [0.9] * 2, rtol=1e-6)
    np.testing.assert_allclose(outs[1].asnumpy(), [0.8] * 3, rtol=1e-6)
    f = str(tmp_path / "kv.states")
    kv2.save_optimizer_states(f)
    kv2.pushpull([0, 1], [mx.nd.ones((2,)), mx.nd.ones((3,))], out=outs)
    after = [x.asnumpy().copy() for x in outs]
    # a fresh store with the saved momentum continues exactly the same way
    kv3 = mx.kv.create("local")
    kv3.set_optimizer(mx.optimizer.SGD(learning_rate=0.1, momentum=0.9))
    kv3.init([0, 1], [mx.nd.array([0.9] * 2), mx.nd.array([0.8] * 3)])
    kv3.load_optimizer_states(f)
    o2 = [mx.nd.zeros((2,)), mx.nd.zeros((3,))]
    kv3.pushpull([0, 1], [mx.nd.ones((2,)), mx.nd.ones((3,))], out=o2)
    for a, b in zip(after, o2):
        np.testing.assert_allclose(b.asnumpy(), a, rtol=1e-6)
    assert not any(p.name.startswith(".") or "tmp" in p.name for p in tmp_path.iterdir())
    # a custom updater gets (key, summed, stored)
    seen = []
    kv4 = mx.kv.create("local")

    def upd(key, recv, stored):
        seen.append((key, _np(recv)))
        stored[:] = stored + recv * 10
    kv4._set_updater(upd)
    kv4.init("p", mx.nd.ones(1))
    kv4.push("p", mx.nd.ones(1))
    o1 = mx.nd.zeros(1)
    kv4.pull("p", out=o1)
    assert seen == [("p", [1.0])] and _np(o1) == [11.0]


def test_mxnet_alias_imports():
    import importlib
    mxmod = mx.alias_as_mxnet()
    try:
        kvmod = importlib.import_module("mxnet.kv")
        assert kvmod is mx.kvstore and mxmod.kv is mx.kvstore
        from mxnet import kv as kv2  # noqa: F401
        assert kv2 is mx.kvstore
        assert importlib.import_module("mxnet.kvstore.base").KVStoreBase is mx.kv.KVStoreBase
    finally:
        sys.modules.pop("mxnet", None)
        for k in [k for k in sys.modules if k.startswith("mxnet.")]:
            sys.modules.pop(k)


def _net(seed):
    mx.random.seed(seed)
    net = gluon.nn.Dense(3, in_units=4)
    net.initialize(mx.init.Xavier())
    return net


@pytest.mark.parametrize("kvstore,uok", [("device", None), ("local-object", True),
                                         ("local-object", False), ("dist_sync", True)])
def test_trainer_with_a_store_equals_without(kvstore, uok):
    rng = np.random.RandomState(0)
    X = mx.nd.array(rng.randn(8, 4))
    Y = mx.nd.array(rng.randint(0, 3, 8))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    res = []
    for kv in (None, kvstore):
        net = _net(1)
        kvarg = mx.kv.create("local") if kv == "local-object" else kv
        tr = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.5, "momentum": 0.9},
                           kvstore=kvarg, update_on_kvstore=uok if kv else None)
        for _ in range(3):
            with mx.autograd.record():
                loss = loss_fn(net(X), Y)
            loss.backward()
            tr.step(8)
        res.append(net.weight.data().asnumpy())
        if kv not in (None, "device"):
            assert tr.kvstore is not None and tr._update_on_kvstore == bool(uok)
    np.testing.assert_allclose(res[1], res[0], rtol=1e-6, atol=1e-7)
    assert not np.allclose(res[0], _net(1).weight.data().asnumpy())      # it trained


def test_trainer_update_on_kvstore_states_roundtrip(tmp_path):
    net = _net(2)
    tr = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1, "momentum": 0.9},
                       kvstore=mx.kv.create("local"), update_on_kvstore=True)
    x = mx.nd.ones((2, 4))
    with mx.autograd.record():
        y = net(x).sum()
    y.backward()
    tr.step(2)
    f = str(tmp_path / "t.states")
    tr.save_states(f)
    tr.load_states(f)
    with pytest.raises(AssertionError, match="update_on_kvstore"):
        tr.allreduce_grads()


def test_module_fit_with_store_equals_local():
    # the network and shapes of tests/_kv_worker.py: one compile serves both test files
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import _kv_worker as w
    finally:
        sys.path.pop(0)
    res = [w.train_module(0, 1, kv) for kv in ("local", mx.kv.create("device"))]
    for k in res[0]:
        np.testing.assert_allclose(res[1][k], res[0][k], rtol=1e-6, err_msg=k)


def test_ndarrayiter_parts_and_split_sampler():
    X = np.arange(22).reshape(11, 2)
    parts = []
    for p in range(3):
        it = mx.io.NDArrayIter(X, np.arange(11), batch_size=3, part_index=p, num_parts=3,
                               last_batch_handle="discard")
        parts.append([b.label[0].asnumpy().tolist() for b in it])
    assert parts == [[[0, 1, 2]], [[3, 4, 5]], [[6, 7, 8]]]
    it = mx.io.NDArrayIter(X, batch_size=2, part_index=1, num_parts=2)
    assert it.num_data == 5 and it.provide_data[0].layout == "NCHW"
    with pytest.raises(MXNetError, match="part_index must be in"):
        mx.io.NDArrayIter(X, batch_size=2, part_index=2, num_parts=2)
    S = gluon.data.SplitSampler
    assert S is gluon.data.sampler.SplitSampler
    assert list(S(10, num_parts=3, part_index=2, shuffle=False)) == [6, 7, 8]
    np.random.seed(0)
    s = S(10, 2, 1)
    assert len(s) == 5 and sorted(s) == [5, 6, 7, 8, 9]
    ds = gluon.data.ArrayDataset(mx.nd.array(np.arange(8)))
    dl = gluon.data.DataLoader(ds, batch_size=2, sampler=S(8, 2, 0, shuffle=False))
    assert [b.asnumpy().tolist() for b in dl] == [[0, 1], [2, 3]]
    with pytest.raises(ValueError, match="part_index"):
        S(10, 2, 5)


def test_launch_command_line_and_missing_mpi(tmp_path, monkeypatch):
    from agjit.kvstore import launch as L
    monkeypatch.setenv("AGJIT_FOO", "1")
    cmd = L.build_command(4, "train.py", ["--lr", "0.1"], mpirun="/x/mpirun",
                          flavour="openmpi")
    assert cmd[:3] == ["/x/mpirun", "-np", "4"]
    assert cmd[-6:] == [sys.executable, "-u", "-m", "agjit.kvstore._rank", "train.py",
                        "--lr"] or cmd[-7:-1] == [sys.executable, "-u", "-m",
                                                  "agjit.kvstore._rank", "train.py", "--lr"]
    assert "-x" in cmd and "AGJIT_FOO" in cmd
    if (os.cpu_count() or 1) < 4:
        assert "--oversubscribe" in cmd
    cmd = L.build_command(8, "t.py", hostfile="hosts", mpirun="mpirun", flavour="openmpi")
    assert cmd[cmd.index("--hostfile") + 1] == "hosts" and "--oversubscribe" not in cmd
    script = tmp_path / "s.py"
    script.write_text("print('hi')\n")
    env = dict(os.environ, AGJIT_MPIRUN="no-such-mpirun-here")
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(mx.__file__)))
    r = subprocess.run([sys.executable, "-m", "agjit", "launch", "-n", "2", str(script)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1
    assert "mpirun not found" in r.stderr and "openmpi-bin" in r.stderr
    assert "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "agjit", "launch", "-n", "2",
                        str(tmp_path / "missing.py")], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 1 and "no such script" in r.stderr


def test_rank_wrapper_prefixes_lines(tmp_path):
    script = tmp_path / "p.py"
    script.write_text("import sys\nprint('a', 1)\nsys.stdout.write('b')\nsys.stdout.write('c\\n')\n"
                      "print('e', file=sys.stderr)\nsys.exit(4)\n")
    env = dict(os.environ, OMPI_COMM_WORLD_RANK="3")
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(mx.__file__)))
    r = subprocess.run([sys.executable, "-m", "agjit.kvstore._rank", str(script)],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.stdout == "[3] a 1\n[3] bc\n" and r.stderr == "[3] e\n" and r.returncode == 4


@pytest.mark.parametrize("modname", ["agjit.kvstore.base", "agjit.kvstore.kvstore",
                                     "agjit.gluon.data.sampler"])
def test_docstring_examples(modname):
    import doctest
    import importlib
    res = doctest.testmod(importlib.import_module(modname), extraglobs={"mx": mx, "np": np})
    assert res.failed == 0 and res.attempted > 0
