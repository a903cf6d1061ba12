"""Errors, dtype codes and the MXNet attribute-string grammar shared by the whole project.

Attribute strings are *parsed* with a small hand-written reader, never evaluated: a graph
JSON file is untrusted input.
"""
import os
import tempfile

import numpy as np

__all__ = ["atomic_write", "MXNetError", "DTYPE_CODES", "CODE_DTYPES", "parse_literal", "AttrParseError",
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


# Created files get the permissions an ordinary open() would give them (mkstemp makes
# them 0600); the umask is read once, at import, because reading it means setting it.
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(fname, chunks, mode="wb"):
    """Write the byte (or text, with ``mode='w'``) ``chunks`` to ``fname`` atomically.

    The chunks go to a temporary file next to ``fname`` (same directory, so the final
    rename never crosses file systems), which is flushed, synced and then renamed over
    ``fname`` with :func:`os.replace`.  If producing or writing any chunk fails the
    temporary file is removed and ``fname`` keeps its previous content (or stays absent).
    """
    fname = os.fspath(fname)
    d = os.path.dirname(os.path.abspath(fname))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(fname), suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, fname)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
