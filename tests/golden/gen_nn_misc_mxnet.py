"""Records tests/golden/nn_misc_mxnet.json with real MXNet 1.9.1:

    /work/mxenv/bin/python tests/golden/gen_nn_misc_mxnet.py > tests/golden/nn_misc_mxnet.json

The ops of symbol/ops/nn_misc.py (LRN, moments, index and histogram helpers, AMP casts,
finiteness checks, the contrib resize / pooling / attention helpers, the spatial-transformer
family): for each case the
inputs (drawn here from a fixed seed), the forward outputs and, where the op is
differentiable, the input gradients for a recorded head gradient.  An op MXNet refuses is
recorded with "error" and its message.  Used by tests/test_nn_misc.py."""
import json

import mxnet as mx
import numpy as np

rng = np.random.default_rng(20261202)


def U(*shape, lo=-1.0, hi=1.0, dtype="float32"):
    return rng.uniform(lo, hi, shape).astype(dtype)


def resolve(path):
    obj = mx.nd
    for p in path.split("."):
        obj = getattr(obj, p)
    return obj


CASES = [
    # name, op path, inputs, attrs, differentiable
    ("lrn", "LRN", [U(2, 5, 3, 3)], {"nsize": 3}, True),
    ("lrn_params", "LRN", [U(1, 4, 2, 2, lo=0.0, hi=3.0)], {"nsize": 5, "alpha": 0.01, "beta": 0.5, "knorm": 1.0}, True),
    ("moments", "moments", [U(3, 4, 2)], {"axes": (0, 2)}, True),
    ("moments_keep", "moments", [U(3, 4)], {"axes": (1,), "keepdims": True}, True),
    ("ravel", "ravel_multi_index", [np.array([[1, 2, 0], [3, 0, 1]], dtype="float32")], {"shape": (3, 4)}, False),
    ("unravel", "unravel_index", [np.array([5, 0, 11], dtype="float32")], {"shape": (3, 4)}, False),
    ("histogram", "histogram", [U(20, lo=0.0, hi=5.0)], {"bins": 5, "range": (0.0, 5.0)}, False),
    ("all_finite", "all_finite", [np.array([1.0, np.inf, 2.0], dtype="float32")], {}, False),
    ("all_finite_ok", "all_finite", [U(4)], {}, False),
    ("multi_all_finite", "multi_all_finite", [U(3), np.array([np.nan], dtype="float32")], {"num_arrays": 2}, False),
    ("amp_cast", "amp_cast", [U(2, 3)], {"dtype": "float16"}, True),
        ("bilinear_resize", "contrib.BilinearResize2D", [U(1, 2, 3, 4)], {"height": 5, "width": 7}, True),
    ("bilinear_resize_scale", "contrib.BilinearResize2D", [U(2, 1, 4, 4)], {"scale_height": 0.5, "scale_width": 0.5, "mode": "size"}, True),
    ("adaptive_pool", "contrib.AdaptiveAvgPooling2D", [U(1, 2, 5, 7)], {"output_size": (2, 3)}, True),
    ("adaptive_pool_1", "contrib.AdaptiveAvgPooling2D", [U(2, 3, 4, 4)], {"output_size": 1}, True),
    ("arange_like", "contrib.arange_like", [U(2, 3)], {}, False),
    ("arange_like_axis", "contrib.arange_like", [U(2, 3)], {"axis": 1, "start": 2.0, "step": 0.5}, False),
    ("div_sqrt_dim", "contrib.div_sqrt_dim", [U(2, 3, 4)], {}, True),
    ("grid_affine", "GridGenerator", [U(2, 6)], {"transform_type": "affine", "target_shape": (3, 4)}, True),
    ("grid_warp", "GridGenerator", [U(1, 2, 3, 4)], {"transform_type": "warp"}, True),
    ("bilinear_sampler", "BilinearSampler", [U(1, 2, 4, 5), U(1, 2, 3, 3, lo=-1.1, hi=1.1)], {}, True),
    ("spatial_transformer", "SpatialTransformer", [U(2, 1, 4, 4), U(2, 6, lo=-0.5, hi=0.5) + np.array([1, 0, 0, 0, 1, 0], "float32")], {"target_shape": (3, 3), "transform_type": "affine", "sampler_type": "bilinear"}, True),
    ("selfatt_qk", "contrib.interleaved_matmul_selfatt_qk", [U(3, 2, 3 * 2 * 4)], {"heads": 2}, True),
    ("selfatt_valatt", "contrib.interleaved_matmul_selfatt_valatt", [U(3, 2, 3 * 2 * 4), U(4, 3, 3)], {"heads": 2}, True),
    ("encdec_qk", "contrib.interleaved_matmul_encdec_qk", [U(3, 2, 2 * 4), U(5, 2, 2 * 2 * 4)], {"heads": 2}, True),
    ("encdec_valatt", "contrib.interleaved_matmul_encdec_valatt", [U(5, 2, 2 * 2 * 4), U(4, 3, 5)], {"heads": 2}, True),
]

def tolist(a):
    a = np.asarray(a, dtype=np.float64)
    return [[None if np.isnan(v) else (str(v) if np.isinf(v) else float(v)) for v in a.reshape(-1)], list(a.shape)]


def main():
    out = {"cases": {}}
    for name, path, ins, attrs, diff in CASES:
        rec = {"op": path, "attrs": {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()},
               "inputs": [tolist(a) + [np.dtype(a.dtype).name] for a in ins]}
        try:
            xs = [mx.nd.array(a, dtype=a.dtype) for a in ins]
            fn = resolve(path)
            if diff:
                for x in xs:
                    x.attach_grad()
                with mx.autograd.record():
                    ys = fn(*xs, **attrs)
                ys = ys if isinstance(ys, (list, tuple)) else [ys]
                heads = [rng.uniform(-1, 1, y.shape).astype(y.dtype) for y in ys]
                mx.autograd.backward(ys, [mx.nd.array(h, dtype=h.dtype) for h in heads])
                rec["heads"] = [tolist(h) for h in heads]
                rec["grads"] = [tolist(x.grad.asnumpy()) for x in xs]
            else:
                ys = fn(*xs, **attrs)
                ys = ys if isinstance(ys, (list, tuple)) else [ys]
            rec["outputs"] = [tolist(y.asnumpy()) + [np.dtype(y.dtype).name] for y in ys]
        except Exception as e:  # noqa: BLE001 -- recorded
            rec["error"] = str(e).splitlines()[0][:300]
        out["cases"][name] = rec
    print(json.dumps(out, indent=0, sort_keys=True))


main()
