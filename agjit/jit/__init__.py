"""``mx.jit``: trace, lower to Numba, cache and replay (see agjit.jit.runtime note
*jit-runtime*, agjit.jit.lower note *lowering*, agjit.jit.cache note *kernel-cache*)."""
from .runtime import jit, JitFunction, CacheInfo  # noqa: F401

__all__ = ["jit", "JitFunction", "CacheInfo"]
