"""The program tests/test_kvstore_dist.py runs on every rank (``mpirun -np 2`` or ``agjit
launch``), and the single-process references it is compared with.

    python _kv_worker.py train OUTDIR      data-parallel Gluon MLP / CNN / Module training
    python _kv_worker.py fault MODE        rank 1 dies (kill/raise/exit0) at step 2
"""
import os
import signal
import sys
import time

import numpy as np

import agjit as mx
from agjit import autograd, gluon
from agjit.gluon import nn

STEPS = 5
PER_RANK = 6          # samples per rank and step


def batches(seed, n_global, shape, classes):
    rng = np.random.RandomState(seed)
    return [(rng.randn(n_global, *shape).astype(np.float32),
             rng.randint(0, classes, n_global).astype(np.float32)) for _ in range(STEPS)]


def mlp():
    net = nn.Sequential()
    net.add(nn.Dense(16, activation='relu', in_units=8), nn.Dense(4, in_units=16))
    return net


def cnn():
    net = nn.Sequential()
    net.add(nn.Conv2D(4, 3, in_channels=1, activation='relu'), nn.MaxPool2D(2),
            nn.Flatten(), nn.Dense(3, in_units=4 * 3 * 3))
    return net


def train_gluon(make, shape, classes, rank, num_workers, kvstore, update_on_kvstore=None,
                seed=0, compression=None, hybridize=False):
    """5 SGD steps; rank r trains on rows [r*PER_RANK, (r+1)*PER_RANK) of each global batch
    and steps with the global batch size.  Every rank initialises differently (seed + rank):
    the kvstore's broadcast at init must make them equal."""
    mx.random.seed(100 + seed + rank)
    np.random.seed(100 + seed + rank)
    net = make()
    net.initialize(mx.init.Xavier())
    if hybridize:
        net.hybridize()
    trainer = gluon.Trainer(net.collect_params(), 'sgd',
                            {'learning_rate': 0.1, 'momentum': 0.9, 'wd': 1e-3},
                            kvstore=kvstore, update_on_kvstore=update_on_kvstore,
                            compression_params=compression)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    lo = rank * PER_RANK
    hi = lo + PER_RANK if num_workers > 1 else 2 * PER_RANK
    for x, y in batches(seed, PER_RANK * 2, shape, classes):
        x, y = mx.nd.array(x[lo:hi]), mx.nd.array(y[lo:hi])
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(PER_RANK * 2)
    # keyed by position: block names depend on how many blocks the process made before
    return {"%02d_%s" % (i, k.rsplit("_", 1)[-1]): v.data().asnumpy()
            for i, (k, v) in enumerate(net.collect_params().items())}


def train_module(rank, num_workers, kvstore, seed=3):
    """Module.fit over an NDArrayIter sharded by rank (part_index / num_parts); Module's
    executors run agjit's compiled kernels, so this is the compiled step under the store."""
    data = mx.sym.Variable('data')
    h = mx.sym.Activation(mx.sym.FullyConnected(data, num_hidden=8, name='fc1'), act_type='relu')
    out = mx.sym.SoftmaxOutput(mx.sym.FullyConnected(h, num_hidden=3, name='fc2'), name='softmax')
    rng = np.random.RandomState(seed)
    X = rng.randn(PER_RANK * 2 * 2, 5).astype(np.float32)
    Y = rng.randint(0, 3, len(X)).astype(np.float32)
    # the global batch of step k is rows [k*2P, (k+1)*2P); rank r's shard of the reordered
    # data holds its half of every global batch, in order
    P = PER_RANK
    order = np.concatenate([np.arange(k * 2 * P + r * P, k * 2 * P + (r + 1) * P)
                            for r in range(2) for k in range(2)])
    if num_workers > 1:
        it = mx.io.NDArrayIter(X[order], Y[order], batch_size=P, part_index=rank,
                               num_parts=num_workers)
    else:
        it = mx.io.NDArrayIter(X, Y, batch_size=2 * P)
    mx.random.seed(7 + rank)
    mod = mx.mod.Module(out, context=mx.cpu())
    mod.fit(it, num_epoch=2, kvstore=kvstore, optimizer='sgd',
            optimizer_params={'learning_rate': 0.2, 'momentum': 0.5},
            initializer=mx.init.Xavier())
    arg, _aux = mod.get_params()
    return {k: v.asnumpy() for k, v in arg.items()}


def mixed_arrays(rank):
    rng = np.random.RandomState(50 + rank)
    shapes = [(3,), (1000, 10), (7, 7), (30000,), (1,), (65, 3), (2, 2, 2), (5000,)]
    return [rng.randn(*s).astype(np.float32) for s in shapes]


def save(path, arrays):
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def main_train(outdir):
    kv = mx.kv.create('dist_sync')
    rank, nw = kv.rank, kv.num_workers
    res = {}
    for k, v in train_gluon(mlp, (8,), 4, rank, nw, kv).items():
        res["mlp/" + k] = v
    for k, v in train_gluon(mlp, (8,), 4, rank, nw, 'dist_sync', update_on_kvstore=True,
                            seed=1).items():
        res["mlp_uok/" + k] = v
    for k, v in train_gluon(cnn, (1, 8, 8), 3, rank, nw, 'horovod', seed=2).items():
        res["cnn/" + k] = v
    for k, v in train_gluon(mlp, (8,), 4, rank, nw, 'dist_sync', seed=4,
                            compression={'type': 'fp16'}).items():
        res["mlp_f16/" + k] = v
    for k, v in train_module(rank, nw, 'dist_sync').items():
        res["mod/" + k] = v
    # pushpull of many mixed-size arrays in small buckets, float32 and float16 on the wire
    for tag, comp in (("f32", None), ("f16", {'type': 'fp16'})):
        kv2 = mx.kv.create('dist_device_sync')
        kv2.bucket_bytes = 20000
        if comp:
            kv2.set_gradient_compression(comp)
        arrs = [mx.nd.array(a) for a in mixed_arrays(rank)]
        keys = ["k%d" % i for i in range(len(arrs))]
        kv2.init(keys, [mx.nd.zeros(a.shape) for a in arrs])
        kv2.pushpull(keys, arrs)
        for i, a in enumerate(arrs):
            res["pushpull_%s/%d" % (tag, i)] = a.asnumpy()
    res["meta/rank_workers"] = np.array([rank, nw])
    kv.barrier()
    if rank == 0:
        mx.nd.save(os.path.join(outdir, "ck.params"), {"w": mx.nd.ones((3,))})
    save(os.path.join(outdir, "rank%d.npz" % rank), res)


def main_fault(mode):
    kv = mx.kv.create('dist_sync')
    kv.init(0, mx.nd.zeros((1000,)))
    g = mx.nd.ones((1000,))
    for step in range(4):
        if kv.rank == 1 and step == 2:
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif mode == "raise":
                raise ValueError("boom at step 2")
            elif mode == "exit0":
                sys.exit(0)
            elif mode == "hang":
                time.sleep(120)
        kv.pushpull(0, g, out=g)
        print("rank", kv.rank, "step", step, flush=True)
    print("rank", kv.rank, "finished", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "train":
        main_train(sys.argv[2])
    elif sys.argv[1] == "fault":
        main_fault(sys.argv[2])
    else:
        raise SystemExit("unknown mode %r" % sys.argv[1])
