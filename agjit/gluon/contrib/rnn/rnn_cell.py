"""Contributed cells of MXNet 1.9.1's ``gluon.contrib.rnn``: VariationalDropoutCell and
LSTMPCell.

Note: contrib-rnn-cells
    * ``VariationalDropoutCell(base_cell, drop_inputs, drop_states, drop_outputs)`` (prefix
      ``<base prefix>vardrop``) draws ONE dropout mask per sequence for each of the inputs,
      the first state and the outputs (``Dropout(ones_like(x), p)``, made at the first step
      after ``reset()``) and multiplies every step by the same mask.  Without state dropout
      ``unroll`` runs the base cell's own ``unroll`` on the merged sequence with a dropout
      whose mask is shared along the time axis (``Dropout(axes=(T,))``).  Outside training
      the dropouts are identities.
    * ``LSTMPCell(hidden_size, projection_size)``: an LSTM whose recurrent state ``r`` is a
      projection of the hidden vector, ``r = h2r_weight . (o * tanh(c))``; the states are
      ``[r (N, projection_size), c (N, hidden_size)]``, the parameters
      ``i2h_weight (4H, in)``, ``h2h_weight (4H, P)``, ``h2r_weight (P, H)``, ``i2h_bias``,
      ``h2h_bias``; gate rows i, f, c, o as LSTMCell.
"""
from ....ndarray.ndarray import NDArray
from symbol.symbol import Symbol
from ...rnn.rnn_cell import (BidirectionalCell, SequentialRNNCell, ModifierCell,
                             HybridRecurrentCell, _format_sequence, _get_begin_state,
                             _mask_sequence_variable_length)

__all__ = ['VariationalDropoutCell', 'LSTMPCell']

_tensor_types = (Symbol, NDArray)


class VariationalDropoutCell(ModifierCell):
    """Dropout with one mask per sequence on inputs, first state and outputs (note
    *contrib-rnn-cells*)."""

    def __init__(self, base_cell, drop_inputs=0., drop_states=0., drop_outputs=0.):
        assert not drop_states or not isinstance(base_cell, BidirectionalCell), \
            "BidirectionalCell doesn't support variational state dropout. " \
            "Please add VariationalDropoutCell to the cells underneath instead."
        assert not drop_states or not isinstance(base_cell, SequentialRNNCell) or \
            not getattr(base_cell, '_bidirectional', False), \
            "Bidirectional SequentialRNNCell doesn't support variational state dropout. " \
            "Please add VariationalDropoutCell to the cells underneath instead."
        super(VariationalDropoutCell, self).__init__(base_cell)
        self.drop_inputs = drop_inputs
        self.drop_states = drop_states
        self.drop_outputs = drop_outputs
        self.drop_inputs_mask = None
        self.drop_states_mask = None
        self.drop_outputs_mask = None

    def _alias(self):
        return 'vardrop'

    def reset(self):
        super(VariationalDropoutCell, self).reset()
        self.drop_inputs_mask = None
        self.drop_states_mask = None
        self.drop_outputs_mask = None

    @staticmethod
    def _mask(F, like, p):
        return F.Dropout(F.ones_like(like), p=p)

    def hybrid_forward(self, F, inputs, states):
        if self.drop_states:
            if self.drop_states_mask is None:
                self.drop_states_mask = self._mask(F, states[0], self.drop_states)
            states = list(states)
            states[0] = states[0] * self.drop_states_mask
        if self.drop_inputs:
            if self.drop_inputs_mask is None:
                self.drop_inputs_mask = self._mask(F, inputs, self.drop_inputs)
            inputs = inputs * self.drop_inputs_mask
        output, next_states = self.base_cell(inputs, states)
        if self.drop_outputs:
            if self.drop_outputs_mask is None:
                self.drop_outputs_mask = self._mask(F, output, self.drop_outputs)
            output = output * self.drop_outputs_mask
        return output, next_states

    def __repr__(self):
        return '{name}(p_out = {po}, p_state = {ps})'.format(
            name=self.__class__.__name__, po=self.drop_outputs, ps=self.drop_states)

    def unroll(self, length, inputs, begin_state=None, layout='NTC', merge_outputs=None,
               valid_length=None):
        if self.drop_states:
            # the state mask must be applied between steps: step the cell
            return super(VariationalDropoutCell, self).unroll(
                length, inputs, begin_state, layout, merge_outputs, valid_length=valid_length)
        self.reset()
        inputs, axis, F, batch_size = _format_sequence(length, inputs, layout, True)
        states = _get_begin_state(self, F, begin_state, inputs, batch_size)
        if self.drop_inputs:
            inputs = F.Dropout(inputs, p=self.drop_inputs, axes=(axis,))
        outputs, states = self.base_cell.unroll(length, inputs, states, layout,
                                                merge_outputs=True, valid_length=valid_length)
        if self.drop_outputs:
            outputs = F.Dropout(outputs, p=self.drop_outputs, axes=(axis,))
        if merge_outputs is None:
            merge_outputs = isinstance(outputs, _tensor_types)
        outputs, _, _, _ = _format_sequence(length, outputs, layout, merge_outputs)
        if valid_length is not None:
            outputs = _mask_sequence_variable_length(F, outputs, length, valid_length, axis,
                                                     merge_outputs)
        return outputs, states


class LSTMPCell(HybridRecurrentCell):
    """LSTM with a projected recurrent state (note *contrib-rnn-cells*)."""

    def __init__(self, hidden_size, projection_size, i2h_weight_initializer=None,
                 h2h_weight_initializer=None, h2r_weight_initializer=None,
                 i2h_bias_initializer='zeros', h2h_bias_initializer='zeros', input_size=0,
                 prefix=None, params=None):
        super(LSTMPCell, self).__init__(prefix=prefix, params=params)
        self._hidden_size = hidden_size
        self._input_size = input_size
        self._projection_size = projection_size
        g = 4 * hidden_size
        get = self.params.get
        self.i2h_weight = get('i2h_weight', shape=(g, input_size), init=i2h_weight_initializer,
                              allow_deferred_init=True)
        self.h2h_weight = get('h2h_weight', shape=(g, projection_size),
                              init=h2h_weight_initializer, allow_deferred_init=True)
        self.h2r_weight = get('h2r_weight', shape=(projection_size, hidden_size),
                              init=h2r_weight_initializer, allow_deferred_init=True)
        self.i2h_bias = get('i2h_bias', shape=(g,), init=i2h_bias_initializer,
                            allow_deferred_init=True)
        self.h2h_bias = get('h2h_bias', shape=(g,), init=h2h_bias_initializer,
                            allow_deferred_init=True)

    def state_info(self, batch_size=0):
        return [{'shape': (batch_size, self._projection_size), '__layout__': 'NC'},
                {'shape': (batch_size, self._hidden_size), '__layout__': 'NC'}]

    def _alias(self):
        return 'lstmp'

    def __repr__(self):
        shape = self.i2h_weight.shape
        return '{name}({i} -> {h} -> {p})'.format(
            name=self.__class__.__name__, i=shape[1] if shape[1] else None, h=shape[0],
            p=self.h2r_weight.shape[0])

    def hybrid_forward(self, F, inputs, states, i2h_weight, h2h_weight, h2r_weight, i2h_bias,
                       h2h_bias):
        prefix = 't%d_' % self._counter
        n = 4 * self._hidden_size
        i2h = F.FullyConnected(data=inputs, weight=i2h_weight, bias=i2h_bias, num_hidden=n,
                               name=prefix + 'i2h')
        h2h = F.FullyConnected(data=states[0], weight=h2h_weight, bias=h2h_bias, num_hidden=n,
                               name=prefix + 'h2h')
        gates = F.SliceChannel(i2h + h2h, num_outputs=4, name=prefix + 'slice')
        i = F.Activation(gates[0], act_type='sigmoid', name=prefix + 'i')
        f = F.Activation(gates[1], act_type='sigmoid', name=prefix + 'f')
        g = F.Activation(gates[2], act_type='tanh', name=prefix + 'c')
        o = F.Activation(gates[3], act_type='sigmoid', name=prefix + 'o')
        next_c = F.elemwise_add(f * states[1], i * g, name=prefix + 'state')
        hidden = F.elemwise_mul(o, F.Activation(next_c, act_type='tanh'),
                                name=prefix + 'hidden')
        next_r = F.FullyConnected(data=hidden, num_hidden=self._projection_size,
                                  weight=h2r_weight, no_bias=True, name=prefix + 'out')
        return next_r, [next_r, next_c]
