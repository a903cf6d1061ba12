"""mx.io.MNISTIter on small idx files: batches, scaling (1/256), shapes, dropped last batch and
parts as MXNet 1.9.1 gives them (figures recorded from real MXNet on the same files: labels
[1 4 4 5 2 4 1 9 0 ...] -> batches of 3: [1 4 4] [5 2 4] [1 9 0]; part 1 of 2: [4 1 9])."""
import gzip
import struct

import numpy as np
import pytest

import agjit as mx
from symbol.base import MXNetError


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("mnist")
    rng = np.random.default_rng(0)
    n = 10
    img = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    lab = rng.integers(0, 10, n, dtype=np.uint8)
    (d / "img").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + img.tobytes())
    (d / "lab").write_bytes(struct.pack(">II", 2049, n) + lab.tobytes())
    with gzip.open(d / "img.gz", "wb") as f:
        f.write(struct.pack(">IIII", 2051, n, 28, 28) + img.tobytes())
    return d, img, lab


def test_batches_as_mxnet(files):
    d, img, lab = files
    assert lab.tolist()[:9] == [1, 4, 4, 5, 2, 4, 1, 9, 0]
    it = mx.io.MNISTIter(image=str(d / "img"), label=str(d / "lab"), batch_size=4, shuffle=False,
                         flat=True, silent=True)
    assert it.provide_data[0].shape == (4, 784) and it.provide_label[0].name == "softmax_label"
    batches = list(it)
    assert len(batches) == 2                                    # 10 images: the last 2 dropped
    np.testing.assert_array_equal(batches[0].data[0].asnumpy(), img[:4].reshape(4, -1) / 256.0)
    assert batches[1].label[0].asnumpy().tolist() == [2, 4, 1, 9]
    it.reset()
    assert len(list(it)) == 2
    it = mx.io.MNISTIter(image=str(d / "img.gz"), label=str(d / "lab"), batch_size=3,
                         shuffle=False, silent=True)
    b = [x.label[0].asnumpy().tolist() for x in it]
    assert b == [[1, 4, 4], [5, 2, 4], [1, 9, 0]]
    part = mx.io.MNISTIter(image=str(d / "img"), label=str(d / "lab"), batch_size=3,
                           shuffle=False, num_parts=2, part_index=1, silent=True)
    assert [x.label[0].asnumpy().tolist() for x in part] == [[4, 1, 9]]
    part.reset()
    assert next(iter(part)).data[0].shape == (3, 1, 28, 28)


def test_shuffle_is_seeded_permutation(files):
    d, img, lab = files
    a = [x.label[0].asnumpy() for x in mx.io.MNISTIter(image=str(d / "img"), label=str(d / "lab"),
                                                       batch_size=5, seed=3, silent=True)]
    b = [x.label[0].asnumpy() for x in mx.io.MNISTIter(image=str(d / "img"), label=str(d / "lab"),
                                                       batch_size=5, seed=3, silent=True)]
    assert sorted(np.concatenate(a).tolist()) == sorted(lab.tolist())
    assert all((x == y).all() for x, y in zip(a, b))


def test_errors(files, tmp_path):
    d, _img, _lab = files
    with pytest.raises(MXNetError, match="cannot read the image file"):
        mx.io.MNISTIter(image=str(tmp_path / "nope"), label=str(d / "lab"))
    with pytest.raises(MXNetError, match="not an idx3-ubyte image file"):
        mx.io.MNISTIter(image=str(d / "lab"), label=str(d / "lab"))
    bad = tmp_path / "short"
    bad.write_bytes(struct.pack(">IIII", 2051, 10, 28, 28) + b"\0" * 100)
    with pytest.raises(MXNetError, match="truncated"):
        mx.io.MNISTIter(image=str(bad), label=str(d / "lab"))
