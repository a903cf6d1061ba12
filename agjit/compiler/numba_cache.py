"""Numba's on-disk cache, kept where agjit controls it and verified before anything is
unpickled.

Note: verified-cache
    Numba's ``cache=True`` pickles compiled code into ``.nbi`` (index) and ``.nbc`` (data)
    files beside the source file (or in ``NUMBA_CACHE_DIR``) and unpickles them on load:
    whoever can write those files runs code in the next process.  agjit therefore never
    passes ``cache=True`` to Numba.  Its own ``njit`` (this module) takes ``cache=True``
    to mean: if the agjit disk cache is on (``AGJIT_CACHE``) and its directory passes
    :func:`cache_root` (owned by this user, not group/world-writable, created 0700), the
    dispatcher gets a :class:`VerifiedFunctionCache` whose files live in
    ``<cache dir>/numba/`` and are each one frame: a magic string, an HMAC-SHA256 of the
    payload keyed by this cache directory's secret key (``.key``, 32 random bytes, 0600,
    made on first use), then the payload.  A file is unpickled only if its owner is this
    user and its MAC verifies; anything else (missing, truncated, bit-flipped, planted,
    unpicklable, or a payload Numba fails to rebuild) is a cache miss: the function is
    compiled and the entry rewritten.  Writing is best effort: a full disk, a read-only
    directory or any other failure while saving leaves the compiled function in memory and
    warns once; it never makes the call fail.  The Numba source stamp of a generated kernel
    is the digest of its code (agjit.compiler.cache), of a library module (kernels.py,
    vmath.py, _optimizer_kernels.py) the SHA-256 of its file joined with the library hash
    (code compiled from one library file inlines the library functions it calls).  With the disk cache off or
    refused, functions are compiled in memory only and nothing is written anywhere.
"""
import errno
import hashlib
import hmac
import os
import pickle
import stat
import sys
import threading
import warnings

import numba
from numba.core import caching as _nc

from .cache_paths import cache_enabled, cache_dir

__all__ = ["njit", "cache_root", "register_source", "MAGIC"]

MAGIC = b"AGJIT-NB1\n"
_KEY_NAME = ".key"
_lock = threading.Lock()
_warned = set()
_roots = {}             # cache dir -> (root, key) or None (refused)
_sources = {}           # source path of a generated kernel -> its stamp
_file_stamps = {}       # library source path -> sha256 of its bytes
_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _warn_once(key, msg):
    with _lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)




def _check_dir(d):
    """None when directory ``d`` may hold code for this user, else the reason it may not."""
    try:
        st = os.stat(d)
    except OSError as e:
        return str(e)
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return "owned by uid %d, not by this user (uid %d)" % (st.st_uid, os.getuid())
    if st.st_mode & 0o022:
        return "group- or world-writable (mode %o)" % stat.S_IMODE(st.st_mode)
    return None


def _make_dir(d):
    """Create ``d`` (and missing parents) with mode 0700 whatever the umask."""
    if os.path.isdir(d):
        return
    parent = os.path.dirname(os.path.abspath(d))
    if parent != d and not os.path.isdir(parent):
        _make_dir(parent)
    try:
        os.mkdir(d, 0o700)
        os.chmod(d, 0o700)          # the umask may have removed bits; never adds any
    except FileExistsError:
        pass


def cache_root(d=None):
    """``(directory, key)`` of the agjit disk cache, or None when it is off or refused
    (refusal warns once per directory).  The directory is created 0700; it is refused when
    it is not owned by this user or is group/world-writable, or when its key cannot be read
    or made."""
    if not cache_enabled():
        return None
    d = os.path.abspath(d or cache_dir())
    with _lock:
        if d in _roots:
            return _roots[d]
    res = None
    try:
        _make_dir(d)
        why = _check_dir(d)
        if why is None:
            res = (d, _read_or_make_key(d))
    except OSError as e:
        why = str(e)
    if res is None:
        _warn_once(("dir", d), "agjit: kernel cache directory %s is not usable (%s); compiling "
                   "in memory only" % (d, why))
    with _lock:
        _roots[d] = res
    return res


def _read_or_make_key(d):
    path = os.path.join(d, _KEY_NAME)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            key = os.urandom(32)
            tmp = "%s.%d.tmp" % (path, os.getpid())
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, key)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)      # first writer wins; never replaces a key in use
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
            continue
        try:
            st = os.fstat(fd)
            if hasattr(os, "getuid") and st.st_uid != os.getuid() or st.st_mode & 0o077:
                raise OSError(errno.EPERM, "cache key %s is not private to this user" % path)
            key = os.read(fd, 64)
        finally:
            os.close(fd)
        if len(key) != 32:
            raise OSError(errno.EINVAL, "cache key %s is malformed" % path)
        return key
    raise OSError(errno.EAGAIN, "cannot create the cache key %s" % path)


def mac(key, payload):
    return hmac.new(key, payload, hashlib.sha256).digest()


def read_verified(path, key):
    """The payload of the frame at ``path`` (see the note *verified-cache*), or None when the
    file is missing, not this user's, or does not verify."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or hasattr(os, "getuid") and st.st_uid != os.getuid():
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            blob = f.read()
    except OSError:
        return None
    finally:
        os.close(fd)
    n = len(MAGIC)
    if len(blob) < n + 32 or blob[:n] != MAGIC:
        return None
    payload = blob[n + 32:]
    if not hmac.compare_digest(blob[n:n + 32], mac(key, payload)):
        return None
    return payload


def write_verified(path, key, payload):
    """Write the frame of ``payload`` at ``path`` atomically, mode 0600."""
    from symbol.base import atomic_write
    atomic_write(path, [MAGIC, mac(key, payload), payload], perm=0o600)


def register_source(path, stamp):
    """Declare that functions compiled from ``path`` (a generated kernel compiled from
    verified bytes) get the Numba cache stamp ``stamp``."""
    _sources[os.path.abspath(path)] = stamp


def _library_stamp(path):
    """A library function's Numba source stamp: its file's SHA-256 and the kernel library's
    hash (agjit.compiler.cache.library_hash).  Numba compiles a library function together
    with the library functions it calls from other files (conv3d_fwd with kernels_nn's
    conv2d_fwd), and its own file's stamp alone would reload that machine code after only
    the callee's file changed."""
    st = _file_stamps.get(path)
    if st is None:
        from .cache import library_hash
        with open(path, "rb") as f:
            st = hashlib.sha256(f.read()).hexdigest() + "-" + library_hash()
        _file_stamps[path] = st
    return st


class _Locator(_nc._CacheLocator):
    """Files of one source file's functions in ``<cache dir>/numba/<subdir>``."""

    def __init__(self, py_func, py_file, cache_path, stamp):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = cache_path
        self._stamp = stamp

    def ensure_cache_path(self):
        _make_dir(self._cache_path)

    def get_cache_path(self):
        return self._cache_path

    def get_source_stamp(self):
        return self._stamp

    def get_disambiguator(self):
        return str(self._lineno)

    @classmethod
    def from_function(cls, py_func, py_file):
        return None     # only agjit's njit makes these (never picked by Numba's search)


class _Impl(_nc.CompileResultCacheImpl):
    def __init__(self, py_func, locator):       # no locator search: ours is given
        self._lineno = py_func.__code__.co_firstlineno
        self._locator = locator
        qualname = getattr(py_func, "__qualname__", py_func.__name__)
        modname = os.path.splitext(os.path.basename(locator._py_file))[0]
        self._filename_base = self.get_filename_base("%s.%s" % (modname, qualname),
                                                     getattr(sys, "abiflags", ""))


class _VerifiedFile(_nc.IndexDataCacheFile):
    """Numba's index/data files, each a verified frame (see the note *verified-cache*)."""

    def __init__(self, cache_path, filename_base, source_stamp, key):
        super().__init__(cache_path, filename_base, source_stamp)
        self._key = key

    def load(self, key):
        try:
            overloads = self._load_index()
            name = overloads.get(key)
            if name is None:
                return None
            return self._load_data(name)
        except Exception:           # unpicklable or foreign: a miss, rebuilt on save
            return None

    def _load_index(self):
        payload = read_verified(self._index_path, self._key)
        if payload is None:
            return {}
        try:
            version, stamp, overloads = pickle.loads(payload)
        except Exception:
            return {}
        if version != self._version or stamp != self._source_stamp or \
                not isinstance(overloads, dict):
            return {}
        return overloads

    def _save_index(self, overloads):
        write_verified(self._index_path, self._key,
                       self._dump((self._version, self._source_stamp, overloads)))

    def _load_data(self, name):
        payload = read_verified(self._data_path(name), self._key)
        if payload is None:
            raise OSError(errno.ENOENT, "no verified cache entry")
        return pickle.loads(payload)

    def _save_data(self, name, data):
        write_verified(self._data_path(name), self._key, self._dump(data))


class VerifiedFunctionCache(_nc.FunctionCache):
    """A Numba FunctionCache on verified files under agjit's cache directory, whose
    failures are misses (loading) or warnings (saving), never errors of the call."""

    def __init__(self, py_func, locator, key):
        self._name = repr(py_func)
        self._py_func = py_func
        self._impl = _Impl(py_func, locator)
        self._cache_path = locator.get_cache_path()
        self._cache_file = _VerifiedFile(self._cache_path, self._impl.filename_base,
                                         locator.get_source_stamp(), key)
        self.enable()

    def load_overload(self, sig, target_context):
        try:
            return super().load_overload(sig, target_context)
        except Exception:
            return None     # a verified entry that does not rebuild: compiled and rewritten

    def save_overload(self, sig, data):
        try:
            super().save_overload(sig, data)
        except Exception as e:
            _warn_once(("save", self._cache_path, type(e)),
                       "agjit: cannot write the Numba cache in %s (%s); the compiled code stays "
                       "in memory for this process" % (self._cache_path, e))


def _subdir(py_file):
    d = os.path.dirname(os.path.abspath(py_file))
    return "%s_%s" % (os.path.basename(d), hashlib.sha256(d.encode()).hexdigest()[:16])


def cache_path_for(py_file):
    """The directory of the Numba cache files of the functions of ``py_file``."""
    root = cache_root()
    d = root[0] if root else os.path.abspath(cache_dir())
    if os.path.dirname(os.path.abspath(py_file)) == d:
        # generated kernels: independent of where the cache directory is (a copied or
        # moved warm cache stays warm)
        return os.path.join(d, "numba", "kernels")
    return os.path.join(d, "numba", _subdir(py_file))


def enable_verified_cache(disp):
    """Give dispatcher ``disp`` a verified disk cache when the agjit cache is usable and its
    function comes from a generated kernel compiled from verified bytes or from agjit's own
    package; otherwise leave it memory-only."""
    root = cache_root()
    if root is None:
        return disp
    d, key = root
    py_func = disp.py_func
    path = os.path.abspath(py_func.__code__.co_filename)
    stamp = _sources.get(path)
    if stamp is None:
        if not path.startswith(_PKG_DIR + os.sep) or not os.path.isfile(path):
            return disp
        try:
            stamp = _library_stamp(path)
        except OSError:
            return disp
    try:
        loc = _Locator(py_func, path, cache_path_for(path), stamp)
        disp._cache = VerifiedFunctionCache(py_func, loc, key)
    except Exception as e:      # pragma: no cover - numba internals changed
        _warn_once(("enable", type(e)), "agjit: Numba disk cache unavailable (%s)" % e)
    return disp


def njit(*args, cache=False, **options):
    """``numba.njit`` whose ``cache=True`` is agjit's verified cache (see the note
    *verified-cache*); Numba's own file cache is never used."""
    if args and callable(args[0]) and not isinstance(args[0], (str, list, tuple)):
        return njit(cache=cache, **options)(args[0])
    dec = numba.njit(*args, cache=False, **options)

    def wrap(fn):
        disp = dec(fn)
        return enable_verified_cache(disp) if cache else disp
    return wrap
