"""``mx.executor``: a Symbol bound to argument, gradient and auxiliary arrays (MXNet's
``Symbol.bind`` / ``simple_bind`` / ``eval``, FINDINGS §7 "Executors").

``symbol`` never imports agjit: ``Symbol.bind`` and friends reach this module through the
executor factory it installs in :mod:`symbol.executor` when agjit is imported.

Note: compiled-executor
    An executor runs its Symbol through the JIT's compiled kernels
    (``agjit.compiler.program.CompiledGraph``, the same lowering and kernel cache ``mx.jit``
    uses): ``forward(is_train=True)`` with any gradient requested runs the training forward
    (which saves what the backward kernel needs), otherwise the forward-only kernel;
    ``backward`` runs the compiled backward kernel built from the registry's gradient rules
    (``symbol.autodiff``) and writes or adds into ``grad_arrays`` per ``grad_req``.  Ops the
    lowering cannot handle run their NumPy kernels inside the replay.

    * Tiers (agjit.compiler.tier note *tiers*): forwards run on the interpreted tier (every
      op through its NumPy kernel) until the compiled kernels are ready; their background
      compile is requested at the ``COMPILE_AFTER``-th forward (default 2, env
      ``AGJIT_EXECUTOR_COMPILE_AFTER``), so one-shot ``eval`` calls never compile.  With
      ``AGJIT_TIERED=0`` the first ``COMPILE_AFTER`` forwards run interpreted kernels and
      the next one compiles on the calling thread.  Both tiers give the same numbers as
      eager mode.
    * Executors never touch the autograd tape, so they do not consume the process-wide
      ``var<k>`` / ``null<k>`` counter that autograd symbols are named from (FINDINGS §2).
    * Argument, gradient and auxiliary buffers are the user's arrays (``bind`` does not
      copy, as in MXNet); BatchNorm's moving statistics are updated in place by ``backward``
      (``OpDef.backward_hook``), as in eager mode.
    * ``outputs`` are fixed arrays overwritten in place by every ``forward``: a handle taken
      earlier shows the newest values (observed in MXNet, ``sym_simple_bind``).
    * ``backward`` may be called repeatedly after one ``forward`` ('add' accumulates each
      time).
    * Threads: an executor is one set of argument, gradient and output arrays, so it is
      not shared by threads running at the same time.  A ``forward``/``backward`` while
      another thread is inside one of them raises MXNetError, and so does a ``backward``
      in a thread whose own ``forward`` was followed by another thread's (it would get the
      other thread's gradients).  Handing an executor from one thread to the next is fine;
      so are executors bound per thread (they share nothing).
"""
import os
import sys
import threading
import warnings

import numpy as np

from symbol.base import MXNetError, dtype_name
from symbol.graph import topo_order
from symbol.infer import infer_graph as _infer_graph, concretize_creation_shapes
from symbol import executor as _hook
from . import ndarray as nd
from .context import check_context
from .initializer import init_array
from .ndarray.ndarray import NDArray, _wrap
from .tape import ONES

__all__ = ["Executor", "bind", "simple_bind", "eval"]


# Executors are often run once (``eval``) or a few times: the first COMPILE_AFTER forwards
# run interpreted (every op through its NumPy kernel); from then on the compiled kernels run.
# ``AGJIT_EXECUTOR_COMPILE_AFTER=0`` compiles from the first forward.
COMPILE_AFTER = int(os.environ.get("AGJIT_EXECUTOR_COMPILE_AFTER", "2"))


_GRAD_REQS = ("null", "write", "add")


def _is_ndarray(x):
    return isinstance(x, NDArray)


def _get_ndarray_inputs(arg_key, args, arg_names, allow_missing):
    """MXNet's rule for ``args`` / ``args_grad`` / ``aux_states``: a list in ``arg_names``
    order or a dict by name (extra keys ignored)."""
    if isinstance(args, (list, tuple)):
        if len(args) != len(arg_names):
            raise ValueError("Length of %s does not match the number of arguments: got %d, "
                             "expected %d (%s)" % (arg_key, len(args), len(arg_names),
                                                   ", ".join(arg_names)))
        out = []
        for name, a in zip(arg_names, args):
            if a is None and allow_missing:
                out.append(None)
            elif _is_ndarray(a):
                out.append(a)
            else:
                raise TypeError("Only accept list of NDArrays or dict of str to NDArray "
                                "(%s: %s is a %s)" % (arg_key, name, type(a).__name__))
        return out
    if isinstance(args, dict):
        out = []
        for name in arg_names:
            if name in args:
                a = args[name]
                if a is None and allow_missing:
                    out.append(None)
                    continue
                if not _is_ndarray(a):
                    raise TypeError("Only accept list of NDArrays or dict of str to NDArray "
                                    "(%s: %s is a %s)" % (arg_key, name, type(a).__name__))
                out.append(a)
            elif allow_missing:
                out.append(None)
            else:
                raise ValueError("key `%s` is missing in `%s`" % (name, arg_key))
        return out
    raise TypeError("Only accept list of NDArrays or dict of str to NDArray (%s is a %s)"
                    % (arg_key, type(args).__name__))


def _grad_reqs(grad_req, arg_names):
    if isinstance(grad_req, str):
        reqs = [grad_req] * len(arg_names)
    elif isinstance(grad_req, (list, tuple)):
        if len(grad_req) != len(arg_names):
            raise MXNetError("grad_req list has %d entries but the symbol has %d arguments (%s)"
                             % (len(grad_req), len(arg_names), ", ".join(arg_names)))
        reqs = list(grad_req)
    elif isinstance(grad_req, dict):
        reqs = [grad_req.get(n, "null") for n in arg_names]
    else:
        raise TypeError("grad_req must be a str, a list or a dict, got %s" % type(grad_req).__name__)
    for n, r in zip(arg_names, reqs):
        if r not in _GRAD_REQS:
            raise MXNetError("grad_req for %s must be one of %s, got %r" % (n, _GRAD_REQS, r))
    return reqs


def _check_ctx(ctx, where):
    check_context(ctx, where)


def _infer_forward(order, var_shapes, var_types):
    """Shapes and dtypes of every entry from fully known variables, by the one inference
    engine (``symbol.infer.infer_graph``).  Raises MXNetError on inconsistent shapes."""
    return _infer_graph(order, {(n, 0): tuple(s) for n, s in var_shapes.items()},
                        {(n, 0): t for n, t in var_types.items()}, use_attrs=False)


class Executor:
    """A bound Symbol: ``forward`` / ``backward`` over fixed argument, gradient and auxiliary
    arrays (see the module note *eager-executor*).

    Attributes
    ----------
    arg_arrays, grad_arrays, aux_arrays : list of NDArray (grad entries may be None)
        In ``list_arguments()`` / ``list_auxiliary_states()`` order.
    arg_dict, grad_dict, aux_dict, output_dict : dict
        The same arrays by name.
    outputs : list of NDArray
        One per ``list_outputs()`` entry, overwritten in place by ``forward``.
    """

    def __init__(self, sym, ctx, arg_arrays, grad_arrays, grad_reqs, aux_arrays):
        self._symbol = sym
        self._ctx = ctx
        self._order = topo_order(sym._outputs)
        self._arg_names = sym.list_arguments()
        self._aux_names = sym.list_auxiliary_states()
        self._output_names = sym.list_outputs()
        self.arg_arrays = list(arg_arrays)
        self.grad_arrays = list(grad_arrays)
        self.aux_arrays = list(aux_arrays)
        self._grad_req = {n: (r if g is not None else "null")
                          for n, g, r in zip(self._arg_names, grad_arrays, grad_reqs)}
        self.arg_dict = dict(zip(self._arg_names, self.arg_arrays))
        self.grad_dict = dict(zip(self._arg_names, self.grad_arrays))
        self.aux_dict = dict(zip(self._aux_names, self.aux_arrays))
        for name, g in self.grad_dict.items():
            if g is not None and g.shape != self.arg_dict[name].shape:
                raise MXNetError("bind: gradient array for %s has shape %s but the argument has "
                                 "shape %s" % (name, g.shape, self.arg_dict[name].shape))
        self._var_source = {}
        for node in self._order:
            if node.op is None:
                if node.name in self.arg_dict:
                    self._var_source[node] = ("arg", node.name)
                elif node.name in self.aux_dict:
                    self._var_source[node] = ("aux", node.name)
                else:  # pragma: no cover - list_* and the graph disagree
                    raise MXNetError("bind: variable %s is neither an argument nor an auxiliary "
                                     "state" % node.name)
        shapes, types = _infer_forward(
            self._order,
            {k: self._array_of(v).shape for k, v in self._var_source.items()},
            {k: self._array_of(v)._data.dtype.name for k, v in self._var_source.items()})
        # creation ops with 0 (unknown) dims run with the shape inference gave them
        self._run_outputs = concretize_creation_shapes(sym._outputs, shapes)
        self.outputs = []
        for node, i in sym._outputs:
            s, t = shapes.get((node, i)), types.get((node, i))
            self.outputs.append(nd.zeros(s if s is not None else (), dtype=t or "float32"))
        self._heads = None
        self._compiled = None
        self._backward_node = None
        self._is_train = False
        self._monitor = None
        self._busy = threading.Lock()       # held by the thread inside forward/backward
        self._fwd_seq = 0                   # forwards so far
        # per thread: the number of its latest forward (thread-local storage, not a table by
        # thread id: a finished thread's id is given to the next thread)
        self._fwd_of_thread = threading.local()

    def _array_of(self, src):
        kind, name = src
        return self.arg_dict[name] if kind == "arg" else self.aux_dict[name]

    @property
    def output_dict(self):
        return dict(zip(self._output_names, self.outputs))

    @property
    def symbol(self):
        return self._symbol

    # -- running -------------------------------------------------------------------------------
    def _enter(self, what):
        if not self._busy.acquire(blocking=False):
            raise MXNetError(
                "Executor.%s: this executor is running forward/backward in another thread; "
                "an executor's arrays cannot be shared by threads running at the same time "
                "(bind one executor per thread, or serialise the calls)" % what)

    def forward(self, is_train=False, **kwargs):
        """Copy ``kwargs`` (name -> NDArray or NumPy array) into ``arg_dict``, evaluate the
        graph (training mode if ``is_train``) and return ``self.outputs``."""
        self._enter("forward")
        try:
            out = self._forward(is_train, kwargs)
            self._fwd_seq += 1
            self._fwd_of_thread.seq = self._fwd_seq
            return out
        finally:
            self._busy.release()

    def _forward(self, is_train, kwargs):
        for name, value in kwargs.items():
            if name not in self.arg_dict:
                raise ValueError("Unknown argument %s (arguments: %s)"
                                 % (name, ", ".join(self._arg_names)))
            if _is_ndarray(value):
                value = value._data
            elif not isinstance(value, np.ndarray):
                raise ValueError("forward: only accept keyword arguments of NDArrays and "
                                 "numpy.ndarray, got %s for %s" % (type(value).__name__, name))
            dst = self.arg_dict[name]
            if dst.shape != value.shape:
                raise ValueError("Shape not match! Argument %s, need: %s, received: %s"
                                 % (name, dst.shape, value.shape))
            dst._data[...] = value
        results = self._run(bool(is_train))
        for k, (out, r) in enumerate(zip(self.outputs, results)):
            if out.shape == r.shape and out._data.dtype == r._data.dtype:
                out._data[...] = r._data
            else:
                out._data = np.array(r._data, copy=True)
        self._is_train = bool(is_train)
        return self.outputs

    def _graph(self):
        """The compiled graph of this executor (built on first use; shapes are fixed)."""
        if self._compiled is None:
            from .compiler.program import CompiledGraph
            from .compiler.signature import KernelStats
            nodes = [n for n in self._order if n.op is None]
            shapes = {(n, 0): self._array_of(self._var_source[n]).shape for n in nodes}
            dtypes = {(n, 0): self._array_of(self._var_source[n])._data.dtype.name
                      for n in nodes}
            self._var_nodes = nodes
            from .compiler.tier import tiered_default
            self._compiled = CompiledGraph(KernelStats(), self._run_outputs, nodes, shapes,
                                           dtypes, compile_after=COMPILE_AFTER,
                                           tiered=tiered_default())
        return self._compiled

    def _wait_compiled(self, timeout=None):
        """Block until the background compiles of this executor's kernels are done (agjit
        extension; agjit.compiler.tier note *tiers*).  True when none is still running."""
        return self._compiled is None or self._compiled.wait_compiled(timeout)

    def _input_arrays(self):
        return [np.ascontiguousarray(self._array_of(self._var_source[n])._data)
                for n in self._var_nodes]

    def _grad_mask(self):
        mask = []
        for n in self._var_nodes:
            kind, name = self._var_source[n]
            mask.append(kind == "arg" and self._grad_req.get(name, "null") != "null")
        return mask

    def _run(self, is_train):
        """Run the compiled forward (see agjit.compiler): the training variant, which saves
        what the backward kernel needs, when gradients are wanted."""
        g = self._graph()
        arrays = self._input_arrays()
        mask = self._grad_mask()
        if is_train and any(mask):
            vals, self._backward_node = g.run_train(arrays, mask)
        else:
            vals = g.run_forward(arrays, is_train, fresh=True)
            self._backward_node = None
        heads = [_wrap(v) for v in vals]
        self._heads = heads
        return heads

    def backward(self, out_grads=None, is_train=True):
        """Accumulate gradients into ``grad_arrays`` (per ``grad_req``).

        ``out_grads`` (NDArray, list, or dict by output name) is required unless every head
        is a loss op (``OpDef.is_loss``, e.g. SoftmaxOutput), whose gradient ignores it.
        """
        self._enter("backward")
        try:
            mine = getattr(self._fwd_of_thread, "seq", None)
            if mine is not None and mine != self._fwd_seq:
                raise MXNetError(
                    "Executor.backward: another thread ran forward on this executor after "
                    "this thread's forward, so this backward would compute that thread's "
                    "gradients; bind one executor per thread")
            self._backward(out_grads, is_train)
        finally:
            self._busy.release()

    def _backward(self, out_grads, is_train):
        if self._heads is None:
            raise MXNetError("backward: call forward(is_train=True) before backward")
        n = len(self._heads)
        if out_grads is None:
            out_grads = [None] * n
        elif _is_ndarray(out_grads) or isinstance(out_grads, np.ndarray):
            out_grads = [out_grads]
        elif isinstance(out_grads, dict):
            out_grads = [out_grads.get(k) for k in self._output_names]
        else:
            out_grads = list(out_grads)
        if len(out_grads) != n:
            raise MXNetError("backward: got %d head gradients for %d outputs (%s)"
                             % (len(out_grads), n, ", ".join(self._output_names)))
        grads = []
        for k, ((node, _i), g) in enumerate(zip(self._symbol._outputs, out_grads)):
            if g is None:
                if node.op is None or not node.op.is_loss:
                    raise MXNetError(
                        "backward: a head gradient is required for output %s (only loss "
                        "outputs such as SoftmaxOutput can do without): pass out_grads"
                        % self._output_names[k])
                grads.append(None)
                continue
            if isinstance(g, np.ndarray):
                g = nd.array(g, dtype=g.dtype)
            elif not _is_ndarray(g):
                raise MXNetError("backward: out_grads must be NDArrays, got %s" % type(g).__name__)
            if g.shape != self._heads[k].shape:
                raise MXNetError("backward: head gradient for %s has shape %s, expected %s"
                                 % (self._output_names[k], g.shape, self._heads[k].shape))
            grads.append(g)
        if all(r == "null" for r in self._grad_req.values()):
            return
        if self._backward_node is None:
            # forward ran in predict mode (or before gradients were wanted): rerun the
            # training forward so the backward kernel has what it needs
            self._run(True)
        # loss outputs without a head gradient: ones (their gradient ignores it)
        res = self._backward_node.backward(*[g if g is not None else ONES for g in grads],
                                           train=bool(is_train))
        for n, r in zip(self._var_nodes, res):
            if r is None:
                continue
            kind, name = self._var_source[n]
            buf = self.grad_dict[name]._data
            if self._grad_req[name] == "add":
                buf += r._data.astype(buf.dtype, copy=False)
            else:
                buf[...] = r._data

    # -- parameters ---------------------------------------------------------------------------
    def copy_params_from(self, arg_params, aux_params=None, allow_extra_params=False):
        """Copy parameters (dicts of name -> NDArray) into ``arg_dict`` / ``aux_dict``."""
        for params, target, what in ((arg_params, self.arg_dict, "arguments"),
                                     (aux_params or {}, self.aux_dict, "auxiliary states")):
            for name, array in params.items():
                if name in target:
                    dst = target[name]
                    src = array._data if _is_ndarray(array) else np.asarray(array)
                    if src.shape != dst.shape:
                        raise MXNetError("copy_params_from: %s has shape %s, expected %s"
                                         % (name, src.shape, dst.shape))
                    dst._data[...] = src
                elif not allow_extra_params:
                    raise ValueError('Find name "%s" that is not in the %s' % (name, what))

    def set_monitor_callback(self, callback, monitor_all=False):
        self._monitor = callback

    def debug_str(self):
        lines = ["Symbol outputs: %s" % ", ".join(self._output_names)]
        for node in self._order:
            if node.op is not None:
                lines.append("Op:%s, Name=%s" % (node.op.name, node.name))
        return "\n".join(lines)

    def __repr__(self):
        return "<Executor outputs=%s>" % (self._output_names,)


# ---------------------------------------------------------------------------------------------
# module-level entry points (Symbol.bind / simple_bind / eval delegate here)
# ---------------------------------------------------------------------------------------------
def bind(sym, ctx, args, args_grad=None, grad_req="write", aux_states=None, group2ctx=None,
         shared_exec=None):
    """Bind ``sym`` to existing arrays (MXNet ``Symbol.bind``).

    Parameters
    ----------
    args : list or dict of NDArray
        In ``list_arguments()`` order, or by name.  A missing name raises
        ``ValueError("key `a` is missing in `args`")``.
    args_grad : list or dict of NDArray, optional
        Gradient buffers; arguments without one get no gradient.
    grad_req : {'write', 'add', 'null'} or list or dict
        Per argument; names missing from a dict are 'null'.
    aux_states : list or dict of NDArray
        Required when the symbol has auxiliary states (BatchNorm moving statistics).

    Examples
    --------
    >>> ex = sym.bind(mx.cpu(), {'a': a, 'b': b}, args_grad={'a': ga})   # doctest: +SKIP
    >>> ex.forward(is_train=True); ex.backward(mx.nd.ones(out_shape))    # doctest: +SKIP
    """
    _check_ctx(ctx, "bind")
    arg_names = sym.list_arguments()
    aux_names = sym.list_auxiliary_states()
    arg_arrays = _get_ndarray_inputs("args", args, arg_names, False)
    if args_grad is None:
        grad_arrays = [None] * len(arg_names)
    else:
        grad_arrays = _get_ndarray_inputs("args_grad", args_grad, arg_names, True)
    reqs = _grad_reqs(grad_req, arg_names)
    aux_arrays = _get_ndarray_inputs("aux_states", [] if aux_states is None else aux_states,
                                     aux_names, False)
    return Executor(sym, ctx, arg_arrays, grad_arrays, reqs, aux_arrays)


def simple_bind(sym, ctx, grad_req="write", type_dict=None, stype_dict=None, group2ctx=None,
                shared_arg_names=None, shared_exec=None, shared_buffer=None, **kwargs):
    """Allocate every array from the shapes ``kwargs`` (name -> shape) and bind.

    Shapes come from ``sym.infer_shape(**kwargs)``, dtypes from ``sym.infer_type`` with
    ``type_dict`` (arguments without a ``__dtype__`` attr default to float32).  Arrays are
    zeros, except arguments and auxiliary states whose variable carries an ``__init__`` attr
    (any ``mx.init`` initializer, e.g. BatchNorm's moving_var starts at ones; a
    ``Variable(init=mx.init.Xavier())`` is drawn from it).  With ``grad_req='null'`` the gradient arrays
    are None.  Arrays named in ``shared_arg_names`` are reused from ``shared_exec`` when the
    shapes agree.

    >>> ex = net.simple_bind(mx.cpu(), x=(3, 4))          # doctest: +SKIP
    >>> ex.forward(is_train=True, x=mx.nd.ones((3, 4)))   # doctest: +SKIP
    """
    _check_ctx(ctx, "simple_bind")
    arg_names = sym.list_arguments()
    aux_names = sym.list_auxiliary_states()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arg_shapes, _out_shapes, aux_shapes = sym.infer_shape(**kwargs)
    if arg_shapes is None:
        raise MXNetError("simple_bind: cannot infer the shapes of all arguments from %s; "
                         "give the shapes of more inputs (arguments: %s)"
                         % (kwargs, ", ".join(arg_names)))
    order = topo_order(sym._outputs)
    var_attrs = {n.name: n.attrs for n in order if n.op is None}
    if type_dict is None:
        type_dict = {k: "float32" for k in arg_names
                     if "__dtype__" not in var_attrs.get(k, {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        arg_types, _out_types, aux_types = sym.infer_type(**type_dict)
    if arg_types is None:
        arg_types, aux_types = [None] * len(arg_names), [None] * len(aux_names)
    reqs = _grad_reqs(grad_req, arg_names)
    shared = set(shared_arg_names or ()) if shared_exec is not None else set()

    def alloc(shape, dt, name=None):
        dt = dtype_name(dt) if dt is not None else "float32"
        a = nd.zeros(tuple(shape), dtype=dt)
        if name is not None:
            init_array(name, a, var_attrs.get(name, {}))
        return a

    arg_arrays, grad_arrays = [], []
    for name, shape, dt, req in zip(arg_names, arg_shapes, arg_types, reqs):
        if name in shared and name in shared_exec.arg_dict \
                and shared_exec.arg_dict[name].shape == tuple(shape):
            arg_arrays.append(shared_exec.arg_dict[name])
            g = shared_exec.grad_dict.get(name)
            grad_arrays.append(g if req != "null" and g is not None else
                               (alloc(shape, dt) if req != "null" else None))
            continue
        arg_arrays.append(alloc(shape, dt, name))
        grad_arrays.append(alloc(shape, dt) if req != "null" else None)
    aux_arrays = [alloc(shape, dt, name)
                  for name, shape, dt in zip(aux_names, aux_shapes, aux_types)]
    return Executor(sym, ctx, arg_arrays, grad_arrays, reqs, aux_arrays)


def eval(sym, ctx=None, **kwargs):
    """Evaluate ``sym`` once on the arrays ``kwargs`` (name -> NDArray) in predict mode and
    return a list of NDArrays, one per output (MXNet ``Symbol.eval``).  Auxiliary states may
    be passed by name too.

    >>> sym.eval(ctx=mx.cpu(), a=mx.nd.ones((2, 3)))   # doctest: +SKIP
    [<NDArray 2x3 @cpu(0)>]
    """
    aux_names = sym.list_auxiliary_states()
    aux = {k: v for k, v in kwargs.items() if k in aux_names}
    args = {k: v for k, v in kwargs.items() if k not in aux}
    ex = bind(sym, ctx, args, aux_states=aux if aux_names else None)
    return ex.forward()


# Symbol.bind / simple_bind / eval reach this module through symbol.executor's hook
_hook.set_executor_factory(sys.modules[__name__])
