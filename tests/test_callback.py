"""mx.callback: which batches log, the wording of each line, metric resets and checkpoint epochs
(MXNet 1.9.1's behaviour, FINDINGS.md "mx.callback")."""
import logging
import os
import re

import numpy as np

import agjit as mx


def _run(cb, caplog, epochs=2, batches=5, metric=None):
    caplog.clear()
    seen = []
    with caplog.at_level(logging.INFO):
        for epoch in range(epochs):
            for nbatch in range(batches):
                if metric is not None:
                    metric.update([mx.nd.array([0, 1])], [mx.nd.array([[0.9, 0.1], [0.8, 0.2]])])
                cb(mx.model.BatchEndParam(epoch=epoch, nbatch=nbatch, eval_metric=metric,
                                          locals=None))
                seen.append(None if metric is None else metric.num_inst)
    msgs = [re.sub(r"Speed: \S+", "Speed: <s>", r.getMessage()) for r in caplog.records]
    return msgs, seen


def test_speedometer_logs_every_frequent_batches_and_resets_locally(caplog):
    metric = mx.metric.Accuracy()
    msgs, seen = _run(mx.callback.Speedometer(2, frequent=2), caplog, metric=metric)
    assert msgs == ["Epoch[0] Batch [0-2]\tSpeed: <s> samples/sec\taccuracy=0.500000",
                    "Epoch[0] Batch [2-4]\tSpeed: <s> samples/sec\taccuracy=0.500000",
                    "Epoch[1] Batch [0-2]\tSpeed: <s> samples/sec\taccuracy=0.500000",
                    "Epoch[1] Batch [2-4]\tSpeed: <s> samples/sec\taccuracy=0.500000"]
    # reset_local after each logged line: 6 instances accumulated before the first line
    assert seen == [2, 4, 0, 2, 0, 2, 4, 0, 2, 0]
    assert metric.get_global()[1] == 0.5 and metric.global_num_inst == 20


def test_speedometer_without_reset_and_without_metric(caplog):
    msgs, _ = _run(mx.callback.Speedometer(2, frequent=2, auto_reset=False), caplog,
                   epochs=1, metric=mx.metric.Accuracy())
    assert msgs == ["Epoch[0] Batch [0-2]\tSpeed: <s> samples/sec\taccuracy=0.500000",
                    "Epoch[0] Batch [0-4]\tSpeed: <s> samples/sec\taccuracy=0.500000"]
    msgs, _ = _run(mx.callback.Speedometer(4, frequent=1), caplog, epochs=1, batches=3)
    assert msgs == ["Iter[0] Batch [1]\tSpeed: <s> samples/sec",
                    "Iter[0] Batch [2]\tSpeed: <s> samples/sec"]


def test_log_train_metric(caplog):
    msgs, seen = _run(mx.callback.log_train_metric(2, auto_reset=True), caplog, epochs=1,
                      metric=mx.metric.Accuracy())
    assert msgs == ["Iter[0] Batch[0] Train-accuracy=0.500000",
                    "Iter[0] Batch[2] Train-accuracy=0.500000",
                    "Iter[0] Batch[4] Train-accuracy=0.500000"]
    assert seen == [0, 2, 0, 2, 0]


def test_do_checkpoint_writes_epochs_divisible_by_period(tmp_path, caplog):
    net = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=2, name="fc")
    arg = {"fc_weight": mx.nd.array(np.arange(6).reshape(2, 3)), "fc_bias": mx.nd.array([1, -1])}
    prefix = str(tmp_path / "cb")
    ck = mx.callback.do_checkpoint(prefix, period=2)
    with caplog.at_level(logging.INFO):
        for it in range(4):
            ck(it, net, arg, {})
    assert sorted(os.listdir(tmp_path)) == ["cb-0002.params", "cb-0004.params", "cb-symbol.json"]
    assert [r.getMessage() for r in caplog.records] == [
        'Saved checkpoint to "%s-0002.params"' % prefix, 'Saved checkpoint to "%s-0004.params"' % prefix]
    sym, a, _ = mx.model.load_checkpoint(prefix, 4)
    assert sym.list_arguments() == ["data", "fc_weight", "fc_bias"]
    np.testing.assert_array_equal(a["fc_weight"].asnumpy(), np.arange(6).reshape(2, 3))


def test_progress_bar(caplog):
    with caplog.at_level(logging.INFO):
        mx.callback.ProgressBar(total=4, length=8)(mx.model.BatchEndParam(0, 1, None, None))
    assert caplog.records[0].getMessage() == "[==------] 25%\r"
