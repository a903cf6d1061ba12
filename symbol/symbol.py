"""The Symbol: a tuple of output entries over the immutable node graph."""
from .base import MXNetError
from .graph import topo_order, verify
from . import json_io

__all__ = ["Symbol"]


class Symbol:
    """A symbolic graph: ``outputs`` is a tuple of ``(Node, output_index)``."""

    __slots__ = ("_outputs", "__weakref__")

    def __init__(self, outputs):
        self._outputs = tuple((n, int(i)) for n, i in outputs)

    # -- traversal -----------------------------------------------------------------------
    def _topo(self):
        return topo_order(self._outputs)

    def _version_of(self, node, k):
        return node.inputs[k][2]

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
        order = self._topo()
        muts = self._mutated_ids(order)
        return [n.name for n in order if n.op is None and id(n) not in muts]

    def list_auxiliary_states(self):
        order = self._topo()
        muts = self._mutated_ids(order)
        return [n.name for n in order if n.op is None and id(n) in muts]

    def list_inputs(self):
        return [n.name for n in self._topo() if n.op is None]

    def list_outputs(self):
        return [n.output_name(i) for n, i in self._outputs]

    # -- JSON ----------------------------------------------------------------------------
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
