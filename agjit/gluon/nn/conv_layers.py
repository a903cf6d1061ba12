"""Convolution, pooling and padding layers (MXNet 1.9.1's ``gluon.nn.conv_layers``):
Conv1D/2D/3D, Conv1D/2D/3DTranspose, MaxPool/AvgPool 1-3D, GlobalMaxPool/GlobalAvgPool 1-3D,
ReflectionPad2D.

Note: conv-weight-shapes
    As MXNet, a conv layer asks the op's own shape inference for its parameter shapes at
    construction, on a data shape ``(1, in_channels, 0, ...)`` (0 = unknown): Convolution
    weights are ``(channels, in_channels/groups, *kernel)``, Deconvolution weights
    ``(in_channels, channels/groups, *kernel)``; an unknown ``in_channels`` stays 0 and is
    filled at the first call (deferred initialisation).
"""
import numbers

import numpy as np

import symbol as _symbol
from ..block import HybridBlock
from .activations import Activation

__all__ = ['Conv1D', 'Conv2D', 'Conv3D',
           'Conv1DTranspose', 'Conv2DTranspose', 'Conv3DTranspose',
           'MaxPool1D', 'MaxPool2D', 'MaxPool3D',
           'AvgPool1D', 'AvgPool2D', 'AvgPool3D',
           'GlobalMaxPool1D', 'GlobalMaxPool2D', 'GlobalMaxPool3D',
           'GlobalAvgPool1D', 'GlobalAvgPool2D', 'GlobalAvgPool3D',
           'ReflectionPad2D']

_NUMERIC = (numbers.Number, np.generic)


def _is_num(v):
    return isinstance(v, _NUMERIC) and not isinstance(v, bool)


def _tuple_of(v, n):
    """An int becomes an n-tuple; a tuple/list is kept as given (MXNet writes it with str())."""
    return (v,) * n if _is_num(v) else v


def _infer_weight_shape(op_name, data_shape, kwargs):
    """Input shapes [data, weight, (bias)] inferred by the op (note *conv-weight-shapes*)."""
    data = _symbol.var('data', shape=data_shape)
    out = getattr(_symbol, op_name)(data, **kwargs)
    return out.infer_shape_partial()[0]


class _Conv(HybridBlock):
    """Shared body of the convolution layers (``op_name`` Convolution or Deconvolution)."""

    def __init__(self, channels, kernel_size, strides, padding, dilation, groups, layout,
                 in_channels=0, activation=None, use_bias=True, weight_initializer=None,
                 bias_initializer='zeros', op_name='Convolution', adj=None, prefix=None,
                 params=None):
        super(_Conv, self).__init__(prefix=prefix, params=params)
        with self.name_scope():
            self._channels = channels
            self._in_channels = in_channels
            n = len(kernel_size)
            strides = _tuple_of(strides, n)
            padding = _tuple_of(padding, n)
            dilation = _tuple_of(dilation, n)
            self._op_name = op_name
            # the op's attrs in MXNet's order: the exported graph writes them all
            self._kwargs = {'kernel': kernel_size, 'stride': strides, 'dilate': dilation,
                            'pad': padding, 'num_filter': channels, 'num_group': groups,
                            'no_bias': not use_bias, 'layout': layout}
            if adj is not None:
                self._kwargs['adj'] = adj
            dshape = [0] * (n + 2)
            dshape[layout.find('N')] = 1
            dshape[layout.find('C')] = in_channels
            wshapes = _infer_weight_shape(op_name, tuple(dshape), self._kwargs)
            self.weight = self.params.get('weight', shape=wshapes[1], init=weight_initializer,
                                          allow_deferred_init=True)
            if use_bias:
                self.bias = self.params.get('bias', shape=wshapes[2], init=bias_initializer,
                                            allow_deferred_init=True)
            else:
                self.bias = None
            self.act = Activation(activation, prefix=activation + '_') \
                if activation is not None else None

    def hybrid_forward(self, F, x, weight, bias=None):
        op = getattr(F, self._op_name)
        if bias is None:
            out = op(x, weight, name='fwd', **self._kwargs)
        else:
            out = op(x, weight, bias, name='fwd', **self._kwargs)
        if self.act is not None:
            out = self.act(out)
        return out

    def _alias(self):
        return 'conv'

    def __repr__(self):
        kw = self._kwargs
        n = len(kw['kernel'])
        s = '{name}({mapping}, kernel_size={kernel}, stride={stride}'
        if kw['pad'] != (0,) * n:
            s += ', padding={pad}'
        if kw['dilate'] != (1,) * n:
            s += ', dilation={dilate}'
        # MXNet tests for an attribute 'out_pad' its transposed layers never set (they set
        # 'outpad'), so output_padding is never shown; kept for an identical repr
        if hasattr(self, 'out_pad') and self.out_pad != (0,) * n:
            s += ', output_padding={out_pad}'.format(out_pad=self.out_pad)
        if kw['num_group'] != 1:
            s += ', groups={num_group}'
        if self.bias is None:
            s += ', bias=False'
        if self.act:
            s += ', {}'.format(self.act)
        s += ')'
        shape = self.weight.shape
        return s.format(name=self.__class__.__name__,
                        mapping='{0} -> {1}'.format(shape[1] if shape[1] else None, shape[0]),
                        **kw)


def _kernel(kernel_size, n):
    k = _tuple_of(kernel_size, n)
    assert len(k) == n, "kernel_size must be a number or a list of %d ints" % n
    return k


class Conv1D(_Conv):
    """1-D convolution over NCW data; weight ``(channels, in_channels/groups, k)``."""

    def __init__(self, channels, kernel_size, strides=1, padding=0, dilation=1, groups=1,
                 layout='NCW', activation=None, use_bias=True, weight_initializer=None,
                 bias_initializer='zeros', in_channels=0, **kwargs):
        assert layout == 'NCW', "Only supports 'NCW' layout for now"
        kernel_size = _kernel(kernel_size, 1)
        op_name = kwargs.pop('op_name', 'Convolution')
        super(Conv1D, self).__init__(
            channels, kernel_size, strides, padding, dilation, groups, layout, in_channels,
            activation, use_bias, weight_initializer, bias_initializer, op_name, **kwargs)


class Conv2D(_Conv):
    """2-D convolution over NCHW data; weight ``(channels, in_channels/groups, kh, kw)``."""

    def __init__(self, channels, kernel_size, strides=(1, 1), padding=(0, 0), dilation=(1, 1),
                 groups=1, layout='NCHW', activation=None, use_bias=True,
                 weight_initializer=None, bias_initializer='zeros', in_channels=0, **kwargs):
        assert layout in ('NCHW', 'NHWC'), "Only supports 'NCHW' and 'NHWC' layout for now"
        kernel_size = _kernel(kernel_size, 2)
        op_name = kwargs.pop('op_name', 'Convolution')
        super(Conv2D, self).__init__(
            channels, kernel_size, strides, padding, dilation, groups, layout, in_channels,
            activation, use_bias, weight_initializer, bias_initializer, op_name, **kwargs)


class Conv3D(_Conv):
    """3-D convolution over NCDHW data; weight ``(channels, in_channels/groups, kd, kh, kw)``."""

    def __init__(self, channels, kernel_size, strides=(1, 1, 1), padding=(0, 0, 0),
                 dilation=(1, 1, 1), groups=1, layout='NCDHW', activation=None, use_bias=True,
                 weight_initializer=None, bias_initializer='zeros', in_channels=0, **kwargs):
        assert layout in ('NCDHW', 'NDHWC'), "Only supports 'NCDHW' and 'NDHWC' layout for now"
        kernel_size = _kernel(kernel_size, 3)
        op_name = kwargs.pop('op_name', 'Convolution')
        super(Conv3D, self).__init__(
            channels, kernel_size, strides, padding, dilation, groups, layout, in_channels,
            activation, use_bias, weight_initializer, bias_initializer, op_name, **kwargs)


class _ConvTranspose(_Conv):
    def __init__(self, n, layouts, channels, kernel_size, strides, padding, output_padding,
                 dilation, groups, layout, activation, use_bias, weight_initializer,
                 bias_initializer, in_channels, kwargs):
        assert layout in layouts, "Only supports %s layout for now" % \
            " and ".join("'%s'" % v for v in layouts)
        kernel_size = _kernel(kernel_size, n)
        output_padding = _tuple_of(output_padding, n)
        assert len(output_padding) == n, \
            "output_padding must be a number or a list of %d ints" % n
        op_name = kwargs.pop('op_name', 'Deconvolution')
        super(_ConvTranspose, self).__init__(
            channels, kernel_size, strides, padding, dilation, groups, layout, in_channels,
            activation, use_bias, weight_initializer, bias_initializer, op_name=op_name,
            adj=output_padding, **kwargs)
        self.outpad = output_padding


class Conv1DTranspose(_ConvTranspose):
    """1-D transposed convolution (NCW); weight ``(in_channels, channels/groups, k)``;
    output width ``(W-1)s - 2p + d(k-1) + 1 + output_padding``."""

    def __init__(self, channels, kernel_size, strides=1, padding=0, output_padding=0,
                 dilation=1, groups=1, layout='NCW', activation=None, use_bias=True,
                 weight_initializer=None, bias_initializer='zeros', in_channels=0, **kwargs):
        super(Conv1DTranspose, self).__init__(
            1, ('NCW',), channels, kernel_size, strides, padding, output_padding, dilation,
            groups, layout, activation, use_bias, weight_initializer, bias_initializer,
            in_channels, kwargs)


class Conv2DTranspose(_ConvTranspose):
    """2-D transposed convolution (NCHW); weight ``(in_channels, channels/groups, kh, kw)``."""

    def __init__(self, channels, kernel_size, strides=(1, 1), padding=(0, 0),
                 output_padding=(0, 0), dilation=(1, 1), groups=1, layout='NCHW',
                 activation=None, use_bias=True, weight_initializer=None,
                 bias_initializer='zeros', in_channels=0, **kwargs):
        super(Conv2DTranspose, self).__init__(
            2, ('NCHW', 'NHWC'), channels, kernel_size, strides, padding, output_padding,
            dilation, groups, layout, activation, use_bias, weight_initializer,
            bias_initializer, in_channels, kwargs)


class Conv3DTranspose(_ConvTranspose):
    """3-D transposed convolution (NCDHW); weight ``(in_channels, channels/groups, *k)``."""

    def __init__(self, channels, kernel_size, strides=(1, 1, 1), padding=(0, 0, 0),
                 output_padding=(0, 0, 0), dilation=(1, 1, 1), groups=1, layout='NCDHW',
                 activation=None, use_bias=True, weight_initializer=None,
                 bias_initializer='zeros', in_channels=0, **kwargs):
        super(Conv3DTranspose, self).__init__(
            3, ('NCDHW', 'NDHWC'), channels, kernel_size, strides, padding, output_padding,
            dilation, groups, layout, activation, use_bias, weight_initializer,
            bias_initializer, in_channels, kwargs)


class _Pooling(HybridBlock):
    """Shared body of the pooling layers: one ``Pooling`` op call."""

    def __init__(self, pool_size, strides, padding, ceil_mode, global_pool, pool_type, layout,
                 count_include_pad=None, **kwargs):
        super(_Pooling, self).__init__(**kwargs)
        if strides is None:
            strides = pool_size
        strides = _tuple_of(strides, len(pool_size))
        padding = _tuple_of(padding, len(pool_size))
        self._kwargs = {'kernel': pool_size, 'stride': strides, 'pad': padding,
                        'global_pool': global_pool, 'pool_type': pool_type, 'layout': layout,
                        'pooling_convention': 'full' if ceil_mode else 'valid'}
        if count_include_pad is not None:
            self._kwargs['count_include_pad'] = count_include_pad

    def _alias(self):
        return 'pool'

    def hybrid_forward(self, F, x):
        return F.Pooling(x, name='fwd', **self._kwargs)

    def __repr__(self):
        s = '{name}(size={kernel}, stride={stride}, padding={pad}, ceil_mode={ceil_mode}'
        s += ', global_pool={global_pool}, pool_type={pool_type}, layout={layout})'
        return s.format(name=self.__class__.__name__,
                        ceil_mode=self._kwargs['pooling_convention'] == 'full', **self._kwargs)


def _pool_size(pool_size, n):
    p = _tuple_of(pool_size, n)
    assert len(p) == n, "pool_size must be a number or a list of %d ints" % n
    return p


_LAYOUTS = {1: ('NCW', 'NWC'), 2: ('NCHW', 'NHWC'), 3: ('NCDHW', 'NDHWC')}


def _check_layout(layout, n):
    assert layout in _LAYOUTS[n], "Only %s and %s layouts are valid for %dD Pooling" \
        % (_LAYOUTS[n] + (n,))


class MaxPool1D(_Pooling):
    """Max pooling over NCW data (strides default to pool_size; ceil_mode: 'full')."""

    def __init__(self, pool_size=2, strides=None, padding=0, layout='NCW', ceil_mode=False,
                 **kwargs):
        _check_layout(layout, 1)
        super(MaxPool1D, self).__init__(_pool_size(pool_size, 1), strides, padding, ceil_mode,
                                        False, 'max', layout, **kwargs)


class MaxPool2D(_Pooling):
    """Max pooling over NCHW data."""

    def __init__(self, pool_size=(2, 2), strides=None, padding=0, layout='NCHW',
                 ceil_mode=False, **kwargs):
        _check_layout(layout, 2)
        super(MaxPool2D, self).__init__(_pool_size(pool_size, 2), strides, padding, ceil_mode,
                                        False, 'max', layout, **kwargs)


class MaxPool3D(_Pooling):
    """Max pooling over NCDHW data."""

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding=0, ceil_mode=False,
                 layout='NCDHW', **kwargs):
        _check_layout(layout, 3)
        super(MaxPool3D, self).__init__(_pool_size(pool_size, 3), strides, padding, ceil_mode,
                                        False, 'max', layout, **kwargs)


class AvgPool1D(_Pooling):
    """Average pooling over NCW data; ``count_include_pad`` counts explicit padding."""

    def __init__(self, pool_size=2, strides=None, padding=0, layout='NCW', ceil_mode=False,
                 count_include_pad=True, **kwargs):
        _check_layout(layout, 1)
        super(AvgPool1D, self).__init__(_pool_size(pool_size, 1), strides, padding, ceil_mode,
                                        False, 'avg', layout, count_include_pad, **kwargs)


class AvgPool2D(_Pooling):
    """Average pooling over NCHW data."""

    def __init__(self, pool_size=(2, 2), strides=None, padding=0, ceil_mode=False,
                 layout='NCHW', count_include_pad=True, **kwargs):
        _check_layout(layout, 2)
        super(AvgPool2D, self).__init__(_pool_size(pool_size, 2), strides, padding, ceil_mode,
                                        False, 'avg', layout, count_include_pad, **kwargs)


class AvgPool3D(_Pooling):
    """Average pooling over NCDHW data."""

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding=0, ceil_mode=False,
                 layout='NCDHW', count_include_pad=True, **kwargs):
        _check_layout(layout, 3)
        super(AvgPool3D, self).__init__(_pool_size(pool_size, 3), strides, padding, ceil_mode,
                                        False, 'avg', layout, count_include_pad, **kwargs)


class _GlobalPool(_Pooling):
    def __init__(self, n, pool_type, layout, kwargs):
        _check_layout(layout, n)
        super(_GlobalPool, self).__init__((1,) * n, None, 0, True, True, pool_type, layout,
                                          **kwargs)


class GlobalMaxPool1D(_GlobalPool):
    """Max over the whole width: (N, C, W) -> (N, C, 1)."""

    def __init__(self, layout='NCW', **kwargs):
        super(GlobalMaxPool1D, self).__init__(1, 'max', layout, kwargs)


class GlobalMaxPool2D(_GlobalPool):
    """Max over H and W: (N, C, H, W) -> (N, C, 1, 1)."""

    def __init__(self, layout='NCHW', **kwargs):
        super(GlobalMaxPool2D, self).__init__(2, 'max', layout, kwargs)


class GlobalMaxPool3D(_GlobalPool):
    """Max over D, H and W: -> (N, C, 1, 1, 1)."""

    def __init__(self, layout='NCDHW', **kwargs):
        super(GlobalMaxPool3D, self).__init__(3, 'max', layout, kwargs)


class GlobalAvgPool1D(_GlobalPool):
    """Mean over the whole width: (N, C, W) -> (N, C, 1)."""

    def __init__(self, layout='NCW', **kwargs):
        super(GlobalAvgPool1D, self).__init__(1, 'avg', layout, kwargs)


class GlobalAvgPool2D(_GlobalPool):
    """Mean over H and W: (N, C, H, W) -> (N, C, 1, 1)."""

    def __init__(self, layout='NCHW', **kwargs):
        super(GlobalAvgPool2D, self).__init__(2, 'avg', layout, kwargs)


class GlobalAvgPool3D(_GlobalPool):
    """Mean over D, H and W: -> (N, C, 1, 1, 1)."""

    def __init__(self, layout='NCDHW', **kwargs):
        super(GlobalAvgPool3D, self).__init__(3, 'avg', layout, kwargs)


class ReflectionPad2D(HybridBlock):
    """Reflection padding of H and W of NCHW data: ``padding`` is an int (all four sides) or
    MXNet's 8-tuple pad_width."""

    def __init__(self, padding=0, **kwargs):
        super(ReflectionPad2D, self).__init__(**kwargs)
        if _is_num(padding):
            padding = (0, 0, 0, 0, padding, padding, padding, padding)
        assert len(padding) == 8
        self._padding = padding

    def hybrid_forward(self, F, x):
        return F.pad(x, mode='reflect', pad_width=self._padding)
