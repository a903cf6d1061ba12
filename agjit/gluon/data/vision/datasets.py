"""Vision datasets read from their standard local files (MXNet 1.9.1's
``gluon.data.vision.datasets``).  Nothing is downloaded: a missing file raises an MXNetError
naming the path and where the file comes from.

``root`` defaults to ``$MXNET_HOME/datasets/<name>`` (``~/.mxnet/datasets/<name>`` when
MXNET_HOME is unset), read when the dataset is created.
"""
import gzip
import os
import pickle
import struct
import tarfile
import warnings

import numpy as np

from .... import ndarray as nd
from ....base import MXNetError
from .. import dataset

__all__ = ["MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "ImageRecordDataset",
           "ImageFolderDataset"]


def _data_dir():
    return os.environ.get("MXNET_HOME", os.path.join("~", ".mxnet"))


def _default_root(name):
    return os.path.join(_data_dir(), "datasets", name)


def _missing(cls, path, how):
    return MXNetError("%s: file %s not found; this build cannot download, so %s" % (cls, path, how))


class MNIST(dataset._DownloadedDataset):
    """MNIST handwritten digits: items ``(image uint8 NDArray (28, 28, 1), label int32)``.

    Reads ``train-images-idx3-ubyte.gz`` / ``train-labels-idx1-ubyte.gz`` (``train=True``) or
    ``t10k-images-idx3-ubyte.gz`` / ``t10k-labels-idx1-ubyte.gz`` from ``root`` (the
    uncompressed files without ``.gz`` work too).

    Parameters
    ----------
    root : str
        Directory of the files (default ``$MXNET_HOME/datasets/mnist``).
    train : bool
        The training set (60000) or the test set (10000).
    transform : callable
        ``transform(data, label)`` applied to each item.
    """

    _files = {True: ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
              False: ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
    _namespace = "mnist"
    _source = "http://yann.lecun.com/exdb/mnist/"

    def __init__(self, root=None, train=True, transform=None):
        self._train = train
        super(MNIST, self).__init__(root or _default_root(self._namespace), transform)

    def _open(self, name):
        path = os.path.join(self._root, name)
        if os.path.isfile(path):
            return gzip.open(path, "rb")
        if os.path.isfile(path[:-3]):
            return open(path[:-3], "rb")
        raise _missing(type(self).__name__, path,
                       "place the idx file (gzipped or not) from %s in that directory"
                       % self._source)

    def _get_data(self):
        data_name, label_name = self._files[bool(self._train)]
        with self._open(label_name) as fin:
            head = fin.read(8)
            magic, n = struct.unpack(">II", head) if len(head) == 8 else (0, 0)
            if magic != 2049:
                raise MXNetError("%s: %s is not an idx1 label file (magic %d, expected 2049)"
                                 % (type(self).__name__, os.path.join(self._root, label_name), magic))
            label = np.frombuffer(fin.read(), dtype=np.uint8).astype(np.int32)
        with self._open(data_name) as fin:
            head = fin.read(16)
            magic, n_img, rows, cols = struct.unpack(">IIII", head) if len(head) == 16 else (0, 0, 0, 0)
            if magic != 2051:
                raise MXNetError("%s: %s is not an idx3 image file (magic %d, expected 2051)"
                                 % (type(self).__name__, os.path.join(self._root, data_name), magic))
            data = np.frombuffer(fin.read(), dtype=np.uint8)
        if n_img != len(label) or data.size != n_img * rows * cols:
            raise MXNetError("%s: %d images of %dx%d (%d bytes) do not match %d labels in %s"
                             % (type(self).__name__, n_img, rows, cols, data.size, len(label),
                                self._root))
        data = data.reshape(len(label), rows, cols, 1)
        self._data = nd.array(data, dtype=data.dtype)
        self._label = label


class FashionMNIST(MNIST):
    """Fashion-MNIST (same file names and format as :class:`MNIST`), default root
    ``$MXNET_HOME/datasets/fashion-mnist``."""

    _namespace = "fashion-mnist"
    _source = "https://github.com/zalandoresearch/fashion-mnist"


class CIFAR10(dataset._DownloadedDataset):
    """CIFAR-10: items ``(image uint8 NDArray (32, 32, 3), label int32)``.

    Reads the binary batches ``data_batch_1.bin`` ... ``data_batch_5.bin`` / ``test_batch.bin``
    from ``root`` or ``root/cifar-10-batches-bin``, else the Python pickles ``data_batch_1`` ...
    / ``test_batch`` from ``root/cifar-10-batches-py`` (or ``root``); a
    ``cifar-10-binary.tar.gz`` / ``cifar-10-python.tar.gz`` archive in ``root`` is extracted
    first when no batch is there.
    """

    _train_names = ["data_batch_%d" % i for i in range(1, 6)]
    _test_names = ["test_batch"]
    _namespace = "cifar10"
    _dirs = ("cifar-10-batches-bin", "cifar-10-batches-py")
    _archives = ("cifar-10-binary.tar.gz", "cifar-10-python.tar.gz")
    _source = "https://www.cs.toronto.edu/~kriz/cifar.html"
    _label_bytes = 1

    def __init__(self, root=None, train=True, transform=None):
        self._train = train
        super(CIFAR10, self).__init__(root or _default_root(self._namespace), transform)

    def _find(self, name):
        """(path, 'bin' or 'py') of one batch, or None."""
        for d in ("", self._dirs[0]):
            p = os.path.join(self._root, d, name + ".bin")
            if os.path.isfile(p):
                return p, "bin"
        for d in (self._dirs[1], ""):
            p = os.path.join(self._root, d, name)
            if os.path.isfile(p):
                return p, "py"
        return None

    def _read_bin(self, path):
        rec = 3072 + self._label_bytes
        with open(path, "rb") as fin:
            raw = np.frombuffer(fin.read(), dtype=np.uint8)
        if raw.size % rec:
            raise MXNetError("%s: %s has %d bytes, not a multiple of the %d-byte records"
                             % (type(self).__name__, path, raw.size, rec))
        raw = raw.reshape(-1, rec)
        label = raw[:, self._label_bytes - 1 if self._fine_index() else 0].astype(np.int32)
        return raw[:, self._label_bytes:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), label

    def _fine_index(self):
        return False

    def _py_label_key(self):
        return b"labels"

    def _read_py(self, path):
        with open(path, "rb") as fin:
            d = pickle.load(fin, encoding="bytes")
        data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return data, np.asarray(d[self._py_label_key()], dtype=np.int32)

    def _get_data(self):
        names = self._train_names if self._train else self._test_names
        found = [self._find(n) for n in names]
        if any(f is None for f in found):
            for a in self._archives:
                arch = os.path.join(self._root, a)
                if os.path.isfile(arch):
                    with tarfile.open(arch) as tar:
                        try:
                            tar.extractall(self._root, filter="data")
                        except TypeError:       # Python without extraction filters
                            tar.extractall(self._root)
                    found = [self._find(n) for n in names]
                    break
        for n, f in zip(names, found):
            if f is None:
                raise _missing(type(self).__name__, os.path.join(self._root, n + ".bin"),
                               "place the binary batches (or %s / the Python batches in %s/) from "
                               "%s in that directory" % (" or ".join(self._archives),
                                                         self._dirs[1], self._source))
        parts = [self._read_bin(p) if kind == "bin" else self._read_py(p) for p, kind in found]
        data = np.concatenate([p[0] for p in parts])
        label = np.concatenate([p[1] for p in parts])
        self._data = nd.array(np.ascontiguousarray(data), dtype=data.dtype)
        self._label = label


class CIFAR100(CIFAR10):
    """CIFAR-100 (``train.bin`` / ``test.bin``, or the Python ``train`` / ``test`` pickles in
    ``cifar-100-python/``); ``fine_label=True`` gives the 100 fine classes, else the 20 coarse
    ones."""

    _train_names = ["train"]
    _test_names = ["test"]
    _namespace = "cifar100"
    _dirs = ("cifar-100-binary", "cifar-100-python")
    _archives = ("cifar-100-binary.tar.gz", "cifar-100-python.tar.gz")
    _label_bytes = 2

    def __init__(self, root=None, fine_label=False, train=True, transform=None):
        self._fine_label = fine_label
        super(CIFAR100, self).__init__(root, train, transform)

    def _fine_index(self):
        return bool(self._fine_label)

    def _py_label_key(self):
        return b"fine_labels" if self._fine_label else b"coarse_labels"


def _decode_image(buf, flag, what):
    """Encoded image bytes -> uint8 NDArray (H, W, 3), or (H, W, 1) for ``flag=0`` (Pillow)."""
    try:
        from PIL import Image
    except ImportError:
        raise MXNetError("%s: decoding an image needs Pillow (pip install pillow)" % what) from None
    import io as _io
    with Image.open(_io.BytesIO(buf)) as im:
        arr = np.asarray(im.convert("RGB" if flag else "L"), dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return nd.array(arr, dtype=np.uint8)


class ImageRecordDataset(dataset.RecordFileDataset):
    """Images in a RecordIO file (``im2rec`` output): items are ``(image uint8 NDArray
    (H, W, C), header.label)``; decoding uses Pillow."""

    def __init__(self, filename, flag=1, transform=None):
        super(ImageRecordDataset, self).__init__(filename)
        self._flag = flag
        self._transform = transform

    def __getitem__(self, idx):
        from .... import recordio
        header, img = recordio.unpack(super(ImageRecordDataset, self).__getitem__(idx))
        img = _decode_image(img, self._flag, "ImageRecordDataset")
        if self._transform is not None:
            return self._transform(img, header.label)
        return img, header.label


class ImageFolderDataset(dataset.Dataset):
    """A folder with one sub-folder of images (.jpg/.jpeg/.png) per class; items are
    ``(image uint8 NDArray (H, W, 3), label)`` (``flag=0``: (H, W, 1) greyscale).  Decoding
    uses Pillow, which must be installed; ``synsets`` lists the class folder names."""

    def __init__(self, root, flag=1, transform=None):
        self._root = os.path.expanduser(root)
        self._flag = flag
        self._transform = transform
        self._exts = [".jpg", ".jpeg", ".png"]
        if not os.path.isdir(self._root):
            raise MXNetError("ImageFolderDataset: %s is not a directory" % self._root)
        self.synsets = []
        self.items = []
        for folder in sorted(os.listdir(self._root)):
            path = os.path.join(self._root, folder)
            if not os.path.isdir(path):
                warnings.warn("Ignoring %s, which is not a directory." % path, stacklevel=3)
                continue
            label = len(self.synsets)
            self.synsets.append(folder)
            for filename in sorted(os.listdir(path)):
                filename = os.path.join(path, filename)
                ext = os.path.splitext(filename)[1]
                if ext.lower() not in self._exts:
                    warnings.warn("Ignoring %s of type %s. Only support %s"
                                  % (filename, ext, ", ".join(self._exts)))
                    continue
                self.items.append((filename, label))

    def __getitem__(self, idx):
        try:
            from PIL import Image
        except ImportError:
            raise MXNetError("ImageFolderDataset: decoding %s needs Pillow (pip install pillow)"
                             % self.items[idx][0]) from None
        with Image.open(self.items[idx][0]) as im:
            arr = np.asarray(im.convert("RGB" if self._flag else "L"), dtype=np.uint8)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        img = nd.array(arr, dtype=np.uint8)
        label = self.items[idx][1]
        if self._transform is not None:
            return self._transform(img, label)
        return img, label

    def __len__(self):
        return len(self.items)
