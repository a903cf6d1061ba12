"""Basic indexing, ``__setitem__`` and ``NDArray.reshape`` with MXNet's recorded forms.

What MXNet 1.9.1 records (FINDINGS §6.3):

* ``x[a:b]`` (a slice on the first axis, step None/1): ``slice`` with ``begin``/``end`` the
  resolved ints;
* ``x[i]``: ``slice(begin=i, end=i+1)`` then ``Reshape`` to the remaining shape;
* any other basic key: ``slice`` with begin/end/step tuples over all axes (None where the
  user gave nothing) then ``Reshape`` to the result shape in C++ ``[a,b]`` format;
* ``x.reshape(...)``: ``Reshape`` with the *resolved* shape in ``[a,b]`` format.

Outside recording, results are NumPy views sharing memory, as MXNet's are.
"""
import numpy as np

from symbol.base import MXNetError
from symbol.ops.shape import resolve_reshape  # noqa: F401  (re-exported)
from .. import tape
from ..tape import state, entry_of
from .ndarray import NDArray, invoke, _wrap


def _cshape(shape):
    return "[%s]" % ",".join(str(int(d)) for d in shape)


def _recording(x):
    """Whether a view op on ``x`` must go through invoke: it is recorded on the tape, or a
    jitted function is being traced (a plain NumPy view would be invisible to the tracer
    and the result captured as a constant)."""
    return state.tracer is not None or tape.needs_record([x])


def _norm_int(i, n, axis):
    i = int(i)
    if i < -n or i >= n:
        raise IndexError("index %d is out of bounds for axis %d with size %d" % (i, axis, n))
    return i + n if i < 0 else i


def getitem(x, key):
    shape = x.shape
    if isinstance(key, NDArray):
        # advanced indexing by an index array: take along axis 0
        return invoke("take", [x, key], {})
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if x.ndim == 0:
            raise IndexError("too many indices for a 0-d array")
        i = _norm_int(key, shape[0], 0)
        rest = shape[1:] if len(shape) > 1 else (1,)
        if not _recording(x):
            return _wrap(x._data[i] if len(shape) > 1 else x._data[i:i + 1])
        s = _record_slice(x, {"begin": str(i), "end": str(i + 1)}, (slice(i, i + 1),))
        return _record_reshape(s, rest)
    if isinstance(key, slice):
        if key.step is None or key.step == 1:
            start, stop, _ = key.indices(shape[0]) if x.ndim else (0, 0, 1)
            stop = max(stop, start)
            if not _recording(x):
                return _wrap(x._data[start:stop])
            return _record_slice(x, {"begin": str(start), "end": str(stop)}, (slice(start, stop),))
        key = (key,)
    if key is Ellipsis or key is None:
        key = (key,)
    if isinstance(key, (list, np.ndarray, range)):
        key = (key,)
    if not isinstance(key, tuple):
        raise IndexError("NDArray does not support indexing with %r" % (key,))
    if any(isinstance(k, (NDArray, np.ndarray, list, tuple, range)) for k in key):
        return _advanced_getitem(x, key)
    if any(k is None for k in key):
        # MXNet: index without the new axes (slice [+ Reshape]), then one Reshape inserting 1s
        inner = tuple(k for k in key if k is not None)
        base = getitem(x, inner if inner else (Ellipsis,))
        out_shape = list(_np_index_shape(x.shape, key))
        if not _recording(x):
            return _wrap(base._data.reshape(out_shape))
        return _record_reshape(base, tuple(out_shape))
    n_ell = sum(1 for k in key if k is Ellipsis)
    if n_ell > 1:
        raise IndexError("an index can only have a single ellipsis")
    nreal = len(key) - n_ell
    if nreal > x.ndim:
        raise IndexError("too many indices (%d) for an array of %d dimensions" % (nreal, x.ndim))
    if n_ell:
        j = key.index(Ellipsis)
        key = key[:j] + (slice(None),) * (x.ndim - nreal) + key[j + 1:]
    begin, end, step, npkey, out_shape = [], [], [], [], []
    for ax, k in enumerate(key):
        if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            i = _norm_int(k, shape[ax], ax)
            begin.append(i)
            end.append(i + 1)
            step.append(None)
            npkey.append(slice(i, i + 1))
        elif isinstance(k, slice):
            for v in (k.start, k.stop, k.step):
                if v is not None and not isinstance(v, (int, np.integer)):
                    raise IndexError("slice indices must be integers or None, got %r" % (v,))
            if k.step == 0:
                raise MXNetError("slice step cannot be zero")
            begin.append(None if k.start is None else int(k.start))
            end.append(None if k.stop is None else int(k.stop))
            step.append(None if k.step is None else int(k.step))
            npkey.append(k)
            out_shape.append(len(range(*k.indices(shape[ax]))))
        else:
            raise IndexError("NDArray basic indexing does not support %r" % (k,))
    for ax in range(len(key), x.ndim):
        # MXNet expands the key to every axis: x[::2] on 2-D records begin "(None, None)"
        begin.append(None)
        end.append(None)
        step.append(None)
        out_shape.append(shape[ax])
    if not out_shape:
        out_shape = [1]
    if not _recording(x):
        v = x._data[tuple(npkey)]
        return _wrap(v.reshape(out_shape))
    attrs = {"begin": str(tuple(begin)), "end": str(tuple(end)), "step": str(tuple(step))}
    s = _record_slice(x, attrs, tuple(npkey))
    return _record_reshape(s, tuple(out_shape))


def _np_index_shape(shape, key):
    """The shape NumPy gives ``key`` on an array of ``shape`` (MXNet follows NumPy's rules
    for ``None``, integer-array and mixed keys)."""
    return np.empty(shape, dtype=np.bool_)[key].shape


def _np_key(key):
    """``key`` with NDArrays / lists / ranges as NumPy integer arrays (MXNet casts every
    advanced index to int32/int64, so a float index array truncates)."""
    out = []
    for k in key:
        if isinstance(k, NDArray):
            k = k._data
        if isinstance(k, (list, tuple, range, np.ndarray)):
            k = np.asarray(k)
            if k.dtype == np.bool_:
                raise ValueError("Cannot perform boolean indexing in legacy mode. Please activate "
                                 "numpy semantics by calling `npx.set_np()` in the global scope "
                                 "before calling this function.")
            k = k.astype(np.int64)
        out.append(k)
    return tuple(out)


def _advanced_getitem(x, key):
    """NumPy advanced indexing (integer arrays, lists, mixed with ints/slices/None), as
    MXNet 1.x does it: a ``gather_nd`` on the stacked, broadcast coordinates of the picked
    elements (gradients scatter back into ``x``)."""
    npkey = _np_key(key)
    try:
        if not _recording(x):
            return _wrap(np.ascontiguousarray(x._data[npkey]))
        coords = np.indices(x.shape, dtype=np.int64, sparse=True)
        picked = [np.broadcast_to(c, x.shape)[npkey] for c in coords]
    except IndexError as e:
        raise IndexError("NDArray advanced indexing with %r on an array of shape %s: %s"
                         % (key, x.shape, e)) from None
    from . import array as _array
    idx = _array(np.stack(picked) if picked else np.zeros((0,), np.int64), dtype="int64")
    return invoke("gather_nd", [x, idx], {})


def _record_slice(x, attrs_str, npkey):
    """Run and record a ``slice`` node with exactly the attr strings MXNet writes."""
    op = "slice"
    return invoke(op, [x], attrs_str, forward_override=lambda arrs: [np.ascontiguousarray(arrs[0][npkey])])


def _record_reshape(s, shape):
    return invoke("Reshape", [s], {"shape": _cshape(shape)},
                  forward_override=lambda arrs: [arrs[0].reshape(shape)])


def setitem(x, key, value):
    if state.recording and entry_of(x) is not None:
        raise MXNetError("__setitem__: cannot assign into an array that is part of a recorded "
                         "computation graph inside autograd.record()")
    if isinstance(value, NDArray):
        value = value._data
    elif not isinstance(value, np.ndarray):
        value = np.asarray(value)
    if isinstance(key, NDArray):
        key = key._data.astype(np.int64)
    elif isinstance(key, tuple):
        key = _np_key(key)
    elif isinstance(key, (list, range)):
        key = _np_key((key,))[0]
    if isinstance(key, (int, np.integer)) and x.ndim == 1:
        _norm_int(key, x.shape[0], 0)
    try:
        x._data[key] = value
    except ValueError as e:
        raise MXNetError("__setitem__: cannot assign a value of shape %s to %s of an array of "
                         "shape %s: %s" % (np.shape(value), key, x.shape, e)) from None


_RESOLVED = {}


def reshape_method(x, shape, kwargs):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    if "shape" in kwargs:
        shape = tuple(kwargs.pop("shape"))
    reverse = bool(kwargs.pop("reverse", False))
    if kwargs:
        raise TypeError("reshape() got unexpected keyword arguments %s" % sorted(kwargs))
    if not shape:
        raise MXNetError("Reshape: shape must be given")
    key = (x._data.shape, shape, reverse)
    try:
        target = _RESOLVED[key]                 # resolved codes, memoised per input shape
    except (KeyError, TypeError):
        target = resolve_reshape("Reshape", x.shape, shape, reverse)
        if len(_RESOLVED) > 512:
            _RESOLVED.clear()
        try:
            _RESOLVED[key] = target
        except TypeError:                       # unhashable shape entries
            pass
    if not _recording(x):
        return _wrap(x._data.reshape(target))
    return _record_reshape(x, target)
