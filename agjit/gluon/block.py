"""Gluon blocks: :class:`Block`, :class:`HybridBlock` and :class:`SymbolBlock`.

Note: gluon-naming
    Names follow MXNet 1.9.1 (``_BlockScope``): a block created outside any ``name_scope()``
    gets ``<alias><N>_`` from the process-wide name manager (alias = lower-case class name);
    inside ``with parent.name_scope():`` it gets ``parent.prefix + <alias><M>_`` with a counter
    per parent.  An explicit ``prefix`` is used verbatim (appended to the parent's inside a
    scope) and consumes no counter.  A parameter is ``prefix + name``; ``params=`` shares
    another dict's Parameter objects.

Note: gluon-hybridize
    ``HybridBlock.hybridize()`` makes the next call build the block's graph once with
    ``hybrid_forward(mx.sym, ...)`` (the graph ``export`` writes, and the graph deferred shape
    inference reads), then run it through :func:`agjit.jit`: the jitted function takes the
    call's data arrays and the block's parameter arrays as positional inputs (so parameters
    are inputs by reference: in-place updates and ``set_data`` are seen by every replay),
    evaluates the graph op by op while being traced, and is replayed on compiled kernels from
    then on.  Inside ``autograd.record()`` each call is one tape node; parameter gradients land
    in ``Parameter.grad()`` per grad_req, BatchNorm's running statistics are updated by the
    compiled backward as in eager mode, and a new input shape/dtype or train/predict mode
    retraces.  Only the outermost hybridized block jits: children are part of its graph.

Note: composition
    ``loss_fn(net(x), y)`` with both blocks hybridized runs as ONE jitted call of the two
    graphs composed -- in step mode one forward+backward kernel, as ``mx.jit`` of the whole
    step -- instead of two compiled tape nodes.  Inside ``record()`` (and outside any
    trace), a replay of a hybridized block whose graph is single-output and pure (no random
    numbers, no mutated inputs, no backward hooks, no mode-dependent ops) returns a
    *deferred* output: a :class:`_PendingOut` (an NDArray subclass) that holds the call
    (block, arrays, training mode) instead of data.  A hybridized single-output pure block
    called with it as one of its inputs, in the same mode, runs the composed function
    ``(consumer(..., producer(...), ...), producer(...))`` (one JitFunction per producer
    and argument position, cached on the consumer, with ``step_head = 0``: its step kernel
    speculates on ones for the consumer's output and no gradient from the producer's; see
    agjit.compiler.step), and the deferred array becomes a plain NDArray holding the
    producer's output with the composed call's tape entry.  When nothing but the call
    itself holds the deferred array (``loss_fn(net(x), y)``: its reference count is the
    interpreter's own, measured at import by ``_unheld_count``), the composed function is
    the consumer's outputs only -- a single-output step, the program ``mx.jit`` makes of
    the whole step -- and the deferred array stays deferred.  Any other use -- reading
    ``_data`` or ``_entry``, i.e. any op, ``asnumpy()``, ``backward()`` -- first runs the
    producer's own jitted call in the mode it was called in (recorded as its own tape
    node); so does the exit of every autograd scope (``record()``, ``pause()``, ...) and
    ``Trainer.step``, for outputs still deferred that something still holds (one nothing
    holds can never be read and is dropped, agjit.tape.flush_pending).  Numbers, gradients
    and the tape are those of the two calls; what differs is when the producer's kernel
    runs, so an in-place change of one of its inputs between the call and the first use
    inside the same ``record()`` scope is seen (as a backward sees in-place changes of
    recorded inputs).  (The reference count only chooses between the two compositions: a
    deferred array held where it cannot be seen -- a tuple passed with ``*`` -- is
    computed when read, as above.)
"""
import copy
import operator
import re
import sys
import threading
import warnings
import weakref
from collections import OrderedDict

import numpy as np

import symbol as _symbol
from symbol.base import MXNetError
from symbol.graph import topo_order
from symbol.name import NameManager, Prefix
from symbol.symbol import Symbol
from .. import ndarray as _nd
from .. import initializer
from ..ndarray.ndarray import NDArray, invoke
from ..tape import state as _tape_state
from .parameter import Parameter, ParameterDict, DeferredInitializationError, _indent, \
    _brief_print_list

__all__ = ["Block", "HybridBlock", "SymbolBlock"]


class _BlockScope(object):
    """The name scope of a Block (see the module note *gluon-naming*)."""
    _current = threading.local()

    def __init__(self, block):
        self._block = block
        self._counter = {}
        self._old_scope = None
        self._name_scope = None

    @staticmethod
    def create(prefix, params, hint):
        """(prefix, ParameterDict) for a new block with alias ``hint``."""
        current = getattr(_BlockScope._current, "value", None)
        if current is None:
            if prefix is None:
                prefix = NameManager.current.get(None, hint) + '_'
            if params is None:
                params = ParameterDict(prefix)
            else:
                params = ParameterDict(params.prefix, params)
            return prefix, params
        if prefix is None:
            count = current._counter.get(hint, 0)
            prefix = '%s%d_' % (hint, count)
            current._counter[hint] = count + 1
        if params is None:
            parent = current._block.params
            params = ParameterDict(parent.prefix + prefix, parent._shared)
        else:
            params = ParameterDict(params.prefix, params)
        return current._block.prefix + prefix, params

    def __enter__(self):
        if self._block._empty_prefix:
            return self
        self._old_scope = getattr(_BlockScope._current, "value", None)
        _BlockScope._current.value = self
        self._name_scope = Prefix(self._block.prefix)
        self._name_scope.__enter__()
        return self

    def __exit__(self, ptype, value, trace):
        if self._block._empty_prefix:
            return
        self._name_scope.__exit__(ptype, value, trace)
        self._name_scope = None
        _BlockScope._current.value = self._old_scope


def _flatten(args, inout_str):
    if isinstance(args, NDArray):
        return [args], int(0)
    if isinstance(args, Symbol):
        length = len(args.list_outputs())
        length = length if length > 1 else 0
        return [args], int(length)
    if args is None:
        return [None], int(-1)
    if not isinstance(args, (list, tuple)):
        raise AssertionError("HybridBlock {} must be (nested) list of Symbol or NDArray, but "
                             "got {} of type {}".format(inout_str, str(args), str(type(args))))
    flat, fmts = [], []
    for i in args:
        arg, fmt = _flatten(i, inout_str)
        flat.extend(arg)
        fmts.append(fmt)
    return flat, fmts


def _regroup(args, fmt):
    if isinstance(fmt, int):
        if fmt == 0:
            return args[0], args[1:]
        if fmt == -1:
            if args[0] is not None:
                raise ValueError("We do not support passing types that are not None when the "
                                 "initial HybridBlock has received NoneType and has been "
                                 "hybridized. Received arg = {}, fmt = {}.".format(args[0], fmt))
            return None, args[1:]
        return list(args[:fmt]), args[fmt:]
    ret = []
    for i in fmt:
        res, args = _regroup(args, i)
        ret.append(res)
    return ret, args


class _HookHandle(object):
    """Returned by ``register_forward_hook``; ``detach()`` removes the hook."""
    _next_id = [0]

    def __init__(self):
        self._hooks_dict_ref = None
        self._id = None

    def attach(self, hooks_dict, hook):
        assert not self._hooks_dict_ref, 'The same handle cannot be attached twice.'
        self._id = _HookHandle._next_id[0]
        _HookHandle._next_id[0] += 1
        hooks_dict[self._id] = hook
        self._hooks_dict_ref = weakref.ref(hooks_dict)

    def detach(self):
        hooks_dict = self._hooks_dict_ref() if self._hooks_dict_ref else None
        if hooks_dict is not None and self._id in hooks_dict:
            del hooks_dict[self._id]

    def __enter__(self):
        return self

    def __exit__(self, ptype, value, trace):
        self.detach()


class Block(object):
    """Base class of all layers and models: override :meth:`forward`.

    Child blocks assigned as attributes are registered (in order, under the attribute
    name); create them inside ``with self.name_scope():`` so their names nest.

    >>> class Net(mx.gluon.Block):
    ...     def __init__(self, **kw):
    ...         super(Net, self).__init__(**kw)
    ...         with self.name_scope():
    ...             self.w = self.params.get('w', shape=(2,), init=mx.init.One())
    ...     def forward(self, x):
    ...         return x * self.w.data()
    >>> net = Net(prefix='net_'); net.initialize(); net(mx.nd.array([1, 2])).asnumpy().tolist()
    [1.0, 2.0]
    """

    def __init__(self, prefix=None, params=None):
        self._empty_prefix = prefix == ''
        self._prefix, self._params = _BlockScope.create(prefix, params, self._alias())
        self._name = self._prefix[:-1] if self._prefix.endswith('_') else self._prefix
        self._scope = _BlockScope(self)
        self._children = OrderedDict()
        self._reg_params = {}
        self._forward_hooks = OrderedDict()
        self._forward_pre_hooks = OrderedDict()

    def __repr__(self):
        s = '{name}(\n{modstr}\n)'
        modstr = '\n'.join(['  ({key}): {block}'.format(key=key, block=_indent(repr(block), 2))
                            for key, block in self.__dict__.items() if isinstance(block, Block)])
        return s.format(name=self.__class__.__name__, modstr=modstr)

    def __setattr__(self, name, value):
        """Register child blocks and parameters assigned as attributes."""
        if hasattr(self, name):
            existing = getattr(self, name)
            if isinstance(existing, (Parameter, Block)) and not isinstance(value, type(existing)):
                raise TypeError('Changing attribute type for {name} from {type1} to {type2} '
                                'is not allowed.'.format(name=name, type1=type(existing),
                                                         type2=type(value)))
        if isinstance(value, Block):
            self.register_child(value, name)
        elif isinstance(value, Parameter):
            assert name not in self._reg_params, \
                "Overriding Parameter attribute %s is not allowed. If you want to share " \
                "parameters between blocks, please set 'params' at Block construction " \
                "instead." % name
            self._reg_params[name] = value
        super(Block, self).__setattr__(name, value)

    def _check_container_with_block(self):
        children = set(self._children.values())

        def _find_unregistered_block_in_container(data):
            if isinstance(data, (list, tuple)):
                return any(_find_unregistered_block_in_container(ele) for ele in data)
            if isinstance(data, dict):
                return any(_find_unregistered_block_in_container(v) for v in data.values())
            if isinstance(data, Block):
                return data not in children
            return False

        for k, v in self.__dict__.items():
            if isinstance(v, (list, tuple, dict)) and not (k.startswith('__') or k == '_children'):
                if _find_unregistered_block_in_container(v):
                    warnings.warn('"{name}" is an unregistered container with Blocks. Note that '
                                  'Blocks inside the list, tuple or dict will not be registered '
                                  'automatically. Make sure to register them using '
                                  'register_child() or switching to nn.Sequential/'
                                  'nn.HybridSequential instead. '.format(
                                      name=self.__class__.__name__ + "." + k), stacklevel=3)

    def _alias(self):
        return self.__class__.__name__.lower()

    @property
    def prefix(self):
        """Prefix of this block's names (parameters, children)."""
        return self._prefix

    @property
    def name(self):
        """The prefix without its trailing ``_``."""
        return self._name

    def name_scope(self):
        """A ``with`` scope: blocks created inside get names nested under this block."""
        return self._scope

    @property
    def params(self):
        """This block's own ParameterDict (children's parameters not included)."""
        return self._params

    def collect_params(self, select=None):
        """A ParameterDict of this block's and all its children's Parameters; ``select`` is a
        regex matched (``re.match``) against the full names, e.g. ``'.*weight|.*bias'``."""
        self._check_container_with_block()
        ret = ParameterDict(self._params.prefix)
        if not select:
            ret.update(self.params)
        else:
            pattern = re.compile(select)
            ret.update({name: value for name, value in self.params.items()
                        if pattern.match(name)})
        for cld in self._children.values():
            ret.update(cld.collect_params(select=select))
        return ret

    def _collect_params_with_prefix(self, prefix=''):
        if prefix:
            prefix += '.'
        ret = {prefix + key: val for key, val in self._reg_params.items()}
        for name, child in self._children.items():
            ret.update(child._collect_params_with_prefix(prefix + name))
        return ret

    def save_parameters(self, filename, deduplicate=False):
        """Save the parameters in MXNet's .params format under structural keys
        (``'0.weight'``, ``'enc.fc.bias'``: attribute/child names, not prefixes)."""
        params = self._collect_params_with_prefix()
        if deduplicate:
            reverse_params = {v: k for k, v in params.items()}
            params = {v: k for k, v in reverse_params.items()}
        arg_dict = {key: val._reduce() for key, val in params.items()}
        _nd.save(filename, arg_dict)

    def save_params(self, filename):
        """Deprecated: the legacy format (full parameter names without the block prefix)."""
        warnings.warn("save_params is deprecated. Please use save_parameters. Note that if "
                      "you want load from SymbolBlock later, please use export instead.")
        try:
            self.collect_params().save(filename, strip_prefix=self.prefix)
        except ValueError as e:
            raise ValueError('%s\nsave_params is deprecated. Using save_parameters may resolve '
                             'this error.' % e.message) from None

    def load_parameters(self, filename, ctx=None, allow_missing=False, ignore_extra=False,
                        cast_dtype=False, dtype_source='current'):
        """Load parameters written by :meth:`save_parameters` (or the legacy
        ``collect_params().save`` format, recognised by keys without any ``.``)."""
        loaded = _nd.load(filename)
        if not isinstance(loaded, dict):
            raise MXNetError("load_parameters: %s holds a list of arrays without names"
                             % filename)
        params = self._collect_params_with_prefix()
        if not loaded and not params:
            return
        if not any('.' in i for i in loaded.keys()):
            del loaded
            self.collect_params().load(filename, ctx, allow_missing, ignore_extra, self.prefix,
                                       cast_dtype=cast_dtype, dtype_source=dtype_source)
            return
        if not allow_missing:
            for name in params.keys():
                assert name in loaded, \
                    "Parameter '%s' is missing in file '%s', which contains parameters: %s. " \
                    "Set allow_missing=True to ignore missing parameters." % (
                        name, filename, _brief_print_list(loaded.keys()))
        for name in loaded:
            if not ignore_extra and name not in params:
                raise ValueError(
                    "Parameter '%s' loaded from file '%s' is not present in ParameterDict, "
                    "which contains parameters %s. Set ignore_extra=True to ignore. " % (
                        name, filename, _brief_print_list(params.keys())))
            if name in params:
                params[name]._load_init(loaded[name], ctx, cast_dtype=cast_dtype,
                                        dtype_source=dtype_source)

    def load_params(self, filename, ctx=None, allow_missing=False, ignore_extra=False):
        """Deprecated alias of :meth:`load_parameters`."""
        warnings.warn("load_params is deprecated. Please use load_parameters.")
        self.load_parameters(filename, ctx, allow_missing, ignore_extra)

    def register_child(self, block, name=None):
        """Register ``block`` as a child (under ``name``, default its index)."""
        if name is None:
            name = str(len(self._children))
        self._children[name] = block

    def register_forward_pre_hook(self, hook):
        """``hook(block, inputs)`` runs before every forward; returns a handle (detach())."""
        handle = _HookHandle()
        handle.attach(self._forward_pre_hooks, hook)
        return handle

    def register_forward_hook(self, hook):
        """``hook(block, inputs, output)`` runs after every forward; returns a handle."""
        handle = _HookHandle()
        handle.attach(self._forward_hooks, hook)
        return handle

    def apply(self, fn):
        """Call ``fn(block)`` on every child (recursively, children first), then this one."""
        for cld in self._children.values():
            cld.apply(fn)
        fn(self)
        return self

    def initialize(self, init=initializer.Uniform(), ctx=None, verbose=False,
                   force_reinit=False):
        """Initialise all parameters (``collect_params().initialize``): ``init`` is the
        default a parameter's own init overrides."""
        self.collect_params().initialize(init, ctx, verbose, force_reinit)

    def hybridize(self, active=True, **kwargs):
        """Hybridize every HybridBlock child (a plain Block itself is not compiled)."""
        for cld in self._children.values():
            cld.hybridize(active, **kwargs)

    def cast(self, dtype):
        """Cast all parameters (of children too) to ``dtype``."""
        for child in self._children.values():
            child.cast(dtype)
        for _, param in self.params.items():
            param.cast(dtype)

    def zero_grad(self):
        self.collect_params().zero_grad()

    def reset_ctx(self, ctx):
        self.collect_params().reset_ctx(ctx)

    def __call__(self, *args):
        for hook in self._forward_pre_hooks.values():
            hook(self, args)
        out = self.forward(*args)
        for hook in self._forward_hooks.values():
            hook(self, args, out)
        return out

    def forward(self, *args):
        """Override to implement the computation."""
        raise NotImplementedError

    def summary(self, *inputs):
        """Print each layer's output shape and parameter count for a forward of ``inputs``
        (the block must be initialised and not hybridized)."""
        summary = OrderedDict()
        seen = set()
        hooks = []

        def _get_shape_str(args):
            def flatten(args):
                if not isinstance(args, (list, tuple)):
                    return [args], int(0)
                flat, fmts = [], []
                for i in args:
                    arg, fmt = flatten(i)
                    flat.extend(arg)
                    fmts.append(fmt)
                return flat, fmts

            def regroup(args, fmt):
                if isinstance(fmt, int):
                    if fmt == 0:
                        return args[0], args[1:]
                    return args[:fmt], args[fmt:]
                ret = []
                for i in fmt:
                    res, args = regroup(args, i)
                    ret.append(res)
                return ret, args

            flat_args, fmts = flatten(args)
            flat_arg_shapes = [x.shape if isinstance(x, NDArray) else x for x in flat_args]
            shapes = regroup(flat_arg_shapes, fmts)[0]
            if isinstance(shapes, list):
                shape_str = str(shapes)[1:-1]
            else:
                shape_str = str(shapes)
            return shape_str.replace('L', '')

        def _register_summary_hook(block):
            assert not isinstance(block, HybridBlock) or not block._active, \
                '"{}" must not be hybridized to print summary.'.format(block.name)

            def _summary_hook(block, _, outputs):
                class_name = block.__class__.__name__
                block_idx = len(summary) - 1
                m_key = '%s-%i' % (class_name, block_idx + 1)
                summary[m_key] = OrderedDict()
                summary[m_key]['output_shape'] = _get_shape_str(outputs)
                params = 0
                summary[m_key]['trainable'] = 0
                summary[m_key]['shared'] = 0
                for p in block.params.values():
                    params += p.data().size
                    summary[m_key]['trainable'] += 0 if p.grad_req == 'null' else p.data().size
                    if p in seen:
                        summary[m_key]['shared'] += p.data().size
                    else:
                        seen.add(p)
                summary[m_key]['n_params'] = params

            from .nn.containers import Sequential, HybridSequential
            if not isinstance(block, (Sequential, HybridSequential)):
                hooks.append(block.register_forward_hook(_summary_hook))

        summary['Input'] = OrderedDict()
        summary['Input']['output_shape'] = _get_shape_str(inputs)
        summary['Input']['n_params'] = 0
        summary['Input']['trainable'] = 0
        summary['Input']['shared'] = 0
        try:
            self.apply(_register_summary_hook)
            self(*inputs)
            line_format = '{:>20}  {:>42} {:>15}'
            print('-' * 80)
            print(line_format.format('Layer (type)', 'Output Shape', 'Param #'))
            print('=' * 80)
            total_params = trainable_params = shared_params = 0
            for layer in summary:
                print(line_format.format(layer, str(summary[layer]['output_shape']),
                                         summary[layer]['n_params']))
                total_params += summary[layer]['n_params']
                trainable_params += summary[layer]['trainable']
                shared_params += summary[layer]['shared']
            print('=' * 80)
            print('Parameters in forward computation graph, duplicate included')
            print('   Total params: ' + str(total_params))
            print('   Trainable params: ' + str(trainable_params))
            print('   Non-trainable params: ' + str(total_params - trainable_params))
            print('Shared params in forward computation graph: ' + str(shared_params))
            print('Unique parameters in model: ' + str(total_params - shared_params))
            print('-' * 80)
        finally:
            for h in hooks:
                h.detach()


def _filtered_attrs(attrs):
    return {k: v for k, v in attrs.items() if not (k.startswith('__') and k.endswith('__'))}


# reductions that are the identity when they reduce no axis (exclude=True over every axis)
_IDENTITY_REDUCTIONS = frozenset(("sum", "sum_axis", "mean", "max", "max_axis", "min",
                                  "min_axis", "prod", "nansum", "nanprod"))


def _reduces_nothing(op_name, x, ident):
    """Whether reduction ``op_name`` with (axis, exclude) ``ident`` keeps every axis of
    ``x``, a floating-point array: then its value is ``x`` (keepdims changes nothing)."""
    axis, exclude = ident
    if not exclude or axis is None or not isinstance(x, NDArray):
        return False
    if np.dtype(x.dtype).kind != "f":
        return False
    from symbol.ops.reduce import reduce_axes
    try:
        return reduce_axes(op_name, len(x.shape), axis, True) == ()
    except MXNetError:
        return False                # the op itself raises its error


class _GraphRunner(object):
    """Evaluates a block's Symbol graph op by op on NDArrays -- the function ``mx.jit``
    traces for a hybridized block (see the module note *gluon-hybridize*)."""

    def __init__(self, out, input_nodes):
        # input_nodes: the names of the graph variables, in the order of the call's arrays
        order = topo_order(out._outputs)
        by_name = {name: k for k, name in enumerate(input_nodes)}
        pos = {}
        self.n_inputs = len(input_nodes)
        steps = []
        for n in order:
            if n.op is None:
                pos[id(n)] = by_name[n.name]
                continue
            ins = [(id(s), i) for (s, i, _v) in n.inputs]
            ident = None
            if n.op.name in _IDENTITY_REDUCTIONS and n.inputs[0][0].op is not None:
                a = n.parsed
                ident = (a.get("axis"), bool(a.get("exclude")))
            steps.append((n, ins, _filtered_attrs(n.attrs), n.num_visible(), ident))
        self.steps = steps
        self.pos = pos
        self.heads = [(id(n), i) for n, i in out._outputs]

    def __call__(self, *arrays):
        vals = {}
        for nid, k in self.pos.items():
            vals[(nid, 0)] = arrays[k]
        for n, ins, attrs, nvis, ident in self.steps:
            try:
                args = [vals[e] for e in ins]
            except KeyError:
                raise MXNetError("hybridized graph: op %s (%s) reads a hidden output of another "
                                 "op, which the compiled replay cannot provide"
                                 % (n.name, n.op.name)) from None
            if ident is not None and _reduces_nothing(n.op.name, args[0], ident):
                # a reduction over no axis of a float op output (a loss's per-sample mean
                # of an already per-sample value): the value itself, so the traced graph
                # -- and the step kernel -- has neither it nor its gradient
                vals[(id(n), 0)] = args[0]
                continue
            res = invoke(n.op, args, attrs)
            if nvis == 1:
                vals[(id(n), 0)] = res
            else:
                for i, r in enumerate(res):
                    vals[(id(n), i)] = r
        return tuple(vals[h] for h in self.heads)


# ---------------------------------------------------------------------------------------
# deferred outputs and composed calls (note *composition*)
# ---------------------------------------------------------------------------------------
_SLOT_DATA = NDArray.__dict__["_data"]      # the slot descriptors of NDArray's fields
_SLOT_ENTRY = NDArray.__dict__["_entry"]
_new = object.__new__
_GENERAL = object()                 # _fast_call: this call takes the general path
_first = operator.itemgetter(0)
_get_data = operator.attrgetter("_data")
_getrefcount = sys.getrefcount


class _RefProbe(object):
    """The call path of a block call ``loss(net(x), y)`` -- __call__(*args), _fast_call,
    _compose -- on an object the caller passes straight in and a list holds (as the
    pending list holds a deferred output), for :data:`_UNHELD`."""

    def __call__(self, *args):
        return self._fast_call(None, args)

    def _fast_call(self, f, args):
        return self._compose(0, args)

    def _compose(self, pos, args):
        parr = args[pos]
        return _getrefcount(parr)


def _held_probe(held):
    held.append(object())
    return held[-1]


def _unheld_count():
    held = []
    return _RefProbe()(_held_probe(held), None)


# the reference count of a deferred input in _compose when nothing else holds it (the
# interpreter's own references: the argument tuples, the frames, the pending list)
_UNHELD = _unheld_count()


def _force(arr):
    """Run the deferred call of ``arr`` -- ``(producer block, arrays of its jitted call:
    data inputs then parameters, training mode)``, held in its data slot -- in the mode it
    was made in (recording on) and make ``arr`` the plain NDArray of its output."""
    block, arrays, training = _SLOT_DATA.__get__(arr)
    st = _tape_state
    prev = st.recording, st.training, st.tracer
    st.recording, st.training, st.tracer = True, training, None
    try:
        out = block._jit(*arrays)
    finally:
        st.recording, st.training, st.tracer = prev
    _fill(arr, out[0] if type(out) is tuple else out)


def _fill(arr, out):
    _SLOT_DATA.__set__(arr, out._data)
    _SLOT_ENTRY.__set__(arr, out._entry)
    arr.__class__ = NDArray


class _PendingOut(NDArray):
    """The deferred output of a hybridized block's recorded call (note *composition*): any
    read or write of its data or autograd entry first computes it and turns it into a
    plain NDArray."""
    __slots__ = ()

    @property
    def _data(self):
        _force(self)
        return _SLOT_DATA.__get__(self)

    @_data.setter
    def _data(self, value):
        _force(self)
        _SLOT_DATA.__set__(self, value)

    @property
    def _entry(self):
        _force(self)
        return _SLOT_ENTRY.__get__(self)

    @_entry.setter
    def _entry(self, value):
        _force(self)
        _SLOT_ENTRY.__set__(self, value)


def _pure_graph(out):
    """Whether a block graph may be deferred and composed: single output, no op drawing
    random numbers, mutating inputs, with a backward hook or mode-dependent."""
    if len(out._outputs) != 1:
        return False
    for n in topo_order(out._outputs):
        op = n.op
        if op is not None and (op.needs_rng or op.backward_hook or op.mutate_inputs
                               or op.train_dependent):
            return False
    return True


def _composed_fn(prod_fn, n_p, pos, cons_fn, single=False):
    """``(cons(..., prod(a[:n_p]) at position pos, ...), prod(a[:n_p]))`` over the arrays
    ``a`` = producer arrays, then the consumer's other inputs and parameters; ``single``:
    the consumer's outputs only."""
    def composed(*a):
        out = prod_fn(*a[:n_p])[0]
        rest = list(a[n_p:])
        rest.insert(pos, out)
        if single:
            return tuple(cons_fn(*rest))
        return tuple(cons_fn(*rest)) + (out,)
    return composed


class HybridBlock(Block):
    """A Block whose computation ``hybrid_forward(F, x, *args, **params)`` is written with
    functions that exist in both ``F = mx.nd`` and ``F = mx.sym``, so it can be compiled
    (:meth:`hybridize`, through ``mx.jit``) and exported (:meth:`export`).

    Parameters registered as attributes arrive in ``hybrid_forward`` as keyword arguments
    named after the attribute.  See the module note *gluon-hybridize*.
    """

    def __init__(self, prefix=None, params=None):
        super(HybridBlock, self).__init__(prefix=prefix, params=params)
        self._cached_graph = ()
        self._cached_op = None
        self._jit = None
        self._jit_args = None
        self._pure = False          # deferrable and composable (note *composition*)
        # (number of inputs, jitted parameters, pure, single output) of a built graph over
        # flat array inputs, while hybridized: the fast call (HybridBlock._fast_call)
        self._fast = None
        self._ran_sig = None        # (input shapes/dtypes, mode) of a call that ran
        self._next_sig = None
        self._composed = {}         # (producer's JitFunction, position) -> composed one
        self._out_format = None
        self._in_format = None
        self._active = False
        self._flags = []

    def __setattr__(self, name, value):
        super(HybridBlock, self).__setattr__(name, value)
        if isinstance(value, HybridBlock):
            self._clear_cached_op()

    def register_child(self, block, name=None):
        if not isinstance(block, HybridBlock):
            raise ValueError(
                "Children of HybridBlock must also be HybridBlock, but %s has type %s. If you "
                "are using Sequential, please try HybridSequential instead." % (
                    str(block), str(type(block))))
        super(HybridBlock, self).register_child(block, name)
        self._clear_cached_op()

    def _clear_cached_op(self):
        self._cached_graph = ()
        self._cached_op = None
        self._jit = None
        self._jit_args = None
        self._pure = False
        self._fast = None
        self._composed = {}
        self._ran_sig = self._next_sig = None

    def hybridize(self, active=True, backend=None, backend_opts=None, clear=True,
                  static_alloc=False, static_shape=False, **kwargs):
        """Compile calls of this block with ``mx.jit`` (``active=False`` turns it off).

        ``static_alloc`` / ``static_shape`` are accepted: buffers are always planned once
        per traced signature.
        """
        self._active = active
        self._fast = None           # set again by the next compiled call
        self._flags = list(kwargs.items()) + [('static_alloc', static_alloc),
                                              ('static_shape', static_shape)]
        if clear:
            self._clear_cached_op()
        if active and (self._forward_hooks or self._forward_pre_hooks):
            warnings.warn('"{block}" is being hybridized while still having forward hook/'
                          'pre-hook. If "{block}" is a child of HybridBlock, the hooks will not '
                          'take effect.'.format(block=self))
        super(HybridBlock, self).hybridize(active, static_alloc=static_alloc,
                                           static_shape=static_shape, **kwargs)

    def cast(self, dtype):
        self._clear_cached_op()
        super(HybridBlock, self).cast(dtype)

    # -- graph ------------------------------------------------------------------------------
    def _get_graph(self, *args):
        if not self._cached_graph:
            flat, self._in_format = _flatten(args, "input")
            if len(flat) > 1:
                inputs = [_symbol.var('data%d' % i) for i in range(len(flat))]
            else:
                inputs = [_symbol.var('data')]
            grouped = _regroup(inputs, self._in_format)[0]
            params = {i: j.var() for i, j in self._reg_params.items()}
            with self.name_scope():
                out = self.hybrid_forward(_symbol, *grouped, **params) \
                    if isinstance(self._in_format, list) else \
                    self.hybrid_forward(_symbol, grouped, **params)
            out, self._out_format = _flatten(out, "output")
            self._cached_graph = inputs, _symbol.Group(out)
        return self._cached_graph

    def _infer_attrs(self, infer_fn, attr, *args):
        inputs, out = self._get_graph(*args)
        flat, _ = _flatten(args, "input")
        kw = {i.name: getattr(j, attr) for i, j in zip(inputs, flat) if j is not None}
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            arg_attrs, _, aux_attrs = getattr(out, infer_fn)(**kw)
        if arg_attrs is None:
            raise ValueError(str(w[0].message) if w else
                             "%s: cannot infer %s from the inputs" % (self.name, attr))
        sdict = {i: j for i, j in zip(out.list_arguments(), arg_attrs)}
        sdict.update({name: a for name, a in zip(out.list_auxiliary_states(), aux_attrs)})
        for i in self.collect_params().values():
            if i.name in sdict:
                setattr(i, attr, sdict[i.name])

    def infer_shape(self, *args):
        """Fill in the unknown (0) dims of the parameters from the input shapes (nothing is
        allocated)."""
        self._infer_attrs('infer_shape', 'shape', *args)

    def infer_type(self, *args):
        """Infer the parameters' dtypes from the inputs'."""
        self._infer_attrs('infer_type', 'dtype', *args)

    def _deferred_infer_shape(self, *args):
        try:
            self.infer_shape(*args)
        except Exception as e:
            raise ValueError("Deferred initialization failed because shape cannot be "
                             "inferred. {}".format(e)) from None

    # -- calls ------------------------------------------------------------------------------
    def _build_jit(self):
        from .. import jit
        inputs, out = self._cached_graph
        data_pos = {v.name: k for k, v in enumerate(inputs)}
        params = {p.name: p for p in self.collect_params().values()}
        order = topo_order(out._outputs)
        var_nodes = [n for n in order if n.op is None]
        data_nodes = [v.name for v in inputs]
        names = set(data_pos)
        param_nodes, jit_params = [], []
        for n in var_nodes:
            if n.name in names:
                continue
            p = params.get(n.name)
            if p is None:
                raise ValueError("%s: the graph of hybrid_forward reads the variable '%s', "
                                 "which is neither an input nor a Parameter of the block "
                                 "(parameters: %s)" % (self.name, n.name,
                                                       _brief_print_list(params.keys())))
            param_nodes.append(n.name)
            jit_params.append(p)
        # a data variable that the graph does not use still takes its position
        runner = _GraphRunner(out, data_nodes + param_nodes)
        runner.__name__ = "%s_hybrid_forward" % (self.name or type(self).__name__)
        runner.__qualname__ = runner.__name__
        flat_inputs = isinstance(self._in_format, list) and \
            all(f == 0 for f in self._in_format)
        self._jit_args = (len(inputs), jit_params, flat_inputs)

        def hybrid_call(*arrays):
            return runner(*arrays)

        hybrid_call.__name__ = runner.__name__
        hybrid_call.__qualname__ = runner.__name__
        self._jit = jit(hybrid_call)
        self._pure = flat_inputs and _pure_graph(out)
        self._composed = {}

    def __call__(self, *args):
        # a built hybridized block over flat array inputs (``_fast``, reset by hybridize()),
        # without hooks, whose class keeps HybridBlock.forward: straight to the compiled
        # call (what forward would do)
        f = self._fast
        if f is not None and len(args) == f[0] and not self._forward_pre_hooks \
                and not self._forward_hooks and type(self).forward is _HB_FORWARD:
            r = self._fast_call(f, args)
            if r is not _GENERAL:
                return r
        return Block.__call__(self, *args)

    def _fast_call(self, f, args):
        """The compiled call of a built graph over flat inputs ``args`` (``f`` =
        ``self._fast``), deferred or composed inside record() (note *composition*); or
        _GENERAL: an input is not a plain NDArray (at most one deferred one is taken) or a
        parameter lost its data (the general path explains)."""
        pend = None
        k = 0
        for a in args:
            t = type(a)
            if t is not NDArray:
                if t is not _PendingOut or pend is not None:
                    return _GENERAL
                pend = k
            k += 1
        a = None            # (no reference of this frame to a deferred input: _compose)
        try:
            params = list(map(_first, map(_get_data, f[1])))
        except TypeError:
            return _GENERAL
        if f[2]:
            st = _tape_state
            if st.recording and st.tracer is None:
                r = self._defer(args, params, st) if pend is None else \
                    self._compose(pend, args, params, st)
                if r is not None:
                    return r
        ran, self._next_sig = self._next_sig, None
        outs = self._jit(*args, *params)
        if ran is not None:         # deferral may follow this signature now
            self._ran_sig = ran
        return outs[0] if f[3] else _regroup(list(outs), self._out_format)[0]

    def _call_cached_op(self, *args):
        f = self._fast
        if f is not None and len(args) == f[0]:
            r = self._fast_call(f, args)
            if r is not _GENERAL:
                return r
        flat, fmt = _flatten(args, "input")
        if not self._cached_graph:
            self._get_graph(*args)
        elif fmt != self._in_format:
            raise ValueError("Invalid input format: the hybridized %s was first called with "
                             "the input structure %s, now %s" % (self.name, self._in_format, fmt))
        if any(p._deferred_init for p in self.collect_params().values()):
            self._deferred_infer_shape(*args)
            for p in self.collect_params().values():
                p._finish_deferred_init()
        if self._jit is None:
            self._build_jit()
        n_in, jit_params, _simple = self._jit_args
        if len(flat) != n_in or any(a is None for a in flat):
            raise ValueError("%s: expected %d input arrays, got %d" % (self.name, n_in,
                                                                        len(flat)))
        arrays = flat + [p.data() for p in jit_params]
        if _simple:
            self._fast = (n_in, jit_params, self._pure, self._out_format == 0)
        outs = self._jit(*arrays)
        return _regroup(list(outs), self._out_format)[0]

    def _defer(self, args, params, st):
        """A deferred output for this replay (note *composition*), or None: its inputs'
        shapes and dtypes or the mode differ from the last call that ran (a new signature
        runs now, so its errors surface at this call)."""
        ran = self._ran_sig         # ((shape, dtype) per input, training) or None
        training = st.training
        if ran is None or ran[1] != training:
            return self._new_signature(args, training)
        for a, (shape, dt) in zip(args, ran[0]):
            d = a._data
            if d.shape != shape or (d.dtype is not dt and d.dtype != dt):
                return self._new_signature(args, training)
        arr = _new(_PendingOut)
        # (the entry slot stays unset: every read of it goes through _PendingOut._entry)
        _SLOT_DATA.__set__(arr, (self, [*args, *params], training))
        st.pending.append(arr)
        return arr

    def _new_signature(self, args, training):
        self._ran_sig = None
        # becomes _ran_sig once this call has run
        self._next_sig = (tuple([(a._data.shape, a._data.dtype) for a in args]), training)
        return None

    def _compose(self, pos, args, params, st):
        """Run this call and the deferred call of its input ``pos`` as one jitted call
        (note *composition*); None when they cannot be composed."""
        parr = args[pos]
        prod, parrays, training = _SLOT_DATA.__get__(parr)
        if training != st.training or self._out_format != 0:
            return None
        # Held only by the pending list, the call's argument tuple and this frame (the
        # caller passed the network's output straight in: ``loss(net(x), y)``): the
        # composed function returns the loss only -- the network's output stays deferred
        # and is computed only if it turns out to be read after all (autograd.record()'s
        # exit drops it unread; tape.flush_pending).  Else it is the composed call's second
        # output.  Either way the numbers and gradients are those of the two calls.
        single = _getrefcount(parr) <= _UNHELD
        pj = prod._jit
        key = (pj, pos, single)
        cj = self._composed.get(key)
        if cj is None:
            from .. import jit
            fn = _composed_fn(pj._fn, len(parrays), pos, self._jit._fn, single)
            fn.__name__ = fn.__qualname__ = "%s_of_%s" % (self._jit.__name__, pj.__name__)
            cj = self._composed[key] = jit(fn)
            if not single:
                cj.step_head = 0        # the consumer's output (agjit.compiler.step)
        if pos == 0:
            outs = cj(*parrays, *args[1:], *params)
        else:
            outs = cj(*parrays, *args[:pos], *args[pos + 1:], *params)
        if single:
            return outs[0]
        out, pout = outs
        pl = st.pending
        if pl and pl[-1] is parr:
            pl.pop()
        parr.__class__ = NDArray       # a plain array now: the slots are set directly
        parr._data = pout._data
        parr._entry = pout._entry
        return out

    def forward(self, x, *args):
        """Run ``hybrid_forward`` with ``F = mx.nd`` (or the compiled graph when hybridized)
        for NDArray inputs, with ``F = mx.sym`` for Symbol inputs."""
        if self._active and self._jit_args is not None and (type(x) is NDArray
                                                             or type(x) is _PendingOut):
            return self._call_cached_op(x, *args)
        flat, _ = _flatten([x] + list(args), "input")
        has_symbol = any(isinstance(a, Symbol) for a in flat)
        has_ndarray = any(isinstance(a, NDArray) for a in flat)
        if has_symbol and has_ndarray:
            raise ValueError('In HybridBlock, we do not support mixed NDArrays and Symbols '
                             'types for the input. Please check the type of the args.\n')
        if not has_symbol and not has_ndarray:
            raise ValueError('In HybridBlock, there must be one NDArray or one Symbol in the '
                             'input. Please check the type of the args.\n')
        if has_ndarray:
            if self._active:
                return self._call_cached_op(x, *args)
            try:
                params = {k: v.data() for k, v in self._reg_params.items()}
            except DeferredInitializationError:
                self._deferred_infer_shape(x, *args)
                for _, v in self.params.items():
                    v._finish_deferred_init()
                params = {k: v.data() for k, v in self._reg_params.items()}
            return self.hybrid_forward(_nd, x, *args, **params)
        params = {i: j.var() for i, j in self._reg_params.items()}
        with self.name_scope():
            return self.hybrid_forward(_symbol, x, *args, **params)

    def hybrid_forward(self, F, x, *args, **kwargs):
        """Override: the computation, with ``F`` = ``mx.nd`` or ``mx.sym``."""
        raise NotImplementedError

    def export(self, path, epoch=0, remove_amp_cast=True):
        """Write ``path-symbol.json`` and ``path-%04d.params`` (``arg:``/``aux:`` keys), the
        files MXNet's ``SymbolBlock.imports`` / ``mx.model.load_checkpoint`` read.  Needs a
        forward of the hybridized block first (the graph is the one it built)."""
        if not self._cached_graph:
            raise RuntimeError(
                "Please first call block.hybridize() and then run forward with this block at "
                "least once before calling export.")
        sym = self._cached_graph[1]
        sym_filename = '%s-symbol.json' % path
        sym.save(sym_filename, remove_amp_cast=remove_amp_cast)
        arg_names = set(sym.list_arguments())
        aux_names = set(sym.list_auxiliary_states())
        arg_dict = {}
        for name, param in self.collect_params().items():
            if name in arg_names:
                arg_dict['arg:%s' % name] = param._reduce()
            elif name in aux_names:
                arg_dict['aux:%s' % name] = param._reduce()
        params_filename = '%s-%04d.params' % (path, epoch)
        _nd.save(params_filename, arg_dict)
        return sym_filename, params_filename


def _common_prefix(names):
    if not names:
        return ''
    prefix = names[0]
    for name in names:
        i = 0
        while i < len(prefix) and i < len(name) and prefix[i] == name[i]:
            i += 1
        prefix = prefix[:i]
    return prefix


_HB_FORWARD = HybridBlock.forward


class SymbolBlock(HybridBlock):
    """A block made of a Symbol graph: ``SymbolBlock(outputs, inputs, params=None)``; every
    argument of ``outputs`` that is not an input becomes a Parameter named like the variable
    (aux states get ``grad_req='null'``).  :meth:`imports` loads what ``export`` wrote.

    >>> x = mx.sym.var('data'); y = mx.sym.FullyConnected(x, num_hidden=2, name='fc')
    >>> net = mx.gluon.SymbolBlock(y, x); sorted(net.collect_params().keys())
    ['fc_bias', 'fc_weight']
    """

    @staticmethod
    def imports(symbol_file, input_names, param_file=None, ctx=None, allow_missing=False,
                ignore_extra=False):
        """A SymbolBlock from an exported ``-symbol.json`` (and optionally its ``.params``)."""
        sym = _symbol.load(symbol_file)
        if isinstance(input_names, str):
            input_names = [input_names]
        if param_file is None:
            inputs = [_symbol.var(i, dtype=np.float32) for i in input_names]
        else:
            inputs = [_symbol.var(i) for i in input_names]
        ret = SymbolBlock(sym, inputs)
        if param_file is not None:
            ret.collect_params().load(param_file, ctx, allow_missing, ignore_extra,
                                      cast_dtype=True, dtype_source='saved')
        return ret

    def __repr__(self):
        s = '{name}(\n{modstr}\n)'
        modstr = '\n'.join(['{block} : {numinputs} -> {numoutputs}'.format(
            block=self._cached_graph[1], numinputs=len(self._cached_graph[0]),
            numoutputs=len(self._cached_graph[1].list_outputs()))])
        return s.format(name=self.__class__.__name__, modstr=modstr)

    def __init__(self, outputs, inputs, params=None):
        super(SymbolBlock, self).__init__(prefix=None, params=None)
        self._prefix = ''
        self._params = ParameterDict('', params)
        if isinstance(inputs, Symbol) and len(inputs.list_outputs()) == 1:
            inputs = [inputs]
        if isinstance(outputs, (list, tuple)) and len(outputs) == 1:
            outputs = outputs[0]
        syms, self._in_format = _flatten(inputs, "input")
        out, self._out_format = _flatten(outputs, "output")
        out = _symbol.Group(out)
        input_names = set()
        for i in syms:
            assert len(i.get_internals().list_outputs()) == 1, \
                "Input symbols must be variable, but %s is an output of operators" % str(i)
            input_names.add(i.name)
        arg_dtypes = self._param_dtypes(syms, out)
        for i in out.list_arguments():
            if i not in input_names:
                self.params.get(i, allow_deferred_init=True, dtype=arg_dtypes.get(i, np.float32))
        for i in out.list_auxiliary_states():
            if i not in input_names:
                self.params.get(i, grad_req='null', allow_deferred_init=True,
                                dtype=arg_dtypes.get(i, np.float32))
        self._cached_graph = syms, out
        len_prefix = len(_common_prefix(list(self._params.keys())))
        self._reg_params = {key[len_prefix:]: val for key, val in self._params.items()}

    @staticmethod
    def _param_dtypes(syms, out):
        """Parameter dtypes from the graph's ``__dtype__`` attrs, float32 otherwise."""
        from symbol.base import DTYPE_CODES
        names = {v: k for k, v in DTYPE_CODES.items()}
        res = {}
        for n in topo_order(out._outputs):
            if n.op is None and '__dtype__' in n.attrs:
                try:
                    res[n.name] = np.dtype(names[int(n.attrs['__dtype__'])]).type
                except (KeyError, ValueError, TypeError):
                    pass
        return res

    def _clear_cached_op(self):
        tmp = self._cached_graph
        super(SymbolBlock, self)._clear_cached_op()
        self._cached_graph = tmp

    def forward(self, x, *args):
        if isinstance(x, NDArray):
            return self._call_cached_op(x, *args)
        flat, in_fmt = _flatten([x] + list(args), "input")
        assert in_fmt == self._in_format, "Invalid input format"
        ret = copy.copy(self._cached_graph[1])
        ret = ret(**{k.name: v for k, v in zip(self._cached_graph[0], flat)})
        return _regroup(list(ret), self._out_format)[0]

    def _call_cached_op(self, *args):
        flat, _fmt = _flatten(args, "input")
        return self._run_graph(flat)

    def _run_graph(self, flat):
        if any(p._deferred_init for p in self.collect_params().values()):
            self._deferred_infer_shape(*flat)
            for p in self.collect_params().values():
                p._finish_deferred_init()
        if self._jit is None:
            self._build_jit()
        n_in, jit_params, _simple = self._jit_args
        if len(flat) != n_in:
            raise ValueError("SymbolBlock: expected %d inputs (%s), got %d" % (
                n_in, ", ".join(s.name for s in self._cached_graph[0]), len(flat)))
        arrays = list(flat) + [p.data() for p in jit_params]
        outs = self._jit(*arrays)
        return _regroup(list(outs), self._out_format)[0]

    def _infer_attrs(self, infer_fn, attr, *args):
        inputs, out = self._cached_graph
        kw = {i.name: getattr(j, attr) for i, j in zip(inputs, args) if j is not None}
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            arg_attrs, _, aux_attrs = getattr(out, infer_fn)(**kw)
        if arg_attrs is None:
            raise ValueError(str(w[0].message) if w else "cannot infer %s" % attr)
        sdict = {i: j for i, j in zip(out.list_arguments(), arg_attrs)}
        sdict.update({name: a for name, a in zip(out.list_auxiliary_states(), aux_attrs)})
        for i in self.collect_params().values():
            if i.name in sdict:
                setattr(i, attr, sdict[i.name])

    def hybrid_forward(self, F, x, *args, **kwargs):
        raise NotImplementedError
