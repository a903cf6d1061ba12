"""``gluon.Trainer``: applies an optimizer (``agjit.optimizer``) to a set of Parameters.

Note: gluon-trainer
    One process, one device: ``kvstore`` None/'local'/'device' are accepted and there is
    nothing to reduce, so ``allreduce_grads()`` does nothing and ``update()`` is ``step()``
    without it.  A step updates every parameter with a gradient (``grad_req != 'null'``) in
    one fused optimizer call (``agjit.optimizer`` note *fused-optimizer-step*), with
    ``optimizer.rescale_grad = scale / batch_size`` and each Parameter's ``lr_mult`` /
    ``wd_mult`` (the optimizer's ``param_dict``).  A parameter whose gradient no backward
    wrote since the last step is *stale*: the step raises MXNet's UserWarning, or with
    ``ignore_stale_grad=True`` skips just that parameter.
"""
from symbol.base import MXNetError, atomic_write
from .. import optimizer as opt
from ..optimizer import Updater, _FusedPlan
from .parameter import Parameter, ParameterDict

__all__ = ["Trainer"]


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
    kvstore : None, 'local', 'device' (or a KVStore), default 'device'
        Accepted; one process and one device, so there is nothing to reduce.
    compression_params, update_on_kvstore
        Accepted for compatibility.

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
        if isinstance(kvstore, str) and kvstore.startswith('dist'):
            raise MXNetError("Trainer: kvstore %r needs several processes; agjit trains in "
                             "one process (use None, 'local' or 'device')" % kvstore)
        self._kvstore_arg = kvstore
        self._kvstore = None
        self._update_on_kvstore = False if update_on_kvstore is None else update_on_kvstore
        optimizer_params = optimizer_params if optimizer_params else {}
        self._init_optimizer(optimizer, optimizer_params)
        self._scale = self._optimizer.rescale_grad
        self._plans = {}

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
        self._optimizer.rescale_grad = self._scale / batch_size
        self.allreduce_grads()
        self._update(ignore_stale_grad)

    def allreduce_grads(self):
        """Reduce gradients over devices: nothing to do on one device (use with
        :meth:`update` to edit gradients between the two)."""
        assert not (self._kvstore and self._update_on_kvstore), \
            'allreduce_grads() when parameters are updated on kvstore is not supported. ' \
            'Try setting `update_on_kvstore` to False when creating trainer.'

    def update(self, batch_size, ignore_stale_grad=False):
        """The update half of :meth:`step` (after :meth:`allreduce_grads`)."""
        assert not (self._kvstore and self._update_on_kvstore), \
            'update() when parameters are updated on kvstore is not supported. Try ' \
            'setting `update_on_kvstore` to False when creating trainer.'
        self._optimizer.rescale_grad = self._scale / batch_size
        self._update(ignore_stale_grad)

    def _update(self, ignore_stale_grad=False):
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
                    raise UserWarning(
                        "Gradient of Parameter `%s` on context %s has not been updated by "
                        "backward since last `step`. This could mean a bug in your model "
                        "that made it only use a subset of the Parameters (Blocks) for this "
                        "iteration. If you are intentionally only using a subset, call step "
                        "with ignore_stale_grad=True to suppress this warning and skip "
                        "updating of Parameters with stale gradient"
                        % (param.name, str(data.context)))
                continue
            indices.append(i)
            datas.append(data)
            keys.append(e)
            keys.append(data._data)
            keys.append(param._grad[0]._data)
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

    def save_states(self, fname):
        """Save the optimizer and its states (momentum, ...) to ``fname`` (atomically)."""
        assert self._optimizer is not None
        atomic_write(fname, [self._updaters[0].get_states(dump_optimizer=True)])

    def load_states(self, fname):
        """Load what :meth:`save_states` wrote; training continues exactly where it was."""
        with open(fname, 'rb') as f:
            states = f.read()
        for updater in self._updaters:
            updater.set_states(states)
            updater.optimizer = self._updaters[0].optimizer
        self._optimizer = self._updaters[0].optimizer
        self._optimizer.param_dict = {i: param for i, param in enumerate(self._params)}
        self._plans = {}
