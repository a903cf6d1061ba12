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

__all__ = ["DataDesc", "DataBatch", "DataIter", "NDArrayIter", "ResizeIter"]


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


class ResizeIter(DataIter):
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

    def getdata(self):
        return self.current_batch.data

    def getlabel(self):
        return self.current_batch.label

    def getindex(self):
        return self.current_batch.index

    def getpad(self):
        return self.current_batch.pad


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

    >>> it = NDArrayIter(np.arange(10).reshape(5, 2), np.arange(5), batch_size=2,
    ...                  last_batch_handle='discard')
    >>> it.provide_data, it.provide_label
    ([DataDesc[data,(2, 2),<class 'numpy.float32'>,NCHW]], [DataDesc[softmax_label,(2,),<class 'numpy.float32'>,NCHW]])
    >>> len(list(it))
    2
    """

    def __init__(self, data, label=None, batch_size=1, shuffle=False, last_batch_handle='pad',
                 data_name='data', label_name='softmax_label'):
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
        return [DataDesc(k, tuple([self.batch_size] + list(v.shape[1:])), v.dtype)
                for k, v in self.data]

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
