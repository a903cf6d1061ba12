"""mx.recordio: byte-for-byte MXNet 1.9.1's RecordIO (the expected bytes below were written
by real MXNet 1.9.1), multi-part records, IRHeader pack/unpack, the indexed reader/writer,
atomic publication, errors, and interop with a real MXNet interpreter when one exists."""
import os
import pickle
import struct
import subprocess
import textwrap

import pytest

import agjit as mx
from symbol.base import MXNetError

MAGIC = struct.pack("<I", 0xced7230a)
# MXNet 1.9.1: write(b'hello'), write(b'ab' + MAGIC + b'cdefg'), write(b''),
# write(pack(IRHeader(0, 3.5, 7, 0), b'xyz')), write(pack(IRHeader(2, [1., 2.], 8, 9), b'q'))
MXNET_BYTES = bytes.fromhex(
    "0a23d7ce0500000068656c6c6f0000000a23d7ce0b00000061620a23d7ce6364656667000a23d7ce00000000"
    "0a23d7ce1b00000000000000000060400700000000000000000000000000000078797a000a23d7ce21000000"
    "0200000000000000080000000000000009000000000000000000803f0000004071000000")
# MXNet 1.9.1: write(b'abcd' + M + b'ef' + M + M), write(M): aligned magics split records
MXNET_SPLIT = bytes.fromhex(
    "0a23d7ce04000020616263640a23d7ce0a00006065660a23d7ce0a23d7ce00000a23d7ce000000200a23d7ce"
    "00000060")


def _records():
    return [b"hello", b"ab" + MAGIC + b"cdefg", b"",
            mx.recordio.pack(mx.recordio.IRHeader(0, 3.5, 7, 0), b"xyz"),
            mx.recordio.pack(mx.recordio.IRHeader(2, [1.0, 2.0], 8, 9), b"q")]


def test_writer_bytes_equal_mxnet(tmp_path):
    f = str(tmp_path / "a.rec")
    w = mx.recordio.MXRecordIO(f, "w")
    for r in _records():
        w.write(r)
    w.close()
    assert open(f, "rb").read() == MXNET_BYTES
    f2 = str(tmp_path / "b.rec")
    w = mx.recordio.MXRecordIO(f2, "w")
    w.write(b"abcd" + MAGIC + b"ef" + MAGIC + MAGIC)
    w.write(MAGIC)
    w.close()
    assert open(f2, "rb").read() == MXNET_SPLIT


def test_reader_reads_mxnet_files(tmp_path):
    f = tmp_path / "m.rec"
    f.write_bytes(MXNET_BYTES + MXNET_SPLIT)
    r = mx.recordio.MXRecordIO(str(f), "r")
    got = [r.read() for _ in range(7)]
    assert got[:5] == _records()
    assert got[5] == b"abcd" + MAGIC + b"ef" + MAGIC + MAGIC and got[6] == MAGIC
    assert r.read() is None
    r.reset()
    assert r.read() == b"hello"
    r.close()


def test_irheader_pack_unpack():
    h, s = mx.recordio.unpack(mx.recordio.pack(mx.recordio.IRHeader(2, [1.0, 2.0], 8, 9), b"q"))
    assert h.flag == 2 and h.label.tolist() == [1.0, 2.0] and (h.id, h.id2) == (8, 9) and s == b"q"
    h, s = mx.recordio.unpack(mx.recordio.pack(mx.recordio.IRHeader(0, 3.5, 7, 0), b"xyz"))
    assert h == mx.recordio.IRHeader(0, 3.5, 7, 0) and s == b"xyz"


def test_indexed_random_access_and_pickle(tmp_path):
    idx, rec = str(tmp_path / "t.idx"), str(tmp_path / "t.rec")
    w = mx.recordio.MXIndexedRecordIO(idx, rec, "w")
    for i in range(3):
        w.write_idx(i * 10, b"rec%d" % i)
    w.close()
    assert open(idx).read() == "0\t0\n10\t12\n20\t24\n"         # as MXNet 1.9.1 writes it
    r = mx.recordio.MXIndexedRecordIO(idx, rec, "r")
    assert r.keys == [0, 10, 20] and r.read_idx(20) == b"rec2" and r.read_idx(0) == b"rec0"
    r2 = pickle.loads(pickle.dumps(r))                   # DataLoader workers pickle readers
    assert r2.read_idx(10) == b"rec1"
    with pytest.raises(MXNetError, match="no record with key 5"):
        r.read_idx(5)


def test_writer_publishes_atomically(tmp_path):
    f = tmp_path / "x.rec"
    f.write_bytes(MXNET_BYTES)
    w = mx.recordio.MXRecordIO(str(f), "w")
    w.write(b"new")
    assert f.read_bytes() == MXNET_BYTES          # the old file stays until close()
    w.close()
    r = mx.recordio.MXRecordIO(str(f), "r")
    assert r.read() == b"new" and r.read() is None
    assert [p.name for p in tmp_path.iterdir()] == ["x.rec"]


@pytest.mark.parametrize("data,msg", [
    (b"\x00\x00\x00\x00\x05\x00\x00\x00hello\x00\x00\x00", "bad magic"),
    (MAGIC + struct.pack("<I", 10) + b"abc", "truncated"),
    (MAGIC + struct.pack("<I", (2 << 29) | 1) + b"a\0\0\0", "without a start"),
    (MAGIC + struct.pack("<I", (1 << 29) | 1) + b"a\0\0\0", "ends inside"),
])
def test_corrupt_files_raise(tmp_path, data, msg):
    f = tmp_path / "bad.rec"
    f.write_bytes(data)
    r = mx.recordio.MXRecordIO(str(f), "r")
    with pytest.raises(MXNetError, match=msg):
        r.read()


def test_images_need_opencv():
    try:
        import cv2  # noqa: F401
        pytest.skip("OpenCV is installed here")
    except ImportError:
        pass
    with pytest.raises(MXNetError, match="OpenCV"):
        mx.recordio.unpack_img(mx.recordio.pack(mx.recordio.IRHeader(0, 0, 0, 0), b""))


def _mxnet_python():
    p = os.environ.get("AGJIT_MXNET_PYTHON", "/work/mxenv/bin/python")
    return p if os.path.exists(p) else None


@pytest.mark.skipif(_mxnet_python() is None, reason="no MXNet interpreter")
def test_interop_with_real_mxnet(tmp_path):
    idx, rec = str(tmp_path / "a.idx"), str(tmp_path / "a.rec")
    w = mx.recordio.MXIndexedRecordIO(idx, rec, "w")
    payload = [b"x" * k + MAGIC * (k % 3) for k in range(12)]
    for k, p in enumerate(payload):
        w.write_idx(k, mx.recordio.pack(mx.recordio.IRHeader(0, float(k), k, 0), p))
    w.close()
    code = textwrap.dedent("""
        import sys, mxnet as mx
        r = mx.recordio.MXIndexedRecordIO(sys.argv[1], sys.argv[2], 'r')
        out = []
        for k in r.keys:
            h, s = mx.recordio.unpack(r.read_idx(k))
            out.append('%d:%g:%d' % (k, h.label, len(s)))
        w = mx.recordio.MXRecordIO(sys.argv[3], 'w')
        w.write(b'from mxnet' + b'\\x0a\\x23\\xd7\\xce' * 2)
        w.close()
        print(' '.join(out))
    """)
    back = str(tmp_path / "m.rec")
    res = subprocess.run([_mxnet_python(), "-c", code, idx, rec, back], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split()[-12:] == ["%d:%g:%d" % (k, float(k), len(p))
                                        for k, p in enumerate(payload)]
    r = mx.recordio.MXRecordIO(back, "r")
    assert r.read() == b"from mxnet" + MAGIC * 2
