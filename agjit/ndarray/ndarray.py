"""NDArray: an MXNet-compatible array over a NumPy buffer, and the eager op dispatcher.

Every op call goes through :func:`invoke`: attrs are checked against the OpDef, shapes are
inferred (so bad input raises MXNetError naming the op and shapes before NumPy sees it), the
NumPy kernel runs, and, while recording, a tape node is added (see agjit.tape note
*tape-model*).
"""
import operator

import numpy as np

from symbol.base import MXNetError, dtype_name
from symbol.registry import OpDef, get_op, format_attr
from symbol.ops._common import quiet_call
from .. import tape
from ..tape import state, entry_of
from ..context import Context, cpu, check_context

__all__ = ["NDArray", "invoke", "OpCtx"]

_DEFAULT_DTYPE = np.float32

# mx.profiler's op recorder while it profiles imperative ops, else None (set by
# agjit.profiler, which also sets agjit.ndarray._profiling): the eager fast paths step aside
# to invoke, which times the kernel
_profiling = None


class OpCtx:
    """What a kernel may know about the call: training mode and the RNG.  A gradient rule
    also learns ``forward_train``: the mode its forward ran in (``is_train`` is then the
    backward's ``train_mode``)."""
    __slots__ = ("is_train", "forward_train")

    def __init__(self, is_train, forward_train=None):
        self.is_train = is_train
        self.forward_train = is_train if forward_train is None else forward_train

    @property
    def rng(self):
        from .. import random as _random
        return _random.generator()


_TRAIN = OpCtx(True)
_PREDICT = OpCtx(False)
# gradient contexts by (backward train_mode, forward mode)
GRAD_CTX = {(True, True): _TRAIN, (False, False): _PREDICT,
            (True, False): OpCtx(True, False), (False, True): OpCtx(False, True)}


def _fmt_shapes(arrays):
    return ", ".join("(%s)" % ",".join(str(d) for d in a.shape) for a in arrays)


# what a NumPy kernel raises when it refuses its inputs (invoke turns it into an MXNetError
# naming the op and shapes; the fast paths fall back to invoke on it)
KERNEL_REFUSALS = (ValueError, TypeError, IndexError, FloatingPointError, ZeroDivisionError)


# OpDef -> eager forward calling compiled kernels (agjit.eager_kernels note *eager-kernels*);
# filled by agjit.ndarray once every op is registered
EAGER_FORWARD = {}

_INFER_OK = set()     # (op, given-attrs key, input shapes) whose shape inference passed


def invoke(op, inputs, given, out=None, forward_override=None, trace_given=None):
    """Run ``op`` eagerly on NDArray ``inputs`` with the explicitly given attrs ``given``.

    Returns one NDArray, or a list for ops with several visible outputs.

    Shape inference runs before the kernel, so bad input raises MXNetError naming the op and
    the shapes.  Ops flagged ``eager_infer=False`` (unary, scalar and broadcast elementwise
    ops, whose NumPy kernels already refuse every bad shape) skip it on the fast path and run
    it only to explain a kernel failure.
    """
    if type(op) is str:
        op = get_op(op)
    try:
        arrays = list(map(_get_data, inputs))
    except AttributeError:
        for i, x in enumerate(inputs):
            if not isinstance(x, NDArray):
                raise MXNetError("%s: input %d must be an NDArray, got %s"
                                 % (op.name, i, type(x).__name__)) from None
        raise
    if op.variadic and op.variadic not in given:
        given = dict(given)
        given[op.variadic] = len(inputs)
    if given:
        # parsing attrs dominates small-op cost: memoise per op on the given items
        cache = op._attr_cache
        try:
            key = tuple(given.items())
            parsed = cache.get(key)
        except TypeError:
            key = parsed = None
        if parsed is None:
            parsed = op.parse_attrs(given, call=True)
            if key is not None:
                if len(cache) > 512:
                    cache.clear()
                cache[key] = parsed
    else:
        key = ()
        parsed = op._defaults
        if parsed is None:
            parsed = op.parse_attrs(given, call=True)
            op._defaults = parsed
    nin = op._n_inputs
    if nin is None or len(arrays) != nin:
        _check_arity(op, parsed, arrays)
    if len(arrays) > 1:
        _check_dtypes(op, parsed, arrays)
    if op.eager_infer:
        # shape inference is a pure function of (attrs, input shapes) for registry ops:
        # remember the combinations that passed (its result is not used here, only its
        # refusal); user-defined ops (Custom) run theirs every call
        shapes = [a.shape for a in arrays]
        mk = (op, key, tuple(shapes)) if key is not None and type(op) is OpDef else None
        if mk is None or mk not in _INFER_OK:
            op.infer_shape(parsed, shapes)
            if mk is not None:
                if len(_INFER_OK) > 4096:
                    _INFER_OK.clear()
                _INFER_OK.add(mk)
    prof = _profiling
    if prof is not None:
        t0 = prof.clock()
    if forward_override is not None:
        outs = forward_override(arrays)
    else:
        # the compiled kernels of agjit.eager_kernels where it has them, else the op's own
        fwd = EAGER_FORWARD.get(op) or op.forward
        try:
            # no NumPy floating-point warnings: MXNet prints none (symbol/ops/_common.py)
            if getattr(op, "fp_quiet", False):
                outs = fwd(parsed, arrays, _TRAIN if state.training else _PREDICT)
            else:
                outs = quiet_call(fwd, parsed, arrays, _TRAIN if state.training else _PREDICT)
        except MXNetError:
            raise
        except KERNEL_REFUSALS as e:
            if not op.eager_infer:
                op.infer_shape(parsed, [a.shape for a in arrays])
            raise MXNetError("%s: %s (input shapes: %s)" % (op.name, e, _fmt_shapes(arrays))) from None
    if prof is not None:
        prof.op(op.name, t0)
    if len(outs) == 1:
        res = _new(NDArray)
        res._data = outs[0]
        res._entry = None
        results = [res]
    else:
        results = list(map(_wrap, outs))
    if state.recording and tape.needs_record(inputs):
        attrs_str = {k: format_attr(v) for k, v in given.items()} if given else None
        tape.record(op, attrs_str, parsed, inputs, results)
    if state.tracer is not None:
        state.tracer.on_op(op, trace_given if trace_given is not None else given, inputs, results)
    nvis = op._nvis if op._nvis is not None else op.num_visible(parsed)
    if out is not None:
        _write_out(op, out, results[0])
        return out
    if nvis == 1:
        return results[0]
    return results[:nvis]


_NO_ATTRS = {}
_FAST = {}


def fast_call(op, inputs, parsed):
    """Eager fast path for ops flagged ``eager_infer=False`` (unary, scalar and broadcast
    elementwise ops) when nothing is traced or profiled: run the op's own NumPy kernel on
    complete ``parsed`` attrs (every attr given: they are also the tape's attrs) and wrap
    the result; while recording, the tape node is made as :func:`invoke` would.  Returns
    None when the op is not eligible or the kernel refused the inputs -- the caller then
    takes :func:`invoke`, which raises the proper MXNetError.  Same kernel, same numbers:
    only the dispatch is skipped."""
    o = _FAST.get(op)
    if o is None:
        o = get_op(op) if type(op) is str else op
        o = _FAST[op] = o if (o.eager_fast and not o.variadic and o._nvis == 1
                              and o._num_outputs == 1) else False
    if o is False:
        return None
    arrays = [x._data for x in inputs]
    if len(arrays) == 2 and arrays[0].dtype != arrays[1].dtype:
        return None                     # invoke checks the dtypes
    try:
        if getattr(o, "fp_quiet", False):
            out = o.forward(parsed, arrays, _TRAIN if state.training else _PREDICT)
        else:
            out = quiet_call(o.forward, parsed, arrays, _TRAIN if state.training else _PREDICT)
    except KERNEL_REFUSALS:
        return None
    res = _new(NDArray)
    res._data = out[0]
    res._entry = None
    if state.recording and tape.needs_record(inputs):
        tape.record(o, {k: format_attr(v) for k, v in parsed.items()} if parsed else None,
                    parsed, inputs, [res])
    return res


def _check_dtypes(op, parsed, arrays):
    """Inputs of different dtypes: the op's type inference decides (MXNet refuses a mix for
    every op with same-dtype inputs; see symbol.registry.check_uniform).  Arrays of one dtype
    skip it -- a comparison per input."""
    d0 = arrays[0].dtype
    for a in arrays:
        if a.dtype != d0:
            break
    else:
        if not op.type_check_uniform:
            return
    op.infer_type(parsed, [x.dtype.name for x in arrays])


def _check_arity(op, parsed, arrays):
    names = op.input_names(parsed)
    n = len(arrays)
    if n == len(names):
        return
    if n == len(names) - 1 and parsed.get("no_bias"):
        return
    opt = [x for x in names if x in op.optional_inputs]
    if len(names) - len(opt) <= n <= len(names):
        return
    raise MXNetError("%s: expected %d inputs (%s), got %d"
                     % (op.name, len(names), ", ".join(names), n))


def _write_out(op, out, res):
    if not isinstance(out, NDArray):
        raise MXNetError("%s: out= must be an NDArray, got %s" % (op.name, type(out).__name__))
    if state.recording and entry_of(out) is not None:
        raise MXNetError("%s: cannot write in place (out=) into an array that is part of a "
                         "recorded computation graph inside autograd.record()" % op.name)
    if out.shape != res.shape:
        raise MXNetError("%s: out= has shape %s but the result has shape %s"
                         % (op.name, out.shape, res.shape))
    out._data[...] = res._data


def _wrap(a):
    arr = _new(NDArray)
    arr._data = a
    arr._entry = None
    return arr


_new = object.__new__
_get_data = operator.attrgetter("_data")
_backward = None        # agjit.autograd.backward, once NDArray.backward first runs


def _scalar_ok(v):
    return isinstance(v, (int, float, np.integer, np.floating, bool, np.bool_))


class NDArray:
    """An n-dimensional array on the CPU with MXNet 1.x semantics (see DESIGN.md §3)."""

    __slots__ = ("_data", "_entry", "__weakref__")
    __array_priority__ = 1000.0

    def __init__(self, data, ctx=None, dtype=None):
        check_context(ctx, "NDArray")
        a = np.asarray(data, dtype=dtype)
        self._data = a
        self._entry = None

    # -- basic attributes ------------------------------------------------------------------
    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype.type

    @property
    def size(self):
        return self._data.size

    @property
    def ndim(self):
        return self._data.ndim

    @property
    def context(self):
        return cpu(0)

    ctx = context

    @property
    def stype(self):
        return "default"

    def tostype(self, stype):
        """A copy with storage type ``stype``: 'default', or 'csr' (agjit keeps csr arrays
        densely; see agjit.ndarray.sparse)."""
        if stype == "default":
            return _wrap(self._data.copy())
        if stype == "csr":
            from .sparse import CSRNDArray
            return CSRNDArray(self._data.copy())
        raise MXNetError("tostype: unsupported storage type %r" % (stype,))

    @property
    def T(self):
        return invoke("transpose", [self], {})

    @property
    def grad(self):
        e = entry_of(self)
        if e is None or not e[0].is_var or e[0].grad is None:
            return None
        return _wrap(e[0].grad._data)

    @property
    def handle(self):
        return id(self)

    # -- conversion ---------------------------------------------------------------------------
    def asnumpy(self):
        _warn_trace(self, "asnumpy")
        return np.array(self._data, copy=True)

    def asscalar(self):
        _warn_trace(self, "asscalar")
        if self._data.size != 1:
            raise ValueError("The current array is not a scalar")
        return self._data.reshape(-1)[0]

    def __array__(self, dtype=None, copy=None):
        if dtype is not None:
            return self._data.astype(dtype)
        return self._data

    def astype(self, dtype, copy=True):
        try:
            dt = np.dtype(dtype_name(dtype))
        except MXNetError as e:
            raise MXNetError("astype: %s" % e) from None
        if not copy and dt == self._data.dtype:
            return self
        return invoke("_copyto", [self], {}, forward_override=lambda arrs: [arrs[0].astype(dt)])

    def copy(self):
        return invoke("_copyto", [self], {})

    def copyto(self, other):
        if isinstance(other, NDArray):
            if other is self:
                return other
            other[:] = self
            return other
        if isinstance(other, Context):
            check_context(other, "copyto")
            return self.copy()
        raise TypeError("copyto does not support type " + str(type(other)))

    def as_in_context(self, context):
        check_context(context, "as_in_context")
        return self

    as_in_ctx = as_in_context

    def wait_to_read(self):
        return None

    def wait_to_write(self):
        return None

    def tolist(self):
        return self._data.tolist()

    # -- autograd ------------------------------------------------------------------------------
    def attach_grad(self, grad_req="write", stype=None):
        """Attach a zero gradient buffer and make this array a variable ``var<k>``."""
        from ..autograd import mark_variables
        mark_variables([self], [_wrap(np.zeros_like(self._data))], grad_reqs=grad_req)

    def detach(self):
        if state.tracer is not None:
            # inside a traced function the result must stay a graph value (a plain wrap
            # would be captured as a constant): BlockGrad is the graph form of detach
            return invoke("BlockGrad", [self], {})
        return _wrap(self._data)

    def backward(self, out_grad=None, retain_graph=False, train_mode=True):
        global _backward
        if _backward is None:       # (imported once: autograd imports this module)
            from ..autograd import backward as _backward
        _backward([self], None if out_grad is None else [out_grad], retain_graph, train_mode)

    # -- shape methods ---------------------------------------------------------------------------
    def reshape(self, *shape, **kwargs):
        return _indexing.reshape_method(self, shape, kwargs)

    def reshape_like(self, other):
        return self.reshape(other.shape)

    def flatten(self, inplace=False):
        return invoke("Flatten", [self], {})

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if not axes:
            return invoke("transpose", [self], {})
        return invoke("transpose", [self], {"axes": tuple(axes)})

    def expand_dims(self, axis):
        return invoke("expand_dims", [self], {"axis": axis})

    def squeeze(self, axis=None):
        return invoke("squeeze", [self], {} if axis is None else {"axis": axis})

    def swapaxes(self, dim1, dim2):
        return invoke("SwapAxis", [self], {"dim1": dim1, "dim2": dim2})

    def broadcast_to(self, shape):
        return invoke("broadcast_to", [self], {"shape": tuple(shape)})

    def broadcast_like(self, other):
        return invoke("broadcast_like", [self, other], {})

    def tile(self, reps):
        return invoke("tile", [self], {"reps": reps})

    def repeat(self, repeats, axis=None):
        return invoke("repeat", [self], {"repeats": repeats} if axis is None else
                      {"repeats": repeats, "axis": axis})

    def flip(self, axis):
        return invoke("reverse", [self], {"axis": axis})

    def split(self, num_outputs, axis=1, squeeze_axis=False):
        kw = {"num_outputs": num_outputs, "axis": axis}
        if squeeze_axis:
            kw["squeeze_axis"] = squeeze_axis
        return invoke("SliceChannel", [self], kw)

    def slice_axis(self, axis, begin, end):
        return invoke("slice_axis", [self], {"axis": axis, "begin": begin, "end": end})

    def clip(self, a_min, a_max):
        return invoke("clip", [self], {"a_min": a_min, "a_max": a_max})

    def one_hot(self, depth, **kw):
        return invoke("one_hot", [self], dict(kw, depth=depth))

    def pick(self, index, axis=-1, keepdims=False):
        kw = {"axis": axis}
        if keepdims:
            kw["keepdims"] = keepdims
        return invoke("pick", [self, index], kw)

    def take(self, indices, axis=0):
        return invoke("take", [self, indices], {} if axis == 0 else {"axis": axis})

    def _fluent(self, name, args, kwargs):
        """``x.<name>(*args, **kwargs)``: the op on ``x`` with positional args in the op's
        attribute order, recording only the attributes given (as MXNet's fluent methods)."""
        op = get_op(name)
        given = dict(zip(list(op.attrs), args))
        given.update(kwargs)
        return invoke(op, [self], given)

    def sort(self, *args, **kwargs):
        return self._fluent("sort", args, kwargs)

    def argsort(self, *args, **kwargs):
        return self._fluent("argsort", args, kwargs)

    def topk(self, *args, **kwargs):
        return self._fluent("topk", args, kwargs)

    def diag(self, *args, **kwargs):
        return self._fluent("diag", args, kwargs)

    # -- reductions and math methods ---------------------------------------------------------------
    def _reduce(self, name, axis, keepdims, exclude=False):
        kw = {}
        if axis is not None:
            kw["axis"] = axis
        if keepdims:
            kw["keepdims"] = keepdims
        if exclude:
            kw["exclude"] = exclude
        return invoke(name, [self], kw)

    def sum(self, axis=None, keepdims=False, exclude=False):
        return self._reduce("sum", axis, keepdims, exclude)

    def mean(self, axis=None, keepdims=False, exclude=False):
        return self._reduce("mean", axis, keepdims, exclude)

    def max(self, axis=None, keepdims=False, exclude=False):
        return self._reduce("max", axis, keepdims, exclude)

    def min(self, axis=None, keepdims=False, exclude=False):
        return self._reduce("min", axis, keepdims, exclude)

    def prod(self, axis=None, keepdims=False, exclude=False):
        return self._reduce("prod", axis, keepdims, exclude)

    def norm(self, *args, **kwargs):
        from . import norm
        return norm(self, *args, **kwargs)

    def argmax(self, axis=None, keepdims=False):
        return self._reduce("argmax", axis, keepdims)

    def argmin(self, axis=None, keepdims=False):
        return self._reduce("argmin", axis, keepdims)

    def softmax(self, axis=-1):
        return invoke("softmax", [self], {} if axis == -1 else {"axis": axis})

    def log_softmax(self, axis=-1):
        return invoke("log_softmax", [self], {} if axis == -1 else {"axis": axis})

    def relu(self):
        return invoke("relu", [self], {})

    def sigmoid(self):
        return invoke("sigmoid", [self], {})

    def tanh(self):
        return invoke("tanh", [self], {})

    def exp(self):
        return invoke("exp", [self], {})

    def log(self):
        return invoke("log", [self], {})

    def sqrt(self):
        return invoke("sqrt", [self], {})

    def square(self):
        return invoke("square", [self], {})

    def abs(self):
        return invoke("abs", [self], {})

    def sign(self):
        return invoke("sign", [self], {})

    def zeros_like(self):
        return invoke("zeros_like", [self], {})

    def ones_like(self):
        return invoke("ones_like", [self], {})

    # -- operators --------------------------------------------------------------------------------
    def _binary(self, other, bop, sop, rev=False):
        if state.tracer is None and _profiling is None:
            # eager fast path (see fast_call): the op's own kernel without dispatch
            t = type(other)
            if t is NDArray:
                r = fast_call(bop, (other, self) if rev else (self, other), _NO_ATTRS)
                if r is not None:
                    return r
            elif t is float or t is int:
                r = fast_call(sop, (self,), {"scalar": float(other)})
                if r is not None:
                    return r
        if isinstance(other, NDArray):
            return invoke(bop, [other, self] if rev else [self, other], {})
        if _scalar_ok(other):
            return invoke(sop, [self], {"scalar": float(other)})
        if isinstance(other, np.ndarray):
            o = _wrap(np.asarray(other, dtype=self._data.dtype))
            return invoke(bop, [o, self] if rev else [self, o], {})
        return NotImplemented

    def __add__(self, o):
        return self._binary(o, "broadcast_add", "_plus_scalar")

    __radd__ = __add__

    def __sub__(self, o):
        return self._binary(o, "broadcast_sub", "_minus_scalar")

    def __rsub__(self, o):
        return self._binary(o, "broadcast_sub", "_rminus_scalar", rev=True)

    def __mul__(self, o):
        return self._binary(o, "broadcast_mul", "_mul_scalar")

    __rmul__ = __mul__

    def __truediv__(self, o):
        return self._binary(o, "broadcast_div", "_div_scalar")

    def __rtruediv__(self, o):
        return self._binary(o, "broadcast_div", "_rdiv_scalar", rev=True)

    __div__ = __truediv__
    __rdiv__ = __rtruediv__

    def __mod__(self, o):
        return self._binary(o, "broadcast_mod", "_mod_scalar")

    def __rmod__(self, o):
        return self._binary(o, "broadcast_mod", "_rmod_scalar", rev=True)

    def __pow__(self, o):
        return self._binary(o, "broadcast_power", "_power_scalar")

    def __rpow__(self, o):
        return self._binary(o, "broadcast_power", "_rpower_scalar", rev=True)

    def __neg__(self):
        return invoke("_mul_scalar", [self], {"scalar": -1.0})

    def __pos__(self):
        return self

    def __abs__(self):
        return invoke("abs", [self], {})

    def __eq__(self, o):
        if o is None:
            return False
        return self._binary(o, "broadcast_equal", "_equal_scalar")

    def __ne__(self, o):
        if o is None:
            return True
        return self._binary(o, "broadcast_not_equal", "_not_equal_scalar")

    def __gt__(self, o):
        return self._binary(o, "broadcast_greater", "_greater_scalar")

    def __ge__(self, o):
        return self._binary(o, "broadcast_greater_equal", "_greater_equal_scalar")

    def __lt__(self, o):
        return self._binary(o, "broadcast_lesser", "_lesser_scalar")

    def __le__(self, o):
        return self._binary(o, "broadcast_lesser_equal", "_lesser_equal_scalar")

    __hash__ = object.__hash__

    # in-place operators: never recorded; refused on recorded arrays inside record()
    def _inplace(self, o, bop, sop, what):
        if state.recording and entry_of(self) is not None:
            raise MXNetError("in-place %s on an array that is part of a recorded computation "
                             "graph is not allowed inside autograd.record(); write "
                             "'y = y %s ...' instead" % (what, what[0]))
        res = self._binary(o, bop, sop)
        if res is NotImplemented:
            return NotImplemented
        if res.shape != self.shape:
            raise MXNetError("in-place %s: result shape %s does not match the array's shape %s"
                             % (what, res.shape, self.shape))
        self._data[...] = res._data
        return self

    def __iadd__(self, o):
        return self._inplace(o, "broadcast_add", "_plus_scalar", "+=")

    def __isub__(self, o):
        return self._inplace(o, "broadcast_sub", "_minus_scalar", "-=")

    def __imul__(self, o):
        return self._inplace(o, "broadcast_mul", "_mul_scalar", "*=")

    def __itruediv__(self, o):
        return self._inplace(o, "broadcast_div", "_div_scalar", "/=")

    def __imod__(self, o):
        return self._inplace(o, "broadcast_mod", "_mod_scalar", "%=")

    def __ipow__(self, o):
        return self._inplace(o, "broadcast_power", "_power_scalar", "**=")

    # -- python protocol ------------------------------------------------------------------------
    def __len__(self):
        if self._data.ndim == 0:
            raise TypeError("len() of unsized object")
        return self._data.shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __bool__(self):
        _warn_trace(self, "bool()")
        if self._data.size == 1:
            return bool(self._data.reshape(-1)[0])
        if self._data.size == 0:
            return False
        raise ValueError("The truth value of an NDArray with multiple elements is ambiguous.")

    def __float__(self):
        _warn_trace(self, "float()")
        if self._data.size != 1:
            raise TypeError("only one-element NDArrays can be converted to Python scalars")
        return float(self._data.reshape(-1)[0])

    def __int__(self):
        _warn_trace(self, "int()")
        if self._data.size != 1:
            raise TypeError("only one-element NDArrays can be converted to Python scalars")
        return int(self._data.reshape(-1)[0])

    def __index__(self):
        return self.__int__()

    def __repr__(self):
        shape = "x".join(str(d) for d in self._data.shape)
        body = str(self._data)
        return "\n%s\n<NDArray %s @%s>" % (body, shape, self.context)

    __str__ = __repr__

    def __getstate__(self):
        return {"data": self._data}

    def __setstate__(self, st):
        self._data = st["data"]
        self._entry = None

    def __getitem__(self, key):
        return _indexing.getitem(self, key)

    def __setitem__(self, key, value):
        _indexing.setitem(self, key, value)


def _warn_trace(arr, what):
    """While a jitted function is traced, converting a traced array to a Python value freezes
    that value into the graph: the tracer warns."""
    tr = state.tracer
    if tr is not None:
        tr.frozen(arr, what)


from . import indexing as _indexing  # noqa: E402  (indexing imports this module's names)
