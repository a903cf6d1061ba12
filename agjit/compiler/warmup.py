"""The kernel library warmed once per process in a daemon thread (note *library-warm-up*).

This module imports neither Numba nor the kernel library at import time: starting the
warm-up costs the caller a thread start; the thread does the imports."""
import logging
import os
import sys
import threading
import time

log = logging.getLogger("agjit.jit")

__all__ = ["warm_library", "wait_library", "library_state", "pacing", "tick", "note_call",
           "listen_numba", "pacing_state", "numba_setup", "hold", "release",
           "wait_hold"]


# Note: gil-pacing
#     The tiers' background threads (the library warm-up below and the compile thread of
#     agjit.compiler.tier) run Python that holds the GIL: Numba's import and registries,
#     loading kernels from the disk cache, lowering.  On the same GIL the program's steps
#     run, so each piece of that work would stretch a step by itself plus the wait for the
#     GIL.  While such a thread works (``with pacing():``) it yields after every piece --
#     one module import (a sys.meta_path hook that finds nothing), one Numba compile or
#     cache load and one compiler pass (numba.core.event), one registry install, one
#     warm-up item (:func:`tick`) -- by sleeping so that it holds the GIL at most
#     ``AGJIT_TIER_SHARE`` (default 0.25) of the wall time, but only while the program calls
#     tiered functions (one within the last ``_BUSY_S``, :func:`note_call`): an idle
#     program lends it the whole GIL.  And while any paced thread works the interpreter's
#     switch interval is 0.5 ms instead of 5, so a step that waits for the GIL gets it
#     after at most that (the interval is set back when the last one is done, unless the
#     program changed it meanwhile).  A tiered function's first call (its trace and
#     interpreted run) is *held* (:func:`hold`, until a tiered call that is not a graph's
#     first, a wait for a compile, or ``_HOLD_S``): the background waits for the hold's end where it holds no lock the
#     call could need (:func:`wait_hold`: before a compile job, between warm-up items,
#     before :func:`numba_setup` -- which the eager kernels' thread, agjit.eager_kernels,
#     started by the trace's first Convolution, also runs, paced), so the first call
#     shares the GIL with no Numba import.
_PACED = {}                 # thread ident -> [thread CPU s, wall s at the last yield]
_pace_lock = threading.Lock()
_pace_state = {"active": 0, "switch": None, "hook": None, "listener": None}
_LAST_CALL = [0.0]
_BUSY_S = 0.2
_SWITCH_S = 0.0005
_MIN_SLICE_S = 0.0005


def _share():
    try:
        v = float(os.environ.get("AGJIT_TIER_SHARE", "0.25"))
    except ValueError:
        v = 0.25
    return min(1.0, max(0.02, v))


def note_call():
    """A tiered function was called (the program is stepping): pace the background."""
    _LAST_CALL[0] = time.perf_counter()


_HOLD = [0.0]           # perf_counter until which background work waits (note *gil-pacing*)
_HOLD_S = 2.0


def hold(seconds=_HOLD_S):
    """A tiered first call starts: background Numba work waits until :func:`release` (at
    most ``seconds``)."""
    _LAST_CALL[0] = now = time.perf_counter()
    _HOLD[0] = now + seconds


def release():
    """The held first call has ended (the graph's next call, or a wait for its compile)."""
    if _HOLD[0]:
        _HOLD[0] = 0.0


def wait_hold():
    """Wait while a first call is held (call it holding no lock: not within an import or
    a Numba compile)."""
    while _HOLD[0] and time.perf_counter() < _HOLD[0]:
        time.sleep(0.002)


def tick():
    """A paced thread finished a piece of work: sleep so that it has held the GIL at most
    the share of the time since its last yield (no-op on other threads)."""
    st = _PACED.get(threading.get_ident())
    if st is None:
        return
    used = time.thread_time() - st[0]
    if used < _MIN_SLICE_S:
        return
    now = time.perf_counter()
    ps = _PACE_STATS
    ps["slices"] += 1
    ps["cpu_s"] += used
    if used > ps["longest_slice_s"]:
        ps["longest_slice_s"] = used
    if now - _LAST_CALL[0] < _BUSY_S:
        # the time this piece took beyond its own CPU (waiting for the GIL or a core)
        # counts towards the pause already
        pause = used / _share() - (now - st[1])
        if pause > 0:
            pause = min(pause, 0.1)
            ps["paused_s"] += pause
            time.sleep(pause)
    st[0] = time.thread_time()
    st[1] = time.perf_counter()


_PACE_STATS = {"slices": 0, "cpu_s": 0.0, "longest_slice_s": 0.0, "paused_s": 0.0}


def _pacing_after_fork_in_child():
    """A forked child has none of the paced threads: no pacing, the program's interval."""
    global _pace_lock
    _pace_lock = threading.Lock()
    _PACED.clear()
    st = _pace_state
    if st["active"]:
        st["active"] = 0
        if sys.getswitchinterval() == _SWITCH_S and st["switch"] is not None:
            sys.setswitchinterval(st["switch"])
        hook, st["hook"] = st["hook"], None
        if hook in sys.meta_path:
            sys.meta_path.remove(hook)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_pacing_after_fork_in_child)


def pacing_state():
    """What the pacing did so far (note *gil-pacing*): ``slices`` of paced work, their
    ``cpu_s`` (CPU seconds the paced threads ran, nearly all of it holding the GIL), the
    ``longest_slice_s`` between two yields and the seconds ``paused_s``."""
    return dict(_PACE_STATS)


class _ImportTick:
    """A sys.meta_path finder that finds nothing: it only lets a paced thread yield
    between the modules it imports."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if _PACED:
            tick()
        return None


def listen_numba():
    """Yield points in Numba's compiles and cache loads: called by a thread whose import of
    Numba has finished (importing it here could meet another thread's import halfway)."""
    if _pace_state["listener"] is not None:
        return
    try:
        from numba.core import event as ev

        class _Tick(ev.Listener):
            def on_start(self, e):
                tick()

            def on_end(self, e):
                tick()
        lis = _Tick()
        ev.register("numba:compile", lis)
        ev.register("numba:run_pass", lis)
        _pace_state["listener"] = lis
    except Exception:       # pragma: no cover - Numba internals changed
        _pace_state["listener"] = False


class pacing:
    """``with pacing():`` -- the calling (background) thread is paced (note *gil-pacing*)."""

    def __enter__(self):
        me = threading.get_ident()
        with _pace_lock:
            if me in _PACED:
                self.me = None
                return self
            self.me = me
            _PACED[me] = [time.thread_time(), time.perf_counter()]
            st = _pace_state
            st["active"] += 1
            if st["active"] == 1:
                st["switch"] = sys.getswitchinterval()
                if st["switch"] > _SWITCH_S:
                    sys.setswitchinterval(_SWITCH_S)
                if st["hook"] is None:
                    st["hook"] = _ImportTick()
                    sys.meta_path.insert(0, st["hook"])
        return self

    def __exit__(self, *exc):
        if self.me is None:
            return False
        with _pace_lock:
            _PACED.pop(self.me, None)
            st = _pace_state
            st["active"] -= 1
            if st["active"] == 0:
                if sys.getswitchinterval() == _SWITCH_S and st["switch"] is not None:
                    sys.setswitchinterval(st["switch"])
                hook, st["hook"] = st["hook"], None
                try:
                    sys.meta_path.remove(hook)
                except ValueError:
                    pass
        return False


# Note: library-warm-up
#     The kernel library (kernels.py and the kernels_*.py registered into its LIBRARY,
#     vmath.py) and the fused optimizer kernels are ``@njit(cache=True)`` through agjit's
#     verified cache: compiled once per machine into ``<cache dir>/numba/`` and loaded by
#     later processes.  :func:`warm_library` makes them ready in a daemon thread, started on
#     the compiler's first use (a jitted function or an executor is made): Numba's one-time
#     set-up first (its import, the typing and target registries -- which import SciPy for
#     BLAS), then every signature this machine's cache index holds for a library function
#     (what earlier processes compiled: a load, milliseconds each), or -- on a machine
#     whose cache has none yet -- a float32 base set (the scalar helpers, row kernels,
#     reduce_sum_3d and gemm layouts the common layers use).  Each item runs under Numba's
#     compiler lock, so a compile on the calling thread waits at most one item; base-set
#     compiles wait until no other thread has compiled for a quarter second, and every
#     item waits while a tiers' compile job is in flight (the program's own kernels come
#     first).  At interpreter exit the thread stops before its next item
#     and the running one is waited for (at most ``_EXIT_JOIN_S``, then abandoned: cache
#     files are written atomically, so an abandoned compile leaves no partial file).
#     ``AGJIT_WARM_LIBRARY=0`` turns it off; :func:`library_state` says where it stands and
#     ``warm_library(block=True)`` (or ``wait_library(timeout)``) waits for it.
_warm_lock = threading.Lock()
_warm_thread = [None]
_warm_done = threading.Event()
_warm_stop = threading.Event()
_WARM = {"state": "idle", "seconds": 0.0, "setup_seconds": 0.0, "loaded": 0, "compiled": 0,
         "errors": 0}


def _base_signatures(kernels):
    from numba import types as t
    f32 = t.float32
    a1, a2, a3 = t.float32[::1], t.float32[:, ::1], t.float32[:, :, ::1]
    f2 = t.Array(f32, 2, "F")
    out = [(kernels.LIBRARY[n][0], (f32,)) for n in
           ("relu", "exp", "log", "tanh", "sigmoid", "sqrt")
           if n in kernels.LIBRARY]
    out += [(kernels.maximum, (f32, f32)), (kernels.minimum, (f32, f32)),
            (kernels.softmax_rows, (a2, a2, t.float64)),
            (kernels.log_softmax_rows, (a2, a2, t.float64)),
            (kernels.softmax_cross_entropy_rows, (a2, a1, a1)),
            (kernels.reduce_sum_3d, (a3, a2, t.float64)),
            (kernels.gemm, (a2, f2, a2)), (kernels.gemm, (a2, a2, a2)),
            (kernels.gemm, (f2, a2, a2))]
    return out


def _library_dispatchers():
    from . import kernels, vmath
    seen, out = set(), []
    mods = [kernels, vmath]
    k = sys.modules.get("agjit._optimizer_kernels")
    if k is None:
        try:
            from .. import _optimizer_kernels as k
        except Exception:
            k = None
    if k is not None:
        mods.append(k)
    for m in mods:
        for v in list(vars(m).values()):
            if hasattr(v, "overloads") and hasattr(v, "py_func") and id(v) not in seen:
                seen.add(id(v))
                out.append(v)
    for fn, _cost in kernels.LIBRARY.values():      # the kernels_*.py registered there
        if hasattr(fn, "overloads") and id(fn) not in seen:
            seen.add(id(fn))
            out.append(fn)
    return out, kernels


def _indexed_signatures(disp):
    c = getattr(disp, "_cache", None)
    f = getattr(c, "_cache_file", None)
    if f is None or not hasattr(f, "_load_index"):
        return []
    try:
        return [k[0] for k in f._load_index()]
    except Exception:
        return []


_others = {"active": 0, "last": 0.0}    # compiles of other threads (a numba event listener)
_QUIET_S = 0.25


def _listen_to_other_compiles():
    """Count the Numba compiles of threads other than this one, so that compiling the base
    set (not loading what the cache has) waits while the program compiles its own code."""
    from numba.core import event as ev
    me = threading.get_ident()

    class _Others(ev.Listener):
        def on_start(self, e):
            if threading.get_ident() != me:
                _others["active"] += 1

        def on_end(self, e):
            if threading.get_ident() != me:
                _others["active"] -= 1
                _others["last"] = time.perf_counter()
    lis = _Others()
    ev.register("numba:compile", lis)
    return lambda: ev.unregister("numba:compile", lis)


def _jobs_in_flight(me):
    """Whether a tiers' compile job is in flight (a paced thread other than ``me``)."""
    return any(t != me for t in list(_PACED))


def _yield_to_other_compiles():
    """Wait while another thread compiles -- or a tiers' compile job is in flight: its
    worker process compiles what the program needs, on the core this compile would take."""
    me = threading.get_ident()
    while not _warm_stop.is_set() and (
            _others["active"] > 0 or time.perf_counter() - _others["last"] < _QUIET_S
            or _jobs_in_flight(me)):
        _warm_stop.wait(0.05)


def _yield_to_jobs():
    """Wait while a tiers' compile job is in flight: the loads it needs come first, and
    a library signature it does not need would only share the GIL with the steps."""
    me = threading.get_ident()
    while not _warm_stop.is_set() and _jobs_in_flight(me):
        _warm_stop.wait(0.05)


def _warm_one(disp, sig, polite=False):
    from numba.core.compiler_lock import global_compiler_lock
    if polite:
        _yield_to_other_compiles()
    else:
        _yield_to_jobs()
    if _warm_stop.is_set():
        return False
    with global_compiler_lock:
        if sig in disp.overloads:
            return True
        hits = sum(disp.stats.cache_hits.values())
        disp.compile(sig)
        if sum(disp.stats.cache_hits.values()) > hits:
            _WARM["loaded"] += 1
        else:
            _WARM["compiled"] += 1
    return True


def _refresh_paced(ctx):
    """``ctx.refresh()`` with a yield after each registry it installs (note *gil-pacing*)."""
    inst = ctx.install_registry

    def install(*a, **k):
        try:
            return inst(*a, **k)
        finally:
            tick()
    ctx.install_registry = install
    try:
        ctx.refresh()
    finally:
        del ctx.install_registry


def numba_setup():
    """Numba's one-time set-up, safe on a background thread (it imports Numba and the
    kernel library; a paced thread yields between the registries it installs, note
    *gil-pacing*; the cyclic GC waits meanwhile, and the libraries it loads that take long
    are loaded first with the GIL released, note *setup-gil*)."""
    wait_hold()
    with pacing(), _quiet_gc():
        if not _SETUP_DONE:
            _preload_libraries()
        # Numba and the library's @njit dispatchers, one thread at a time (note
        # *import-race* in import_guard.py)
        from .import_guard import first_import, LIBRARY_MODULES
        first_import(LIBRARY_MODULES)
        _numba_setup()
        _SETUP_DONE.append(True)


# Note: setup-gil
#     Two pieces of Numba's one-time set-up hold the GIL for long stretches that no switch
#     interval can cut, so a step of the program that needs the GIL meanwhile stalls:
#     - the cyclic GC.  Importing Numba, SciPy's linalg and the kernel library allocates
#       some 10^6 long-lived objects, so collections run again and again, and each
#       generation-2 one walks every object of the process (50-180 ms at a time, ~0.2-0.5 s
#       of the set-up's ~1 s of CPU, measured with gc.callbacks).  While the set-up runs
#       (:class:`_quiet_gc`, nested across threads) automatic collection is off; at its end
#       the objects alive then are frozen (``gc.freeze``: moved to the permanent
#       generation, never walked again -- which also keeps the program's own later
#       generation-2 collections, the steps', from walking Numba's objects) and collection
#       is enabled again if it was.  Garbage cycles made during the set-up stay
#       uncollected: the imports make few.
#     - loading a shared library (``dlopen`` of libllvmlite, 10-35 ms; SciPy's
#       _fblas/_flapack, numba._dispatcher, a few ms each), which CPython's import and
#       ctypes.CDLL do holding the GIL.  :func:`_preload_libraries` first dlopens them by
#       a ctypes call of libc's ``dlopen`` (a foreign call releases the GIL) with the
#       flags the later load uses, so that load finds them loaded.
_SETUP_DONE = []
_gc_state = {"n": 0, "was": False}
_gc_lock = threading.Lock()


class _quiet_gc:
    def __enter__(self):
        import gc
        with _gc_lock:
            st = _gc_state
            st["n"] += 1
            if st["n"] == 1:
                st["was"] = gc.isenabled()
                gc.disable()
        return self

    def __exit__(self, *exc):
        import gc
        with _gc_lock:
            st = _gc_state
            st["n"] -= 1
            if st["n"] == 0:
                gc.freeze()
                if st["was"]:
                    gc.enable()
        return False


_PRELOAD = (("llvmlite", "binding/libllvmlite.so", "ctypes"),
            ("numba", "_dispatcher", "ext"), ("numba", "_helperlib", "ext"),
            ("scipy", "linalg/_fblas", "ext"), ("scipy", "linalg/_flapack", "ext"),
            ("scipy", "linalg/cython_lapack", "ext"), ("scipy", "linalg/cython_blas", "ext"),
            ("scipy", "linalg/_matfuncs_expm", "ext"),
            ("scipy", "linalg/_matfuncs_schur_sqrtm", "ext"))


def _preload_libraries():
    """dlopen the shared libraries of ``_PRELOAD`` with the GIL released (note
    *setup-gil*); a library that is missing or fails to load is left to its importer."""
    try:
        import ctypes
        import importlib.machinery
        import importlib.util
        libc = ctypes.CDLL(None)
        dlopen = libc.dlopen
        dlopen.restype = ctypes.c_void_p
        dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
        ext = importlib.machinery.EXTENSION_SUFFIXES[0]
        ext_flags = sys.getdlopenflags()
        ct_flags = ctypes.DEFAULT_MODE | getattr(os, "RTLD_NOW", 2)
        roots = {}
        for pkg, rel, kind in _PRELOAD:
            if pkg in sys.modules and kind == "ctypes":
                continue
            if pkg not in roots:
                spec = importlib.util.find_spec(pkg)
                locs = getattr(spec, "submodule_search_locations", None) if spec else None
                roots[pkg] = locs[0] if locs else None
            if roots[pkg] is None:
                continue
            path = os.path.join(roots[pkg], rel + ("" if kind == "ctypes" else ext))
            if os.path.exists(path):
                dlopen(path.encode(), ct_flags if kind == "ctypes" else ext_flags)
                tick()
    except Exception:   # pragma: no cover - only the GIL's share of a load is at stake
        pass


def _numba_setup():
    from numba.core.compiler_lock import global_compiler_lock
    from numba.core.registry import cpu_target
    listen_numba()
    # the contexts are created first, outside the compiler lock: creating one takes its
    # cached-property lock and then the compiler lock, as a Dispatcher made on the main
    # thread (an @njit at import) does; taking them in the other order here deadlocked
    # with such an import
    cpu_target.typing_context
    cpu_target.target_context
    with global_compiler_lock:
        _refresh_paced(cpu_target.typing_context)
        _refresh_paced(cpu_target.target_context)


def _warm_main():
    with pacing():
        _warm_main_paced()


def _warm_main_paced():
    t0 = time.perf_counter()
    _WARM["state"] = "running"
    try:
        numba_setup()
        _WARM["setup_seconds"] = time.perf_counter() - t0
        disps, kernels = _library_dispatchers()
        todo = [(d, s) for d in disps for s in _indexed_signatures(d)]
        polite = not todo       # compiles (a cold machine): after the program's own compiles
        if polite:
            todo = _base_signatures(kernels)
            unlisten = _listen_to_other_compiles()
        for d, s in todo:
            tick()
            wait_hold()
            try:
                if not _warm_one(d, s, polite):
                    break
            except Exception as e:      # a stale index entry: the call compiles it later
                _WARM["errors"] += 1
                log.debug("agjit.jit: library warm-up of %s%s failed (%s)", d, s, e)
        if polite:
            unlisten()
        _WARM["state"] = "stopped" if _warm_stop.is_set() else "done"
    except Exception as e:              # pragma: no cover - Numba internals changed
        _WARM["state"] = "failed: %s" % e
    finally:
        _WARM["seconds"] = time.perf_counter() - t0
        _warm_done.set()


_EXIT_JOIN_S = 10.0


def _warm_at_exit():
    # no new item after this; the one running is waited for (an LLVM compile that runs
    # on, GIL released, while the interpreter finalises could crash the exit)
    _warm_stop.set()
    t = _warm_thread[0]
    if t is not None and t.is_alive():
        t.join(_EXIT_JOIN_S)


def warm_library(block=False, timeout=None):
    """Start (once per process) the background warm-up of the kernel library (note
    *library-warm-up*); with ``block`` wait for it (at most ``timeout`` s).  Returns True
    when the warm-up has finished (or is off)."""
    if os.environ.get("AGJIT_WARM_LIBRARY", "1") in ("0", "false", "False", "no"):
        return True
    with _warm_lock:
        if _warm_thread[0] is None:
            import atexit
            t = threading.Thread(target=_warm_main, name="agjit-library-warm-up", daemon=True)
            _warm_thread[0] = t
            atexit.register(_warm_at_exit)
            t.start()
    if block:
        _warm_done.wait(timeout)
    return _warm_done.is_set()


def wait_library(timeout=None):
    """Wait until the library warm-up has finished (True) or ``timeout`` s passed (False);
    True at once when it was never started."""
    if _warm_thread[0] is None:
        return True
    return _warm_done.wait(timeout)


def library_state():
    """The warm-up's state: ``state`` (idle, running, done, stopped, failed: ...),
    ``seconds``, ``setup_seconds`` (Numba's registries), and how many library signatures it
    ``loaded`` from the disk cache or ``compiled``."""
    return dict(_WARM)
