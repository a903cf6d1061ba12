"""``mx.optimizer``: MXNet 1.x optimizers, the Updater and a gluon-style Trainer.

Every update writes in place into the parameters' buffers, so a parameter stays the same
NDArray object (``mx.jit`` captures parameters by reference).  Updating a list of parameters
(``Updater`` with lists, ``Trainer.step``) runs ONE compiled Numba call per dtype group for
all of them (see agjit._optimizer_kernels, note *fused-optimizer-step*: SGD, Adam, NAG,
RMSProp, AdaGrad, AdaDelta, Adamax, Signum, FTML, Ftrl, DCASGD); parameters that are not
C-contiguous float32/float64, or whose states the kernel would not read as it expects, take
the NumPy path, which computes the same numbers bit for bit.

>>> import agjit as mx
>>> w = mx.nd.array([1.0, 2.0]); w.attach_grad()
>>> with mx.autograd.record():
...     loss = (w * w).sum()
>>> loss.backward()
>>> trainer = mx.Trainer([w], 'sgd', {'learning_rate': 0.1})
>>> trainer.step(1)
>>> w.asnumpy().tolist()
[0.800000011920929, 1.600000023841858]

Numerics (MXNet 1.9.1): SGD over a list follows ``multi_sgd_(mom_)update``
(``mom = momentum*mom - lr*wd*w - lr*rescale*grad; w += mom``, the gradient term being
``lr*clip(rescale*grad, c)`` when clipping); a single-index ``update`` without momentum follows
``sgd_update`` (``w = (1 - lr*wd)*w - lr*rescale*grad``).  Adam follows ``adam_update`` with
``lr_t = lr*sqrt(1-beta2^t)/(1-beta1^t)`` and ``grad = rescale*grad + wd*w`` clipped after the
weight decay.  Hyperparameters are rounded to float32 as MXNet's C-float op parameters are.

Threads: an optimizer's update counts, its Updater's states and fused plans, and the scratch
arrays of the compiled kernels are shared state, so every update through one optimizer
(``Optimizer.update``, ``Updater.__call__``, ``Trainer.step``) holds that optimizer's lock:
updates from several threads run one at a time, each with the numbers of a serial run.
"""
import math
import operator
import threading
import warnings

import numpy as np

from symbol.base import MXNetError
from .base import register_class
from .ndarray.ndarray import NDArray
from .lr_scheduler import LRScheduler

__all__ = ["Optimizer", "SGD", "Adam", "NAG", "RMSProp", "AdaGrad", "AdaDelta", "Adamax",
           "Nadam", "Signum", "FTML", "Ftrl", "SGLD", "DCASGD", "LAMB", "Updater", "create",
           "register", "get_updater", "Trainer"]

_data_of = operator.attrgetter("_data")
_entry_of = operator.attrgetter("_entry")
_is = operator.is_

_kernels = [None]          # the lazily imported agjit._optimizer_kernels, or False


def _kernel_module():
    k = _kernels[0]
    if k is None:
        try:
            from .compiler.import_guard import first_import
            first_import(("numba", "agjit._optimizer_kernels"))   # note *import-race*
            from . import _optimizer_kernels as k
        except ImportError:     # no Numba: NumPy updates only
            k = False
        _kernels[0] = k
    return k


_LOCK_INIT = threading.Lock()


def _lock_of(opt):
    """The re-entrant lock serialising updates through optimizer ``opt`` (created on first
    use, so subclasses that skip ``Optimizer.__init__`` and unpickled optimizers get one)."""
    lk = opt.__dict__.get("_lock")
    if lk is None:
        with _LOCK_INIT:
            lk = opt.__dict__.setdefault("_lock", threading.RLock())
    return lk


def _f32(x, T):
    """A hyperparameter as MXNet's op sees it: a C float, then the parameter dtype."""
    return T(np.float32(x))


def _clip(x, c):
    # mshadow_op::clip: x > c -> c, x < -c -> -c, NaN passes through (as np.clip)
    return np.clip(x, -c, c)


class Optimizer(object):
    """The base class of optimizers (MXNet 1.x ``mx.optimizer.Optimizer``).

    Parameters
    ----------
    rescale_grad : float
        Multiplies the gradient before the update (``1/batch_size`` in a Trainer).
    param_idx2name : dict of int to str, optional
        Parameter names; when given, parameters whose name ends neither in ``_weight`` nor
        ``_gamma`` get a weight-decay multiplier of 0 (MXNet's rule).
    wd : float
        Weight decay (L2) coefficient.
    clip_gradient : float, optional
        Clip the rescaled gradient to ``[-clip_gradient, clip_gradient]`` (falsy: no clip).
    learning_rate : float, optional
        Defaults to 0.01 when there is no ``lr_scheduler``.
    lr_scheduler : LRScheduler, optional
        Called with ``num_update``; ``learning_rate`` overrides its ``base_lr``.
    sym : Symbol, optional
        ``__lr_mult__`` / ``__wd_mult__`` attrs of its arguments set the multipliers.
    begin_num_update : int
        The update count to start from.
    multi_precision : bool
        Accepted for compatibility; updates always run in the parameter dtype.
    param_dict : dict of int to object with ``lr_mult``/``wd_mult``, optional
    """

    opt_registry = {}
    #: run list updates through the compiled multi-parameter kernels (False: NumPy only)
    fused = True
    _kernel = None          # name of the compiled kernel in agjit._optimizer_kernels

    def __init__(self, rescale_grad=1., param_idx2name=None, wd=0., clip_gradient=None,
                 learning_rate=None, lr_scheduler=None, sym=None, begin_num_update=0,
                 multi_precision=False, param_dict=None):
        self.rescale_grad = rescale_grad
        self.lr = learning_rate
        self.lr_scheduler = lr_scheduler
        if lr_scheduler is not None and not isinstance(lr_scheduler, LRScheduler) \
                and not callable(lr_scheduler):
            raise MXNetError("optimizer: lr_scheduler must be an LRScheduler, got %s"
                             % type(lr_scheduler).__name__)
        if self.lr_scheduler is None and learning_rate is None:
            self.lr = 0.01
        if lr_scheduler is not None and learning_rate is not None:
            if lr_scheduler.base_lr != learning_rate:
                print(UserWarning("learning rate from ``lr_scheduler`` has been "
                                  "overwritten by ``learning_rate`` in optimizer."))
                lr_scheduler.base_lr = learning_rate

        self.wd = wd
        self.lr_mult = {}
        self.wd_mult = {}
        self.begin_num_update = begin_num_update
        self.num_update = begin_num_update
        self._index_update_count = {}
        self.clip_gradient = clip_gradient
        self.multi_precision = multi_precision
        self.aggregate_num = 4

        if param_idx2name is None:
            param_idx2name = {}
        assert isinstance(param_idx2name, dict), \
            'param_idx2name should be a dict of param indexes to names.'
        self.idx2name = param_idx2name.copy()
        self.sym_info = (sym.attr_dict(), sym.list_arguments()) if sym is not None else ()
        self.param_dict = param_dict if param_dict else {}

        self.set_lr_mult({})
        self.set_wd_mult({})

    # -- registry ------------------------------------------------------------------------------
    @staticmethod
    def register(klass):
        """Register an optimizer class under its lower-cased class name.

        >>> @mx.optimizer.register
        ... class MyOpt(mx.optimizer.Optimizer):
        ...     pass
        >>> type(mx.optimizer.create('myopt')).__name__
        'MyOpt'
        """
        return register_class(Optimizer.opt_registry, klass, "optimizer")

    @staticmethod
    def create_optimizer(name, **kwargs):
        """Instantiate the optimizer registered as ``name`` (case-insensitive)."""
        if not isinstance(name, str):
            raise TypeError("optimizer name must be a string, got %s" % type(name).__name__)
        if name.lower() in Optimizer.opt_registry:
            return Optimizer.opt_registry[name.lower()](**kwargs)
        raise ValueError('Cannot find optimizer %s' % name)

    # -- learning rate and multipliers -------------------------------------------------------
    @property
    def learning_rate(self):
        if self.lr_scheduler is not None:
            return self.lr_scheduler(self.num_update)
        return self.lr

    def set_learning_rate(self, lr):
        """Set the learning rate; refused (UserWarning) when an lr_scheduler is in charge."""
        if self.lr_scheduler is not None:
            raise UserWarning("LRScheduler of the optimizer has already been defined. Note that "
                              "set_learning_rate can mutate the value of the learning rate of "
                              "the optimizer only when the LRScheduler of the optimizer is "
                              "undefined.")
        self.lr = lr

    def set_lr_scale(self, args_lrscale):  # pylint: disable=unused-argument
        """[DEPRECATED] use set_lr_mult."""
        raise DeprecationWarning

    def set_lr_mult(self, args_lr_mult):
        """Per-parameter learning-rate multipliers, keyed by index or by name."""
        self.lr_mult = {}
        if self.sym_info:
            attr, arg_names = self.sym_info
            for name in arg_names:
                if name in attr and '__lr_mult__' in attr[name]:
                    self.lr_mult[name] = float(attr[name]['__lr_mult__'])
        self.lr_mult.update(args_lr_mult)

    @staticmethod
    def _decayed_by_default(name):
        """Whether a named parameter keeps weight decay unless told otherwise."""
        return name.endswith('_weight') or name.endswith('_gamma')

    def set_wd_mult(self, args_wd_mult):
        """Per-parameter weight-decay multipliers, keyed by index or by name.  With
        ``param_idx2name``, names not ending in ``_weight``/``_gamma`` default to 0."""
        self.wd_mult = {}
        for n in self.idx2name.values():
            if not self._decayed_by_default(n):
                self.wd_mult[n] = 0.0
        if self.sym_info:
            attr, arg_names = self.sym_info
            for name in arg_names:
                if name in attr and '__wd_mult__' in attr[name]:
                    self.wd_mult[name] = float(attr[name]['__wd_mult__'])
        self.wd_mult.update(args_wd_mult)

    def _lr_mult_of(self, index):
        if index in self.param_dict:
            return self.param_dict[index].lr_mult
        if index in self.lr_mult:
            return self.lr_mult[index]
        if index in self.idx2name:
            return self.lr_mult.get(self.idx2name[index], 1.0)
        return 1.0

    def _wd_mult_of(self, index):
        if index in self.param_dict:
            return self.param_dict[index].wd_mult
        if index in self.wd_mult:
            return self.wd_mult[index]
        if index in self.idx2name:
            return self.wd_mult.get(self.idx2name[index], 1.0)
        return 1.0

    def _base_lr(self):
        if self.lr_scheduler is not None:
            return self.lr_scheduler(self.num_update)
        return self.lr

    def _get_lr(self, index):
        """The learning rate of parameter ``index`` (scheduler or lr, times its lr_mult)."""
        return self._base_lr() * self._lr_mult_of(index)

    def _get_lrs(self, indices):
        base = self._base_lr()
        return [base * self._lr_mult_of(i) for i in indices]

    def _get_wd(self, index):
        return self.wd * self._wd_mult_of(index)

    def _get_wds(self, indices):
        return [self.wd * self._wd_mult_of(i) for i in indices]

    def _update_count(self, index):
        """Count one more update of ``index`` (an int or a list); ``num_update`` is the max."""
        if not isinstance(index, (list, tuple)):
            index = [index]
        if not index:
            return
        counts = self._index_update_count
        old = list(map(counts.get, index))
        first = old[0]
        if old.count(first) == len(old):
            # the common case (every index updated together): C-level loops only
            top = (self.begin_num_update if first is None else first) + 1
            counts.update(dict.fromkeys(index, top))
        else:
            begin = self.begin_num_update
            new = [(begin if c is None else c) + 1 for c in old]
            counts.update(zip(index, new))
            top = max(new)
        if top > self.num_update:
            self.num_update = top

    def _mult_signature(self):
        """What the per-parameter multipliers depend on (compared at every fused step)."""
        if self.param_dict:
            # multipliers live on mutable objects (gluon Parameters): compare their values
            return tuple([(p.lr_mult, p.wd_mult) for p in self.param_dict.values()])
        if not (self.lr_mult or self.wd_mult or self.idx2name):
            return ()
        return (tuple(self.lr_mult.items()), tuple(self.wd_mult.items()),
                tuple(self.idx2name.items()))

    # -- states and updates --------------------------------------------------------------------
    def create_state(self, index, weight):
        """The auxiliary state of ``weight`` (None when the optimizer keeps none)."""
        return None

    def create_state_multi_precision(self, index, weight):
        if weight.dtype == np.float16 and not self.multi_precision:
            warnings.warn("Accumulating with float16 in optimizer can lead to poor accuracy or "
                          "slow convergence. Consider using multi_precision=True option of the "
                          "optimizer")
        return self.create_state(index, weight)

    def _state_buffers(self, state):
        """The NumPy buffers of a state, in kernel row order (rows 2 and 3)."""
        if state is None:
            return ()
        if isinstance(state, NDArray):
            return (state._data,)
        return tuple(s._data for s in state)

    def update(self, index, weight, grad, state):
        """Update ``weight`` in place from ``grad`` and ``state``.

        ``index``, ``weight``, ``grad`` and ``state`` may be lists (one aggregated update,
        as MXNet's Updater does); a single int index uses the single-parameter formula.
        """
        with _lock_of(self):
            self._do_update(index, weight, grad, state)

    def _do_update(self, index, weight, grad, state):
        multi = isinstance(index, (list, tuple))
        if multi:
            indices, weights, grads, states = list(index), list(weight), list(grad), list(state)
            if not (len(indices) == len(weights) == len(grads) == len(states)):
                raise MXNetError("%s.update: got %d indices, %d weights, %d grads and %d states"
                                 % (type(self).__name__, len(indices), len(weights),
                                    len(grads), len(states)))
        else:
            indices, weights, grads, states = [index], [weight], [grad], [state]
        checked = [self._check_pair(i, w, g) for i, w, g in zip(indices, weights, grads)]
        self._update_count(indices)
        lrs = self._get_lrs(indices)
        wds = self._get_wds(indices)
        for i, (w, g), s, lr, wd in zip(indices, checked, states, lrs, wds):
            self._np_update(i, w, g, self._state_buffers(s), lr, wd, multi)

    def update_multi_precision(self, index, weight, grad, state):
        """Same as :meth:`update` (multi_precision is accepted but not used)."""
        self.update(index, weight, grad, state)

    def _check_pair(self, index, weight, grad):
        name = type(self).__name__
        if not isinstance(weight, NDArray) or not isinstance(grad, NDArray):
            raise MXNetError("%s.update: weight and grad of parameter %r must be NDArrays, got "
                             "%s and %s" % (name, index, type(weight).__name__,
                                            type(grad).__name__))
        w, g = weight._data, grad._data
        if w.shape != g.shape:
            raise MXNetError("%s.update: parameter %r has shape %s but its gradient has shape %s"
                             % (name, index, w.shape, g.shape))
        if w.dtype.kind != 'f':
            raise MXNetError("%s.update: parameter %r has dtype %s; optimizers update float16, "
                             "float32 or float64 parameters" % (name, index, w.dtype))
        if g.dtype != w.dtype:
            g = g.astype(w.dtype)
        return w, g

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        raise NotImplementedError()

    # -- the fused step (see agjit._optimizer_kernels, note fused-optimizer-step) --------------
    def _kernel_states(self):
        """The state counts the compiled kernel reads (None: any); a parameter whose state
        has another count takes the NumPy path (which says what is wrong), so a kernel never
        reads an address row that holds no buffer."""
        return None

    def _fusable(self, w, g, sbufs):
        if self._kernel is None or not self.fused or not _kernel_module():
            return False
        allowed = self._kernel_states()
        if allowed is not None and len(sbufs) not in allowed:
            return False
        dt = w.dtype
        if dt != np.float32 and dt != np.float64:
            return False
        for a in (w, g) + tuple(sbufs):
            if a.dtype != dt or a.shape != w.shape or not a.flags.c_contiguous \
                    or not a.flags.writeable:
                return False
        return True

    def _fused_update(self, plan):
        """Update every parameter of ``plan`` (a :class:`_FusedPlan`) in one step."""
        self._update_count(plan.indices)
        lr = self._base_lr()
        sig = self._mult_signature()
        if sig is None or sig != plan.mult_sig:
            plan.set_mults(self, sig)
        wd = self.wd
        allowed = self._kernel_states()
        if allowed is not None:
            # a hyperparameter changed since the plan was made (RMSProp.centered): a group
            # whose state count the kernel would misread goes to the NumPy path
            for grp in [g for g in plan.groups if g.nstates not in allowed]:
                plan.demote(grp)
        if plan.groups:
            self._prepare_step(plan)
            self._call_kernels(_kernels[0], plan.groups, lr, wd)
        if plan.slow:
            lrm, wdm = plan.lr_mult, plan.wd_mult
            for pos, index, w, g, sbufs in plan.slow:
                self._np_update(index, w, g, sbufs, lr * lrm[pos], wd * wdm[pos], True)

    def _prepare_step(self, plan):
        pass

    def _call_kernels(self, K, groups, lr, wd):
        """Run the compiled kernel (module ``K``) once per dtype group."""
        raise NotImplementedError()

    def _clip_value(self):
        return float(self.clip_gradient) if self.clip_gradient else -1.0

    def __getstate__(self):
        ret = self.__dict__.copy()
        del ret['param_dict']
        ret.pop('_lock', None)
        return ret

    def __setstate__(self, state):
        self.__dict__ = state
        self.param_dict = {}


register = Optimizer.register
create = Optimizer.create_optimizer


@register
class SGD(Optimizer):
    """SGD with momentum and weight decay (MXNet 1.x).

    Without momentum (list update)::

        w += -(lr*wd)*w - lr*clip(rescale_grad*grad, clip_gradient)

    With momentum::

        mom = momentum*mom - (lr*wd)*w - lr*clip(rescale_grad*grad, clip_gradient)
        w += mom

    Parameters
    ----------
    momentum : float
        The momentum (a state is kept when it is not 0; it is used when it is > 0).
    lazy_update : bool
        Accepted for compatibility (no sparse storage here).

    >>> opt = mx.optimizer.create('sgd', learning_rate=0.1, momentum=0.9)
    """
    _kernel = "sgd_mom_multi"

    def __init__(self, momentum=0.0, lazy_update=True, **kwargs):
        super(SGD, self).__init__(**kwargs)
        self.momentum = momentum
        self.lazy_update = lazy_update

    def create_state(self, index, weight):
        if self.momentum != 0.0:
            return NDArray(np.zeros(weight.shape, dtype=weight._data.dtype))
        return None

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        T = w.dtype.type
        r = _f32(self.rescale_grad, T)
        c = _f32(self._clip_value(), T)
        lrk = _f32(lr, T)
        lw = lrk * _f32(wd, T)
        use_mom = bool(sbufs) and self.momentum > 0
        if c >= 0:
            term = lrk * _clip(r * g, c)
        else:
            term = (lrk * r) * g
        if use_mom:
            m = sbufs[0]
            v = _f32(self.momentum, T) * m - lw * w - term
            m[...] = v
            w += v
        elif multi:
            w += (-(lw * w) - term)
        else:
            w[...] = (T(1) - lw) * w - term

    def _call_kernels(self, K, groups, lr, wd):
        clip = self._clip_value()
        mom = self.momentum
        for grp in groups:
            if grp.has_state and mom > 0:
                K.sgd_mom_multi(grp.ptrs, lr, grp.lr_mult, wd, grp.wd_mult, mom,
                                self.rescale_grad, clip, grp.s32, grp.sT)
            else:
                K.sgd_multi(grp.ptrs, lr, grp.lr_mult, wd, grp.wd_mult, self.rescale_grad,
                            clip, grp.s32, grp.sT)


@register
class Adam(Optimizer):
    """Adam (MXNet 1.x): bias correction folded into the learning rate.

    ::

        lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)
        g = clip(rescale_grad*grad + wd*w, clip_gradient)
        mean = beta1*mean + (1-beta1)*g
        var = beta2*var + (1-beta2)*g*g
        w -= lr_t * mean / (sqrt(var) + epsilon)

    ``t`` counts the updates of each parameter.  ``lazy_update`` is accepted and ignored.
    """
    _kernel = "adam_multi"

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 lazy_update=True, **kwargs):
        super(Adam, self).__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.lazy_update = lazy_update

    def create_state(self, index, weight):
        dt = weight._data.dtype
        return (NDArray(np.zeros(weight.shape, dtype=dt)),    # mean
                NDArray(np.zeros(weight.shape, dtype=dt)))    # variance

    def _kernel_states(self):
        return (2,)

    def _coef(self, t):
        return math.sqrt(1. - self.beta2 ** t) / (1. - self.beta1 ** t)

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        T = w.dtype.type
        t = self._index_update_count[index]
        lrk = _f32(lr * self._coef(t), T)
        r = _f32(self.rescale_grad, T)
        c = _f32(self._clip_value(), T)
        b1 = _f32(self.beta1, T)
        b2 = _f32(self.beta2, T)
        eps = _f32(self.epsilon, T)
        mean, var = sbufs
        x = g * r + w * _f32(wd, T)
        if c >= 0:
            x = _clip(x, c)
        mean[...] = b1 * mean + (T(1) - b1) * x
        var[...] = b2 * var + (T(1) - b2) * x * x
        w -= lrk * mean / (np.sqrt(var) + eps)

    def _prepare_step(self, plan):
        counts = self._index_update_count
        ts = list(map(counts.__getitem__, plan.indices))
        if ts and ts.count(ts[0]) == len(ts):
            coef = self._coef(ts[0])
            for grp in plan.groups:
                grp.coef.fill(coef)
        else:
            for grp in plan.groups:
                grp.coef[:] = [self._coef(ts[p]) for p in grp.positions]

    def _call_kernels(self, K, groups, lr, wd):
        clip = self._clip_value()
        for grp in groups:
            K.adam_multi(grp.ptrs, lr, grp.lr_mult, grp.coef, wd, grp.wd_mult, self.beta1,
                         self.beta2, self.epsilon, self.rescale_grad, clip, grp.s32, grp.sT)


def _zeros_like(weight):
    return NDArray(np.zeros(weight.shape, dtype=weight._data.dtype))


def _group_counts(opt, plan, grp):
    """The update count t of each column of ``grp``."""
    counts = opt._index_update_count
    return [counts[plan.indices[p]] for p in grp.positions]


def _has_state(grp, opt):
    return grp.has_state and opt.momentum > 0


def _rescaled(opt, g, T, w=None, wd=None):
    """``clip(rescale_grad*g [+ wd*w], clip_gradient)`` in the parameter dtype."""
    x = g * _f32(opt.rescale_grad, T)
    if w is not None:
        x = x + _f32(wd, T) * w
    c = _f32(opt._clip_value(), T)
    if c >= 0:
        x = _clip(x, c)
    return x


@register
class NAG(Optimizer):
    """Nesterov accelerated gradient as MXNet 1.9.1's ``nag_mom_update`` computes it when
    its output is the weight (as the Updater calls it)::

        g = clip(rescale_grad*grad, clip_gradient)
        w_new = w + momentum*(momentum*mom - lr*(g + wd*w)) - lr*(g + wd*w)
        mom = momentum*mom - lr*(g + wd*w_new)      # reads the already updated weight

    Without momentum it is plain SGD.
    """

    _kernel = "nag_multi"

    def __init__(self, momentum=0.0, **kwargs):
        super(NAG, self).__init__(**kwargs)
        self.momentum = momentum

    def _call_kernels(self, K, groups, lr, wd):
        for grp in groups:
            K.nag_multi(grp.ptrs, lr, grp.lr_mult, wd, grp.wd_mult, self.momentum,
                        self.rescale_grad, self._clip_value(), _has_state(grp, self),
                        grp.s32, grp.sT)

    def create_state(self, index, weight):
        return _zeros_like(weight) if self.momentum != 0.0 else None

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        T = w.dtype.type
        x = _rescaled(self, g, T)
        lrk, wdk = _f32(lr, T), _f32(wd, T)
        if sbufs and self.momentum > 0:
            m = sbufs[0]
            mu = _f32(self.momentum, T)
            gw = x + wdk * w
            w[...] = w + mu * (mu * m - lrk * gw) - lrk * gw
            m[...] = mu * m - lrk * (x + wdk * w)
        else:
            w[...] = (T(1) - lrk * wdk) * w - lrk * x


@register
class RMSProp(Optimizer):
    """RMSProp (MXNet 1.x ``rmsprop_update``; ``centered=True``: ``rmspropalex_update``)::

        g = clip(rescale_grad*grad + wd*w, clip_gradient)
        n = (1-gamma1)*g*g + gamma1*n
        w -= lr*g/sqrt(n + epsilon)                       # centered=False
        G = (1-gamma1)*g + gamma1*G                       # centered=True:
        delta = gamma2*delta - lr*g/sqrt(n - G*G + epsilon)
        w += delta

    ``clip_weights`` clips the result to [-clip_weights, clip_weights].
    """

    def __init__(self, learning_rate=0.001, gamma1=0.9, gamma2=0.9, epsilon=1e-8,
                 centered=False, clip_weights=None, **kwargs):
        super(RMSProp, self).__init__(learning_rate=learning_rate, **kwargs)
        self.gamma1 = gamma1
        self.gamma2 = gamma2
        self.centered = centered
        self.epsilon = epsilon
        self.clip_weights = clip_weights

    _kernel = "rmsprop_multi"

    def _kernel_states(self):
        return (3,) if self.centered else (1,)

    def _call_kernels(self, K, groups, lr, wd):
        cw = float(self.clip_weights) if self.clip_weights else -1.0
        for grp in groups:
            K.rmsprop_multi(grp.ptrs, lr, grp.lr_mult, wd, grp.wd_mult, self.gamma1,
                            self.gamma2, self.epsilon, self.rescale_grad, self._clip_value(),
                            bool(self.centered), cw, grp.s32, grp.sT)

    def create_state(self, index, weight):
        if self.centered:
            return (_zeros_like(weight), _zeros_like(weight), _zeros_like(weight))
        return (_zeros_like(weight),)

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        T = w.dtype.type
        x = _rescaled(self, g, T, w, wd)
        g1, eps, lrk = _f32(self.gamma1, T), _f32(self.epsilon, T), _f32(lr, T)
        n = sbufs[0]
        n[...] = (T(1) - g1) * x * x + g1 * n
        if not self.centered:
            w[...] = w - lrk * (x / np.sqrt(n + eps))
        else:
            G, delta = sbufs[1], sbufs[2]
            G[...] = (T(1) - g1) * x + g1 * G
            delta[...] = _f32(self.gamma2, T) * delta - lrk * (x / np.sqrt(n - G * G + eps))
            w[...] = w + delta
        if self.clip_weights:
            w[...] = _clip(w, _f32(self.clip_weights, T))


@register
class AdaGrad(Optimizer):
    """AdaGrad (MXNet 1.x)::

        g = clip(rescale_grad*grad, clip_gradient)
        history += g*g
        w += -lr*(g/sqrt(history + eps) + wd*w)
    """

    _kernel = "adagrad_multi"

    def __init__(self, eps=1e-7, **kwargs):
        super(AdaGrad, self).__init__(**kwargs)
        self.float_stable_eps = eps

    def _kernel_states(self):
        return (1,)

    def _call_kernels(self, K, groups, lr, wd):
        for grp in groups:
            K.adagrad_multi(grp.ptrs, lr, grp.lr_mult, wd, grp.wd_mult, self.float_stable_eps,
                            self.rescale_grad, self._clip_value(), grp.s32, grp.sT)

    def create_state(self, index, weight):
        return _zeros_like(weight)

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        T = w.dtype.type
        x = _rescaled(self, g, T)
        h = sbufs[0]
        h += x * x
        div = x / np.sqrt(h + _f32(self.float_stable_eps, T))
        w += (div + w * _f32(wd, T)) * _f32(-lr, T)


@register
class AdaDelta(Optimizer):
    """AdaDelta (MXNet 1.x)::

        g = clip(rescale_grad*grad, clip_gradient)
        acc_g = rho*acc_g + (1-rho)*g*g
        delta = sqrt(acc_delta + epsilon)/sqrt(acc_g + epsilon)*g
        acc_delta = rho*acc_delta + (1-rho)*delta*delta
        w -= delta + wd*w
    """

    _kernel = "adadelta_multi"

    def __init__(self, rho=0.90, epsilon=1e-5, **kwargs):
        super(AdaDelta, self).__init__(**kwargs)
        self.rho = rho
        self.epsilon = epsilon

    def _kernel_states(self):
        return (2,)

    def _call_kernels(self, K, groups, lr, wd):
        for grp in groups:
            K.adadelta_multi(grp.ptrs, wd, grp.wd_mult, self.rho, self.epsilon,
                             self.rescale_grad, self._clip_value(), grp.s32, grp.sT)

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        T = w.dtype.type
        x = _rescaled(self, g, T)
        rho, eps = _f32(self.rho, T), _f32(self.epsilon, T)
        acc_g, acc_d = sbufs
        acc_g *= rho
        acc_g += (T(1) - rho) * x * x
        delta = np.sqrt(acc_d + eps) / np.sqrt(acc_g + eps) * x
        acc_d *= rho
        acc_d += (T(1) - rho) * delta * delta
        w -= delta + _f32(wd, T) * w


@register
class Adamax(Optimizer):
    """AdaMax (MXNet 1.x)::

        g = clip(rescale_grad*grad + wd*w, clip_gradient)
        m = beta1*m + (1-beta1)*g
        u = maximum(beta2*u, |g|)
        w -= lr/(1-beta1**t) * m/u
    """

    _kernel = "adamax_multi"

    def __init__(self, learning_rate=0.002, beta1=0.9, beta2=0.999, **kwargs):
        super(Adamax, self).__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2

    def _kernel_states(self):
        return (2,)

    def _prepare_step(self, plan):
        for grp in plan.groups:
            grp.coef[:] = [1. - self.beta1 ** t for t in _group_counts(self, plan, grp)]

    def _call_kernels(self, K, groups, lr, wd):
        for grp in groups:
            K.adamax_multi(grp.ptrs, lr, grp.lr_mult, grp.coef, wd, grp.wd_mult, self.beta1,
                           self.beta2, self.rescale_grad, self._clip_value(), grp.s32, grp.sT)

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        T = w.dtype.type
        t = self._index_update_count[index]
        lrk = _f32(lr / (1. - self.beta1 ** t), T)
        x = _rescaled(self, g, T, w, wd)
        b1 = _f32(self.beta1, T)
        m, u = sbufs
        m *= b1
        m += (T(1) - b1) * x
        u[...] = np.maximum(_f32(self.beta2, T) * u, np.abs(x))
        w -= lrk * m / u


@register
class Nadam(Optimizer):
    """Nesterov Adam (MXNet 1.x, with its momentum schedule ``schedule_decay``)."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8,
                 schedule_decay=0.004, **kwargs):
        super(Nadam, self).__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.schedule_decay = schedule_decay
        self.m_schedule = 1.

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        T = w.dtype.type
        t = self._index_update_count[index]
        x = _rescaled(self, g, T, w, wd)
        mom_t = self.beta1 * (1. - 0.5 * (pow(0.96, t * self.schedule_decay)))
        mom_t1 = self.beta1 * (1. - 0.5 * (pow(0.96, (t + 1) * self.schedule_decay)))
        self.m_schedule = self.m_schedule * mom_t
        m_next = self.m_schedule * mom_t1
        b1, b2 = _f32(self.beta1, T), _f32(self.beta2, T)
        m, v = sbufs
        m *= b1
        m += (T(1) - b1) * x
        v *= b2
        v += (T(1) - b2) * x * x
        g_prime = x / _f32(1. - self.m_schedule, T)
        m_prime = m / _f32(1. - m_next, T)
        v_prime = v / _f32(1. - pow(self.beta2, t), T)
        m_bar = _f32(1. - mom_t, T) * g_prime + _f32(mom_t1, T) * m_prime
        w -= _f32(lr, T) * m_bar / (np.sqrt(v_prime) + _f32(self.epsilon, T))


@register
class Signum(Optimizer):
    """Signum / signSGD (MXNet 1.x ``signum_update`` / ``signsgd_update``)::

        mom = momentum*mom - (1-momentum)*(wd*w + clip(rescale_grad*grad))
        w = (1 - lr*wd_lh)*w + lr*sign(mom)
        # momentum 0:  w = (1 - lr*wd)*w - lr*sign(clip(rescale_grad*grad))
    """

    _kernel = "signum_multi"

    def __init__(self, learning_rate=0.01, momentum=0.9, wd_lh=0.0, **kwargs):
        super(Signum, self).__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = momentum
        self.wd_lh = wd_lh

    def _call_kernels(self, K, groups, lr, wd):
        for grp in groups:
            K.signum_multi(grp.ptrs, lr, grp.lr_mult, wd, grp.wd_mult, self.momentum,
                           self.wd_lh, self.rescale_grad, self._clip_value(),
                           _has_state(grp, self), grp.s32, grp.sT)

    def create_state(self, index, weight):
        return _zeros_like(weight) if self.momentum != 0.0 else None

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        T = w.dtype.type
        x = _rescaled(self, g, T)
        lrk, wdk = _f32(lr, T), _f32(wd, T)
        if sbufs and self.momentum > 0:
            mu = _f32(self.momentum, T)
            m = sbufs[0]
            m[...] = mu * m - (T(1) - mu) * wdk * w - (T(1) - mu) * x
            w[...] = (T(1) - lrk * _f32(self.wd_lh, T)) * w + lrk * np.sign(m)
        else:
            w[...] = (T(1) - lrk * wdk) * w - lrk * np.sign(x)


@register
class FTML(Optimizer):
    """FTML (MXNet 1.x ``ftml_update``)::

        g = clip(rescale_grad*grad + wd*w, clip_gradient)
        v = beta2*v + (1-beta2)*g*g
        d_t = (1-beta1**t)/lr * (sqrt(v/(1-beta2**t)) + epsilon)
        z = beta1*z + (1-beta1)*g - (d_t - beta1*d)*w
        d = d_t;  w = -z/d_t
    """

    _kernel = "ftml_multi"

    def __init__(self, beta1=0.6, beta2=0.999, epsilon=1e-8, **kwargs):
        super(FTML, self).__init__(**kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon

    def _kernel_states(self):
        return (3,)

    def _prepare_step(self, plan):
        # 1 - beta**t computed as _np_update does, in the parameter dtype
        for grp in plan.groups:
            T = grp.sT.dtype.type
            b1, b2 = _f32(self.beta1, T), _f32(self.beta2, T)
            for j, t in enumerate(_group_counts(self, plan, grp)):
                grp.cT[0, j] = T(1) - b1 ** T(t)
                grp.cT[1, j] = T(1) - b2 ** T(t)

    def _call_kernels(self, K, groups, lr, wd):
        for grp in groups:
            K.ftml_multi(grp.ptrs, lr, grp.lr_mult, grp.cT, wd, grp.wd_mult, self.beta1,
                         self.beta2, self.epsilon, self.rescale_grad, self._clip_value(),
                         grp.s32, grp.sT)

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight), _zeros_like(weight))

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        T = w.dtype.type
        t = self._index_update_count[index]
        x = _rescaled(self, g, T, w, wd)
        b1, b2 = _f32(self.beta1, T), _f32(self.beta2, T)
        d, v, z = sbufs
        v[...] = b2 * v + (T(1) - b2) * x * x
        d_t = (T(1) - b1 ** T(t)) / _f32(lr, T) * \
            (np.sqrt(v / (T(1) - b2 ** T(t))) + _f32(self.epsilon, T))
        z[...] = b1 * z + (T(1) - b1) * x - (d_t - b1 * d) * w
        d[...] = d_t
        w[...] = -z / d_t


@register
class Ftrl(Optimizer):
    """FTRL-proximal (MXNet 1.x ``ftrl_update``)::

        g = clip(rescale_grad*grad, clip_gradient)
        z += g - (sqrt(n + g*g) - sqrt(n)) * w / lr
        n += g*g
        w = (sign(z)*lamda1 - z) / ((beta + sqrt(n))/lr + wd) * (|z| > lamda1)
    """

    _kernel = "ftrl_multi"

    def __init__(self, lamda1=0.01, learning_rate=0.1, beta=1, **kwargs):
        super(Ftrl, self).__init__(**kwargs)
        self.lamda1 = lamda1
        self.beta = beta
        self.lr = learning_rate

    def _kernel_states(self):
        return (2,)

    def _call_kernels(self, K, groups, lr, wd):
        for grp in groups:
            K.ftrl_multi(grp.ptrs, lr, grp.lr_mult, wd, grp.wd_mult, self.lamda1,
                         float(self.beta), self.rescale_grad, self._clip_value(), grp.s32,
                         grp.sT)

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        T = w.dtype.type
        x = _rescaled(self, g, T)
        lrk, l1 = _f32(lr, T), _f32(self.lamda1, T)
        z, n = sbufs
        z += x - (np.sqrt(n + x * x) - np.sqrt(n)) * w / lrk
        n += x * x
        w[...] = (np.sign(z) * l1 - z) / ((_f32(self.beta, T) + np.sqrt(n)) / lrk + _f32(wd, T)) \
            * (np.abs(z) > l1)


@register
class SGLD(Optimizer):
    """Stochastic gradient Langevin dynamics::

        w += -lr/2*(clip(rescale_grad*grad) + wd*w) + N(0, sqrt(lr))
    """

    def create_state(self, index, weight):
        return None

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        from . import random as _random
        T = w.dtype.type
        x = _rescaled(self, g, T)
        w += -_f32(lr, T) / T(2) * (x + _f32(wd, T) * w)
        w += _random.generator().normal(0, math.sqrt(lr), size=w.shape).astype(w.dtype)


@register
class DCASGD(Optimizer):
    """Delay-compensated SGD (MXNet 1.x)::

        g = clip(rescale_grad*grad, clip_gradient)
        step = -lr*(g + wd*w + lamda*g*g*(w - w_prev))
        mom = momentum*mom + step (with momentum), else step;  w_prev = w;  w += mom
    """

    _kernel = "dcasgd_multi"

    def __init__(self, momentum=0.0, lamda=0.04, **kwargs):
        super(DCASGD, self).__init__(**kwargs)
        self.momentum = momentum
        self.weight_previous = {}
        self.lamda = lamda

    def _kernel_states(self):
        return (1, 2)

    def _call_kernels(self, K, groups, lr, wd):
        # the state says which formula runs (as _np_update's len(sbufs)): 2 with momentum
        for grp in groups:
            K.dcasgd_multi(grp.ptrs, lr, grp.lr_mult, wd, grp.wd_mult, self.momentum,
                           self.lamda, self.rescale_grad, self._clip_value(),
                           grp.nstates == 2, grp.s32, grp.sT)

    def create_state(self, index, weight):
        if self.momentum == 0.0:
            return (NDArray(weight._data.copy()),)
        return (_zeros_like(weight), NDArray(weight._data.copy()))

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        T = w.dtype.type
        x = _rescaled(self, g, T)
        step = _f32(-lr, T) * (x + _f32(wd, T) * w + _f32(self.lamda, T) * x * x * (w - sbufs[-1]))
        if len(sbufs) == 2:
            m = sbufs[0]
            m *= _f32(self.momentum, T)
            m += step
            step = m
        sbufs[-1][...] = w
        w += step


@register
class LAMB(Optimizer):
    """LAMB (MXNet 1.x ``lamb_update_phase1/2``)::

        g = clip(rescale_grad*grad, clip_gradient)
        m = beta1*m + (1-beta1)*g;  v = beta2*v + (1-beta2)*g*g
        m^, v^ = m/(1-beta1**t), v/(1-beta2**t)    (bias_correction)
        r = m^/(sqrt(v^) + epsilon) + wd*w
        r1 = clip(||w||, lower_bound, upper_bound);  r2 = ||r||
        w -= lr * (r1/r2 if r1 > 0 and r2 > 0 else 1) * r
    """

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-6,
                 lower_bound=None, upper_bound=None, bias_correction=True, **kwargs):
        super(LAMB, self).__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.lower_bound = lower_bound
        self.upper_bound = upper_bound
        self.bias_correction = bias_correction

    def create_state(self, index, weight):
        return (_zeros_like(weight), _zeros_like(weight))

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        T = w.dtype.type
        t = self._index_update_count[index]
        x = _rescaled(self, g, T)
        b1, b2 = _f32(self.beta1, T), _f32(self.beta2, T)
        m, v = sbufs
        m[...] = b1 * m + (T(1) - b1) * x
        v[...] = b2 * v + (T(1) - b2) * x * x
        if self.bias_correction:
            mh = m / (T(1) - b1 ** T(t))
            vh = v / (T(1) - b2 ** T(t))
        else:
            mh, vh = m, v
        r = mh / (np.sqrt(vh) + _f32(self.epsilon, T)) + _f32(wd, T) * w
        r1 = T(np.sqrt((w.astype(np.float64) ** 2).sum()))
        r2 = T(np.sqrt((r.astype(np.float64) ** 2).sum()))
        if self.lower_bound:
            r1 = max(r1, T(self.lower_bound))
        if self.upper_bound:
            r1 = min(r1, T(self.upper_bound))
        ratio = r1 / r2 if (r1 > 0 and r2 > 0) else T(1)
        w -= _f32(lr, T) * ratio * r


_NO_LARS = ("gamma", "beta", "bias")


def _sum_sq(a):
    """MXNet's multi_sum_sq of one float array: the sum of squares as a float32."""
    return np.float32((a.astype(np.float64) ** 2).sum())


@register
class LARS(Optimizer):
    """LARS, layer-wise adaptive rate scaling (MXNet 1.9.1): SGD with momentum and weight
    decay whose learning rate is scaled per parameter, except biases and BatchNorm
    ``gamma``/``beta`` (by name)::

        w_norm, g_norm = ||w||, ||grad||
        lr_i = lr * lr_mult * eta * w_norm / (g_norm * rescale_grad + wd * w_norm + eps)
               (lr * lr_mult when either norm is 0)
        mom = momentum' * mom - lr_i * wd * w - lr_i * clip(rescale_grad * grad, clip_gradient)
        w += mom                        (without momentum: w += -lr_i*wd*w - lr_i*clip(...))

    ``momentum' = momentum * lr / last_lr`` when ``momentum_correction`` (the learning rate of
    the previous update call, so it only differs from ``momentum`` while a scheduler changes
    the rate).  As in MXNet, parameters are updated in calls of ``aggregate_num`` (4) per
    dtype, each of which counts the update and reads the learning rate; only names ending in
    ``_weight`` keep their weight decay by default.

    >>> opt = mx.optimizer.create('lars', learning_rate=0.1, momentum=0.9, eta=0.001)
    """

    def __init__(self, momentum=0.0, lazy_update=True, eta=0.001, eps=0,
                 momentum_correction=True, **kwargs):
        super(LARS, self).__init__(**kwargs)
        self.momentum = momentum
        self.momentum_correction = momentum_correction
        self.lazy_update = lazy_update
        self.eta = eta
        self.eps = eps
        self.skip = 0
        self.last_lr = None
        self.cur_lr = None

    @staticmethod
    def _decayed_by_default(name):
        """As the base class's set_wd_mult, but only names ending in ``_weight`` keep weight
        decay (MXNet's LARS)."""
        return name.endswith('_weight')

    def _get_lrs(self, indices):
        if self.cur_lr is not None:
            self.last_lr = self.cur_lr
        lr = self._base_lr()
        if self.cur_lr is None:
            self.last_lr = lr
        self.cur_lr = lr
        return [lr * self._lr_mult_of(i) for i in indices]

    def create_state(self, index, weight):
        return _zeros_like(weight) if self.momentum != 0.0 else None

    def _do_update(self, index, weight, grad, state):
        if not isinstance(index, (list, tuple)):
            index, weight, grad, state = [index], [weight], [grad], [state]
        indices, weights, grads, states = list(index), list(weight), list(grad), list(state)
        if not (len(indices) == len(weights) == len(grads) == len(states)):
            raise MXNetError("LARS.update: got %d indices, %d weights, %d grads and %d states"
                             % (len(indices), len(weights), len(grads), len(states)))
        checked = [self._check_pair(i, w, g) for i, w, g in zip(indices, weights, grads)]
        self._lars_call(indices, [c[0] for c in checked], [c[1] for c in checked],
                        [self._state_buffers(s) for s in states])

    def _fused_update(self, plan):
        # what MXNet's Updater does: per dtype (in order of appearance), calls of
        # aggregate_num parameters
        by_dtype = {}
        for pos, index, w, g, sbufs in sorted(plan.slow, key=operator.itemgetter(0)):
            by_dtype.setdefault(w.dtype, []).append((index, w, g, sbufs))
        n = max(int(self.aggregate_num), 1)
        for items in by_dtype.values():
            for k in range(0, len(items), n):
                chunk = items[k:k + n]
                self._lars_call([c[0] for c in chunk], [c[1] for c in chunk],
                                [c[2] for c in chunk], [c[3] for c in chunk])

    def _lars_call(self, indices, ws, gs, sbufs_list):
        self._update_count(indices)
        lrs = self._get_lrs(indices)
        wds = self._get_wds(indices)
        mom = self.momentum
        if mom > 0 and self.momentum_correction and self.last_lr != 0:
            mom = self.momentum * (self.cur_lr / self.last_lr)
        f = np.float32
        for i, w, g, sbufs, lr, wd in zip(indices, ws, gs, sbufs_list, lrs, wds):
            name = self.idx2name[i] if i in self.idx2name else str(i)
            lr32, wd32 = f(lr), f(wd)
            if not name.endswith(_NO_LARS):
                w_norm = np.sqrt(_sum_sq(w))
                g_ss = _sum_sq(g)
                if w_norm > 0 and g_ss > 0:
                    lr32 = f(lr32 * f(self.eta) * w_norm /
                             (np.sqrt(g_ss) * f(self.rescale_grad) + wd32 * w_norm + f(self.eps)))
            self._sgd_step(w, g, sbufs, lr32, wd32, mom)

    def _sgd_step(self, w, g, sbufs, lr, wd, mom):
        """MXNet's multi_sgd(_mom)_update for one parameter."""
        T = w.dtype.type
        lrk, lw = T(lr), T(lr) * T(wd)
        c = _f32(self._clip_value(), T)
        x = g * _f32(self.rescale_grad, T)
        if c >= 0:
            x = _clip(x, c)
        if sbufs and self.momentum > 0:
            m = sbufs[0]
            v = _f32(mom, T) * m - lw * w - lrk * x
            m[...] = v
            w += v
        else:
            w += (-(lw * w) - lrk * x)


@register
class LBSGD(Optimizer):
    """Large-batch SGD (MXNet 1.9.1): SGD with momentum whose learning rate is multiplied
    during a warm-up, emulating a batch ``batch_scale`` times larger by adding up gradients::

        every call: cum_grad += grad (per parameter)
        every batch_scale-th call: grad = cum_grad / batch_scale; lr *= mult; SGD step
                                   (sgd_update / sgd_mom_update); cum_grad = 0
        the other calls: sgd_update with lr = 0 (the weight keeps its value)

    ``mult`` after ``n`` calls (counted from ``begin_epoch * updates_per_epoch``), with
    ``N = warmup_epochs * updates_per_epoch`` and ``B = batch_scale``: ``B`` once ``n >=
    N`` (1 if ``N <= 1``), else ``1 + (B-1)*n/N`` (``'linear'``), ``1 + (B-1)*n^2/N^2``
    (``'power2'``), ``1 + (B-1)*sqrt(n/N)`` (``'sqrt'``), or for ``'lars'``
    ``sqrt(|w|^2 / (|g|^2 + wd*|w|^2 + 1e-18))`` clipped to [0.01, 100].
    ``multi_precision`` is accepted; updates run in the parameter dtype.
    """

    def __init__(self, momentum=0.0, multi_precision=False, warmup_strategy='linear',
                 warmup_epochs=5, batch_scale=1, updates_per_epoch=32, begin_epoch=0,
                 num_epochs=60, **kwargs):
        super(LBSGD, self).__init__(**kwargs)
        import logging
        logging.info('Running Large-Batch SGD Algorithm')
        logging.info('(Batch_scale=%f, warmup_epochs=%d, warmup_strategy=%s, '
                     'updates_per_epoch=%d)', batch_scale, warmup_epochs, warmup_strategy,
                     updates_per_epoch)
        self.momentum = momentum
        self.multi_precision = multi_precision
        self.warmup_strategy = warmup_strategy
        self.warmup_epochs = warmup_epochs
        self.batch_scale = batch_scale
        self.updates_per_epoch = updates_per_epoch
        self.init_updates = begin_epoch * updates_per_epoch
        self.num_epochs = num_epochs
        self.lbmult = 1
        self.cumgrads = {}
        self.adaptive = False
        self.admult = 1

    def __getstate__(self):
        ret = super(LBSGD, self).__getstate__()
        ret['cumgrads'] = {}            # gradient buffers are not settings
        return ret

    def create_state(self, index, weight):
        return _zeros_like(weight) if self.momentum != 0.0 else None

    def _get_lbmult(self, nup):
        nwup = self.warmup_epochs * self.updates_per_epoch
        strategy = self.warmup_strategy
        maxmult = float(self.batch_scale)
        if nup >= nwup:
            return maxmult
        if nwup <= 1:
            return 1.0
        if strategy == 'linear':
            return 1.0 + (maxmult - 1) * nup / nwup
        if strategy == 'power2':
            return 1.0 + (maxmult - 1) * (nup * nup) / (nwup * nwup)
        if strategy == 'sqrt':
            return 1.0 + (maxmult - 1) * math.sqrt(float(nup) / nwup)
        return 1.0

    def _get_lars(self, w, g, wd):
        # NumPy sums of the float products, combined in their dtype, as MXNet's asnumpy().sum()
        w2 = np.multiply(w, w).sum()
        g2 = np.multiply(g, g).sum()
        lars = math.sqrt(w2 / (g2 + wd * w2 + 1e-18))
        return min(max(lars, 0.01), 100.0)

    def _do_update(self, index, weight, grad, state):
        if isinstance(index, (list, tuple)):
            for i, w, g, s in zip(index, weight, grad, state):
                self._do_update(i, w, g, s)
            return
        w, g = self._check_pair(index, weight, grad)
        self._lb_step(index, w, g, self._state_buffers(state))

    def _fused_update(self, plan):
        # MXNet's Updater calls LBSGD (aggregate_num 0) once per parameter
        for pos, index, w, g, sbufs in sorted(plan.slow, key=operator.itemgetter(0)):
            self._lb_step(index, w, g, sbufs)

    def _lb_step(self, index, w, g, sbufs):
        lr = self._get_lr(index)            # read before counting, as MXNet's LBSGD does
        wd = self._get_wd(index)
        self._update_count(index)
        cg = self.cumgrads.get(index)
        if cg and cg['num_cums'] > 0:
            cum, n = cg['cum_grad'] + g, cg['num_cums'] + 1
        else:
            cum, n = g, self.init_updates + 1      # the gradient buffer itself, as MXNet
        self.cumgrads[index] = {'cum_grad': cum, 'num_cums': n}
        T = w.dtype.type
        if n % self.batch_scale == 0:
            gg = np.asarray(cum / T(self.batch_scale), dtype=w.dtype)
            if self.warmup_strategy == 'lars':
                mult = self._get_lars(w, gg, wd)
            else:
                mult = self._get_lbmult(n)
            lr = lr * mult
            lrk = _f32(lr, T)
            lw = lrk * _f32(wd, T)
            x = gg * _f32(self.rescale_grad, T)
            c = _f32(self._clip_value(), T)
            if c >= 0:
                x = _clip(x, c)
            if sbufs and self.momentum > 0:
                m = sbufs[0]
                v = _f32(self.momentum, T) * m - lw * w - lrk * x
                m[...] = v
                w += v
            else:
                w[...] = (T(1) - lw) * w - lrk * x
            self.cumgrads[index]['cum_grad'] = 0
        else:
            # sgd_update(lr=0) without rescale or clip: the weight stays (nan-preserving)
            w[...] = (T(1) - T(0) * _f32(wd, T)) * w - T(0) * g


@register
class ccSGD(SGD):   # noqa: N801 -- MXNet's name
    """[DEPRECATED] The same as :class:`SGD` (MXNet keeps the name for old scripts)."""


@register
class Test(Optimizer):
    """MXNet's test optimizer: ``w += rescale_grad * grad``; the state is a copy of ``w``
    (float32 zeros at first)."""

    def create_state(self, index, weight):
        return NDArray(np.zeros(weight.shape, dtype=np.float32))

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        w += g * _f32(self.rescale_grad, w.dtype.type)
        if sbufs:
            sbufs[0][...] = w


@register
class GroupAdaGrad(Optimizer):
    """AdaGrad with one learning rate per row (MXNet 1.9.1 ``mx.optimizer.contrib``) of a 2-D
    parameter; no weight decay::

        g = clip(rescale_grad * grad, clip_gradient);  history += mean(g^2, axis=1)
        w -= lr * g / sqrt(history + eps)
    """

    def __init__(self, eps=1e-5, **kwargs):
        super(GroupAdaGrad, self).__init__(**kwargs)
        self.float_stable_eps = eps

    def create_state(self, index, weight):
        assert len(weight.shape) == 2
        return NDArray(np.zeros((weight.shape[0], 1), dtype=np.float32))

    def _np_update(self, index, w, g, sbufs, lr, wd, multi):
        assert wd == 0, 'Weight decay is not supported for GroupAdaGrad'
        T = w.dtype.type
        x = g * _f32(self.rescale_grad, T)
        if self.clip_gradient is not None:
            x = np.clip(x, -_f32(self.clip_gradient, T), _f32(self.clip_gradient, T))
        h = sbufs[0]
        h += np.mean(np.square(x), axis=1, keepdims=True).astype(h.dtype)
        w -= (_f32(lr, T) * x / np.sqrt(h + _f32(self.float_stable_eps, T))).astype(w.dtype)


class _Group(object):
    """One dtype group of a fused plan: the address table and the per-column multipliers."""
    __slots__ = ("positions", "ptrs", "keep", "s32", "sT", "lr_mult", "wd_mult", "coef",
                 "has_state", "cT", "nstates")

    def __init__(self, dtype, positions, columns):
        n = len(positions)
        self.positions = positions
        # rows: weight, grad, state0, state1, size, state2
        self.ptrs = np.zeros((6, n), dtype=np.intp)
        self.keep = columns                     # the buffers the addresses point into
        # a group's columns all have nstates states (_FusedPlan groups by it)
        self.nstates = len(columns[0][2]) if columns else 0
        self.has_state = self.nstates > 0
        for j, (w, g, sbufs) in enumerate(columns):
            self.ptrs[0, j] = w.ctypes.data
            self.ptrs[1, j] = g.ctypes.data
            for k, s in enumerate(sbufs[:3]):
                self.ptrs[(2, 3, 5)[k], j] = s.ctypes.data
            self.ptrs[4, j] = w.size
        self.s32 = np.zeros(8, dtype=np.float32)
        self.sT = np.zeros(8, dtype=dtype)
        self.lr_mult = np.ones(n)
        self.wd_mult = np.ones(n)
        self.coef = np.ones(n)
        self.cT = np.ones((2, n), dtype=dtype)  # per-column coefficients in the dtype


class _FusedPlan(object):
    """The parameters of one list update, split into compiled dtype groups and a NumPy rest.

    ``keys`` are the objects whose identity makes the plan valid (the parameters' buffers or
    autograd entries); a caller rebuilds the plan when any of them changed.
    """

    def __init__(self, opt, indices, wbufs, gbufs, states, keys, version):
        self.indices = list(indices)
        self.keys = list(keys)
        self.version = version
        self.fused = opt.fused
        self.mult_sig = None
        self.lr_mult = np.ones(len(self.indices))
        self.wd_mult = np.ones(len(self.indices))
        by_dtype = {}
        self.slow = []
        for pos, (index, w, g, s) in enumerate(zip(self.indices, wbufs, gbufs, states)):
            if w.shape != g.shape:
                raise MXNetError("%s: parameter %r has shape %s but its gradient has shape %s"
                                 % (type(opt).__name__, index, w.shape, g.shape))
            if w.dtype.kind != 'f':
                raise MXNetError("%s: parameter %r has dtype %s; optimizers update float16, "
                                 "float32 or float64 parameters"
                                 % (type(opt).__name__, index, w.dtype))
            sbufs = opt._state_buffers(s)
            if opt._fusable(w, g, sbufs):
                by_dtype.setdefault((w.dtype, len(sbufs)), []).append((pos, (w, g, sbufs)))
            else:
                if g.dtype != w.dtype:
                    g = g.astype(w.dtype)    # stale copy; refreshed by the key check below
                    self.keys.append(object())
                self.slow.append((pos, index, w, g, sbufs))
        self.groups = []
        for (dt, _n), cols in by_dtype.items():
            self.groups.append(_Group(dt, [p for p, _ in cols], [c for _, c in cols]))

    def demote(self, grp):
        """Move ``grp``'s parameters from the compiled groups to the NumPy rest."""
        self.groups.remove(grp)
        for pos, (w, g, sbufs) in zip(grp.positions, grp.keep):
            self.slow.append((pos, self.indices[pos], w, g, sbufs))

    def same(self, keys, version, fused):
        return (version == self.version and fused == self.fused and len(keys) == len(self.keys)
                and all(map(_is, keys, self.keys)))

    def set_mults(self, opt, sig):
        self.lr_mult[:] = [opt._lr_mult_of(i) for i in self.indices]
        self.wd_mult[:] = [opt._wd_mult_of(i) for i in self.indices]
        for grp in self.groups:
            grp.lr_mult[:] = self.lr_mult[grp.positions]
            grp.wd_mult[:] = self.wd_mult[grp.positions]
        self.mult_sig = sig


class Updater(object):
    """Applies an optimizer to parameters by index, creating their states on first use.

    ``updater(index, grad, weight)`` (note the order); with lists of indices, grads and
    weights every parameter is updated in one fused step.

    >>> upd = mx.optimizer.get_updater(mx.optimizer.SGD(learning_rate=0.5))
    >>> w = mx.nd.array([1.0]); upd(0, mx.nd.array([1.0]), w); w.asnumpy().tolist()
    [0.5]
    """

    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.states = {}
        self.states_synced = {}
        self.aggregate_updates = optimizer.aggregate_num > 0
        self._version = 0
        self._plans = {}

    def _ensure_states(self, indices, weights):
        states = self.states
        if not all(map(states.__contains__, indices)):
            for idx, w in zip(indices, weights):
                if idx not in states:
                    states[idx] = self.optimizer.create_state_multi_precision(idx, w)
                    self.states_synced[idx] = True
            self._version += 1

    def __call__(self, index, grad, weight):
        with _lock_of(self.optimizer):
            self._call(index, grad, weight)

    def _call(self, index, grad, weight):
        if not isinstance(index, (list, tuple)):
            # MXNet's Updater turns a single index into a one-element list too, so it gets
            # the aggregated (multi_sgd) formula; only optimizer.update(int, ...) does not
            index, grad, weight = [index], [grad], [weight]
        indices, grads, weights = list(index), list(grad), list(weight)
        if not (len(indices) == len(grads) == len(weights)):
            raise MXNetError("Updater: got %d indices, %d grads and %d weights"
                             % (len(indices), len(grads), len(weights)))
        for g, w in zip(grads, weights):
            if not isinstance(w, NDArray) or not isinstance(g, NDArray):
                raise MXNetError("Updater: weights and grads must be NDArrays, got %s and %s"
                                 % (type(w).__name__, type(g).__name__))
        self._ensure_states(indices, weights)
        wb = list(map(_data_of, weights))
        gb = list(map(_data_of, grads))
        keys = wb + gb
        key = tuple(indices)
        opt = self.optimizer
        plan = self._plans.get(key)
        if plan is None or not plan.same(keys, self._version, opt.fused):
            plan = _FusedPlan(opt, indices, wb, gb, [self.states[i] for i in indices], keys,
                              self._version)
            if len(self._plans) > 64:
                self._plans.clear()
            self._plans[key] = plan
        opt._fused_update(plan)

    def sync_state_context(self, state, context):
        return state

    def set_states(self, states):
        """Set the states from bytes made by :meth:`get_states` (note *safe-states*); a
        pickle (what MXNet writes) is refused, since unpickling runs code from the file."""
        self.states, opt_config = _decode_states(states)
        if opt_config is not None:
            self.optimizer = _restore_optimizer(self.optimizer, opt_config)
        self.states_synced = dict.fromkeys(self.states.keys(), False)
        self._version += 1
        self._plans.clear()

    def get_states(self, dump_optimizer=False):
        """The states (and, with ``dump_optimizer``, the optimizer's settings and counters)
        as bytes in agjit's safe states format (note *safe-states*)."""
        return _encode_states(self.states, self.optimizer if dump_optimizer else None)


# Note: safe-states
#     Optimizer states (``Updater.get_states``, ``Module.save_optimizer_states``,
#     ``gluon.Trainer.save_states``) are written as an MXNet NDArray file -- the ``.params``
#     container, which agjit reads with bounds checks and never executes -- instead of the
#     pickle MXNet writes.  Keys: ``s:<i>`` for a state that is one array, ``s:<i>:<j>`` for
#     the j-th array of a tuple state, and ``__agjit_states__`` for a uint8 array holding JSON:
#     ``{"format": 1, "index": [[i, kind, count], ...], "optimizer": {...} or null}`` where
#     kind is "none", "array" or "tuple" and i keeps its JSON type (int or str).  The
#     optimizer entry has its class name and its plain settings (numbers, strings, bools,
#     None, and dicts of those such as the per-index update counts); a learning-rate
#     scheduler is not stored (the optimizer it is loaded into keeps its own).
_STATES_KEY = "__agjit_states__"
_PLAIN = (int, float, str, bool, type(None))


def _plain(v):
    if isinstance(v, (np.integer, np.floating)):
        v = v.item()
    if isinstance(v, _PLAIN):
        return True, v
    if isinstance(v, dict):
        items = []
        for k, x in v.items():
            ok_k, k2 = _plain(k)
            ok_x, x2 = _plain(x)
            if not (ok_k and ok_x) or isinstance(k2, (float, type(None))):
                return False, None
            items.append([k2, x2])
        return True, {"__items__": items}
    return False, None


def _unplain(v):
    if isinstance(v, dict) and "__items__" in v:
        return {k: _unplain(x) for k, x in v["__items__"]}
    return v


def _encode_states(states, optimizer):
    import json
    from .ndarray.utils import save_tobuffer
    from . import ndarray as nd
    arrays, index = {}, []
    for i, st in states.items():
        if not isinstance(i, (int, str)) or isinstance(i, bool):
            raise MXNetError("get_states: state index %r must be an int or a str" % (i,))
        if st is None:
            index.append([i, "none", 0])
        elif isinstance(st, NDArray):
            index.append([i, "array", 1])
            arrays["s:%s" % i] = st
        elif isinstance(st, (tuple, list)) and all(isinstance(x, NDArray) for x in st):
            index.append([i, "tuple", len(st)])
            for j, x in enumerate(st):
                arrays["s:%s:%d" % (i, j)] = x
        else:
            raise MXNetError("get_states: cannot store the state of index %r (%s); states must "
                             "be None, an NDArray or a tuple of NDArrays" % (i, type(st).__name__))
    config = None
    if optimizer is not None:
        settings = {}
        for k, v in optimizer.__dict__.items():
            if k in ("lr_scheduler", "param_dict", "sym_info"):
                continue
            ok, pv = _plain(v)
            if ok:
                settings[k] = pv
        config = {"class": type(optimizer).__name__.lower(), "settings": settings}
    meta = json.dumps({"format": 1, "index": index, "optimizer": config}).encode("utf-8")
    arrays[_STATES_KEY] = nd.array(np.frombuffer(meta, dtype=np.uint8), dtype="uint8")
    return save_tobuffer(arrays)


def _decode_states(buf):
    import json
    from .ndarray.utils import load_frombuffer
    if not isinstance(buf, (bytes, bytearray, memoryview)):
        raise TypeError("set_states: states must be bytes, got %s" % type(buf).__name__)
    head = bytes(buf[:2])
    if head[:1] == b"\x80" or head[:1] in (b"(", b"]", b"}"):
        raise MXNetError("set_states: these optimizer states are a Python pickle (what MXNet "
                         "writes); agjit refuses to unpickle them because unpickling can run "
                         "code from the file. Save the states with agjit instead.")
    data = load_frombuffer(buf)
    if _STATES_KEY not in data:
        raise MXNetError("set_states: not an agjit optimizer-states file (no %s entry)"
                         % _STATES_KEY)
    try:
        meta = json.loads(data[_STATES_KEY].asnumpy().astype(np.uint8).tobytes().decode("utf-8"))
        index = meta["index"]
        config = meta.get("optimizer")
        if meta.get("format") != 1 or not isinstance(index, list):
            raise ValueError("unknown format %r" % (meta.get("format"),))
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise MXNetError("set_states: corrupt optimizer-states header: %s" % e) from None
    states = {}
    for entry in index:
        try:
            i, kind, count = entry
            if not isinstance(i, (int, str)) or isinstance(i, bool):
                raise ValueError("bad index %r" % (i,))
            if kind == "none":
                states[i] = None
            elif kind == "array":
                states[i] = data["s:%s" % i]
            elif kind == "tuple":
                states[i] = tuple(data["s:%s:%d" % (i, j)] for j in range(int(count)))
            else:
                raise ValueError("bad kind %r" % (kind,))
        except (ValueError, KeyError, TypeError) as e:
            raise MXNetError("set_states: corrupt optimizer-states entry %r: %s"
                             % (entry, e)) from None
    return states, config


def _restore_optimizer(current, config):
    """``current`` with the stored settings (a new optimizer of the stored class when
    ``current`` is of another class); its lr_scheduler is kept."""
    if not isinstance(config, dict) or not isinstance(config.get("settings"), dict):
        raise MXNetError("set_states: corrupt optimizer entry in the states file")
    name = config.get("class")
    opt = current
    if type(current).__name__.lower() != name:
        if name not in Optimizer.opt_registry:
            raise MXNetError("set_states: the states were saved for optimizer %r, which is not "
                             "registered" % (name,))
        opt = Optimizer.opt_registry[name]()
        opt.lr_scheduler = current.lr_scheduler
    for k, v in config["settings"].items():
        if not isinstance(k, str) or k.startswith("__"):
            continue
        setattr(opt, k, _unplain(v))
    return opt


def get_updater(optimizer):
    """An :class:`Updater` for ``optimizer``."""
    return Updater(optimizer)


class Trainer(object):
    """Apply an optimizer to a set of parameters (the shape of ``gluon.Trainer``).

    Parameters
    ----------
    params : list of NDArray or dict of str to NDArray
        Parameters with gradients attached (``attach_grad``); ``grad_req='null'`` ones are
        skipped.  They are updated in place and stay the same objects.
    optimizer : str or Optimizer
    optimizer_params : dict, optional
        Keyword arguments of the optimizer (must be empty when ``optimizer`` is an instance).
        Its ``rescale_grad`` (default 1) is divided by ``batch_size`` at every step.
    kvstore, compression_params, update_on_kvstore
        Accepted for compatibility; there is one device.

    >>> w = mx.nd.ones((2, 2)); w.attach_grad()
    >>> trainer = mx.Trainer({'w': w}, 'adam', {'learning_rate': 0.01})
    >>> trainer.learning_rate
    0.01
    """

    def __init__(self, params, optimizer='sgd', optimizer_params=None, kvstore='device',
                 compression_params=None, update_on_kvstore=None):
        if isinstance(params, dict):
            names = [str(k) for k in params.keys()]
            params = list(params.values())
        elif isinstance(params, (list, tuple)):
            params = list(params)
            names = ["param%d" % i for i in range(len(params))]
        else:
            raise ValueError("First argument must be a list or dict of Parameters, got %s."
                             % type(params))
        for n, p in zip(names, params):
            if not isinstance(p, NDArray):
                raise ValueError("First argument must be a list or dict of Parameters, got "
                                 "list of %s (%s)." % (type(p), n))
        self._params = params
        self._names = names
        optimizer_params = optimizer_params if optimizer_params else {}
        self._scale = float(optimizer_params.get('rescale_grad', 1.0))
        if isinstance(optimizer, Optimizer):
            assert not optimizer_params, \
                "optimizer_params must be None if optimizer is an instance of " \
                "Optimizer instead of str"
            self._optimizer = optimizer
        else:
            self._optimizer = create(optimizer, **optimizer_params)
        self._updater = Updater(self._optimizer)
        self._plan = None

    @property
    def optimizer(self):
        return self._optimizer

    @property
    def learning_rate(self):
        return self._optimizer.learning_rate

    def set_learning_rate(self, lr):
        """Set the optimizer's learning rate (refused when it has an lr_scheduler)."""
        self._optimizer.set_learning_rate(lr)

    def step(self, batch_size, ignore_stale_grad=False):
        """One optimizer step on every parameter with ``rescale_grad = scale / batch_size``.

        ``ignore_stale_grad`` is accepted; gradients are not tracked for staleness, so every
        parameter is updated.
        """
        with _lock_of(self._optimizer):
            self._optimizer.rescale_grad = self._scale / batch_size
            self._update()

    def update(self, batch_size, ignore_stale_grad=False):
        """Same as :meth:`step` (there is no gradient reduction to skip)."""
        self.step(batch_size, ignore_stale_grad)

    def allreduce_grads(self):
        """No-op: one device."""

    def _update(self):
        params = self._params
        ents = list(map(_entry_of, params))
        datas = list(map(_data_of, params))
        keys = ents + datas
        plan = self._plan
        opt = self._optimizer
        if plan is None or not plan.same(keys, self._updater._version, opt.fused):
            plan = self._build_plan(ents, datas, keys)
        if plan.indices:
            opt._fused_update(plan)

    def _build_plan(self, ents, datas, keys):
        indices, wbufs, gbufs = [], [], []
        for i, (p, e) in enumerate(zip(self._params, ents)):
            if e is None or e[0].cleared or not e[0].is_var or e[0].grad is None:
                raise MXNetError("Trainer.step: parameter %r (shape %s) has no gradient buffer; "
                                 "call attach_grad() on it before training"
                                 % (self._names[i], p.shape))
            if e[0].grad_req == 'null':
                continue
            indices.append(i)
            wbufs.append(datas[i])
            gbufs.append(e[0].grad._data)
        upd = self._updater
        upd._ensure_states(indices, [self._params[i] for i in indices])
        self._plan = _FusedPlan(self._optimizer, indices, wbufs, gbufs,
                                [upd.states[i] for i in indices], keys, upd._version)
        return self._plan

    def save_states(self, fname):
        """Save the optimizer states (and the optimizer) to ``fname``."""
        with open(fname, 'wb') as fout:
            fout.write(self._updater.get_states(dump_optimizer=True))

    def load_states(self, fname):
        """Load states saved by :meth:`save_states`."""
        with open(fname, 'rb') as f:
            self._updater.set_states(f.read())
        self._optimizer = self._updater.optimizer
        self._plan = None
