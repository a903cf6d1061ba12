"""``mx.jit``: trace, lower to Numba, cache and replay (see agjit.compiler.jit note
*jit-runtime*, agjit.compiler.lower note *lowering*, agjit.compiler.cache note *kernel-cache*)."""
from .jit import jit, JitFunction, CacheInfo  # noqa: F401

__all__ = ["jit", "JitFunction", "CacheInfo"]
