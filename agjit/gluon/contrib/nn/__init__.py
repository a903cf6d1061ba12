"""``gluon.contrib.nn``: contributed layers (MXNet 1.9.1's names and behaviour)."""
from . import basic_layers  # noqa: F401
from .basic_layers import *  # noqa: F401,F403

__all__ = basic_layers.__all__
