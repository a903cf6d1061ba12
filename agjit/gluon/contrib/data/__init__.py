"""``gluon.contrib.data``: contributed data utilities (MXNet 1.9.1's ``IntervalSampler``).
MXNet's ``contrib.data.text`` (WikiText2/103, which download their corpora) is not here."""
from . import sampler  # noqa: F401
from .sampler import *  # noqa: F401,F403
