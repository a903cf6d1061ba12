"""placeholder: filled in by the Gluon work."""
from .containers import *  # noqa: F401,F403
