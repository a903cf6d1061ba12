"""Kernel cache: keys built from named parts, an in-memory LRU and a disk cache of generated
sources compiled with Numba's ``cache=True``.

Note: kernel-cache
    A kernel is identified by a :class:`KernelKey`: the graph structure hash, per-input
    dtype/ndim/layout and broadcast pattern, training mode, which inputs need gradients,
    the versions of agjit, numba and numpy, and a hash of the kernel library (kernels.py and
    lower.py).  Each part is hashed separately and loggable, so a miss across processes can
    be traced to one part.

    Generated sources are written to ``<cache dir>/k_<sha256 of key and code>.py`` (the code
    digest ignores comments, which carry the shapes of the first trace): content addressed,
    written atomically (temp file + ``os.replace``), never rewritten.  Numba's own
    cache (``__pycache__`` beside the file) then makes a fresh process with a warm cache
    compile nothing.  A file whose content no longer matches its name is rebuilt with a
    warning; an unwritable directory falls back to an in-memory module with a warning.
    ``AGJIT_CACHE_DIR`` chooses the directory (default: the user's cache directory);
    ``AGJIT_CACHE=0`` disables the disk cache.
"""
import collections
import dataclasses
import hashlib
import importlib.util
import linecache
import logging
import os
import sys
import threading
import types
import warnings

import numba
import numpy as np

from symbol.base import atomic_write

log = logging.getLogger("agjit.jit")

__all__ = ["KernelKey", "cache_dir", "load_module", "library_hash"]


def _version():
    import agjit
    return agjit.__version__


_LIB_HASH = []


def library_hash():
    """Hash of the kernel library, vmath and the lowering (their source files): Numba's cache of
    a generated segment does not notice changes in code inlined into it."""
    if not _LIB_HASH:
        h = hashlib.sha256()
        here = os.path.dirname(os.path.abspath(__file__))
        for f in ("kernels.py", "vmath.py", "lower.py", "runtime.py"):
            with open(os.path.join(here, f), "rb") as fh:
                h.update(fh.read())
        _LIB_HASH.append(h.hexdigest()[:16])
    return _LIB_HASH[0]


@dataclasses.dataclass(frozen=True)
class KernelKey:
    graph: str                 # structure hash of the (forward or backward) graph
    inputs: tuple              # per input: (dtype, ndim, layout, broadcast pattern)
    training: bool
    grad_mask: tuple           # which inputs need gradients
    kind: str                  # "forward", "forward_train", "backward"
    agjit: str = dataclasses.field(default_factory=_version)
    numba: str = numba.__version__
    numpy: str = np.__version__
    library: str = dataclasses.field(default_factory=library_hash)

    def parts(self):
        """Each named part with a short hash (for logs and explain())."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = hashlib.sha256(repr(v).encode()).hexdigest()[:10]
        return out

    def digest(self):
        return hashlib.sha256(repr(dataclasses.astuple(self)).encode()).hexdigest()


def cache_enabled():
    return os.environ.get("AGJIT_CACHE", "1") not in ("0", "false", "False", "no")


def cache_dir():
    d = os.environ.get("AGJIT_CACHE_DIR")
    if d:
        return d
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "agjit", "kernels")


_mem_lock = threading.Lock()
_memory = collections.OrderedDict()     # source digest -> module
_MEMORY_MAX = 256


def _module_from_memory(name, source):
    """Build a module from source without a file (disk cache off or unwritable).  The source
    is registered with linecache so tracebacks and inspect still show it."""
    fname = "<agjit-kernel %s>" % name
    linecache.cache[fname] = (len(source), None, source.splitlines(True), fname)
    mod = types.ModuleType(name)
    mod.__file__ = fname
    # cache=True needs a real file; strip it for in-memory modules
    src = source.replace("@njit(cache=True", "@njit(cache=False")
    code = compile(src, fname, "exec")
    exec(code, mod.__dict__)
    return mod


def load_module(key, code_digest_, source):
    """Load (or build) the module for generated ``source`` under ``key`` (a KernelKey).

    The file name is the hash of the key's parts and the code's digest, so a change of any
    named part (versions, kernel library, dtypes, training mode, gradient mask) or of the
    generated code gives a new file; the file is checked against ``code_digest_`` when it
    is reused.  Returns (module, from_disk_file: bool).
    """
    from .lower import code_digest
    digest = hashlib.sha256((key.digest() + code_digest_).encode()).hexdigest()
    with _mem_lock:
        mod = _memory.get(digest)
        if mod is not None:
            _memory.move_to_end(digest)
            return mod, getattr(mod, "_agjit_on_disk", False)
    log.debug("agjit.jit: building kernel %s (%s) from key parts %s", digest[:16], key.kind,
              key.parts())
    header = "# kernel key: %s\n# code digest: %s\n" % (
        ", ".join("%s=%s" % kv for kv in key.parts().items()), code_digest_)
    source = header + source
    name = "agjit_k_" + digest[:24]
    mod = None
    on_disk = False
    if cache_enabled():
        d = cache_dir()
        path = os.path.join(d, "k_%s.py" % digest[:32])
        try:
            os.makedirs(d, exist_ok=True)
            ok = False
            if os.path.exists(path):
                try:
                    with open(path, "r") as f:
                        ok = code_digest(f.read()) == code_digest_
                except (OSError, UnicodeDecodeError):
                    ok = False
                if not ok:
                    warnings.warn("agjit: cached kernel %s is corrupted (content does not match "
                                  "its hash); rebuilding it" % path, RuntimeWarning, stacklevel=3)
                    _purge_numba_cache(d, "k_%s" % digest[:32])
            if not ok:
                atomic_write(path, [source], mode="w")
            if not os.access(d, os.W_OK):
                raise PermissionError(d)
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
            on_disk = True
        except (OSError, PermissionError) as e:
            warnings.warn("agjit: kernel cache directory %s is not usable (%s); compiling in "
                          "memory only" % (d, e), RuntimeWarning, stacklevel=3)
            mod = None
    if mod is None:
        mod = _module_from_memory(name, source)
    mod._agjit_on_disk = on_disk
    with _mem_lock:
        _memory[digest] = mod
        while len(_memory) > _MEMORY_MAX:
            _memory.popitem(last=False)
    return mod, on_disk


def _purge_numba_cache(d, stem):
    pc = os.path.join(d, "__pycache__")
    try:
        for f in os.listdir(pc):
            if f.startswith(stem + "."):
                try:
                    os.unlink(os.path.join(pc, f))
                except OSError:
                    pass
    except OSError:
        pass
