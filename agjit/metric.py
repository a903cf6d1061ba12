"""``mx.metric``: evaluation metrics with MXNet 1.x numerics.

``update(labels, preds)`` takes lists of NDArrays (or single NDArrays, or NumPy arrays);
``get()`` returns ``(name, sum_metric / num_inst)`` (NaN before any update).

* Accuracy: ``argmax`` over ``axis`` when the prediction's shape differs from the label's,
  both cast to int32 and flattened; one instance per element.
* CrossEntropy / NegativeLogLikelihood: ``sum(-log(prob[label] + eps))``, one instance per
  sample.
* MSE / MAE / RMSE: the *mean over the batch* is added once per ``update`` array pair
  (``num_inst += 1``), as MXNet 1.x does, so ``get()`` is the average of batch means.

>>> import agjit as mx
>>> acc = mx.metric.create('acc')
>>> acc.update([mx.nd.array([0, 1, 1])], [mx.nd.array([[0.3, 0.7], [0, 1.], [0.4, 0.6]])])
>>> acc.get()
('accuracy', 0.6666666666666666)
"""
import math

import numpy

from .ndarray.ndarray import NDArray
from . import _registry

__all__ = ["EvalMetric", "CompositeEvalMetric", "Accuracy", "TopKAccuracy", "CrossEntropy",
           "NegativeLogLikelihood", "MAE", "MSE", "RMSE", "PearsonCorrelation", "Loss",
           "F1", "MCC", "Perplexity", "PCC",
           "CustomMetric", "create", "register", "alias", "check_label_shapes", "np"]


def _np(x):
    """A NumPy view of an NDArray (a NumPy array passes through)."""
    if isinstance(x, NDArray):
        return x._data
    return numpy.asarray(x)


def _nd(x):
    """An NDArray of ``x`` (an NDArray passes through)."""
    if isinstance(x, NDArray):
        return x
    from . import ndarray as nd
    return nd.array(numpy.asarray(x))


def check_label_shapes(labels, preds, wrap=False, shape=False):
    """Check that ``labels`` and ``preds`` have the same length (or ``shape`` when
    ``shape=True``); raises ValueError otherwise.  With ``wrap``, single arrays become
    one-element lists."""
    if not shape:
        label_shape, pred_shape = len(labels), len(preds)
    else:
        label_shape, pred_shape = labels.shape, preds.shape
    if label_shape != pred_shape:
        raise ValueError("Shape of labels {} does not match shape of "
                         "predictions {}".format(label_shape, pred_shape))
    if wrap:
        if isinstance(labels, (NDArray, numpy.ndarray)):
            labels = [labels]
        if isinstance(preds, (NDArray, numpy.ndarray)):
            preds = [preds]
    return labels, preds


class EvalMetric(object):
    """Base class of evaluation metrics.

    Parameters
    ----------
    name : str
        The metric's display name.
    output_names, label_names : list of str, optional
        Which predictions / labels :meth:`update_dict` uses (default: all).
    """

    def __init__(self, name, output_names=None, label_names=None, **kwargs):
        self.name = str(name)
        self.output_names = output_names
        self.label_names = label_names
        self._has_global_stats = kwargs.pop("has_global_stats", False)
        self._kwargs = kwargs
        self.reset()

    def __str__(self):
        return "EvalMetric: {}".format(dict(self.get_name_value()))

    def get_config(self):
        """The constructor arguments, so ``create(**config)`` rebuilds the metric."""
        config = self._kwargs.copy()
        config.update({'metric': self.__class__.__name__, 'name': self.name,
                       'output_names': self.output_names, 'label_names': self.label_names})
        return config

    def update_dict(self, label, pred):
        """Update from dicts of name -> array."""
        if self.output_names is not None:
            pred = [pred[name] for name in self.output_names]
        else:
            pred = list(pred.values())
        if self.label_names is not None:
            label = [label[name] for name in self.label_names]
        else:
            label = list(label.values())
        self.update(label, pred)

    def update(self, labels, preds):
        """Accumulate the metric over ``labels`` and ``preds``."""
        raise NotImplementedError()

    def reset(self):
        """Clear the local and global statistics."""
        self.num_inst = 0
        self.sum_metric = 0.0
        self.global_num_inst = 0
        self.global_sum_metric = 0.0

    def reset_local(self):
        """Clear the local statistics only."""
        self.num_inst = 0
        self.sum_metric = 0.0

    def _add(self, value, count):
        # accumulate in Python floats: what ``0.0 + numpy scalar`` gave under the NumPy 1.x
        # that MXNet 1.x ran on (float32 batch sums included)
        try:
            value = float(value)
        except TypeError:
            pass
        self.sum_metric += value
        self.global_sum_metric += value
        self.num_inst += count
        self.global_num_inst += count

    def get(self):
        """``(name, value)``; the value is NaN before any update."""
        if self.num_inst == 0:
            return (self.name, float('nan'))
        return (self.name, self.sum_metric / self.num_inst)

    def get_global(self):
        if self._has_global_stats:
            if self.global_num_inst == 0:
                return (self.name, float('nan'))
            return (self.name, self.global_sum_metric / self.global_num_inst)
        return self.get()

    def get_name_value(self):
        """``[(name, value), ...]``."""
        name, value = self.get()
        if not isinstance(name, list):
            name = [name]
        if not isinstance(value, list):
            value = [value]
        return list(zip(name, value))

    def get_global_name_value(self):
        if self._has_global_stats:
            name, value = self.get_global()
            if not isinstance(name, list):
                name = [name]
            if not isinstance(value, list):
                value = [value]
            return list(zip(name, value))
        return self.get_name_value()


register = _registry.get_register_func(EvalMetric, 'metric')
alias = _registry.get_alias_func(EvalMetric, 'metric')
_create = _registry.get_create_func(EvalMetric, 'metric')


def create(metric, *args, **kwargs):
    """Create a metric from a name (``'acc'``, ``'ce'``, ``'mse'`` ...), a callable
    ``feval(label, pred)``, an EvalMetric, or a list of those (a CompositeEvalMetric).

    >>> mx.metric.create(['acc', 'ce']).get()[0]
    ['accuracy', 'cross-entropy']
    """
    if callable(metric) and not isinstance(metric, EvalMetric):
        return CustomMetric(metric, *args, **kwargs)
    if isinstance(metric, list):
        composite_metric = CompositeEvalMetric()
        for child_metric in metric:
            composite_metric.add(create(child_metric, *args, **kwargs))
        return composite_metric
    return _create(metric, *args, **kwargs)


@register
@alias('composite')
class CompositeEvalMetric(EvalMetric):
    """Several metrics updated together; ``get()`` returns lists of names and values."""

    def __init__(self, metrics=None, name='composite', output_names=None, label_names=None):
        super(CompositeEvalMetric, self).__init__(name, output_names=output_names,
                                                  label_names=label_names,
                                                  has_global_stats=True)
        if metrics is None:
            metrics = []
        self.metrics = [create(i) for i in metrics]

    def add(self, metric):
        """Add a child metric."""
        self.metrics.append(create(metric))

    def get_metric(self, index):
        """The child metric at ``index``."""
        try:
            return self.metrics[index]
        except IndexError:
            return ValueError("Metric index {} is out of range 0 and {}".format(
                index, len(self.metrics)))

    def update_dict(self, labels, preds):
        if self.label_names is not None:
            labels = {name: label for name, label in labels.items()
                      if name in self.label_names}
        if self.output_names is not None:
            preds = {name: pred for name, pred in preds.items() if name in self.output_names}
        for metric in self.metrics:
            metric.update_dict(labels, preds)

    def update(self, labels, preds):
        for metric in self.metrics:
            metric.update(labels, preds)

    def reset(self):
        try:
            for metric in self.metrics:
                metric.reset()
        except AttributeError:
            pass

    def reset_local(self):
        try:
            for metric in self.metrics:
                metric.reset_local()
        except AttributeError:
            pass

    def _collect(self, getter):
        names, values = [], []
        for metric in self.metrics:
            name, value = getter(metric)
            if isinstance(name, str):
                name = [name]
            if isinstance(value, (float, int, numpy.generic)):
                value = [value]
            names.extend(name)
            values.extend(value)
        return (names, values)

    def get(self):
        return self._collect(lambda m: m.get())

    def get_global(self):
        return self._collect(lambda m: m.get_global())

    def get_config(self):
        config = super(CompositeEvalMetric, self).get_config()
        config.update({'metrics': [i.get_config() for i in self.metrics]})
        return config


@register
@alias('acc')
class Accuracy(EvalMetric):
    """Fraction of correct predictions; predictions are ``argmax``-ed over ``axis`` when their
    shape differs from the label's.

    >>> m = Accuracy(); m.update([mx.nd.array([1, 0])], [mx.nd.array([[0.1, 0.9], [0.8, 0.2]])])
    >>> m.get()
    ('accuracy', 1.0)
    """

    def __init__(self, axis=1, name='accuracy', output_names=None, label_names=None):
        super(Accuracy, self).__init__(name, axis=axis, output_names=output_names,
                                       label_names=label_names, has_global_stats=True)
        self.axis = axis

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred_label in zip(labels, preds):
            pred_label = _np(pred_label)
            label = _np(label)
            if pred_label.shape != label.shape:
                pred_label = numpy.argmax(pred_label, axis=self.axis)
            pred_label = pred_label.astype('int32').ravel()
            label = label.astype('int32').ravel()
            check_label_shapes(label, pred_label)
            num_correct = (pred_label == label).sum()
            self._add(num_correct, len(pred_label))


@register
@alias('top_k_accuracy', 'top_k_acc')
class TopKAccuracy(EvalMetric):
    """Fraction of samples whose label is among the ``top_k`` highest predictions
    (``top_k`` must be > 1; the name becomes ``top_k_accuracy_<k>``)."""

    def __init__(self, top_k=1, name='top_k_accuracy', output_names=None, label_names=None):
        super(TopKAccuracy, self).__init__(name, top_k=top_k, output_names=output_names,
                                           label_names=label_names, has_global_stats=True)
        self.top_k = top_k
        assert self.top_k > 1, 'Please use Accuracy if top_k is no more than 1'
        self.name += '_%d' % self.top_k

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred_label in zip(labels, preds):
            pred_label = _np(pred_label)
            assert len(pred_label.shape) <= 2, 'Predictions should be no more than 2 dims'
            # a stable argsort instead of MXNet's argpartition: the same top-k sets, but a
            # deterministic choice among tied scores
            pred_label = numpy.argsort(pred_label.astype('float32'), axis=-1, kind='stable')
            label = _np(label).astype('int32')
            check_label_shapes(label, pred_label)
            num_samples = pred_label.shape[0]
            num_dims = len(pred_label.shape)
            num_correct = 0
            if num_dims == 1:
                num_correct = (pred_label.ravel() == label.ravel()).sum()
            elif num_dims == 2:
                num_classes = pred_label.shape[1]
                top_k = min(num_classes, self.top_k)
                for j in range(top_k):
                    num_correct += (pred_label[:, num_classes - 1 - j].ravel()
                                    == label.ravel()).sum()
            self._add(num_correct, num_samples)


class _Regression(EvalMetric):
    def __init__(self, name, output_names=None, label_names=None):
        super(_Regression, self).__init__(name, output_names=output_names,
                                          label_names=label_names, has_global_stats=True)

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            label = _np(label)
            pred = _np(pred)
            if len(label.shape) == 1:
                label = label.reshape(label.shape[0], 1)
            if len(pred.shape) == 1:
                pred = pred.reshape(pred.shape[0], 1)
            self._add(self._batch_value(label, pred), 1)


@register
class MAE(_Regression):
    """Mean absolute error, averaged per batch: ``mean(|label - pred|)`` per update."""

    def __init__(self, name='mae', output_names=None, label_names=None):
        super(MAE, self).__init__(name, output_names, label_names)

    @staticmethod
    def _batch_value(label, pred):
        return numpy.abs(label - pred).mean()


@register
class MSE(_Regression):
    """Mean squared error, averaged per batch: ``mean((label - pred)**2)`` per update.

    >>> m = MSE(); m.update([mx.nd.array([1, 2])], [mx.nd.array([1, 4])]); m.get()
    ('mse', 2.0)
    """

    def __init__(self, name='mse', output_names=None, label_names=None):
        super(MSE, self).__init__(name, output_names, label_names)

    @staticmethod
    def _batch_value(label, pred):
        return ((label - pred) ** 2.0).mean()


@register
class RMSE(_Regression):
    """Root mean squared error per batch, averaged over updates."""

    def __init__(self, name='rmse', output_names=None, label_names=None):
        super(RMSE, self).__init__(name, output_names, label_names)

    @staticmethod
    def _batch_value(label, pred):
        return numpy.sqrt(((label - pred) ** 2.0).mean())


@register
@alias('ce')
class CrossEntropy(EvalMetric):
    """Cross entropy: ``sum(-log(pred[i, label[i]] + eps)) / num_samples``.

    >>> m = CrossEntropy()
    >>> m.update([mx.nd.array([0, 1, 1])], [mx.nd.array([[0.3, 0.7], [0, 1.], [0.4, 0.6]])])
    >>> round(m.get()[1], 6)
    0.571599
    """

    def __init__(self, eps=1e-12, name='cross-entropy', output_names=None, label_names=None):
        super(CrossEntropy, self).__init__(name, eps=eps, output_names=output_names,
                                           label_names=label_names, has_global_stats=True)
        self.eps = eps

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            label = _np(label).ravel()
            pred = _np(pred)
            assert label.shape[0] == pred.shape[0], (label.shape[0], pred.shape[0])
            prob = pred[numpy.arange(label.shape[0]), numpy.int64(label)]
            cross_entropy = (-numpy.log(prob + self.eps)).sum()
            self._add(cross_entropy, label.shape[0])


@register
@alias('nll_loss')
class NegativeLogLikelihood(CrossEntropy):
    """Negative log-likelihood: the same numbers as CrossEntropy, named ``nll-loss``."""

    def __init__(self, eps=1e-12, name='nll-loss', output_names=None, label_names=None):
        super(NegativeLogLikelihood, self).__init__(eps=eps, name=name,
                                                    output_names=output_names,
                                                    label_names=label_names)


@register
@alias('pearsonr')
class PearsonCorrelation(EvalMetric):
    """Pearson correlation of the flattened label and prediction (in float64).

    ``average='macro'`` (MXNet's default): the correlation of each update array pair,
    averaged over updates.  ``average='micro'``: one correlation over everything seen since
    the last reset, from running means, sums of squares and the co-moment.
    """

    def __init__(self, name='pearsonr', output_names=None, label_names=None, average='macro'):
        self.average = average
        super(PearsonCorrelation, self).__init__(name, output_names=output_names,
                                                 label_names=label_names,
                                                 has_global_stats=True)

    def reset(self):
        super(PearsonCorrelation, self).reset()
        # running statistics of the micro average: count, means, sums of squared deviations
        # of label and prediction, and the co-moment sum((l - mean_l) * (p - mean_p))
        self._n = 0
        self._mean_l = self._mean_p = 0.0
        self._ss_l = self._ss_p = 0.0
        self._co = 0.0

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            check_label_shapes(label, pred, False, True)
            label = _np(label).ravel().astype(numpy.float64)
            pred = _np(pred).ravel().astype(numpy.float64)
            if self.average == 'macro':
                self._add(numpy.corrcoef(pred, label)[0, 1], 1)
                continue
            self.num_inst += 1
            self.global_num_inst += 1
            # MXNet's order: the label's running mean moves first, the co-moment uses the new
            # label mean and the old prediction mean, then the prediction's statistics move
            n = self._n + len(label)
            d_l = label - self._mean_l
            self._mean_l += numpy.sum(d_l / n)
            self._ss_l += numpy.sum(d_l * (label - self._mean_l))
            self._co += numpy.sum((label - self._mean_l) * (pred - self._mean_p))
            d_p = pred - self._mean_p
            self._mean_p += numpy.sum(d_p / n)
            self._ss_p += numpy.sum(d_p * (pred - self._mean_p))
            self._n = n

    def get(self):
        if self.num_inst == 0:
            return (self.name, float('nan'))
        if self.average == 'macro':
            return (self.name, self.sum_metric / self.num_inst)
        n = self._n
        return (self.name, self._co / ((n - 1) * numpy.sqrt(self._ss_p / (n - 1))
                                       * numpy.sqrt(self._ss_l / (n - 1))))


class _BinaryCounts(object):
    """Confusion counts of a binary classifier (prediction = argmax over axis 1, positive
    class 1), local (since the last ``reset_local``) and global."""

    _FIELDS = ("tp", "fp", "fn", "tn")

    def __init__(self):
        self.reset()

    def reset(self):
        self.local = dict.fromkeys(self._FIELDS, 0)
        self.glob = dict.fromkeys(self._FIELDS, 0)

    def reset_local(self):
        self.local = dict.fromkeys(self._FIELDS, 0)

    def update(self, metric_name, label, pred):
        pred = _np(pred)
        label = _np(label).astype('int32')
        pred_label = numpy.argmax(pred, axis=1)
        check_label_shapes(label, pred)
        if len(numpy.unique(label)) > 2:
            raise ValueError("%s currently only supports binary classification." % metric_name)
        pred_pos = pred_label == 1
        label_pos = label == 1
        counts = {"tp": int(numpy.sum(pred_pos & label_pos)),
                  "fp": int(numpy.sum(pred_pos & ~label_pos)),
                  "fn": int(numpy.sum(~pred_pos & label_pos)),
                  "tn": int(numpy.sum(~pred_pos & ~label_pos))}
        for k, v in counts.items():
            self.local[k] += v
            self.glob[k] += v

    @staticmethod
    def total(c):
        return c["tp"] + c["fp"] + c["fn"] + c["tn"]

    @staticmethod
    def fscore(c):
        precision = float(c["tp"]) / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] > 0 else 0.
        recall = float(c["tp"]) / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] > 0 else 0.
        if precision + recall > 0:
            return 2 * precision * recall / (precision + recall)
        return 0.

    @staticmethod
    def mcc(c):
        if not _BinaryCounts.total(c):
            return 0.
        tp, fp, fn, tn = (float(c[k]) for k in ("tp", "fp", "fn", "tn"))
        denom = 1.
        for t in (tp + fp, tp + fn, tn + fp, tn + fn):
            if t != 0.:       # MXNet leaves empty margins out of the product
                denom *= t
        return (tp * tn - fp * fn) / math.sqrt(denom)


class _BinaryMetric(EvalMetric):
    """F1 / MCC.  ``average='macro'``: the score of each ``update`` call, averaged over calls
    (the counts restart after every call, as in MXNet 1.x).  ``average='micro'``: one score
    over all counts since the last reset, weighted by the number of samples."""

    _score = None

    def __init__(self, name, output_names=None, label_names=None, average="macro"):
        self.average = average
        self._counts = _BinaryCounts()
        super(_BinaryMetric, self).__init__(name, output_names=output_names,
                                            label_names=label_names, has_global_stats=True)

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            self._counts.update(type(self).__name__, label, pred)
        score = type(self)._score
        loc, glob = self._counts.local, self._counts.glob
        if self.average == "macro":
            self.sum_metric += score(loc)
            self.global_sum_metric += score(glob)
            self.num_inst += 1
            self.global_num_inst += 1
            self._counts.reset()
        else:
            self.sum_metric = score(loc) * _BinaryCounts.total(loc)
            self.global_sum_metric = score(glob) * _BinaryCounts.total(glob)
            self.num_inst = _BinaryCounts.total(loc)
            self.global_num_inst = _BinaryCounts.total(glob)

    def reset(self):
        super(_BinaryMetric, self).reset()
        self._counts.reset()

    def reset_local(self):
        super(_BinaryMetric, self).reset_local()
        self._counts.reset_local()


@register
class F1(_BinaryMetric):
    """F1 score of a binary classifier (predictions ``(N, 2)``, labels 0/1).

    >>> m = F1(); m.update([mx.nd.array([0, 1, 1])], [mx.nd.array([[0.3, 0.7], [0, 1.], [0.4, 0.6]])])
    >>> round(m.get()[1], 4)
    0.8
    """

    _score = staticmethod(_BinaryCounts.fscore)

    def __init__(self, name='f1', output_names=None, label_names=None, average="macro"):
        super(F1, self).__init__(name, output_names, label_names, average)


@register
class MCC(_BinaryMetric):
    """Matthews correlation coefficient of a binary classifier."""

    _score = staticmethod(_BinaryCounts.mcc)

    def __init__(self, name='mcc', output_names=None, label_names=None, average="macro"):
        super(MCC, self).__init__(name, output_names, label_names, average)


@register
class PCC(EvalMetric):
    """Multiclass Matthews correlation (Gorodkin's R_K) from a confusion matrix that grows
    with the largest class seen; NaN while a margin of the matrix is constant."""

    def __init__(self, name='pcc', output_names=None, label_names=None, has_global_stats=True):
        self.k = 2
        super(PCC, self).__init__(name, output_names=output_names, label_names=label_names,
                                  has_global_stats=has_global_stats)

    @staticmethod
    def _rk(cm):
        n = cm.sum()
        x = cm.sum(axis=1)
        y = cm.sum(axis=0)
        cov_xx = numpy.sum(x * (n - x))
        cov_yy = numpy.sum(y * (n - y))
        if cov_xx == 0 or cov_yy == 0:
            return float('nan')
        cov_xy = numpy.sum(cm.diagonal() * n - x * y)
        return cov_xy / (cov_xx * cov_yy) ** 0.5

    def update(self, labels, preds):
        labels, preds = check_label_shapes(labels, preds, True)
        for label, pred in zip(labels, preds):
            label = _np(label).astype('int32')
            pred = _np(pred)
            pred = pred.argmax(axis=1) if pred.shape != label.shape else pred.astype('int32')
            n = int(max(pred.max(), label.max()))
            if n >= self.k:
                grow = n + 1 - self.k
                self._lcm = numpy.pad(self._lcm, ((0, grow), (0, grow)))
                self._gcm = numpy.pad(self._gcm, ((0, grow), (0, grow)))
                self.k += grow
            batch = numpy.zeros((self.k, self.k))
            numpy.add.at(batch, (pred.ravel(), label.ravel()), 1)
            self._lcm += batch
            self._gcm += batch
        self.num_inst += 1
        self.global_num_inst += 1

    # sum_metric is derived from the confusion matrix, so get()'s division gives R_K
    @property
    def sum_metric(self):
        return self._rk(self._lcm) * self.num_inst

    @sum_metric.setter
    def sum_metric(self, value):
        pass

    @property
    def global_sum_metric(self):
        return self._rk(self._gcm) * self.global_num_inst

    @global_sum_metric.setter
    def global_sum_metric(self, value):
        pass

    def reset(self):
        self.global_num_inst = 0
        self._gcm = numpy.zeros((self.k, self.k))
        self.reset_local()

    def reset_local(self):
        self.num_inst = 0
        self._lcm = numpy.zeros((self.k, self.k))


@register
class Perplexity(EvalMetric):
    """``exp(-sum(log p[label]) / n)`` over all positions; labels equal to ``ignore_label``
    count neither in the sum nor in ``n``.  Probabilities are clipped below at 1e-10."""

    def __init__(self, ignore_label, axis=-1, name='perplexity', output_names=None,
                 label_names=None):
        super(Perplexity, self).__init__(name, ignore_label=ignore_label,
                                         output_names=output_names, label_names=label_names,
                                         has_global_stats=True)
        self.ignore_label = ignore_label
        self.axis = axis

    def update(self, labels, preds):
        from . import ndarray as nd
        assert len(labels) == len(preds)
        loss = 0.
        num = 0
        for label, pred in zip(labels, preds):
            label, pred = _nd(label), _nd(pred)
            assert label.size == pred.size / pred.shape[-1], \
                "shape mismatch: %s vs. %s" % (label.shape, pred.shape)
            label = label.reshape((label.size,))
            # the same array ops as MXNet (pick refuses a pred of more than 2 dims here, as
            # it does there), so the float32 sums agree
            pred = nd.pick(pred, label.astype(dtype='int32'), axis=self.axis)
            if self.ignore_label is not None:
                ignore = (label == self.ignore_label).astype(pred.dtype)
                num -= nd.sum(ignore).asscalar()
                pred = pred * (1 - ignore) + ignore
            loss -= nd.sum(nd.log(nd.maximum(1e-10, pred))).asscalar()
            num += pred.size
        self._add(loss, num)

    def get(self):
        if self.num_inst == 0:
            return (self.name, float('nan'))
        return (self.name, math.exp(self.sum_metric / self.num_inst))

    def get_global(self):
        if self.global_num_inst == 0:
            return (self.name, float('nan'))
        return (self.name, math.exp(self.global_sum_metric / self.global_num_inst))


@register
class Loss(EvalMetric):
    """The mean of the given losses (labels are ignored): ``sum(pred) / pred.size``."""

    def __init__(self, name='loss', output_names=None, label_names=None):
        super(Loss, self).__init__(name, output_names=output_names, label_names=label_names,
                                   has_global_stats=True)

    def update(self, _, preds):
        if isinstance(preds, (NDArray, numpy.ndarray)):
            preds = [preds]
        for pred in preds:
            p = _np(pred)
            self._add(p.sum(), p.size)


@register
class CustomMetric(EvalMetric):
    """A metric from ``feval(label, pred)`` on NumPy arrays, returning a value or a
    ``(sum_metric, num_inst)`` tuple."""

    def __init__(self, feval, name=None, allow_extra_outputs=False, output_names=None,
                 label_names=None):
        if name is None:
            name = feval.__name__
            if name.find('<') != -1:
                name = 'custom(%s)' % name
        super(CustomMetric, self).__init__(name, feval=feval,
                                           allow_extra_outputs=allow_extra_outputs,
                                           output_names=output_names, label_names=label_names,
                                           has_global_stats=True)
        self._feval = feval
        self._allow_extra_outputs = allow_extra_outputs

    def update(self, labels, preds):
        if not self._allow_extra_outputs:
            labels, preds = check_label_shapes(labels, preds, True)
        elif isinstance(labels, (NDArray, numpy.ndarray)) or \
                isinstance(preds, (NDArray, numpy.ndarray)):
            labels, preds = check_label_shapes([labels], [preds], True)
        for pred, label in zip(preds, labels):
            reval = self._feval(numpy.array(_np(label)), numpy.array(_np(pred)))
            if isinstance(reval, tuple):
                (sum_metric, num_inst) = reval
                self._add(sum_metric, num_inst)
            else:
                self._add(reval, 1)

    def get_config(self):
        raise NotImplementedError("CustomMetric cannot be serialized")


def np(numpy_feval, name=None, allow_extra_outputs=False):  # pylint: disable=invalid-name
    """A CustomMetric from a function of NumPy ``(label, pred)`` returning a float."""
    def feval(label, pred):
        return numpy_feval(label, pred)
    feval.__name__ = numpy_feval.__name__
    return CustomMetric(feval, name, allow_extra_outputs)
