"""Writes tests/golden/metrics_extra.json with real MXNet 1.9.1: python make_metrics_extra.py OUT."""
import json, sys
import numpy as np
import mxnet as mx
rs = np.random.RandomState(3)
batches = []
for n in (6, 5, 7):
    p = rs.rand(n, 2); l = rs.randint(0, 2, size=n)
    batches.append((l.tolist(), p.tolist()))
mc = []
for n in (6, 4):
    p = rs.rand(n, 4); l = rs.randint(0, 4, size=n)
    mc.append((l.tolist(), p.tolist()))
reg = [(rs.randn(5).tolist(), rs.randn(5).tolist()), (rs.randn(3).tolist(), rs.randn(3).tolist())]
seq = (rs.randint(0, 5, size=(2, 3)).tolist(), rs.dirichlet(np.ones(5), size=(2, 3)).tolist())
out = {"batches": batches, "mc": mc, "reg": reg, "seq": seq, "res": {}}
def run(name, m, data):
    rows = []
    for l, p in data:
        m.update([mx.nd.array(l)], [mx.nd.array(p)])
        rows.append([m.get()[1], m.get_global()[1], float(m.num_inst)])
    m.reset_local(); rows.append([m.get()[1], m.get_global()[1]])
    out["res"][name] = rows
for avg in ("macro", "micro"):
    run("f1_" + avg, mx.metric.F1(average=avg), batches)
    run("mcc_" + avg, mx.metric.MCC(average=avg), batches)
    run("pearson_" + avg, mx.metric.PearsonCorrelation(average=avg), reg)
run("pcc", mx.metric.PCC(), mc)
seq = (np.array(seq[0]).ravel().tolist(), np.array(seq[1]).reshape(6, 5).tolist()); out["seq"] = seq
run("perp_none", mx.metric.Perplexity(ignore_label=None), [seq])
run("perp_ign", mx.metric.Perplexity(ignore_label=int(seq[0][0])), [seq])
json.dump(out, open(sys.argv[1], "w"))
