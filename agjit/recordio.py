"""``mx.recordio``: MXNet's RecordIO files (``.rec`` + ``.idx``), read and written in pure
Python, byte-compatible with MXNet 1.9.1 (tests/test_recordio.py reads files real MXNet wrote
and MXNet reads files written here).

Note: recordio-format
    A file is a sequence of chunks, each: the magic ``0xced7230a`` (uint32 little-endian),
    a uint32 ``lrec = cflag << 29 | length``, ``length`` bytes of data, zero padding to a
    multiple of 4.  A record whose data holds the magic at a 4-aligned offset is split there
    (the magic itself is dropped): cflag 1 opens it, 2 continues, 3 closes; 0 is a whole
    record.  A reader joins the parts with the magic between them.  The ``.idx`` file of
    :class:`MXIndexedRecordIO` has one ``key\\toffset`` line per record (offset of its first
    chunk).  ``pack``/``unpack`` prefix a record with ``IRHeader``: uint32 flag, float32
    label, uint64 id, uint64 id2; a flag > 0 means ``flag`` float32 labels follow the header
    (and the label field holds 0).

Writing: records stream into a temporary next to the target, renamed over it by ``close()``
(symbol.base note *atomic-write*), so a crash never leaves half a file under the name; an
indexed writer publishes the ``.rec`` first, then the ``.idx``.
"""
import numbers
import os
import struct
from collections import namedtuple

import numpy as np

from symbol.base import MXNetError, atomic_write, create_temporary, default_file_mode

__all__ = ["MXRecordIO", "MXIndexedRecordIO", "IRHeader", "pack", "unpack", "pack_img",
           "unpack_img"]

_MAGIC = 0xced7230a
_MAGIC_BYTES = struct.pack("<I", _MAGIC)
_LEN_MASK = (1 << 29) - 1


class MXRecordIO(object):
    """Sequential reader (``flag='r'``) or writer (``flag='w'``) of a RecordIO file."""

    def __init__(self, uri, flag):
        self.uri = os.fspath(uri)
        self.flag = flag
        self.pid = None
        self.is_open = False
        self.handle = None
        self.writable = None
        self._tmp = None
        self.open()

    def open(self):
        if self.flag == "w":
            self._open_write()
            self.writable = True
        elif self.flag == "r":
            try:
                self.handle = open(self.uri, "rb")
            except OSError as e:
                raise MXNetError("MXRecordIO: cannot open %s for reading: %s" % (self.uri, e)) from None
            self.writable = False
        else:
            raise ValueError("Invalid flag %s" % self.flag)
        self.pid = os.getpid()
        self.is_open = True

    def _open_write(self):
        try:
            fd, self._tmp = create_temporary(self.uri)
        except OSError as e:
            raise MXNetError("MXRecordIO: cannot write %s: %s" % (self.uri, e)) from None
        self.handle = os.fdopen(fd, "wb")

    def __del__(self):
        try:
            self.close()
        except Exception:       # noqa: BLE001 -- interpreter shutdown
            pass

    def __getstate__(self):
        is_open = self.is_open
        self.close()
        d = dict(self.__dict__)
        d["is_open"] = is_open
        d["handle"] = None
        return d

    def __setstate__(self, d):
        self.__dict__ = d
        is_open = d["is_open"]
        self.is_open = False
        self.handle = None
        if is_open:
            self.open()

    def _check_pid(self, allow_reset=False):
        if self.pid != os.getpid():
            if allow_reset:
                self.reset()
            else:
                raise RuntimeError("Forbidden operation in multiple processes")

    def close(self):
        """Close the file; a writer publishes what it wrote under ``uri``."""
        if not self.is_open:
            return
        h, self.handle = self.handle, None
        self.is_open = False
        if self.writable and self._tmp is not None:
            tmp, self._tmp = self._tmp, None
            try:
                h.flush()
                os.fsync(h.fileno())
                h.close()
                os.chmod(tmp, default_file_mode())
                os.replace(tmp, self.uri)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise
        elif h is not None:
            h.close()

    def reset(self):
        """Reopen: a reader goes back to the first record (a writer starts over)."""
        self.close()
        self.open()

    def write(self, buf):
        """Append one record (bytes)."""
        assert self.writable, "MXRecordIO: %s is not open for writing" % self.uri
        self._check_pid(allow_reset=False)
        buf = bytes(buf)
        if len(buf) > _LEN_MASK:
            raise MXNetError("MXRecordIO: a record of %d bytes is too long (at most %d)"
                             % (len(buf), _LEN_MASK))
        parts = []
        begin = 0
        for i in range(0, len(buf) - 3, 4):
            if buf[i:i + 4] == _MAGIC_BYTES:
                parts.append(buf[begin:i])
                begin = i + 4
        if parts:
            chunks = [(1, parts[0])] + [(2, p) for p in parts[1:]] + [(3, buf[begin:])]
        else:
            chunks = [(0, buf)]
        out = []
        for cflag, data in chunks:
            out.append(_MAGIC_BYTES + struct.pack("<I", (cflag << 29) | len(data)) + data)
            out.append(b"\0" * (-len(data) % 4))
        self.handle.write(b"".join(out))

    def read(self):
        """The next record (bytes), or None at the end of the file."""
        assert not self.writable, "MXRecordIO: %s is not open for reading" % self.uri
        self._check_pid(allow_reset=True)
        parts = []
        while True:
            head = self.handle.read(8)
            if not head:
                if parts:
                    raise MXNetError("MXRecordIO: %s ends inside a multi-part record" % self.uri)
                return None
            if len(head) < 8:
                raise MXNetError("MXRecordIO: %s is truncated (a chunk header of %d bytes)"
                                 % (self.uri, len(head)))
            magic, lrec = struct.unpack("<II", head)
            if magic != _MAGIC:
                raise MXNetError("MXRecordIO: invalid RecordIO file %s (bad magic 0x%08x at "
                                 "offset %d)" % (self.uri, magic, self.handle.tell() - 8))
            cflag, n = lrec >> 29, lrec & _LEN_MASK
            data = self.handle.read(n)
            if len(data) < n:
                raise MXNetError("MXRecordIO: %s is truncated (a record of %d bytes has %d)"
                                 % (self.uri, n, len(data)))
            self.handle.read(-n % 4)
            if cflag == 0:
                if parts:
                    raise MXNetError("MXRecordIO: %s: a whole record inside a multi-part one"
                                     % self.uri)
                return data
            if cflag == 1:
                if parts:
                    raise MXNetError("MXRecordIO: %s: a record starts inside another" % self.uri)
                parts.append(data)
            elif cflag in (2, 3):
                if not parts:
                    raise MXNetError("MXRecordIO: %s: a continuation chunk without a start"
                                     % self.uri)
                parts.append(data)
                if cflag == 3:
                    return _MAGIC_BYTES.join(parts)
            else:
                raise MXNetError("MXRecordIO: %s: invalid chunk flag %d" % (self.uri, cflag))

    def tell(self):
        return self.handle.tell()


class MXIndexedRecordIO(MXRecordIO):
    """RecordIO with an index file for random access by key (``read_idx``/``write_idx``)."""

    def __init__(self, idx_path, uri, flag, key_type=int):
        self.idx_path = os.fspath(idx_path)
        self.idx = {}
        self.keys = []
        self.key_type = key_type
        self.fidx = None
        super(MXIndexedRecordIO, self).__init__(uri, flag)

    def open(self):
        super(MXIndexedRecordIO, self).open()
        self.idx = {}
        self.keys = []
        if not self.writable:
            try:
                with open(self.idx_path) as f:
                    lines = f.readlines()
            except OSError as e:
                raise MXNetError("MXIndexedRecordIO: cannot read the index %s: %s"
                                 % (self.idx_path, e)) from None
            for k, line in enumerate(lines):
                line = line.strip().split("\t")
                if not line or line == [""]:
                    continue
                if len(line) < 2:
                    raise MXNetError("MXIndexedRecordIO: line %d of %s is not 'key<TAB>offset'"
                                     % (k + 1, self.idx_path))
                key = self.key_type(line[0])
                self.idx[key] = int(line[1])
                self.keys.append(key)

    def close(self):
        if not self.is_open:
            return
        writable = self.writable
        idx = list(self.idx.items()) if writable else None
        super(MXIndexedRecordIO, self).close()
        if writable:
            atomic_write(self.idx_path, ["".join("%s\t%d\n" % (k, v) for k, v in idx)], mode="w")

    def __getstate__(self):
        d = super(MXIndexedRecordIO, self).__getstate__()
        d["fidx"] = None
        return d

    def seek(self, idx):
        """Position the reader at the record of key ``idx``."""
        assert not self.writable
        self._check_pid(allow_reset=True)
        try:
            pos = self.idx[idx]
        except KeyError:
            raise MXNetError("MXIndexedRecordIO: no record with key %r in %s"
                             % (idx, self.idx_path)) from None
        self.handle.seek(pos)

    def tell(self):
        return self.handle.tell()

    def read_idx(self, idx):
        """The record of key ``idx``."""
        self.seek(idx)
        return self.read()

    def write_idx(self, idx, buf):
        """Append a record under key ``idx``."""
        key = self.key_type(idx)
        pos = self.tell()
        self.write(buf)
        self.idx[key] = pos
        self.keys.append(key)


IRHeader = namedtuple("HEADER", ["flag", "label", "id", "id2"])
IRHeader.__doc__ = """An image record's header: ``flag`` (number of extra labels), ``label``
(a float, or an array of floats), ``id`` and ``id2`` (uint64)."""
_IR_FORMAT = "IfQQ"
_IR_SIZE = struct.calcsize(_IR_FORMAT)


def pack(header, s):
    """Prefix ``s`` (bytes) with ``header`` (an IRHeader; an array label is stored after it
    with its length in ``flag``)."""
    header = IRHeader(*header)
    if isinstance(header.label, numbers.Number):
        header = header._replace(flag=0)
        extra = b""
    else:
        label = np.asarray(header.label, dtype=np.float32)
        header = header._replace(flag=label.size, label=0)
        extra = label.tobytes()
    return struct.pack(_IR_FORMAT, *header) + extra + bytes(s)


def unpack(s):
    """``(IRHeader, payload)`` of a packed record."""
    if len(s) < _IR_SIZE:
        raise MXNetError("recordio.unpack: a record of %d bytes is shorter than its header (%d)"
                         % (len(s), _IR_SIZE))
    header = IRHeader(*struct.unpack(_IR_FORMAT, s[:_IR_SIZE]))
    s = s[_IR_SIZE:]
    if header.flag > 0:
        n = header.flag * 4
        if len(s) < n:
            raise MXNetError("recordio.unpack: the header announces %d labels but the record "
                             "has only %d bytes after it" % (header.flag, len(s)))
        header = header._replace(label=np.frombuffer(s[:n], dtype=np.float32).copy())
        s = s[n:]
    return header, s


def _no_cv2(name):
    return MXNetError("recordio.%s needs OpenCV (cv2) to encode/decode images, which is not "
                      "available to agjit; store raw bytes with recordio.pack/unpack, or "
                      "decode them yourself" % name)


def unpack_img(s, iscolor=-1):
    """Header and decoded image (needs OpenCV)."""
    try:
        import cv2
    except ImportError:
        raise _no_cv2("unpack_img") from None
    header, s = unpack(s)
    img = cv2.imdecode(np.frombuffer(s, dtype=np.uint8), iscolor)
    return header, img


def pack_img(header, img, quality=95, img_fmt=".jpg"):
    """Pack an image encoded with OpenCV."""
    try:
        import cv2
    except ImportError:
        raise _no_cv2("pack_img") from None
    jpg_formats = [".JPG", ".JPEG"]
    png_formats = [".PNG"]
    encode_params = None
    if img_fmt.upper() in jpg_formats:
        encode_params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    elif img_fmt.upper() in png_formats:
        encode_params = [cv2.IMWRITE_PNG_COMPRESSION, quality]
    ret, buf = cv2.imencode(img_fmt, img, encode_params)
    if not ret:
        raise MXNetError("recordio.pack_img: failed to encode the image as %s" % img_fmt)
    return pack(header, buf.tobytes())
