"""Symbolic reverse-mode differentiation: the backward graph of a Symbol as a Symbol.

Note: backward-graph
    ``gradient(sym, wrt)`` walks the forward graph in reverse DFS post-order (the order eager
    backward uses) and calls each op's registered rule
    ``OpDef.gradient(F, attrs, inputs, outputs, out_grads, ctx)`` with ``F`` a
    :class:`SymbolBuilder`: ``F.<op>(...)`` builds a graph node for that registered op instead
    of computing an array.  Because the rules are written only with registered ops, the
    same rule serves eager autograd (``F = mx.nd``) and backward graphs, and a backward
    graph is an ordinary Symbol: it exports to JSON, evaluates with an executor, and can be
    differentiated again.

    The backward graph of ``sym`` w.r.t. ``wrt = [a, b]``:

    * its inputs are the forward variables the gradients depend on, plus one head-gradient
      variable per output of ``sym``, named ``<output name>_head_grad`` (e.g.
      ``fc_output_head_grad``); a variable the gradient does not depend on is not an argument
      (a loss head such as SoftmaxOutput ignores its head gradient, so a loss graph has no
      ``_head_grad`` argument);
    * its outputs are one per ``wrt`` name, in order, listed as exactly ``a_grad``,
      ``b_grad``: each is a ``_gradient_output`` node (an identity op registered here with
      output name ``grad``) named after the argument;
    * contributions to one entry are summed with ``elemwise_add``; an argument with no
      gradient path gets ``zeros_like(argument)``;
    * new nodes are named ``<forward node name>_backward_<k>`` with one counter per call.
      The graph is built for training mode (``ctx.is_train`` is True) unless ``train=False``
      asks for a predict-mode backward; ``forward_train`` tells mode-dependent rules which
      mode the forward ran in (default: the same).  Side effects of
      eager backward (BatchNorm's moving statistics, ``OpDef.backward_hook``) are not part
      of the graph.

    Evaluated with the forward arguments and head gradients, the outputs equal what
    ``Executor.backward`` (eager autograd over the same rules, in the same order) writes.
"""
import weakref

import numpy as np

from .base import MXNetError
from .graph import Node, topo_order, verify
from .registry import register, get_op, format_attr, Sample
from .lowering import Alias

__all__ = ["gradient", "SymbolBuilder", "HEAD_GRAD_SUFFIX", "forward_node"]

HEAD_GRAD_SUFFIX = "_head_grad"


# Note: backward-provenance
#     Every node a backward graph adds (gradient-rule nodes, sums of contributions, head
#     gradient variables, zeros, _gradient_output) is linked to the forward node it was
#     made for: the node whose rule built it, the entry whose contributions it sums, the
#     head it is the gradient of, the argument it is the gradient of.  The link is a field
#     of this table (keyed by the backward node, weakly), not a naming convention, so
#     renamed or loaded graphs keep it; generated kernels print it in their comments.
_FORWARD_OF = weakref.WeakKeyDictionary()


def forward_node(node):
    """The forward node a backward-graph node was made for, or None (note
    *backward-provenance*)."""
    try:
        return _FORWARD_OF.get(node)
    except TypeError:
        return None


def _identity_infer(attrs, ins):
    return ins, [ins[0]]


register("_gradient_output", inputs=("data",), infer_shape=_identity_infer,
         forward=lambda attrs, ins, ctx: [ins[0].copy()],
         gradient=lambda F, attrs, ins, outs, og, ctx: [og[0]],
         output_names=("grad",), lowering=Alias(), hint="_gradient_output",
         samples=lambda rng: [Sample([rng.uniform(-1, 1, size=(2, 3))])],
         doc="Identity that names a backward graph's output: a node named after argument "
             "``a`` lists its output as ``a_grad`` (see symbol.autodiff note backward-graph).")


def _plain(v):
    """Attr values as Python scalars/tuples so that ``str`` gives MXNet's spelling."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (tuple, list)):
        return tuple(_plain(x) for x in v)
    return v




def _attr_input_names(op, kwargs):
    """Input names of an op whose inputs depend on its attributes (e.g. Custom)."""
    from .symbol import Symbol
    given = {k: format_attr(_plain(v)) for k, v in kwargs.items()
             if v is not None and not isinstance(v, Symbol)}
    try:
        return op.input_names(op.parse_attrs(given, strict=False))
    except MXNetError:
        return op.input_names({})

class _SymCtx:
    """The ``ctx`` handed to gradient rules while building a backward graph: the backward's
    mode (``is_train``), the mode the forward ran in (``forward_train``) and ``needs``, one
    bool per input of the node: False where the input leads to no variable in ``wrt`` (the
    rule may return None for it; ``symbol.ops._common.grad_needed``)."""

    def __init__(self, is_train=True, forward_train=None):
        self.is_train = bool(is_train)
        self.forward_train = self.is_train if forward_train is None else bool(forward_train)
        self.needs = None

    @property
    def rng(self):
        raise MXNetError("a gradient rule drew random numbers while building a backward graph; "
                         "gradients must reuse the forward's saved outputs (e.g. a mask)")


class SymbolBuilder:
    """``F`` for gradient rules: ``F.<op>(*inputs, **attrs)`` returns a new Symbol (a list
    of Symbols for ops with several visible outputs) over a fresh node of that registered
    op, like ``mx.nd.<op>`` returns NDArrays.

    Positional Symbols fill the op's inputs, further positional values fill its attributes
    in declaration order; keyword arguments name inputs or attributes.  Attributes are
    written as ``str(value)``; nodes are named ``<prefix>_backward_<k>``.
    """

    def __init__(self, prefix="grad"):
        self.prefix = prefix
        self.origin = None          # the forward node new nodes are made for
        self._count = 0

    def _name(self):
        k = self._count
        self._count += 1
        return "%s_backward_%d" % (self.prefix, k)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            op = get_op(name)
        except MXNetError:
            raise MXNetError("gradient rule used F.%s, which is not a registered operator "
                             "(gradients must be written with registered ops)" % name) from None

        def build(*args, **kwargs):
            return self.build(op, args, kwargs)
        build.__name__ = name
        return build

    def build(self, op, args, kwargs, name=None):
        from .symbol import Symbol
        kwargs = dict(kwargs)
        kwargs.pop("name", None)
        kwargs.pop("out", None)
        attr_names = list(op.attrs)
        inputs = []
        given = {}
        if op.variadic:
            for a in args:
                if isinstance(a, (list, tuple)):
                    inputs.extend(a)
                else:
                    inputs.append(a)
        else:
            names = op.input_names({}) or _attr_input_names(op, kwargs)
            slots = {}
            k_attr = 0
            for i, a in enumerate(args):
                if i < len(names) and (a is None or isinstance(a, Symbol)):
                    slots[names[i]] = a
                else:
                    if k_attr >= len(attr_names):
                        raise MXNetError("F.%s: too many positional arguments" % op.name)
                    given[attr_names[k_attr]] = a
                    k_attr += 1
            for n in names:
                if n in kwargs:
                    slots[n] = kwargs.pop(n)
            for n in names:
                v = slots.get(n)
                if v is not None:
                    inputs.append(v)
        given.update(kwargs)
        entries = []
        for i, s in enumerate(inputs):
            if not isinstance(s, Symbol) or len(s._outputs) != 1:
                raise MXNetError("F.%s: input %d must be a single-output Symbol, got %r"
                                 % (op.name, i, s))
            n, idx = s._outputs[0]
            entries.append((n, idx, 0))
        if op.variadic and op.variadic not in given:
            given[op.variadic] = len(entries)
        attrs = {k: format_attr(_plain(v)) for k, v in given.items()}
        op.parse_attrs(attrs, strict=True)        # refuse unknown or ill-typed attrs now
        node = Node(op, name or self._name(), attrs, entries)
        if self.origin is not None:
            _FORWARD_OF[node] = self.origin
        nvis = node.num_visible()
        if nvis == 1:
            return Symbol([(node, 0)])
        return [Symbol([(node, i)]) for i in range(nvis)]


def _single_entry(g, what):
    from .symbol import Symbol
    if not isinstance(g, Symbol) or len(g._outputs) != 1:
        raise MXNetError("%s must return single-output Symbols (or None), got %r" % (what, g))
    return g._outputs[0]


def gradient(sym, wrt, train=True, forward_train=None):
    """The backward graph of ``sym`` w.r.t. the variables named in ``wrt``.

    Parameters
    ----------
    sym : Symbol
        The forward graph (any number of outputs).
    wrt : str or list of str
        Names of variables of ``sym`` (arguments or auxiliary states).
    train : bool
        The backward's mode, as ``autograd.backward(train_mode=)`` (default True).
    forward_train : bool, optional
        The mode the forward ran in (default: ``train``); mode-dependent gradient rules
        (BatchNorm) read both.

    Returns
    -------
    Symbol
        Inputs: the forward variables it needs and ``<output>_head_grad`` per output of
        ``sym``; outputs ``<name>_grad`` per ``wrt`` entry, in order.  See the module note
        *backward-graph*.

    Examples
    --------
    >>> g = gradient(mx.sym.sin(x, name='s'), ['x'])          # doctest: +SKIP
    >>> g.list_arguments(), g.list_outputs()                  # doctest: +SKIP
    (['s_output_head_grad', 'x'], ['x_grad'])
    """
    from .symbol import Symbol
    if isinstance(wrt, str):
        wrt = [wrt]
    wrt = list(wrt)
    if not wrt:
        raise MXNetError("gradient: wrt is empty; name at least one variable")
    order = topo_order(sym._outputs)
    variables = {}
    for n in order:
        if n.op is None:
            variables.setdefault(n.name, n)
    for w in wrt:
        if not isinstance(w, str):
            raise TypeError("gradient: wrt must be variable names (str), got %s" % type(w).__name__)
        if w not in variables:
            raise MXNetError("gradient: %r is not a variable of the symbol (variables: %s)"
                             % (w, ", ".join(variables)))
    if len(set(wrt)) != len(wrt):
        raise MXNetError("gradient: wrt names a variable twice: %s" % (wrt,))

    targets = {variables[w] for w in wrt}
    useful = set()
    for n in order:
        if n in targets or any(s in useful for s, _, _ in n.inputs):
            useful.add(n)

    F = SymbolBuilder()
    grads = {}

    def accumulate(key, g, src_name):
        old = grads.get(key)
        if old is None:
            grads[key] = g
        else:
            F.prefix, F.origin = src_name, key[0]
            grads[key] = F.elemwise_add(old, g)

    taken = set(variables)
    for node, idx in sym._outputs:
        name = node.output_name(idx) + HEAD_GRAD_SUFFIX
        base, k = name, 1
        while name in taken:
            name = "%s%d" % (base, k)
            k += 1
        taken.add(name)
        head = Node(None, name)
        _FORWARD_OF[head] = node
        accumulate((node, idx), Symbol([(head, 0)]), node.name)

    ctx = _SymCtx(train, forward_train)
    for node in reversed(order):
        if node.op is None or node not in useful:
            continue
        nout = node.num_outputs()
        og = [grads.pop((node, i), None) for i in range(nout)]
        if all(g is None for g in og):
            continue
        op = node.op
        if not op.differentiable:
            raise MXNetError("Operator %s (node %s) is non-differentiable" % (op.name, node.name))
        F.prefix, F.origin = node.name, node
        outs = [Symbol([(node, i)]) for i in range(nout)]
        og = [g if g is not None else F.zeros_like(outs[i]) for i, g in enumerate(og)]
        ins = [Symbol([(s, i)]) for s, i, _ in node.inputs]
        ctx.needs = tuple(s in useful for s, _, _ in node.inputs)
        in_grads = op.gradient(F, node.parsed, ins, outs, og, ctx)
        if len(in_grads) < len(node.inputs):
            raise MXNetError("gradient rule of %s returned %d gradients for %d inputs"
                             % (op.name, len(in_grads), len(node.inputs)))
        for (src, idx, _v), g in zip(node.inputs, in_grads):
            if g is None or src not in useful:
                continue
            e = _single_entry(g, "gradient rule of %s" % op.name)
            accumulate((src, idx), Symbol([e]), src.name)

    out_op = get_op("_gradient_output")
    heads = []
    for w in wrt:
        var = variables[w]
        g = grads.get((var, 0))
        if g is None:
            F.prefix, F.origin = w, var
            g = F.zeros_like(Symbol([(var, 0)]))
        e = _single_entry(g, "gradient")
        out = Node(out_op, w, {}, [(e[0], e[1], 0)])
        _FORWARD_OF[out] = var
        heads.append((out, 0))
    verify(heads)
    return Symbol(heads)
