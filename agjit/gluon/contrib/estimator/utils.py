"""Argument checks shared by the Estimator and its handlers."""
from ...loss import SoftmaxCrossEntropyLoss
from ....metric import Accuracy, EvalMetric, CompositeEvalMetric


def _check_metrics(metrics):
    """A flat list of EvalMetric (a CompositeEvalMetric is opened up)."""
    if isinstance(metrics, CompositeEvalMetric):
        return [m for sub in metrics.metrics for m in _check_metrics(sub)]
    if isinstance(metrics, EvalMetric):
        return [metrics]
    metrics = metrics or []
    if not all(isinstance(m, EvalMetric) for m in metrics):
        raise ValueError("metrics must be a Metric or a list of Metric, "
                         "refer to mxnet.metric.EvalMetric: {}".format(metrics))
    return list(metrics)


def _check_handler_metric_ref(handler, known_metrics):
    """A handler's metric attributes (any attribute whose name contains 'metric', as MXNet
    checks -- a ``monitor`` attribute is not checked) must be estimator metrics."""
    for attr in dir(handler):
        if 'metric' not in attr:
            continue
        ref = getattr(handler, attr)
        if not ref:
            continue
        for metric in (ref if isinstance(ref, list) else [ref]):
            if metric not in known_metrics:
                raise ValueError(
                    'Event handler {} refers to a metric instance {} outside of the known '
                    'training and validation metrics. Please use the metrics from '
                    'estimator.train_metrics and estimator.val_metrics '
                    'instead.'.format(type(handler).__name__, metric))


def _suggest_metric_for_loss(loss):
    return Accuracy() if isinstance(loss, SoftmaxCrossEntropyLoss) else None
