"""``gluon.model_zoo``: MXNet 1.9.1's predefined vision models (``vision``) and the local store
of their pretrained weights (``model_store``)."""
from . import model_store  # noqa: F401
from . import vision  # noqa: F401
from .vision import get_model  # noqa: F401
