"""``mx.mod.Module``: a Symbol bound to one executor, with parameters, an optimizer and the
loops of :class:`~agjit.module.base_module.BaseModule`.

MXNet 1.9.1's behaviour kept here (FINDINGS.md "Module"):

* state: ``bind`` stores shapes as ``DataDesc``; ``init_params(arg_params=...)`` *copies*
  the caller's arrays; ``get_params()`` returns the module's own CPU-side dicts (the same
  objects every time, refreshed from the executor after updates; editing them does not
  change the executor until ``set_params``); ``get_outputs()`` returns the executor's output
  arrays, overwritten by the next forward.
* a batch of another batch size reshapes the module implicitly (parameters are kept, data
  arrays re-made); another feature size fails in shape inference with MXNetError.
* initialisation by name: ``*_weight`` from the initializer, ``*_bias``/``*_beta``/moving
  means zero, ``*_gamma``/moving variances one; a ``Variable(init=...)`` attr wins; a second
  ``init_params`` is ignored (UserWarning) unless ``force_init``; a missing ``arg_params`` key
  without ``allow_missing`` is a RuntimeError ("fc_bias is not presented").
* ``init_optimizer`` passes ``rescale_grad = 1/batch_size`` and ``param_idx2name`` (so weight
  decay applies to ``*_weight``/``*_gamma`` only) unless given; ``update()`` applies it to
  every parameter with a gradient in one fused step.
* ``kvstore`` (note *module-kvstore*): None/'local'/'device' use no store (one process, one
  context, as MXNet); a distributed name ('dist_sync', 'dist_device_sync', 'horovod') or a
  KVStore object is used: ``init_optimizer`` multiplies the batch size in ``rescale_grad``
  by ``num_workers`` for a synchronous distributed store (MXNet's rule, so the gradients
  summed over workers are averaged over the global batch) and inits every parameter on the
  store under its name, which gives every worker rank 0's values; ``update()`` then sums
  the gradients over the workers in place and updates on each worker
  (``update_on_kvstore`` False, agjit's default for its allreduce store), or with
  ``MXNET_UPDATE_ON_KVSTORE=1`` pushes the gradients and pulls the weights of a store that
  holds the optimizer.
* ``save_checkpoint(prefix, epoch, save_optimizer_states)`` writes ``prefix-symbol.json``,
  ``prefix-%04d.params`` and ``prefix-%04d.states``; the states file is agjit's own array
  container (agjit.optimizer note *safe-states*), never a pickle, so loading one cannot run
  code.  ``Module.load`` restores parameters (and states on ``init_optimizer``) unbound.
"""
import warnings

from symbol.base import MXNetError
from .. import ndarray as nd
from .. import optimizer as opt
from ..context import cpu, check_context
from ..initializer import Uniform, InitDesc
from ..io import DataDesc
from ..model import load_checkpoint, save_checkpoint as _save_ck
from .base_module import BaseModule, _check_input_names

__all__ = ["Module"]


def _create_kvstore(kvstore):
    """The store Module uses for ``kvstore`` (None: one process, one context, no store)."""
    from ..kvstore import KVStoreBase, create
    if kvstore is None or isinstance(kvstore, KVStoreBase):
        return kvstore
    if hasattr(kvstore, 'type') and hasattr(kvstore, 'pushpull'):
        return kvstore
    if not isinstance(kvstore, str):
        raise MXNetError("init_optimizer: kvstore must be None, a str or a KVStore, got %s"
                         % type(kvstore).__name__)
    if 'dist' in kvstore.lower() or kvstore.lower() == 'horovod':
        return create(kvstore)
    if 'nccl' in kvstore.lower():
        create(kvstore)         # the clear refusal
    return None


def _desc_list(shapes):
    return [x if isinstance(x, DataDesc) else DataDesc(*x) for x in shapes]


def _check_names_match(data_names, data_shapes, name, throw):
    actual = [x[0] for x in data_shapes]
    if sorted(data_names) != sorted(actual):
        msg = "Data provided by %s_shapes don't match names specified by %s_names (%s vs. %s)" \
              % (name, name, str(data_shapes), str(data_names))
        if throw:
            raise ValueError(msg)
        warnings.warn(msg)


class Module(BaseModule):
    """A module over one Symbol (MXNet's ``mx.mod.Module``)."""

    def __init__(self, symbol, data_names=('data',), label_names=('softmax_label',),
                 logger=None, context=cpu(), work_load_list=None, fixed_param_names=None,
                 state_names=None, group2ctxs=None, compression_params=None):
        import logging
        super(Module, self).__init__(logger=logger or logging)
        contexts = context if isinstance(context, (list, tuple)) else [context]
        for c in contexts:
            check_context(c, "Module")
        if len(contexts) > 1:
            raise MXNetError("Module: agjit runs on one CPU context; got %d contexts %s"
                             % (len(contexts), contexts))
        self._context = contexts
        self._symbol = symbol
        data_names = list(data_names) if data_names is not None else []
        label_names = list(label_names) if label_names is not None else []
        state_names = list(state_names) if state_names is not None else []
        fixed_param_names = list(fixed_param_names) if fixed_param_names is not None else []
        _check_input_names(symbol, data_names, "data", True)
        _check_input_names(symbol, label_names, "label", False)
        _check_input_names(symbol, state_names, "state", True)
        _check_input_names(symbol, fixed_param_names, "fixed_param", True)
        arg_names = symbol.list_arguments()
        input_names = data_names + label_names + state_names
        self._param_names = [x for x in arg_names if x not in input_names]
        self._fixed_param_names = fixed_param_names
        self._aux_names = symbol.list_auxiliary_states()
        self._data_names = data_names
        self._label_names = label_names
        self._state_names = state_names
        self._output_names = symbol.list_outputs()
        self._arg_params = None
        self._aux_params = None
        self._params_dirty = False
        self._optimizer = None
        self._kvstore = None
        self._update_on_kvstore = False
        self._updater = None
        self._preload_opt_states = None
        self._grad_req = None
        self._exec = None
        self._data_shapes = None
        self._label_shapes = None

    @staticmethod
    def load(prefix, epoch, load_optimizer_states=False, **kwargs):
        """A module with the symbol and parameters of checkpoint ``prefix``/``epoch``
        (unbound; ``params_initialized`` is True).  ``load_optimizer_states`` restores
        ``prefix-%04d.states`` when the optimizer is initialised."""
        sym, args, auxs = load_checkpoint(prefix, epoch)
        mod = Module(symbol=sym, **kwargs)
        mod._arg_params = args
        mod._aux_params = auxs
        mod.params_initialized = True
        if load_optimizer_states:
            mod._preload_opt_states = '%s-%04d.states' % (prefix, epoch)
        return mod

    def save_checkpoint(self, prefix, epoch, save_optimizer_states=False, remove_amp_cast=True):
        """Write ``prefix-symbol.json`` and ``prefix-%04d.params`` (and ``.states``)."""
        arg, aux = self.get_params()
        _save_ck(prefix, epoch, self._symbol, arg, aux)
        if save_optimizer_states:
            state_name = '%s-%04d.states' % (prefix, epoch)
            self.save_optimizer_states(state_name)
            self.logger.info('Saved optimizer state to "%s"', state_name)

    # -- properties ----------------------------------------------------------------------------
    @property
    def data_names(self):
        return self._data_names

    @property
    def label_names(self):
        return self._label_names

    @property
    def output_names(self):
        return self._output_names

    @property
    def data_shapes(self):
        assert self.binded
        return self._data_shapes

    @property
    def label_shapes(self):
        assert self.binded
        return self._label_shapes

    @property
    def output_shapes(self):
        assert self.binded
        return list(zip(self._output_names, [o.shape for o in self._exec.outputs]))

    # -- parameters ------------------------------------------------------------------------------
    def get_params(self):
        """``(arg_params, aux_params)``: the module's own dicts, refreshed from the executor."""
        assert self.params_initialized
        if self._params_dirty:
            self._sync_params_from_devices()
        return (self._arg_params, self._aux_params)

    def _sync_params_from_devices(self):
        for name in self._param_names:
            self._exec.arg_dict[name].copyto(self._arg_params[name])
        for name in self._aux_names:
            self._exec.aux_dict[name].copyto(self._aux_params[name])
        self._params_dirty = False

    def init_params(self, initializer=Uniform(0.01), arg_params=None, aux_params=None,
                    allow_missing=False, force_init=False, allow_extra=False):
        """Initialise the parameters from ``arg_params``/``aux_params`` (copied) and
        ``initializer`` (see the module docstring)."""
        if self.params_initialized and not force_init:
            warnings.warn("Parameters already initialized and force_init=False. "
                          "init_params call ignored.", stacklevel=2)
            return
        assert self.binded, 'call bind before initializing the parameters'

        def _impl(desc, arr, cache):
            if cache is not None:
                if desc in cache:
                    src = cache[desc]
                    if src is not arr:
                        if tuple(src.shape) != tuple(arr.shape):
                            raise MXNetError("init_params: %s has shape %s, the symbol needs %s"
                                             % (desc, tuple(src.shape), tuple(arr.shape)))
                        src.copyto(arr)
                elif not allow_missing:
                    raise RuntimeError("%s is not presented" % desc)
                elif initializer is not None:
                    initializer(desc, arr)
            else:
                initializer(desc, arr)

        attrs = self._symbol.attr_dict()
        for name, arr in sorted(self._arg_params.items()):
            _impl(InitDesc(name, attrs.get(name, None)), arr, arg_params)
        for name, arr in sorted(self._aux_params.items()):
            _impl(InitDesc(name, attrs.get(name, None)), arr, aux_params)
        # extra keys in arg_params/aux_params are ignored, as in MXNet
        self.params_initialized = True
        self._params_dirty = False
        self._copy_params_to_exec()

    def set_params(self, arg_params, aux_params, allow_missing=False, force_init=True,
                   allow_extra=False):
        """Set the parameters (``init_params`` without an initializer, forced)."""
        if not allow_missing:
            self.init_params(initializer=None, arg_params=arg_params, aux_params=aux_params,
                             allow_missing=allow_missing, force_init=force_init,
                             allow_extra=allow_extra)
            return
        if self.params_initialized and not force_init:
            warnings.warn("Parameters already initialized and force_init=False. "
                          "set_params call ignored.", stacklevel=2)
            return
        for name, arr in (arg_params or {}).items():
            if name in self._exec.arg_dict:
                arr.copyto(self._exec.arg_dict[name])
        for name, arr in (aux_params or {}).items():
            if name in self._exec.aux_dict:
                arr.copyto(self._exec.aux_dict[name])
        self._params_dirty = True
        self.params_initialized = True

    def _copy_params_to_exec(self):
        for name in self._param_names:
            self._arg_params[name].copyto(self._exec.arg_dict[name])
        for name in self._aux_names:
            self._aux_params[name].copyto(self._exec.aux_dict[name])

    # -- binding ----------------------------------------------------------------------------------
    def _reset_bind(self):
        self.binded = False
        self._exec = None
        self._data_shapes = None
        self._label_shapes = None

    def _parse_data_desc(self, data_shapes, label_shapes):
        data_shapes = _desc_list(data_shapes)
        _check_names_match(self._data_names, data_shapes, 'data', True)
        if label_shapes is not None:
            label_shapes = _desc_list(label_shapes)
            _check_names_match(self._label_names, label_shapes, 'label', False)
        else:
            _check_names_match(self._label_names, [], 'label', False)
        sizes = [(d.name, d.shape[DataDesc.get_batch_axis(d.layout)] if len(d.shape) else None)
                 for d in data_shapes + (label_shapes or [])]
        batch = sizes[0][1] if sizes else None
        for name, size in sizes:
            assert size == batch, ("all data must have the same batch size: batch_size = %s, "
                                   "but %s has shape %s" % (batch, name, dict(
                                       (d.name, d.shape) for d in data_shapes + (label_shapes or []))[name]))
        return data_shapes, label_shapes

    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False,
             force_rebind=False, shared_module=None, grad_req='write'):
        """Allocate the executor for these input shapes (see the module docstring)."""
        if force_rebind:
            self._reset_bind()
        if self.binded:
            self.logger.warning('Already bound, ignoring bind()')
            return
        self.for_training = for_training
        self.inputs_need_grad = inputs_need_grad
        self._grad_req = grad_req
        if not for_training:
            assert not inputs_need_grad
        self._data_shapes, self._label_shapes = self._parse_data_desc(data_shapes, label_shapes)
        shared_exec = shared_module._exec if shared_module is not None else None
        if shared_module is not None:
            assert isinstance(shared_module, Module) and shared_module.binded \
                and shared_module.params_initialized
        self._exec = self._make_exec(self._data_shapes, self._label_shapes, shared_exec)
        self.binded = True
        if shared_module is not None:
            self.params_initialized = True
            self._arg_params = shared_module._arg_params
            self._aux_params = shared_module._aux_params
        elif self.params_initialized:
            self._copy_params_to_exec()
        else:
            assert self._arg_params is None and self._aux_params is None
            self._arg_params = {n: nd.zeros(self._exec.arg_dict[n].shape,
                                            dtype=self._exec.arg_dict[n].dtype)
                                for n in self._param_names}
            self._aux_params = {n: nd.zeros(self._exec.aux_dict[n].shape,
                                            dtype=self._exec.aux_dict[n].dtype)
                                for n in self._aux_names}
        if shared_module is not None and shared_module.optimizer_initialized:
            self.borrow_optimizer(shared_module)

    def _grad_req_of(self, name):
        if not self.for_training:
            return 'null'
        if name in self._param_names:
            if name in self._fixed_param_names:
                return 'null'
            req = self._grad_req
            return req.get(name, 'write') if isinstance(req, dict) else req
        if name in self._data_names:
            return 'write' if self.inputs_need_grad else 'null'
        return 'null'

    def _make_exec(self, data_shapes, label_shapes, shared_exec=None):
        """A new executor for these input shapes; parameter, gradient and aux arrays are taken
        from ``shared_exec`` (a previous binding or the shared module) where shapes agree."""
        shapes = {d.name: tuple(d.shape) for d in data_shapes + (label_shapes or [])}
        types = {d.name: d.dtype for d in data_shapes + (label_shapes or [])}
        sym = self._symbol
        arg_shapes, _, aux_shapes = sym.infer_shape(**shapes)
        if arg_shapes is None:
            raise MXNetError("Module.bind: cannot infer the shapes of all arguments from %s"
                             % shapes)
        type_dict = {k: v for k, v in types.items()}
        arg_types, _, aux_types = sym.infer_type(**type_dict)
        if arg_types is None:
            arg_types = [None] * len(arg_shapes)
            aux_types = [None] * len(aux_shapes)
        args, grads, reqs, auxs = {}, {}, {}, {}
        for name, shape, dt in zip(sym.list_arguments(), arg_shapes, arg_types):
            dt = dt or "float32"
            req = self._grad_req_of(name)
            reqs[name] = req
            old = shared_exec.arg_dict.get(name) if shared_exec is not None else None
            if old is not None and name in self._param_names:
                if tuple(old.shape) != tuple(shape):
                    raise MXNetError(
                        "Module: the inputs %s need parameter %s of shape %s, but it has shape "
                        "%s (only the batch size may change after bind)"
                        % (shapes, name, tuple(shape), tuple(old.shape)))
                args[name] = old
                g = shared_exec.grad_dict.get(name)
                if req != 'null':
                    grads[name] = g if g is not None else nd.zeros(shape, dtype=dt)
                continue
            args[name] = nd.zeros(shape, dtype=dt)
            if req != 'null':
                grads[name] = nd.zeros(shape, dtype=dt)
        for name, shape, dt in zip(sym.list_auxiliary_states(), aux_shapes, aux_types):
            old = shared_exec.aux_dict.get(name) if shared_exec is not None else None
            if old is not None and tuple(old.shape) != tuple(shape):
                raise MXNetError("Module: the inputs %s need auxiliary state %s of shape %s, "
                                 "but it has shape %s" % (shapes, name, tuple(shape),
                                                          tuple(old.shape)))
            auxs[name] = old if old is not None else nd.zeros(shape, dtype=dt or "float32")
        return sym.bind(self._context[0], args=args, args_grad=grads or None, grad_req=reqs,
                        aux_states=auxs)

    def reshape(self, data_shapes, label_shapes=None):
        """Rebind for other input shapes, keeping parameters, gradients and aux states."""
        assert self.binded
        data_shapes, label_shapes = self._parse_data_desc(data_shapes, label_shapes)
        new_exec = self._make_exec(data_shapes, label_shapes, self._exec)
        self._exec = new_exec
        self._data_shapes, self._label_shapes = data_shapes, label_shapes

    # -- optimizer --------------------------------------------------------------------------------
    def init_optimizer(self, kvstore='local', optimizer='sgd',
                       optimizer_params=(('learning_rate', 0.01),), force_init=False):
        """Create the optimizer (``rescale_grad = 1/batch_size`` unless given)."""
        assert self.binded and self.params_initialized
        if self.optimizer_initialized and not force_init:
            self.logger.warning('optimizer already initialized, ignoring...')
            return
        kv = _create_kvstore(kvstore)
        batch_size = self._data_shapes[0].shape[DataDesc.get_batch_axis(self._data_shapes[0].layout)]
        if kv is not None and ('horovod' in kv.type or ('dist' in kv.type
                                                        and '_sync' in kv.type)):
            batch_size *= kv.num_workers
        rescale_grad = 1.0 / batch_size
        idx2name = dict(enumerate(self._param_names))
        if isinstance(optimizer, str):
            optimizer_params = dict(optimizer_params)
            if 'rescale_grad' not in optimizer_params:
                optimizer_params['rescale_grad'] = rescale_grad
            optimizer = opt.create(optimizer, sym=self.symbol, param_idx2name=idx2name,
                                   **optimizer_params)
        else:
            assert isinstance(optimizer, opt.Optimizer)
            if optimizer.rescale_grad != rescale_grad:
                warnings.warn("Optimizer created manually outside Module but rescale_grad is not "
                              "normalized to 1.0/batch_size/num_workers (%s vs. %s). Is this "
                              "intended?" % (optimizer.rescale_grad, rescale_grad), stacklevel=2)
            if not optimizer.idx2name:
                optimizer.idx2name = idx2name.copy()
                optimizer.set_wd_mult({})
        self._optimizer = optimizer
        self._kvstore = kv
        self._update_on_kvstore = False
        self._updater = opt.get_updater(optimizer)
        if kv is not None:
            import os
            self._update_on_kvstore = os.environ.get("MXNET_UPDATE_ON_KVSTORE", "0") == "1" \
                and kv.is_capable('optimizer')
            if self._update_on_kvstore:
                kv.set_optimizer(optimizer)
            names = [n for n in self._param_names if n in self._exec.arg_dict]
            weights = [self._exec.arg_dict[n] for n in names]
            kv.init(names, weights)             # rank 0's values for every worker
            kv.pull(names, out=weights)
            self._params_dirty = True
        self.optimizer_initialized = True
        if self._preload_opt_states is not None:
            self.load_optimizer_states(self._preload_opt_states)
            self._preload_opt_states = None

    def borrow_optimizer(self, shared_module):
        """Use ``shared_module``'s optimizer and updater (states included)."""
        assert shared_module.optimizer_initialized
        self._optimizer = shared_module._optimizer
        self._kvstore = shared_module._kvstore
        self._update_on_kvstore = shared_module._update_on_kvstore
        self._updater = shared_module._updater
        self.optimizer_initialized = True

    def save_optimizer_states(self, fname):
        """Write the optimizer states (agjit's safe array container, written atomically)."""
        assert self.optimizer_initialized
        if self._update_on_kvstore:
            self._kvstore.save_optimizer_states(fname)
            return
        from symbol.base import atomic_write
        atomic_write(fname, [self._updater.get_states()])

    def load_optimizer_states(self, fname):
        """Read states written by :meth:`save_optimizer_states`."""
        assert self.optimizer_initialized
        if self._update_on_kvstore:
            self._kvstore.load_optimizer_states(fname)
            return
        with open(fname, 'rb') as f:
            self._updater.set_states(f.read())

    # -- computation -----------------------------------------------------------------------------
    def forward(self, data_batch, is_train=None):
        """Copy the batch into the executor (reshaping for another batch size) and run it."""
        assert self.binded and self.params_initialized
        curr = tuple(tuple(d.shape) for d in self._data_shapes)
        if getattr(data_batch, "provide_data", None):
            new_d = data_batch.provide_data
        else:
            new_d = [DataDesc(d.name, a.shape, d.dtype, d.layout)
                     for d, a in zip(self._data_shapes, data_batch.data)]
        if curr != tuple(tuple(d[1]) for d in new_d):
            if getattr(data_batch, "provide_label", None):
                new_l = data_batch.provide_label
            elif data_batch.label is not None and self._label_shapes:
                new_l = [DataDesc(d.name, a.shape, d.dtype, d.layout)
                         for d, a in zip(self._label_shapes, data_batch.label)]
            elif self._label_shapes:
                batch = new_d[0][1][0]
                new_l = [DataDesc(d.name, (batch,) + tuple(d.shape[1:]), d.dtype, d.layout)
                         for d in self._label_shapes]
            else:
                new_l = None
            self.reshape(new_d, new_l)
        ex = self._exec
        for desc, arr in zip(self._data_shapes, data_batch.data):
            self._load(ex.arg_dict[desc.name], arr, desc.name)
        if data_batch.label is not None and self._label_shapes:
            for desc, arr in zip(self._label_shapes, data_batch.label):
                self._load(ex.arg_dict[desc.name], arr, desc.name)
        ex.forward(is_train=self.for_training if is_train is None else is_train)

    @staticmethod
    def _load(dst, src, name):
        if tuple(src.shape) != tuple(dst.shape):
            raise MXNetError("Module.forward: input %s has shape %s, the module is bound to %s"
                             % (name, tuple(src.shape), tuple(dst.shape)))
        dst[:] = src

    def backward(self, out_grads=None):
        assert self.binded and self.params_initialized
        self._exec.backward(out_grads=out_grads)

    def update(self):
        """Apply the optimizer to every parameter that has a gradient (one fused step)."""
        assert self.binded and self.params_initialized and self.optimizer_initialized
        self._params_dirty = True
        idx, grads, weights = [], [], []
        for i, name in enumerate(self._param_names):
            g = self._exec.grad_dict.get(name)
            if g is None:
                continue
            idx.append(i)
            grads.append(g)
            weights.append(self._exec.arg_dict[name])
        if not idx:
            return
        kv = self._kvstore
        if kv is not None:
            names = [self._param_names[i] for i in idx]
            if self._update_on_kvstore:
                kv.push(names, grads)
                kv.pull(names, out=weights)
                return
            from ..kvstore import KVStore
            if isinstance(kv, KVStore):
                kv._allreduce_(names, grads)
            else:
                kv.pushpull(names, grads, out=grads)
        self._updater(idx, grads, weights)

    def get_outputs(self, merge_multi_context=True):
        assert self.binded and self.params_initialized
        return list(self._exec.outputs)

    def get_input_grads(self, merge_multi_context=True):
        assert self.binded and self.params_initialized and self.inputs_need_grad
        return [self._exec.grad_dict[name] for name in self._data_names]

    def get_states(self, merge_multi_context=True):
        assert self.binded and self.params_initialized
        return [self._exec.arg_dict[name] for name in self._state_names]

    def set_states(self, states=None, value=None):
        assert self.binded and self.params_initialized
        for i, name in enumerate(self._state_names):
            if states is not None:
                self._exec.arg_dict[name][:] = states[i]
            else:
                self._exec.arg_dict[name][:] = value

    def update_metric(self, eval_metric, labels, pre_sliced=False):
        """Update ``eval_metric`` with the current outputs against ``labels``."""
        labels = labels or []
        label_dict = dict(zip(self._label_names, labels))
        from collections import OrderedDict
        preds = OrderedDict(zip(self._output_names, self._exec.outputs))
        eval_metric.update_dict(OrderedDict((k, label_dict[k]) for k in self._label_names
                                            if k in label_dict), preds)

    def install_monitor(self, mon):
        assert self.binded
        if hasattr(mon, "install"):
            mon.install(self._exec)
