"""``mx.nd``: array creation, and every registered operator as a function with MXNet's names.

Operator functions are generated from the registry: positional arguments fill the op's inputs
then its attributes in declaration order (as MXNet's generated signatures do), keyword
arguments naming an input pass an array, ``out=`` writes in place, ``name=`` is accepted and
ignored, and only explicitly given attributes are recorded.
"""

import numpy as np

from symbol.base import MXNetError, dtype_name
from symbol.registry import OpDef, all_names, format_attr
from symbol.ops._common import quiet_call
from .ndarray import (NDArray, invoke, _wrap, _scalar_ok, _NO_ATTRS, _TRAIN, _PREDICT,
                      KERNEL_REFUSALS, EAGER_FORWARD as _EAGER_FORWARD, _INFER_OK)
from .. import eager_kernels as _eager_kernels
from .. import tape as _tape
from ..tape import state as _state

_profiling = None   # mx.profiler's op recorder while it runs (see ndarray.ndarray._profiling)
from ..context import check_context

__all__ = ["NDArray", "array", "zeros", "ones", "full", "empty", "arange", "waitall",
           "concatenate", "maximum", "minimum", "invoke"]

_DEF = np.float32


def _dt(dtype, default=_DEF):
    return np.dtype(default if dtype is None else dtype_name(dtype))


def array(source_array, ctx=None, dtype=None):
    """Create an NDArray.  The dtype is ``dtype`` if given, the source's dtype if the source
    is an NDArray, float32 otherwise (MXNet's rule: ``mx.nd.array([1, 2])`` is float32)."""
    check_context(ctx, "array")
    if isinstance(source_array, NDArray):
        dt = source_array._data.dtype if dtype is None else _dt(dtype)
        return _wrap(np.array(source_array._data, dtype=dt))
    try:
        a = np.array(source_array, dtype=_dt(dtype))
    except (TypeError, ValueError) as e:
        raise MXNetError("array: cannot convert %r to an NDArray: %s" % (type(source_array).__name__, e)) from None
    if a.dtype == object:
        raise MXNetError("array: source must be numeric")
    return _wrap(a)


def _shape(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def zeros(shape, ctx=None, dtype=None, **kwargs):
    check_context(ctx, "zeros")
    return _wrap(np.zeros(_shape(shape), dtype=_dt(dtype)))


def ones(shape, ctx=None, dtype=None, **kwargs):
    check_context(ctx, "ones")
    return _wrap(np.ones(_shape(shape), dtype=_dt(dtype)))


def full(shape, val, ctx=None, dtype=None, out=None):
    check_context(ctx, "full")
    res = _wrap(np.full(_shape(shape), val, dtype=_dt(dtype)))
    if out is not None:
        out[:] = res
        return out
    return res


def empty(shape, ctx=None, dtype=None):
    check_context(ctx, "empty")
    return _wrap(np.zeros(_shape(shape), dtype=_dt(dtype)))


def arange(start, stop=None, step=1.0, repeat=1, infer_range=False, ctx=None, dtype=None):
    check_context(ctx, "arange")
    a = np.arange(start, stop, step, dtype=np.float64).astype(_dt(dtype))
    if repeat != 1:
        a = np.repeat(a, repeat)
    return _wrap(a)


def eye(N, M=0, k=0, ctx=None, dtype=None, **kwargs):
    """An ``N x M`` (``M=0``: square) array with ones on diagonal ``k`` (MXNet's ``_eye``)."""
    check_context(ctx, "eye")
    return _wrap(np.eye(int(N), int(M) if M else None, int(k), dtype=_dt(dtype)))


def linspace(start, stop, num, endpoint=True, ctx=None, dtype=None):
    """``num`` evenly spaced values from ``start`` (MXNet's ``_linspace``: ``start + step*i``
    with the step in double precision, so the last value is ``stop`` only up to rounding)."""
    check_context(ctx, "linspace")
    num = int(num)
    if num < 0:
        raise MXNetError("linspace: num must be non-negative, got %d" % num)
    div = (num - 1) if endpoint else num
    step = (float(stop) - float(start)) / div if div > 0 else 0.0
    return _wrap((float(start) + step * np.arange(num, dtype=np.float64)).astype(_dt(dtype)))


def waitall():
    return None


def concatenate(arrays, axis=0, always_copy=True):
    return invoke("Concat", list(arrays), {"dim": axis})


def _binary_fn(bop, sop, name):
    def fn(lhs, rhs):
        if isinstance(lhs, NDArray) and isinstance(rhs, NDArray):
            return invoke(bop, [lhs, rhs], {})
        if isinstance(lhs, NDArray) and _scalar_ok(rhs):
            return invoke(sop, [lhs], {"scalar": float(rhs)})
        if isinstance(rhs, NDArray) and _scalar_ok(lhs):
            return invoke(sop, [rhs], {"scalar": float(lhs)})
        if _scalar_ok(lhs) and _scalar_ok(rhs):
            # MXNet: the Python comparison, so two ints give an int
            if name == "maximum":
                return lhs if lhs > rhs else rhs
            return lhs if lhs < rhs else rhs
        raise MXNetError("%s: arguments must be NDArrays or scalars, got %s and %s"
                         % (name, type(lhs).__name__, type(rhs).__name__))
    fn.__name__ = name
    fn.__doc__ = "Elementwise %s with broadcasting; a scalar operand uses %s." % (name, sop)
    return fn


maximum = _binary_fn("broadcast_maximum", "_maximum_scalar", "maximum")
minimum = _binary_fn("broadcast_minimum", "_minimum_scalar", "minimum")


def _ufunc(bop, sop, rsop, pyfn, name):
    """mx.nd.<name>(lhs, rhs) as MXNet 1.x's ``_ufunc_helper``: two NDArrays -> the
    broadcast op; an NDArray and a number -> the scalar op (``rsop``, the reversed one, when
    the number is on the left); two numbers -> the Python result."""
    def fn(lhs, rhs):
        if isinstance(lhs, NDArray):
            if isinstance(rhs, NDArray):
                return invoke(bop, [lhs, rhs], {})
            if _scalar_ok(rhs):
                return invoke(sop, [lhs], {"scalar": float(rhs)})
        elif _scalar_ok(lhs):
            if isinstance(rhs, NDArray):
                return invoke(rsop, [rhs], {"scalar": float(lhs)})
            if _scalar_ok(rhs):
                return pyfn(lhs, rhs)
        raise TypeError("type %s not supported" % type(rhs if isinstance(lhs, NDArray) or
                                                        _scalar_ok(lhs) else lhs))
    fn.__name__ = name
    fn.__doc__ = "Elementwise %s with broadcasting (NDArray or scalar operands)." % name
    return fn


def _pybool(f):
    return lambda x, y: 1 if f(x, y) else 0


import operator as _operator  # noqa: E402
add = _ufunc("broadcast_add", "_plus_scalar", "_plus_scalar", _operator.add, "add")
subtract = _ufunc("broadcast_sub", "_minus_scalar", "_rminus_scalar", _operator.sub, "subtract")
multiply = _ufunc("broadcast_mul", "_mul_scalar", "_mul_scalar", _operator.mul, "multiply")
divide = _ufunc("broadcast_div", "_div_scalar", "_rdiv_scalar", _operator.truediv, "divide")
true_divide = divide
modulo = _ufunc("broadcast_mod", "_mod_scalar", "_rmod_scalar", _operator.mod, "modulo")
power = _ufunc("broadcast_power", "_power_scalar", "_rpower_scalar", _operator.pow, "power")
equal = _ufunc("broadcast_equal", "_equal_scalar", "_equal_scalar", _pybool(_operator.eq), "equal")
not_equal = _ufunc("broadcast_not_equal", "_not_equal_scalar", "_not_equal_scalar",
                   _pybool(_operator.ne), "not_equal")
greater = _ufunc("broadcast_greater", "_greater_scalar", "_lesser_scalar",
                 _pybool(_operator.gt), "greater")
greater_equal = _ufunc("broadcast_greater_equal", "_greater_equal_scalar",
                       "_lesser_equal_scalar", _pybool(_operator.ge), "greater_equal")
lesser = _ufunc("broadcast_lesser", "_lesser_scalar", "_greater_scalar",
                _pybool(_operator.lt), "lesser")
lesser_equal = _ufunc("broadcast_lesser_equal", "_lesser_equal_scalar",
                      "_greater_equal_scalar", _pybool(_operator.le), "lesser_equal")
logical_and = _ufunc("broadcast_logical_and", "_logical_and_scalar", "_logical_and_scalar",
                     _pybool(lambda x, y: x and y), "logical_and")
logical_or = _ufunc("broadcast_logical_or", "_logical_or_scalar", "_logical_or_scalar",
                    _pybool(lambda x, y: x or y), "logical_or")
logical_xor = _ufunc("broadcast_logical_xor", "_logical_xor_scalar", "_logical_xor_scalar",
                     _pybool(lambda x, y: bool(x) != bool(y)), "logical_xor")


def moveaxis(tensor, source, destination):
    """``tensor`` with axes ``source`` moved to ``destination`` (a transpose)."""
    nd_ = tensor.ndim
    src = [source] if isinstance(source, (int, np.integer)) else list(source)
    dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    for name, axes in (("Source", src), ("Destination", dst)):
        for a in axes:
            if not -nd_ <= a < nd_:
                raise ValueError("%s should verify 0 <= %s < tensor.ndim (%d). Got %d"
                                 % (name, name.lower(), nd_, a))
    src = [a % nd_ for a in src]
    dst = [a % nd_ for a in dst]
    if len(src) != len(dst):
        raise ValueError("`source` and `destination` arguments must have the same number "
                         "of elements")
    order = [n for n in range(nd_) if n not in src]
    for d, s_ in sorted(zip(dst, src)):
        order.insert(d, s_)
    return invoke("transpose", [tensor], {"axes": tuple(order)})


def onehot_encode(indices, out):
    """Legacy one-hot: row ``i`` of ``out`` gets a 1 at column ``indices[i]``."""
    res = invoke("one_hot", [indices], {"depth": out.shape[1], "dtype": dtype_name(out.dtype)})
    out[:] = res
    return out


def from_numpy(ndarray, zero_copy=True, array_cls=None):
    """An NDArray holding ``ndarray``'s values (C-contiguous input required, as in MXNet)."""
    if not isinstance(ndarray, np.ndarray) or not ndarray.flags["C_CONTIGUOUS"]:
        raise ValueError("Only c-contiguous arrays are supported for zero-copy")
    return _wrap(ndarray if zero_copy else ndarray.copy())


# a non-NDArray input (AttributeError) or a refused kernel: invoke explains it
_FAST_REFUSALS = (AttributeError,) + KERNEL_REFUSALS


def _input_names(op, kwargs):
    """Input names of an op whose inputs depend on its attributes (e.g. Custom)."""
    given = {k: v for k, v in kwargs.items() if not isinstance(v, NDArray) and v is not None}
    try:
        return op.input_names(op.parse_attrs(given, strict=False))
    except MXNetError:
        return op.input_names({})


def _make_op_function(op, fname):
    """Build ``mx.nd.<fname>`` for OpDef ``op``."""
    attr_names = list(op.attrs)

    n_in = op._n_inputs
    fast = op.eager_fast and not op.variadic and op._nvis == 1
    # an op that infers shapes takes the same path once its (attrs, shapes) passed shape
    # inference in invoke (ndarray._INFER_OK); a first call goes to invoke.  One output
    # only: a kernel is never run twice for one call (an RNG draw would be repeated)
    single = op._num_outputs == 1       # a recorded call keeps every output on the tape
    memo = not fast and op.eager_infer and not op.variadic and single and op._nvis == 1 and \
        bool(n_in) and type(op) is OpDef and not op.type_check_uniform
    attr_set = frozenset(attr_names)
    cache = op._attr_cache

    forward = _EAGER_FORWARD.get(op) or op.forward
    if not getattr(op, "fp_quiet", False):
        # no NumPy floating-point warnings from the kernel: MXNet prints none
        def forward(parsed, arrays, mode, _f=forward):
            return quiet_call(_f, parsed, arrays, mode)
    new = object.__new__
    attr_strs = {}      # given attrs -> their tape strings (a recorded fast call)

    def fn(*args, **kwargs):
        st = _state
        if len(args) == n_in and (fast or memo) and st.tracer is None and _profiling is None \
                and (single or not st.recording):
            # eager fast path (see ndarray.fast_call, inlined here): the op's own kernel on
            # attrs given only by keyword and parsed once per distinct set; while recording
            # the tape node is made here as invoke would
            key = ()
            if not kwargs:
                parsed = op._defaults if op.attrs else _NO_ATTRS
            elif kwargs.keys() <= attr_set:
                try:
                    key = tuple(kwargs.items())
                    parsed = cache.get(key)
                except TypeError:               # an unhashable value: invoke parses it
                    parsed = None
            else:
                parsed = None
            if parsed is not None:
                try:
                    if n_in == 1:
                        arrays = [args[0]._data]
                    else:
                        arrays = [a._data for a in args]
                        d0 = arrays[0].dtype
                        if any(a.dtype != d0 for a in arrays):
                            raise TypeError    # mixed dtypes: invoke checks them
                    if memo and (op, key, tuple([a.shape for a in arrays])) not in _INFER_OK:
                        raise TypeError        # not inferred yet: invoke does it
                    out = forward(parsed, arrays, _TRAIN if st.training else _PREDICT)
                except _FAST_REFUSALS:
                    out = None                  # invoke below raises the proper MXNetError
                if out is not None:
                    res = new(NDArray)
                    res._data = out[0]
                    res._entry = None
                    if st.recording and _tape.needs_record(args):
                        astr = None
                        if key:
                            astr = attr_strs.get(key)
                            if astr is None:
                                if len(attr_strs) > 256:
                                    attr_strs.clear()
                                astr = attr_strs[key] = {k: format_attr(v)
                                                         for k, v in kwargs.items()}
                        _tape.record(op, astr, parsed, args, [res])
                    return res
        if not kwargs and len(args) == n_in:
            return invoke(op, args, {})
        out = kwargs.pop("out", None)
        kwargs.pop("name", None)
        kwargs.pop("ctx", None)
        inputs = []
        given = {}
        if op.variadic:
            for a in args:
                if isinstance(a, (list, tuple)) and a and all(isinstance(t, NDArray) for t in a):
                    inputs.extend(a)
                elif isinstance(a, NDArray):
                    inputs.append(a)
                else:
                    raise MXNetError("%s: positional arguments must be NDArrays, got %s"
                                     % (fname, type(a).__name__))
        else:
            # positional inputs map to the op's full input list (MXNet's signature); only an
            # op whose inputs come from its attributes alone (Custom) is asked with them
            names = op.input_names({}) or _input_names(op, kwargs)
            slots = {}
            for i, a in enumerate(args):
                if i < len(names):
                    if a is not None and not isinstance(a, NDArray):
                        raise MXNetError("%s: input %s must be an NDArray, got %s"
                                         % (fname, names[i], type(a).__name__))
                    slots[names[i]] = a
                else:
                    k = i - len(names)
                    if k >= len(attr_names):
                        raise MXNetError("%s: too many positional arguments (inputs: %s; "
                                         "attributes: %s)" % (fname, ", ".join(names),
                                                              ", ".join(attr_names)))
                    if attr_names[k] in kwargs:
                        raise MXNetError("%s: got multiple values for argument %r"
                                         % (fname, attr_names[k]))
                    given[attr_names[k]] = a
            for n in names:
                if n in kwargs:
                    v = kwargs.pop(n)
                    if v is not None and not isinstance(v, NDArray):
                        raise MXNetError("%s: input %s must be an NDArray, got %s"
                                         % (fname, n, type(v).__name__))
                    slots[n] = v
            for n in names:
                v = slots.get(n)
                if v is None:
                    if n == "bias" and (kwargs.get("no_bias") in (True, "True", "true", 1)):
                        continue
                    if n in op.optional_inputs:
                        continue
                    raise MXNetError("%s: required input %r is missing" % (fname, n))
                inputs.append(v)
        given.update(kwargs)
        return invoke(op, inputs, given, out=out)

    fn.__name__ = fname
    fn.__qualname__ = fname
    fn.__doc__ = op.doc or ("MXNet operator %s (inputs: %s; attributes: %s)."
                            % (op.name, ", ".join(op.inputs) if not callable(op.inputs) else "...",
                               ", ".join(attr_names) or "none"))
    return fn


_SKIP = {"maximum", "minimum", "array", "zeros", "ones", "full", "empty", "arange"}


def _populate(namespace):
    for fname, op in all_names().items():
        if fname in _SKIP or fname in namespace and not callable(namespace.get(fname)):
            continue
        namespace[fname] = _make_op_function(op, fname)


_EAGER_FORWARD.update(_eager_kernels.table())
_populate(globals())

from . import random  # noqa: E402,F401
from . import sparse  # noqa: E402,F401
from . import linalg  # noqa: E402,F401
from . import contrib  # noqa: E402,F401  (mx.nd.contrib)
from .sparse import CSRNDArray  # noqa: E402,F401
from .utils import save, load, load_frombuffer  # noqa: E402,F401


def Custom(*data, **kwargs):  # noqa: N802  (MXNet's name)
    """``mx.nd.Custom``: run an operator registered with ``mx.operator.register``."""
    from ..operator import Custom as _custom_call
    return _custom_call(*data, **kwargs)


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    from symbol._missing import missing
    raise missing("mx.nd", name, [k for k in globals() if not k.startswith("_")])


def _add_fluent_methods():
    """The fluent methods MXNet's NDArray has (``x.sin()`` is ``nd.sin(x)``: the op
    function with ``self`` as the first input) for every name in symbol.symbol's
    MXNET_FLUENT whose operator is registered and that NDArray does not define itself;
    FLUENT_MISSING lists the rest (test_fluent_api checks both)."""
    from symbol.symbol import MXNET_FLUENT, _FLUENT_OP
    from symbol.registry import has_op
    missing = []
    for name in MXNET_FLUENT:
        if hasattr(NDArray, name):
            continue
        opname = _FLUENT_OP.get(name, name)
        if not has_op(opname):
            missing.append(name)
            continue

        def method(self, *args, _op=opname, **kwargs):
            return globals()[_op](self, *args, **kwargs)
        method.__name__ = name
        method.__qualname__ = "NDArray." + name
        method.__doc__ = "Same as ``nd.%s(self, *args, **kwargs)``." % name
        setattr(NDArray, name, method)
    return missing


FLUENT_MISSING = _add_fluent_methods()


def split_v2(ary, indices_or_sections, axis=0, squeeze_axis=False):
    """Split ``ary`` into ``indices_or_sections`` equal parts (an int) or at the given cut
    points (a tuple), MXNet's ``split_v2`` (op ``_split_v2``)."""
    from symbol.ops.fluent_extra import split_v2_attrs
    return globals()["_split_v2"](ary, **split_v2_attrs(indices_or_sections, axis, squeeze_axis))


NDArray.split_v2 = lambda self, *args, **kwargs: split_v2(self, *args, **kwargs)
NDArray.split_v2.__doc__ = "Same as ``nd.split_v2(self, *args, **kwargs)``."
FLUENT_MISSING = [n for n in FLUENT_MISSING if n != "split_v2"]


def histogram(a, bins=10, range=None):      # noqa: A002  (MXNet's argument name)
    """Histogram of the flattened ``a`` (MXNet's ``mx.nd.histogram``, op ``_histogram``):
    ``bins`` an int (equal bins over ``range``, default the data's min/max) or an NDArray of
    bin edges.  Returns ``(counts as int64, edges)``."""
    if isinstance(bins, NDArray):
        return globals()["_histogram"](a, bins)
    if isinstance(bins, (int, np.integer)):
        kw = {} if range is None else {"range": tuple(range)}
        return globals()["_histogram"](a, bin_cnt=int(bins), **kw)
    raise MXNetError("histogram: bins must be an int or an NDArray of edges, got %s"
                     % type(bins).__name__)
