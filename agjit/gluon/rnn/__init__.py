"""``gluon.rnn``: recurrent cells (one step per call, ``unroll``) and the fused layers RNN,
LSTM and GRU (MXNet 1.9.1's API, parameter names and gate orders)."""
from .rnn_cell import *  # noqa: F401,F403
from .rnn_layer import *  # noqa: F401,F403
