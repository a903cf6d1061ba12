"""Records tests/golden/optimizers_lars_mxnet.json with real MXNet 1.9.1:

    /work/mxenv/bin/python tests/golden/gen_optimizers_lars_mxnet.py > tests/golden/optimizers_lars_mxnet.json

Six named parameters (weights, a bias, BatchNorm gamma/beta; float32) updated for four steps
through ``mx.optimizer.get_updater`` with one list call per step (MXNet's Updater cuts it into
chunks of ``aggregate_num``), for the LARS and LBSGD settings in CFGS; also the names and
defaults of every optimizer in ``Optimizer.opt_registry``.  Used by
tests/test_optimizers_lars.py."""
import inspect
import json

import mxnet as mx
import numpy as np

NAMES = ["fc_weight", "fc_bias", "bn_gamma", "bn_beta", "conv_weight", "out_weight"]
SHAPES = [(3, 4), (3,), (3,), (3,), (2, 3, 2, 2), (5,)]
CFGS = {
    "lars": ("lars", {"learning_rate": 0.1}),
    "lars_mom": ("lars", {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01, "eta": 0.01}),
    "lars_all": ("lars", {"learning_rate": 0.5, "momentum": 0.5, "wd": 0.1, "eta": 0.02,
                          "eps": 1e-3, "rescale_grad": 0.25, "clip_gradient": 0.3}),
    "lars_sched": ("lars", {"momentum": 0.9, "wd": 0.01, "eta": 0.05,
                            "lr_scheduler": ("factor", {"step": 1, "factor": 0.5, "base_lr": 0.2})}),
    "lars_nocorr": ("lars", {"momentum": 0.9, "eta": 0.05, "momentum_correction": False,
                             "lr_scheduler": ("factor", {"step": 1, "factor": 0.5, "base_lr": 0.2})}),
    "lbsgd": ("lbsgd", {"learning_rate": 0.1}),
    "lbsgd_mom": ("lbsgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01,
                            "clip_gradient": 0.5, "rescale_grad": 0.5}),
    "lbsgd_scale": ("lbsgd", {"learning_rate": 0.1, "momentum": 0.5, "batch_scale": 2,
                              "warmup_epochs": 1, "updates_per_epoch": 3}),
    "lbsgd_power2": ("lbsgd", {"learning_rate": 0.1, "batch_scale": 3, "warmup_strategy": "power2",
                               "warmup_epochs": 2, "updates_per_epoch": 2}),
    "lbsgd_sqrt": ("lbsgd", {"learning_rate": 0.1, "batch_scale": 2, "warmup_strategy": "sqrt",
                             "warmup_epochs": 1, "updates_per_epoch": 4, "begin_epoch": 1}),
    "lbsgd_lars": ("lbsgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01,
                             "warmup_strategy": "lars"}),
    "lbsgd_lars2": ("lbsgd", {"learning_rate": 0.1, "batch_scale": 2, "warmup_strategy": "lars"}),
}


def make(name, kw):
    kw = dict(kw)
    sched = kw.pop("lr_scheduler", None)
    if sched is not None:
        kw["lr_scheduler"] = mx.lr_scheduler.FactorScheduler(**sched[1])
    return mx.optimizer.create(name, param_idx2name=dict(enumerate(NAMES)), **kw)


rs = np.random.RandomState(7)
w0 = [rs.randn(*s).astype("float32") for s in SHAPES]
gs = [[rs.randn(*s).astype("float32") for s in SHAPES] for _ in range(4)]
out = {"_comment": "recorded with MXNet 1.9.1 by tests/golden/gen_optimizers_lars_mxnet.py",
       "names": NAMES, "w0": [w.tolist() for w in w0], "gs": [[g.tolist() for g in s] for s in gs],
       "cfgs": CFGS, "res": {}, "single": {}}
for key, (name, kw) in CFGS.items():
    upd = mx.optimizer.get_updater(make(name, kw))
    ws = [mx.nd.array(w) for w in w0]
    steps = []
    for step in gs:
        upd(list(range(len(NAMES))), [mx.nd.array(g) for g in step], ws)
        steps.append([w.asnumpy().tolist() for w in ws])
    out["res"][key] = steps
    # optimizer.update with one int index (LARS: the same aggregated formula)
    opt = make(name, kw)
    w = mx.nd.array(w0[0])
    st = opt.create_state(0, w)
    seq = []
    for step in gs:
        opt.update(0, w, mx.nd.array(step[0]), st)
        seq.append(w.asnumpy().tolist())
    out["single"][key] = seq
# the other names MXNet registers: one (3, 4) weight, four steps
EXTRA = {"groupadagrad": ("groupadagrad", {"learning_rate": 0.1}),
         "groupadagrad_clip": ("groupadagrad", {"learning_rate": 0.1, "eps": 1e-3,
                                                "clip_gradient": 0.5, "rescale_grad": 0.5}),
         "ccsgd": ("ccsgd", {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01}),
         "test": ("test", {"rescale_grad": 0.5})}
out["extra_cfgs"] = EXTRA
out["extra"] = {}
for key, (name, kw) in EXTRA.items():
    upd = mx.optimizer.get_updater(mx.optimizer.create(name, **kw))
    w = mx.nd.array(w0[0])
    seq = []
    for step in gs:
        upd(0, mx.nd.array(step[0]), w)
        seq.append(w.asnumpy().tolist())
    out["extra"][key] = seq
# gluon.Trainer by name: a Dense(2, in_units=3), three steps of a squared loss, batch 4
TRAINER = {"lars": {"learning_rate": 0.1, "momentum": 0.9, "wd": 0.01},
           "lbsgd": {"learning_rate": 0.1, "momentum": 0.9, "batch_scale": 2}}
out["trainer_cfgs"] = TRAINER
out["trainer"] = {}
for name, kw in TRAINER.items():
    trs = np.random.RandomState(3)
    x, t = mx.nd.array(trs.randn(4, 3)), mx.nd.array(trs.randn(4, 2))
    net = mx.gluon.nn.Dense(2, in_units=3)
    net.initialize()
    net.weight.set_data(mx.nd.array(trs.randn(2, 3)))
    net.bias.set_data(mx.nd.array(trs.randn(2)))
    tr = mx.gluon.Trainer(net.collect_params(), name, dict(kw))
    for _ in range(3):
        with mx.autograd.record():
            loss = ((net(x) - t) ** 2).sum()
        loss.backward()
        tr.step(4)
    out["trainer"][name] = [net.weight.data().asnumpy().tolist(), net.bias.data().asnumpy().tolist()]
reg = {}
for n, cls in sorted(mx.optimizer.Optimizer.opt_registry.items()):
    sig = inspect.signature(cls.__init__)
    reg[n] = {"class": cls.__name__,
              "params": [[p.name, repr(p.default) if p.default is not inspect._empty else None]
                         for p in list(sig.parameters.values())[1:]
                         if p.kind == p.POSITIONAL_OR_KEYWORD]}
out["registry"] = reg
print(json.dumps(out))
