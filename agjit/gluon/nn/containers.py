"""Container blocks: Sequential, HybridSequential, Lambda, HybridLambda."""
import warnings

from ... import ndarray as _nd
import symbol as _symbol
from ..block import Block, HybridBlock, _indent

__all__ = ["Sequential", "HybridSequential", "Lambda", "HybridLambda"]


class _Stack(object):
    """What Sequential and HybridSequential share: children added in order and called one
    after another (a tuple output feeds the next block's extra arguments), MXNet's repr,
    slicing into a new container of the same class, len and iteration."""

    def add(self, *blocks):
        """Append blocks (registered as children ``'0'``, ``'1'``, ...; HybridSequential
        refuses a non-hybrid block with ValueError)."""
        for block in blocks:
            self.register_child(block)

    def _chain(self, x, *args):
        for block in self._children.values():
            x = block(x, *args)
            args = []
            if isinstance(x, (tuple, list)):
                args = x[1:]
                x = x[0]
        if args:
            x = tuple([x] + list(args))
        return x

    def __repr__(self):
        s = '{name}(\n{modstr}\n)'
        modstr = '\n'.join(['  ({key}): {block}'.format(key=key, block=_indent(repr(block), 2))
                            for key, block in self._children.items()])
        return s.format(name=self.__class__.__name__, modstr=modstr)

    def __getitem__(self, key):
        layers = list(self._children.values())[key]
        if isinstance(layers, list):
            net = type(self)(prefix=self._prefix)
            with net.name_scope():
                net.add(*layers)
            return net
        return layers

    def __len__(self):
        return len(self._children)

    def __iter__(self):
        return iter(self._children.values())


class Sequential(_Stack, Block):
    """Stacks Blocks sequentially: the output of each is the input of the next.

    >>> net = mx.gluon.nn.Sequential()
    >>> with net.name_scope():
    ...     net.add(mx.gluon.nn.Lambda('exp'), mx.gluon.nn.Lambda(lambda z: z * 2))
    >>> net(mx.nd.zeros((1,))).asnumpy().tolist()
    [2.0]
    """

    def __init__(self, prefix=None, params=None):
        super(Sequential, self).__init__(prefix=prefix, params=params)

    def forward(self, x, *args):
        return self._chain(x, *args)

    def hybridize(self, active=True, **kwargs):
        """Hybridize the HybridBlock children (warns when all are: HybridSequential would
        compile the whole stack as one graph)."""
        if self._children and all(isinstance(c, HybridBlock) for c in self._children.values()):
            warnings.warn("All children of this Sequential layer '%s' are HybridBlocks. Consider "
                          "using HybridSequential for the best performance." % self.prefix,
                          stacklevel=2)
        super(Sequential, self).hybridize(active, **kwargs)


class HybridSequential(_Stack, HybridBlock):
    """Stacks HybridBlocks sequentially; hybridized, the whole stack is one compiled graph.

    >>> net = mx.gluon.nn.HybridSequential()
    >>> with net.name_scope():
    ...     net.add(mx.gluon.nn.HybridLambda('tanh'))
    >>> net.hybridize(); net(mx.nd.zeros((2,))).asnumpy().tolist()
    [0.0, 0.0]
    """

    def __init__(self, prefix=None, params=None):
        super(HybridSequential, self).__init__(prefix=prefix, params=params)

    def hybrid_forward(self, F, x, *args):
        return self._chain(x, *args)


class Lambda(Block):
    """Wraps an operator name of ``mx.nd`` (``'tanh'``) or a Python function as a Block.

    >>> mx.gluon.nn.Lambda('exp')(mx.nd.zeros((1,))).asnumpy().tolist()
    [1.0]
    """

    def __init__(self, function, prefix=None):
        super(Lambda, self).__init__(prefix=prefix)
        if isinstance(function, str):
            assert hasattr(_nd, function), \
                "Function name %s is not found in ndarray." % function
            self._func_impl = getattr(_nd, function)
        elif callable(function):
            self._func_impl = function
        else:
            raise ValueError("Unrecognized function in lambda: {} of type {}".format(
                function, type(function)))

    def forward(self, *args):
        return self._func_impl(*args)

    def __repr__(self):
        return '{name}({function})'.format(name=self.__class__.__name__,
                                           function=getattr(self._func_impl, '__name__',
                                                            repr(self._func_impl)))


class HybridLambda(HybridBlock):
    """Wraps an operator name present in both ``mx.nd`` and ``mx.sym``, or a function
    ``f(F, x, *args)``, as a HybridBlock.

    >>> mx.gluon.nn.HybridLambda(lambda F, x: F.relu(x))(mx.nd.array([-1, 1])).asnumpy().tolist()
    [0.0, 1.0]
    """

    def __init__(self, function, prefix=None):
        super(HybridLambda, self).__init__(prefix=prefix)
        if isinstance(function, str):
            assert hasattr(_nd, function) and hasattr(_symbol, function), \
                "Function name %s is not found in symbol/ndarray." % function
            func_dict = {_symbol: getattr(_symbol, function), _nd: getattr(_nd, function)}
            self._func = lambda F, *args: func_dict[F](*args)
            self._func_name = function
        elif callable(function):
            self._func = function
            self._func_name = function.__name__
        else:
            raise ValueError("Unrecognized function in lambda: {} of type {}".format(
                function, type(function)))

    def hybrid_forward(self, F, x, *args):
        return self._func(F, x, *args)

    def __repr__(self):
        return '{name}({function})'.format(name=self.__class__.__name__,
                                           function=self._func_name)
