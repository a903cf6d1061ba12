"""mx.io.CSVIter / LibSVMIter / PrefetchingIter: MXNet's circular batching (the padded last
batch wraps to the start and the next epoch begins after the wrapped rows), zero labels
without a label file, CSR batches, and clear errors for bad files."""
import numpy as np
import pytest

import agjit as mx
from agjit.base import MXNetError


def _csv(tmp_path, X, Y):
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    np.savetxt(tmp_path / "y.csv", Y, delimiter=",")
    return str(tmp_path / "x.csv"), str(tmp_path / "y.csv")


def test_csv_epochs_wrap_and_continue(tmp_path):
    X = np.arange(14).reshape(7, 2).astype("float32") / 4
    xf, yf = _csv(tmp_path, X, np.arange(7))
    it = mx.io.CSVIter(data_csv=xf, data_shape=(2,), label_csv=yf, batch_size=3)
    assert [(d.name, d.shape) for d in it.provide_data] == [("data", (3, 2))]
    assert [(d.name, d.shape) for d in it.provide_label] == [("softmax_label", (3,))]
    epochs = []
    for _ in range(3):
        epochs.append([(b.pad, b.label[0].asnumpy().astype(int).tolist()) for b in it])
        it.reset()
    assert epochs == [[(0, [0, 1, 2]), (0, [3, 4, 5]), (2, [6, 0, 1])],
                      [(0, [2, 3, 4]), (1, [5, 6, 0])],
                      [(0, [1, 2, 3]), (0, [4, 5, 6])]]
    b = next(iter(mx.io.CSVIter(data_csv=xf, data_shape=(2,), batch_size=3)))
    np.testing.assert_array_equal(b.data[0].asnumpy(), X[:3])
    assert not b.label[0].asnumpy().any()                    # no label file: zeros


def test_csv_without_round_batch_restarts(tmp_path):
    X = np.arange(14).reshape(7, 2).astype("float32")
    xf, _ = _csv(tmp_path, X, np.arange(7))
    it = mx.io.CSVIter(data_csv=xf, data_shape=(2,), batch_size=3, round_batch=False)
    for _ in range(2):
        pads = []
        for b in it:
            pads.append(b.pad)
            n = 3 - b.pad
            assert b.data[0].shape == (3, 2)
            np.testing.assert_array_equal(b.data[0].asnumpy()[:n], X[b.index[:n].astype(int)])
        assert pads == [0, 0, 2]
        it.reset()


def test_csv_errors(tmp_path):
    (tmp_path / "bad.csv").write_text("1,2\n3,x\n")
    with pytest.raises(MXNetError, match="line 2"):
        mx.io.CSVIter(data_csv=str(tmp_path / "bad.csv"), data_shape=(2,))
    with pytest.raises(MXNetError, match="3 values"):
        (tmp_path / "w.csv").write_text("1,2,3\n")
        mx.io.CSVIter(data_csv=str(tmp_path / "w.csv"), data_shape=(2,))
    with pytest.raises(MXNetError, match="cannot read"):
        mx.io.CSVIter(data_csv=str(tmp_path / "missing.csv"), data_shape=(2,))


def test_libsvm_batches_are_csr(tmp_path):
    f = tmp_path / "a.libsvm"
    f.write_text("1 0:0.5 2:1.5\n0 1:2.0\n1 0:1.0 3:3.0\n")
    it = mx.io.LibSVMIter(data_libsvm=str(f), data_shape=(4,), batch_size=2)
    got = [(b.pad, b.data[0].stype, b.data[0].asnumpy().tolist(), b.label[0].asnumpy().tolist())
           for b in it]
    assert got == [(0, "csr", [[0.5, 0, 1.5, 0], [0, 2.0, 0, 0]], [1.0, 0.0]),
                   (1, "csr", [[1.0, 0, 0, 3.0], [0.5, 0, 1.5, 0]], [1.0, 1.0])]
    f.write_text("1 7:0.5\n")
    with pytest.raises(MXNetError, match="feature index 7"):
        mx.io.LibSVMIter(data_libsvm=str(f), data_shape=(4,))


def test_prefetching_iter_joins_and_renames():
    a = mx.io.NDArrayIter(np.arange(8).reshape(4, 2), np.arange(4), batch_size=2)
    b = mx.io.NDArrayIter(np.ones((4, 3)), np.zeros(4), batch_size=2)
    it = mx.io.PrefetchingIter([a, b], rename_data=[{"data": "x"}, {"data": "y"}])
    assert [d.name for d in it.provide_data] == ["x", "y"]
    batches = list(it)
    assert len(batches) == 2 and [d.shape for d in batches[0].data] == [(2, 2), (2, 3)]
