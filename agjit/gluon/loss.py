"""``mx.gluon.loss``: MXNet 1.9.1's loss blocks.

Every loss is a :class:`HybridBlock` whose ``hybrid_forward(F, pred, label, ...)`` uses only
functions that exist under the same name in ``mx.nd`` and ``mx.sym``, so a loss runs eagerly,
hybridized (through ``mx.jit``) and as a Symbol alike.

Note: loss-reductions
    As in MXNet 1.9.1, most losses return one value per sample: the elementwise loss is
    multiplied by ``sample_weight`` (broadcast) and by the scalar ``weight``, then averaged
    with ``mean(loss, axis=batch_axis, exclude=True)`` -- over every axis except
    ``batch_axis``.  The exceptions are MXNet's own: KLDivLoss and TripletLoss *sum* over the
    non-batch axes, CosineEmbeddingLoss returns (N, 1) without a reduction, CTCLoss returns
    (N,) from the op, and PoissonNLLLoss returns the mean over everything (shape (1,)).
    The label is reshaped to pred's shape first (``_reshape_like``), so a (N,) label works for
    a (N, 1) prediction.
"""
import numpy as np

from .. import ndarray
from .block import HybridBlock

__all__ = ["Loss", "L2Loss", "L1Loss", "SigmoidBinaryCrossEntropyLoss", "SigmoidBCELoss",
           "SoftmaxCrossEntropyLoss", "SoftmaxCELoss", "KLDivLoss", "CTCLoss", "HuberLoss",
           "HingeLoss", "SquaredHingeLoss", "LogisticLoss", "TripletLoss", "PoissonNLLLoss",
           "CosineEmbeddingLoss", "SDMLLoss"]

_numeric_types = (float, int, np.generic)


def _apply_weighting(F, loss, weight=None, sample_weight=None):
    """``loss * sample_weight`` (broadcast) then ``* weight`` (a Python number)."""
    if sample_weight is not None:
        loss = F.broadcast_mul(loss, sample_weight)
    if weight is not None:
        assert isinstance(weight, _numeric_types), "weight must be a number"
        loss = loss * weight
    return loss


def _reshape_like(F, x, y):
    """``x`` reshaped to ``y``'s shape (eagerly by value, symbolically with reshape_like)."""
    if F is ndarray:
        return x.reshape(y.shape)
    return F.reshape_like(x, y)


def _batch_mean(F, loss, batch_axis):
    return F.mean(loss, axis=batch_axis, exclude=True)


class Loss(HybridBlock):
    """Base class of the losses.

    Parameters
    ----------
    weight : float or None
        Global scalar weight of the loss.
    batch_axis : int
        The axis that holds the samples; the per-sample loss reduces every other axis.
    """

    def __init__(self, weight, batch_axis, **kwargs):
        super(Loss, self).__init__(**kwargs)
        self._weight = weight
        self._batch_axis = batch_axis

    def __repr__(self):
        return "%s(batch_axis=%s, w=%s)" % (self.__class__.__name__, self._batch_axis, self._weight)

    def hybrid_forward(self, F, x, *args, **kwargs):
        raise NotImplementedError


class L2Loss(Loss):
    r"""Half the squared error: :math:`\frac{w}{2} (label - pred)^2`, averaged per sample.

    >>> L2Loss()(mx.nd.array([[1., 2.]]), mx.nd.array([[0., 0.]]))   # [1.25]
    """

    def __init__(self, weight=1., batch_axis=0, **kwargs):
        super(L2Loss, self).__init__(weight, batch_axis, **kwargs)

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = _reshape_like(F, label, pred)
        loss = F.square(label - pred)
        loss = _apply_weighting(F, loss, self._weight / 2, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class L1Loss(Loss):
    r"""Absolute error :math:`|label - pred|`, averaged per sample."""

    def __init__(self, weight=None, batch_axis=0, **kwargs):
        super(L1Loss, self).__init__(weight, batch_axis, **kwargs)

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = _reshape_like(F, label, pred)
        loss = F.abs(label - pred)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class SigmoidBinaryCrossEntropyLoss(Loss):
    r"""Binary cross-entropy of a sigmoid output against 0/1 labels.

    With ``from_sigmoid=False`` (default) ``pred`` is a logit and the numerically stable form
    :math:`\max(x, 0) - x z + \log(1 + e^{-|x|})` is used; with ``from_sigmoid=True`` ``pred``
    is a probability and :math:`-(z \log(p + 10^{-12}) + (1 - z) \log(1 - p + 10^{-12}))`.
    ``pos_weight`` (4th call argument) scales the positive term.
    """

    def __init__(self, from_sigmoid=False, weight=None, batch_axis=0, **kwargs):
        super(SigmoidBinaryCrossEntropyLoss, self).__init__(weight, batch_axis, **kwargs)
        self._from_sigmoid = from_sigmoid

    def hybrid_forward(self, F, pred, label, sample_weight=None, pos_weight=None):
        label = _reshape_like(F, label, pred)
        if not self._from_sigmoid:
            softplus_neg_abs = F.Activation(-F.abs(pred), act_type="softrelu")
            if pos_weight is None:
                loss = F.relu(pred) - pred * label + softplus_neg_abs
            else:
                # -(pw*z*log sigmoid(x) + (1-z)*log(1-sigmoid(x))), with
                # -log sigmoid(x) = softplus(-|x|) + relu(-x)
                log_weight = 1 + F.broadcast_mul(pos_weight - 1, label)
                loss = pred - pred * label + log_weight * (softplus_neg_abs + F.relu(-pred))
        else:
            eps = 1e-12
            if pos_weight is None:
                loss = -(F.log(pred + eps) * label + F.log(1. - pred + eps) * (1. - label))
            else:
                loss = -(F.broadcast_mul(F.log(pred + eps) * label, pos_weight)
                         + F.log(1. - pred + eps) * (1. - label))
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


SigmoidBCELoss = SigmoidBinaryCrossEntropyLoss


class SoftmaxCrossEntropyLoss(Loss):
    r"""Softmax cross-entropy along ``axis``.

    ``sparse_label=True``: ``label`` holds class indices and the loss is
    ``-log_softmax(pred)[label]``; otherwise ``label`` is a distribution of pred's shape and
    the loss is ``-sum(label * log_softmax(pred), axis)``.  ``from_logits=True`` takes
    ``pred`` as log-probabilities already.  Averaged per sample over the remaining axes.
    """

    def __init__(self, axis=-1, sparse_label=True, from_logits=False, weight=None,
                 batch_axis=0, **kwargs):
        super(SoftmaxCrossEntropyLoss, self).__init__(weight, batch_axis, **kwargs)
        self._axis = axis
        self._sparse_label = sparse_label
        self._from_logits = from_logits

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        if not self._from_logits:
            pred = F.log_softmax(pred, axis=self._axis)
        if self._sparse_label:
            # keepdims only where it matters: a sample weight broadcasts against the kept
            # axis, and a picked axis other than the last (after the batch axis 0) would
            # move the batch axis.  Without it the per-sample mean of a 2-D prediction's
            # loss reduces nothing, so a hybridized step has neither it nor its gradient
            # (block._GraphRunner); the numbers are the same
            keep = sample_weight is not None or self._axis != -1 or self._batch_axis != 0
            loss = -F.pick(pred, label, axis=self._axis, keepdims=keep)
        else:
            label = _reshape_like(F, label, pred)
            loss = -F.sum(pred * label, axis=self._axis, keepdims=True)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


SoftmaxCELoss = SoftmaxCrossEntropyLoss


class KLDivLoss(Loss):
    r"""Kullback-Leibler divergence :math:`label (\log(label + 10^{-12}) - pred)`, *summed*
    over the non-batch axes (MXNet 1.9.1).  ``from_logits=True`` (default) expects ``pred`` as
    log-probabilities; ``False`` applies ``log_softmax(pred, axis)`` first."""

    def __init__(self, from_logits=True, axis=-1, weight=None, batch_axis=0, **kwargs):
        super(KLDivLoss, self).__init__(weight, batch_axis, **kwargs)
        self._from_logits = from_logits
        self._axis = axis

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        if not self._from_logits:
            pred = F.log_softmax(pred, axis=self._axis)
        loss = label * (F.log(label + 1e-12) - pred)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return F.sum(loss, axis=self._batch_axis, exclude=True)


class CTCLoss(Loss):
    r"""Connectionist Temporal Classification loss (the ``CTCLoss`` op, blank = last class).

    Parameters
    ----------
    layout : {'NTC', 'TNC'}
        Layout of ``pred``.
    label_layout : {'NT', 'TN'}
        Layout of ``label`` (padded with -1); its 'N' sets the batch axis.

    Call with ``(pred, label, pred_lengths=None, label_lengths=None, sample_weight=None)``;
    returns one value per sample, shape (N,).
    """

    def __init__(self, layout="NTC", label_layout="NT", weight=None, **kwargs):
        assert layout in ["NTC", "TNC"], \
            "Only 'NTC' and 'TNC' layouts for pred are supported. Got: %s" % layout
        assert label_layout in ["NT", "TN"], \
            "Only 'NT' and 'TN' layouts for label are supported. Got: %s" % label_layout
        self._layout = layout
        self._label_layout = label_layout
        batch_axis = label_layout.find("N")
        super(CTCLoss, self).__init__(weight, batch_axis, **kwargs)

    def hybrid_forward(self, F, pred, label, pred_lengths=None, label_lengths=None,
                       sample_weight=None):
        if self._layout == "NTC":
            pred = F.swapaxes(pred, 0, 1)
        if self._batch_axis == 1:
            label = F.swapaxes(label, 0, 1)
        lengths = {}
        if pred_lengths is not None:
            lengths["data_lengths"] = pred_lengths
        if label_lengths is not None:
            lengths["label_lengths"] = label_lengths
        loss = F.CTCLoss(pred, label, use_data_lengths=pred_lengths is not None,
                         use_label_lengths=label_lengths is not None, blank_label="last",
                         **lengths)
        return _apply_weighting(F, loss, self._weight, sample_weight)


class HuberLoss(Loss):
    r"""Smoothed L1: :math:`|d| - \rho/2` where :math:`|d| > \rho`, else
    :math:`d^2 / (2\rho)`, with :math:`d = label - pred`; averaged per sample."""

    def __init__(self, rho=1, weight=None, batch_axis=0, **kwargs):
        super(HuberLoss, self).__init__(weight, batch_axis, **kwargs)
        self._rho = rho

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = _reshape_like(F, label, pred)
        loss = F.abs(label - pred)
        loss = F.where(loss > self._rho, loss - 0.5 * self._rho,
                       (0.5 / self._rho) * F.square(loss))
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class HingeLoss(Loss):
    r"""Hinge loss :math:`\max(0, margin - pred \cdot label)` for labels in {-1, 1}."""

    def __init__(self, margin=1, weight=None, batch_axis=0, **kwargs):
        super(HingeLoss, self).__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = _reshape_like(F, label, pred)
        loss = F.relu(self._margin - pred * label)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class SquaredHingeLoss(Loss):
    r"""Squared hinge loss :math:`\max(0, margin - pred \cdot label)^2`."""

    def __init__(self, margin=1, weight=None, batch_axis=0, **kwargs):
        super(SquaredHingeLoss, self).__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = _reshape_like(F, label, pred)
        loss = F.square(F.relu(self._margin - pred * label))
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class LogisticLoss(Loss):
    r"""Logistic loss :math:`\log(1 + e^{-pred \cdot label})` (stable form).

    ``label_format='signed'`` (labels -1/1, mapped to 0/1) or ``'binary'`` (labels 0/1).
    """

    def __init__(self, weight=None, batch_axis=0, label_format="signed", **kwargs):
        super(LogisticLoss, self).__init__(weight, batch_axis, **kwargs)
        self._label_format = label_format
        if self._label_format not in ["signed", "binary"]:
            raise ValueError("label_format can only be signed or binary, recieved %s."
                             % label_format)

    def hybrid_forward(self, F, pred, label, sample_weight=None):
        label = _reshape_like(F, label, pred)
        if self._label_format == "signed":
            label = (label + 1.0) / 2.0
        loss = F.relu(pred) - pred * label + F.Activation(-F.abs(pred), act_type="softrelu")
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return _batch_mean(F, loss, self._batch_axis)


class TripletLoss(Loss):
    r"""Triplet loss :math:`\max(0, \sum (pos - pred)^2 - \sum (neg - pred)^2 + margin)`,
    summed over the non-batch axes.  Called as ``(pred, positive, negative)``."""

    def __init__(self, margin=1, weight=None, batch_axis=0, **kwargs):
        super(TripletLoss, self).__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F, pred, positive, negative):
        positive = _reshape_like(F, positive, pred)
        negative = _reshape_like(F, negative, pred)
        loss = F.sum(F.square(positive - pred) - F.square(negative - pred),
                     axis=self._batch_axis, exclude=True)
        loss = F.relu(loss + self._margin)
        return _apply_weighting(F, loss, self._weight, None)


class PoissonNLLLoss(Loss):
    r"""Negative log-likelihood of a Poisson target: ``exp(pred) - target * pred`` with
    ``from_logits=True`` (default), else ``pred - target * log(pred + epsilon)``;
    ``compute_full`` adds Stirling's term for targets > 1.  Returns the mean over *all*
    elements, shape (1,), as MXNet 1.9.1."""

    def __init__(self, weight=None, from_logits=True, batch_axis=0, compute_full=False, **kwargs):
        super(PoissonNLLLoss, self).__init__(weight, batch_axis, **kwargs)
        self._from_logits = from_logits
        self._compute_full = compute_full

    def hybrid_forward(self, F, pred, target, sample_weight=None, epsilon=1e-08):
        target = _reshape_like(F, target, pred)
        if self._from_logits:
            loss = F.exp(pred) - target * pred
        else:
            loss = pred - target * F.log(pred + epsilon)
        if self._compute_full:
            stirling = target * F.log(target) - target + 0.5 * F.log(2 * target * np.pi)
            loss = loss + stirling * (target > 1)
        loss = _apply_weighting(F, loss, self._weight, sample_weight)
        return F.mean(loss)


class CosineEmbeddingLoss(Loss):
    r"""Cosine embedding loss of two inputs: ``1 - cos(x1, x2)`` where label is 1 and
    ``max(0, cos(x1, x2) - margin)`` where label is -1; cosine along the last axis, returned
    as (N, 1) without a reduction (MXNet 1.9.1)."""

    def __init__(self, weight=None, batch_axis=0, margin=0, **kwargs):
        super(CosineEmbeddingLoss, self).__init__(weight, batch_axis, **kwargs)
        self._margin = margin

    def hybrid_forward(self, F, input1, input2, label, sample_weight=None):
        input1 = _reshape_like(F, input1, input2)
        label = label.reshape((-1, 1))
        cos_sim = self._cosine_similarity(F, input1, input2)
        y_1 = label == 1
        y_minus_1 = label == -1
        cos_sim_a = (1 - cos_sim) * y_1
        # max(0, v): relu has the same value and, at the tie v == 0, the same zero gradient
        cos_sim_b = F.relu(y_minus_1 * (cos_sim - self._margin))
        loss = cos_sim_a + cos_sim_b
        return _apply_weighting(F, loss, self._weight, sample_weight)

    def _cosine_similarity(self, F, x, y, axis=-1):
        x_norm = F.norm(x, axis=axis).reshape((-1, 1))
        y_norm = F.norm(y, axis=axis).reshape((-1, 1))
        x_dot_y = F.sum(x * y, axis=axis).reshape((-1, 1))
        return x_dot_y / F.maximum(x_norm * y_norm, 1e-12)


class SDMLLoss(Loss):
    r"""Smoothed Deep Metric Learning loss over a batch of paired embeddings ``(x1, x2)``
    (N, D): row i of x1 should be nearest to row i of x2.  The squared distances of all pairs
    go through ``log_softmax(-d)`` and a KLDivLoss against smoothed identity labels
    (``1 - smoothing_parameter`` on the diagonal).  Needs concrete shapes (eager or
    hybridized through mx.jit), as in MXNet."""

    def __init__(self, smoothing_parameter=0.3, weight=1., batch_axis=0, **kwargs):
        super(SDMLLoss, self).__init__(weight, batch_axis, **kwargs)
        self.kl_loss = KLDivLoss(from_logits=True)
        self.smoothing_parameter = smoothing_parameter

    def _compute_distances(self, x1, x2):
        assert x1.shape == x2.shape
        batch_size, dim = x1.shape
        a = x1.expand_dims(1).broadcast_to([batch_size, batch_size, dim])
        b = x2.expand_dims(0).broadcast_to([batch_size, batch_size, dim])
        return ((a - b) ** 2).sum(axis=2)

    def _compute_labels(self, F, batch_size, dtype=np.float32):
        gold = np.eye(batch_size)
        s = self.smoothing_parameter
        return ndarray.array(gold * (1 - s) + (1 - gold) * s / (batch_size - 1), dtype=dtype)

    def hybrid_forward(self, F, x1, x2):
        labels = self._compute_labels(F, x1.shape[0], x1.dtype)
        distances = self._compute_distances(x1, x2)
        log_probabilities = F.log_softmax(-distances, axis=1)
        return self.kl_loss(log_probabilities, labels)
