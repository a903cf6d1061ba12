"""Writes tests/golden/fluent_extra.json with real MXNet 1.9.1:
/work/mxenv/bin/python tests/golden/make_fluent_extra.py tests/golden/fluent_extra.json
(the same program runs against agjit in tests/test_fluent_api.py): slice_like, shape_array,
size_array, depth_to_space, space_to_depth, argmax_channel and split_v2 -- values, fluent
forms, symbolic shapes/types/names and gradients."""
import json
import sys

import numpy as np


def run(mx):
    out = {}
    x = mx.nd.array(np.arange(2 * 8 * 2 * 3).reshape(2, 8, 2, 3))
    y = mx.nd.array(np.arange(1 * 2 * 4 * 6).reshape(1, 2, 4, 6))
    a = mx.nd.array(np.arange(24).reshape(2, 3, 4))
    out["d2s"] = mx.nd.depth_to_space(x, block_size=2).asnumpy().tolist()
    out["s2d"] = mx.nd.space_to_depth(y, block_size=2).asnumpy().tolist()
    out["slice_like"] = mx.nd.slice_like(a, mx.nd.zeros((1, 2, 3))).asnumpy().tolist()
    out["slice_like_axes"] = mx.nd.slice_like(a, mx.nd.zeros((1, 2, 3)), axes=(0, -1)).asnumpy().tolist()
    out["shape_array"] = [mx.nd.shape_array(a).asnumpy().tolist(), str(mx.nd.shape_array(a).dtype)]
    out["size_array"] = [mx.nd.size_array(a).asnumpy().tolist(), str(mx.nd.size_array(a).dtype)]
    out["argmax_channel"] = [mx.nd.argmax_channel(mx.nd.array([[0, 1, 2], [5, 4, 3]])).asnumpy().tolist(),
                             mx.nd.argmax_channel(a).asnumpy().tolist()]
    out["split_v2"] = [[p.asnumpy().tolist() for p in mx.nd.split_v2(a, 2, axis=2)],
                       [p.asnumpy().tolist() for p in mx.nd.split_v2(mx.nd.arange(6), (2, 5))],
                       [p.asnumpy().tolist() for p in a.split_v2(3, axis=1, squeeze_axis=True)]]
    out["fluent"] = [list(a.slice_like(mx.nd.zeros((1, 2, 3))).shape),
                     a.shape_array().asnumpy().tolist(), list(x.depth_to_space(2).shape)]
    s = mx.sym.slice_like(mx.sym.var("a"), mx.sym.var("b"))
    out["sym_slice_like"] = [s.infer_shape(a=(3, 4), b=(2, 2)),
                             [np.dtype(t).name for t in s.infer_type(a=np.float32, b=np.float16)[1]]]
    s = mx.sym.split_v2(mx.sym.var("a"), 3, axis=0)
    out["sym_split_v2"] = [s.list_outputs(), s.infer_shape(a=(6, 2)),
                           json.loads(s.tojson())["nodes"][1]["attrs"],
                           mx.sym.var("a").split_v2((1, 4)).infer_shape(a=(6, 2))[1]]
    s = mx.sym.shape_array(mx.sym.var("a"))
    out["sym_shape_array"] = [s.infer_shape(a=(3, 4)),
                              [np.dtype(t).name for t in s.infer_type(a=np.float32)[1]]]
    grads = []
    for f, kw in [(mx.nd.slice_like, {}), (mx.nd.depth_to_space, {"block_size": 2}),
                  (mx.nd.space_to_depth, {"block_size": 2})]:
        z = (x if f is not mx.nd.space_to_depth else y).copy()
        z.attach_grad()
        with mx.autograd.record():
            o = f(z, mx.nd.zeros((1, 2, 2, 2))) if not kw else f(z, **kw)
        o.backward(mx.nd.arange(o.size).reshape(o.shape))
        grads.append(z.grad.asnumpy().tolist())
    out["grads"] = grads
    return json.loads(json.dumps(out))


if __name__ == "__main__":
    import mxnet
    with open(sys.argv[1], "w") as f:
        json.dump(run(mxnet), f)
