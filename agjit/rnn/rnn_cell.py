"""MXNet 1.x's symbolic recurrent cells (``mx.rnn``): cells build ``mx.sym`` graphs one step
at a time (``cell(inputs, states)``) or across a sequence (``cell.unroll``), with MXNet's
variable and node names, so an unrolled graph's JSON equals MXNet 1.9.1's
(tests/test_rnn_legacy.py compares them).

Note: legacy-rnn-naming
    A cell with prefix ``p`` owns the variables ``p + 'i2h_weight'`` ... (through its
    :class:`RNNParams`, which cells may share).  Step ``k`` of an unroll names its nodes
    ``p + 't%d_' % k`` + ``i2h``/``h2h``/``out`` (RNN), + ``i2h``/``h2h``/``slice``/``i``/
    ``f``/``c``/``o``/``state``/``out`` (LSTM), + ``_i2h``/``_h2h``/``_i2h_slice``/
    ``_h2h_slice``/``_r_act``/``_z_act``/``_h_act``/``out`` (GRU: the step name plus an
    underscore, as MXNet writes it); other nodes keep the symbol API's automatic names
    (``_plus0``, ``activation0``, ``split0`` ...).  ``begin_state`` makes ``_zeros`` nodes
    ``p + 'begin_state_%d'`` of shape ``(0, H)`` with ``__layout__='NC'``.  The LSTM's
    i2h bias carries MXNet's LSTMBias initializer (the forget gate's bias starts at
    ``forget_bias``).

Note: legacy-rnn-sequences
    ``unroll`` accepts a single symbol (sliced along the layout's T axis with
    ``SliceChannel(squeeze_axis=1)``), a list of per-step symbols, or None (variables
    ``t%d_data``).  ``merge_outputs=True`` joins the step outputs with ``expand_dims`` +
    ``Concat`` along T; False returns the list; None keeps what the cell produced.
"""
import json

import symbol as _sym

__all__ = ["RNNParams", "BaseRNNCell", "RNNCell", "LSTMCell", "GRUCell", "FusedRNNCell",
           "SequentialRNNCell", "DropoutCell", "ModifierCell", "ZoneoutCell", "ResidualCell",
           "BidirectionalCell"]

_MODIFIED = ("After applying modifier cells (e.g. ZoneoutCell) the base cell cannot be called "
             "directly. Call the modifier cell instead.")


class RNNParams(object):
    """Variables of one or more cells, created on first ``get`` (``prefix + name``)."""

    def __init__(self, prefix=""):
        self._prefix = prefix
        self._params = {}

    def get(self, name, **kwargs):
        """The variable ``prefix + name`` (created with ``kwargs`` the first time)."""
        full = self._prefix + name
        v = self._params.get(full)
        if v is None:
            v = self._params[full] = _sym.Variable(full, **kwargs)
        return v


def _split_steps(length, inputs, layout):
    axis = layout.find("T")
    if axis < 0:
        raise ValueError("layout %r has no T (time) axis" % layout)
    if inputs is None:
        return [_sym.Variable("t%d_data" % i) for i in range(length)], axis
    if isinstance(inputs, _sym.Symbol):
        if len(inputs.list_outputs()) != 1:
            raise ValueError("unroll doesn't allow grouped symbol as input. Please convert to "
                             "list first or let unroll handle slicing")
        return list(_sym.split(inputs, axis=axis, num_outputs=length, squeeze_axis=1)), axis
    inputs = list(inputs)
    if len(inputs) != length:
        raise ValueError("unroll: %d inputs given for length %d" % (len(inputs), length))
    return inputs, axis


def _unmerge(outputs, axis, length):
    if isinstance(outputs, _sym.Symbol):
        return list(_sym.split(outputs, axis=axis, num_outputs=length, squeeze_axis=1))
    return list(outputs)


def _normalize_outputs(outputs, axis, length, merge):
    if merge is None:
        return outputs
    if merge:
        if isinstance(outputs, _sym.Symbol):
            return outputs
        return _sym.Concat(*[_sym.expand_dims(o, axis=axis) for o in outputs], dim=axis)
    return _unmerge(outputs, axis, length)


class BaseRNNCell(object):
    """Base of the cells: parameters (shared through ``params``), begin states, unrolling,
    and packing/unpacking of per-gate weights (note *legacy-rnn-naming*)."""

    def __init__(self, prefix="", params=None):
        if params is None:
            params = RNNParams(prefix)
            self._own_params = True
        else:
            self._own_params = False
        self._prefix = prefix
        self._params = params
        self._modified = False
        self.reset()

    def reset(self):
        """Restart the step and begin-state counters (before building another graph)."""
        self._init_counter = -1
        self._counter = -1

    def __call__(self, inputs, states):
        raise NotImplementedError()

    @property
    def params(self):
        """The cell's :class:`RNNParams`."""
        self._own_params = False
        return self._params

    @property
    def state_info(self):
        return [{"shape": s, "__layout__": "NC"} for s in self.state_shape]

    @property
    def state_shape(self):
        raise NotImplementedError()

    @property
    def _gate_names(self):
        return ("",)

    def begin_state(self, func=_sym.zeros, **kwargs):
        """Initial states: ``func(name=prefix + 'begin_state_%d', shape=..., **kwargs)``."""
        if self._modified:
            raise AssertionError(_MODIFIED)
        states = []
        for info in self.state_info:
            self._init_counter += 1
            name = "%sbegin_state_%d" % (self._prefix, self._init_counter)
            kw = dict(kwargs)
            if info is not None:
                kw.update(info)
            states.append(func(name=name, **kw))
        return states

    def unpack_weights(self, args):
        """Split each fused ``i2h``/``h2h`` weight and bias into one array per gate."""
        args = dict(args)
        h = self._num_hidden
        for group in ("i2h", "h2h"):
            w = args.pop("%s%s_weight" % (self._prefix, group))
            b = args.pop("%s%s_bias" % (self._prefix, group))
            for j, gate in enumerate(self._gate_names):
                args["%s%s%s_weight" % (self._prefix, group, gate)] = w[j * h:(j + 1) * h].copy()
                args["%s%s%s_bias" % (self._prefix, group, gate)] = b[j * h:(j + 1) * h].copy()
        return args

    def pack_weights(self, args):
        """The inverse of :meth:`unpack_weights`."""
        from .. import ndarray as _nd
        args = dict(args)
        for group in ("i2h", "h2h"):
            ws, bs = [], []
            for gate in self._gate_names:
                ws.append(args.pop("%s%s%s_weight" % (self._prefix, group, gate)))
                bs.append(args.pop("%s%s%s_bias" % (self._prefix, group, gate)))
            args["%s%s_weight" % (self._prefix, group)] = _nd.concatenate(ws)
            args["%s%s_bias" % (self._prefix, group)] = _nd.concatenate(bs)
        return args

    def unroll(self, length, inputs=None, begin_state=None, input_prefix="", layout="NTC",
               merge_outputs=None):
        """Apply the cell ``length`` times (note *legacy-rnn-sequences*); returns
        ``(outputs, states)``."""
        self.reset()
        if inputs is None:
            inputs = [_sym.Variable("%st%d_data" % (input_prefix, i)) for i in range(length)]
        steps, axis = _split_steps(length, inputs, layout)
        states = self.begin_state() if begin_state is None else begin_state
        outputs = []
        for x in steps:
            out, states = self(x, states)
            outputs.append(out)
        return _normalize_outputs(outputs, axis, length, merge_outputs), states

    def _fc_params(self):
        """The i2h / h2h weight and bias variables of a single-layer cell."""
        self._iW = self.params.get("i2h_weight")
        self._iB = self.params.get("i2h_bias")
        self._hW = self.params.get("h2h_weight")
        self._hB = self.params.get("h2h_bias")

    def _get_activation(self, inputs, activation, **kwargs):
        if isinstance(activation, str):
            return _sym.Activation(inputs, act_type=activation, **kwargs)
        return activation(inputs, **kwargs)


class RNNCell(BaseRNNCell):
    """Elman cell: ``out = act(FC(x) + FC(h))``."""

    def __init__(self, num_hidden, activation="tanh", prefix="rnn_", params=None):
        super(RNNCell, self).__init__(prefix=prefix, params=params)
        self._num_hidden = num_hidden
        self._activation = activation
        self._fc_params()

    @property
    def state_shape(self):
        return [(0, self._num_hidden)]

    @property
    def _gate_names(self):
        return ("",)

    def __call__(self, inputs, states):
        self._counter += 1
        name = "%st%d_" % (self._prefix, self._counter)
        i2h = _sym.FullyConnected(data=inputs, weight=self._iW, bias=self._iB,
                                  num_hidden=self._num_hidden, name="%si2h" % name)
        h2h = _sym.FullyConnected(data=states[0], weight=self._hW, bias=self._hB,
                                  num_hidden=self._num_hidden, name="%sh2h" % name)
        out = self._get_activation(i2h + h2h, self._activation, name="%sout" % name)
        return out, [out]


def _lstm_bias_init(forget_bias):
    # agjit.initializer.LSTMBias dumps to exactly this
    return json.dumps(["lstmbias", {"forget_bias": forget_bias}])


class LSTMCell(BaseRNNCell):
    """LSTM cell (gates i, f, c, o from one 4H-wide FC of x plus one of h)."""

    def __init__(self, num_hidden, prefix="lstm_", params=None, forget_bias=1.0):
        super(LSTMCell, self).__init__(prefix=prefix, params=params)
        self._num_hidden = num_hidden
        self._iW = self.params.get("i2h_weight")
        self._hW = self.params.get("h2h_weight")
        self._iB = self.params.get("i2h_bias", init=_lstm_bias_init(forget_bias))
        self._hB = self.params.get("h2h_bias")

    @property
    def state_shape(self):
        return [(0, self._num_hidden), (0, self._num_hidden)]

    @property
    def _gate_names(self):
        return ("_i", "_f", "_c", "_o")

    def __call__(self, inputs, states):
        self._counter += 1
        name = "%st%d_" % (self._prefix, self._counter)
        H4 = self._num_hidden * 4
        i2h = _sym.FullyConnected(data=inputs, weight=self._iW, bias=self._iB, num_hidden=H4,
                                  name="%si2h" % name)
        h2h = _sym.FullyConnected(data=states[0], weight=self._hW, bias=self._hB, num_hidden=H4,
                                  name="%sh2h" % name)
        gates = _sym.SliceChannel(i2h + h2h, num_outputs=4, name="%sslice" % name)
        act = [("sigmoid", "i"), ("sigmoid", "f"), ("tanh", "c"), ("sigmoid", "o")]
        ig, fg, cg, og = [_sym.Activation(gates[k], act_type=t, name=name + n)
                          for k, (t, n) in enumerate(act)]
        next_c = _sym.elemwise_add(fg * states[1], ig * cg, name="%sstate" % name)
        next_h = _sym.elemwise_mul(og, _sym.Activation(next_c, act_type="tanh"),
                                     name="%sout" % name)
        return next_h, [next_h, next_c]


class GRUCell(BaseRNNCell):
    """GRU cell in cuDNN's form (the reset gate multiplies h's projection, bias included)."""

    def __init__(self, num_hidden, prefix="gru_", params=None):
        super(GRUCell, self).__init__(prefix=prefix, params=params)
        self._num_hidden = num_hidden
        self._fc_params()

    @property
    def state_shape(self):
        return [(0, self._num_hidden)]

    @property
    def _gate_names(self):
        return ("_r", "_z", "_o")

    def __call__(self, inputs, states):
        self._counter += 1
        name = "%st%d_" % (self._prefix, self._counter)
        h_prev = states[0]
        H3 = self._num_hidden * 3
        i2h = _sym.FullyConnected(data=inputs, weight=self._iW, bias=self._iB, num_hidden=H3,
                                  name="%s_i2h" % name)
        h2h = _sym.FullyConnected(data=h_prev, weight=self._hW, bias=self._hB, num_hidden=H3,
                                  name="%s_h2h" % name)
        xr, xz, xh = _sym.SliceChannel(i2h, num_outputs=3, name="%s_i2h_slice" % name)
        hr, hz, hh = _sym.SliceChannel(h2h, num_outputs=3, name="%s_h2h_slice" % name)
        r = _sym.Activation(xr + hr, act_type="sigmoid", name="%s_r_act" % name)
        z = _sym.Activation(xz + hz, act_type="sigmoid", name="%s_z_act" % name)
        cand = _sym.Activation(xh + r * hh, act_type="tanh", name="%s_h_act" % name)
        out = _sym.elemwise_add((1. - z) * cand, z * h_prev, name="%sout" % name)
        return out, [out]


class FusedRNNCell(BaseRNNCell):
    """All layers and steps in one ``RNN`` op over a flat ``parameters`` vector (``mode``
    rnn_relu / rnn_tanh / lstm / gru); :meth:`unfuse` gives the equivalent stack of cells."""

    def __init__(self, num_hidden, num_layers=1, forget_bias=1.0, mode="lstm",
                 bidirectional=False, dropout=0., get_next_state=False, initializer=None,
                 prefix=None, params=None):
        from .. import initializer as _init
        if mode not in ("rnn_relu", "rnn_tanh", "lstm", "gru"):
            raise ValueError("FusedRNNCell: mode must be rnn_relu, rnn_tanh, lstm or gru, got %r"
                             % (mode,))
        if prefix is None:
            prefix = "%s_" % mode
        super(FusedRNNCell, self).__init__(prefix=prefix, params=params)
        self._num_hidden = num_hidden
        self._num_layers = num_layers
        self._mode = mode
        self._bidirectional = bidirectional
        self._dropout = dropout
        self._get_next_state = get_next_state
        # no initializer: the parts are initialised by the global initializer (MXNet 1.9.1
        # records '"init": null' in the variable's __init__ attr)
        if not isinstance(initializer, _init.FusedRNN):
            initializer = _init.FusedRNN(initializer, num_hidden, num_layers, mode,
                                         bidirectional, forget_bias)
        self._parameter = self.params.get("parameters", init=initializer)
        self._directions = ["l", "r"] if bidirectional else ["l"]

    @property
    def state_shape(self):
        b = self._bidirectional + 1
        n = (self._mode == "lstm") + 1
        return [(b * self._num_layers, 0, self._num_hidden)] * n

    @property
    def state_info(self):
        return [{"shape": s, "__layout__": "LNC"} for s in self.state_shape]

    @property
    def _gate_names(self):
        return {"rnn_relu": ("",), "rnn_tanh": ("",), "lstm": ("_i", "_f", "_c", "_o"),
                "gru": ("_r", "_z", "_o")}[self._mode]

    def _slice_weights(self, arr, ni, nh):
        """Views of the flat vector ``arr`` per layer, direction, gate (symbol/ops/rnn.py
        note *rnn-parameter-packing*)."""
        out = {}
        b = len(self._directions)
        p = 0
        for layer in range(self._num_layers):
            for d in self._directions:
                for gate in self._gate_names:
                    cols = ni if layer == 0 else b * nh
                    out["%s%s%d_i2h%s_weight" % (self._prefix, d, layer, gate)] = \
                        arr[p:p + nh * cols].reshape((nh, cols))
                    p += nh * cols
                for gate in self._gate_names:
                    out["%s%s%d_h2h%s_weight" % (self._prefix, d, layer, gate)] = \
                        arr[p:p + nh * nh].reshape((nh, nh))
                    p += nh * nh
        for layer in range(self._num_layers):
            for d in self._directions:
                for group in ("i2h", "h2h"):
                    for gate in self._gate_names:
                        out["%s%s%d_%s%s_bias" % (self._prefix, d, layer, group, gate)] = \
                            arr[p:p + nh]
                        p += nh
        if p != arr.size:
            raise ValueError("FusedRNNCell: a parameter vector of %d values does not fit %d "
                             "layers of %d hidden units (needs %d)"
                             % (arr.size, self._num_layers, nh, p))
        return out

    def _num_input(self, size):
        b, m, h = len(self._directions), len(self._gate_names), self._num_hidden
        return size // b // h // m - (self._num_layers - 1) * (h + b * h + 2) - h - 2

    def unpack_weights(self, args):
        args = dict(args)
        arr = args.pop(self._parameter.name)
        parts = self._slice_weights(arr, self._num_input(arr.size), self._num_hidden)
        args.update({k: v.copy() for k, v in parts.items()})
        return args

    def pack_weights(self, args):
        from .. import ndarray as _nd
        args = dict(args)
        g0 = self._gate_names[0]
        w0 = args["%sl0_i2h%s_weight" % (self._prefix, g0)]
        ni, h = w0.shape[1], self._num_hidden
        b, m = self._bidirectional + 1, len(self._gate_names)
        total = (ni + h + 2) * h * m * b + (self._num_layers - 1) * m * h * (h + b * h + 2) * b
        arr = _nd.zeros((total,), dtype=w0.dtype)
        for name, view in self._slice_weights(arr, ni, h).items():
            view[:] = args.pop(name)
        args[self._parameter.name] = arr
        return args

    def __call__(self, inputs, states):
        raise NotImplementedError("FusedRNNCell cannot be stepped. Please use unroll")

    def unroll(self, length, inputs=None, begin_state=None, input_prefix="", layout="NTC",
               merge_outputs=None):
        import warnings
        self.reset()
        axis = layout.find("T")
        if inputs is None:
            inputs = _sym.Variable("%sdata" % input_prefix)
        if isinstance(inputs, _sym.Symbol):
            if len(inputs.list_outputs()) != 1:
                raise ValueError("unroll doesn't allow grouped symbol as input. Please convert "
                                 "to list first or let unroll handle slicing")
            if axis == 1:
                warnings.warn("NTC layout detected. Consider using TNC for FusedRNNCell for "
                              "faster speed")
                inputs = _sym.SwapAxis(inputs, dim1=0, dim2=1)
            elif axis != 0:
                raise ValueError("Unsupported layout %s" % layout)
        else:
            if len(inputs) != length:
                raise ValueError("unroll: %d inputs given for length %d" % (len(inputs), length))
            inputs = _sym.Concat(*[_sym.expand_dims(x, axis=0) for x in inputs], dim=0)
        states = self.begin_state() if begin_state is None else begin_state
        kw = {"state": states[0]}
        if self._mode == "lstm":
            kw["state_cell"] = states[1]
        rnn = _sym.RNN(data=inputs, parameters=self._parameter, state_size=self._num_hidden,
                       num_layers=self._num_layers, bidirectional=self._bidirectional,
                       p=self._dropout, state_outputs=self._get_next_state, mode=self._mode,
                       name=self._prefix + "rnn", **kw)
        if not self._get_next_state:
            outputs, states = rnn, []
        elif self._mode == "lstm":
            outputs, states = rnn[0], [rnn[1], rnn[2]]
        else:
            outputs, states = rnn[0], [rnn[1]]
        if merge_outputs is not None and not merge_outputs:
            warnings.warn("Call FusedRNNCell.unroll with merge_outputs=True for faster speed")
            outputs = list(_sym.SliceChannel(outputs, axis=0, num_outputs=length, squeeze_axis=1))
        elif axis == 1:
            outputs = _sym.SwapAxis(outputs, dim1=0, dim2=1)
        return outputs, states

    def unfuse(self):
        """The same network as a :class:`SequentialRNNCell` of steppable cells (their
        parameters named as :meth:`unpack_weights` names the fused vector's parts)."""
        def make(prefix):
            if self._mode in ("rnn_relu", "rnn_tanh"):
                return RNNCell(self._num_hidden, activation=self._mode[4:], prefix=prefix)
            if self._mode == "lstm":
                return LSTMCell(self._num_hidden, prefix=prefix)
            return GRUCell(self._num_hidden, prefix=prefix)
        stack = SequentialRNNCell()
        for i in range(self._num_layers):
            if self._bidirectional:
                stack.add(BidirectionalCell(make("%sl%d_" % (self._prefix, i)),
                                            make("%sr%d_" % (self._prefix, i)),
                                            output_prefix="%sbi_l%d_" % (self._prefix, i)))
            else:
                stack.add(make("%sl%d_" % (self._prefix, i)))
        return stack


class _CellStack(object):
    """What a cell made of ``self._cells`` (Sequential, Bidirectional) derives from them:
    their states in order, their begin states, their weights packed/unpacked in turn."""

    @property
    def state_shape(self):
        return sum([c.state_shape for c in self._cells], [])

    @property
    def state_info(self):
        return sum([c.state_info for c in self._cells], [])

    def begin_state(self, **kwargs):
        if self._modified:
            raise AssertionError(_MODIFIED)
        return sum([c.begin_state(**kwargs) for c in self._cells], [])

    def unpack_weights(self, args):
        for c in self._cells:
            args = c.unpack_weights(args)
        return args

    def pack_weights(self, args):
        for c in self._cells:
            args = c.pack_weights(args)
        return args


class SequentialRNNCell(_CellStack, BaseRNNCell):
    """Cells applied one after another (each unrolls over the previous one's outputs)."""

    def __init__(self, params=None):
        super(SequentialRNNCell, self).__init__(prefix="", params=params)
        self._override_cell_params = params is not None
        self._cells = []

    def add(self, cell):
        """Append ``cell`` (its parameters join this cell's)."""
        self._cells.append(cell)
        if self._override_cell_params:
            if not cell._own_params:
                raise AssertionError("Either specify params for SequentialRNNCell or child "
                                     "cells, not both.")
            cell.params._params.update(self.params._params)
        self.params._params.update(cell.params._params)



    def __call__(self, inputs, states):
        self._counter += 1
        nxt = []
        p = 0
        for cell in self._cells:
            if isinstance(cell, BidirectionalCell):
                raise AssertionError("a BidirectionalCell cannot be stepped inside a "
                                     "SequentialRNNCell; unroll it")
            n = len(cell.state_shape)
            inputs, st = cell(inputs, states[p:p + n])
            p += n
            nxt.append(st)
        return inputs, sum(nxt, [])

    def unroll(self, length, inputs=None, begin_state=None, input_prefix="", layout="NTC",
               merge_outputs=None):
        self.reset()
        if begin_state is None:
            begin_state = self.begin_state()
        p = 0
        states = []
        last = len(self._cells) - 1
        next_states = []
        for i, cell in enumerate(self._cells):
            n = len(cell.state_shape)
            states = begin_state[p:p + n]
            p += n
            inputs, states = cell.unroll(length, inputs=inputs, input_prefix=input_prefix,
                                         begin_state=states, layout=layout,
                                         merge_outputs=None if i < last else merge_outputs)
            next_states.extend(states)
        return inputs, next_states


class DropoutCell(BaseRNNCell):
    """Dropout on the inputs (no state)."""

    def __init__(self, dropout, prefix="dropout_", params=None):
        super(DropoutCell, self).__init__(prefix, params)
        if not isinstance(dropout, (int, float)):
            raise ValueError("dropout probability must be a number")
        self.dropout = dropout

    @property
    def state_shape(self):
        return []

    def __call__(self, inputs, states):
        if self.dropout > 0:
            inputs = _sym.Dropout(data=inputs, p=self.dropout)
        return inputs, states

    def unroll(self, length, inputs=None, begin_state=None, input_prefix="", layout="NTC",
               merge_outputs=None):
        self.reset()
        if isinstance(inputs, _sym.Symbol):
            out, states = self(inputs, [])
            axis = layout.find("T")
            return _normalize_outputs(out, axis, length, merge_outputs), states
        return super(DropoutCell, self).unroll(length, inputs, begin_state, input_prefix, layout,
                                               merge_outputs)


class ModifierCell(BaseRNNCell):
    """A cell wrapping ``base_cell`` (which must then not be called on its own)."""

    def __init__(self, base_cell):
        super(ModifierCell, self).__init__()
        base_cell._modified = True
        self.base_cell = base_cell

    @property
    def params(self):
        self._own_params = False
        return self.base_cell.params

    @property
    def state_shape(self):
        return self.base_cell.state_shape

    @property
    def state_info(self):
        return self.base_cell.state_info

    def begin_state(self, init_sym=_sym.zeros, **kwargs):
        if self._modified:
            raise AssertionError(_MODIFIED)
        self.base_cell._modified = False
        try:
            return self.base_cell.begin_state(init_sym, **kwargs)
        finally:
            self.base_cell._modified = True

    def unpack_weights(self, args):
        return self.base_cell.unpack_weights(args)

    def pack_weights(self, args):
        return self.base_cell.pack_weights(args)

    def __call__(self, inputs, states):
        raise NotImplementedError


class ZoneoutCell(ModifierCell):
    """Zoneout: each output / state unit keeps its previous value with probability
    ``zoneout_outputs`` / ``zoneout_states`` in training."""

    def __init__(self, base_cell, zoneout_outputs=0., zoneout_states=0.):
        if isinstance(base_cell, (FusedRNNCell, BidirectionalCell)):
            raise AssertionError("%s doesn't support zoneout. Please unfuse first."
                                 % type(base_cell).__name__)
        super(ZoneoutCell, self).__init__(base_cell)
        self.zoneout_outputs = zoneout_outputs
        self.zoneout_states = zoneout_states
        self.prev_output = None

    def reset(self):
        super(ZoneoutCell, self).reset()
        self.prev_output = None

    def __call__(self, inputs, states):
        po, ps = self.zoneout_outputs, self.zoneout_states
        out, new_states = self.base_cell(inputs, states)

        def keep(p, like):
            return _sym.Dropout(_sym.ones_like(like), p=p)
        prev = self.prev_output if self.prev_output is not None else _sym.zeros((0, 0))
        if po != 0.:
            out = _sym.where(keep(po, out), out, prev)
        if ps != 0.:
            new_states = [_sym.where(keep(ps, n), n, o) for n, o in zip(new_states, states)]
        self.prev_output = out
        return out, new_states


class ResidualCell(ModifierCell):
    """``base_cell``'s output plus its input (``<output>_plus_residual``)."""

    def __call__(self, inputs, states):
        out, states = self.base_cell(inputs, states)
        out = _sym.elemwise_add(out, inputs, name="%s_plus_residual" % out.name)
        return out, states

    def unroll(self, length, inputs=None, begin_state=None, input_prefix="", layout="NTC",
               merge_outputs=None):
        self.reset()
        self.base_cell._modified = False
        try:
            outputs, states = self.base_cell.unroll(length, inputs=inputs,
                                                    begin_state=begin_state, layout=layout,
                                                    merge_outputs=merge_outputs)
        finally:
            self.base_cell._modified = True
        merge = isinstance(outputs, _sym.Symbol) if merge_outputs is None else merge_outputs
        steps, axis = _split_steps(length, inputs, layout)
        inputs = _normalize_outputs(steps, axis, length, merge)
        if merge:
            outputs = _sym.elemwise_add(outputs, inputs, name="%s_plus_residual" % outputs.name)
        else:
            outputs = [_sym.elemwise_add(o, i, name="%s_plus_residual" % o.name)
                       for o, i in zip(outputs, inputs)]
        return outputs, states


class BidirectionalCell(_CellStack, BaseRNNCell):
    """``l_cell`` over the sequence and ``r_cell`` over it reversed, outputs concatenated
    (``<output_prefix>t%d`` per step, or ``<output_prefix>out`` merged)."""

    def __init__(self, l_cell, r_cell, params=None, output_prefix="bi_"):
        super(BidirectionalCell, self).__init__("", params=params)
        self._output_prefix = output_prefix
        self._override_cell_params = params is not None
        if self._override_cell_params:
            if not (l_cell._own_params and r_cell._own_params):
                raise AssertionError("Either specify params for BidirectionalCell or child "
                                     "cells, not both.")
            l_cell.params._params.update(self.params._params)
            r_cell.params._params.update(self.params._params)
        self.params._params.update(l_cell.params._params)
        self.params._params.update(r_cell.params._params)
        self._cells = [l_cell, r_cell]


    def __call__(self, inputs, states):
        raise NotImplementedError("Bidirectional cannot be stepped. Please use unroll")


    def unroll(self, length, inputs=None, begin_state=None, input_prefix="", layout="NTC",
               merge_outputs=None):
        self.reset()
        if inputs is None:
            inputs = [_sym.Variable("%st%d_data" % (input_prefix, i)) for i in range(length)]
        steps, axis = _split_steps(length, inputs, layout)
        if begin_state is None:
            begin_state = self.begin_state()
        l_cell, r_cell = self._cells
        nl = len(l_cell.state_shape)
        l_out, l_states = l_cell.unroll(length, inputs=steps, begin_state=begin_state[:nl],
                                        layout=layout, merge_outputs=merge_outputs)
        r_out, r_states = r_cell.unroll(length, inputs=list(reversed(steps)),
                                        begin_state=begin_state[nl:], layout=layout,
                                        merge_outputs=merge_outputs)
        if merge_outputs is None:
            merge_outputs = isinstance(l_out, _sym.Symbol) and isinstance(r_out, _sym.Symbol)
            l_out = _normalize_outputs(l_out, axis, length, merge_outputs)
            r_out = _normalize_outputs(r_out, axis, length, merge_outputs)
        if merge_outputs:
            r_out = _sym.reverse(r_out, axis=axis)
            outputs = _sym.Concat(l_out, r_out, dim=2, name="%sout" % self._output_prefix)
        else:
            outputs = [_sym.Concat(lo, ro, dim=1, name="%st%d" % (self._output_prefix, i))
                       for i, (lo, ro) in enumerate(zip(l_out, reversed(r_out)))]
        return outputs, [l_states, r_states]
