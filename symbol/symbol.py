"""The Symbol: a tuple of output entries over the immutable node graph.

A :class:`Symbol` is a list of heads ``(Node, output_index)``.  Everything a user does with
it either reads the graph (listing, attributes, inference, export) or builds a new Symbol
that shares every node it did not have to change (arithmetic, composition); see the Note
*symbol-api* below.

Note: symbol-api
    The user-facing API follows MXNet 1.9.1 (FINDINGS §7):

    * op functions ``symbol.<Name>`` are generated from the registry in :mod:`symbol.api`;
      operators on Symbols use the *elemwise* ops and MXNet's name hints (``_plus0``,
      ``_plusscalar0``, ``_rpower_scalar0``);
    * composition ``net(h=other)`` rebuilds only the nodes between the substituted variables
      and the heads; nodes that did not change are shared, never copied;
    * two places mutate an existing node in place, because MXNet does and a user can see the
      difference: ``Symbol._set_attr`` and the ``__init__`` attr BatchNorm puts on the
      moving-statistics variables passed to it.  A variable also carries a version counter
      (bumped each time an op mutates it, e.g. BatchNorm's aux states) that ends up as the
      third number of the ``inputs`` triples in the JSON.
"""
import copy
import os
import weakref
from numbers import Number

from .base import MXNetError, atomic_write
from .graph import topo_order, verify, Node
from . import json_io

__all__ = ["Symbol", "HIDDEN_KEYS", "NotImplementedForSymbol"]

# Attribute keys MXNet stores as ``__key__`` and reports under both spellings.
HIDDEN_KEYS = ("ctx_group", "lr_mult", "wd_mult", "force_mirroring", "mirror_stage")

# Version counters of variable nodes (nnvm ``VariableParam.version``).
_VAR_VERSION = weakref.WeakKeyDictionary()


class NotImplementedForSymbol(MXNetError):
    """An operation that only makes sense for NDArrays (MXNet's class of the same name)."""

    def __init__(self, function, alias=None, *args):
        name = getattr(function, "__name__", str(function))
        super().__init__("Function %s (namely operator %s) is not implemented for Symbol and "
                         "only available in NDArray." % (name, alias or name))


def hidden_key(key):
    """MXNet's attribute-key rule (c_api_symbolic.cc): a bare hidden key ``lr_mult`` is
    stored as ``__lr_mult__``; a key that merely ends with one (``fc_lr_mult``) is refused."""
    if key.startswith("__") and key.endswith("__"):
        return key
    for k in HIDDEN_KEYS:
        if key == k:
            return "__%s__" % k
        if key.endswith(k):
            raise MXNetError(
                "setting variable attributes with %s is deprecated; please instead use "
                "w = Variable(%s=...) and sym = YourOp(%s=w)" % (key, k, key[:-len(k) - 1] or "weight"))
    return key


def _with_hidden_aliases(attrs):
    """list_attr/attr_dict report ``__lr_mult__`` also as ``lr_mult`` (MXNet's C API does)."""
    out = {}
    for k, v in attrs.items():
        out[k] = v
        if len(k) > 4 and k.startswith("__") and k.endswith("__") and k[2:-2] in HIDDEN_KEYS:
            out[k[2:-2]] = v
    return out


def var_version(node):
    return _VAR_VERSION.get(node, 0)


def bump_version(node):
    v = _VAR_VERSION.get(node, 0) + 1
    _VAR_VERSION[node] = v
    return v


class Symbol:
    """A symbolic graph: ``outputs`` is a tuple of ``(Node, output_index)``.

    Build Symbols with :func:`symbol.Variable`, the op functions (``symbol.FullyConnected``
    ...), arithmetic, :func:`symbol.Group`, :func:`symbol.load_json` or
    ``agjit.autograd.get_symbol``.

    >>> import symbol as sym
    >>> x = sym.Variable('x')
    >>> y = sym.FullyConnected(x, num_hidden=4, name='fc') + 1
    >>> y.list_arguments()
    ['x', 'fc_weight', 'fc_bias']
    >>> y.infer_shape(x=(2, 3))[1]
    [(2, 4)]
    """

    __slots__ = ("_outputs", "__weakref__")

    def __init__(self, outputs):
        self._outputs = tuple((n, int(i)) for n, i in outputs)

    # -- traversal -----------------------------------------------------------------------
    def _topo(self):
        return topo_order(self._outputs)

    def _version_of(self, node, k):
        return node.inputs[k][2]

    def _head_node(self):
        """The node of a non-grouped symbol (all outputs from one node), else None."""
        node = self._outputs[0][0] if self._outputs else None
        for n, _ in self._outputs:
            if n is not node:
                return None
        return node

    # -- listing -------------------------------------------------------------------------
    def _mutated_ids(self, order):
        muts = set()
        for n in order:
            if n.op is not None and n.op.mutate_inputs:
                for k in n.op.mutate_inputs:
                    if k < len(n.inputs):
                        muts.add(id(n.inputs[k][0]))
        return muts

    def list_arguments(self):
        """Variable names in DFS order, without the auxiliary states (mutated inputs)."""
        order = self._topo()
        muts = self._mutated_ids(order)
        return [n.name for n in order if n.op is None and id(n) not in muts]

    def list_auxiliary_states(self):
        """Names of the variables an op mutates (BatchNorm's moving statistics)."""
        order = self._topo()
        muts = self._mutated_ids(order)
        return [n.name for n in order if n.op is None and id(n) in muts]

    def list_inputs(self):
        """Every variable name in DFS order (arguments and auxiliary states)."""
        return [n.name for n in self._topo() if n.op is None]

    def list_outputs(self):
        """Output names: a variable's name, ``<op>_output``, ``<op>_output<i>`` or
        ``<op>_<name>`` for ops that name their outputs."""
        return [n.output_name(i) for n, i in self._outputs]

    @property
    def name(self):
        """The node name for a non-grouped symbol, None for a group of several nodes."""
        node = self._head_node()
        return None if node is None else node.name

    def __len__(self):
        return len(self._outputs)

    def __iter__(self):
        return (Symbol([o]) for o in self._outputs)

    def __getitem__(self, index):
        """The i-th output, the output called ``index``, or a Group for a slice."""
        n = len(self._outputs)
        if isinstance(index, slice):
            return Symbol([self._outputs[i] for i in range(*index.indices(n))])
        if isinstance(index, str):
            found = [i for i, nm in enumerate(self.list_outputs()) if nm == index]
            if not found:
                raise ValueError('Cannot find output that matches name "%s"' % index)
            if len(found) > 1:
                raise ValueError('There are multiple outputs with name "%s"' % index)
            index = found[0]
        if isinstance(index, bool) or not isinstance(index, int):
            try:
                import numpy as np
                if isinstance(index, np.integer):
                    index = int(index)
                else:
                    raise TypeError
            except TypeError:
                raise TypeError("Symbol only support integer index to fetch i-th output") from None
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("Symbol has %d outputs; index %d is out of range" % (n, index))
        return Symbol([self._outputs[index]])

    def get_internals(self):
        """Every visible output of every node, in DFS order (variables included)."""
        outs = []
        for node in self._topo():
            outs.extend((node, i) for i in range(node.num_visible()))
        return Symbol(outs)

    def get_children(self):
        """The direct inputs of the head node(s) as a grouped Symbol; None for a variable."""
        seen = set()
        outs = []
        for node, _ in self._outputs:
            if id(node) in seen:
                continue
            seen.add(id(node))
            outs.extend((src, idx) for (src, idx, _v) in node.inputs)
        return Symbol(outs) if outs else None

    # -- attributes ----------------------------------------------------------------------
    def attr(self, key):
        """The string value of attribute ``key`` of a non-grouped symbol, else None.
        ``attr('lr_mult')`` finds ``__lr_mult__`` (the hidden keys, see HIDDEN_KEYS)."""
        node = self._head_node()
        if node is None:
            return None
        if key == "name":
            return node.name
        if key in HIDDEN_KEYS:
            key = "__%s__" % key
        return node.attrs.get(key)

    def list_attr(self, recursive=False):
        """The attributes of the (first) head node, hidden keys reported twice."""
        if recursive:
            raise DeprecationWarning("Symbol.list_attr with recursive=True has been deprecated. "
                                     "Please use attr_dict instead.")
        return _with_hidden_aliases(self._outputs[0][0].attrs)

    def attr_dict(self):
        """``{node_name: {key: value}}`` for every node with attributes."""
        ret = {}
        for node in self._topo():
            if node.attrs:
                ret.setdefault(node.name, {}).update(_with_hidden_aliases(node.attrs))
        return ret

    def _set_attr(self, **kwargs):
        """Set string attributes on the head node, in place (as MXNet does: every graph that
        shares the node sees them)."""
        node = self._head_node()
        if node is None:
            raise MXNetError("Symbol._set_attr only works for non-grouped symbols")
        for k, v in kwargs.items():
            if not isinstance(v, str):
                raise ValueError("Set Attr only accepts string values")
        for k, v in kwargs.items():
            k = hidden_key(k)
            if k == "name":
                node.name = v
            else:
                node.attrs[k] = v
        if node.op is not None:
            node._parsed = None
            node.op.parse_attrs(node.attrs)

    # -- printing ------------------------------------------------------------------------
    def __repr__(self):
        name = self.name
        if name is None:
            return "<Symbol group [%s]>" % ", ".join(n.name for n, _ in self._outputs)
        return "<Symbol %s>" % name

    def debug_str(self):
        """A text dump of the graph in nnvm's ``Symbol::Print`` layout."""
        lines = []
        if len(self._outputs) == 1 and not self._outputs[0][0].inputs:
            node = self._outputs[0][0]
            if node.op is None:
                return "Variable:%s\n" % node.name
            return "AtomicFunctor  Op:%s\n" % node.op.name
        lines.append("Symbol Outputs:")
        for i, (n, idx) in enumerate(self._outputs):
            lines.append("\toutput[%d]=%s(%d)" % (i, n.name, idx))
        for node in self._topo():
            if node.op is None:
                lines.append("Variable:%s" % node.name)
                continue
            lines.append("--------------------")
            lines.append("Op:%s, Name=%s" % (node.op.name, node.name))
            lines.append("Inputs:")
            for i, (src, idx, ver) in enumerate(node.inputs):
                s = "\targ[%d]=%s(%d)" % (i, src.name, idx)
                if src.op is None:
                    s += " version=%d" % ver
                lines.append(s)
            if node.attrs:
                lines.append("Attrs:")
                for k in sorted(node.attrs):
                    lines.append("\t%s=%s" % (k, node.attrs[k]))
        return "\n".join(lines) + "\n"

    def summary(self, shape=None):
        """A table of the graph (node, op, output shape, parameter count) as a string;
        ``shape`` is a dict of input shapes used for inference (see :mod:`symbol.viz`)."""
        from .viz import summary
        return summary(self, shape)

    # -- copying -------------------------------------------------------------------------
    def __copy__(self):
        return Symbol(self._outputs)

    def __deepcopy__(self, memo):
        """A copy with fresh nodes (as MXNet's deepcopy), so ``_set_attr`` on the copy does
        not reach the original.  ``copy.copy`` shares the (immutable) nodes instead."""
        new = {}
        for n in self._topo():
            m = Node(n.op, n.name, copy.deepcopy(n.attrs, memo),
                     [(new[id(s)], i, v) for (s, i, v) in n.inputs])
            if n.op is None and n in _VAR_VERSION:
                _VAR_VERSION[m] = _VAR_VERSION[n]
            new[id(n)] = m
        return Symbol([(new[id(n)], i) for n, i in self._outputs])

    def __reduce__(self):
        return (_from_json, (self.tojson(),))

    # -- composition ---------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        """Compose: ``net(h=other)`` returns a copy of ``net`` in which the variable ``h``
        is replaced by ``other``.  Only keyword composition is supported for graphs."""
        kwargs.pop("name", None)
        if args and kwargs:
            raise TypeError("compose only accept input Symbols either as positional or keyword "
                            "arguments, not both")
        for a in list(args) + list(kwargs.values()):
            if not isinstance(a, Symbol):
                raise TypeError("Compose expect `Symbol` as arguments")
        for k, a in kwargs.items():
            if len(a._outputs) != 1:
                raise MXNetError("Symbol.Compose: keyword argument %s is a group of %d outputs; "
                                 "a single output is required" % (k, len(a._outputs)))
        if len(self._outputs) == 1 and self._outputs[0][0].op is None:
            raise MXNetError("Symbol.Compose: a Variable (%s) cannot be composed"
                             % self._outputs[0][0].name)
        if args:
            raise MXNetError("Symbol.Compose: General composition only support kwargs for now "
                             "(got %d positional arguments)" % len(args))
        return _compose(self, kwargs)

    # -- arithmetic (FINDINGS §7) ----------------------------------------------------------
    def _binary(self, other, sym_op, sym_hint, scalar_op, scalar_hint, pyname):
        if isinstance(other, Symbol):
            return _api._create_op(sym_op, [self, other], {}, None, sym_hint)
        if isinstance(other, Number):
            return _api._create_op(scalar_op, [self], {"scalar": other}, None, scalar_hint)
        raise TypeError("type %s not supported" % str(type(other)))

    def _rbinary(self, other, scalar_op, scalar_hint):
        if isinstance(other, Number):
            return _api._create_op(scalar_op, [self], {"scalar": other}, None, scalar_hint)
        raise TypeError("type %s not supported" % str(type(other)))

    def __add__(self, other):
        return self._binary(other, "elemwise_add", "_plus", "_plus_scalar", "_plusscalar", "+")

    __radd__ = __add__

    def __iadd__(self, other):
        return self.__add__(other)

    def __sub__(self, other):
        return self._binary(other, "elemwise_sub", "_minus", "_minus_scalar", "_minusscalar", "-")

    def __isub__(self, other):
        return self.__sub__(other)

    def __rsub__(self, other):
        return self._rbinary(other, "_rminus_scalar", "_rminusscalar")

    def __mul__(self, other):
        return self._binary(other, "elemwise_mul", "_mul", "_mul_scalar", "_mulscalar", "*")

    __rmul__ = __mul__

    def __imul__(self, other):
        return self.__mul__(other)

    def __truediv__(self, other):
        return self._binary(other, "elemwise_div", "_div", "_div_scalar", "_divscalar", "/")

    __div__ = __truediv__

    def __itruediv__(self, other):
        return self.__truediv__(other)

    def __rtruediv__(self, other):
        return self._rbinary(other, "_rdiv_scalar", "_rdivscalar")

    __rdiv__ = __rtruediv__

    def __mod__(self, other):
        return self._binary(other, "_mod", "_mod", "_mod_scalar", "_modscalar", "%")

    def __rmod__(self, other):
        return self._rbinary(other, "_rmod_scalar", "_rmodscalar")

    def __pow__(self, other):
        return self._binary(other, "_power", "_power", "_power_scalar", "_powerscalar", "**")

    def __rpow__(self, other):
        return self._rbinary(other, "_rpower_scalar", "_rpower_scalar")

    def __neg__(self):
        return self.__mul__(-1.0)

    def __abs__(self):
        return _api._create_op("abs", [self], {}, None, "abs")

    def _compare(self, other, name):
        if isinstance(other, Symbol):
            return _api._create_op("_" + name, [self, other], {}, None, "_" + name)
        if isinstance(other, Number):
            return _api._create_op("_%s_scalar" % name, [self], {"scalar": other}, None,
                                   "_%s_scalar" % name)
        raise TypeError("type %s not supported" % str(type(other)))

    def __eq__(self, other):
        return self._compare(other, "equal")

    def __ne__(self, other):
        return self._compare(other, "not_equal")

    def __gt__(self, other):
        return self._compare(other, "greater")

    def __ge__(self, other):
        return self._compare(other, "greater_equal")

    def __lt__(self, other):
        return self._compare(other, "lesser")

    def __le__(self, other):
        return self._compare(other, "lesser_equal")

    __hash__ = object.__hash__

    def __bool__(self):
        raise NotImplementedForSymbol(self.__bool__, "bool")

    def astype(self, dtype):
        """``Cast`` to ``dtype`` (name hint ``cast``)."""
        return _api._call("Cast", "cast", [self], {"dtype": dtype})

    # -- inference -----------------------------------------------------------------------
    def infer_shape(self, *args, **kwargs):
        """Infer argument, output and auxiliary shapes from the given argument shapes
        (positional in list_arguments order, or by name).  Returns three lists of tuples,
        or ``(None, None, None)`` with a UserWarning when some shape stays unknown."""
        from . import infer
        self._check_file_budget(args, kwargs, "infer_shape")
        return infer.infer_shape(self, args, kwargs, partial=False)

    def infer_shape_partial(self, *args, **kwargs):
        """Like infer_shape, with ``()`` for unknown shapes and 0 for unknown dimensions."""
        from . import infer
        self._check_file_budget(args, kwargs, "infer_shape_partial")
        return infer.infer_shape(self, args, kwargs, partial=True)

    def _check_file_budget(self, args, kwargs, where):
        """Nodes read from a graph file may not make inference size more than their file's
        budget (symbol/budget.py, note *file-budget*); free for graphs built in Python."""
        from . import budget
        if not budget.active() or not budget.file_nodes(self._topo()):
            return
        from . import infer
        order, values = infer.infer_graph_shapes(self, args, kwargs)
        given = [v for v in list(args) + list(kwargs.values()) if isinstance(v, tuple)]
        budget.check_entries(order, values, given, where)

    def infer_type(self, *args, **kwargs):
        """Infer dtypes (numpy type objects such as ``numpy.float32``) from the given ones;
        ``(None, None, None)`` with a UserWarning when some type stays unknown."""
        from . import infer
        return infer.infer_type(self, args, kwargs, partial=False)

    def infer_type_partial(self, *args, **kwargs):
        """Like infer_type, with None for unknown types."""
        from . import infer
        return infer.infer_type(self, args, kwargs, partial=True)

    # -- execution (symbol/executor.py) and autodiff (symbol/autodiff.py) -----------------
    def bind(self, ctx, args, args_grad=None, grad_req="write", aux_states=None,
             group2ctx=None, shared_exec=None):
        """Bind to concrete arrays and return an Executor (see :mod:`symbol.executor`)."""
        from . import executor
        self._check_bind_budget(args, aux_states)
        return executor.bind(self, ctx, args, args_grad=args_grad, grad_req=grad_req,
                             aux_states=aux_states, group2ctx=group2ctx, shared_exec=shared_exec)

    def _check_bind_budget(self, args, aux_states):
        from . import budget
        if not budget.active() or not budget.file_nodes(self._topo()):
            return
        names = self.list_arguments()
        items = list(args.items()) if isinstance(args, dict) else list(zip(names, args or ()))
        shapes = {k: tuple(v.shape) for k, v in items if hasattr(v, "shape")}
        aux = aux_states.values() if isinstance(aux_states, dict) else (aux_states or ())
        given = list(shapes.values()) + [tuple(a.shape) for a in aux if hasattr(a, "shape")]
        try:
            from . import infer
            order, values = infer.infer_graph_shapes(self, (), shapes)
        except (MXNetError, TypeError, ValueError):
            return      # the executor reports bad arguments itself
        budget.check_entries(order, values, given, "bind")

    def simple_bind(self, ctx, grad_req="write", type_dict=None, stype_dict=None,
                    group2ctx=None, shared_arg_names=None, shared_exec=None,
                    shared_buffer=None, **kwargs):
        """Allocate arrays from the given shapes and bind (see :mod:`symbol.executor`)."""
        from . import executor
        return executor.simple_bind(self, ctx, grad_req=grad_req, type_dict=type_dict,
                                    stype_dict=stype_dict, group2ctx=group2ctx,
                                    shared_arg_names=shared_arg_names, shared_exec=shared_exec,
                                    shared_buffer=shared_buffer, **kwargs)

    def eval(self, ctx=None, **kwargs):
        """Evaluate with the given argument arrays; returns a list of NDArrays."""
        from . import executor
        return executor.eval(self, ctx=ctx, **kwargs)

    def gradient(self, wrt):
        """The backward graph: a Symbol computing the gradients w.r.t. ``wrt`` (names)."""
        from . import autodiff
        return autodiff.gradient(self, wrt)

    # -- export --------------------------------------------------------------------------
    def tojson(self):
        order = verify(self._outputs)
        index = {id(n): k for k, n in enumerate(order)}
        nodes = []
        for n in order:
            nodes.append({"op": n.op_name, "name": n.name, "attrs": n.attrs,
                          "inputs": [(index[id(s)], i, v) for (s, i, v) in n.inputs],
                          "nout": n.num_outputs()})
        heads = [(index[id(n)], i, 0) for n, i in self._outputs]
        return json_io.graph_to_json(nodes, heads)

    def save(self, fname, remove_amp_cast=True):
        """Write :meth:`tojson` to ``fname`` atomically (a temporary file, then rename)."""
        if not isinstance(fname, (str, os.PathLike)):
            raise TypeError("fname need to be string")
        atomic_write(fname, [self.tojson()], mode="w")

    def to_networkx(self, shapes=None, dtypes=None):
        """The graph as a ``networkx.DiGraph`` (see :func:`symbol.viz.to_networkx`)."""
        from .viz import to_networkx
        return to_networkx(self, shapes=shapes, dtypes=dtypes)

    def to_dot(self, shapes=None, title=None):
        """Graphviz DOT text of the graph (see :func:`symbol.viz.to_dot`)."""
        from .viz import to_dot
        return to_dot(self, shapes=shapes, title=title)

    def draw(self, ax=None, shapes=None):
        """Draw the graph with matplotlib (see :func:`symbol.viz.draw`)."""
        from .viz import draw
        return draw(self, ax=ax, shapes=shapes)


# Fluent methods MXNet 1.9.1's Symbol has (``x.reshape(...)`` is ``symbol.reshape(x, ...)``),
# plus agjit's ``dot``.  Only the names whose operator is registered become methods (bound
# after symbol.api has built the operator functions, below), so no method advertises a
# missing op; FLUENT_MISSING lists MXNet's names agjit lacks (test_fluent_api checks both).
MXNET_FLUENT = (
    "abs", "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctanh", "argmax",
    "argmax_channel", "argmin", "argsort", "broadcast_axes", "broadcast_like", "broadcast_to",
    "cbrt", "ceil", "clip", "cos", "cosh", "degrees", "depth_to_space", "diag", "exp",
    "expand_dims", "expm1", "fix", "flatten", "flip", "floor", "log", "log10", "log1p", "log2",
    "log_softmax", "max", "mean", "min", "nanprod", "nansum", "norm", "one_hot", "ones_like",
    "pad", "pick", "prod", "radians", "rcbrt", "reciprocal", "relu", "repeat", "reshape",
    "reshape_like", "rint", "round", "rsqrt", "shape_array", "sigmoid", "sign", "sin", "sinh",
    "size_array", "slice", "slice_axis", "slice_like", "softmax", "softmin", "sort",
    "space_to_depth", "split", "split_v2", "sqrt", "square", "squeeze", "sum", "swapaxes",
    "take", "tan", "tanh", "tile", "topk", "transpose", "trunc", "zeros_like")
_FLUENT = MXNET_FLUENT + ("dot",)
# op names behind fluent names that are not themselves op functions
_FLUENT_OP = {"split_v2": "_split_v2"}


def _make_fluent(fname, opname):
    if fname == "split_v2":       # a Python function in MXNet, not an op function
        def method(self, *args, **kwargs):
            import sys
            return sys.modules[__package__].split_v2(self, *args, **kwargs)
    else:
        def method(self, *args, **kwargs):
            return _api.OP_FUNCTIONS[opname](self, *args, **kwargs)
    method.__name__ = fname
    method.__qualname__ = "Symbol." + fname
    method.__doc__ = "Same as ``symbol.%s(self, *args, **kwargs)``." % fname
    return method


def _not_for_symbol(fname, alias=None):
    def method(self, *args, **kwargs):
        raise NotImplementedForSymbol(getattr(self, fname), alias)
    method.__name__ = fname
    method.__qualname__ = "Symbol." + fname
    method.__doc__ = "Not available for Symbol (MXNet raises NotImplementedForSymbol)."
    return method


for _f in ("asnumpy", "asscalar", "as_in_context", "backward", "copy", "detach",
           "wait_to_read"):
    if not hasattr(Symbol, _f):
        setattr(Symbol, _f, _not_for_symbol(_f))


def _from_json(text):
    return json_io.load_json(text)


def _compose(sym, kwargs):
    """Replace the variables named in ``kwargs`` by the given single-output symbols,
    rebuilding only the nodes that (transitively) read them."""
    order = sym._topo()
    repl = {}                                # id(variable node) -> (node, index)
    matched = set()
    for n in order:
        if n.op is None and n.name in kwargs:
            repl[id(n)] = kwargs[n.name]._outputs[0]
            matched.add(n.name)
    missing = [k for k in kwargs if k not in matched]
    if missing:
        raise MXNetError("Symbol.Compose: keyword argument(s) %s not found; the inputs are %s"
                         % (missing, sym.list_inputs()))
    new = {}                                 # id(old node) -> new node
    for n in order:
        if n.op is None:
            continue
        changed = False
        inputs = []
        muts = set(n.op.mutate_inputs)
        for k, (src, idx, ver) in enumerate(n.inputs):
            if id(src) in repl:
                src, idx = repl[id(src)]
                changed = True
                if src.op is None:
                    ver = bump_version(src) if k in muts else var_version(src)
                elif k in muts:
                    raise MXNetError("Symbol.Compose: input %d of %s (%s) is mutated by the op, so "
                                     "it can only be replaced by a Variable, got the output of %s"
                                     % (k, n.name, n.op.name, src.name))
                else:
                    ver = 0
            elif id(src) in new:
                src = new[id(src)]
                changed = True
            inputs.append((src, idx, ver))
        if changed:
            node = Node(n.op, n.name, n.attrs, inputs)
            new[id(n)] = node
    out = Symbol([(new.get(id(n), n), i) for n, i in sym._outputs])
    verify(out._outputs)            # every transformation re-checks the graph invariants
    return out


from . import api as _api  # noqa: E402  (api imports Symbol from this module)

FLUENT_MISSING = []
for _f in _FLUENT:
    _o = _FLUENT_OP.get(_f, _f)
    if _o in _api.OP_FUNCTIONS:
        setattr(Symbol, _f, _make_fluent(_f, _o))
    else:
        FLUENT_MISSING.append(_f)
del _f, _o

