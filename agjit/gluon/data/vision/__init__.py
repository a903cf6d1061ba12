"""``mx.gluon.data.vision``: image datasets read from local files, and transforms."""
from .datasets import *  # noqa: F401,F403
from . import transforms  # noqa: F401
