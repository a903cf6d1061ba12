"""The Estimator's per-batch step (MXNet 1.9.1's ``BatchProcessor``)."""
from ...utils import split_and_load
from .... import autograd

__all__ = ['BatchProcessor']


class BatchProcessor(object):
    """How the Estimator runs one batch: ``fit_batch`` (forward and loss under
    ``autograd.record()``, then ``backward`` of each loss; the optimizer step is the
    GradientUpdateHandler's) and ``evaluate_batch`` (forward and loss with ``val_net`` /
    ``val_loss``).  Both return ``(data, label, pred, loss)``, lists with one entry per
    context.  Subclass it to customise the step."""

    def __init__(self):
        pass

    def _get_data_and_label(self, batch, ctx, batch_axis=0):
        data = split_and_load(batch[0], ctx_list=ctx, batch_axis=batch_axis)
        label = split_and_load(batch[1], ctx_list=ctx, batch_axis=batch_axis)
        return data, label

    def evaluate_batch(self, estimator, val_batch, batch_axis=0):
        data, label = self._get_data_and_label(val_batch, estimator.context, batch_axis)
        pred = [estimator.val_net(x) for x in data]
        loss = [estimator.val_loss(p, y) for p, y in zip(pred, label)]
        return data, label, pred, loss

    def fit_batch(self, estimator, train_batch, batch_axis=0):
        data, label = self._get_data_and_label(train_batch, estimator.context, batch_axis)
        with autograd.record():
            pred = [estimator.net(x) for x in data]
            loss = [estimator.loss(p, y) for p, y in zip(pred, label)]
        for l in loss:
            l.backward()
        return data, label, pred, loss
