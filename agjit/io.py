"""``mx.io``: data batches and iterators with MXNet 1.x semantics (``NDArrayIter``).

``NDArrayIter(data, label, batch_size, shuffle, last_batch_handle)`` walks arrays in batches.
The last, incomplete batch is handled as MXNet 1.x does:

* ``'pad'``: filled up with samples from the start of the data (wrapping around as often as
  needed); ``batch.pad`` says how many samples are padding;
* ``'discard'``: dropped;
* ``'roll_over'``: not returned; its samples open the first batch of the next epoch (after
  ``reset()``), whose ``pad`` is the number of carried-over samples.

Inputs (an array, a list of arrays named ``_<i>_<name>``, or a dict, whose entries are
*sorted by name*) become NDArrays; NumPy arrays become float32 as ``mx.nd.array`` makes
them.  ``shuffle`` permutes with NumPy's global generator at construction and every
``reset()``, as MXNet does.

>>> import agjit as mx, numpy as np
>>> it = mx.io.NDArrayIter(np.arange(5), batch_size=2, last_batch_handle='pad')
>>> [(b.data[0].asnumpy().tolist(), b.pad) for b in it]
[([0.0, 1.0], 0), ([2.0, 3.0], 0), ([4.0, 0.0], 1)]
"""
from collections import namedtuple, OrderedDict

import numpy as np

from symbol.base import MXNetError
from .ndarray.ndarray import NDArray, _wrap

__all__ = ["DataDesc", "DataBatch", "DataIter", "NDArrayIter", "ResizeIter", "CSVIter", "LibSVMIter",
           "MNISTIter",
           "PrefetchingIter"]


class DataDesc(namedtuple('DataDesc', ['name', 'shape'])):
    """Name, shape, dtype and layout of a data or label input (a ``(name, shape)`` tuple
    with ``dtype`` and ``layout`` attributes)."""

    def __new__(cls, name, shape, dtype=np.float32, layout='NCHW'):
        ret = super(DataDesc, cls).__new__(cls, name, shape)
        ret.dtype = dtype
        ret.layout = layout
        return ret

    def __repr__(self):
        return "DataDesc[%s,%s,%s,%s]" % (self.name, self.shape, self.dtype, self.layout)

    @staticmethod
    def get_batch_axis(layout):
        """The axis of ``N`` in ``layout`` (0 when layout is None)."""
        if layout is None:
            return 0
        return layout.find('N')

    @staticmethod
    def get_list(shapes, types):
        """DataDescs from ``[(name, shape)]`` and optional ``[(name, dtype)]``."""
        if types is not None:
            type_dict = dict(types)
            return [DataDesc(x[0], x[1], type_dict[x[0]]) for x in shapes]
        return [DataDesc(x[0], x[1]) for x in shapes]


class DataBatch(object):
    """One batch: lists of data and label NDArrays, the number of padding samples ``pad``,
    and the sample ``index``."""

    def __init__(self, data, label=None, pad=None, index=None, bucket_key=None,
                 provide_data=None, provide_label=None):
        if data is not None:
            assert isinstance(data, (list, tuple)), "Data must be list of NDArrays"
        if label is not None:
            assert isinstance(label, (list, tuple)), "Label must be list of NDArrays"
        self.data = data
        self.label = label
        self.pad = pad
        self.index = index
        self.bucket_key = bucket_key
        self.provide_data = provide_data
        self.provide_label = provide_label

    def __str__(self):
        data_shapes = [d.shape for d in self.data]
        label_shapes = [l.shape for l in self.label] if self.label else None
        return "{}: data shapes: {} label shapes: {}".format(
            self.__class__.__name__, data_shapes, label_shapes)


class DataIter(object):
    """Base class of data iterators: ``next()`` returns a DataBatch or raises
    StopIteration; ``reset()`` starts over."""

    def __init__(self, batch_size=0):
        self.batch_size = batch_size

    def __iter__(self):
        return self

    def reset(self):
        """Go back to the beginning of the data."""

    def next(self):
        """The next DataBatch; StopIteration at the end of the data."""
        if self.iter_next():
            return DataBatch(data=self.getdata(), label=self.getlabel(),
                             pad=self.getpad(), index=self.getindex())
        raise StopIteration

    def __next__(self):
        return self.next()

    def iter_next(self):
        """Move to the next batch; False at the end."""

    def getdata(self):
        """The data of the current batch (list of NDArray)."""

    def getlabel(self):
        """The label of the current batch (list of NDArray)."""

    def getindex(self):
        """The sample indices of the current batch, or None."""
        return None

    def getpad(self):
        """The number of padding samples in the current batch."""


class _WrappedBatch(object):
    """The getters of an iterator that holds its current batch as ``current_batch``."""

    def getdata(self):
        return self.current_batch.data

    def getlabel(self):
        return self.current_batch.label

    def getindex(self):
        return self.current_batch.index

    def getpad(self):
        return self.current_batch.pad


class ResizeIter(_WrappedBatch, DataIter):
    """Resize ``data_iter`` to ``size`` batches per epoch (restarting it when it runs out)."""

    def __init__(self, data_iter, size, reset_internal=True):
        super(ResizeIter, self).__init__()
        self.data_iter = data_iter
        self.size = size
        self.reset_internal = reset_internal
        self.cur = 0
        self.current_batch = None
        self.provide_data = data_iter.provide_data
        self.provide_label = data_iter.provide_label
        self.batch_size = data_iter.batch_size
        if hasattr(data_iter, 'default_bucket_key'):
            self.default_bucket_key = data_iter.default_bucket_key

    def reset(self):
        self.cur = 0
        if self.reset_internal:
            self.data_iter.reset()

    def iter_next(self):
        if self.cur == self.size:
            return False
        try:
            self.current_batch = self.data_iter.next()
        except StopIteration:
            self.data_iter.reset()
            self.current_batch = self.data_iter.next()
        self.cur += 1
        return True



def _to_ndarray(v, key):
    if isinstance(v, NDArray):
        return v
    try:
        a = np.array(v._data if isinstance(v, NDArray) else v)
    except (TypeError, ValueError) as e:
        raise TypeError("Invalid type '%s' for %s, should be NDArray, numpy.ndarray: %s"
                        % (type(v), key, e)) from None
    if a.dtype == object or a.dtype.kind not in 'biuf':
        raise TypeError("Invalid type '%s' for %s, should be NDArray, numpy.ndarray"
                        % (type(v), key))
    return _wrap(a.astype(np.float32))


def _init_data(data, allow_empty, default_name):
    """``[(name, NDArray)]`` sorted by name, from an array, a list or a dict."""
    assert (data is not None) or allow_empty
    if data is None:
        data = []
    if isinstance(data, (np.ndarray, NDArray)):
        data = [data]
    if isinstance(data, list):
        if not allow_empty:
            assert len(data) > 0
        if len(data) == 1:
            data = OrderedDict([(default_name, data[0])])
        else:
            data = OrderedDict([('_%d_%s' % (i, default_name), d) for i, d in enumerate(data)])
    if not isinstance(data, dict):
        raise TypeError("Input must be NDArray, numpy.ndarray, a list of them or dict with "
                        "them as values")
    out = []
    for k, v in data.items():
        arr = _to_ndarray(v, k)
        if arr.ndim == 0:
            raise MXNetError("NDArrayIter: input %r must have a batch axis, got a scalar" % k)
        out.append((k, arr))
    return list(sorted(out, key=lambda kv: kv[0]))


_HANDLES = ('pad', 'discard', 'roll_over')


class NDArrayIter(DataIter):
    """Iterate over NDArrays / NumPy arrays in batches (MXNet 1.x ``mx.io.NDArrayIter``).

    Parameters
    ----------
    data : array, list of arrays or dict of str to array
    label : array, list of arrays or dict of str to array, optional
    batch_size : int
    shuffle : bool
        Permute the samples (NumPy's global generator) at construction and each reset.
    last_batch_handle : {'pad', 'discard', 'roll_over'}
    data_name, label_name : str
        Names used when ``data`` / ``label`` are not dicts.
    layout : str
        The data layout of ``provide_data`` (MXNet's argument; the batch axis is first).
    part_index, num_parts : int
        agjit's sharding for data-parallel training (the names of MXNet's record iterators):
        the iterator sees only samples ``[part_index * C, (part_index + 1) * C)`` with
        ``C = num_samples // num_parts`` (the remainder is dropped so that every part has
        the same number of batches), e.g. ``part_index=kv.rank, num_parts=kv.num_workers``.

    >>> it = NDArrayIter(np.arange(10).reshape(5, 2), np.arange(5), batch_size=2,
    ...                  last_batch_handle='discard')
    >>> it.provide_data, it.provide_label
    ([DataDesc[data,(2, 2),<class 'numpy.float32'>,NCHW]], [DataDesc[softmax_label,(2,),<class 'numpy.float32'>,NCHW]])
    >>> len(list(it))
    2
    """

    def __init__(self, data, label=None, batch_size=1, shuffle=False, last_batch_handle='pad',
                 data_name='data', label_name='softmax_label', layout='NCHW', part_index=0,
                 num_parts=1):
        super(NDArrayIter, self).__init__(batch_size)
        if last_batch_handle not in _HANDLES:
            raise MXNetError("NDArrayIter: last_batch_handle must be one of %s, got %r"
                             % (", ".join(_HANDLES), last_batch_handle))
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise MXNetError("NDArrayIter: batch_size must be a positive integer, got %r"
                             % (batch_size,))
        self.data = _init_data(data, allow_empty=False, default_name=data_name)
        self.label = _init_data(label, allow_empty=True, default_name=label_name)
        self.num_data = self.data[0][1].shape[0]
        for k, v in self.data + self.label:
            if v.shape[0] < self.num_data:
                raise MXNetError("NDArrayIter: %r has %d samples but %r has %d; every input "
                                 "needs at least as many samples as the first"
                                 % (k, v.shape[0], self.data[0][0], self.num_data))
        self.layout = layout
        if not isinstance(num_parts, (int, np.integer)) or num_parts < 1 or \
                not isinstance(part_index, (int, np.integer)) or \
                not 0 <= part_index < num_parts:
            raise MXNetError("NDArrayIter: part_index must be in [0, num_parts) and num_parts "
                             ">= 1, got part_index=%r, num_parts=%r" % (part_index, num_parts))
        if num_parts > 1:
            c = self.num_data // num_parts
            if c == 0:
                raise MXNetError("NDArrayIter: %d samples cannot be split into %d parts"
                                 % (self.num_data, num_parts))
            lo = int(part_index) * c
            self.data = [(k, _wrap(v._data[lo:lo + c])) for k, v in self.data]
            self.label = [(k, _wrap(v._data[lo:lo + c])) for k, v in self.label]
            self.num_data = c
        self.part_index, self.num_parts = int(part_index), int(num_parts)
        self.idx = np.arange(self.num_data)
        self.shuffle = shuffle
        self.last_batch_handle = last_batch_handle
        self.batch_size = int(batch_size)
        self.cursor = -self.batch_size
        self._cache_data = None
        self._cache_label = None
        self.reset()
        self.data_list = [x[1] for x in self.data] + [x[1] for x in self.label]
        self.num_source = len(self.data_list)

    @property
    def provide_data(self):
        """``[DataDesc(name, (batch_size,) + sample shape, dtype)]`` of the data."""
        return [DataDesc(k, tuple([self.batch_size] + list(v.shape[1:])), v.dtype,
                         self.layout) for k, v in self.data]

    @property
    def provide_label(self):
        """``[DataDesc(...)]`` of the labels."""
        return [DataDesc(k, tuple([self.batch_size] + list(v.shape[1:])), v.dtype)
                for k, v in self.label]

    def hard_reset(self):
        """Start over, dropping any rolled-over samples."""
        if self.shuffle:
            self._shuffle_data()
        self.cursor = -self.batch_size
        self._cache_data = None
        self._cache_label = None

    def reset(self):
        """Start the next epoch (rolled-over samples, if any, open it)."""
        if self.shuffle:
            self._shuffle_data()
        if self.last_batch_handle == 'roll_over' and \
                self.num_data - self.batch_size < self.cursor < self.num_data:
            # cursor - num_data samples are cached; the first batch takes batch_size - that
            self.cursor = self.cursor - self.num_data - self.batch_size
        else:
            self.cursor = -self.batch_size

    def iter_next(self):
        self.cursor += self.batch_size
        return self.cursor < self.num_data

    def next(self):
        if not self.iter_next():
            raise StopIteration
        data = self.getdata()
        label = self.getlabel()
        if data[0].shape[0] != self.batch_size:
            # an incomplete last batch ('discard' / 'roll_over'): keep it for the next epoch
            self._cache_data = data
            self._cache_label = label
            raise StopIteration
        return DataBatch(data=data, label=label, pad=self.getpad(), index=None)

    @staticmethod
    def _getdata(data_source, start=None, end=None):
        assert start is not None or end is not None, 'should at least specify start or end'
        start = start if start is not None else 0
        if end is None:
            end = data_source[0][1].shape[0] if data_source else 0
        return [_wrap(x[1]._data[start:end]) for x in data_source]

    @staticmethod
    def _concat(first_data, second_data):
        if (not first_data) or (not second_data):
            return first_data if first_data else second_data
        assert len(first_data) == len(second_data), 'data source should contain the same size'
        return [_wrap(np.concatenate([a._data, b._data], axis=0))
                for a, b in zip(first_data, second_data)]

    @staticmethod
    def _tile(data, repeats):
        return [_wrap(np.tile(d._data, [repeats] + [1] * (d.ndim - 1))) for d in data]

    def _batchify(self, data_source):
        assert self.cursor < self.num_data, 'DataIter needs reset.'
        if self.last_batch_handle == 'roll_over' and -self.batch_size < self.cursor < 0:
            # the first batch of an epoch after a roll-over: cached samples + the first ones
            assert self._cache_data is not None or self._cache_label is not None, \
                'next epoch should have cached data'
            cache_data = self._cache_data if self._cache_data is not None else self._cache_label
            second_data = self._getdata(data_source, end=self.cursor + self.batch_size)
            if self._cache_data is not None:
                self._cache_data = None
            else:
                self._cache_label = None
            return self._concat(cache_data, second_data)
        if self.last_batch_handle == 'pad' and self.cursor + self.batch_size > self.num_data:
            pad = self.batch_size - self.num_data + self.cursor
            first_data = self._getdata(data_source, start=self.cursor)
            if pad > self.num_data:
                repeats = pad // self.num_data
                second_data = self._tile(self._getdata(data_source, end=self.num_data), repeats)
                if pad % self.num_data != 0:
                    second_data = self._concat(second_data, self._getdata(
                        data_source, end=pad % self.num_data))
            else:
                second_data = self._getdata(data_source, end=pad)
            return self._concat(first_data, second_data)
        end_idx = min(self.cursor + self.batch_size, self.num_data)
        return self._getdata(data_source, self.cursor, end_idx)

    def getdata(self):
        return self._batchify(self.data)

    def getlabel(self):
        return self._batchify(self.label)

    def getpad(self):
        if self.last_batch_handle == 'pad' and self.cursor + self.batch_size > self.num_data:
            return self.cursor + self.batch_size - self.num_data
        if self.last_batch_handle == 'roll_over' and -self.batch_size < self.cursor < 0:
            return -self.cursor
        return 0

    def _shuffle_data(self):
        np.random.shuffle(self.idx)
        self.data = [(k, _wrap(v._data[self.idx])) for k, v in self.data]
        self.label = [(k, _wrap(v._data[self.idx])) for k, v in self.label]


# ---------------------------------------------------------------------------------------------
# file-backed iterators: CSVIter, LibSVMIter (MXNet's C++ iterators, here in NumPy)
# ---------------------------------------------------------------------------------------------
class _RowStreamIter(DataIter):
    """Batches of rows read as one circular stream, as MXNet's C++ row iterators do: with
    ``round_batch`` the last batch of an epoch is filled from the start of the data (``pad``
    says how many rows), and the next epoch starts after the rows so used; without it the last
    batch keeps stale rows in its padding."""

    def __init__(self, data, label, batch_size, round_batch, data_name, label_name,
                 make_data=None):
        super(_RowStreamIter, self).__init__(batch_size)
        if batch_size <= 0:
            raise MXNetError("%s: batch_size must be positive, got %r"
                             % (type(self).__name__, batch_size))
        if len(data) == 0:
            raise MXNetError("%s: the data file has no rows" % type(self).__name__)
        self._data = data
        self._label = label
        self._round = bool(round_batch)
        self._make = make_data or _wrap
        self._data_name, self._label_name = data_name, label_name
        self._start = 0             # first row of the current epoch
        self._cursor = None
        self._batch = None
        self._stale_data = np.zeros((batch_size,) + data.shape[1:], dtype=data.dtype)
        self._stale_label = np.zeros((batch_size,) + label.shape[1:], dtype=label.dtype)

    @property
    def provide_data(self):
        return [DataDesc(self._data_name, (self.batch_size,) + self._data.shape[1:])]

    @property
    def provide_label(self):
        return [DataDesc(self._label_name, (self.batch_size,) + self._label.shape[1:])]

    def reset(self):
        self._cursor = None

    def iter_next(self):
        n = len(self._data)
        if self._cursor is None:
            self._cursor = self._start
        if self._cursor >= n:
            return False
        rows = list(range(self._cursor, min(self._cursor + self.batch_size, n)))
        pad = self.batch_size - len(rows)
        self._cursor += len(rows)
        if pad:
            if self._round:
                wrapped = [i % n for i in range(pad)]
                self._start = pad % n
                idx = rows + wrapped
                data, label = self._data[idx], self._label[idx]
            else:
                self._start = 0
                data = self._stale_data.copy()
                label = self._stale_label.copy()
                data[:len(rows)] = self._data[rows]
                label[:len(rows)] = self._label[rows]
                idx = rows + [0] * pad
        else:
            if self._cursor >= n:
                self._start = 0
            idx = rows
            data, label = self._data[rows], self._label[rows]
        self._batch = (data, label, pad, np.asarray(idx, dtype=np.uint64))
        if not self._round:
            self._stale_data[:] = data
            self._stale_label[:] = label
        return True

    def getdata(self):
        return [self._make(self._batch[0])]

    def getlabel(self):
        return [_wrap(self._batch[1])]

    def getpad(self):
        return self._batch[2]

    def getindex(self):
        return self._batch[3]


def _shape_tuple(shape, what):
    if isinstance(shape, int):
        shape = (shape,)
    shape = tuple(int(d) for d in shape)
    if not shape or any(d <= 0 for d in shape):
        raise MXNetError("%s must be a non-empty tuple of positive ints, got %r" % (what, shape))
    return shape


def _read_csv(path, shape, dtype, what):
    size = int(np.prod(shape))
    try:
        with open(path, "r") as f:
            rows = []
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line:
                    continue
                try:
                    vals = [float(v) for v in line.split(",")]
                except ValueError:
                    raise MXNetError("CSVIter: %s line %d is not a row of numbers: %r"
                                     % (path, lineno, line[:80])) from None
                if len(vals) != size:
                    raise MXNetError("CSVIter: %s line %d has %d values, %s=%s needs %d"
                                     % (path, lineno, len(vals), what, shape, size))
                rows.append(vals)
    except OSError as e:
        raise MXNetError("CSVIter: cannot read %s: %s" % (path, e.strerror or e)) from None
    return np.asarray(rows, dtype=dtype).reshape((len(rows),) + shape)


class CSVIter(_RowStreamIter):
    """Batches from CSV files (MXNet's ``mx.io.CSVIter``): ``data_csv`` rows reshaped to
    ``data_shape``; ``label_csv`` rows to ``label_shape`` (zeros when no label file is given);
    ``round_batch`` as in :class:`_RowStreamIter`.  Data are named ``data`` and
    ``softmax_label``; a ``label_shape`` of ``(1,)`` gives labels of shape ``(batch,)``."""

    def __init__(self, data_csv, data_shape, label_csv=None, label_shape=(1,), batch_size=1,
                 round_batch=True, dtype="float32", prefetch_buffer=4, **kwargs):
        data_shape = _shape_tuple(data_shape, "data_shape")
        label_shape = _shape_tuple(label_shape, "label_shape")
        data = _read_csv(data_csv, data_shape, dtype, "data_shape")
        if label_csv is not None:
            label = _read_csv(label_csv, label_shape, "float32", "label_shape")
            if len(label) != len(data):
                raise MXNetError("CSVIter: %s has %d rows but %s has %d"
                                 % (label_csv, len(label), data_csv, len(data)))
        else:
            label = np.zeros((len(data),) + label_shape, dtype=np.float32)
        if label_shape == (1,):
            label = label.reshape(len(label))
        super(CSVIter, self).__init__(data, label, int(batch_size), round_batch, "data",
                                      "softmax_label")


class LibSVMIter(_RowStreamIter):
    """Batches of sparse rows from a LibSVM file (``label idx:value ...`` per line, indices
    from 0): data are CSRNDArrays of shape ``(batch,) + data_shape`` (stored densely, see
    agjit.ndarray.sparse), labels the first column (or rows of ``label_libsvm``)."""

    def __init__(self, data_libsvm, data_shape, label_libsvm=None, label_shape=(1,),
                 batch_size=1, round_batch=True, num_parts=1, part_index=0, **kwargs):
        from .ndarray.sparse import CSRNDArray
        data_shape = _shape_tuple(data_shape, "data_shape")
        if len(data_shape) != 1:
            raise MXNetError("LibSVMIter: data_shape must be 1-D, got %s" % (data_shape,))
        data, label = self._read(data_libsvm, data_shape[0])
        if label_libsvm is not None:
            label_shape = _shape_tuple(label_shape, "label_shape")
            ldata, _ = self._read(label_libsvm, int(np.prod(label_shape)))
            label = ldata.reshape((len(ldata),) + label_shape)
        if num_parts > 1:
            rows = np.array_split(np.arange(len(data)), num_parts)[part_index]
            data, label = data[rows], label[rows]
        super(LibSVMIter, self).__init__(data, label, int(batch_size), round_batch, "data",
                                         "softmax_label", make_data=CSRNDArray)

    @staticmethod
    def _read(path, width):
        rows, labels = [], []
        try:
            with open(path, "r") as f:
                for lineno, line in enumerate(f, 1):
                    parts = line.split()
                    if not parts:
                        continue
                    row = np.zeros(width, dtype=np.float32)
                    try:
                        labels.append(float(parts[0]))
                        for item in parts[1:]:
                            k, v = item.split(":")
                            k = int(k)
                            if not 0 <= k < width:
                                raise MXNetError("LibSVMIter: %s line %d: feature index %d is "
                                                 "outside data_shape (%d,)" % (path, lineno, k, width))
                            row[k] = float(v)
                    except ValueError:
                        raise MXNetError("LibSVMIter: %s line %d is not 'label idx:value ...': %r"
                                         % (path, lineno, line.strip()[:80])) from None
                    rows.append(row)
        except OSError as e:
            raise MXNetError("LibSVMIter: cannot read %s: %s" % (path, e.strerror or e)) from None
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), width), \
            np.asarray(labels, dtype=np.float32)


def read_idx_file(path, what, magic_ndim):
    """An MNIST-style idx file (big-endian magic ``0x08 0x0N`` with N dimensions, then the
    dimensions as uint32, then uint8 data), also gzip-compressed (``.gz``)."""
    import gzip
    import struct
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise MXNetError("MNISTIter: cannot read the %s file %s: %s" % (what, path, e.strerror or e)) from None
    if len(raw) < 4:
        raise MXNetError("MNISTIter: %s file %s is too short to be an idx file" % (what, path))
    magic = struct.unpack(">I", raw[:4])[0]
    ndim = magic & 0xff
    if magic >> 8 != 0x08 or ndim != magic_ndim:
        raise MXNetError("MNISTIter: %s is not an idx%d-ubyte %s file (magic 0x%08x)"
                         % (path, magic_ndim, what, magic))
    head = 4 + 4 * ndim
    if len(raw) < head:
        raise MXNetError("MNISTIter: %s file %s is truncated" % (what, path))
    dims = struct.unpack(">%dI" % ndim, raw[4:head])
    n = int(np.prod(dims))
    if len(raw) - head < n:
        raise MXNetError("MNISTIter: %s file %s is truncated: %s needs %d bytes of data, it has %d"
                         % (what, path, dims, n, len(raw) - head))
    return np.frombuffer(raw, dtype=np.uint8, count=n, offset=head).reshape(dims)


class MNISTIter(DataIter):
    """MXNet's ``mx.io.MNISTIter``: batches of the MNIST idx files ``image`` (idx3-ubyte) and
    ``label`` (idx1-ubyte), optionally gzipped.  Pixels are scaled by 1/256 as MXNet does;
    data shape ``(batch, 1, 28, 28)``, or ``(batch, 784)`` with ``flat``; float32 labels
    ``(batch,)`` named ``softmax_label``.  An epoch ends before an incomplete last batch (it is
    dropped, as in MXNet).  ``shuffle`` permutes the images once, with ``seed`` (agjit's own
    generator, so the order differs from MXNet's); ``num_parts``/``part_index`` take one
    contiguous part of the images.  Nothing is downloaded: the files must exist."""

    def __init__(self, image="./train-images-idx3-ubyte", label="./train-labels-idx1-ubyte",
                 batch_size=128, shuffle=True, flat=False, seed=0, silent=False, num_parts=1,
                 part_index=0, dtype="float32", **kwargs):
        super(MNISTIter, self).__init__(int(batch_size))
        if self.batch_size <= 0:
            raise MXNetError("MNISTIter: batch_size must be positive, got %r" % (batch_size,))
        img = read_idx_file(image, "image", 3)
        lab = read_idx_file(label, "label", 1)
        if len(img) != len(lab):
            raise MXNetError("MNISTIter: %s has %d images but %s has %d labels"
                             % (image, len(img), label, len(lab)))
        if not 0 <= part_index < num_parts:
            raise MXNetError("MNISTIter: part_index=%d must be in [0, num_parts=%d)"
                             % (part_index, num_parts))
        n = len(img)
        lo, hi = n * part_index // num_parts, n * (part_index + 1) // num_parts
        img, lab = img[lo:hi], lab[lo:hi]
        if shuffle:
            order = np.random.default_rng(int(seed)).permutation(len(img))
            img, lab = img[order], lab[order]
        data = img.astype(np.float32) * np.float32(1.0 / 256.0)
        self._data = data.reshape(len(img), -1) if flat else data.reshape(len(img), 1, *img.shape[1:])
        self._data = self._data.astype(dtype, copy=False)
        self._label = lab.astype(np.float32)
        self._cursor = 0
        self._batch = None
        if not silent:
            import logging
            logging.info("MNISTIter: load %d images, shuffle=%d, shape=%s", len(img), int(shuffle),
                         (self.batch_size,) + self._data.shape[1:])

    @property
    def provide_data(self):
        return [DataDesc("data", (self.batch_size,) + self._data.shape[1:], self._data.dtype)]

    @property
    def provide_label(self):
        return [DataDesc("softmax_label", (self.batch_size,), np.float32)]

    def reset(self):
        self._cursor = 0

    def iter_next(self):
        if self._cursor + self.batch_size > len(self._data):
            return False
        sl = slice(self._cursor, self._cursor + self.batch_size)
        self._batch = (self._data[sl].copy(), self._label[sl].copy())
        self._cursor += self.batch_size
        return True

    def getdata(self):
        return [_wrap(self._batch[0])]

    def getlabel(self):
        return [_wrap(self._batch[1])]

    def getpad(self):
        return 0

    def getindex(self):
        return np.zeros(self.batch_size, dtype=np.uint64)


class PrefetchingIter(_WrappedBatch, DataIter):
    """Iterate several iterators together (their data and labels concatenated), optionally
    renaming their inputs (``rename_data`` / ``rename_label``: one dict per iterator).  agjit
    reads batches on demand; the name is MXNet's, the prefetch thread is not needed here."""

    def __init__(self, iters, rename_data=None, rename_label=None):
        super(PrefetchingIter, self).__init__()
        if not isinstance(iters, list):
            iters = [iters]
        self.iters = iters
        self.rename_data = rename_data
        self.rename_label = rename_label
        self.batch_size = self.provide_data[0][1][0]
        self.current_batch = None

    @staticmethod
    def _rename(descs, renames):
        if renames is None:
            return sum(descs, [])
        return [DataDesc(r.get(d.name, d.name), d.shape, d.dtype, d.layout)
                if isinstance(d, DataDesc) else DataDesc(r.get(d[0], d[0]), d[1])
                for r, ds in zip(renames, descs) for d in ds]

    @property
    def provide_data(self):
        return self._rename([i.provide_data for i in self.iters], self.rename_data)

    @property
    def provide_label(self):
        return self._rename([i.provide_label for i in self.iters], self.rename_label)

    def reset(self):
        for i in self.iters:
            i.reset()

    def iter_next(self):
        batches = []
        for i in self.iters:
            try:
                batches.append(i.next())
            except StopIteration:
                return False
        pads = {b.pad for b in batches}
        if len(pads) > 1:
            raise MXNetError("PrefetchingIter: the iterators disagree on padding %s" % sorted(pads))
        self.current_batch = DataBatch(sum([b.data for b in batches], []),
                                       sum([b.label or [] for b in batches], []),
                                       batches[0].pad, batches[0].index,
                                       provide_data=self.provide_data,
                                       provide_label=self.provide_label)
        return True

    def next(self):
        if self.iter_next():
            return self.current_batch
        raise StopIteration

