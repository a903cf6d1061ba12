"""Compatibility only: the JIT runtime is one module per concept now (agjit/compiler/README.md
maps them).  This module re-exports the old names for importers that still use them; new code
imports from the modules themselves, and generated kernels import from agjit.compiler.rt.
Nothing here is part of a kernel's cache key."""
from .rt import eager_op, PAR_LOCK  # noqa: F401
from .shapes import infer_graph  # noqa: F401
from .signature import CacheInfo, KernelStats  # noqa: F401
from .trace import Tracer  # noqa: F401
from .program import CompiledGraph  # noqa: F401
from .decorator import jit, JitFunction  # noqa: F401

__all__ = ["eager_op", "PAR_LOCK", "infer_graph", "CacheInfo", "KernelStats", "Tracer",
           "CompiledGraph", "jit", "JitFunction"]
