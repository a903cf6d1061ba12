"""One lock around the first imports of Numba and of the kernel library (Numba-free).

Note: import-race
    Numba's package imports its submodules in cycles (``numba.core.compiler_lock`` is
    imported from inside ``numba``'s own import, and again by the modules it imports).
    When two threads run such first imports at once -- the background Numba set-up
    (warmup.numba_setup, on the compile thread or the eager kernels' thread) and the
    program's thread reaching ``compiler/cache.py`` through ``program._lower`` -- each can
    hold one module's import lock while it waits for the other's, and CPython's import
    machinery breaks that cycle by raising ``_DeadlockError`` in one of them.  Every path
    that can import Numba or the kernel library for the first time therefore calls
    :func:`first_import` (or enters :data:`LOCK`) first: one thread runs the imports, the
    others wait, then find them done.  Once they are done the check is one dict lookup and
    no lock is taken.  The lock is taken only from function bodies, never while a module
    of the guarded set is being imported (the lock would otherwise be ordered after a
    module lock), and it is reentrant so a guarded path may call another.
"""

import importlib
import sys
import threading

LOCK = threading.RLock()

#: the modules whose first import the lock serialises (their imports import the rest)
NUMBA_MODULES = ("numba", "agjit.compiler.numba_cache", "agjit.compiler.cache")
LIBRARY_MODULES = NUMBA_MODULES + ("agjit.compiler.kernels",)


def _done(names):
    mods = sys.modules
    for n in names:
        m = mods.get(n)
        if m is None:
            return False
        spec = getattr(m, "__spec__", None)
        if spec is not None and getattr(spec, "_initializing", False):
            return False
    return True


def first_import(names=NUMBA_MODULES):
    """Import ``names`` (in order) under :data:`LOCK` unless all are imported already."""
    if _done(names):
        return
    with LOCK:
        for n in names:
            importlib.import_module(n)
