"""Basic layers (MXNet 1.9.1's ``gluon.nn.basic_layers``): Dense, Dropout, BatchNorm,
BatchNormReLU, Embedding, Flatten, InstanceNorm, LayerNorm, GroupNorm; the containers
(Sequential, HybridSequential, Lambda, HybridLambda) live in ``containers.py`` and are
re-exported here as in MXNet.

Note: layer-graphs
    Every layer's ``hybrid_forward`` makes the registry op call MXNet's layer makes, with the
    same keyword arguments (so the exported graph has MXNet's op names and attr key sets, the
    values written with ``str()``) and the same ``name='fwd'`` where MXNet names the node.
    Parameters with unknown dims (0) are filled by the op's shape inference on the first call
    (deferred initialisation, done by HybridBlock).
"""
import numpy as np

from ..block import HybridBlock
from .activations import Activation
from .containers import Sequential, HybridSequential, Lambda, HybridLambda

__all__ = ['Sequential', 'HybridSequential', 'Dense', 'Dropout', 'Embedding',
           'BatchNorm', 'BatchNormReLU', 'InstanceNorm', 'LayerNorm', 'GroupNorm',
           'Flatten', 'Lambda', 'HybridLambda']


def _kwargs_repr(kwargs):
    return ', '.join('%s=%r' % (k, v) for k, v in kwargs.items())


class Dense(HybridBlock):
    """Fully connected layer ``activation(dot(x, weight.T) + bias)``.

    ``flatten=True`` collapses all axes but the first (weight ``(units, prod(rest))``);
    ``flatten=False`` acts on the last axis.  ``in_units=0`` defers the weight's second dim
    to the first call.
    """

    def __init__(self, units, activation=None, use_bias=True, flatten=True,
                 dtype='float32', weight_initializer=None, bias_initializer='zeros',
                 in_units=0, **kwargs):
        super(Dense, self).__init__(**kwargs)
        self._flatten = flatten
        with self.name_scope():
            self._units = units
            self._in_units = in_units
            self.weight = self.params.get('weight', shape=(units, in_units),
                                          init=weight_initializer, dtype=dtype,
                                          allow_deferred_init=True)
            if use_bias:
                self.bias = self.params.get('bias', shape=(units,), init=bias_initializer,
                                            dtype=dtype, allow_deferred_init=True)
            else:
                self.bias = None
            self.act = Activation(activation, prefix=activation + '_') \
                if activation is not None else None

    def hybrid_forward(self, F, x, weight, bias=None):
        out = F.FullyConnected(x, weight, bias, no_bias=bias is None, num_hidden=self._units,
                               flatten=self._flatten, name='fwd')
        if self.act is not None:
            out = self.act(out)
        return out

    def __repr__(self):
        shape = self.weight.shape
        return '{name}({inp} -> {out}, {act})'.format(
            name=self.__class__.__name__, inp=shape[1] if shape[1] else None, out=shape[0],
            act=self.act if self.act else 'linear')


class Dropout(HybridBlock):
    """Drops elements with probability ``rate`` while training (survivors scaled by
    ``1/(1-rate)``); ``axes`` share the mask along those axes.  Identity in predict mode."""

    def __init__(self, rate, axes=(), **kwargs):
        super(Dropout, self).__init__(**kwargs)
        self._rate = rate
        self._axes = axes

    def hybrid_forward(self, F, x):
        if self._rate > 0:
            return F.Dropout(x, p=self._rate, axes=self._axes, name='fwd', cudnn_off=False)
        return F.identity(x)

    def __repr__(self):
        return '{name}(p = {rate}, axes={axes})'.format(name=self.__class__.__name__,
                                                       rate=self._rate, axes=self._axes)


class _BatchNorm(HybridBlock):
    """Shared body of BatchNorm and BatchNormReLU."""

    def __init__(self, axis=1, momentum=0.9, epsilon=1e-5, center=True, scale=True,
                 use_global_stats=False, fuse_relu=False,
                 beta_initializer='zeros', gamma_initializer='ones',
                 running_mean_initializer='zeros', running_variance_initializer='ones',
                 in_channels=0, **kwargs):
        super(_BatchNorm, self).__init__(**kwargs)
        # the op's attrs, in MXNet's order (they are the exported attrs and the repr)
        self._kwargs = {'axis': axis, 'eps': epsilon, 'momentum': momentum,
                        'fix_gamma': not scale, 'use_global_stats': use_global_stats}
        self.fuse_relu = fuse_relu
        if in_channels != 0:
            self.in_channels = in_channels
        c = (in_channels,)
        self.gamma = self.params.get('gamma', grad_req='write' if scale else 'null', shape=c,
                                     init=gamma_initializer, allow_deferred_init=True,
                                     differentiable=scale)
        self.beta = self.params.get('beta', grad_req='write' if center else 'null', shape=c,
                                    init=beta_initializer, allow_deferred_init=True,
                                    differentiable=center)
        self.running_mean = self.params.get('running_mean', grad_req='null', shape=c,
                                            init=running_mean_initializer,
                                            allow_deferred_init=True, differentiable=False)
        self.running_var = self.params.get('running_var', grad_req='null', shape=c,
                                           init=running_variance_initializer,
                                           allow_deferred_init=True, differentiable=False)

    def cast(self, dtype):
        # as MXNet: BatchNorm keeps float32 statistics under float16
        if np.dtype(dtype).name == 'float16':
            dtype = 'float32'
        super(_BatchNorm, self).cast(dtype)

    def hybrid_forward(self, F, x, gamma, beta, running_mean, running_var):
        out = F.BatchNorm(x, gamma, beta, running_mean, running_var, name='fwd', **self._kwargs)
        if self.fuse_relu:
            # MXNet calls contrib.BatchNormWithReLU; agjit has no contrib op, so the same
            # numbers come from BatchNorm followed by relu
            out = F.relu(out)
        return out

    def __repr__(self):
        c = self.gamma.shape[0]
        return '{name}({content}, in_channels={c})'.format(
            name=self.__class__.__name__, content=_kwargs_repr(self._kwargs),
            c=c if c else None)


class BatchNorm(_BatchNorm):
    """Batch normalisation over every axis but ``axis``.

    Training (inside ``record()`` or ``train_mode()``) uses the batch mean and biased
    variance; prediction (or ``use_global_stats``) the running statistics, which MXNet
    updates in the backward pass: ``running = momentum * running + (1 - momentum) * batch``.
    ``scale=False`` fixes gamma at 1 (``fix_gamma``); ``center=False`` only freezes beta.
    """

    def __init__(self, axis=1, momentum=0.9, epsilon=1e-5, center=True, scale=True,
                 use_global_stats=False, beta_initializer='zeros', gamma_initializer='ones',
                 running_mean_initializer='zeros', running_variance_initializer='ones',
                 in_channels=0, **kwargs):
        super(BatchNorm, self).__init__(
            axis=axis, momentum=momentum, epsilon=epsilon, center=center, scale=scale,
            use_global_stats=use_global_stats, fuse_relu=False,
            beta_initializer=beta_initializer, gamma_initializer=gamma_initializer,
            running_mean_initializer=running_mean_initializer,
            running_variance_initializer=running_variance_initializer,
            in_channels=in_channels, **kwargs)


class BatchNormReLU(_BatchNorm):
    """BatchNorm followed by relu (MXNet's fused ``contrib.BatchNormWithReLU``)."""

    def __init__(self, axis=1, momentum=0.9, epsilon=1e-5, center=True, scale=True,
                 use_global_stats=False, beta_initializer='zeros', gamma_initializer='ones',
                 running_mean_initializer='zeros', running_variance_initializer='ones',
                 in_channels=0, **kwargs):
        super(BatchNormReLU, self).__init__(
            axis=axis, momentum=momentum, epsilon=epsilon, center=center, scale=scale,
            use_global_stats=use_global_stats, fuse_relu=True,
            beta_initializer=beta_initializer, gamma_initializer=gamma_initializer,
            running_mean_initializer=running_mean_initializer,
            running_variance_initializer=running_variance_initializer,
            in_channels=in_channels, **kwargs)


class Embedding(HybridBlock):
    """Row lookup ``weight[int(x)]``; output shape ``x.shape + (output_dim,)``.  The weight
    gradient is dense here even with ``sparse_grad=True`` (accepted; its grad_stype is
    recorded as row_sparse like MXNet's)."""

    def __init__(self, input_dim, output_dim, dtype='float32', weight_initializer=None,
                 sparse_grad=False, **kwargs):
        super(Embedding, self).__init__(**kwargs)
        grad_stype = 'row_sparse' if sparse_grad else 'default'
        self._kwargs = {'input_dim': input_dim, 'output_dim': output_dim, 'dtype': dtype,
                        'sparse_grad': sparse_grad}
        self.weight = self.params.get('weight', shape=(input_dim, output_dim),
                                      init=weight_initializer, dtype=dtype,
                                      allow_deferred_init=True, grad_stype=grad_stype)

    def hybrid_forward(self, F, x, weight):
        return F.Embedding(x, weight, name='fwd', **self._kwargs)

    def __repr__(self):
        return '{block_name}({input_dim} -> {output_dim}, {dtype})'.format(
            block_name=self.__class__.__name__, **self._kwargs)


class Flatten(HybridBlock):
    """Collapses every axis but the first: ``(N, a, b, ...) -> (N, a*b*...)``; a 1-D input
    ``(n,)`` gives ``(n, 1)``."""

    def hybrid_forward(self, F, x):
        return F.flatten(x)

    def __repr__(self):
        return self.__class__.__name__


class InstanceNorm(HybridBlock):
    """Instance normalisation: per sample and channel over the spatial axes, then
    ``gamma * xhat + beta`` (both ``(C,)``).  ``scale=False`` (the default) only freezes
    gamma (grad_req 'null'); the stored gamma is still applied, as in MXNet."""

    def __init__(self, axis=1, epsilon=1e-5, center=True, scale=False,
                 beta_initializer='zeros', gamma_initializer='ones', in_channels=0, **kwargs):
        super(InstanceNorm, self).__init__(**kwargs)
        self._kwargs = {'eps': epsilon, 'axis': axis, 'center': center, 'scale': scale}
        self._axis = axis
        self._epsilon = epsilon
        self.gamma = self.params.get('gamma', grad_req='write' if scale else 'null',
                                     shape=(in_channels,), init=gamma_initializer,
                                     allow_deferred_init=True)
        self.beta = self.params.get('beta', grad_req='write' if center else 'null',
                                    shape=(in_channels,), init=beta_initializer,
                                    allow_deferred_init=True)

    def hybrid_forward(self, F, x, gamma, beta):
        if self._axis == 1:
            return F.InstanceNorm(x, gamma, beta, name='fwd', eps=self._epsilon)
        x = x.swapaxes(1, self._axis)
        return F.InstanceNorm(x, gamma, beta, name='fwd',
                              eps=self._epsilon).swapaxes(1, self._axis)

    def __repr__(self):
        return '{name}({content}, in_channels={c})'.format(
            name=self.__class__.__name__, content=_kwargs_repr(self._kwargs),
            c=self.gamma.shape[0])


class LayerNorm(HybridBlock):
    """Layer normalisation along ``axis`` (default -1), ``gamma``/``beta`` of that axis's
    size; eps 1e-5."""

    def __init__(self, axis=-1, epsilon=1e-5, center=True, scale=True,
                 beta_initializer='zeros', gamma_initializer='ones', in_channels=0,
                 prefix=None, params=None):
        super(LayerNorm, self).__init__(prefix=prefix, params=params)
        self._kwargs = {'eps': epsilon, 'axis': axis, 'center': center, 'scale': scale}
        self._axis = axis
        self._epsilon = epsilon
        self._center = center
        self._scale = scale
        self.gamma = self.params.get('gamma', grad_req='write' if scale else 'null',
                                     shape=(in_channels,), init=gamma_initializer,
                                     allow_deferred_init=True)
        self.beta = self.params.get('beta', grad_req='write' if center else 'null',
                                    shape=(in_channels,), init=beta_initializer,
                                    allow_deferred_init=True)

    def hybrid_forward(self, F, data, gamma, beta):
        return F.LayerNorm(data, gamma=gamma, beta=beta, axis=self._axis, eps=self._epsilon)

    def __repr__(self):
        return '{name}({content}, in_channels={c})'.format(
            name=self.__class__.__name__, content=_kwargs_repr(self._kwargs),
            c=self.gamma.shape[0])


class GroupNorm(HybridBlock):
    """Group normalisation: the C channels split into ``num_groups`` groups, each normalised
    per sample.  In MXNet 1.9.1 gamma/beta have shape ``(num_groups,)``: one scale and
    shift per group, not per channel."""

    def __init__(self, num_groups=1, epsilon=1e-5, center=True, scale=True,
                 beta_initializer='zeros', gamma_initializer='ones', prefix=None, params=None):
        super(GroupNorm, self).__init__(prefix=prefix, params=params)
        self._kwargs = {'eps': epsilon, 'num_groups': num_groups, 'center': center,
                        'scale': scale}
        self._num_groups = num_groups
        self._epsilon = epsilon
        self._center = center
        self._scale = scale
        self.gamma = self.params.get('gamma', grad_req='write' if scale else 'null',
                                     shape=(num_groups,), init=gamma_initializer,
                                     allow_deferred_init=True)
        self.beta = self.params.get('beta', grad_req='write' if center else 'null',
                                    shape=(num_groups,), init=beta_initializer,
                                    allow_deferred_init=True)

    def hybrid_forward(self, F, data, gamma, beta):
        return F.GroupNorm(data, gamma=gamma, beta=beta, num_groups=self._num_groups,
                           eps=self._epsilon)

    def __repr__(self):
        return '{name}({content})'.format(name=self.__class__.__name__,
                                          content=_kwargs_repr(self._kwargs))
