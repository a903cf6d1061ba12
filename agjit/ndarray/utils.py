"""``mx.nd.save`` / ``mx.nd.load``: MXNet 1.x's binary NDArray list format (``.params`` files).

Note: ndarray-file-format
    All integers are little-endian.  A file is::

        uint64  0x112                 list magic (kMXAPINDArrayListMagic)
        uint64  0                     reserved
        uint64  N                     number of arrays
        N x array
        uint64  K                     number of names: 0 (list form) or N (dict form)
        K x (uint64 length, length bytes of UTF-8)

    and one array (``NDArray::Save`` since MXNet 1.0) is::

        uint32  0xF993FAC9            V2 magic (0xF993FACA = V3: saved under NumPy shape
                                      semantics, where 0-d and zero-size shapes are legal)
        int32   storage type          0 = default (dense); 1/2 = row_sparse/csr (not read here)
        int32   ndim                  then ndim x int64 dimensions
        -- stop here for an empty ("none") array: ndim 0 in V2, ndim -1 in V3 --
        int32   dev_type, int32 dev_id   the context it was saved from (1 = cpu, 2 = gpu, ...)
        int32   type flag             0 f32, 1 f64, 2 f16, 3 u8, 4 i32, 5 i8, 6 i64, 7 bool
        bytes   the data, C order, prod(shape) * itemsize bytes

    Older files are read too: V1 (magic 0xF993FAC8, no storage type; uint32 ndim + int64
    dims) and the pre-V1 layout, which has no magic at all (its first uint32 is ndim,
    followed by uint32 dimensions).

    ``save`` writes V2 for every array with at least one dimension and no zero-size
    dimension, exactly what MXNet 1.9.1 writes by default; a 0-d array or one with a
    zero-size dimension can only be expressed in V3, which real MXNet loads only inside
    ``mx.util.np_shape(True)``.  Context is always written as cpu(0).

Reading checks every field and every length against the bytes that are there: a truncated or
corrupted file raises :class:`MXNetError` naming the file, what was being read and the byte
offset where reading failed.  Writing goes to a temporary file in the target directory that
is renamed over the target only once it is complete, so a failing writer (or a crash) never
leaves a partial file behind.
"""
import os
import struct

import numpy as np

from symbol.base import MXNetError, DTYPE_CODES, CODE_DTYPES
from .ndarray import NDArray, _wrap

__all__ = ["save", "load", "load_frombuffer", "save_tobuffer", "atomic_write"]

LIST_MAGIC = 0x112
V1_MAGIC = 0xF993FAC8
V2_MAGIC = 0xF993FAC9
V3_MAGIC = 0xF993FACA

_DEFAULT_STORAGE = 0
_UNDEFINED_STORAGE = -1
_STORAGE_NAMES = {1: "row_sparse", 2: "csr"}
_CPU = 1
_DEV_TYPES = {1: "cpu", 2: "gpu", 3: "cpu_pinned", 5: "cpu_shared"}
_MAX_NDIM = 32                     # MXNet's own limit on tensor rank

_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")

# The atomic writer lives in symbol.base (the lowest layer), shared with Symbol.save and the
# kernel cache.
from symbol.base import atomic_write  # noqa: E402


# ---------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------
def _check_fname(fname, what):
    if isinstance(fname, os.PathLike):
        fname = os.fspath(fname)
    if not isinstance(fname, str):
        raise TypeError("fname required to be a string" if what == "load"
                        else "%s: fname required to be a string, got %s"
                        % (what, type(fname).__name__))
    return fname


def _normalise(data):
    """(list of NDArray, list of names) in MXNet's accepted forms, with MXNet's errors."""
    if isinstance(data, NDArray):
        return [data], []
    if isinstance(data, dict):
        keys = list(data.keys())
        vals = list(data.values())
        if any(not isinstance(k, str) for k in keys) or \
                any(not isinstance(v, NDArray) for v in vals):
            raise TypeError("save only accept dict str->NDArray or list of NDArray")
        return vals, keys
    if isinstance(data, list):
        if any(not isinstance(v, NDArray) for v in data):
            raise TypeError("save only accept dict str->NDArray or list of NDArray")
        return list(data), []
    raise ValueError("data needs to either be a NDArray, dict of str, NDArray pairs "
                     "or a list of NDarrays.")


def _encode_array(a, where):
    """The byte chunks of one array (``a`` a NumPy array)."""
    name = a.dtype.name
    code = DTYPE_CODES.get(name)
    if code is None:
        raise MXNetError("save: %s has dtype %s, which MXNet's NDArray format cannot hold "
                         "(supported: %s)" % (where, name, ", ".join(DTYPE_CODES)))
    legacy_ok = a.ndim > 0 and all(d > 0 for d in a.shape)
    head = [_U32.pack(V2_MAGIC if legacy_ok else V3_MAGIC), _I32.pack(_DEFAULT_STORAGE),
            _I32.pack(a.ndim)]
    head += [_I64.pack(d) for d in a.shape]
    head += [_I32.pack(_CPU), _I32.pack(0), _I32.pack(code)]
    yield b"".join(head)
    if a.size:
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        yield memoryview(a).cast("B")


def _encode(arrays, names, reserved=0):
    """The byte chunks of a file; ``reserved`` goes in the reserved header word (MXNet writes
    0 and ignores it on load; mx.model.save_checkpoint records a graph id there)."""
    yield _U64.pack(LIST_MAGIC) + _U64.pack(reserved) + _U64.pack(len(arrays))
    for k, arr in enumerate(arrays):
        where = ("array %r" % names[k]) if names else ("array %d" % k)
        yield from _encode_array(arr._data, where)
    yield _U64.pack(len(names))
    for n in names:
        b = n.encode("utf-8")
        yield _U64.pack(len(b)) + b


def save(fname, data):
    """Save NDArrays to ``fname`` in MXNet's binary format (loadable by MXNet 1.x's
    ``mx.nd.load``; see the module note *ndarray-file-format*).

    Parameters
    ----------
    fname : str
        The file; it is written atomically (a temporary file, then a rename).
    data : NDArray, list of NDArray or dict of str to NDArray
        A dict is saved with its keys (``load`` gives a dict back), a list without names
        (``load`` gives a list).  The dict order is kept.

    Examples
    --------
    >>> import agjit as mx, tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), 'x.params')
    >>> mx.nd.save(f, {'arg:w': mx.nd.ones((2, 3))})
    >>> mx.nd.load(f)['arg:w'].shape
    (2, 3)
    """
    fname = _check_fname(fname, "save")
    arrays, names = _normalise(data)
    for k, arr in enumerate(arrays):         # refuse before touching the file system
        if arr._data.dtype.name not in DTYPE_CODES:
            where = ("array %r" % names[k]) if names else ("array %d" % k)
            raise MXNetError("save: %s has dtype %s, which MXNet's NDArray format cannot "
                             "hold (supported: %s)" % (where, arr._data.dtype.name,
                                                       ", ".join(DTYPE_CODES)))
    atomic_write(fname, _encode(arrays, names))


def save_tobuffer(data):
    """The bytes :func:`save` would write for ``data``."""
    arrays, names = _normalise(data)
    return b"".join(bytes(c) for c in _encode(arrays, names))


# ---------------------------------------------------------------------------------------
# reading
# ---------------------------------------------------------------------------------------
class _Reader:
    """Bounds-checked little-endian reads over a buffer; every failure names the source,
    the field and the byte offset."""

    def __init__(self, buf, source):
        self.buf = memoryview(buf)
        self.pos = 0
        self.source = source

    def fail(self, msg, at=None):
        raise MXNetError("load: %s is not a valid MXNet NDArray file: %s at byte offset %d"
                         % (self.source, msg, self.pos if at is None else at))

    def take(self, n, what):
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            self.fail("truncated while reading %s (need %d bytes, %d left)"
                      % (what, n, len(self.buf) - self.pos))
        b = self.buf[self.pos:end]
        self.pos = end
        return b

    def unpack(self, st, what):
        if self.pos + st.size > len(self.buf):
            self.fail("truncated while reading %s (need %d bytes, %d left)"
                      % (what, st.size, len(self.buf) - self.pos))
        v = st.unpack_from(self.buf, self.pos)[0]
        self.pos += st.size
        return v

    def left(self):
        return len(self.buf) - self.pos


def _read_dims(r, ndim, st, what):
    if r.left() < ndim * st.size:
        r.fail("truncated while reading the %d dimensions of %s (need %d bytes, %d left)"
               % (ndim, what, ndim * st.size, r.left()))
    return tuple(r.unpack(st, "a dimension of %s" % what) for _ in range(ndim))


def _read_body(r, shape, what, start):
    """Context, type flag and data after the shape; returns an NDArray."""
    dev_at = r.pos
    dev_type = r.unpack(_I32, "the device type of %s" % what)
    if dev_type not in _DEV_TYPES:
        r.fail("%s has unknown device type %d" % (what, dev_type), dev_at)
    r.unpack(_I32, "the device id of %s" % what)
    flag_at = r.pos
    flag = r.unpack(_I32, "the type flag of %s" % what)
    if flag not in CODE_DTYPES:
        r.fail("%s has unknown type flag %d (known: %s)"
               % (what, flag, ", ".join("%d=%s" % kv for kv in sorted(CODE_DTYPES.items()))),
               flag_at)
    dt = np.dtype(CODE_DTYPES[flag]).newbyteorder("<")
    count = 1
    for d in shape:
        count *= d
    span = 1
    for d in shape:
        span *= max(d, 1)
    if span * dt.itemsize >= _MAX_BYTES:
        # a zero-size array whose other dimensions NumPy cannot even describe
        r.fail("%s has a shape %s too large for any array" % (what, shape), start)
    data = r.take(count * dt.itemsize, "the %d %s values of %s (shape %s, starting at byte "
                  "%d)" % (count, dt.name, what, shape, start))
    a = np.frombuffer(data, dtype=dt).astype(dt.newbyteorder("="), copy=True).reshape(shape)
    return _wrap(a)


_MAX_BYTES = 1 << 62
_HEAD = struct.Struct("<Iii")          # magic, storage type, ndim
_BODY = struct.Struct("<iii")          # device type, device id, type flag
_DIMS = [struct.Struct("<%dq" % k) for k in range(_MAX_NDIM + 1)]
_FAST_DTYPES = {code: np.dtype(name).newbyteorder("<") for code, name in CODE_DTYPES.items()}


def _read_array_fast(r):
    """The common case -- a dense V2 array of 1..32 dims, cpu/gpu context, known type, data
    all there -- read with three struct calls; None when anything is unusual, so that
    :func:`_read_array` reads it field by field with its precise errors."""
    buf, pos = r.buf, r.pos
    n = len(buf)
    if pos + 12 > n:
        return None
    magic, stype, ndim = _HEAD.unpack_from(buf, pos)
    if magic != V2_MAGIC or stype != _DEFAULT_STORAGE or not 0 < ndim <= _MAX_NDIM:
        return None
    p = pos + 12 + 8 * ndim
    if p + 12 > n:
        return None
    shape = _DIMS[ndim].unpack_from(buf, pos + 12)
    dev, _dev_id, flag = _BODY.unpack_from(buf, p)
    dt = _FAST_DTYPES.get(flag)
    if dt is None or dev not in _DEV_TYPES:
        return None
    count = 1
    for d in shape:
        if d <= 0:
            return None
        count *= d
    nbytes = count * dt.itemsize
    p += 12
    if p + nbytes > n:
        return None
    a = np.frombuffer(buf, dtype=dt, count=count, offset=p)
    if not dt.isnative:
        a = a.astype(dt.newbyteorder("="))
    else:
        a = a.copy()
    r.pos = p + nbytes
    return _wrap(a.reshape(shape))


def _read_array(r, k):
    what = "array %d" % k
    start = r.pos
    magic = r.unpack(_U32, "the magic number of %s" % what)
    if magic in (V2_MAGIC, V3_MAGIC):
        st_at = r.pos
        stype = r.unpack(_I32, "the storage type of %s" % what)
        if stype not in (_DEFAULT_STORAGE, _UNDEFINED_STORAGE):
            if stype in _STORAGE_NAMES:
                r.fail("%s has %s storage; only dense arrays are supported"
                       % (what, _STORAGE_NAMES[stype]), st_at)
            r.fail("%s has unknown storage type %d" % (what, stype), st_at)
        nd_at = r.pos
        ndim = r.unpack(_I32, "the number of dimensions of %s" % what)
        if magic == V2_MAGIC and ndim == 0 or magic == V3_MAGIC and ndim == -1:
            return None                  # an empty ("none") NDArray: only the shape is stored
        if not 0 <= ndim <= _MAX_NDIM:
            r.fail("%s has an invalid number of dimensions %d" % (what, ndim), nd_at)
        if stype != _DEFAULT_STORAGE:
            r.fail("%s has undefined storage but a shape" % what, st_at)
        dims_at = r.pos
        shape = _read_dims(r, ndim, _I64, what)
        if any(d < 0 for d in shape):
            r.fail("%s has an invalid shape %s" % (what, shape), dims_at)
        return _read_body(r, shape, what, start)
    if magic == V1_MAGIC:
        nd_at = r.pos
        ndim = r.unpack(_U32, "the number of dimensions of %s" % what)
        if ndim == 0:
            return None
        if ndim > _MAX_NDIM:
            r.fail("%s has an invalid number of dimensions %d" % (what, ndim), nd_at)
        dims_at = r.pos
        shape = _read_dims(r, ndim, _I64, what)
        if any(d < 0 for d in shape):
            r.fail("%s has an invalid shape %s" % (what, shape), dims_at)
        return _read_body(r, shape, what, start)
    # The pre-V1 layout has no magic: the word just read is ndim, the dims are uint32.
    if magic > _MAX_NDIM:
        r.fail("%s starts with 0x%08X, which is neither an NDArray magic number (V1 0x%08X, "
               "V2 0x%08X, V3 0x%08X) nor a legacy dimension count"
               % (what, magic, V1_MAGIC, V2_MAGIC, V3_MAGIC), start)
    if magic == 0:
        return None
    shape = _read_dims(r, magic, _U32, what)
    return _read_body(r, shape, what, start)


def _decode(buf, source):
    r = _Reader(buf, source)
    magic = r.unpack(_U64, "the list header")
    if magic != LIST_MAGIC:
        r.fail("the list header is 0x%X, expected 0x%X" % (magic, LIST_MAGIC), 0)
    r.unpack(_U64, "the reserved header word")
    n_at = r.pos
    n = r.unpack(_U64, "the number of arrays")
    if n * 4 + 8 > r.left():           # each array takes at least 4 bytes, the name count 8
        r.fail("truncated or corrupt: an array count of %d cannot fit in the %d remaining "
               "bytes" % (n, r.left()), n_at)
    arrays = []
    for k in range(n):
        a = _read_array_fast(r)
        arrays.append(a if a is not None else _read_array(r, k))
    k_at = r.pos
    k = r.unpack(_U64, "the number of names")
    if k != 0 and k != n:
        r.fail("the file has %d arrays but %d names" % (n, k), k_at)
    names = []
    for i in range(k):
        len_at = r.pos
        ln = r.unpack(_U64, "the length of name %d" % i)
        if ln > r.left():
            r.fail("truncated while reading name %d (need %d bytes, %d left)"
                   % (i, ln, r.left()), len_at + 8)
        raw = r.take(ln, "name %d" % i)
        try:
            names.append(bytes(raw).decode("utf-8"))
        except UnicodeDecodeError:
            r.fail("name %d is not valid UTF-8" % i, len_at + 8)
    if not names:
        return arrays
    return dict(zip(names, arrays))


def load(fname):
    """Load arrays saved by :func:`save` or by MXNet 1.x (``mx.nd.save``,
    ``mx.model.save_checkpoint``, Gluon ``save_parameters``/``export``).

    Returns a list for a file saved from a list, a dict for one saved from a dict (in the
    file's order).  An empty ("none") NDArray in the file comes back as None.

    Raises
    ------
    MXNetError
        The file cannot be read, or is truncated or corrupt; the message names the file and
        the byte offset where reading failed.

    Examples
    --------
    >>> import agjit as mx, tempfile, os
    >>> f = os.path.join(tempfile.mkdtemp(), 'l.params')
    >>> mx.nd.save(f, [mx.nd.array([1, 2]), mx.nd.zeros((2, 2), dtype='int32')])
    >>> [a.dtype.__name__ for a in mx.nd.load(f)]
    ['float32', 'int32']
    """
    fname = _check_fname(fname, "load")
    try:
        with open(fname, "rb") as f:
            buf = f.read()
    except OSError as e:
        raise MXNetError("load: cannot read %s: %s" % (fname, e.strerror or e)) from None
    return _decode(buf, repr(fname))


def load_frombuffer(buf):
    """Load arrays from the bytes of an NDArray file (MXNet's ``mx.nd.load_frombuffer``)."""
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise TypeError("buf required to be a bytes-like object, got %s" % type(buf).__name__)
    return _decode(buf, "the buffer")
