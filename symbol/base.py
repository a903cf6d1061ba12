"""Errors, dtype codes and the MXNet attribute-string grammar shared by the whole project.

Attribute strings are *parsed* with a small hand-written reader, never evaluated: a graph
JSON file is untrusted input.
"""
import os

import numpy as np

__all__ = ["atomic_write", "atomic_write_group", "MXNetError", "DTYPE_CODES", "CODE_DTYPES", "parse_literal", "AttrParseError",
           "dtype_name", "np_dtype"]


class MXNetError(RuntimeError):
    """The error MXNet raises for user errors (``mxnet.base.MXNetError`` is a RuntimeError)."""


# MXNet's type codes (py/ndarray/ndarray.py _DTYPE_NP_TO_MX)
DTYPE_CODES = {"float32": 0, "float64": 1, "float16": 2, "uint8": 3, "int32": 4, "int8": 5,
               "int64": 6, "bool": 7}
CODE_DTYPES = {v: k for k, v in DTYPE_CODES.items()}


def dtype_name(dt):
    """Normalise anything NumPy accepts as a dtype (or an MXNet type code) to its name."""
    if dt is None:
        return None
    if isinstance(dt, (int, np.integer)) and not isinstance(dt, bool):
        if int(dt) in CODE_DTYPES:
            return CODE_DTYPES[int(dt)]
        raise MXNetError("unknown MXNet dtype code %r" % (dt,))
    try:
        name = np.dtype(dt).name
    except TypeError as e:
        raise MXNetError("invalid dtype %r: %s" % (dt, e)) from None
    if name not in DTYPE_CODES:
        # MXNet 1.x has no complex, uint16/32/64 or string arrays (Invalid Input ... valid
        # values are ...); NumPy would accept them and compute silently
        raise MXNetError("invalid dtype %r: %s is not an MXNet dtype (valid values are: %s)"
                         % (dt if isinstance(dt, str) else name, name,
                            ", ".join(sorted(DTYPE_CODES))))
    return name


def np_dtype(dt):
    return np.dtype(dtype_name(dt))


class AttrParseError(ValueError):
    pass


_MAX_DEPTH = 32


def parse_literal(text):
    """Parse an MXNet attribute literal: numbers, None, True/False (any case), quoted or bare
    strings, and (nested) tuples/lists such as ``(3, 3)``, ``[2,6]``, ``(None, 1)``, ``(-1,)``.

    Returns Python values (tuples for sequences).  Bare words come back as ``str``.
    Raises AttrParseError on malformed input.  Never evaluates anything.
    """
    if not isinstance(text, str):
        raise AttrParseError("attribute value must be a string, got %s" % type(text).__name__)
    p = _Reader(text)
    v = p.value(0)
    p.skip_ws()
    if p.i != len(p.s):
        raise AttrParseError("trailing characters in %r" % text)
    return v


class _Reader:
    __slots__ = ("s", "i")

    def __init__(self, s):
        self.s = s
        self.i = 0

    def skip_ws(self):
        s, i = self.s, self.i
        while i < len(s) and s[i] in " \t\r\n":
            i += 1
        self.i = i

    def value(self, depth):
        if depth > _MAX_DEPTH:
            raise AttrParseError("literal nested too deeply")
        self.skip_ws()
        s = self.s
        if self.i >= len(s):
            raise AttrParseError("unexpected end of literal")
        c = s[self.i]
        if c in "([":
            close = ")" if c == "(" else "]"
            self.i += 1
            items = []
            trailing_comma = False
            while True:
                self.skip_ws()
                if self.i >= len(s):
                    raise AttrParseError("unterminated sequence in %r" % s)
                if s[self.i] == close:
                    self.i += 1
                    break
                items.append(self.value(depth + 1))
                self.skip_ws()
                if self.i < len(s) and s[self.i] == ",":
                    self.i += 1
                    trailing_comma = True
                    continue
                trailing_comma = False
                self.skip_ws()
                if self.i >= len(s) or s[self.i] != close:
                    raise AttrParseError("expected ',' or %r in %r" % (close, s))
            del trailing_comma
            return tuple(items)
        if c in "'\"":
            j = s.find(c, self.i + 1)
            if j < 0:
                raise AttrParseError("unterminated string in %r" % s)
            v = s[self.i + 1:j]
            self.i = j + 1
            return v
        j = self.i
        while j < len(s) and s[j] not in ",()[] \t\r\n":
            j += 1
        tok = s[self.i:j]
        self.i = j
        if not tok:
            raise AttrParseError("empty token in %r" % s)
        low = tok.lower()
        if low == "none" or low == "null":
            return None
        if low == "true":
            return True
        if low == "false":
            return False
        try:
            return int(tok)
        except ValueError:
            pass
        try:
            if low.lstrip("+-") in ("nan", "inf", "infinity") or any(ch.isdigit() for ch in tok):
                return float(tok)
        except ValueError:
            pass
        return tok


# Created files get the permissions an ordinary open() would give them (the temporary is
# created 0600); the umask is read once, at import, because reading it means setting it.
_UMASK = os.umask(0)
os.umask(_UMASK)


def default_file_mode():
    """The permission bits a new file gets here (0o666 less the process umask, read once at
    import: os.umask can only be read by setting it, which races with other threads)."""
    return 0o666 & ~_UMASK


# Note: atomic-write
#     Every file the project writes goes through :func:`atomic_write`: the bytes go to a
#     temporary ``.<name>.<pid>.<random>.tmp`` in the same directory (created O_EXCL, 0600),
#     are flushed and fsynced, get their final mode, and are renamed over the target with
#     ``os.replace``.  A reader never sees half a file.  A writer killed before the rename
#     (``kill -9``, power loss) leaves its temporary behind; the next write of the same
#     target removes the temporaries of that target whose writer is dead (its pid names no
#     live process on this host) and that have not been modified for STALE_TMP_AGE seconds
#     (a live writer's temporary, e.g. a concurrent save of the same file from another
#     process, is never removed: its pid is alive).  A writer in another pid namespace or
#     host sharing the directory must not keep a temporary untouched for STALE_TMP_AGE.
STALE_TMP_AGE = 10.0


def _tmp_pattern(base):
    import re
    return re.compile(r"\A\.%s\.(\d+)\.[0-9a-f]{8}\.tmp\Z" % re.escape(base))


def _pid_alive(pid):
    if pid == os.getpid() or os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True         # exists (another user's), or cannot tell: keep the file
    return True


def clean_stale_temporaries(fname):
    """Remove the temporaries of ``fname`` left by dead writers (note *atomic-write*);
    returns the number removed."""
    import time
    d = os.path.dirname(os.path.abspath(fname))
    pat = _tmp_pattern(os.path.basename(fname))
    removed = 0
    try:
        names = os.listdir(d)
    except OSError:
        return 0
    now = time.time()
    for n in names:
        m = pat.match(n)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        p = os.path.join(d, n)
        try:
            if now - os.lstat(p).st_mtime < STALE_TMP_AGE:
                continue
            os.unlink(p)
            removed += 1
        except OSError:
            pass
    return removed


def create_temporary(fname):
    """A fresh temporary next to ``fname`` (note *atomic-write*: O_EXCL, 0600, named so that
    clean_stale_temporaries finds it), after removing dead writers' temporaries of it.
    Returns ``(fd, path)``; the caller writes it and renames it over ``fname``."""
    fname = os.fspath(fname)
    d = os.path.dirname(os.path.abspath(fname))
    base = os.path.basename(fname)
    clean_stale_temporaries(fname)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(d, ".%s.%d.%s.tmp" % (base, os.getpid(), os.urandom(4).hex()))
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError("cannot create a temporary file next to %s" % fname)


def _write_temporary(fname, chunks, mode, perm):
    """Write ``chunks`` to a fresh temporary next to ``fname`` (note *atomic-write*), flushed,
    fsynced and given its final mode; returns its path.  On failure nothing is left."""
    fd, tmp = create_temporary(fname)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode() if perm is None else perm)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return tmp


def _unlink_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def atomic_write(fname, chunks, mode="wb", perm=None):
    """Write the byte (or text, with ``mode='w'``) ``chunks`` to ``fname`` atomically
    (note *atomic-write*).

    If producing or writing any chunk fails the temporary file is removed and ``fname``
    keeps its previous content (or stays absent).  ``perm`` is the final mode (default:
    0666 less the umask, what ``open()`` would give).
    """
    tmp = _write_temporary(fname, chunks, mode, perm)
    try:
        os.replace(tmp, os.fspath(fname))
    except BaseException:
        _unlink_quietly(tmp)
        raise


def atomic_write_group(items, perm=None):
    """Write several files as one step as far as a file system allows: ``items`` is a list
    of ``(fname, chunks, mode)``.  Every file is first written completely to its own
    temporary (flushed and fsynced); if producing or writing any of them fails, all the
    temporaries are removed and no target is touched.  Only then are the temporaries
    renamed over their targets, one after the other **in the order given**, and the
    directories fsynced.  A crash during the renames can leave the first files new and the
    later ones old, never a partial file: callers order the items so that such a mix is
    detectable (mx.model.save_checkpoint publishes the params before the symbol and records
    a shared graph id in both; see agjit.model note *checkpoint-format*)."""
    temps = []
    try:
        for fname, chunks, mode in items:
            temps.append((_write_temporary(fname, chunks, mode, perm), os.fspath(fname)))
    except BaseException:
        for tmp, _f in temps:
            _unlink_quietly(tmp)
        raise
    dirs = []
    try:
        while temps:
            tmp, fname = temps[0]
            os.replace(tmp, fname)
            temps.pop(0)
            d = os.path.dirname(os.path.abspath(fname))
            if d not in dirs:
                dirs.append(d)
    finally:
        for tmp, _f in temps:
            _unlink_quietly(tmp)
    for d in dirs:
        try:
            fd = os.open(d, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
