"""``mx.init`` / ``mx.initializer``: parameter initializers with MXNet 1.x names and JSON.

An initializer is called as ``init(desc, arr)``: ``desc`` is an :class:`InitDesc` (a name
with the variable's attrs) or a plain name, and ``arr`` is filled in place.  The name's
suffix picks the rule: ``weight`` -> the initializer's own draw, ``bias``/``beta``/
``moving_mean`` -> 0, ``gamma``/``moving_var`` -> 1 (MXNet's conventions).  A variable's
``__init__`` attr (``mx.sym.Variable('w', init=mx.init.Constant(0.5))``) overrides the
global initializer for that variable.  Random draws come from ``mx.random``'s generator, so
``mx.random.seed`` makes them reproducible.

>>> import agjit as mx
>>> mx.init.Uniform(0.1).dumps()
'["uniform", {"scale": 0.1}]'
>>> w = mx.nd.zeros((2, 3))
>>> mx.init.Constant(0.5)(mx.init.InitDesc('fc_weight'), w); w.asnumpy().tolist()
[[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]
"""
import json
import re

import numpy as np

from symbol.base import MXNetError
from .ndarray.ndarray import NDArray
from . import random as _random
from . import _registry

__all__ = ["InitDesc", "Initializer", "Zero", "One", "Constant", "Uniform", "Normal",
           "Orthogonal", "Xavier", "MSRAPrelu", "Mixed", "Load", "create", "register", "alias",
           "from_json", "init_array"]


class InitDesc(str):
    """A parameter name carrying the variable's ``attrs`` (e.g. ``__init__``) and the
    global initializer."""

    def __new__(cls, name, attrs=None, global_init=None):
        ret = super(InitDesc, cls).__new__(cls, name)
        ret.attrs = attrs or {}
        ret.global_init = global_init
        return ret


def _fill(arr, values):
    arr._data[...] = values


class Initializer(object):
    """Base class of initializers; subclasses implement ``_init_weight(name, arr)``."""

    def __init__(self, **kwargs):
        self._kwargs = kwargs
        self._verbose = False
        self._print_func = None

    def set_verbosity(self, verbose=False, print_func=None):
        """Log the norm of every initialized array (``print_func(arr) -> str``)."""
        self._verbose = verbose
        if print_func is None:
            def asum_stat(x):
                return str((np.abs(x.asnumpy()).sum() / x.size))
            print_func = asum_stat
        self._print_func = print_func
        return self

    def _verbose_print(self, desc, init, arr):
        if self._verbose and self._print_func:
            import logging
            logging.info('Initialized %s as %s: %s', desc, init, self._print_func(arr))

    def dumps(self):
        """The JSON MXNet stores in a variable's ``__init__`` attr, e.g.
        ``'["normal", {"sigma": 0.01}]'``."""
        return json.dumps([self.__class__.__name__.lower(), self._kwargs])

    def __call__(self, desc, arr):
        """Initialize ``arr`` (an NDArray, filled in place) for parameter ``desc``."""
        if not isinstance(arr, NDArray):
            raise TypeError('arr must be NDArray, got %s' % type(arr).__name__)
        if not isinstance(desc, InitDesc):
            self._legacy_init(desc, arr)
            return
        if desc.global_init is None:
            desc.global_init = self
        init = desc.attrs.get('__init__', "")
        if init:
            # the variable's own initializer (Variable(init=...)) wins for every suffix
            create(init)._init_weight(desc, arr)
            self._verbose_print(desc, init, arr)
        elif desc.endswith('weight'):
            self._init_weight(desc, arr)
            self._verbose_print(desc, 'weight', arr)
        elif desc.endswith('bias'):
            self._init_bias(desc, arr)
            self._verbose_print(desc, 'bias', arr)
        elif desc.endswith('gamma'):
            self._init_gamma(desc, arr)
            self._verbose_print(desc, 'gamma', arr)
        elif desc.endswith('beta'):
            self._init_beta(desc, arr)
            self._verbose_print(desc, 'beta', arr)
        elif desc.endswith('min'):
            self._init_zero(desc, arr)
        elif desc.endswith('max'):
            self._init_one(desc, arr)
        else:
            self._init_default(desc, arr)

    def _legacy_init(self, name, arr):
        if not isinstance(name, str):
            raise TypeError('name must be string')
        if name.endswith('bias'):
            self._init_bias(name, arr)
        elif name.endswith('gamma'):
            self._init_gamma(name, arr)
        elif name.endswith('beta'):
            self._init_beta(name, arr)
        elif name.endswith('weight'):
            self._init_weight(name, arr)
        elif name.endswith("moving_mean"):
            self._init_zero(name, arr)
        elif name.endswith("moving_var"):
            self._init_one(name, arr)
        elif name.endswith("moving_inv_var"):
            self._init_zero(name, arr)
        elif name.endswith("moving_avg"):
            self._init_zero(name, arr)
        elif name.endswith('min'):
            self._init_zero(name, arr)
        elif name.endswith('max'):
            self._init_one(name, arr)
        else:
            self._init_default(name, arr)

    def _init_zero(self, _, arr):
        _fill(arr, 0.0)

    def _init_one(self, _, arr):
        _fill(arr, 1.0)

    def _init_bias(self, _, arr):
        _fill(arr, 0.0)

    def _init_gamma(self, _, arr):
        _fill(arr, 1.0)

    def _init_beta(self, _, arr):
        _fill(arr, 0.0)

    def _init_weight(self, name, arr):
        raise NotImplementedError("Must override it")

    def _init_default(self, name, _):
        raise ValueError(
            'Unknown initialization pattern for %s. Default initialization is now limited to '
            '"weight", "bias", "gamma" (1.0), and "beta" (0.0). Please use '
            'mx.sym.Variable(init=mx.init.*) to set initialization pattern' % name)

    def __eq__(self, other):
        if not isinstance(other, Initializer):
            return NotImplemented
        return self.dumps() == other.dumps()

    __hash__ = object.__hash__

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__,
                           ", ".join("%s=%r" % kv for kv in self._kwargs.items()))


register = _registry.get_register_func(Initializer, 'initializer')
alias = _registry.get_alias_func(Initializer, 'initializer')
create = _registry.get_create_func(Initializer, 'initializer')


def from_json(attr_string):
    """The Initializer an ``__init__`` attr string describes (``'["zero", {}]'``, a
    registered name, or an Initializer instance passes through).

    >>> from_json('["constant", {"value": 0.5}]')
    Constant(value=0.5)
    """
    try:
        return create(attr_string)
    except (AssertionError, ValueError, TypeError) as e:
        raise MXNetError("initializer: cannot build an initializer from %r: %s"
                         % (attr_string, e)) from None


def init_array(name, arr, attrs=None, default=None):
    """Initialize NDArray ``arr`` of variable ``name`` in place: with the variable's
    ``__init__`` attr when ``attrs`` has one, else with ``default`` (an Initializer, by name
    suffix) when given.  Returns True when ``arr`` was written.

    >>> a = mx.nd.zeros((2,))
    >>> init_array('bn_moving_var', a, {'__init__': '["one", {}]'}), a.asnumpy().tolist()
    (True, [1.0, 1.0])
    """
    attrs = attrs or {}
    text = attrs.get('__init__', '')
    desc = InitDesc(name, attrs)
    if text:
        from_json(text)._init_weight(desc, arr)
        return True
    if default is not None:
        default(desc, arr)
        return True
    return False


def _shape_of(arr):
    return tuple(arr.shape)


def _dtype_of(arr):
    return arr._data.dtype


class Load(object):
    """Initialize by loading ``param`` (a dict of name -> NDArray, or a file saved by
    ``mx.nd.save``); names missing there use ``default_init``."""

    def __init__(self, param, default_init=None, verbose=False):
        if isinstance(param, str):
            from . import ndarray as _nd
            param = _nd.load(param)
        assert isinstance(param, dict)
        self.param = {}
        for name, arr in param.items():
            if name.startswith('arg:') or name.startswith('aux:'):
                self.param[name[4:]] = arr
            else:
                self.param[name] = arr
        self.default_init = default_init
        self.verbose = verbose

    def __call__(self, name, arr):
        if name in self.param:
            assert arr.shape == self.param[name].shape, \
                'Parameter %s cannot be initialized from loading. ' % name + \
                'Shape mismatch, target %s vs loaded %s' % (str(arr.shape),
                                                             self.param[name].shape)
            arr[:] = self.param[name]
        else:
            assert self.default_init is not None, \
                "Cannot Initialize %s. Not found in loaded param " % name + \
                "and no default Initializer is provided."
            self.default_init(name, arr)


class Mixed(object):
    """Pick the initializer of the first regex in ``patterns`` matching the name."""

    def __init__(self, patterns, initializers):
        assert len(patterns) == len(initializers)
        self.map = list(zip([re.compile(p) for p in patterns], initializers))

    def __call__(self, name, arr):
        for prog, init in self.map:
            if prog.match(name):
                init(name, arr)
                return
        raise ValueError('Parameter name %s did not match any pattern. Consider adding a ".*" '
                         'pattern at the end with default Initializer.' % name)


@register
@alias("zeros")
class Zero(Initializer):
    """Fill with 0 (``'["zero", {}]'``)."""

    def __init__(self):
        super(Zero, self).__init__()

    def _init_weight(self, _, arr):
        _fill(arr, 0.0)


@register
@alias("ones")
class One(Initializer):
    """Fill with 1 (``'["one", {}]'``)."""

    def __init__(self):
        super(One, self).__init__()

    def _init_weight(self, _, arr):
        _fill(arr, 1.0)


@register
class Constant(Initializer):
    """Fill with ``value`` (a scalar or an array broadcastable to the parameter)."""

    def __init__(self, value):
        super(Constant, self).__init__(value=value)
        self.value = value

    def _init_weight(self, _, arr):
        v = self.value
        if isinstance(v, NDArray):
            v = v._data
        try:
            _fill(arr, v)
        except ValueError:
            raise MXNetError("Constant initializer: value of shape %s cannot fill a parameter "
                             "of shape %s" % (np.shape(v), arr.shape)) from None

    def dumps(self):
        val = self._kwargs['value']
        if not np.isscalar(val):
            val = val.tolist() if isinstance(val, np.ndarray) else \
                (val.asnumpy().tolist() if isinstance(val, NDArray) else val)
            self._kwargs['value'] = val
        return json.dumps([self.__class__.__name__.lower(), self._kwargs])


@register
class Uniform(Initializer):
    """Draw from U(-scale, scale).

    >>> mx.random.seed(0); w = mx.nd.zeros((100,)); Uniform(0.5)('w_weight', w)
    >>> bool(abs(w.asnumpy()).max() <= 0.5)
    True
    """

    def __init__(self, scale=0.07):
        super(Uniform, self).__init__(scale=scale)
        self.scale = scale

    def _init_weight(self, _, arr):
        a = _random.generator().uniform(-self.scale, self.scale, size=_shape_of(arr))
        _fill(arr, a.astype(_dtype_of(arr)))


@register
class Normal(Initializer):
    """Draw from N(0, sigma^2)."""

    def __init__(self, sigma=0.01):
        super(Normal, self).__init__(sigma=sigma)
        self.sigma = sigma

    def _init_weight(self, _, arr):
        a = _random.generator().normal(0, self.sigma, size=_shape_of(arr))
        _fill(arr, a.astype(_dtype_of(arr)))


@register
class Orthogonal(Initializer):
    """An orthogonal matrix (from the SVD of a uniform or normal draw) times ``scale``."""

    def __init__(self, scale=1.414, rand_type="uniform"):
        super(Orthogonal, self).__init__(scale=scale, rand_type=rand_type)
        self.scale = scale
        self.rand_type = rand_type

    def _init_weight(self, _, arr):
        nout = arr.shape[0]
        nin = int(np.prod(arr.shape[1:]))
        gen = _random.generator()
        if self.rand_type == "uniform":
            tmp = gen.uniform(-1.0, 1.0, (nout, nin))
        elif self.rand_type == "normal":
            tmp = gen.normal(0.0, 1.0, (nout, nin))
        else:
            raise ValueError("Unknown random type %r for Orthogonal" % (self.rand_type,))
        u, _s, v = np.linalg.svd(tmp, full_matrices=False)
        res = u if u.shape == tmp.shape else v
        _fill(arr, (self.scale * res.reshape(arr.shape)).astype(_dtype_of(arr)))


@register
class Xavier(Initializer):
    """Xavier/Glorot: ``scale = sqrt(magnitude / factor)`` with ``factor`` the average
    (``'avg'``), fan-in (``'in'``) or fan-out (``'out'``) of the weight; draws from
    U(-scale, scale) (``rnd_type='uniform'``) or N(0, scale^2) (``'gaussian'``).
    Fans count ``shape[1] * prod(shape[2:])`` inputs and ``shape[0] * prod(shape[2:])``
    outputs; the weight needs at least 2 dimensions.
    """

    def __init__(self, rnd_type="uniform", factor_type="avg", magnitude=3):
        super(Xavier, self).__init__(rnd_type=rnd_type, factor_type=factor_type,
                                     magnitude=magnitude)
        self.rnd_type = rnd_type
        self.factor_type = factor_type
        self.magnitude = float(magnitude)

    def _scale(self, name, shape):
        if len(shape) < 2:
            raise ValueError('Xavier initializer cannot be applied to vector {0}. It requires at'
                             ' least 2D.'.format(name))
        hw_scale = 1.
        if len(shape) > 2:
            hw_scale = np.prod(shape[2:])
        fan_in, fan_out = shape[1] * hw_scale, shape[0] * hw_scale
        if self.factor_type == "avg":
            factor = (fan_in + fan_out) / 2.0
        elif self.factor_type == "in":
            factor = fan_in
        elif self.factor_type == "out":
            factor = fan_out
        else:
            raise ValueError("Incorrect factor type")
        return np.sqrt(self.magnitude / factor)

    def _init_weight(self, name, arr):
        scale = self._scale(name, arr.shape)
        gen = _random.generator()
        if self.rnd_type == "uniform":
            a = gen.uniform(-scale, scale, size=_shape_of(arr))
        elif self.rnd_type == "gaussian":
            a = gen.normal(0, scale, size=_shape_of(arr))
        else:
            raise ValueError("Unknown random type")
        _fill(arr, a.astype(_dtype_of(arr)))


@register
class MSRAPrelu(Xavier):
    """Kaiming/MSRA for PReLU: Xavier with ``rnd_type='gaussian'`` and
    ``magnitude = 2 / (1 + slope**2)``."""

    def __init__(self, factor_type="avg", slope=0.25):
        magnitude = 2. / (1 + slope ** 2)
        super(MSRAPrelu, self).__init__("gaussian", factor_type, magnitude)
        self._kwargs = {'factor_type': factor_type, 'slope': slope}



@register
class Bilinear(Initializer):
    """Bilinear-upsampling kernel for a ``(out, in, kh, kw)`` Deconvolution weight: every
    ``(kh, kw)`` slice is ``(1 - |x/f - c|) * (1 - |y/f - c|)`` with ``f = ceil(kw / 2)``,
    ``c = (2f - 1 - f % 2) / (2f)`` (MXNet's formula, ``kw`` used for both axes)."""

    def __init__(self):
        super(Bilinear, self).__init__()

    def _init_weight(self, _, arr):
        shape = arr.shape
        f = np.ceil(shape[3] / 2.)
        c = (2 * f - 1 - f % 2) / (2. * f)
        x = np.arange(shape[3])
        y = np.arange(shape[2])
        kernel = np.outer(1 - np.abs(y / f - c), 1 - np.abs(x / f - c)).astype(np.float32)
        _fill(arr, np.broadcast_to(kernel, shape))


@register
class LSTMBias(Initializer):
    """Zero biases except the forget gate's (the second quarter, LSTM gate order i, f, c, o),
    set to ``forget_bias``; meant as ``i2h_bias_initializer`` of an LSTM cell."""

    def __init__(self, forget_bias=1.0):
        super(LSTMBias, self).__init__(forget_bias=forget_bias)
        self.forget_bias = forget_bias

    def _init_weight(self, name, arr):
        values = np.zeros(arr.shape, dtype=np.float32)
        n = int(arr.shape[0] / 4)
        values[n:2 * n] = self.forget_bias
        _fill(arr, values)


__all__ += ["Bilinear", "LSTMBias", "FusedRNN"]


@register
class FusedRNN(Initializer):
    """Initializer of a fused RNN's flat ``parameters`` vector (``mx.rnn.FusedRNNCell``): the
    vector is split into its per-layer, per-gate weights and biases (as
    ``FusedRNNCell.unpack_weights`` names them), each initialised by ``init`` -- or, when it
    is None, by the global initializer -- except the LSTM forget-gate biases, set to
    ``forget_bias``; then packed back."""

    def __init__(self, init, num_hidden, num_layers, mode, bidirectional=False, forget_bias=1.0):
        if isinstance(init, str):
            init = create(init)
        super(FusedRNN, self).__init__(init=init.dumps() if init is not None else None,
                                       num_hidden=num_hidden, num_layers=num_layers, mode=mode,
                                       bidirectional=bidirectional, forget_bias=forget_bias)
        self._init = init
        self._num_hidden = num_hidden
        self._num_layers = num_layers
        self._mode = mode
        self._bidirectional = bidirectional
        self._forget_bias = forget_bias

    def _init_weight(self, desc, arr):
        from .rnn.rnn_cell import FusedRNNCell
        cell = FusedRNNCell(self._num_hidden, self._num_layers, mode=self._mode,
                            bidirectional=self._bidirectional, forget_bias=self._forget_bias,
                            prefix="", initializer=self)
        parts = cell.unpack_weights({"parameters": arr})
        glob = getattr(desc, "global_init", None)
        for name, a in parts.items():
            d = InitDesc(name, global_init=glob)
            if self._mode == "lstm" and name.endswith("_f_bias"):
                _fill(a, self._forget_bias)
            elif self._init is not None:
                self._init(d, a)
            elif glob is not None:
                glob(d, a)
            else:
                raise MXNetError("FusedRNN: no initializer for %s: give init= or initialise "
                                 "through a global initializer" % name)
        arr._data[...] = cell.pack_weights(parts)["parameters"]._data
