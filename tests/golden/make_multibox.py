"""Writes tests/golden/multibox.json with real MXNet 1.9.1:
/work/mxenv/bin/python tests/golden/make_multibox.py tests/golden/multibox.json
(the same program runs against agjit in tests/test_contrib_detection.py): MultiBoxTarget and
MultiBoxDetection on SSD-style anchors, labels and predictions, with several options."""
import json
import sys

import numpy as np


def run(mx):
    rng = np.random.RandomState(0)
    anchors = mx.nd.contrib.MultiBoxPrior(mx.nd.zeros((1, 3, 3, 3)), sizes=[0.4, 0.2], ratios=[1, 2])
    n = anchors.shape[1]
    label = mx.nd.array([[[0, 0.1, 0.1, 0.45, 0.5], [2, 0.5, 0.4, 0.9, 0.95], [-1, -1, -1, -1, -1]],
                         [[1, 0.3, 0.2, 0.6, 0.7], [-1, -1, -1, -1, -1], [-1, -1, -1, -1, -1]]])
    cls_pred = mx.nd.array(rng.uniform(-1, 1, (2, 4, n)))
    out = {"target": [], "detection": []}
    for kw in [{}, {"overlap_threshold": 0.3},
               {"negative_mining_ratio": 2, "negative_mining_thresh": 0.4},
               {"ignore_label": -2, "variances": (0.2, 0.2, 0.1, 0.1)}]:
        res = mx.nd.contrib.MultiBoxTarget(anchors, label, cls_pred, **kw)
        out["target"].append([r.asnumpy().tolist() for r in res])
    cls_prob = mx.nd.softmax(mx.nd.array(rng.uniform(-2, 2, (2, 4, n))), axis=1)
    loc = mx.nd.array(rng.uniform(-0.5, 0.5, (2, n * 4)))
    for kw in [{}, {"threshold": 0.3, "nms_threshold": 0.3}, {"force_suppress": True, "nms_topk": 5},
               {"clip": False, "nms_threshold": 0},
               {"variances": (0.2, 0.2, 0.1, 0.1), "threshold": 0.4}]:
        out["detection"].append(mx.nd.contrib.MultiBoxDetection(cls_prob, loc, anchors, **kw)
                                .asnumpy().tolist())
    s = mx.sym.contrib.MultiBoxTarget(mx.sym.var("a"), mx.sym.var("l"), mx.sym.var("c"))
    out["target_sym"] = [s.list_outputs(), s.infer_shape(a=(1, n, 4), l=(2, 3, 5), c=(2, 4, n))]
    s = mx.sym.contrib.MultiBoxDetection(mx.sym.var("c"), mx.sym.var("l"), mx.sym.var("a"))
    out["detection_sym"] = [s.list_outputs(), s.infer_shape(a=(1, n, 4), l=(2, n * 4), c=(2, 4, n))]
    x = cls_prob.copy()
    x.attach_grad()
    with mx.autograd.record():
        y = mx.nd.contrib.MultiBoxDetection(x, loc, anchors)
    y.backward()
    out["detection_grad"] = float(np.abs(x.grad.asnumpy()).sum())
    return json.loads(json.dumps(out))


if __name__ == "__main__":
    import mxnet
    with open(sys.argv[1], "w") as f:
        json.dump(run(mxnet), f)
