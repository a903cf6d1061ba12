"""Graph-level shape and dtype inference: the one engine behind Symbol.infer_shape /
infer_shape_partial / infer_type, the executors and the JIT (:func:`infer_graph`).

Every node output of the graph is an *entry* ``(node, output_index)`` with a partially known
value: a shape (a tuple whose unknown dimensions are 0, or None when even the rank is
unknown) or a dtype name (None when unknown).  Tables are dicts keyed by entries.

Note: two-way-inference
    The loop is MXNet's (src/executor/infer_graph_attr_pass.cc): sweeps over the nodes
    alternate forward and backward; each op's rule (``OpDef.infer_shape`` /
    ``infer_type``) sees what is known of its inputs *and* outputs (rules written
    ``(attrs, ins, outs)`` receive the outputs) and returns both, so shapes flow from inputs
    to outputs and back (FullyConnected's batch from its output, a label from the data,
    an elementwise input from its sum).  Values merge (0 dims filled, conflicts raise
    MXNetError naming the node, the op and both values).  A variable whose entry is not
    complete re-reads its ``__shape__`` / ``__dtype__`` attribute at every visit, as MXNet
    does, so a partial value inferred into it does not outlive the next sweep.  The loop
    runs while the number of unknowns (unknown dims, an unknown rank counting 1; unknown
    dtypes) falls, plus one last sweep while some node is unfinished -- which is why
    ``infer_shape_partial`` returns MXNet's partial answers and not the most that could be
    inferred.  A rule that cannot cope with partial information (TypeError/ValueError...)
    is skipped until its inputs are known.  With every variable known, one forward sweep
    does it all (the JIT's and the executors' case).

MXNet's conventions (legacy shape semantics, FINDINGS section 7): ``infer_shape`` returns
lists of tuples in ``list_arguments`` / ``list_outputs`` / ``list_auxiliary_states`` order,
or ``(None, None, None)`` plus MXNet's UserWarning when anything stays unknown; the
``_partial`` variants return ``()`` (shape) or None (dtype) for unknowns instead.  Under
``mx.np_shape(True)`` (:func:`set_np_shape`) shapes are read and written with -1 for an
unknown dimension and None for an unknown shape (agjit keeps 0 internally, so a zero-size
dimension given there is taken as unknown).
"""
import threading
import warnings

import numpy as np

from .base import MXNetError, CODE_DTYPES, dtype_name, parse_literal, AttrParseError
from .ops._common import fmt, merge_shape

__all__ = ["is_np_shape", "set_np_shape", "infer_graph", "infer_shape", "infer_type", "infer_graph_shapes", "infer_graph_types"]


# -- value kinds -------------------------------------------------------------------------------
class _ShapeKind:
    what = "shape"
    attr = "__shape__"

    @staticmethod
    def known(v):
        return v is not None and all(d > 0 for d in v)

    @staticmethod
    def unknown_count(v):
        """MXNet's count of what an entry still lacks: 1 for an unknown rank, else the
        number of unknown dimensions."""
        return 1 if v is None else sum(1 for d in v if d <= 0)

    @staticmethod
    def merge(a, b):
        """Merged value, or raise ValueError on conflict (the ops' own merge rule)."""
        try:
            return merge_shape("infer_shape", "shape", a, b)
        except MXNetError:
            raise ValueError from None

    @staticmethod
    def norm(v):
        return None if v is None else tuple(int(d) for d in v)

    @staticmethod
    def show(v):
        return fmt(v)

    @staticmethod
    def run(node, ins, outs):
        return _call(node.op.infer_shape, node.parsed, ins, outs)

    @staticmethod
    def from_attr(node):
        return _parse_shape_attr(node)


class _TypeKind:
    what = "dtype"
    attr = "__dtype__"

    @staticmethod
    def known(v):
        return v is not None

    @staticmethod
    def unknown_count(v):
        return 1 if v is None else 0

    @staticmethod
    def merge(a, b):
        if a is None:
            return b
        if b is None or a == b:
            return a
        raise ValueError

    @staticmethod
    def norm(v):
        return _norm_type(v)

    @staticmethod
    def show(v):
        return str(v)

    @staticmethod
    def run(node, ins, outs):
        return _call(node.op.infer_type, node.parsed, ins, outs)

    @staticmethod
    def from_attr(node):
        return _parse_dtype_attr(node)


_METHOD_TAKES_OUTS = {}


def _call(method, attrs, ins, outs):
    """An OpDef's inference method with the output values when it takes them (OpDef
    subclasses such as Custom's may override it with the two-argument form)."""
    func = getattr(method, "__func__", method)
    takes = _METHOD_TAKES_OUTS.get(func)
    if takes is None:
        import inspect
        takes = _METHOD_TAKES_OUTS[func] = len(inspect.signature(method).parameters) >= 3
    return method(attrs, ins, outs) if takes else method(attrs, ins)


class _NpShape(threading.local):
    active = False


_NP_SHAPE = _NpShape()


def is_np_shape():
    """Whether NumPy shape semantics are on in this thread (MXNet's ``mx.is_np_shape``):
    infer_shape then reads and writes -1 for an unknown dimension and None for an unknown
    shape, instead of the legacy 0 and ()."""
    return _NP_SHAPE.active


def set_np_shape(active):
    """Turn NumPy shape semantics on or off in this thread; returns the previous state."""
    prev = _NP_SHAPE.active
    _NP_SHAPE.active = bool(active)
    return prev


_TYPE_NAMES = frozenset(CODE_DTYPES.values())


def _norm_type(t):
    if t is None or (type(t) is str and t in _TYPE_NAMES):
        return t
    if isinstance(t, type) and issubclass(t, np.generic) or isinstance(t, np.dtype):
        return np.dtype(t).name
    return dtype_name(t)


def _entries(order):
    return [(n, i) for n in order for i in range(n.num_outputs())]


def _step(node, values, kind, use_attrs):
    """One node's inference (MXNet's ``infer_step``).  Updates ``values``; returns whether
    every input and output of the node is now known."""
    if node.op is None:
        key = (node, 0)
        if use_attrs and not kind.known(values.get(key)):
            # MXNet re-reads the variable's attribute whenever the entry is not complete,
            # so a partial inferred value does not outlive a backward pass (note
            # *two-way-inference*)
            v = kind.from_attr(node)
            if v is not None:
                values[key] = v
        return kind.known(values.get(key))
    in_keys = [(s, i) for (s, i, _v) in node.inputs]
    out_keys = [(node, i) for i in range(node.num_outputs())]
    ins = [values.get(k) for k in in_keys]
    outs = [values.get(k) for k in out_keys]
    try:
        new_ins, new_outs = kind.run(node, ins, outs)
    except MXNetError as e:
        raise MXNetError("Error in operator %s (%s): %s (input %ss: %s)"
                         % (node.name, node.op.name, e, kind.what,
                            ", ".join(kind.show(v) for v in ins))) from None
    except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError) as e:
        if all(kind.known(v) for v in ins):
            raise MXNetError("Error in operator %s (%s): %s inference failed: %s "
                             "(input %ss: %s)" % (node.name, node.op.name, kind.what, e,
                                                  kind.what,
                                                  ", ".join(kind.show(v) for v in ins))) from None
        return False   # the op could not cope with partial information yet
    for keys, new, what in ((in_keys, new_ins, "input"), (out_keys, new_outs, "output")):
        for k, (key, v) in enumerate(zip(keys, new)):
            old = values.get(key)
            if v is None or v is old:
                continue
            v = kind.norm(v)
            if v == old:
                continue
            try:
                m = kind.merge(old, v)
            except ValueError:
                slot = "%s %d" % (what, k)
                if what == "input":
                    src = key[0]
                    slot += " (%s)" % (src.name if src.op is None else src.output_name(key[1]))
                raise MXNetError(
                    "Error in operator %s (%s): inconsistent %s for %s: %s from the graph vs %s "
                    "inferred by the op" % (node.name, node.op.name, kind.what, slot,
                                            kind.show(old), kind.show(v))) from None
            if m is not None:
                values[key] = m
    return all(kind.known(values.get(k)) for k in in_keys + out_keys)


def _run(order, values, kind, use_attrs=True):
    """MXNet's attribute-inference loop (src/executor/infer_graph_attr_pass.cc): alternate
    forward and backward sweeps over the nodes while the number of unknowns (dimensions, or
    dtypes) keeps falling, plus one last sweep while some node is unfinished.  ``values`` maps
    entries ``(node, output_index)`` to partial values and is updated in place; returns the
    number of unknowns left."""
    entries = _entries(order)
    finished = set()
    num_unknown = None
    last_iter = False
    sweep = 0
    rev = order[::-1]
    while True:
        for node in (order if sweep % 2 == 0 else rev):
            if node in finished:
                continue
            if _step(node, values, kind, use_attrs):
                finished.add(node)
        last, num_unknown = num_unknown, sum(kind.unknown_count(values.get(e)) for e in entries)
        again = num_unknown > 0 and (last is None or last > num_unknown)
        if not again and not last_iter:
            again = len(finished) < len(order)
            last_iter = True
        sweep += 1
        if not again:
            return num_unknown


def infer_graph(order, shapes=None, dtypes=None, use_attrs=True, want=("shape", "dtype")):
    """The one inference engine (see the module docstring): complete ``shapes`` and
    ``dtypes`` -- dicts keyed by entries ``(node, output_index)``, values partial shapes
    (0 = unknown dimension, None = unknown rank) and dtype names -- over the graph in
    topological ``order``, in both directions.  The dicts are copied, not changed.

    Returns ``(shapes, dtypes)``; an entry still unknown maps to None or a shape with 0s
    (absent entries were never inferred).  Raises MXNetError on inconsistent values.
    ``use_attrs``: seed variables from their ``__shape__`` / ``__dtype__`` attributes.
    ``want``: which of the two tables to infer (the other is returned as given)."""
    shapes = {k: _ShapeKind.norm(v) for k, v in (shapes or {}).items()}
    dtypes = {k: _norm_type(v) for k, v in (dtypes or {}).items()}
    if "shape" in want:
        _run(order, shapes, _ShapeKind, use_attrs)
    if "dtype" in want:
        _run(order, dtypes, _TypeKind, use_attrs)
    return shapes, dtypes


def _parse_shape_attr(node):
    text = node.attrs.get("__shape__")
    if text is None:
        return None
    try:
        v = parse_literal(text)
    except AttrParseError as e:
        raise MXNetError("variable %s: invalid __shape__ attribute %r: %s" % (node.name, text, e)) from None
    if isinstance(v, int):
        v = (v,)
    if not isinstance(v, tuple) or not all(isinstance(d, int) and not isinstance(d, bool) for d in v):
        raise MXNetError("variable %s: invalid __shape__ attribute %r" % (node.name, text))
    if not v:
        return None
    return tuple(max(d, 0) for d in v)


def _parse_dtype_attr(node):
    text = node.attrs.get("__dtype__")
    if text is None:
        return None
    try:
        code = int(text)
    except ValueError:
        raise MXNetError("variable %s: invalid __dtype__ attribute %r" % (node.name, text)) from None
    if code == -1:
        return None
    if code not in CODE_DTYPES:
        raise MXNetError("variable %s: unknown __dtype__ type code %r" % (node.name, text))
    return CODE_DTYPES[code]


def _seed(sym, order, args, kwargs, convert, func):
    """Initial entry values from positional/keyword arguments.  Returns (values, given nodes)."""
    if args and kwargs:
        raise ValueError("Can only specify known argument %ss either by positional or kwargs way."
                         % ("shape" if func == "infer_shape" else "type"))
    values = {}
    given = set()
    muts = sym._mutated_ids(order)
    variables = [n for n in order if n.op is None]
    if args:
        arg_nodes = [n for n in variables if id(n) not in muts]
        if len(args) > len(arg_nodes):
            raise MXNetError("%s: got %d positional arguments but the symbol has %d arguments %s"
                             % (func, len(args), len(arg_nodes), [n.name for n in arg_nodes]))
        for i, v in enumerate(args):
            if v is None:
                continue
            values[(arg_nodes[i], 0)] = convert(v, "argument %d (%s)" % (i, arg_nodes[i].name))
            given.add(arg_nodes[i])
    else:
        by_name = {}
        for n in variables:
            by_name.setdefault(n.name, []).append(n)
        for k, v in kwargs.items():
            nodes = by_name.get(k)
            if nodes is None:
                raise MXNetError("%s: cannot find argument %r; the inputs are %s"
                                 % (func, k, [n.name for n in variables]))
            if v is None:
                continue
            c = convert(v, repr(k))
            for n in nodes:
                values[(n, 0)] = c
                given.add(n)
    return values, given


def _shape_in(v, what):
    if not isinstance(v, tuple):
        raise TypeError("Arguments need to be shapes (tuple), but %s is %s." % (what, type(v)))
    try:
        dims = tuple(int(d) for d in v)
    except (TypeError, ValueError):
        raise MXNetError("infer_shape: %s must be a tuple of integers, got %r" % (what, v)) from None
    if _NP_SHAPE.active:
        # NumPy shape semantics (mx.np_shape): -1 is an unknown dimension and () a scalar;
        # agjit's tables write unknown dimensions as 0, so a zero-size dimension given
        # here is taken as unknown too
        if any(d < -1 for d in dims):
            raise MXNetError("infer_shape: %s has a negative dimension: %r" % (what, v))
        return tuple(max(d, 0) for d in dims)
    if any(d < 0 for d in dims):
        raise MXNetError("infer_shape: %s has a negative dimension: %r" % (what, v))
    return dims if dims else None


def _type_in(v, what):
    name = _norm_type(v)
    if name not in CODE_DTYPES.values():
        raise MXNetError("infer_type: %s has unsupported dtype %s" % (what, name))
    return name


def infer_graph_shapes(sym, args=(), kwargs=None):
    """Entry shapes of the whole graph: ``(order, {(node, i): shape})``."""
    order = sym._topo()
    values, _given = _seed(sym, order, args, kwargs or {}, _shape_in, "infer_shape")
    _run(order, values, _ShapeKind)
    return order, values


def infer_graph_types(sym, args=(), kwargs=None):
    """Entry dtype names of the whole graph: ``(order, {(node, i): name})``."""
    order = sym._topo()
    values, _given = _seed(sym, order, args, kwargs or {}, _type_in, "infer_type")
    _run(order, values, _TypeKind)
    return order, values


def _collect(sym, order, values):
    muts = sym._mutated_ids(order)
    variables = [n for n in order if n.op is None]
    arg = [values.get((n, 0)) for n in variables if id(n) not in muts]
    aux = [values.get((n, 0)) for n in variables if id(n) in muts]
    out = [values.get((n, i)) for n, i in sym._outputs]
    return arg, out, aux, variables, muts


def _complete(order, values, kind):
    for n in order:
        keys = [(n, 0)] if n.op is None else [(n, i) for i in range(n.num_visible())]
        if not all(kind.known(values.get(k)) for k in keys):
            return False
    return True


def infer_shape(sym, args, kwargs, partial=False):
    """Implementation of :meth:`Symbol.infer_shape` / ``infer_shape_partial``."""
    order, values = infer_graph_shapes(sym, args, kwargs)
    arg, out, aux, variables, muts = _collect(sym, order, values)
    if _NP_SHAPE.active:
        def conv(s):      # NumPy semantics: None for an unknown shape, -1 for a dimension
            return None if s is None else tuple(d if d > 0 else -1 for d in s)
    else:
        def conv(s):      # legacy semantics: () and 0
            return () if s is None else tuple(s)
    if partial:
        return [conv(s) for s in arg], [conv(s) for s in out], [conv(s) for s in aux]
    if not _complete(order, values, _ShapeKind):
        names = [n.name for n in variables if id(n) not in muts]
        unknowns = ["%s: %s" % (nm, conv(s))
                    for nm, s in zip(names, arg) if not _ShapeKind.known(s)]
        if len(unknowns) > 10:
            unknowns = unknowns[:10] + ["..."]
        warnings.warn("Cannot decide shape for the following arguments (0s in shape means "
                      "unknown dimensions). Consider providing them as input:\n\t"
                      + "\n\t".join(unknowns), stacklevel=3)
        return None, None, None
    return [tuple(s) for s in arg], [tuple(s) for s in out], [tuple(s) for s in aux]


def infer_type(sym, args, kwargs, partial=False):
    """Implementation of :meth:`Symbol.infer_type` / ``infer_type_partial``."""
    order, values = infer_graph_types(sym, args, kwargs)
    arg, out, aux, variables, muts = _collect(sym, order, values)

    def conv(t):
        return None if t is None else np.dtype(t).type
    if partial:
        return [conv(t) for t in arg], [conv(t) for t in out], [conv(t) for t in aux]
    if not _complete(order, values, _TypeKind):
        names = [n.name for n in variables if id(n) not in muts]
        unknowns = ["%s: %s" % (nm, t) for nm, t in zip(names, arg) if t is None]
        if len(unknowns) > 10:
            unknowns = unknowns[:10] + ["..."]
        warnings.warn("Cannot decide type for the following arguments. Consider providing them "
                      "as input:\n\t" + "\n\t".join(unknowns), stacklevel=3)
        return None, None, None
    return [conv(t) for t in arg], [conv(t) for t in out], [conv(t) for t in aux]


def concretize_creation_shapes(heads, shapes):
    """The graph of ``heads`` with every creation op whose ``shape`` attr has unknown (0)
    dimensions given the shape inference found for it (symbol.ops.creation note
    *creation-shape-inference*), so that running a node makes the inferred array.  Nodes
    that need no change -- every variable among them -- are kept, so a caller's maps keyed by
    variable nodes stay valid.  ``shapes``: entries ``(node, index)`` -> shape."""
    from .graph import Node, topo_order
    from .ops.creation import CREATION_OPS
    new = {}
    for node in topo_order(heads):
        if node.op is None:
            new[node] = node
            continue
        ins = tuple((new[s], i, v) for (s, i, v) in node.inputs)
        attrs = node.attrs
        if node.op.name in CREATION_OPS:
            want = shapes.get((node, 0))
            have = tuple(node.parsed.get("shape") or ())
            if 0 in have and want is not None and len(want) == len(have) and 0 not in want:
                attrs = dict(attrs, shape=str(tuple(int(d) for d in want)))
        if attrs is node.attrs and all(a[0] is b[0] for a, b in zip(ins, node.inputs)):
            new[node] = node
        else:
            new[node] = Node(node.op, node.name, attrs, ins)
    return [(new[n], i) for n, i in heads]
