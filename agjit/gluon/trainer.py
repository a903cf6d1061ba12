"""``gluon.Trainer``: applies an optimizer (``agjit.optimizer``) to a set of Parameters.

Note: gluon-trainer
    A step updates every parameter with a gradient (``grad_req != 'null'``) in one fused
    optimizer call (``agjit.optimizer`` note *fused-optimizer-step*), with
    ``optimizer.rescale_grad = scale / batch_size`` and each Parameter's ``lr_mult`` /
    ``wd_mult`` (the optimizer's ``param_dict``).  A parameter whose gradient no backward
    wrote since the last step is *stale*: the step raises MXNet's UserWarning, or with
    ``ignore_stale_grad=True`` skips just that parameter.  A step that updated every
    trainable parameter keeps its plan with, per parameter, the objects it was built from
    (data NDArray, its autograd entry, data and gradient buffers, grad_req); the next step
    checks those identities and the fresh flags in one loop and reuses the plan
    (``_fast_update``), any difference sends it through the general loop above.

Note: trainer-kvstore
    ``kvstore`` None, 'local' or 'device' (one process, one device) uses no store, as
    MXNet with one device: ``allreduce_grads()`` does nothing.  A distributed name
    ('dist_sync', 'dist_device_sync', 'horovod') or a KVStore object is used: once every
    parameter is initialised (at construction, else at the first step) the parameters are
    ``init``-ed on the store under their index, which broadcasts rank 0's values to every
    worker.  Then, with ``update_on_kvstore=False`` (agjit's default: the MPI store is an
    allreduce, like Horovod), ``allreduce_grads`` sums the gradients over the workers in
    place (bucketed, ``agjit.kvstore._mpi`` note *kv-buckets*) and each worker runs the
    fused update; with ``update_on_kvstore=True`` the store holds the optimizer
    (``set_optimizer``) and a step is ``push(grads)`` + ``pull(weights)``.  Both give the
    same numbers.  Gradients are summed, not averaged (MXNet's ``dist_sync``): call
    ``step`` with the global batch size (per-worker batch x ``num_workers``) to train as one
    process on the concatenated batch.  A stale gradient is still reduced (every worker
    must join every collective); ``ignore_stale_grad`` only skips its update.
"""
from symbol.base import MXNetError, atomic_write
from .. import optimizer as opt
from .. import tape as _tape
from ..optimizer import Updater, _FusedPlan
from .parameter import Parameter, ParameterDict

__all__ = ["Trainer"]



def _stale_grad(param, context):
    """MXNet's error for a parameter whose gradient no backward wrote since the last step."""
    return UserWarning(
        "Gradient of Parameter `%s` on context %s has not been updated by "
        "backward since last `step`. This could mean a bug in your model "
        "that made it only use a subset of the Parameters (Blocks) for this "
        "iteration. If you are intentionally only using a subset, call step "
        "with ignore_stale_grad=True to suppress this warning and skip "
        "updating of Parameters with stale gradient" % (param.name, str(context)))

class Trainer(object):
    """Apply an optimizer to a set of Parameters; call :meth:`step` after ``backward``.

    Parameters
    ----------
    params : ParameterDict, dict or list of Parameter
        A dict's parameters are taken in sorted key order (as MXNet does).
    optimizer : str or Optimizer
        Any optimizer of ``mx.optimizer`` by name (``'sgd'``, ``'adam'``, ...).
    optimizer_params : dict, optional
        The optimizer's keyword arguments (must be empty for an Optimizer instance).
    kvstore : None, str or KVStore, default 'device'
        None/'local'/'device': one process, nothing to reduce; 'dist_sync',
        'dist_device_sync', 'horovod' or a KVStore: data-parallel training over the store's
        workers (note *trainer-kvstore*).
    compression_params : dict, optional
        ``{'type': 'fp16'}`` sends gradients as float16 (``set_gradient_compression``).
    update_on_kvstore : bool, optional
        Update on the store (default False: allreduce, then update on each worker).

    >>> net = mx.gluon.nn.Dense(1, in_units=2); net.initialize()
    >>> trainer = mx.gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.1})
    >>> trainer.learning_rate
    0.1
    """

    def __init__(self, params, optimizer, optimizer_params=None, kvstore='device',
                 compression_params=None, update_on_kvstore=None):
        param_list = []
        if isinstance(params, (dict, ParameterDict)):
            for key in sorted(list(params.keys())):
                param_list.append(params[key])
            params = param_list
        if not isinstance(params, (list, tuple)):
            raise ValueError("First argument must be a list or dict of Parameters, "
                             "got %s." % (type(params)))
        self._params = []
        seen = set()
        for param in params:
            if not isinstance(param, Parameter):
                raise ValueError("First argument must be a list or dict of Parameters, "
                                 "got list of %s." % (type(param)))
            if id(param) in seen:
                continue        # a shared parameter is trained once
            seen.add(id(param))
            self._params.append(param)
            param._trainer = self
        self._compression_params = compression_params
        self._kvstore_arg = kvstore
        self._kvstore = None
        self._kv_initialized = False
        self._kv_pending = []           # indices of parameters not yet init-ed on the store
        self._update_on_kvstore_arg = update_on_kvstore
        self._update_on_kvstore = False if update_on_kvstore is None else update_on_kvstore
        optimizer_params = optimizer_params if optimizer_params else {}
        self._init_optimizer(optimizer, optimizer_params)
        self._scale = self._optimizer.rescale_grad
        self._plans = {}
        self._last = None       # (plan, rows) of the last step that updated every trainable one
        if self._uses_store():
            self._init_kvstore()

    # -- the kvstore (note trainer-kvstore) ----------------------------------------------------
    def _uses_store(self):
        from ..kvstore import KVStoreBase
        arg = self._kvstore_arg
        if arg is None or isinstance(arg, KVStoreBase):
            return arg is not None
        if not isinstance(arg, str):
            raise MXNetError("Trainer: kvstore must be None, a str or a KVStore, got %s"
                             % type(arg).__name__)
        return 'dist' in arg.lower() or arg.lower() == 'horovod'

    def _init_kvstore(self):
        """Create (or take) the store, hand it the optimizer when updating on it, and
        init the parameters that are initialised (rank 0's values for everyone)."""
        if self._kv_initialized:
            return
        self._kv_initialized = True
        if not self._uses_store():
            self._kvstore = None
            self._update_on_kvstore = False
            return
        from .. import kvstore as kvs
        arg = self._kvstore_arg
        kv = arg if isinstance(arg, kvs.KVStoreBase) else kvs.create(arg)
        self._kvstore = kv
        self._distributed = 'dist' in kv.type or kv.num_workers > 1
        if self._compression_params:
            kv.set_gradient_compression(self._compression_params)
        uok = self._update_on_kvstore_arg
        if uok and not kv.is_capable(kvs.KVStoreBase.OPTIMIZER):
            raise MXNetError("Trainer: kvstore %s cannot update on the store; use "
                             "update_on_kvstore=False" % kv.type)
        self._update_on_kvstore = bool(uok)
        if self._update_on_kvstore:
            kv.set_optimizer(self._optimizer)
        self._kv_pending = list(range(len(self._params)))
        self._init_params()

    def _init_params(self):
        """``init`` the pending parameters whose data exists, then copy the store's values
        (rank 0's) into them."""
        ready = [i for i in self._kv_pending if self._params[i]._data is not None]
        if not ready:
            return
        kv = self._kvstore
        datas = [self._params[i]._data[0] for i in ready]
        kv.init(ready, datas)
        kv.pull(ready, out=datas)
        self._kv_pending = [i for i in self._kv_pending if i not in set(ready)]

    @property
    def kvstore(self):
        """The store in use (None with one process and no store)."""
        return self._kvstore

    def _init_optimizer(self, optimizer, optimizer_params):
        param_dict = {i: param for i, param in enumerate(self._params)}
        if isinstance(optimizer, opt.Optimizer):
            assert not optimizer_params, \
                "optimizer_params must be None if optimizer is an instance of " \
                "Optimizer instead of str"
            self._optimizer = optimizer
            self._optimizer.param_dict = param_dict
        else:
            self._optimizer = opt.create(optimizer, param_dict=param_dict, **optimizer_params)
        self._updaters = [Updater(self._optimizer)]

    @property
    def optimizer(self):
        return self._optimizer

    @property
    def learning_rate(self):
        if not isinstance(self._optimizer, opt.Optimizer):
            raise UserWarning("Optimizer has to be defined before its learning rate can be "
                              "accessed.")
        return self._optimizer.learning_rate

    def set_learning_rate(self, lr):
        """Set the learning rate (UserWarning when an lr_scheduler is in charge)."""
        if not isinstance(self._optimizer, opt.Optimizer):
            raise UserWarning("Optimizer has to be defined before its learning rate is "
                              "mutated.")
        self._optimizer.set_learning_rate(lr)

    def step(self, batch_size, ignore_stale_grad=False):
        """One optimizer step on every trainable parameter: gradients are rescaled by
        ``1/batch_size`` (times the optimizer's original rescale_grad)."""
        if _tape.state.pending:     # deferred block outputs see the weights they were called
            _tape.flush_pending()   # with (agjit.gluon.block note *composition*)
        self._optimizer.rescale_grad = self._scale / batch_size
        if not self._kv_initialized:
            self._init_kvstore()
        if self._kv_pending:
            self._init_params()
        if self._kvstore is not None:
            if self._update_on_kvstore:
                self._update_on_store(ignore_stale_grad)
                return
            self._allreduce_grads()
        self._update(ignore_stale_grad)

    def allreduce_grads(self):
        """Sum the gradients over the store's workers in place (nothing to do with one
        process and no store); use with :meth:`update` to edit gradients between the two."""
        if not self._kv_initialized:
            self._init_kvstore()
        if self._kv_pending:
            self._init_params()
        assert not (self._kvstore and self._update_on_kvstore), \
            'allreduce_grads() when parameters are updated on kvstore is not supported. ' \
            'Try setting `update_on_kvstore` to False when creating trainer.'
        self._allreduce_grads()

    def _trainable(self):
        idx = []
        for i, param in enumerate(self._params):
            if param._grad_req == 'null':
                continue
            if param._data is None:
                param.list_data()           # raises the not-initialized error
            idx.append(i)
        return idx

    def _allreduce_grads(self):
        kv = self._kvstore
        if kv is None:
            return
        idx = self._trainable()
        if not idx:
            return
        grads = [self._params[i]._grad[0] for i in idx]
        from ..kvstore import KVStore
        if isinstance(kv, KVStore):
            kv._allreduce_(idx, grads)
        else:
            kv.pushpull(idx, grads, out=grads)

    def _update_on_store(self, ignore_stale_grad):
        idx = self._trainable()
        for i in idx:
            param = self._params[i]
            if not param._fresh_grad() and not ignore_stale_grad:
                raise _stale_grad(param, param._data[0].context)
        if not idx:
            return
        kv = self._kvstore
        kv.push(idx, [self._params[i]._grad[0] for i in idx])
        kv.pull(idx, out=[self._params[i]._data[0] for i in idx])
        for i in idx:
            self._params[i]._clear_fresh()

    def update(self, batch_size, ignore_stale_grad=False):
        """The update half of :meth:`step` (after :meth:`allreduce_grads`)."""
        assert not (self._kvstore and self._update_on_kvstore), \
            'update() when parameters are updated on kvstore is not supported. Try ' \
            'setting `update_on_kvstore` to False when creating trainer.'
        if _tape.state.pending:
            _tape.flush_pending()
        self._optimizer.rescale_grad = self._scale / batch_size
        if not self._kv_initialized:
            self._init_kvstore()
        self._update(ignore_stale_grad)

    def _update(self, ignore_stale_grad=False):
        last = self._last
        if last is not None and self._fast_update(last):
            return
        indices = []
        keys = []           # what the fused plan's addresses depend on
        datas = []
        for i, param in enumerate(self._params):
            if param._grad_req == 'null':
                continue
            dl = param._data
            if dl is None:
                param.list_data()           # raises the not-initialized error
            data = dl[0]
            e = data._entry
            if e is None or not e[0].fresh:
                if not ignore_stale_grad:
                    # MXNet 1.9.1 has already marked the parameters before this one as
                    # consumed (not fresh) when it raises, without updating them
                    for k in range(0, len(keys), 3):
                        keys[k][0].fresh = False
                    raise _stale_grad(param, data.context)
                continue
            indices.append(i)
            datas.append(data)
            keys += (e, data._data, param._grad[0]._data)
        if not indices:
            return
        key = tuple(indices)
        upd = self._updaters[0]
        optim = self._optimizer
        plan = self._plans.get(key)
        if plan is None or not plan.same(keys, upd._version, optim.fused):
            upd._ensure_states(indices, datas)
            params = self._params
            plan = _FusedPlan(optim, indices, [d._data for d in datas],
                              [params[i]._grad[0]._data for i in indices],
                              [upd.states[i] for i in indices], keys, upd._version)
            if len(self._plans) > 16:
                self._plans.clear()
            self._plans[key] = plan
        optim._fused_update(plan)
        for k in range(0, len(keys), 3):
            keys[k][0].fresh = False
        params = self._params
        if len(indices) == sum(1 for p in params if p._grad_req != 'null'):
            # every trainable parameter was updated: the next step may check this plan's
            # objects directly (_fast_update); a null one is a row without data
            rows = {i: (params[i], datas[j], *keys[3 * j:3 * j + 3])
                    for j, i in enumerate(indices)}
            self._last = (plan, [rows.get(i, (p, None, None, None, None))
                                 for i, p in enumerate(params)])
        else:
            self._last = None

    def _fast_update(self, last):
        """The common step (note *gluon-trainer*): the parameters of the last step's plan
        train, each has a fresh gradient, and none of the arrays, buffers or autograd
        entries the plan was built from changed -- then update with it and return True;
        else False (the general loop decides)."""
        plan, rows = last
        optim = self._optimizer
        if plan.version != self._updaters[0]._version or plan.fused != optim.fused:
            return False
        try:
            for param, data, e, w, g in rows:
                if data is None:
                    if param._grad_req != 'null':
                        return False
                elif param._grad_req == 'null' or param._data[0] is not data or \
                        data._entry is not e or not e[0].fresh or data._data is not w or \
                        param._grad[0]._data is not g:
                    return False
        except TypeError:           # a parameter lost its data or gradient
            return False
        optim._fused_update(plan)
        for _p, data, e, _w, _g in rows:
            if data is not None:
                e[0].fresh = False
        return True

    def save_states(self, fname):
        """Save the optimizer and its states (momentum, ...) to ``fname`` (atomically)."""
        assert self._optimizer is not None
        if not self._kv_initialized:
            self._init_kvstore()
        if self._kvstore is not None and self._update_on_kvstore:
            self._kvstore.save_optimizer_states(fname, dump_optimizer=True)
            return
        atomic_write(fname, [self._updaters[0].get_states(dump_optimizer=True)])

    def load_states(self, fname):
        """Load what :meth:`save_states` wrote; training continues exactly where it was."""
        if not self._kv_initialized:
            self._init_kvstore()
        if self._kvstore is not None and self._update_on_kvstore:
            self._kvstore.load_optimizer_states(fname)
            self._optimizer = self._kvstore._updater.optimizer
            self._optimizer.param_dict = {i: param for i, param in enumerate(self._params)}
            self._plans = {}
            self._last = None
            return
        with open(fname, 'rb') as f:
            states = f.read()
        for updater in self._updaters:
            updater.set_states(states)
            updater.optimizer = self._updaters[0].optimizer
        self._optimizer = self._updaters[0].optimizer
        self._optimizer.param_dict = {i: param for i, param in enumerate(self._params)}
        self._plans = {}
        self._last = None
