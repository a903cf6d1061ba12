"""``mx.gluon``: MXNet 1.x's Gluon API (blocks, parameters, layers, losses, Trainer, data,
model zoo) on agjit; ``HybridBlock.hybridize()`` replays through ``mx.jit``'s compiled kernels."""
from .parameter import *  # noqa: F401,F403
from .block import *  # noqa: F401,F403
from .trainer import *  # noqa: F401,F403
from . import nn  # noqa: F401
from . import rnn  # noqa: F401
from . import loss  # noqa: F401
from . import utils  # noqa: F401
from . import data  # noqa: F401
from . import model_zoo  # noqa: F401
from . import contrib  # noqa: F401
