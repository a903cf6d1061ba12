"""The graph IR: immutable nodes and output entries.

A :class:`Node` is either a variable (``op is None``; MXNet writes ``"op": "null"``) or an
operator application.  Inputs are ``(node, output_index, version)`` triples: the version is 0
everywhere except inputs feeding an argument that the op mutates (BatchNorm's moving
statistics) in graphs built with the Symbol API, where MXNet writes 1.

Traversal follows nnvm's ``DFSVisit``: post-order from the heads in order, visiting each
node's inputs in order, every node once.  :func:`verify` checks a graph after every
transformation (topological order, valid references, no cycles, unique variable names).
"""
from .base import MXNetError

__all__ = ["Node", "topo_order", "verify", "variable"]


class Node:
    """One node of the graph.  Treat as immutable once built."""

    __slots__ = ("op", "name", "attrs", "inputs", "_parsed", "__weakref__")

    def __init__(self, op, name, attrs=None, inputs=()):
        self.op = op                      # OpDef or None for a variable
        self.name = name
        self.attrs = dict(attrs) if attrs else {}
        self.inputs = tuple(inputs)       # ((Node, index, version), ...)
        self._parsed = None

    @property
    def is_variable(self):
        return self.op is None

    @property
    def op_name(self):
        return "null" if self.op is None else self.op.name

    @property
    def parsed(self):
        """Typed attribute values (defaults filled in)."""
        if self._parsed is None:
            self._parsed = {} if self.op is None else self.op.parse_attrs(self.attrs, strict=False)
        return self._parsed

    def num_outputs(self):
        return 1 if self.op is None else self.op.num_outputs(self.parsed)

    def num_visible(self):
        return 1 if self.op is None else self.op.num_visible(self.parsed)

    def output_name(self, i):
        """MXNet's list_outputs naming for output i."""
        if self.op is None:
            return self.name
        names = self.op.output_names(self.parsed)
        if names is not None:
            return "%s_%s" % (self.name, names[i])
        if self.num_visible() == 1:
            return "%s_output" % self.name
        return "%s_output%d" % (self.name, i)

    def __repr__(self):
        return "<Node %s %s>" % (self.op_name, self.name)


def variable(name, attrs=None):
    return Node(None, name, attrs)


def topo_order(heads):
    """Nodes reachable from ``heads`` (an iterable of nodes or entries) in DFS post-order.

    Iterative, so deep graphs do not hit Python's recursion limit; raises MXNetError on a
    cycle.
    """
    order = []
    state = {}                 # id -> 1 on stack, 2 done
    for h in heads:
        root = h[0] if isinstance(h, tuple) else h
        if id(root) in state:
            continue
        state[id(root)] = 1
        stack = [(root, 0)]
        while stack:
            node, k = stack.pop()
            if k < len(node.inputs):
                stack.append((node, k + 1))
                child = node.inputs[k][0]
                st = state.get(id(child))
                if st is None:
                    state[id(child)] = 1
                    stack.append((child, 0))
                elif st == 1:
                    raise MXNetError("graph has a cycle through node %r" % child.name)
            else:
                state[id(node)] = 2
                order.append(node)
    return order


def verify(heads):
    """Check the invariants of a graph (see the module docstring).  Returns the topo order."""
    order = topo_order(heads)
    pos = {id(n): i for i, n in enumerate(order)}
    var_names = {}
    for i, n in enumerate(order):
        if n.op is None:
            if n.inputs:
                raise MXNetError("variable %r has inputs" % n.name)
            other = var_names.get(n.name)
            if other is not None and other is not n:
                raise MXNetError("duplicate argument name %r: two different variables share it"
                                 % n.name)
            var_names[n.name] = n
        for (src, idx, ver) in n.inputs:
            j = pos.get(id(src))
            if j is None or j >= i:
                raise MXNetError("node %r: input %r is not before it in topological order"
                                 % (n.name, src.name))
            if not (0 <= idx < src.num_outputs()):
                raise MXNetError("node %r: input refers to output %d of %r, which has %d outputs"
                                 % (n.name, idx, src.name, src.num_outputs()))
    for h in heads:
        if isinstance(h, tuple):
            node, idx = h[0], h[1]
            if not (0 <= idx < node.num_outputs()):
                raise MXNetError("head refers to output %d of %r, which has %d outputs"
                                 % (idx, node.name, node.num_outputs()))
    return order
