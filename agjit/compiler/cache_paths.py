"""Where agjit's disk cache lives and whether it is on -- without importing Numba (the tiers'
compile thread asks before Numba is set up: agjit.compiler.tier note *tiers*)."""
import os

__all__ = ["cache_enabled", "cache_dir"]


def cache_enabled():
    return os.environ.get("AGJIT_CACHE", "1") not in ("0", "false", "False", "no")


def cache_dir():
    d = os.environ.get("AGJIT_CACHE_DIR")
    if d:
        return d
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "agjit", "kernels")
