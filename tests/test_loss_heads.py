"""Loss-head ops (FINDINGS.md "Loss heads"): forward, the gradient each writes while ignoring
the head gradient, the label's zero gradient, names, through executors and autograd, against
NumPy formulas."""
import json

import numpy as np
import pytest

import agjit as mx


def _bind(sym, x, lab):
    ex = sym.simple_bind(mx.cpu(), data=x.shape, out_label=lab.shape)
    ex.arg_dict["data"][:] = x
    ex.arg_dict["out_label"][:] = lab
    out = ex.forward(is_train=True)[0].asnumpy()
    ex.backward()
    return out, ex.grad_dict["data"].asnumpy(), ex.grad_dict["out_label"].asnumpy()


@pytest.mark.parametrize("name,fwd,grad", [
    ("LinearRegressionOutput", lambda x: x, lambda o, l: o - l),
    ("LogisticRegressionOutput", lambda x: 1 / (1 + np.exp(-x)), lambda o, l: o - l),
    ("MAERegressionOutput", lambda x: x, lambda o, l: np.sign(o - l)),
])
@pytest.mark.parametrize("gs", [1.0, 3.0])
def test_regression_heads(name, fwd, grad, gs):
    rs = np.random.RandomState(1)
    x = rs.randn(3, 4).astype("float32")
    lab = rs.rand(3, 4).astype("float32")
    sym = getattr(mx.sym, name)(mx.sym.Variable("data"), name="out", grad_scale=gs)
    assert sym.list_arguments() == ["data", "out_label"]
    assert sym.list_outputs() == ["out_output"]
    out, g, gl = _bind(sym, x, lab)
    np.testing.assert_allclose(out, fwd(x), rtol=1e-6)
    np.testing.assert_allclose(g, grad(fwd(x), lab) * gs / 4, rtol=1e-5, atol=1e-7)
    assert not gl.any()


def test_regression_label_inherits_attrs_in_json():
    js = json.loads(mx.sym.LinearRegressionOutput(mx.sym.Variable("data"), name="out",
                                                  grad_scale=3.0).tojson())
    assert js["nodes"][1] == {"op": "null", "name": "out_label", "attrs": {"grad_scale": "3.0"},
                              "inputs": []}


def _ag(f, x, hg=None):
    xx = mx.nd.array(x)
    xx.attach_grad()
    with mx.autograd.record():
        y = f(xx)
    y.backward(hg)
    return y.asnumpy(), xx.grad.asnumpy()


def test_makeloss_normalisations_ignore_the_head_gradient():
    x = np.random.RandomState(3).randn(4, 3)
    y, g = _ag(lambda a: mx.nd.MakeLoss(a * a), x, hg=mx.nd.ones((4, 3)) * 7)
    np.testing.assert_allclose(y, x * x, rtol=1e-6)
    np.testing.assert_allclose(g, 2 * x, rtol=1e-5)          # d(x*x) times grad_scale 1
    _, g = _ag(lambda a: mx.nd.MakeLoss(a, grad_scale=0.5, normalization="batch"), x)
    np.testing.assert_allclose(g, np.full((4, 3), 0.5 / 4))
    _, g = _ag(lambda a: mx.nd.MakeLoss(a - 0.5, normalization="valid", valid_thresh=0.1), x)
    np.testing.assert_allclose(g, np.full((4, 3), 1.0 / np.sum(x - 0.5 > 0.1)), rtol=1e-6)
    d = mx.sym.Variable("d")
    assert mx.sym.MakeLoss(d, name="ml").list_outputs() == ["ml_output"]
    assert mx.sym.make_loss(d, name="ml2").list_outputs() == ["ml2_loss"]
    assert json.loads(mx.sym.make_loss(d, name="ml2").tojson())["nodes"][1]["op"] == "make_loss"


@pytest.mark.parametrize("kw", [{}, {"margin": 0.5, "regularization_coefficient": 2.0},
                                {"use_linear": True}])
def test_svm_output_gradient(kw):
    x = np.random.RandomState(3).randn(4, 3)
    lab = np.array([0, 2, 1, 2])
    y, g = _ag(lambda a: mx.nd.SVMOutput(a, mx.nd.array(lab), **kw), x)
    np.testing.assert_allclose(y, x, rtol=1e-6)
    m, reg = kw.get("margin", 1.0), kw.get("regularization_coefficient", 1.0)
    is_y = lab[:, None] == np.arange(3)
    if kw.get("use_linear"):
        want = np.where(is_y, -reg * (m - x > 0), reg * (m + x > 0))
    else:
        want = np.where(is_y, -2 * reg * np.maximum(0, m - x), 2 * reg * np.maximum(0, m + x))
    np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)
    assert mx.sym.SVMOutput(mx.sym.Variable("d"), name="svm").list_arguments() == ["d", "svm_label"]


@pytest.mark.parametrize("norm,div", [("null", lambda n, d: d), ("batch", lambda n, d: n * d)])
def test_softmax_output_multi_output_normalisation(norm, div):
    rs = np.random.RandomState(5)
    x = rs.randn(2, 3, 4)
    lab = rs.randint(0, 3, size=(2, 4)).astype("float64")
    _, g = _ag(lambda a: mx.nd.SoftmaxOutput(a, mx.nd.array(lab), multi_output=True,
                                             normalization=norm), x)
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    onehot = (lab[:, None, :] == np.arange(3)[None, :, None])
    np.testing.assert_allclose(g, (p - onehot) / div(2, 4), rtol=1e-5, atol=1e-7)
