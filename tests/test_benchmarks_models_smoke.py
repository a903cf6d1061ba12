"""Smoke test of benchmarks/model_step.py (W8-W10): the agjit side of every model at tiny
sizes, the parameter mapping onto the Gluon networks, and the numerical comparison logic.
Peers (PyTorch, JAX, onnxruntime, MXNet) are not run here."""
import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "benchmarks"))

import model_step  # noqa: E402
import models  # noqa: E402

import agjit as mx  # noqa: E402


@pytest.mark.parametrize("model", ["W8", "W9", "W10"])
def test_spec_matches_gluon_network(model):
    d = models.make_data(model, quick=True, batch=2)
    net = models.mx_net(mx, model, quick=True)
    params = models.mx_load(mx, net, model, d, quick=True)
    assert list(params) == [n for n, _ in models.param_spec(model, quick=True)]
    for name, p in params.items():
        np.testing.assert_array_equal(p.data().asnumpy(), d[name])
    # a spec in another order is refused (the loader checks names and shapes)
    spec = models.param_spec(model, quick=True)
    swapped = {"W8": ("conv0_weight", "bn0_gamma"), "W9": ("l0_i2h_weight", "l0_h2h_weight"),
               "W10": ("wq_weight", "wk_weight")}[model]
    i, j = [k for k, (n, _) in enumerate(spec) if n in swapped]
    bad = list(spec)
    bad[i], bad[j] = bad[j], bad[i]
    net2 = models.mx_net(mx, model, quick=True)
    orig = models.param_spec
    try:
        models.param_spec = lambda m, quick=False: bad
        with pytest.raises(RuntimeError, match="does not match spec"):
            models.mx_load(mx, net2, model, d, quick=True)
    finally:
        models.param_spec = orig


def test_encoder_forward_matches_numpy_float64():
    d = models.make_data("W10", quick=True)
    step, fetch, _net = model_step.mx_case(mx, "W10", "infer", d, True, hybrid=False)
    step()
    got = fetch()["out"]
    d64 = {k: (v.astype(np.float64) if v.dtype.kind == "f" else v) for k, v in d.items()}
    ref = models.numpy_encoder_forward(d64, quick=True)
    assert got.shape == (2, 10)
    errs = model_step.compare({"out": got}, {"out": ref})
    assert errs["out"] < 1e-4
    # the comparison catches a wrong result
    assert model_step.compare({"out": got + 0.01 * np.abs(ref).max()}, {"out": ref})["out"] > 5e-3


@pytest.mark.parametrize("model", ["W8", "W9", "W10"])
def test_training_step_loss_and_gradients(model):
    d = models.make_data(model, quick=True, batch=2)
    step, fetch, _net = model_step.mx_case(mx, model, "train", d, True, hybrid=False)
    step()
    out = fetch()
    assert set(out) == {"loss"} | set(models.grad_names(model, quick=True))
    # the loss the step computed equals softmax CE of the network's own logits
    net = models.mx_net(mx, model, quick=True)
    models.mx_load(mx, net, model, d, quick=True)
    with mx.autograd.train_mode():
        z = net(mx.nd.array(d["x"].astype(np.float32))).asnumpy()
    assert abs(out["loss"] - models.softmax_ce(z.astype(np.float64), d["y"])) < 1e-4
    for k in models.grad_names(model, quick=True):
        g = out[k]
        assert g.shape == d[k].shape and np.isfinite(g).all() and np.abs(g).max() > 0
    # one gradient entry against a central difference of the float32 loss
    name = models.grad_names(model, quick=True)[-1]
    idx = np.unravel_index(np.argmax(np.abs(out[name])), out[name].shape)
    eps = 1e-2 * max(1.0, abs(float(d[name][idx])))
    losses = []
    for sgn in (1, -1):
        d2 = dict(d)
        d2[name] = d[name].copy()
        d2[name][idx] += sgn * eps
        s2, f2, _ = model_step.mx_case(mx, model, "train", d2, True, hybrid=False)
        s2()
        losses.append(f2()["loss"])
    fd = (losses[0] - losses[1]) / (2 * eps)
    assert abs(fd - out[name][idx]) <= 0.05 * abs(out[name][idx]) + 1e-4


def test_report_cells_and_targets():
    ok = {"status": "ok", "median_ms": 10.0, "cpu_median_ms": 10.0, "first_call_s": 1.0,
          "peak_mb": 100.0, "step_peak_mb": 50.0, "check_ok": True, "max_rel_err": 0.0}
    results = {"W8/train32": {
        "agjit_jit": dict(ok, median_ms=30.0, peak_mb=120.0, step_peak_mb=80.0),
        "agjit_eager": dict(ok, median_ms=40.0, check_ok=False, max_rel_err=0.5),
        "torch_eager": dict(ok, median_ms=20.0),
        "mxnet": {"status": "timeout after 5 s"}}}
    table = model_step.report(results, ["W8/train32"], ["agjit_jit", "agjit_eager", "torch_eager",
                                                        "mxnet"])
    assert "30 ms (1.50x)" in table and "✗ err 5.0e-01" in table and "timeout after 5 s" in table
    tg = {n: (v, good) for n, v, _lim, good in model_step.targets(results)}
    assert tg["W8/train32 jit / fastest(torch eager, mxnet)"] == (1.5, False)
    assert tg["W8/train32 jit / eager"] == (0.75, True)
    v, good = tg["W8/train32 jit / torch eager memory (peak over the loaded model)"]
    assert v == pytest.approx(1.2) and good


def test_check_case_against_reference_and_float64():
    ref = {"out": np.array([[1.0, -2.0]])}
    outputs = {"agjit_eager": {"out": np.array([[1.0, -2.0]])},
               "torch_eager": {"out": np.array([[1.0, -2.1]])},
               "mxnet": {"out": np.array([[1.0, -2.0001]])}}
    row = {p: {"status": "ok"} for p in outputs}
    model_step.check_case("W10/infer", row, outputs, {"out": np.array([[1.0, -2.0]])}, 5e-3)
    assert row["agjit_eager"]["check_ok"] and row["agjit_eager"]["reference"]
    assert row["torch_eager"]["check_ok"] is False
    assert row["torch_eager"]["max_rel_err"] == pytest.approx(0.05)
    assert row["mxnet"]["check_ok"]
    # a wrong agjit shows against the float64 forward
    row = {p: {"status": "ok"} for p in outputs}
    model_step.check_case("W10/infer", row, outputs, {"out": ref["out"] * 1.1}, 5e-3)
    assert row["agjit_eager"]["check_ok"] is False
    # without agjit_eager, torch_eager is the reference
    del outputs["agjit_eager"]
    row = {p: {"status": "ok"} for p in outputs}
    model_step.check_case("W8/train32", row, outputs, None, 5e-3)
    assert row["torch_eager"]["reference"] and row["mxnet"]["check_ok"] is False


def test_merge_of_two_runs(tmp_path):
    import json
    ok = {"status": "ok", "median_ms": 10.0, "cpu_median_ms": 9.0, "first_call_s": 1.0,
          "peak_mb": 100.0, "check_ok": True, "max_rel_err": 0.0}
    for i, (case, ms) in enumerate((("W9/train", 30.0), ("W8/infer1", 5.0))):
        d = tmp_path / ("run%d" % i)
        d.mkdir()
        hdr = {"date": "D%d" % i, "load_start": "1", "load_end": "2", "blas": "B",
               "threads": 1, "machine": "M"}
        (d / "model_results.json").write_text(json.dumps({"header": hdr, "results": {
            case: {"agjit_jit": dict(ok, median_ms=ms), "torch_eager": ok}}}))
    out = tmp_path / "merged"
    assert model_step.main(["--merge", "%s,%s" % (tmp_path / "run0", tmp_path / "run1"),
                            "--out", str(out)]) == 0
    md = (out / "model_results.md").read_text()
    assert "Merged from 2 runs" in md and "D0: cases W9/train" in md
    assert "| W9/train |  | 30 ms (3.00x)" in md and "| W8/infer1 |  | 5 ms (0.50x)" in md
    doc = json.loads((out / "model_results.json").read_text())
    assert set(doc["results"]) == {"W9/train", "W8/infer1"}
