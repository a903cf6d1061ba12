"""``mx.operator``: operators written in Python -- MXNet 1.x's ``CustomOp`` /
``CustomOpProp`` / ``register`` -- run as ``mx.nd.Custom`` / ``mx.sym.Custom`` (see
symbol.ops.custom note *custom-ops* for how they run).

>>> import agjit as mx
>>> class Double(mx.operator.CustomOp):
...     def forward(self, is_train, req, in_data, out_data, aux):
...         self.assign(out_data[0], req[0], in_data[0] * 2)
...     def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
...         self.assign(in_grad[0], req[0], out_grad[0] * 2)
>>> @mx.operator.register("double")
... class DoubleProp(mx.operator.CustomOpProp):
...     pass
>>> mx.nd.Custom(mx.nd.array([1.0, 2.0]), op_type="double").asnumpy().tolist()
[2.0, 4.0]
"""
import numpy as np

from symbol.ops import custom as _custom
from symbol.registry import get_op
from . import tape
from .ndarray.ndarray import NDArray, _wrap, invoke

__all__ = ["CustomOp", "CustomOpProp", "register", "get_all_registered_operators"]


class CustomOp(object):
    """Base class of a Python operator: implement ``forward`` and ``backward``."""

    def __init__(self):
        pass

    def forward(self, is_train, req, in_data, out_data, aux):
        """Compute ``out_data`` from ``in_data`` (use :meth:`assign`)."""
        raise NotImplementedError()

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        """Compute ``in_grad`` (use :meth:`assign`)."""
        raise NotImplementedError()

    def assign(self, dst, req, src):
        """Write ``src`` into ``dst`` as ``req`` says ('write'/'inplace', 'add', 'null')."""
        if req == 'null':
            return
        if req in ('write', 'inplace'):
            dst[:] = src
        elif req == 'add':
            dst[:] = dst + src
        else:
            raise ValueError("CustomOp.assign: unknown req %r" % (req,))


class CustomOpProp(object):
    """Describes a Python operator: arguments, outputs, shapes, dtypes, and how to create it.

    ``need_top_grad=False`` declares a loss: its backward does not use the head gradient.
    Every keyword given to ``Custom(..., op_type=..., k=v)`` reaches ``__init__`` as a str.
    """

    def __init__(self, need_top_grad=True):
        self.need_top_grad_ = need_top_grad

    def infer_shape(self, in_shape):
        """``(arg_shapes, out_shapes, aux_shapes)``; default: outputs shaped like input 0."""
        return in_shape, (in_shape[0],) * len(self.list_outputs()), ()

    def infer_type(self, in_type):
        """``(arg_types, out_types, aux_types)``; default: every dtype that of input 0."""
        return in_type, [in_type[0]] * len(self.list_outputs()), \
            [in_type[0]] * len(self.list_auxiliary_states())

    infer_type._agjit_default = True

    def infer_storage_type(self, in_stype):
        return in_stype, ['default'] * len(self.list_outputs()), \
            ['default'] * len(self.list_auxiliary_states())

    def list_outputs(self):
        return ['output']

    def list_arguments(self):
        return ['data']

    def list_auxiliary_states(self):
        return []

    def declare_backward_dependency(self, out_grad, in_data, out_data):
        deps = []
        if self.need_top_grad_:
            deps.extend(out_grad)
        deps.extend(in_data)
        deps.extend(out_data)
        return deps

    def create_operator(self, ctx, in_shapes, in_dtypes):
        """The CustomOp instance (called once per distinct kwargs and input shapes)."""
        return CustomOp()


def register(reg_name):
    """Class decorator registering a CustomOpProp subclass as op_type ``reg_name``."""
    def do_register(prop_cls):
        if not (isinstance(prop_cls, type) and issubclass(prop_cls, CustomOpProp)):
            raise TypeError("mx.operator.register: %r is not a CustomOpProp subclass" % (prop_cls,))
        _custom.register_prop(reg_name, prop_cls)
        return prop_cls
    return do_register


def get_all_registered_operators():
    """The registered op_type names."""
    return sorted(_custom._PROPS)


def _isolate(fn):
    """Run user code with recording and tracing off (MXNet runs custom ops outside autograd)."""
    st = tape.state
    saved = (st.recording, st.tracer)
    st.recording, st.tracer = False, None
    try:
        return fn()
    finally:
        st.recording, st.tracer = saved


def _zeros(shape, dtype):
    return _wrap(np.zeros(shape, dtype=dtype))


_custom.set_adapter(wrap=_wrap, unwrap=lambda a: np.asarray(a._data if isinstance(a, NDArray) else a),
                    isolate=_isolate, zeros=_zeros)


def Custom(*data, **kwargs):
    """``mx.nd.Custom(*inputs, op_type=NAME, **kwargs)``: run a registered Python operator."""
    kwargs.pop("name", None)
    kwargs.pop("ctx", None)
    out = kwargs.pop("out", None)
    if "op_type" not in kwargs:
        from symbol.base import MXNetError
        raise MXNetError("Custom: required argument 'op_type' is missing")
    named = {k: kwargs.pop(k) for k in list(kwargs) if isinstance(kwargs[k], NDArray)}
    op = get_op("Custom")
    attrs = op.parse_attrs(kwargs)
    names = op.input_names(attrs)
    inputs = list(data) + [named[n] for n in names[len(data):] if n in named]
    res = invoke(op, inputs, kwargs, out=out)
    return res
