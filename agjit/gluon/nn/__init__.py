"""``gluon.nn``: MXNet 1.9.1's neural-network layers (basic, convolution/pooling, activations)
and containers, plus Block/HybridBlock/SymbolBlock as MXNet's ``nn`` re-exports them."""
from ..block import *  # noqa: F401,F403
from .containers import *  # noqa: F401,F403
from .basic_layers import *  # noqa: F401,F403
from .conv_layers import *  # noqa: F401,F403
from .activations import *  # noqa: F401,F403
