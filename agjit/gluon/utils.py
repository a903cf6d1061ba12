"""``gluon.utils``: splitting batches over devices, global-norm clipping, file checks."""
import hashlib
import os
import warnings

import numpy as np

from symbol.base import MXNetError
from .. import ndarray as _nd
from ..ndarray.ndarray import NDArray
from .parameter import _brief_print_list, _indent  # noqa: F401  (MXNet has them here too)

__all__ = ["split_data", "split_and_load", "clip_global_norm", "check_sha1", "download",
           "shape_is_known"]


def split_data(data, num_slice, batch_axis=0, even_split=True):
    """Split ``data`` into ``num_slice`` slices along ``batch_axis`` (always a list).

    With ``even_split=False`` the first ``size % num_slice`` slices get one more element
    (6 rows into 4 slices: 2, 2, 1, 1); with ``even_split=True`` an uneven size raises
    ValueError.

    >>> [s.shape for s in mx.gluon.utils.split_data(mx.nd.zeros((6, 2)), 4, even_split=False)]
    [(2, 2), (2, 2), (1, 2), (1, 2)]
    """
    size = data.shape[batch_axis]
    if even_split and size % num_slice != 0:
        raise ValueError(
            "data with shape %s cannot be evenly split into %d slices along axis %d. "
            "Use a batch size that's multiple of %d or set even_split=False to allow "
            "uneven partitioning of data." % (str(data.shape), num_slice, batch_axis,
                                              num_slice))
    n_each, extras = divmod(size, num_slice)
    sizes = [0] + extras * [n_each + 1] + (num_slice - extras) * [n_each]
    div = np.array(sizes).cumsum()
    if batch_axis != 0:
        return [_nd.slice_axis(data, axis=batch_axis, begin=int(div[i]), end=int(div[i + 1]))
                for i in range(num_slice)]
    return [data[int(div[i]):int(div[i + 1])] if i < num_slice - 1 else data[int(div[i]):size]
            for i in range(num_slice)]


class _PlacedNDArray(NDArray):
    """An NDArray slice that reports the CPU context it was split onto (``cpu(1)``...).
    agjit computes on one device, so the data stays where it is."""
    __slots__ = ("_ctx",)

    @property
    def context(self):
        return self._ctx

    ctx = context


def _placed(arr, ctx):
    if ctx == arr.context or getattr(ctx, "device_type", None) != "cpu":
        return arr.as_in_context(ctx)
    out = object.__new__(_PlacedNDArray)
    out._data = arr._data
    out._entry = arr._entry
    out._ctx = ctx
    return out


def split_and_load(data, ctx_list, batch_axis=0, even_split=True):
    """Split ``data`` (NDArray or array-like, made float32 NDArray) into one slice per
    context of ``ctx_list``; a list even for one context.  Slices for ``cpu(k)`` report
    that context (one device computes them all)."""
    if not isinstance(data, NDArray):
        data = _nd.array(data, ctx=ctx_list[0])
    if len(ctx_list) == 1:
        return [_placed(data, ctx_list[0])]
    slices = split_data(data, len(ctx_list), batch_axis, even_split)
    return [_placed(i, ctx) for i, ctx in zip(slices, ctx_list)]


def clip_global_norm(arrays, max_norm, check_isfinite=True):
    """Scale ``arrays`` in place so that their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping: a numpy float32 scalar, or a ``(1,)`` NDArray with
    ``check_isfinite=False``.  A non-finite norm warns (UserWarning) and still scales.
    """
    assert len(arrays) > 0

    def _norm(array):
        x = array.reshape((-1,))
        return _nd.dot(x, x)

    total_norm = _nd.add_n(*[_norm(arr) for arr in arrays])
    total_norm = _nd.sqrt(total_norm)
    if check_isfinite:
        if not np.isfinite(total_norm.asscalar()):
            warnings.warn(UserWarning('nan or inf is detected. Clipping results will be '
                                      'undefined.'), stacklevel=2)
    scale = max_norm / (total_norm + 1e-8)
    scale = _nd.min(_nd.concat(scale.reshape((1,)), _nd.ones(1), dim=0))
    for arr in arrays:
        arr *= scale
    if check_isfinite:
        return total_norm.asscalar()
    return total_norm


def check_sha1(filename, sha1_hash):
    """True when the SHA-1 of the file equals ``sha1_hash`` (hex)."""
    sha1 = hashlib.sha1()
    with open(filename, 'rb') as f:
        while True:
            data = f.read(1048576)
            if not data:
                break
            sha1.update(data)
    return sha1.hexdigest() == sha1_hash


def download(url, path=None, overwrite=False, sha1_hash=None, retries=5, verify_ssl=True):
    """MXNet's ``download``: returns the local file when it is already there (and matches
    ``sha1_hash`` when given); agjit has no network access, so anything else raises
    MXNetError naming the URL and the path to place the file at."""
    if path is None:
        fname = url.split('/')[-1]
        assert fname, "Can't construct file-name from this URL. Please set the `path` " \
                      "option manually."
    else:
        path = os.path.expanduser(path)
        fname = os.path.join(path, url.split('/')[-1]) if os.path.isdir(path) else path
    if not overwrite and os.path.exists(fname) and (not sha1_hash or check_sha1(fname, sha1_hash)):
        return fname
    why = "its SHA-1 does not match %s" % sha1_hash if os.path.exists(fname) and sha1_hash \
        else "it does not exist"
    raise MXNetError("download: cannot fetch %s -- agjit does not download files (no network "
                     "access); %s is needed and %s: obtain the file elsewhere and place it "
                     "there" % (url, fname, why))


def shape_is_known(shape):
    """True when every dim of ``shape`` is known (> 0)."""
    if shape is None:
        return False
    return all(int(d) > 0 for d in shape) if len(shape) else True
