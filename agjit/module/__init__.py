"""``mx.mod``: MXNet 1.x's symbolic training API -- :class:`Module` and
:class:`BucketingModule` -- on agjit's executors (whose forward and backward run the JIT's
compiled kernels).  See :mod:`agjit.module.module` for the semantics kept from MXNet."""
from .base_module import BaseModule
from .module import Module
from .bucketing_module import BucketingModule

__all__ = ["BaseModule", "Module", "BucketingModule"]
