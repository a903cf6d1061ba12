"""Convolutional recurrent cells of MXNet 1.9.1's ``gluon.contrib.rnn``:
Conv{1,2,3}D{RNN,LSTM,GRU}Cell.

Note: conv-rnn-cells
    A convolutional cell is the matching dense cell with the two FullyConnected products
    replaced by convolutions: ``i2h = Convolution(x, i2h_weight, i2h_bias, kernel=i2h_kernel,
    pad=i2h_pad, dilate=i2h_dilate, stride=1)`` and ``h2h = Convolution(h, h2h_weight,
    h2h_bias, kernel=h2h_kernel, dilate=h2h_dilate, pad=dilate*(kernel-1)//2)`` (so ``h2h``
    keeps the state's spatial size; ``h2h_kernel`` must be odd), both with
    ``num_filter = gates * hidden_channels`` and ``layout=conv_layout``.  ``input_shape`` is
    one step's shape without the batch axis (``(C, W)`` for NCW, ``(W, C)`` for NWC ...); the
    state shape is ``(hidden_channels,) + conv output size`` (the channel axis where the
    layout has it).  Gates are split along the channel axis in the orders of the dense cells
    (LSTM i, f, c, o; GRU r, z, o) and ``activation`` (default tanh) is the candidate /
    output activation.  Parameters: ``i2h_weight (G*hc, C_in, *i2h_kernel)``,
    ``h2h_weight (G*hc, hc, *h2h_kernel)`` (kernel dims last for NC* layouts, channels last
    for N*C), ``i2h_bias``, ``h2h_bias`` (G*hc,); prefixes ``conv_rnn``, ``conv_lstm``,
    ``conv_gru`` + counter.
"""
import numbers
from math import floor

from ...rnn.rnn_cell import HybridRecurrentCell

__all__ = ['Conv1DRNNCell', 'Conv2DRNNCell', 'Conv3DRNNCell',
           'Conv1DLSTMCell', 'Conv2DLSTMCell', 'Conv3DLSTMCell',
           'Conv1DGRUCell', 'Conv2DGRUCell', 'Conv3DGRUCell']


def _tuple(v, dims):
    return (v,) * dims if isinstance(v, numbers.Number) else tuple(v)


def _conv_out(sizes, kernels, pads, dilates):
    return tuple(int(floor(x + 2 * p - d * (k - 1) - 1)) + 1 if x else 0
                 for x, k, p, d in zip(sizes, kernels, pads, dilates))


class _BaseConvRNNCell(HybridRecurrentCell):
    """What the convolutional cells share (note *conv-rnn-cells*)."""
    _gate_names = ('',)

    def __init__(self, input_shape, hidden_channels, i2h_kernel, h2h_kernel, i2h_pad,
                 i2h_dilate, h2h_dilate, i2h_weight_initializer, h2h_weight_initializer,
                 i2h_bias_initializer, h2h_bias_initializer, dims, conv_layout, activation,
                 prefix=None, params=None):
        super(_BaseConvRNNCell, self).__init__(prefix=prefix, params=params)
        self._hidden_channels = hidden_channels
        self._input_shape = input_shape
        self._conv_layout = conv_layout
        self._activation = activation
        assert all(isinstance(s, int) or len(s) == dims
                   for s in [i2h_kernel, i2h_pad, i2h_dilate, h2h_kernel, h2h_dilate]), \
            "For {dims}D convolution, the convolution settings can only be either int " \
            "or list/tuple of length {dims}".format(dims=dims)
        self._i2h_kernel = _tuple(i2h_kernel, dims)
        self._stride = (1,) * dims
        self._i2h_pad = _tuple(i2h_pad, dims)
        self._i2h_dilate = _tuple(i2h_dilate, dims)
        self._h2h_kernel = _tuple(h2h_kernel, dims)
        assert all(k % 2 == 1 for k in self._h2h_kernel), \
            "Only support odd number, get h2h_kernel= %s" % str(h2h_kernel)
        self._h2h_dilate = _tuple(h2h_dilate, dims)
        self._h2h_pad = tuple(d * (k - 1) // 2 for d, k in zip(self._h2h_dilate,
                                                                self._h2h_kernel))
        self._channel_axis = conv_layout.find('C')
        channels_first = self._channel_axis == 1
        self._in_channels = input_shape[self._channel_axis - 1]
        spatial = tuple(input_shape[1:]) if channels_first else tuple(input_shape[:-1])
        total = hidden_channels * len(self._gate_names)
        out = _conv_out(spatial, self._i2h_kernel, self._i2h_pad, self._i2h_dilate)
        if channels_first:
            i2h_shape = (total, self._in_channels) + self._i2h_kernel
            h2h_shape = (total, hidden_channels) + self._h2h_kernel
            self._state_shape = (hidden_channels,) + out
        else:
            i2h_shape = (total,) + self._i2h_kernel + (self._in_channels,)
            h2h_shape = (total,) + self._h2h_kernel + (hidden_channels,)
            self._state_shape = out + (hidden_channels,)
        get = self.params.get
        self.i2h_weight = get('i2h_weight', shape=i2h_shape, init=i2h_weight_initializer,
                              allow_deferred_init=True)
        self.h2h_weight = get('h2h_weight', shape=h2h_shape, init=h2h_weight_initializer,
                              allow_deferred_init=True)
        self.i2h_bias = get('i2h_bias', shape=(total,), init=i2h_bias_initializer,
                            allow_deferred_init=True)
        self.h2h_bias = get('h2h_bias', shape=(total,), init=h2h_bias_initializer,
                            allow_deferred_init=True)

    @property
    def _num_gates(self):
        return len(self._gate_names)

    def __repr__(self):
        shape = self.i2h_weight.shape
        c_in = shape[1 if self._channel_axis == 1 else -1]
        return '{name}({i} -> {o}, {act}, {layout})'.format(
            name=self.__class__.__name__, i=c_in if c_in else None, o=shape[0],
            act=self._activation, layout=self._conv_layout)

    def state_info(self, batch_size=0):
        return [{'shape': (batch_size,) + self._state_shape, '__layout__': self._conv_layout}
                for _ in range(self._num_states)]

    def _conv_forward(self, F, inputs, states, i2h_weight, h2h_weight, i2h_bias, h2h_bias,
                      prefix):
        n = self._hidden_channels * self._num_gates
        i2h = F.Convolution(data=inputs, num_filter=n, kernel=self._i2h_kernel,
                            stride=self._stride, pad=self._i2h_pad, dilate=self._i2h_dilate,
                            weight=i2h_weight, bias=i2h_bias, layout=self._conv_layout,
                            name=prefix + 'i2h')
        h2h = F.Convolution(data=states[0], num_filter=n, kernel=self._h2h_kernel,
                            dilate=self._h2h_dilate, pad=self._h2h_pad, stride=self._stride,
                            weight=h2h_weight, bias=h2h_bias, layout=self._conv_layout,
                            name=prefix + 'h2h')
        return i2h, h2h


class _ConvRNNCell(_BaseConvRNNCell):
    _gate_names = ('',)
    _num_states = 1

    def _alias(self):
        return 'conv_rnn'

    def hybrid_forward(self, F, inputs, states, i2h_weight, h2h_weight, i2h_bias, h2h_bias):
        prefix = 't%d_' % self._counter
        i2h, h2h = self._conv_forward(F, inputs, states, i2h_weight, h2h_weight, i2h_bias,
                                      h2h_bias, prefix)
        output = self._get_activation(F, i2h + h2h, self._activation, name=prefix + 'out')
        return output, [output]


class _ConvLSTMCell(_BaseConvRNNCell):
    _gate_names = ('_i', '_f', '_c', '_o')
    _num_states = 2

    def _alias(self):
        return 'conv_lstm'

    def hybrid_forward(self, F, inputs, states, i2h_weight, h2h_weight, i2h_bias, h2h_bias):
        prefix = 't%d_' % self._counter
        i2h, h2h = self._conv_forward(F, inputs, states, i2h_weight, h2h_weight, i2h_bias,
                                      h2h_bias, prefix)
        gates = F.SliceChannel(i2h + h2h, num_outputs=4, name=prefix + 'slice',
                               axis=self._channel_axis)
        i = F.Activation(gates[0], act_type='sigmoid', name=prefix + 'i')
        f = F.Activation(gates[1], act_type='sigmoid', name=prefix + 'f')
        g = self._get_activation(F, gates[2], self._activation, name=prefix + 'c')
        o = F.Activation(gates[3], act_type='sigmoid', name=prefix + 'o')
        next_c = F.elemwise_add(f * states[1], i * g, name=prefix + 'state')
        next_h = F.elemwise_mul(o, self._get_activation(F, next_c, self._activation),
                                name=prefix + 'out')
        return next_h, [next_h, next_c]


class _ConvGRUCell(_BaseConvRNNCell):
    _gate_names = ('_r', '_z', '_o')
    _num_states = 1

    def _alias(self):
        return 'conv_gru'

    def hybrid_forward(self, F, inputs, states, i2h_weight, h2h_weight, i2h_bias, h2h_bias):
        prefix = 't%d_' % self._counter
        i2h, h2h = self._conv_forward(F, inputs, states, i2h_weight, h2h_weight, i2h_bias,
                                      h2h_bias, prefix)
        ax = self._channel_axis
        i2h_r, i2h_z, i2h = F.SliceChannel(i2h, num_outputs=3, name=prefix + 'i2h_slice',
                                           axis=ax)
        h2h_r, h2h_z, h2h = F.SliceChannel(h2h, num_outputs=3, name=prefix + 'h2h_slice',
                                           axis=ax)
        r = F.Activation(i2h_r + h2h_r, act_type='sigmoid', name=prefix + 'r_act')
        z = F.Activation(i2h_z + h2h_z, act_type='sigmoid', name=prefix + 'z_act')
        cand = self._get_activation(F, i2h + r * h2h, self._activation, name=prefix + 'h_act')
        next_h = F.elemwise_add((1. - z) * cand, z * states[0], name=prefix + 'out')
        return next_h, [next_h]


_LAYOUTS = {1: 'NCW', 2: 'NCHW', 3: 'NCDHW'}


def _make(base, kind, dims):
    """A public cell class ``Conv<dims>D<kind>Cell`` with MXNet's constructor defaults."""
    zero, one, layout = (0,) * dims, (1,) * dims, _LAYOUTS[dims]

    def __init__(self, input_shape, hidden_channels, i2h_kernel, h2h_kernel, i2h_pad=zero,
                 i2h_dilate=one, h2h_dilate=one, i2h_weight_initializer=None,
                 h2h_weight_initializer=None, i2h_bias_initializer='zeros',
                 h2h_bias_initializer='zeros', conv_layout=layout, activation='tanh',
                 prefix=None, params=None):
        base.__init__(self, input_shape, hidden_channels, i2h_kernel, h2h_kernel, i2h_pad,
                      i2h_dilate, h2h_dilate, i2h_weight_initializer, h2h_weight_initializer,
                      i2h_bias_initializer, h2h_bias_initializer, dims, conv_layout,
                      activation, prefix=prefix, params=params)

    name = 'Conv%dD%sCell' % (dims, kind)
    doc = ("%dD convolutional %s cell (note *conv-rnn-cells*); ``input_shape`` is one step's "
           "shape without the batch axis, default layout %s." % (dims, kind, layout))
    cls = type(name, (base,), {'__init__': __init__, '__doc__': doc, '__module__': __name__})
    __init__.__qualname__ = name + '.__init__'
    return cls


Conv1DRNNCell = _make(_ConvRNNCell, 'RNN', 1)
Conv2DRNNCell = _make(_ConvRNNCell, 'RNN', 2)
Conv3DRNNCell = _make(_ConvRNNCell, 'RNN', 3)
Conv1DLSTMCell = _make(_ConvLSTMCell, 'LSTM', 1)
Conv2DLSTMCell = _make(_ConvLSTMCell, 'LSTM', 2)
Conv3DLSTMCell = _make(_ConvLSTMCell, 'LSTM', 3)
Conv1DGRUCell = _make(_ConvGRUCell, 'GRU', 1)
Conv2DGRUCell = _make(_ConvGRUCell, 'GRU', 2)
Conv3DGRUCell = _make(_ConvGRUCell, 'GRU', 3)
