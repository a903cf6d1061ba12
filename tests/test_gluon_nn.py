"""gluon.nn layers against MXNet 1.9.1 and NumPy.

* ``layer_specs``: 35 layer configurations run by :func:`run_layers` -- fixed parameters, forward,
  input / parameter gradients, BatchNorm running statistics after backward, parameter names /
  shapes / grad_req, ``repr`` before and after deferred initialisation, hybridized == eager,
  and the exported graph's nodes (op, name, attrs).  The same function recorded the golden
  ``tests/golden/gluon_nn_layers.json`` with real MXNet 1.9.1:
  ``/work/mxenv/bin/python tests/test_gluon_nn.py --record``.
* NumPy references for the new registry ops (Deconvolution, GroupNorm, InstanceNorm, Pad,
  UpSampling, L2Normalization, LeakyReLU modes) with formulas written here.
* Deferred initialisation, MXNet's errors, and an agjit export that real MXNet loads (when an
  MXNet interpreter exists).
"""
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "golden", "gluon_nn_layers.json")
GOLDEN_OPS = os.path.join(HERE, "golden", "gluon_nn_ops.json")


def layer_specs(nn):
    """name -> (constructor, input shape or None for Embedding indices)."""
    return {
        'dense': (lambda: nn.Dense(4, activation='relu'), (2, 3, 2)),
        'dense_nf': (lambda: nn.Dense(4, flatten=False, use_bias=False), (2, 3, 2)),
        'conv1d': (lambda: nn.Conv1D(3, 3, strides=2, padding=1), (2, 2, 7)),
        'conv2d': (lambda: nn.Conv2D(4, (3, 2), padding=1, groups=2, activation='tanh'), (2, 2, 5, 5)),
        'conv3d': (lambda: nn.Conv3D(2, 2, use_bias=False), (1, 2, 3, 3, 3)),
        'convt1d': (lambda: nn.Conv1DTranspose(2, 3, strides=2, output_padding=1), (2, 3, 4)),
        'convt2d': (lambda: nn.Conv2DTranspose(4, 3, strides=2, padding=1, groups=2, in_channels=2),
                    (1, 2, 3, 3)),
        'convt2d_dil': (lambda: nn.Conv2DTranspose(2, (2, 3), strides=(2, 1), dilation=(1, 2),
                                                   padding=(0, 1)), (2, 3, 3, 2)),
        'convt3d': (lambda: nn.Conv3DTranspose(2, 2, use_bias=False), (1, 2, 2, 2, 2)),
        'maxpool1d': (lambda: nn.MaxPool1D(3, 2, 1), (1, 2, 7)),
        'avgpool2d': (lambda: nn.AvgPool2D(3, 2, 1, ceil_mode=True, count_include_pad=False),
                      (1, 2, 6, 6)),
        'maxpool3d': (lambda: nn.MaxPool3D(), (1, 1, 4, 4, 4)),
        'avgpool3d': (lambda: nn.AvgPool3D(2, 1), (1, 1, 3, 3, 3)),
        'gmax1d': (lambda: nn.GlobalMaxPool1D(), (1, 2, 5)),
        'gavg3d': (lambda: nn.GlobalAvgPool3D(), (1, 2, 2, 3, 2)),
        'bn': (lambda: nn.BatchNorm(momentum=0.8, center=False), (4, 3, 2)),
        'bn_axis': (lambda: nn.BatchNorm(axis=-1, in_channels=2), (3, 4, 2)),
        'ln': (lambda: nn.LayerNorm(), (2, 3, 4)),
        'in': (lambda: nn.InstanceNorm(scale=True), (2, 3, 4)),
        'in_axis2': (lambda: nn.InstanceNorm(axis=2), (2, 3, 4)),
        'gn': (lambda: nn.GroupNorm(3), (2, 6, 2)),
        'drop0': (lambda: nn.Dropout(0.0), (2, 3)),
        'emb': (lambda: nn.Embedding(5, 2), None),
        'flat': (lambda: nn.Flatten(), (2, 3, 4)),
        'act': (lambda: nn.Activation('softrelu'), (2, 3)),
        'leaky': (lambda: nn.LeakyReLU(0.2), (2, 3)),
        'prelu': (lambda: nn.PReLU(in_channels=3), (2, 3, 4)),
        'elu': (lambda: nn.ELU(0.7), (2, 3)),
        'selu': (lambda: nn.SELU(), (2, 3)),
        'gelu': (lambda: nn.GELU(), (2, 3)),
        'swish': (lambda: nn.Swish(2.0), (2, 3)),
        'rpad': (lambda: nn.ReflectionPad2D(1), (1, 2, 3, 3)),
        'maxpool2d_nhwc': (lambda: nn.MaxPool2D(3, 2, 1, layout='NHWC'), (2, 5, 4, 3)),
        'avgpool1d_nwc': (lambda: nn.AvgPool1D(2, ceil_mode=True, layout='NWC'), (1, 5, 3)),
        'gavg2d_nhwc': (lambda: nn.GlobalAvgPool2D(layout='NHWC'), (2, 3, 2, 4)),
    }


def _r(a):
    return np.asarray(a, dtype=np.float64).round(6).tolist()


def run_layers(mx, names=None, hybridize=True):
    """Run every spec (or ``names``) with fixed numbers; returns plain-JSON results."""
    nn = mx.gluon.nn
    out = {}
    tmp = tempfile.mkdtemp()
    specs = layer_specs(nn)
    for li, (k, (mk, shp)) in enumerate(specs.items()):
        if names is not None and k not in names:
            continue
        r = {}
        rs = np.random.RandomState(100 + li)
        b = mk()
        r['repr0'] = repr(b)
        r['params0'] = [[n, list(p.shape)] for n, p in b.collect_params().items()]
        b.initialize(mx.init.Uniform(0.5))
        if shp is None:
            x = mx.nd.array(rs.randint(0, 5, size=(2, 3)).astype('float32'))
        else:
            x = mx.nd.array(rs.randn(*shp))
        b(x)                                          # deferred init
        prs = np.random.RandomState(1)
        for n, p in sorted(b.collect_params().items()):
            v = prs.uniform(0.5, 1.5, size=p.shape) if n.endswith(('var', 'gamma', 'alpha')) \
                else prs.randn(*p.shape) * 0.5
            p.set_data(mx.nd.array(v))
        if shp is not None:
            x.attach_grad()
        with mx.autograd.record():
            y = b(x)
            hg = mx.nd.array(np.random.RandomState(2).randn(*y.shape))
            (y * hg).sum().backward()
        r['train_y'] = _r(y.asnumpy())
        r['gx'] = _r(x.grad.asnumpy()) if shp is not None else None
        r['gp'] = {n: _r(p.grad().asnumpy()) for n, p in b.collect_params().items()
                   if p.grad_req != 'null'}
        r['aux'] = {n: _r(p.data().asnumpy()) for n, p in b.collect_params().items()
                    if p.grad_req == 'null'}
        y = b(x)
        r['y'] = _r(y.asnumpy())
        r['repr1'] = repr(b)
        r['params'] = [[n, list(p.shape), p.grad_req] for n, p in b.collect_params().items()]
        g = json.loads(b(mx.sym.var('data')).tojson())
        r['sym_nodes'] = [[n['op'], n['name'], sorted(n.get('attrs', {}).items())]
                          for n in g['nodes']]
        if hybridize:
            b.hybridize()
            r['hyb_y'] = _r(b(x).asnumpy())
            b.export(os.path.join(tmp, k))
            with open(os.path.join(tmp, k + '-symbol.json')) as f:
                g = json.load(f)
            r['nodes'] = [[n['op'], n['name'], sorted(n.get('attrs', {}).items())]
                          for n in g['nodes']]
        out[k] = r
    return out


def _grads(mx, f, arrays, seed):
    """Output(s) and input gradients of ``f`` under a fixed random head gradient."""
    xs = [mx.nd.array(a) for a in arrays]
    for a in xs:
        a.attach_grad()
    with mx.autograd.record():
        y = f(*xs)
    ys = y if isinstance(y, (list, tuple)) else [y]
    hg = mx.nd.array(np.random.RandomState(seed).randn(*ys[0].shape))
    ys[0].backward(hg)
    return [_r(v.asnumpy()) for v in ys] + [_r(a.grad.asnumpy()) for a in xs]


# recorded with MXNET_MKLDNN_ENABLED=0: the MKL-DNN build of MXNet 1.9.1 refuses dilated or
# target_shape deconvolutions
# (its native one has no 3-D deconvolution, so the rest is recorded with MKL-DNN)
NATIVE_OPS = ("deconv1d_dilate", "deconv2d_target")


def _op_cases(mx):
    nd = mx.nd if mx is not None else None
    return {
        # (MXNet's MKL-DNN build refuses dilation together with groups, so they are apart)
        "deconv1d_group_adj": lambda r: _grads(mx, lambda x, w, b: nd.Deconvolution(
            x, w, b, kernel=(3,), stride=(2,), adj=(1,), pad=(1,), num_filter=4,
            num_group=2, no_bias=False), [r(2, 4, 5), r(4, 2, 3), r(4)], 1),
        "deconv1d_dilate": lambda r: _grads(mx, lambda x, w: nd.Deconvolution(
            # (native MXNet mis-scatters when dilate > 1 and stride > 1, so stride 1 here)
            x, w, kernel=(3,), dilate=(2,), pad=(1,), num_filter=3),
            [r(2, 2, 4), r(2, 3, 3)], 18),
        "deconv2d_target": lambda r: _grads(mx, lambda x, w: nd.Deconvolution(
            x, w, kernel=(3, 2), stride=(2, 3), target_shape=(6, 8), num_filter=2),
            [r(1, 3, 3, 3), r(3, 2, 3, 2)], 2),
        "deconv3d": lambda r: _grads(mx, lambda x, w: nd.Deconvolution(
            x, w, kernel=(2, 2, 2), stride=(1, 2, 1), pad=(0, 1, 0), num_filter=2),
            [r(1, 2, 2, 3, 2), r(2, 2, 2, 2, 2)], 3),
        "groupnorm_mean_var": lambda r: _grads(mx, lambda x, g, b: nd.GroupNorm(
            x, g, b, num_groups=2, eps=0.01, output_mean_var=True), [r(3, 4, 2, 2), r(2), r(2)], 4),
        "instancenorm_5d": lambda r: _grads(mx, lambda x, g, b: nd.InstanceNorm(x, g, b, eps=0.2),
                                  [r(2, 2, 2, 3, 2), r(2), r(2)], 5),
        "l2norm_spatial_5d": lambda r: _grads(mx, lambda x: nd.L2Normalization(x, mode="spatial", eps=0.5),
                                    [r(2, 2, 2, 2, 3)], 6),
        "pad_5d_edge": lambda r: _grads(mx, lambda x: nd.pad(
            x, mode="edge", pad_width=(0, 0, 0, 0, 1, 0, 2, 1, 0, 3)),
                              [r(1, 2, 2, 3, 2)], 7),
        "pad_5d_reflect": lambda r: _grads(mx, lambda x: nd.pad(x, mode="reflect",
                                                      pad_width=(0, 0, 0, 0, 1, 1, 0, 2, 1, 0)),
                                 [r(1, 1, 2, 3, 2)], 8),
        "up_nearest_concat": lambda r: _grads(mx, lambda a, b: nd.UpSampling(
            a, b, scale=2, sample_type="nearest"),
                                    [r(1, 2, 2, 2), r(1, 1, 1, 1)], 9),
        "up_nearest_sum": lambda r: _grads(mx, lambda a, b: nd.UpSampling(
            a, b, scale=2, sample_type="nearest",
                                                                multi_input_mode="sum"),
                                 [r(1, 2, 2, 3), r(1, 2, 4, 6)], 10),
        "up_bilinear_grads": lambda r: _grads(mx, lambda x, w: nd.UpSampling(
            x, w, scale=3, sample_type="bilinear",
                                                                   num_filter=2),
                                    [r(1, 2, 2, 2), r(2, 1, 5, 5)], 11),
        "prelu_channel": lambda r: _grads(mx, lambda x, g: nd.LeakyReLU(x, g, act_type="prelu"),
                                [r(2, 3, 4), np.abs(r(3)) * 0.2 + 0.1], 12),
        "prelu_scalar": lambda r: _grads(mx, lambda x, g: nd.LeakyReLU(x, g, act_type="prelu"),
                               [r(2, 3), np.abs(r(1)) * 0.2 + 0.1], 13),
        "gelu": lambda r: _grads(mx, lambda x: nd.LeakyReLU(x, act_type="gelu"), [r(3, 4)], 14),
        "selu": lambda r: _grads(mx, lambda x: nd.LeakyReLU(x, act_type="selu"), [r(3, 4)], 15),
        "elu": lambda r: _grads(mx, lambda x: nd.LeakyReLU(x, act_type="elu", slope=0.4), [r(3, 4)], 16),
        "erf": lambda r: _grads(mx, lambda x: nd.erf(x), [r(3, 4)], 17),
    }


def run_ops(mx, names=None):
    """The new registry ops on cases the oracle's api_* cases do not cover."""
    out = {}
    for k, f in sorted(_op_cases(mx).items()):
        if names is None or k in names:
            rs = np.random.RandomState(1000 + sum(map(ord, k)))      # per case: order-free
            out[k] = f(lambda *shape: rs.randn(*shape))
    return out


# ---------------------------------------------------------------------------------------
# recording (run with MXNet 1.9.1) and the tests (run with agjit)
# ---------------------------------------------------------------------------------------
if __name__ == "__main__" and "--record-native" in sys.argv:
    import mxnet
    print(json.dumps(run_ops(mxnet, NATIVE_OPS)))
    sys.exit(0)
if __name__ == "__main__" and "--record" in sys.argv:
    import mxnet
    res = run_layers(mxnet)
    with open(GOLDEN, "w") as f:
        json.dump({"mxnet_version": mxnet.__version__, "results": res}, f, indent=0,
                  sort_keys=True)
    native = subprocess.run([sys.executable, os.path.abspath(__file__), "--record-native"],
                            check=True, capture_output=True, text=True,
                            env=dict(os.environ, MXNET_MKLDNN_ENABLED="0"))
    ops = run_ops(mxnet, [k for k in _op_cases(None) if k not in NATIVE_OPS])
    ops.update(json.loads(native.stdout.strip().splitlines()[-1]))
    with open(GOLDEN_OPS, "w") as f:
        json.dump({"mxnet_version": mxnet.__version__, "results": ops}, f, indent=0,
                  sort_keys=True)
    sys.exit(0)

import pytest  # noqa: E402

import agjit as mx  # noqa: E402
from agjit.base import MXNetError  # noqa: E402

nn = mx.gluon.nn


def _golden():
    with open(GOLDEN) as f:
        return json.load(f)["results"]


def _close(a, b, atol=2e-5, rtol=1e-4):
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        for k in a:
            _close(a[k], b[k], atol, rtol)
        return
    if a is None:
        assert b is None
        return
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64),
                               atol=atol, rtol=rtol)


@pytest.fixture(scope="module")
def eager_results():
    # the goldens were recorded in a fresh MXNet process: start the process-wide block
    # counters afresh, whatever blocks earlier tests of this run created
    with mx.name.NameManager():
        return run_layers(mx, hybridize=False)


@pytest.mark.parametrize("name", sorted(layer_specs(nn)))
def test_layer_matches_mxnet(name, eager_results):
    """Forward (train and predict), gradients, running stats, params, repr and the graph of
    a symbolic call (op names, node names, attrs): MXNet's."""
    gold = _golden()[name]
    got = eager_results[name]
    for key in ("train_y", "y", "gx", "gp", "aux"):
        _close(got[key], gold[key])
    for key in ("repr0", "repr1", "params0", "params"):
        assert got[key] == gold[key], key
    assert _strip(got["sym_nodes"]) == _strip(gold["sym_nodes"])


def _strip(nodes):
    """Graph nodes with the process-wide block counters taken out of the names."""
    return [[op, re.sub(r"\d+_", "#_", nm), [list(kv) for kv in attrs]] for op, nm, attrs in nodes]


HYBRID = ["dense", "conv2d", "convt1d", "avgpool2d", "bn", "in_axis2", "gn", "emb", "prelu",
          "swish", "rpad", "drop0", "maxpool2d_nhwc"]


@pytest.mark.parametrize("name", HYBRID)
def test_hybridized_export_matches_mxnet(name):
    """Hybridized output == MXNet's, and the exported graph has MXNet's nodes and attrs."""
    gold = _golden()[name]
    got = run_layers(mx, names=[name])[name]
    _close(got["hyb_y"], gold["hyb_y"])
    _close(got["hyb_y"], got["y"], atol=1e-6, rtol=1e-6)
    assert _strip(got["nodes"]) == _strip(gold["nodes"])


def test_new_ops_match_mxnet():
    """Deconvolution 1-3-D (groups, dilation, adj, target_shape), GroupNorm with mean/std,
    InstanceNorm / L2Normalization / Pad on 5-D data, UpSampling (multi-input, bilinear weight
    gradient), prelu gamma gradients, gelu/selu/elu, erf: outputs and input gradients equal
    MXNet 1.9.1's."""
    with open(GOLDEN_OPS) as f:
        gold = json.load(f)["results"]
    got = run_ops(mx)
    assert sorted(got) == sorted(gold)
    for k in gold:
        assert len(got[k]) == len(gold[k]), k
        for i, (a, b) in enumerate(zip(got[k], gold[k])):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=2e-5,
                                       err_msg="%s[%d]" % (k, i))


# ---------------------------------------------------------------------------------------
# NumPy references for the new ops (independent formulas)
# ---------------------------------------------------------------------------------------
def _deconv_ref(x, w, stride, pad, adj, dilate, groups):
    """Scatter every input pixel times the kernel into the output (the definition)."""
    n, cin = x.shape[:2]
    cpg = w.shape[1]
    cout = cpg * groups
    nsp = x.ndim - 2
    k = w.shape[2:]
    full = [stride[i] * (x.shape[2 + i] - 1) + dilate[i] * (k[i] - 1) + 1 + adj[i] for i in range(nsp)]
    y = np.zeros((n, cout) + tuple(full))
    cin_g = cin // groups
    for idx in np.ndindex(*x.shape[2:]):
        for kk in np.ndindex(*k):
            pos = tuple(idx[i] * stride[i] + kk[i] * dilate[i] for i in range(nsp))
            for gi in range(groups):
                xs = x[(slice(None), slice(gi * cin_g, (gi + 1) * cin_g)) + idx]       # (n, cin_g)
                ws = w[(slice(gi * cin_g, (gi + 1) * cin_g), slice(None)) + kk]        # (cin_g, cpg)
                y[(slice(None), slice(gi * cpg, (gi + 1) * cpg)) + pos] += xs @ ws
    crop = tuple(slice(pad[i], full[i] - pad[i]) for i in range(nsp))
    return y[(slice(None), slice(None)) + crop]


@pytest.mark.parametrize("case", [
    dict(x=(2, 2, 3), w=(2, 3, 3), stride=(2,), pad=(1,), adj=(1,), dilate=(1,), groups=1),
    dict(x=(1, 4, 3, 2), w=(4, 1, 2, 3), stride=(1, 2), pad=(0, 1), adj=(0, 1), dilate=(2, 1), groups=2),
    dict(x=(1, 2, 2, 2, 2), w=(2, 2, 2, 1, 2), stride=(1, 2, 1), pad=(0, 0, 1), adj=(0, 0, 0),
         dilate=(1, 1, 1), groups=1),
])
def test_deconvolution_reference(case):
    rs = np.random.RandomState(3)
    x, w = rs.randn(*case["x"]), rs.randn(*case["w"])
    b = rs.randn(case["w"][1] * case["groups"])
    k = case["w"][2:]
    y = mx.nd.Deconvolution(mx.nd.array(x, dtype="float64"), mx.nd.array(w, dtype="float64"),
                            mx.nd.array(b, dtype="float64"), kernel=k, stride=case["stride"],
                            pad=case["pad"], adj=case["adj"], dilate=case["dilate"],
                            num_group=case["groups"], num_filter=len(b), no_bias=False)
    ref = _deconv_ref(x, w, case["stride"], case["pad"], case["adj"], case["dilate"], case["groups"])
    ref = ref + b.reshape((1, -1) + (1,) * (x.ndim - 2))
    np.testing.assert_allclose(y.asnumpy(), ref, rtol=1e-12, atol=1e-12)


def test_deconvolution_target_shape_and_errors():
    x = mx.nd.ones((1, 2, 4, 4))
    w = mx.nd.ones((2, 3, 3, 3))
    y = mx.nd.Deconvolution(x, w, kernel=(3, 3), num_filter=3, stride=(2, 2), target_shape=(8, 8))
    assert y.shape == (1, 3, 8, 8)
    # target_shape 8 from a full size 9: pad 1, adj 1 (MXNet's rule) -- same as explicit
    y2 = mx.nd.Deconvolution(x, w, kernel=(3, 3), num_filter=3, stride=(2, 2), pad=(1, 1), adj=(1, 1))
    np.testing.assert_array_equal(y.asnumpy(), y2.asnumpy())
    with pytest.raises(MXNetError, match="no_bias"):
        mx.nd.Deconvolution(x, w, mx.nd.ones(3), kernel=(3, 3), num_filter=3)
    with pytest.raises(MXNetError, match="adj"):
        mx.nd.Deconvolution(x, w, kernel=(3, 3), num_filter=3, stride=(2, 2), adj=(2, 2))
    with pytest.raises(MXNetError, match=r"weight shape \(2,3,3,3\).*expected \(2,1,3,3\)"):
        mx.nd.Deconvolution(x, w, kernel=(3, 3), num_filter=1)


def test_group_instance_l2_norm_reference():
    rs = np.random.RandomState(4)
    x = rs.randn(2, 6, 3, 2)
    g3, b3 = rs.rand(3) + 0.5, rs.randn(3)
    y = mx.nd.GroupNorm(mx.nd.array(x, dtype="float64"), mx.nd.array(g3, dtype="float64"),
                        mx.nd.array(b3, dtype="float64"), num_groups=3, eps=1e-5).asnumpy()
    xg = x.reshape(2, 3, -1)
    ref = (xg - xg.mean(-1, keepdims=True)) / np.sqrt(xg.var(-1, keepdims=True) + 1e-5)
    ref = ref * g3[None, :, None] + b3[None, :, None]      # one scale per group (MXNet 1.9.1)
    np.testing.assert_allclose(y, ref.reshape(x.shape), rtol=1e-10, atol=1e-12)

    g6, b6 = rs.rand(6) + 0.5, rs.randn(6)
    y = mx.nd.InstanceNorm(mx.nd.array(x, dtype="float64"), mx.nd.array(g6, dtype="float64"),
                           mx.nd.array(b6, dtype="float64"), eps=0.01).asnumpy()
    m = x.mean(axis=(2, 3), keepdims=True)
    v = x.var(axis=(2, 3), keepdims=True)
    ref = (x - m) / np.sqrt(v + 0.01) * g6[None, :, None, None] + b6[None, :, None, None]
    np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-12)

    for mode, axes in (("instance", (1, 2, 3)), ("channel", (1,)), ("spatial", (2, 3))):
        y = mx.nd.L2Normalization(mx.nd.array(x, dtype="float64"), mode=mode, eps=0.1).asnumpy()
        ref = x / np.sqrt((x ** 2).sum(axis=axes, keepdims=True) + 0.1)
        np.testing.assert_allclose(y, ref, rtol=1e-12)
    with pytest.raises(MXNetError, match="num_groups"):
        mx.nd.GroupNorm(mx.nd.array(x), mx.nd.ones(4), mx.nd.zeros(4), num_groups=4)
    with pytest.raises(MXNetError, match="rank >= 3"):
        mx.nd.InstanceNorm(mx.nd.ones((2, 3)), mx.nd.ones(3), mx.nd.zeros(3))
    with pytest.raises(MXNetError, match="at least 3 dimensions"):
        mx.nd.L2Normalization(mx.nd.ones((2, 3)), mode="channel")


def test_pad_and_upsampling_reference():
    rs = np.random.RandomState(5)
    x = rs.randn(1, 2, 3, 4)
    pw = (0, 0, 0, 0, 2, 1, 1, 3)
    for mode in ("constant", "edge", "reflect"):
        xx = mx.nd.array(x, dtype="float64")
        xx.attach_grad()
        with mx.autograd.record():
            y = mx.nd.pad(xx, mode=mode, pad_width=pw, constant_value=0.25)
        g = rs.randn(*y.shape)
        y.backward(mx.nd.array(g, dtype="float64"))
        kw = {"constant_values": 0.25} if mode == "constant" else {}
        np.testing.assert_array_equal(y.asnumpy(), np.pad(x, [(0, 0), (0, 0), (2, 1), (1, 3)],
                                                          mode=mode, **kw))
        # gradient: each output position adds its gradient to the element np.pad copied there
        idx = np.arange(x.size, dtype=np.float64).reshape(x.shape)
        src = np.pad(idx, [(0, 0), (0, 0), (2, 1), (1, 3)], mode=mode,
                     **({"constant_values": -1} if mode == "constant" else {}))
        ref = np.zeros(x.size)
        np.add.at(ref, src[src >= 0].astype(int), g[src >= 0])
        np.testing.assert_allclose(xx.grad.asnumpy(), ref.reshape(x.shape), rtol=1e-12)
    with pytest.raises(MXNetError, match="batch and channel"):
        mx.nd.pad(mx.nd.array(x), mode="constant", pad_width=(1, 1, 0, 0, 1, 1, 1, 1))
    with pytest.raises(MXNetError, match="smaller than the input"):
        mx.nd.pad(mx.nd.array(x), mode="reflect", pad_width=(0, 0, 0, 0, 3, 0, 0, 0))

    a, b = rs.randn(1, 2, 2, 2), rs.randn(1, 1, 1, 1)
    y = mx.nd.UpSampling(mx.nd.array(a), mx.nd.array(b), scale=2, sample_type="nearest").asnumpy()
    ref = np.concatenate([np.kron(a, np.ones((1, 1, 2, 2))), np.kron(b, np.ones((1, 1, 4, 4)))], axis=1)
    np.testing.assert_allclose(y, ref, rtol=1e-6)
    xx = mx.nd.array(rs.randn(1, 2, 2, 3))
    xx.attach_grad()
    with mx.autograd.record():
        y = mx.nd.UpSampling(xx, scale=3, sample_type="nearest")
    g = rs.randn(*y.shape)
    y.backward(mx.nd.array(g))
    np.testing.assert_allclose(xx.grad.asnumpy(), g.reshape(1, 2, 2, 3, 3, 3).sum(axis=(3, 5)),
                               rtol=1e-5, atol=1e-6)


def test_leaky_relu_modes_reference():
    from scipy.special import erf
    x = np.linspace(-3, 3, 13).reshape(1, 13)
    lam, alp = 1.0507009873554805, 1.6732632423543772
    refs = {"selu": (lam * np.where(x > 0, x, alp * np.expm1(x)),
                     # MXNet 1.9.1's gradient for x <= 0 is lambda * (y + alpha) (gl_activations)
                     np.where(x > 0, lam, lam * (lam * alp * np.expm1(x) + alp))),
            "gelu": (0.5 * x * (1 + erf(x / np.sqrt(2))),
                     0.5 * (1 + erf(x / np.sqrt(2))) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)),
            "elu": (np.where(x > 0, x, 0.3 * np.expm1(x)), np.where(x > 0, 1, 0.3 * np.exp(x)))}
    for t, (fy, fg) in refs.items():
        xx = mx.nd.array(x, dtype="float64")
        xx.attach_grad()
        with mx.autograd.record():
            y = mx.nd.LeakyReLU(xx, act_type=t, slope=0.3)
        y.backward()
        np.testing.assert_allclose(y.asnumpy(), fy, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(xx.grad.asnumpy(), fg, rtol=1e-10, atol=1e-12)
    # prelu with a per-channel gamma; rrelu predicts with the mean slope
    x3 = np.random.RandomState(6).randn(2, 3, 2)
    gam = np.array([0.1, 0.2, 0.3])
    y = mx.nd.LeakyReLU(mx.nd.array(x3), mx.nd.array(gam), act_type="prelu").asnumpy()
    np.testing.assert_allclose(y, np.where(x3 > 0, x3, x3 * gam[None, :, None]), rtol=1e-6)
    y = mx.nd.LeakyReLU(mx.nd.array(x3), act_type="rrelu").asnumpy()
    np.testing.assert_allclose(y, np.where(x3 > 0, x3, x3 * (0.125 + 0.334) / 2), rtol=1e-6)


# ---------------------------------------------------------------------------------------
# layers: deferred init, errors, BatchNormReLU, symbol API
# ---------------------------------------------------------------------------------------
def test_deferred_init_shapes():
    c = nn.Conv2D(3, 3, groups=1)
    assert c.weight.shape == (3, 0, 3, 3)
    t = nn.Conv3DTranspose(4, (1, 2, 3), groups=2)
    assert t.weight.shape == (0, 2, 1, 2, 3) and t.bias.shape == (4,)
    for blk in (c, t):
        blk.initialize()
    c(mx.nd.ones((1, 5, 4, 4)))
    assert c.weight.shape == (3, 5, 3, 3)
    y = t(mx.nd.ones((1, 6, 2, 2, 2)))
    assert t.weight.shape == (6, 2, 1, 2, 3) and y.shape == (1, 4, 2, 3, 4)
    g = nn.GroupNorm(2)
    g.initialize()
    assert g(mx.nd.ones((2, 4, 3))).shape == (2, 4, 3) and g.gamma.shape == (2,)
    p = nn.PReLU(in_channels=3)
    p.initialize()
    assert p.alpha.data().asnumpy().tolist() == [0.25, 0.25, 0.25]
    e = nn.InstanceNorm()
    e.initialize()
    e(mx.nd.ones((2, 3, 4)))
    assert e.gamma.shape == (3,) and e.gamma.grad_req == "null"
    d = nn.Dense(2)
    d.initialize()
    with pytest.raises(MXNetError):
        d.weight.data()                       # DeferredInitializationError is an MXNetError
    d(mx.nd.ones((4, 2, 3)))
    assert d.weight.shape == (2, 6)
    with pytest.raises(MXNetError):
        d(mx.nd.ones((4, 5)))                 # incompatible with the initialised weight


def test_batchnorm_relu_and_symbol_call():
    x = mx.nd.array(np.random.RandomState(7).randn(4, 3, 2))
    a, b = nn.BatchNormReLU(in_channels=3), nn.BatchNorm(in_channels=3)
    for blk in (a, b):
        blk.initialize()
    np.testing.assert_allclose(a(x).asnumpy(), np.maximum(b(x).asnumpy(), 0))
    with mx.autograd.record():
        ya = a(x)
    # training (inside record): batch statistics, gamma 1 and beta 0 as initialised
    np.testing.assert_allclose(ya.asnumpy(), np.maximum(_bn_train(x.asnumpy()), 0),
                               rtol=1e-5, atol=1e-5)
    # a layer called on a Symbol builds the graph with the layer's names
    net = nn.HybridSequential(prefix="net_")
    with net.name_scope():
        net.add(nn.Conv2D(2, 3, in_channels=1), nn.MaxPool2D(), nn.Flatten(), nn.Dense(3, in_units=2))
    s = net(mx.sym.var("data"))
    assert s.list_arguments() == ["data", "net_conv0_weight", "net_conv0_bias", "net_dense0_weight",
                                  "net_dense0_bias"]
    assert s.infer_shape(data=(5, 1, 4, 4))[1] == [(5, 3)]


def _bn_train(x, eps=1e-5):
    m = x.mean(axis=(0, 2), keepdims=True)
    v = x.var(axis=(0, 2), keepdims=True)
    return (x - m) / np.sqrt(v + eps)


def test_layer_errors_are_mxnet_style():
    with pytest.raises(AssertionError):
        nn.LeakyReLU(-0.1)
    with pytest.raises(AssertionError):
        nn.Conv1D(2, 3, layout="NWC")
    with pytest.raises(AssertionError):
        nn.MaxPool2D(pool_size=(2, 2, 2))
    with pytest.raises(AssertionError):
        nn.ReflectionPad2D((1, 2))
    c = nn.Conv2D(2, 3, in_channels=3)
    c.initialize()
    with pytest.raises(MXNetError):
        c(mx.nd.ones((1, 4, 5, 5)))            # 4 channels for a weight made for 3


MXNET_PY = os.environ.get("AGJIT_MXNET_PYTHON", "/work/mxenv/bin/python")


@pytest.mark.skipif(not os.path.exists(MXNET_PY), reason="no MXNet 1.9.1 interpreter")
def test_export_runs_in_mxnet(tmp_path):
    """A hybridized model of the new layers exported by agjit gives the same output in MXNet."""
    net = nn.HybridSequential()
    with net.name_scope():
        net.add(nn.Conv2DTranspose(3, 3, strides=2, padding=1, output_padding=1, in_channels=2),
                nn.InstanceNorm(scale=True), nn.GroupNorm(3), nn.PReLU(), nn.GELU(),
                nn.ReflectionPad2D(1), nn.AvgPool2D(2, ceil_mode=True), nn.BatchNorm(),
                nn.Dropout(0.5), nn.GlobalMaxPool2D(), nn.Flatten(), nn.Dense(2, activation="tanh"))
    net.initialize(mx.init.Xavier())
    x = np.random.RandomState(8).randn(2, 2, 3, 3).astype("float32")
    net.hybridize()
    y = net(mx.nd.array(x)).asnumpy()
    prefix = str(tmp_path / "m")
    net.export(prefix)
    np.save(str(tmp_path / "x.npy"), x)
    code = ("import mxnet as mx, numpy as np, sys\n"
            "sb = mx.gluon.SymbolBlock.imports(sys.argv[1] + '-symbol.json', ['data'], "
            "sys.argv[1] + '-0000.params')\n"
            "np.save(sys.argv[2], sb(mx.nd.array(np.load(sys.argv[3]))).asnumpy())\n")
    subprocess.run([MXNET_PY, "-c", code, prefix, str(tmp_path / "y.npy"), str(tmp_path / "x.npy")],
                   check=True, capture_output=True, timeout=120)
    np.testing.assert_allclose(np.load(str(tmp_path / "y.npy")), y, rtol=1e-5, atol=1e-6)


def _small_net(seed):
    net = nn.HybridSequential()
    with net.name_scope():
        # kept small: every distinct fused backward loop is one Numba compile
        net.add(nn.Conv2DTranspose(4, 2, strides=2, in_channels=3), nn.PReLU(), nn.Dense(3))
    net.initialize()
    net(mx.nd.ones((2, 3, 3, 3)))
    rs = np.random.RandomState(seed)
    for name, p in sorted(net.collect_params().items()):
        p.set_data(mx.nd.array(rs.uniform(0.5, 1.5, size=p.shape) if name.endswith("var")
                               else rs.randn(*p.shape) * 0.5))
    return net


def test_hybridized_gradients_equal_eager():
    """Training steps through transposed conv, PReLU and Dense: outputs and every parameter
    gradient are the same hybridized (mx.jit) and eager (BatchNorm's compiled backward is
    covered by the gl_hybridize_equiv oracle case and G1's tests)."""
    x = mx.nd.array(np.random.RandomState(9).randn(2, 3, 3, 3))
    res = []
    for hyb in (False, True):
        net = _small_net(10)
        if hyb:
            net.hybridize()
        for _ in range(2):                      # the second call replays the compiled graph
            with mx.autograd.record():
                y = net(x)
                (y * y).sum().backward()
        res.append((y.asnumpy(), {n[len(net.prefix):]: (p.grad() if p.grad_req != "null" else
                                                         p.data()).asnumpy()
                                  for n, p in net.collect_params().items()}))
    np.testing.assert_allclose(res[1][0], res[0][0], rtol=1e-5, atol=1e-6)
    assert sorted(res[0][1]) == sorted(res[1][1])
    for n in res[0][1]:
        np.testing.assert_allclose(res[1][1][n], res[0][1][n], rtol=1e-4, atol=1e-5, err_msg=n)


def test_channel_last_convolution():
    """Conv2D/Conv3D with layout NHWC/NDHWC: weights (channels, *kernel, in_channels/groups) as
    MXNet 1.9.1 makes them, and the numbers of the channel-first layer on transposed arrays
    (MXNet's CPU build runs NHWC convolutions forward only, so there is no golden for them)."""
    c = nn.Conv2D(4, 3, layout='NHWC', in_channels=4, groups=2)
    assert c.weight.shape == (4, 3, 3, 2)                  # MXNet 1.9.1: (4, 3, 3, 2)
    rs = np.random.RandomState(11)
    for n, (cl, cf, xs) in enumerate([
            (nn.Conv2D(4, (3, 2), strides=(2, 1), padding=1, groups=2, layout='NHWC'),
             nn.Conv2D(4, (3, 2), strides=(2, 1), padding=1, groups=2), (2, 5, 4, 4)),
            (nn.Conv3D(2, 2, dilation=(1, 2, 1), layout='NDHWC'), nn.Conv3D(2, 2, dilation=(1, 2, 1)),
             (1, 3, 5, 3, 3))]):
        for b in (cl, cf):
            b.initialize()
        x = rs.randn(*xs)
        xcf = np.moveaxis(x, -1, 1)
        cl(mx.nd.array(x)), cf(mx.nd.array(xcf))
        w = rs.randn(*cf.weight.shape)
        cf.weight.set_data(mx.nd.array(w))
        cl.weight.set_data(mx.nd.array(np.moveaxis(w, 1, -1)))
        cl.bias.set_data(mx.nd.array(np.arange(cl.bias.shape[0], dtype="float32")))
        cf.bias.set_data(mx.nd.array(np.arange(cl.bias.shape[0], dtype="float32")))
        res = []
        for b, xx in ((cl, x), (cf, xcf)):
            xa = mx.nd.array(xx)
            xa.attach_grad()
            with mx.autograd.record():
                y = b(xa)
                (y * y).sum().backward()
            res.append((y.asnumpy(), xa.grad.asnumpy(), b.weight.grad().asnumpy(),
                        b.bias.grad().asnumpy()))
        (y1, gx1, gw1, gb1), (y2, gx2, gw2, gb2) = res
        np.testing.assert_allclose(np.moveaxis(y1, -1, 1), y2, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.moveaxis(gx1, -1, 1), gx2, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.moveaxis(gw1, -1, 1), gw2, rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(gb1, gb2, rtol=1e-5, atol=1e-4)


def test_fused_elu_selu_compiled_equal_eager():
    """LeakyReLU's elu/selu lowerings (fused loops on vmath's expm1) give the eager numbers."""
    x = np.linspace(-3, 3, 13).reshape(1, 13)
    for t in ("elu", "selu"):
        def f(a):
            return mx.nd.LeakyReLU(a * 1.0, act_type=t, slope=0.3) * 2.0
        jf = mx.jit(f)
        res = []
        for fn in (f, jf, jf):
            a = mx.nd.array(x, dtype="float64")
            a.attach_grad()
            with mx.autograd.record():
                y = fn(a)
            y.backward()
            res.append((y.asnumpy(), a.grad.asnumpy()))
        for got in res[1:]:
            np.testing.assert_allclose(got[0], res[0][0], rtol=1e-14, atol=1e-15)
            np.testing.assert_allclose(got[1], res[0][1], rtol=1e-14, atol=1e-15)
