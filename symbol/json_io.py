"""MXNet 1.x graph JSON: writing in exactly MXNet 1.9.1's layout, and loading.

Layout (nnvm ``SaveJSON`` through dmlc's JSONWriter): objects and arrays of non-scalars are
written one item per line with 2-space indentation per nesting level; an array of scalars
(or of ``[node, index, version]`` entries) stays on one line unless it has more than 10 items;
an object with at most one key stays on one line; items are separated by ``", "`` (so
multi-line items end in a trailing space).
"""
from .base import MXNetError

__all__ = ["graph_to_json", "MXNET_VERSION"]

MXNET_VERSION = 10901


class _Writer:
    def __init__(self):
        self.parts = []
        self.multi = []
        self.count = []

    def sep(self):
        if not self.multi or self.multi[-1]:
            self.parts.append("\n" + " " * (2 * len(self.multi)))

    def begin(self, ch, multi):
        self.parts.append(ch)
        self.multi.append(multi)
        self.count.append(0)

    def end(self, ch):
        multi = self.multi.pop()
        n = self.count.pop()
        if multi and n:
            self.sep()
        self.parts.append(ch)

    def key(self, k):
        if self.count[-1]:
            self.parts.append(", ")
        self.sep()
        self.parts.append('"%s": ' % k)
        self.count[-1] += 1

    def item(self):
        if self.count[-1]:
            self.parts.append(", ")
        self.count[-1] += 1
        self.sep()

    def string(self, s):
        out = ['"']
        for ch in s:
            if ch == "\r":
                out.append("\\r")
            elif ch == "\n":
                out.append("\\n")
            elif ch == "\\":
                out.append("\\\\")
            elif ch == "\t":
                out.append("\\t")
            elif ch == '"':
                out.append('\\"')
            else:
                out.append(ch)
        out.append('"')
        self.parts.append("".join(out))

    def ints(self, values):
        self.begin("[", len(values) > 10)
        for v in values:
            self.item()
            self.parts.append(str(int(v)))
        self.end("]")

    def entries(self, values):
        self.begin("[", len(values) > 10)
        for e in values:
            self.item()
            self.begin("[", False)
            for v in e:
                self.item()
                self.parts.append(str(int(v)))
            self.end("]")
        self.end("]")

    def str_map(self, d):
        self.begin("{", len(d) > 1)
        for k in sorted(d):
            self.key(k)
            self.string(str(d[k]))
        self.end("}")


def graph_to_json(nodes, heads, versions=None):
    """Serialise a graph given in topological order.

    ``nodes``: list of dicts with op, name, attrs (dict str->str), inputs (list of
    (node_index, output_index, version)) and nout (total outputs incl. hidden).
    ``heads``: list of (node_index, output_index, version).
    """
    w = _Writer()
    w.begin("{", True)
    w.key("nodes")
    w.begin("[", True)
    row = [0]
    args = []
    for i, n in enumerate(nodes):
        w.item()
        w.begin("{", True)
        w.key("op")
        w.string(n["op"])
        w.key("name")
        w.string(n["name"])
        if n["attrs"]:
            w.key("attrs")
            w.str_map(n["attrs"])
        w.key("inputs")
        w.entries(n["inputs"])
        w.end("}")
        row.append(row[-1] + n["nout"])
        if n["op"] == "null":
            args.append(i)
    w.end("]")
    w.key("arg_nodes")
    w.ints(args)
    w.key("node_row_ptr")
    w.ints(row)
    w.key("heads")
    w.entries(heads)
    w.key("attrs")
    w.begin("{", False)
    w.key("mxnet_version")
    w.begin("[", False)
    w.item()
    w.string("int")
    w.item()
    w.parts.append(str(MXNET_VERSION))
    w.end("]")
    w.end("}")
    w.end("}")
    return "".join(w.parts)
