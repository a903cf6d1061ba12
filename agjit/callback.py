"""``mx.callback``: the batch-end and epoch-end callbacks of MXNet 1.x's training loops.

A batch-end callback is called with a :data:`agjit.model.BatchEndParam`
``(epoch, nbatch, eval_metric, locals)``; an epoch-end callback with
``(epoch, symbol, arg_params, aux_params)``.  Messages go to the ``logging`` root logger at
INFO, worded as MXNet words them, so log parsers written for MXNet keep working.
"""
import logging
import math
import time

from .model import save_checkpoint

__all__ = ["module_checkpoint", "do_checkpoint", "log_train_metric", "Speedometer",
           "ProgressBar", "LogValidationMetricsCallback"]


def _every(period):
    return int(max(1, period))


def module_checkpoint(mod, prefix, period=1, save_optimizer_states=False):
    """Epoch-end callback: ``mod.save_checkpoint(prefix, epoch + 1, ...)`` every ``period``
    epochs."""
    period = _every(period)

    def _callback(iter_no, sym=None, arg=None, aux=None):
        if (iter_no + 1) % period == 0:
            mod.save_checkpoint(prefix, iter_no + 1, save_optimizer_states)
    return _callback


def do_checkpoint(prefix, period=1):
    """Epoch-end callback writing ``prefix-symbol.json`` and ``prefix-%04d.params`` for epoch
    ``iter_no + 1`` whenever that number is a multiple of ``period``."""
    period = _every(period)

    def _callback(iter_no, sym, arg, aux):
        if (iter_no + 1) % period == 0:
            save_checkpoint(prefix, iter_no + 1, sym, arg, aux)
    return _callback


def log_train_metric(period, auto_reset=False):
    """Batch-end callback logging ``Iter[e] Batch[n] Train-<name>=<value>`` every ``period``
    batches (and resetting the metric's local statistics after it when ``auto_reset``)."""

    def _callback(param):
        if param.nbatch % period != 0 or param.eval_metric is None:
            return
        for name, value in param.eval_metric.get_name_value():
            logging.info('Iter[%d] Batch[%d] Train-%s=%f', param.epoch, param.nbatch, name, value)
        if auto_reset:
            param.eval_metric.reset_local()
    return _callback


class Speedometer(object):
    """Batch-end callback logging the throughput (and the metric) every ``frequent`` batches.

    The first call only starts the clock; a call whose ``nbatch`` is smaller than the last one
    (a new epoch) starts it again.  With ``auto_reset`` (the default) the metric's local
    statistics are reset after each line, so each line shows the last ``frequent`` batches.
    """

    def __init__(self, batch_size, frequent=50, auto_reset=True):
        self.batch_size = batch_size
        self.frequent = frequent
        self.auto_reset = auto_reset
        self.init = False
        self.tic = 0
        self.last_count = 0

    def __call__(self, param):
        count = param.nbatch
        if count < self.last_count:
            self.init = False
        self.last_count = count
        if not self.init:
            self.init = True
            self.tic = time.time()
            return
        if count % self.frequent != 0:
            return
        elapsed = time.time() - self.tic
        speed = self.frequent * self.batch_size / elapsed if elapsed > 0 else float('inf')
        metric = param.eval_metric
        if metric is None:
            logging.info("Iter[%d] Batch [%d]\tSpeed: %.2f samples/sec", param.epoch, count, speed)
        else:
            name_value = metric.get_name_value()
            values = [x for pair in name_value for x in pair]
            if self.auto_reset:
                metric.reset_local()
                logging.info('Epoch[%d] Batch [%d-%d]\tSpeed: %.2f samples/sec'
                             + '\t%s=%f' * len(name_value),
                             param.epoch, count - self.frequent, count, speed, *values)
            else:
                logging.info('Epoch[%d] Batch [0-%d]\tSpeed: %.2f samples/sec'
                             + '\t%s=%f' * len(name_value),
                             param.epoch, count, speed, *values)
        self.tic = time.time()


class ProgressBar(object):
    """Batch-end callback logging a text progress bar of ``length`` characters for ``total``
    batches."""

    def __init__(self, total, length=80):
        self.bar_len = length
        self.total = total

    def __call__(self, param):
        done = param.nbatch / float(self.total)
        filled = int(round(self.bar_len * done))
        logging.info('[%s] %s%s\r', '=' * filled + '-' * (self.bar_len - filled),
                     math.ceil(100.0 * done), '%')


class LogValidationMetricsCallback(object):
    """Epoch-end callback for ``score``: logs ``Epoch[e] Validation-<name>=<value>``."""

    def __call__(self, param):
        if not param.eval_metric:
            return
        for name, value in param.eval_metric.get_name_value():
            logging.info('Epoch[%d] Validation-%s=%f', param.epoch, name, value)
