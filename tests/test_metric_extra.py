"""F1, MCC, PCC, Perplexity and PearsonCorrelation(average=...) against numbers recorded from
real MXNet 1.9.1 (tests/golden/metrics_extra.json, written by tests/golden/make_metrics_extra.py):
after each update get(), get_global() and num_inst, then after reset_local()."""
import json
import math
import os

import numpy as np
import pytest

import agjit as mx

GOLD = json.load(open(os.path.join(os.path.dirname(__file__), "golden", "metrics_extra.json")))


def _same(a, b):
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    return a == pytest.approx(b, rel=1e-6, abs=1e-9)


CASES = {
    "f1_macro": (lambda: mx.metric.F1(average="macro"), "batches"),
    "f1_micro": (lambda: mx.metric.F1(average="micro"), "batches"),
    "mcc_macro": (lambda: mx.metric.MCC(average="macro"), "batches"),
    "mcc_micro": (lambda: mx.metric.MCC(average="micro"), "batches"),
    "pearson_macro": (lambda: mx.metric.PearsonCorrelation(average="macro"), "reg"),
    "pearson_micro": (lambda: mx.metric.PearsonCorrelation(average="micro"), "reg"),
    "pcc": (lambda: mx.metric.PCC(), "mc"),
    "perp_none": (lambda: mx.metric.Perplexity(ignore_label=None), None),
    "perp_ign": (lambda: mx.metric.Perplexity(ignore_label=int(GOLD["seq"][0][0])), None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_metric_matches_mxnet(name):
    make, key = CASES[name]
    data = GOLD[key] if key else [GOLD["seq"]]
    m = make()
    rows = []
    for label, pred in data:
        m.update([mx.nd.array(label)], [mx.nd.array(pred)])
        rows.append([m.get()[1], m.get_global()[1], float(m.num_inst)])
    m.reset_local()
    rows.append([m.get()[1], m.get_global()[1]])
    expected = GOLD["res"][name]
    assert len(rows) == len(expected)
    for got, exp in zip(rows, expected):
        assert all(_same(g, e) for g, e in zip(got, exp)), (name, rows, expected)


def test_binary_metrics_refuse_multiclass_labels():
    for m in (mx.metric.F1(), mx.metric.MCC()):
        with pytest.raises(ValueError, match="binary classification"):
            m.update([mx.nd.array([0, 1, 2])], [mx.nd.array(np.eye(3))])


def test_metrics_created_by_name():
    assert type(mx.metric.create("f1")).__name__ == "F1"
    assert type(mx.metric.create("mcc")).__name__ == "MCC"
    assert type(mx.metric.create("pcc")).__name__ == "PCC"
    assert mx.metric.create("perplexity", ignore_label=None).name == "perplexity"
