"""Gluon parameters: :class:`Parameter`, :class:`Constant` and :class:`ParameterDict`.

Note: gluon-parameter
    A Parameter owns one NDArray (agjit has one device) and, unless ``grad_req='null'``, a
    gradient buffer of the same shape and dtype attached with ``autograd.mark_variables``,
    so every backward that reaches the array writes (``'write'``) or adds (``'add'``) into
    ``grad()``.  ``data()`` is the live buffer.  Unknown dims are 0; a Parameter created
    with ``allow_deferred_init=True`` and such a shape is initialised on the first forward
    of its block, after the block inferred the shape (``HybridBlock.infer_shape``); until then
    ``data()`` raises :class:`DeferredInitializationError`.  The initializer given to
    ``Block.initialize`` / ``ParameterDict.initialize`` is a default that a Parameter's own
    ``init`` overrides; ``Parameter.initialize(init)`` overrides ``Parameter.init``; the
    chosen initializer is always applied as a weight initializer (MXNet 1.9.1 semantics).
"""
import re
import warnings
from collections import OrderedDict

import numpy as np

from symbol.base import MXNetError
from .. import autograd
from .. import initializer
from .. import ndarray as nd
from ..context import Context, cpu, current_context
from ..ndarray.ndarray import NDArray, _wrap

__all__ = ["DeferredInitializationError", "Parameter", "Constant", "ParameterDict",
           "tensor_types"]

tensor_types = (NDArray,)


class DeferredInitializationError(MXNetError):
    """Error for unfinished deferred initialization."""


def _brief_print_list(lst, limit=7):
    lst = list(lst)
    if len(lst) > limit:
        return _brief_print_list(lst[:limit // 2], limit) + ", ..., " + \
            _brief_print_list(lst[-limit // 2:], limit)
    return ", ".join(["'%s'" % str(i) for i in lst])


def _shape_known(shape):
    return shape is not None and len(shape) > 0 and all(int(d) > 0 for d in shape)


def _norm_dtype(dtype):
    if dtype is None:
        return None
    if isinstance(dtype, str):
        return np.dtype(dtype).type
    return np.dtype(dtype).type


def _indent(s_, num_spaces):
    s = s_.split('\n')
    if len(s) == 1:
        return s_
    first = s.pop(0)
    return '\n'.join([first] + [(num_spaces * ' ') + line for line in s])


class Parameter(object):
    """A Block's parameter: data, gradient and how they are initialised and trained.

    Parameters
    ----------
    name : str
    grad_req : {'write', 'add', 'null'}
    shape : int or tuple of int, optional
        0 marks a dim that is inferred on the first forward (needs ``allow_deferred_init``).
    dtype : numpy dtype or str, default float32
    lr_mult, wd_mult : float
        Multipliers of the learning rate / weight decay the Trainer applies.
    init : Initializer or str, optional
        This parameter's own initializer (wins over the default given to ``initialize``).
    allow_deferred_init : bool
    differentiable : bool
        False forces ``grad_req='null'``.

    >>> p = mx.gluon.Parameter('w', shape=(2, 3), init=mx.init.One())
    >>> p.initialize(); p.data().asnumpy().tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
    """

    def __init__(self, name, grad_req='write', shape=None, dtype=np.float32, lr_mult=1.0,
                 wd_mult=1.0, init=None, allow_deferred_init=False, differentiable=True,
                 stype='default', grad_stype='default'):
        self._var = None
        self._data = None
        self._grad = None
        self._ctx_list = None
        self._deferred_init = ()
        self._differentiable = differentiable
        self._allow_deferred_init = allow_deferred_init
        self._grad_req = None
        self._trainer = None
        if isinstance(shape, int):
            shape = (shape,)
        self._shape = tuple(shape) if shape is not None else None
        self.name = name
        self._dtype = _norm_dtype(dtype)
        self.lr_mult = lr_mult
        self.wd_mult = wd_mult
        self.grad_req = grad_req
        self.init = init
        for st, what in ((stype, 'stype'), (grad_stype, 'grad_stype')):
            if st not in ('default', 'row_sparse', 'csr'):
                raise ValueError("%s for Parameter '%s' must be one of 'default', 'row_sparse', "
                                 "or 'csr', but got '%s'" % (what, name, st))
        self._stype = stype
        self._grad_stype = grad_stype

    def __repr__(self):
        return 'Parameter {name} (shape={shape}, dtype={dtype})'.format(
            name=self.name, shape=self.shape, dtype=self.dtype)

    # -- attributes -------------------------------------------------------------------------
    @property
    def grad_req(self):
        return self._grad_req

    @grad_req.setter
    def grad_req(self, req):
        assert req in ['write', 'add', 'null'], \
            "grad_req must be one of 'write', 'add', or 'null', but got '%s'" % req
        if not self._differentiable:
            req = 'null'
        if self._grad_req == req:
            return
        self._grad_req = req
        if req == 'null' and self._grad is not None:
            self._grad = None
            # a fresh array over the same buffer, without autograd info
            self._data = [_wrap(a._data) for a in self._data]
        elif self._data is not None:
            self._init_grad()

    @property
    def dtype(self):
        return self._dtype

    @dtype.setter
    def dtype(self, dtype):
        self._dtype = _norm_dtype(dtype)

    @property
    def shape(self):
        return self._shape

    @shape.setter
    def shape(self, new_shape):
        if new_shape is not None:
            new_shape = tuple(int(d) for d in new_shape)
        if self._shape is None:
            self._shape = new_shape
            return
        assert len(self._shape) == len(new_shape) and \
            all(j in (-1, 0, i) for i, j in zip(new_shape, self._shape)), \
            "Expected shape %s is incompatible with given shape %s." % (
                str(new_shape), str(self._shape))
        self._shape = new_shape

    @property
    def stype(self):
        return self._stype

    # -- access -----------------------------------------------------------------------------
    def _check_and_get(self, arr_list, ctx):
        if arr_list is not None:
            if ctx is list:
                return arr_list
            return arr_list[0]
        if self._deferred_init:
            raise DeferredInitializationError(
                "Parameter '%s' has not been initialized yet because initialization was "
                "deferred. Actual initialization happens during the first forward pass. "
                "Please pass one batch of data through the network before accessing "
                "Parameters. You can also avoid deferred initialization by specifying "
                "in_units, num_features, etc., for network layers." % self.name)
        raise RuntimeError(
            "Parameter '%s' has not been initialized. Note that you should initialize "
            "parameters and create Trainer with Block.collect_params() instead of "
            "Block.params because the later does not include Parameters of nested child "
            "Blocks" % self.name)

    def data(self, ctx=None):
        """The parameter's array (the live buffer: writing into it changes the parameter)."""
        return self._check_and_get(self._data, ctx)

    def list_data(self):
        return self._check_and_get(self._data, list)

    def grad(self, ctx=None):
        """The gradient buffer (RuntimeError with ``grad_req='null'``)."""
        if self._data is not None and self._grad is None:
            raise RuntimeError(
                "Cannot get gradient array for Parameter '%s' because grad_req='null'"
                % self.name)
        return self._check_and_get(self._grad, ctx)

    def list_grad(self):
        if self._data is not None and self._grad is None:
            raise RuntimeError(
                "Cannot get gradient array for Parameter '%s' because grad_req='null'"
                % self.name)
        return self._check_and_get(self._grad, list)

    def list_ctx(self):
        if self._data is None:
            if self._deferred_init:
                return self._deferred_init[1]
            raise RuntimeError("Parameter '%s' has not been initialized" % self.name)
        return self._ctx_list

    def _fresh_grad(self):
        """True when a backward wrote this parameter's gradient since the last Trainer
        update (the Trainer's stale-gradient check)."""
        if self._data is None:
            return False
        e = self._data[0]._entry
        return e is not None and getattr(e[0], "fresh", False)

    def _clear_fresh(self):
        if self._data is not None:
            e = self._data[0]._entry
            if e is not None:
                e[0].fresh = False

    # -- initialisation ---------------------------------------------------------------------
    def initialize(self, init=None, ctx=None, default_init=initializer.Uniform(),
                   force_reinit=False):
        """Allocate and initialise the data (and the gradient unless grad_req='null').

        Deferred (until the first forward) when the shape still has unknown dims and
        ``allow_deferred_init`` is set; ValueError for an unknown shape otherwise.
        """
        if self._data is not None and not force_reinit:
            warnings.warn("Parameter '%s' is already initialized, ignoring. Set "
                          "force_reinit=True to re-initialize." % self.name, stacklevel=2)
            return
        self._data = self._grad = None
        if ctx is None:
            ctx = [current_context()]
        if isinstance(ctx, Context):
            ctx = [ctx]
        if init is None:
            init = default_init if self.init is None else self.init
        if not _shape_known(self.shape):
            if self._allow_deferred_init:
                self._deferred_init = (init, ctx, default_init, None)
                return
            raise ValueError("Cannot initialize Parameter '%s' because it has invalid "
                             "shape: %s." % (self.name, str(self.shape)))
        self._deferred_init = (init, ctx, default_init, None)
        self._finish_deferred_init()

    def _finish_deferred_init(self):
        if not self._deferred_init:
            return
        init, ctx, default_init, data = self._deferred_init
        self._deferred_init = ()
        assert _shape_known(self.shape), \
            "Cannot initialize Parameter '%s' because it has invalid shape: %s. Please " \
            "specify in_units, in_channels, etc for `Block`s." % (self.name, str(self.shape))
        with autograd.pause():
            if data is None:
                data = nd.zeros(self.shape, dtype=self.dtype)
                initializer.create(default_init)(
                    initializer.InitDesc(self.name, {'__init__': init}), data)
            self._init_impl(data, ctx)

    def _init_impl(self, data, ctx_list):
        self._ctx_list = list(ctx_list)
        d = data._data if isinstance(data, NDArray) else np.asarray(data)
        self._data = [_wrap(np.array(d, dtype=self.dtype if self.dtype is not None else d.dtype,
                                     order='C', copy=True))]
        self._init_grad()

    def _init_grad(self):
        if self.grad_req == 'null':
            self._grad = None
            return
        self._grad = [_wrap(np.zeros_like(a._data)) for a in self._data]
        autograd.mark_variables(self._data, self._grad, self.grad_req)

    def _load_init(self, data, ctx, cast_dtype=False, dtype_source='current'):
        if cast_dtype:
            assert dtype_source in ['current', 'saved']
        if self.shape:
            for self_dim, data_dim in zip(self.shape, data.shape):
                assert self_dim in (0, data_dim), \
                    "Failed loading Parameter '%s' from saved params: shape incompatible " \
                    "expected %s vs saved %s" % (self.name, str(self.shape), str(data.shape))
            self.shape = tuple(i if i != 0 else j for i, j in zip(self.shape, data.shape))
        else:
            self._shape = tuple(data.shape)
        if self.dtype:
            if cast_dtype and np.dtype(self.dtype).type != data.dtype:
                if dtype_source == 'current':
                    data = data.astype(self.dtype, copy=False)
                elif dtype_source == 'saved':
                    self.dtype = data.dtype
            else:
                assert np.dtype(self.dtype).type == data.dtype, \
                    "Failed loading Parameter '%s' from saved params: dtype incompatible " \
                    "expected %s vs saved %s. Set cast_dtype=True to cast the dtype of saved " \
                    "params." % (self.name, str(self.dtype), str(data.dtype))
        if isinstance(ctx, Context):
            ctx = [ctx]
        if self._data is None:
            if self._deferred_init:
                ctx = self._deferred_init[1]
            elif ctx is None:
                ctx = [cpu()]
            self._init_impl(data, ctx)
        else:
            self.set_data(data)
        self._deferred_init = ()

    def set_data(self, data):
        """Copy ``data`` into the parameter (AssertionError on an incompatible shape)."""
        self.shape = data.shape
        if self._data is None:
            assert self._deferred_init, "Parameter '%s' has not been initialized" % self.name
            self._deferred_init = self._deferred_init[:3] + (data,)
            return
        src = data._data if isinstance(data, NDArray) else np.asarray(data)
        for arr in self._data:
            np.copyto(arr._data, src, casting='unsafe')

    def zero_grad(self):
        """Set the gradient buffer to 0 (nothing with grad_req='null')."""
        if self._grad is None:
            return
        for g in self._grad:
            g._data[...] = 0

    def reset_ctx(self, ctx):
        """Move to ``ctx`` (one device here: the data stays where it is)."""
        if ctx is None:
            ctx = [current_context()]
        if isinstance(ctx, Context):
            ctx = [ctx]
        if self._data is not None:
            self._ctx_list = list(ctx)
        elif self._deferred_init:
            init, _, default_init, data = self._deferred_init
            self._deferred_init = (init, ctx, default_init, data)
        else:
            raise ValueError("Cannot reset context for Parameter '%s' because it has not "
                             "been initialized." % self.name)

    def _reduce(self):
        """A copy of the data (what save/export write)."""
        return _wrap(self.list_data()[0]._data.copy())

    def var(self):
        """A Symbol variable for this parameter (shape, dtype, lr/wd mult, init attrs)."""
        if self._var is None:
            import symbol as _sym
            self._var = _sym.var(self.name, shape=self.shape, dtype=self.dtype,
                                 lr_mult=self.lr_mult, wd_mult=self.wd_mult, init=self.init,
                                 stype=self._stype)
        return self._var

    def cast(self, dtype):
        """Cast data and gradient to ``dtype``."""
        self.dtype = dtype
        self._var = None
        if self._data is None:
            return
        with autograd.pause():
            self._data = [_wrap(a._data.astype(self.dtype)) for a in self._data]
            if self._grad is None:
                return
            self._grad = [_wrap(g._data.astype(self.dtype)) for g in self._grad]
            autograd.mark_variables(self._data, self._grad, self.grad_req)

    def row_sparse_data(self, row_id):
        raise MXNetError("Parameter '%s': row_sparse storage is not supported by agjit"
                         % self.name)


class Constant(Parameter):
    """A constant parameter (``grad_req='null'``) initialised to ``value``.

    >>> c = mx.gluon.Constant('c', [1, 2]); c.initialize(); c.data().asnumpy().tolist()
    [1.0, 2.0]
    """

    def __init__(self, name, value):
        if not isinstance(value, NDArray):
            value = nd.array(value)
        self.value = value

        class _CInit(initializer.Initializer):
            def _init_weight(self_, _, arr):
                arr._data[...] = value._data

            def dumps(self_):
                return '["constant", {"value": %s}]' % (value.asnumpy().tolist(),)

        super(Constant, self).__init__(name, grad_req='null', shape=value.shape,
                                       dtype=value.dtype, init=_CInit())

    def __repr__(self):
        return 'Constant {name} (shape={shape}, dtype={dtype})'.format(
            name=self.name, shape=self.shape, dtype=self.dtype)

    @property
    def grad_req(self):
        return 'null'

    @grad_req.setter
    def grad_req(self, req):
        if req != 'null':
            warnings.warn('Constant parameter "{}" does not support grad_req other than '
                          '"null", and new value "{}" is ignored.'.format(self.name, req))
        self._grad_req = 'null'


class ParameterDict(object):
    """An ordered dict of Parameters sharing a name prefix (and optionally another dict's
    Parameters: ``shared``).

    >>> pd = mx.gluon.ParameterDict('blk_'); w = pd.get('w', shape=(2,))
    >>> list(pd.keys()), pd.get('w') is w
    (['blk_w'], True)
    """

    def __init__(self, prefix='', shared=None):
        self._prefix = prefix
        self._params = OrderedDict()
        self._shared = shared

    def __repr__(self):
        s = '{name}(\n{content}\n)'
        name = self._prefix + ' ' if self._prefix else ''
        return s.format(name=name, content='\n'.join(
            [_indent('  {0}'.format(v), 2) for v in self.values()]))

    def __getitem__(self, key):
        return self._params[key]

    def __iter__(self):
        return iter(self._params)

    def __len__(self):
        return len(self._params)

    def __contains__(self, key):
        return key in self._params

    def items(self):
        return self._params.items()

    def keys(self):
        return self._params.keys()

    def values(self):
        return self._params.values()

    @property
    def prefix(self):
        return self._prefix

    def _get_impl(self, name):
        if name in self._params:
            return self._params[name]
        if self._shared is not None and name in self._shared._params:
            self._params[name] = self._shared._params[name]
            return self._shared._params[name]
        return None

    def get(self, name, **kwargs):
        """The Parameter ``prefix + name``, created with ``kwargs`` when it does not exist;
        an existing one must agree with the given attributes (0 dims are filled in)."""
        name = self.prefix + name
        param = self._get_impl(name)
        if param is None:
            param = Parameter(name, **kwargs)
            self._params[name] = param
        else:
            for k, v in kwargs.items():
                if hasattr(param, k) and getattr(param, k) is not None:
                    existing = getattr(param, k)
                    if k == 'shape' and v is not None and len(v) == len(existing):
                        inferred, matched = [], True
                        for dim1, dim2 in zip(v, existing):
                            if dim1 != dim2 and dim1 * dim2 != 0:
                                matched = False
                                break
                            inferred.append(dim1 if dim1 else dim2)
                        if matched:
                            param._shape = tuple(inferred)
                            continue
                    elif k == 'dtype' and np.dtype(v) == np.dtype(existing):
                        continue
                    assert v is None or v == existing, \
                        "Cannot retrieve Parameter '%s' because desired attribute does not " \
                        "match with stored for attribute '%s': desired '%s' vs stored '%s'." \
                        % (name, k, str(v), str(getattr(param, k)))
                else:
                    setattr(param, k, v)
        return param

    def get_constant(self, name, value=None):
        """The Constant ``prefix + name`` (created from ``value`` when new)."""
        name = self.prefix + name
        param = self._get_impl(name)
        if param is None:
            if value is None:
                raise KeyError("No constant named '{}'. Please specify value if you want to "
                               "create a new constant.".format(name))
            param = Constant(name, value)
            self._params[name] = param
        elif value is not None:
            assert isinstance(param, Constant), \
                "Parameter '{}' already exists but it is not a constant.".format(name)
            if isinstance(value, NDArray):
                value = value.asnumpy()
            assert param.shape == np.asarray(value).shape and \
                (param.value.asnumpy() == value).all(), \
                "Constant '{}' already exists but it's value doesn't match new value".format(name)
        return param

    def update(self, other):
        """Copy all Parameters of ``other`` into this dict."""
        for k, v in other.items():
            if k in self._params:
                assert self._params[k] is v, \
                    "Cannot update self with other because they have different Parameters " \
                    "with the same name '%s'" % k
        for k, v in other.items():
            self._params[k] = v

    def initialize(self, init=initializer.Uniform(), ctx=None, verbose=False,
                   force_reinit=False):
        """Initialise every Parameter; ``init`` is the default a Parameter's own init
        overrides."""
        if verbose:
            init.set_verbosity(verbose=verbose)
        for _, v in self.items():
            v.initialize(None, ctx, init, force_reinit=force_reinit)

    def zero_grad(self):
        for i in self.values():
            i.zero_grad()

    def reset_ctx(self, ctx):
        for i in self.values():
            i.reset_ctx(ctx)

    def list_ctx(self):
        s = set()
        for i in self.values():
            s.update(i.list_ctx())
        return list(s)

    def setattr(self, name, value):
        """Set attribute ``name`` (e.g. ``'grad_req'``, ``'lr_mult'``) on every Parameter."""
        for i in self.values():
            setattr(i, name, value)

    def save(self, filename, strip_prefix=''):
        """Save to MXNet's .params format, keys = names without ``strip_prefix``."""
        arg_dict = {}
        for param in self.values():
            weight = param._reduce()
            if not param.name.startswith(strip_prefix):
                raise ValueError(
                    "Prefix '%s' is to be striped before saving, but Parameter's name '%s' "
                    "does not start with '%s'. this may be due to your Block shares "
                    "parameters from other Blocks or you forgot to use 'with name_scope()' "
                    "when creating child blocks." % (strip_prefix, param.name, strip_prefix))
            arg_dict[param.name[len(strip_prefix):]] = weight
        nd.save(filename, arg_dict)

    def load(self, filename, ctx=None, allow_missing=False, ignore_extra=False,
             restore_prefix='', cast_dtype=False, dtype_source="current"):
        """Load a file written by :meth:`save` (or MXNet's ``arg:``/``aux:`` files)."""
        if restore_prefix:
            for name in self.keys():
                assert name.startswith(restore_prefix), \
                    "restore_prefix is '%s' but Parameters name '%s' does not start with " \
                    "'%s'" % (restore_prefix, name, restore_prefix)
        loaded = nd.load(filename)
        if not isinstance(loaded, dict):
            raise MXNetError("ParameterDict.load: %s holds a list of arrays without names"
                             % filename)
        self.load_dict(loaded, ctx, allow_missing, ignore_extra, restore_prefix, filename,
                       cast_dtype, dtype_source)

    def load_dict(self, param_dict, ctx=None, allow_missing=False, ignore_extra=False,
                  restore_prefix='', filename=None, cast_dtype=False, dtype_source="current"):
        lprefix = len(restore_prefix)
        loaded = [(k[4:] if k.startswith('arg:') or k.startswith('aux:') else k, v)
                  for k, v in param_dict.items()]
        arg_dict = {restore_prefix + k: v for k, v in loaded}
        error_str = "file: %s" % filename if filename else "param_dict"
        if not allow_missing:
            for name in self.keys():
                assert name in arg_dict, \
                    "Parameter '%s' is missing in %s, which contains parameters: %s. Please " \
                    "make sure source and target networks have the same prefix." % (
                        name[lprefix:], error_str, _brief_print_list(arg_dict.keys()))
        for name in arg_dict:
            if name not in self._params:
                assert ignore_extra, \
                    "Parameter '%s' loaded from %s is not present in ParameterDict, choices " \
                    "are: %s. Set ignore_extra to True to ignore. Please make sure source and " \
                    "target networks have the same prefix." % (
                        name[lprefix:], error_str, _brief_print_list(self._params.keys()))
                continue
            self[name]._load_init(arg_dict[name], ctx, cast_dtype=cast_dtype,
                                  dtype_source=dtype_source)


def _select(params, select):
    pattern = re.compile(select)
    return OrderedDict((k, v) for k, v in params.items() if pattern.match(k))
