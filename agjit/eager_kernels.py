"""Eager calls of the compiled kernels the JIT uses for the CNN and BatchNorm ops (note
*eager-kernels*).

Note: eager-kernels
    ``mx.nd.Convolution`` and friends run outside ``mx.jit`` through :func:`forward_of`:
    the ops in :data:`OPS` get a forward that calls the op's own lowering -- the
    KernelCall statements the JIT would generate (symbol/ops/nn_conv.py, nn_extra.py,
    nn_norm.py), run as plain Python that calls the kernel library
    (agjit.compiler.kernels_nn / kernels_norm: im2col + NumPy's OpenBLAS sgemm, the
    pooling window loops, the fused BatchNorm passes) -- once those kernels are compiled,
    and the op's NumPy kernel until then or where the lowering does not apply (3-D,
    channel-last layouts, a Deconvolution target_shape, float16 / integer data, mixed
    dtypes, empty arrays).

    A first call never waits for Numba: it queues the call's *signature* -- the statements
    and the inputs' dtypes and ndims -- and runs NumPy; one daemon thread (started on the
    first queued signature; it imports Numba) runs the statements once on a copy of one
    sample of the inputs (the kernels hold the GIL while they run; the whole inputs where
    shape inference refuses one sample), which loads the kernels from agjit's verified disk cache
    (agjit.compiler.numba_cache, under ``AGJIT_CACHE_DIR``) or compiles them there, and
    marks the signature ready; later calls with it run compiled.  Inputs are made
    C-contiguous first, so a ready signature never meets a layout Numba has not compiled.
    Kernel types depend only on dtypes and ndims (geometry travels as int64 values), so a
    new layer geometry or batch size costs a load, not a compile.  Results agree with the
    NumPy kernels to rounding (the GEMMs sum in another order; BatchNorm's statistics are
    accumulated in float64): tests/test_eager_fast.py.  So two eager runs of the same
    code may differ in the last bits when the switch happens between them (the test suite
    runs with ``AGJIT_EAGER_KERNELS=0`` for that reason; tests/conftest.py).

    ``AGJIT_EAGER_KERNELS``: ``1`` (default) as above; ``sync`` compiles on the calling
    thread at the first call (deterministic: every call after it is compiled); ``0`` always
    NumPy.  :func:`set_mode` changes it at run time, :func:`wait` waits for the queue, and
    :func:`state` says what was prepared, loaded and run.
"""
import logging
import os
import threading

import numpy as np

from symbol.lowering import KernelCall
from symbol.ops._lowering import LowerCtx
from symbol.registry import get_op

log = logging.getLogger("agjit.eager_kernels")

__all__ = ["OPS", "forward_of", "set_mode", "mode", "wait", "state"]

OPS = ("Convolution", "_backward_Convolution_data", "_backward_Convolution_weight",
       "Deconvolution", "_backward_Deconvolution_data", "_backward_Deconvolution_weight",
       "Pooling", "_backward_Pooling", "_pooling_max_select",
       "BatchNorm", "_backward_BatchNorm",
       "softmax", "log_softmax", "_backward_log_softmax")
_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_MODES = ("1", "sync", "0")

_mode = [None]
_lock = threading.Lock()
_calls = {}         # (op name, attr values, shapes, dtype) -> _Call, or False (NumPy only)
_ready = {}         # signature -> the statements as a Python function, or False (failed)
_queue = []         # (signature, _Call, input copies) waiting for the worker
_queued = set()
_wake = threading.Condition(_lock)
_idle = threading.Event()
_idle.set()
_worker = [None]
_stop = threading.Event()
_STATS = {"prepared": 0, "loaded": 0, "failed": 0, "compiled_calls": 0, "numpy_calls": 0}
_MAX_CALLS = 2048


def mode():
    """The current mode: ``"1"`` (background), ``"sync"`` or ``"0"`` (off)."""
    m = _mode[0]
    if m is None:
        m = os.environ.get("AGJIT_EAGER_KERNELS", "1").strip().lower()
        m = {"true": "1", "yes": "1", "on": "1", "false": "0", "no": "0", "off": "0"}.get(m, m)
        if m not in _MODES:
            log.warning("AGJIT_EAGER_KERNELS=%r is not one of 1, sync, 0: using 1", m)
            m = "1"
        _mode[0] = m
    return m


def set_mode(m):
    """Set the mode (``"1"``, ``"sync"``, ``"0"``, or None: from the environment again);
    returns the previous one."""
    prev = mode()
    if m is not None:
        m = str(m).lower()
        if m not in _MODES:
            raise ValueError("eager_kernels.set_mode: %r is not one of 1, sync, 0" % (m,))
    _mode[0] = m
    return prev


class _Node:
    """What LowerCtx reads of a graph node."""
    __slots__ = ("op", "parsed")

    def __init__(self, op, parsed):
        self.op, self.parsed = op, parsed


class _Call:
    """One (op, attrs, shapes, dtype) prepared for a compiled call: the statements'
    signature and the outputs to allocate."""
    __slots__ = ("sig", "src", "used", "out_shapes", "out_dtypes")


def _prepare(op, parsed, arrays):
    """The _Call for these inputs, or False where the compiled kernels do not apply."""
    dt = arrays[0].dtype
    if dt not in _DTYPES or any(a.dtype != dt or a.size == 0 for a in arrays):
        return False
    low = op.lowering.select(parsed) if op.lowering is not None else None
    if not isinstance(low, KernelCall):
        return False
    in_shapes = [a.shape for a in arrays]
    nout = op.num_outputs(parsed)
    out_shapes = op.infer_shape(parsed, in_shapes)[1][:nout]
    out_dtypes = op.infer_type(parsed, [dt.name] * len(arrays))[1][:nout]
    if any(s is None or not all(s) for s in out_shapes) or \
            any(np.dtype(t) not in _DTYPES for t in out_dtypes):
        return False
    ins = ["__IN%d__" % k for k in range(len(arrays))]
    outs = ["__OUT%d__" % k for k in range(nout)]
    ctx = LowerCtx(_Node(op, parsed), ins, outs, in_shapes, out_shapes, dt.name, [0],
                   uses=low.uses)
    lines = low.emit(ctx)
    if not isinstance(lines, (list, tuple)) or not lines:
        return False
    c = _Call()
    c.src = "def run(%s, __R_train__):\n    %s\n" % (", ".join(ins + outs),
                                                    "\n    ".join(lines))
    c.used = tuple(ctx.used)
    c.out_shapes = [tuple(s) for s in out_shapes]
    c.out_dtypes = [np.dtype(t) for t in out_dtypes]
    c.sig = (c.src, tuple((a.dtype.name, a.ndim) for a in arrays))
    _STATS["prepared"] += 1
    return c


def _build(c):
    """The statements of ``c`` as a function over the kernel library (imports Numba)."""
    from .compiler.import_guard import first_import, LIBRARY_MODULES
    first_import(LIBRARY_MODULES)       # note *import-race*
    from .compiler.kernels import LIBRARY
    ns = {"np": np}
    for name in c.used:
        ns[name] = LIBRARY[name][0]
    exec(compile(c.src, "<agjit eager kernels>", "exec"), ns)    # noqa: S102 (our own text)
    return ns["run"]


def _run(fn, c, arrays, train, out_shapes=None):
    outs = [np.empty(s, dtype=t) for s, t in zip(out_shapes or c.out_shapes, c.out_dtypes)]
    fn(*arrays, *outs, train)
    return outs


_PARAMS = ("weight", "bias", "gamma", "beta", "moving_mean", "moving_var")


def _trial(op, parsed, arrays, c):
    """Inputs (copies) and output shapes for the run that compiles ``c``: the arrays of the
    highest rank cut to one sample where shape inference accepts that (the kernels then
    run on 1/N of the data; they hold the GIL while they run), else the whole inputs."""
    top = max(a.ndim for a in arrays)
    try:
        names = op.input_names(parsed)
    except Exception:               # noqa: BLE001 - no names: cut nothing
        names = _PARAMS * len(arrays)
    # parameters keep their shape: a weight cut to one filter would no longer match the
    # geometry the statements index it by (a kernel reading past its end: a segfault in
    # the trial of _backward_Convolution_data, W8 training at batch 16)
    small = [a[:1] if a.ndim == top and a.shape[0] > 1 and n not in _PARAMS else a
             for a, n in zip(arrays, list(names) + [_PARAMS[0]] * len(arrays))]
    if any(s is not a for s, a in zip(small, arrays)):
        try:
            shapes = op.infer_shape(parsed, [s.shape for s in small])[1][:len(c.out_shapes)]
            if all(x is not None and all(x) for x in shapes):
                return [np.array(s, order="C") for s in small], [tuple(x) for x in shapes]
        except Exception:           # noqa: BLE001 - e.g. BatchNorm over axis 0
            pass
    return [a.copy() for a in arrays], None


def _load(c, arrays, out_shapes=None):
    """Build ``c``'s function and run it once on ``arrays`` (copies: the kernels compile
    or load); record the result for its signature."""
    try:
        fn = _build(c)
        _run(fn, c, arrays, True, out_shapes)
        _ready[c.sig] = fn
        _STATS["loaded"] += 1
    except Exception as e:          # a kernel that refuses these inputs: NumPy from now on
        _ready[c.sig] = False
        _STATS["failed"] += 1
        log.debug("agjit: eager kernels of %s fall back to NumPy (%s)", c.src, e)


def _work():
    try:
        from .compiler.warmup import numba_setup
        numba_setup()
    except Exception as e:          # pragma: no cover - Numba missing or broken
        log.debug("agjit: eager kernels off (%s)", e)
    while True:
        with _lock:
            while not _queue and not _stop.is_set():
                _idle.set()
                _wake.wait()
            if _stop.is_set():
                _idle.set()
                return
            sig, c, arrays, out_shapes = _queue.pop(0)
        if sig not in _ready:
            _load(c, arrays, out_shapes)
        with _lock:
            _queued.discard(sig)


_EXIT_JOIN_S = 10.0


def _at_exit():
    # no new item after this; the running one is waited for (a compile running on while
    # the interpreter finalises could crash the exit), at most _EXIT_JOIN_S
    with _lock:
        _stop.set()
        _wake.notify_all()
    t = _worker[0]
    if t is not None and t.is_alive():
        t.join(_EXIT_JOIN_S)


def _request(op, parsed, c, arrays):
    with _lock:
        if c.sig in _queued or _stop.is_set():
            return
        _queued.add(c.sig)
        _queue.append((c.sig, c) + tuple(_trial(op, parsed, arrays, c)))
        _idle.clear()
        if _worker[0] is None:
            import atexit
            t = threading.Thread(target=_work, name="agjit-eager-kernels", daemon=True)
            _worker[0] = t
            atexit.register(_at_exit)
            t.start()
        _wake.notify()


def _after_fork():
    # a forked child has no worker thread (and maybe a lock held by a parent thread): it
    # starts its own on its next queued signature; what was ready stays ready
    global _lock, _wake
    _lock = threading.Lock()
    _wake = threading.Condition(_lock)
    _worker[0] = None
    del _queue[:]
    _queued.clear()
    _idle.set()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def wait(timeout=None):
    """Wait until every queued signature is ready (or failed); True when the queue is empty."""
    return _idle.wait(timeout)


def state():
    """Counters: signatures ``prepared`` (main thread), ``loaded`` / ``failed`` (worker),
    calls run ``compiled_calls`` / ``numpy_calls`` by the ops of :data:`OPS`, and ``ready``
    (signatures usable now) and ``queued``."""
    out = dict(_STATS)
    out["ready"] = sum(1 for v in _ready.values() if v is not False)
    out["queued"] = len(_queued)
    out["mode"] = mode()
    return out


def forward_of(op):
    """The eager forward of OpDef ``op``: compiled kernels when ready, else its NumPy
    kernel (``op.forward``); ``op.forward`` itself for ops not in :data:`OPS`."""
    np_forward = op.forward
    if op.name not in OPS:
        return np_forward
    name = op.name
    calls, ready, stats = _calls, _ready, _STATS

    def forward(parsed, arrays, ctx):
        m = _mode[0] or mode()
        if m != "0":
            try:
                key = (name, tuple(parsed.values()), tuple([a.shape for a in arrays]),
                       arrays[0].dtype)
                c = calls.get(key)
            except TypeError:           # an unhashable attribute value
                key = c = False
            if c is None:
                if len(calls) > _MAX_CALLS:
                    calls.clear()
                c = calls[key] = _prepare(op, parsed, arrays)
            if c is not False:
                fn = ready.get(c.sig)
                if fn is None:
                    arrays = [a if a.flags.c_contiguous else np.ascontiguousarray(a)
                              for a in arrays]
                    if m == "sync":
                        _load(c, *_trial(op, parsed, arrays, c))
                        fn = ready.get(c.sig)
                    else:
                        _request(op, parsed, c, arrays)
                if fn:
                    arrays = [a if a.flags.c_contiguous else np.ascontiguousarray(a)
                              for a in arrays]
                    try:
                        out = _run(fn, c, arrays, ctx is not None and bool(ctx.is_train))
                    except Exception as e:      # pragma: no cover - a kernel bug
                        ready[c.sig] = False
                        log.warning("agjit: compiled eager %s failed (%s); NumPy from now on",
                                    name, e)
                    else:
                        stats["compiled_calls"] += 1
                        return out
        stats["numpy_calls"] += 1
        return np_forward(parsed, arrays, ctx)

    forward.__name__ = "eager_" + name
    forward.__doc__ = "%s's eager forward (agjit.eager_kernels note *eager-kernels*)." % name
    return forward


_FORWARD = {}


def table():
    """{OpDef: eager forward} for the ops of :data:`OPS` (what agjit.ndarray dispatches)."""
    if not _FORWARD:
        for n in OPS:
            op = get_op(n)
            _FORWARD[op] = forward_of(op)
    return _FORWARD
