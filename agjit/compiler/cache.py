"""Kernel cache: keys built from named parts, an in-memory LRU and a disk cache of generated
sources compiled with Numba's ``cache=True``.

Note: kernel-cache
    A kernel is identified by a :class:`KernelKey`: the graph structure hash, per-input
    dtype/ndim/layout and broadcast pattern, training mode, which inputs need gradients,
    the versions of agjit, numba and numpy, and a hash of the kernel library (kernels.py and
    lower.py).  Each part is hashed separately and loggable, so a miss across processes can
    be traced to one part.

    Generated sources are written to ``<cache dir>/k_<sha256 of key and code>.py`` (the
    code digest ignores comments, which carry the shapes of the first trace): content
    addressed, written atomically (agjit's atomic writer, mode 0600), never rewritten, and
    ending in a ``# agjit-mac:`` line, an HMAC-SHA256 of every byte before it keyed by the
    cache directory's secret (agjit.compiler.numba_cache note *verified-cache*).  The file is
    never imported: it is read, its MAC and its code digest are checked, it passes
    lower.check_source, and the verified text is compiled and executed as a module
    (no ``.pyc`` is read or written; a coding declaration in a str is ignored).  Its Numba
    functions use agjit's verified Numba cache (``<cache dir>/numba/``), so a fresh process
    with a warm cache compiles nothing.  A file that fails any check is rebuilt with a
    warning, and so is one that passes but fails to compile; a cache directory that is not
    this user's or is group/world-writable, or that cannot be created, is refused with a
    warning (memory-only kernels); a read-only warm cache is used as it is; a failure to
    write (full disk) leaves the kernel in memory.  ``AGJIT_CACHE_DIR`` chooses the
    directory (default: the user's cache directory); ``AGJIT_CACHE=0`` disables the disk
    cache (nothing is written, Numba's included).
"""
import collections
import dataclasses
import hashlib
import hmac
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
    return agjit.agjit_version


_LIB_HASH = []

# the files whose code generated kernels run, inline or are written by: the kernel library,
# vmath, the lowering stages (lower, oplower, schedule, codegen, names) and rt.py (what
# generated modules import from the runtime) -- not the rest of the JIT runtime, so
# rewording explain() invalidates no cached kernel
LIBRARY_FILES = ("kernels.py", "kernels_norm.py", "kernels_shape.py", "kernels_nn.py", "kernels_rnn.py",
                 "kernels_sort.py", "kernels_nn3d.py", "vmath.py",
                 "lower.py", "oplower.py", "schedule.py", "codegen.py", "names.py", "rt.py")


def library_hash():
    """Hash of the kernel library, vmath and the lowering (their source files): Numba's cache of
    a generated segment does not notice changes in code inlined into it."""
    if not _LIB_HASH:
        h = hashlib.sha256()
        here = os.path.dirname(os.path.abspath(__file__))
        for f in LIBRARY_FILES:
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


from .numba_cache import cache_dir  # noqa: E402  (one definition)
from . import numba_cache as _nbc  # noqa: E402

_mem_lock = threading.Lock()
_memory = collections.OrderedDict()     # source digest -> module
_MEMORY_MAX = 256
_MAC_PREFIX = "# agjit-mac: "


def _module_from_memory(name, source):
    """Build a module from source without a file (disk cache off, refused or unwritable).
    The source is registered with linecache so tracebacks and inspect still show it; its
    Numba functions are compiled in memory only."""
    fname = "<agjit-kernel %s>" % name
    linecache.cache[fname] = (len(source), None, source.splitlines(True), fname)
    mod = types.ModuleType(name)
    mod.__file__ = fname
    exec(compile(source, fname, "exec", dont_inherit=True), mod.__dict__)
    return mod


def _sealed(source, mkey):
    body = source.encode("ascii")
    return body + (_MAC_PREFIX + _nbc.mac(mkey, body).hex() + "\n").encode("ascii")


def _read_kernel(path, mkey):
    """The verified text of kernel file ``path`` (without its MAC line), None when it is
    absent, or False when it exists but fails a check (owner, MAC, ASCII)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            return False
        with os.fdopen(os.dup(fd), "rb") as f:
            blob = f.read()
    except OSError:
        return False
    finally:
        os.close(fd)
    k = blob.rfind(b"\n", 0, len(blob) - 1)
    body, last = blob[:k + 1], blob[k + 1:]
    want = (_MAC_PREFIX + _nbc.mac(mkey, body).hex() + "\n").encode("ascii")
    if k < 0 or not hmac.compare_digest(last, want):
        return False
    try:
        return body.decode("ascii")
    except UnicodeDecodeError:
        return False


def _exec_file_module(name, path, text, stamp):
    """Compile and run verified kernel ``text`` as module ``name`` whose file is ``path``;
    its Numba functions are cached under the stamp ``stamp``."""
    from .lower import check_source
    check_source(text)
    _nbc.register_source(path, stamp)
    linecache.cache[path] = (len(text), None, text.splitlines(True), path)
    mod = types.ModuleType(name)
    mod.__file__ = path
    code = compile(text, path, "exec", dont_inherit=True)
    sys.modules[name] = mod
    exec(code, mod.__dict__)
    return mod


def load_module(key, code_digest_, source):
    """Load (or build) the module for generated ``source`` under ``key`` (a KernelKey).

    The file name is the hash of the key's parts and the code's digest, so a change of any
    named part (versions, kernel library, dtypes, training mode, gradient mask) or of the
    generated code gives a new file; a reused file must pass its MAC and match
    ``code_digest_`` (note *kernel-cache*).  Returns (module, from_disk_file: bool).
    """
    from .lower import code_digest
    from .warmup import tick
    tick()                  # a yield of a paced compile thread (compiler note *gil-pacing*)
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
    root = _nbc.cache_root()
    if root is not None:
        d, mkey = root
        stem = "k_%s" % digest[:32]
        path = os.path.join(d, stem + ".py")
        text = _read_kernel(path, mkey)
        if text is False or (text is not None and code_digest(text) != code_digest_):
            warnings.warn("agjit: cached kernel %s is corrupted (it fails its MAC or its content "
                          "does not match its hash); rebuilding it" % path, RuntimeWarning,
                          stacklevel=3)
            _purge_numba_cache(path)
            text = None
        for attempt in (0, 1):
            if text is None:
                try:
                    atomic_write(path, [_sealed(source, mkey)], perm=0o600)
                except OSError as e:
                    warnings.warn("agjit: kernel cache directory %s is not usable (%s); "
                                  "compiling in memory only" % (d, e), RuntimeWarning,
                                  stacklevel=3)
                    break
                text = source
            try:
                mod = _exec_file_module(name, path, text, digest)
                on_disk = True
                break
            except Exception as e:
                if attempt or text == source:
                    raise
                # a verified entry that does not compile (e.g. made by another agjit build
                # with the same key): rebuilt from the source generated now
                warnings.warn("agjit: cached kernel %s fails to load (%s: %s); rebuilding it"
                              % (path, type(e).__name__, e), RuntimeWarning, stacklevel=3)
                _purge_numba_cache(path)
                text = None
    if mod is None:
        mod = _module_from_memory(name, source)
    mod._agjit_on_disk = on_disk
    from .segments import share_segments
    share_segments(mod, source)
    with _mem_lock:
        _memory[digest] = mod
        while len(_memory) > _MEMORY_MAX:
            _memory.popitem(last=False)
    return mod, on_disk


def _purge_numba_cache(path):
    """Remove the Numba cache files of the functions of kernel file ``path``."""
    pc = _nbc.cache_path_for(path)
    stem = os.path.splitext(os.path.basename(path))[0]
    try:
        for f in os.listdir(pc):
            if f.startswith(stem + "."):
                try:
                    os.unlink(os.path.join(pc, f))
                except OSError:
                    pass
    except OSError:
        pass

