"""gluon.contrib.estimator: a fit equals the same loop written by hand with gluon.Trainer,
and the handlers (stopping, metrics, validation, logging, checkpoints, early stopping) act as
MXNet 1.9.1's do (its numbers for a fit are checked in tests/test_gluon_contrib.py)."""
import io
import logging
import os
import warnings

import numpy as np
import pytest

import agjit as mx
from agjit import gluon
from agjit.gluon.contrib.estimator import (Estimator, CheckpointHandler, EarlyStoppingHandler,
                                           LoggingHandler, MetricHandler, StoppingHandler,
                                           ValidationHandler, GradientUpdateHandler, BatchEnd,
                                           EpochEnd, TrainBegin, TrainEnd, EpochBegin,
                                           BatchBegin)


def _data(n=10, seed=0, batch_size=4):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-1, 1, (n, 4)).astype('float32')
    y = (np.arange(n) % 3).astype('float32')
    return X, y, gluon.data.DataLoader(gluon.data.ArrayDataset(X, y), batch_size=batch_size)


def _net(seed=1):
    net = gluon.nn.Dense(3, in_units=4)
    net.initialize()
    rng = np.random.RandomState(seed)
    net.weight.set_data(rng.uniform(-0.5, 0.5, (3, 4)).astype('float32'))
    net.bias.set_data(rng.uniform(-0.5, 0.5, (3,)).astype('float32'))
    return net


def _trainer(net):
    return gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.5, 'momentum': 0.9})


def _quiet(est):
    est.logger.handlers = []
    return est


def test_fit_equals_hand_written_loop():
    X, y, data = _data()
    net = _net()
    est = _quiet(Estimator(net, gluon.loss.SoftmaxCrossEntropyLoss(), trainer=_trainer(net)))
    est.fit(data, epochs=3)

    ref = _net()
    trainer = _trainer(ref)
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    losses, correct = [], 0
    for epoch in range(3):
        losses, correct = [], 0
        for xb, yb in data:
            with mx.autograd.record():
                out = ref(xb)
                loss = loss_fn(out, yb)
            loss.backward()
            trainer.step(xb.shape[0])
            losses.append(loss.asnumpy())
            correct += int((out.asnumpy().argmax(1) == yb.asnumpy()).sum())
    np.testing.assert_allclose(net.weight.data().asnumpy(), ref.weight.data().asnumpy(),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(net.bias.data().asnumpy(), ref.bias.data().asnumpy(),
                               rtol=1e-6, atol=1e-7)
    # the train metrics cover the last epoch, as the hand loop's counters
    acc, loss_metric = est.train_metrics
    assert acc.get() == ('training accuracy', correct / 10.0)
    name, value = loss_metric.get()
    assert name == 'training softmaxcrossentropyloss'
    np.testing.assert_allclose(value, np.concatenate(losses).mean(), rtol=1e-6)


def test_default_metrics_trainer_and_errors():
    net = gluon.nn.Dense(2)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        est = Estimator(net, gluon.loss.L2Loss())
    assert any('default SGD optimizer with learning rate 0.001' in str(x.message) for x in w)
    assert [m.name for m in est.train_metrics] == ['training l2loss']
    assert [m.name for m in est.val_metrics] == ['validation l2loss']
    assert est.trainer.learning_rate == 0.001
    assert type(est.trainer.optimizer).__name__ == 'SGD'
    assert est.context == [mx.cpu()]
    assert est.logger.name == 'Estimator' and est.logger.level == logging.INFO
    with pytest.raises(ValueError, match='loss must be a Loss'):
        Estimator(net, 'l2')
    with pytest.raises(ValueError, match='metrics must be a Metric or a list of Metric'):
        Estimator(net, gluon.loss.L2Loss(), train_metrics=['acc'])
    with pytest.raises(ValueError, match='Trainer must be a Gluon Trainer'):
        Estimator(net, gluon.loss.L2Loss(), trainer='sgd')
    with pytest.raises(ValueError, match='context must be a Context'):
        Estimator(net, gluon.loss.L2Loss(), context='cpu')
    with pytest.raises(ValueError, match='Customized Batch Processor must contain'):
        Estimator(net, gluon.loss.L2Loss(), batch_processor=object())
    _, _, data = _data()
    with pytest.raises(ValueError, match='exactly one type of iteration'):
        est.fit(data)
    with pytest.raises(ValueError, match='exactly one type of iteration'):
        est.fit(data, epochs=1, batches=2)
    with pytest.raises(ValueError, match='only support input as Gluon DataLoader'):
        est.fit([(1, 2)], epochs=1)
    with pytest.raises(ValueError, match='only support input as Gluon DataLoader'):
        est.evaluate([(1, 2)])
    # a handler holding a metric the estimator does not know
    with pytest.raises(ValueError, match='refers to a metric instance'):
        est.fit(data, epochs=1, event_handlers=[MetricHandler([mx.metric.Accuracy()])])
    # a composite metric is opened up, names prefixed
    comp = mx.metric.CompositeEvalMetric([mx.metric.MAE(), mx.metric.RMSE()])
    net2 = gluon.nn.Dense(2)
    est2 = Estimator(net2, gluon.loss.L2Loss(), train_metrics=comp,
                     trainer=gluon.Trainer(net2.collect_params(), 'sgd'))
    assert [m.name for m in est2.train_metrics] == ['training mae', 'training rmse']
    assert [m.name for m in est2.val_metrics] == ['validation mae', 'validation rmse']


class _Recorder(TrainBegin, TrainEnd, EpochBegin, EpochEnd, BatchBegin, BatchEnd):
    def __init__(self, stop_at_batch=None):
        self.calls = []
        self.stop_at_batch = stop_at_batch

    def train_begin(self, estimator, *args, **kwargs):
        self.calls.append('train_begin')

    def train_end(self, estimator, *args, **kwargs):
        self.calls.append('train_end')

    def epoch_begin(self, estimator, *args, **kwargs):
        self.calls.append('epoch_begin')

    def epoch_end(self, estimator, *args, **kwargs):
        self.calls.append('epoch_end')

    def batch_begin(self, estimator, *args, **kwargs):
        self.calls.append('batch_begin')

    def batch_end(self, estimator, *args, **kwargs):
        self.calls.append('batch_end:%d' % kwargs['batch'][0].shape[0])
        return self.stop_at_batch is not None and \
            self.calls.count('batch_end:4') + self.calls.count('batch_end:2') == \
            self.stop_at_batch


def test_event_order_batches_and_custom_stop():
    _, _, data = _data()           # batches of 4, 4, 2
    net = _net()
    est = _quiet(Estimator(net, gluon.loss.SoftmaxCrossEntropyLoss(), trainer=_trainer(net)))
    rec = _Recorder()
    est.fit(data, batches=4, event_handlers=[rec])
    assert rec.calls == ['train_begin', 'epoch_begin', 'batch_begin', 'batch_end:4',
                         'batch_begin', 'batch_end:4', 'batch_begin', 'batch_end:2',
                         'epoch_end', 'epoch_begin', 'batch_begin', 'batch_end:4',
                         'epoch_end', 'train_end']
    rec = _Recorder(stop_at_batch=2)       # a handler's batch_end returning True ends the epoch
    est.fit(data, epochs=2, event_handlers=[rec])
    assert rec.calls.count('epoch_begin') == 2 and rec.calls.count('batch_begin') == 5


def test_validation_and_logging_messages():
    _, _, data = _data()
    net = _net()
    est = Estimator(net, gluon.loss.SoftmaxCrossEntropyLoss(), trainer=_trainer(net))
    buf = io.StringIO()
    est.logger.handlers = [logging.StreamHandler(buf)]
    evals = []
    orig = est.evaluate

    def evaluate(**kw):
        evals.append(sorted(kw))
        return orig(**kw)
    val = ValidationHandler(data, evaluate, epoch_period=2, batch_period=4)
    est.fit(data, epochs=4, event_handlers=[val, LoggingHandler(log_interval=2,
                                                               metrics=est.train_metrics)])
    # every 2nd epoch (2) and every 4th batch (12 batches: 3)
    assert evals == [['batch_axis', 'event_handlers', 'val_data']] * 5
    text = buf.getvalue()
    assert 'Training begin: using optimizer SGD with current learning rate 0.5000' in text
    assert 'Train for 4 epochs.' in text
    assert '[Epoch 0] Begin, current learning rate: 0.5000' in text
    assert '[Epoch 0][Batch 0][Samples 4] time/interval:' in text
    assert '[Epoch 0][Batch 2][Samples 10] time/interval:' in text
    assert '[Epoch 1][Batch 0][Samples 14]' in text
    assert 'Validation Begin' in text
    assert 'validation accuracy: ' in text
    assert 'Train finished using total' in text and 'with 4 epochs.' in text
    acc = est.val_metrics[0]
    assert acc.name == 'validation accuracy' and acc.num_inst == 10
    with pytest.raises(ValueError, match="log_interval must be either an integer or string"):
        LoggingHandler(log_interval='batch')


def test_early_stopping_auto_mode_is_greater_as_mxnet():
    _, _, data = _data()
    net = _net()
    est = _quiet(Estimator(net, gluon.loss.SoftmaxCrossEntropyLoss(), trainer=_trainer(net)))
    loss_metric = est.train_metrics[1]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        es = EarlyStoppingHandler(loss_metric, patience=1)
    # MXNet's auto mode picks `greater` for every metric, a loss included
    assert es.monitor_op is np.greater
    assert any('`greater` operator will be used' in str(x.message) for x in w)
    est.fit(data, epochs=20, event_handlers=[es])
    # the loss falls from epoch to epoch, so "greater is better" stops after the first fall
    assert es.stop_training and es.stopped_epoch == 1 and es.current_epoch == 2
    es = EarlyStoppingHandler(loss_metric, patience=2, mode='min', min_delta=10.0)
    assert es.min_delta == -10.0 and es.monitor_op is np.less
    est.fit(data, epochs=20, event_handlers=[es])
    # an improvement must exceed 10: only the first epoch (vs inf) counts
    assert es.stopped_epoch == 2
    with pytest.raises(ValueError, match='CompositeEvalMetric is not supported'):
        EarlyStoppingHandler(mx.metric.CompositeEvalMetric([mx.metric.MAE()]))
    with pytest.raises(ValueError, match='Please provide one of the metric objects'):
        EarlyStoppingHandler('loss')


def test_checkpoints_and_resume(tmp_path):
    _, _, data = _data()
    net = _net()
    net.hybridize(False)
    est = _quiet(Estimator(net, gluon.loss.SoftmaxCrossEntropyLoss(), trainer=_trainer(net)))
    acc = est.train_metrics[0]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ck = CheckpointHandler(str(tmp_path), model_prefix='m', monitor=acc, save_best=True,
                               epoch_period=1, max_checkpoints=2)
    est.fit(data, epochs=3, event_handlers=[ck])
    files = sorted(os.listdir(tmp_path))
    # batches counted over the run: 3 per epoch; the oldest checkpoint was removed
    assert files == ['m-best.params', 'm-best.states', 'm-epoch1batch6.params',
                     'm-epoch1batch6.states', 'm-epoch2batch9.params', 'm-epoch2batch9.states']
    assert ck.saved_checkpoints == ['m-epoch1batch6', 'm-epoch2batch9']
    # the saved parameters are the net's at that point
    w_end = net.weight.data().asnumpy()
    probe = _net(seed=7)
    probe.load_parameters(str(tmp_path / 'm-epoch2batch9.params'))
    np.testing.assert_array_equal(probe.weight.data().asnumpy(), w_end)
    # resume: continues for the remaining epochs from the newest checkpoint
    net2 = _net(seed=7)
    est2 = _quiet(Estimator(net2, gluon.loss.SoftmaxCrossEntropyLoss(),
                            trainer=_trainer(net2)))
    ck2 = CheckpointHandler(str(tmp_path), model_prefix='m', resume_from_checkpoint=True)
    rec = _Recorder()
    est2.fit(data, epochs=4, event_handlers=[ck2, rec])
    assert ck2.trained_epoch == 2 and ck2.trained_batch == 9
    assert rec.calls.count('epoch_begin') == 1          # 4 - 2 - 1 epochs left
    assert 'm-epoch3batch12.params' in os.listdir(tmp_path)   # batches 3 + 9
    with pytest.raises(ValueError, match='maximum number of epoch 3 reached'):
        _quiet(Estimator(_net(), gluon.loss.SoftmaxCrossEntropyLoss(),
                         trainer=_trainer(net2))).fit(
            data, epochs=3, event_handlers=[CheckpointHandler(
                str(tmp_path), model_prefix='m', resume_from_checkpoint=True)])
    with pytest.raises(ValueError, match='To save best model only'):
        CheckpointHandler(str(tmp_path), save_best=True)


def test_gradient_update_handler_and_stopping_handler_defaults():
    assert GradientUpdateHandler().priority == -2000
    assert MetricHandler([]).priority == -1000
    assert LoggingHandler().priority == np.inf
    s = StoppingHandler(max_epoch=2)
    assert (s.max_epoch, s.max_batch, s.current_batch, s.stop_training) == (2, None, 0, False)


def test_custom_batch_processor_val_net_and_val_loss():
    from agjit.gluon.contrib.estimator import BatchProcessor
    _, _, data = _data()
    net = _net()
    seen = []

    class Counting(BatchProcessor):
        def fit_batch(self, estimator, train_batch, batch_axis=0):
            seen.append(('fit', train_batch[0].shape[0]))
            return super(Counting, self).fit_batch(estimator, train_batch, batch_axis)

        def evaluate_batch(self, estimator, val_batch, batch_axis=0):
            seen.append(('eval', val_batch[0].shape[0]))
            return super(Counting, self).evaluate_batch(estimator, val_batch, batch_axis)

    val_net = _net(seed=5)
    est = _quiet(Estimator(net, gluon.loss.SoftmaxCrossEntropyLoss(), trainer=_trainer(net),
                           val_net=val_net, val_loss=gluon.loss.SoftmaxCrossEntropyLoss(weight=2.0),
                           batch_processor=Counting()))
    w_val = val_net.weight.data().asnumpy().copy()
    est.fit(data, val_data=data, epochs=1)
    assert seen == [('fit', 4), ('fit', 4), ('fit', 2), ('eval', 4), ('eval', 4), ('eval', 2)]
    # validation ran val_net (untrained) and the val loss metric saw val_loss's values
    np.testing.assert_array_equal(val_net.weight.data().asnumpy(), w_val)
    val_acc, val_loss = est.val_metrics
    X, y, _ = _data()
    out = val_net(mx.nd.array(X))
    assert val_acc.get()[1] == float((out.asnumpy().argmax(1) == y).mean())
    want = 2 * gluon.loss.SoftmaxCrossEntropyLoss()(out, mx.nd.array(y)).asnumpy().mean()
    np.testing.assert_allclose(val_loss.get()[1], want, rtol=1e-6)
