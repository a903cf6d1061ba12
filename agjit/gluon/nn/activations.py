"""Activation layers (MXNet 1.9.1's ``gluon.nn.activations``): Activation, LeakyReLU, PReLU,
ELU, SELU, Swish, GELU.

Each layer is one registry op call in ``hybrid_forward`` (``Activation`` or ``LeakyReLU`` with
the matching ``act_type``; Swish is ``x * sigmoid(beta x)``), so hybridized and exported graphs
hold the same nodes and attrs as MXNet's.  At x = 0 every derivative is the x <= 0 branch's.
"""
from ... import initializer
from ..block import HybridBlock

__all__ = ["Activation", "LeakyReLU", "PReLU", "ELU", "SELU", "Swish", "GELU"]


class Activation(HybridBlock):
    """``Activation(act_type)``: relu, sigmoid, tanh, softrelu or softsign.  The block's
    name uses the activation as alias (``relu0_``)."""

    def __init__(self, activation, **kwargs):
        # the alias (and so the prefix) is the activation name: set it before Block.__init__
        self._act_type = activation
        super(Activation, self).__init__(**kwargs)

    def _alias(self):
        return self._act_type

    def hybrid_forward(self, F, x):
        return F.Activation(x, act_type=self._act_type, name='fwd')

    def __repr__(self):
        return '%s(%s)' % (self.__class__.__name__, self._act_type)


class LeakyReLU(HybridBlock):
    """``x`` for x > 0, ``alpha * x`` otherwise (alpha >= 0)."""

    def __init__(self, alpha, **kwargs):
        assert alpha >= 0, "Slope coefficient for LeakyReLU must be no less than 0."
        super(LeakyReLU, self).__init__(**kwargs)
        self._alpha = alpha

    def hybrid_forward(self, F, x):
        return F.LeakyReLU(x, act_type='leaky', slope=self._alpha, name='fwd')

    def __repr__(self):
        return '%s(%s)' % (self.__class__.__name__, self._alpha)


class PReLU(HybridBlock):
    """Leaky ReLU with a learned slope ``alpha`` of shape ``(in_channels,)`` (1: one slope
    for everything; C: one per channel of axis 1), initialised to 0.25 by default."""

    def __init__(self, alpha_initializer=initializer.Constant(0.25), in_channels=1, **kwargs):
        super(PReLU, self).__init__(**kwargs)
        with self.name_scope():
            self.alpha = self.params.get('alpha', shape=(in_channels,), init=alpha_initializer)

    def hybrid_forward(self, F, x, alpha):
        return F.LeakyReLU(x, gamma=alpha, act_type='prelu', name='fwd')


class ELU(HybridBlock):
    """``x`` for x > 0, ``alpha * (exp(x) - 1)`` otherwise."""

    def __init__(self, alpha=1.0, **kwargs):
        super(ELU, self).__init__(**kwargs)
        self._alpha = alpha

    def hybrid_forward(self, F, x):
        # MXNet's ELU passes no name: the node gets an automatic one
        return F.LeakyReLU(x, act_type='elu', slope=self._alpha)


class SELU(HybridBlock):
    """Scaled ELU with the self-normalising constants (lambda 1.0507, alpha 1.6733)."""

    def hybrid_forward(self, F, x):
        return F.LeakyReLU(x, act_type='selu', name='fwd')


class GELU(HybridBlock):
    """Gaussian error linear unit, erf form: ``0.5 x (1 + erf(x / sqrt(2)))``."""

    def hybrid_forward(self, F, x):
        return F.LeakyReLU(x, act_type='gelu', name='fwd')


class Swish(HybridBlock):
    """``x * sigmoid(beta * x)``."""

    def __init__(self, beta=1.0, **kwargs):
        super(Swish, self).__init__(**kwargs)
        self._beta = beta

    def hybrid_forward(self, F, x):
        return x * F.sigmoid(self._beta * x, name='fwd')
