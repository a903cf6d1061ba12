"""``mx.jit``: trace, lower to Numba, cache and replay (see agjit.compiler.decorator note
*jit-runtime*, agjit.compiler.lower note *lowering*, agjit.compiler.cache note *kernel-cache*)."""
from .decorator import jit, JitFunction, CacheInfo  # noqa: F401

__all__ = ["jit", "JitFunction", "CacheInfo"]
