"""Operator definitions, one module per family.  Importing this package registers every op."""
from . import elemwise  # noqa: F401
from . import reduce  # noqa: F401
from . import shape  # noqa: F401
from . import nn  # noqa: F401
from . import custom  # noqa: F401
from . import random  # noqa: F401
from . import loss_heads  # noqa: F401
from . import select  # noqa: F401
from . import legacy  # noqa: F401
from . import linalg  # noqa: F401
from . import detection  # noqa: F401
from . import creation  # noqa: F401
from . import math_extra  # noqa: F401
from . import rnn  # noqa: F401
from . import ctc  # noqa: F401
from . import image  # noqa: F401
from . import nn_extra  # noqa: F401
