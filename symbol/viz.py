"""Looking at a Symbol: a summary table, networkx export, DOT text and a matplotlib drawing.

None of this needs a system Graphviz.  ``networkx`` is a dependency of the project;
``matplotlib`` is optional (``pip install agjit[viz]``) and imported only by :func:`draw`.

Shapes and dtypes come from :mod:`symbol.infer` when ``shapes`` (a dict of argument shapes,
as for ``infer_shape``) is given, or when the variables carry ``__shape__`` attributes;
unknown ones are simply left out.
"""
import warnings

from .base import MXNetError

__all__ = ["summary", "to_networkx", "to_dot", "draw"]

# MXNet's print_summary / plot_network (mx.viz) are in symbol.visualization.


def _graph_info(sym, shapes=None, dtypes=None):
    """(order, shape of each entry or None, dtype of each entry or None); never raises for
    missing information, but an inconsistent ``shapes`` still raises MXNetError."""
    from .infer import infer_graph_shapes, infer_graph_types
    order, svals = infer_graph_shapes(sym, (), dict(shapes or {}))
    try:
        _o, tvals = infer_graph_types(sym, (), dict(dtypes or {}))
    except MXNetError:
        if dtypes:
            raise
        tvals = {}
    return order, svals, tvals


def _known(s):
    return s is not None and all(d > 0 for d in s)


def _node_keys(order):
    """A unique, readable key per node: its name, or ``name#k`` when names repeat."""
    keys = {}
    seen = {}
    for n in order:
        k = n.name
        if k in seen:
            seen[k] += 1
            k = "%s#%d" % (k, seen[n.name])
        else:
            seen[k] = 0
        keys[id(n)] = k
    return keys


def _param_count(n, order_pos, svals, data_names, muts):
    total = 0
    for (src, idx, _v) in n.inputs:
        if src.op is None and src.name not in data_names:
            s = svals.get((src, 0))
            if _known(s):
                c = 1
                for d in s:
                    c *= d
                total += c
    return total


def summary(sym, shape=None):
    """A text table with one row per operator node: name, op, output shape(s), the number
    of parameters it reads (variable inputs not named in ``shape``, aux states included),
    and its inputs; a total line at the end.

    >>> import symbol as sym
    >>> fc = sym.FullyConnected(sym.Variable('data'), num_hidden=4, name='fc')
    >>> print(summary(fc, {'data': (2, 3)}).splitlines()[3])  # doctest: +NORMALIZE_WHITESPACE
    fc    FullyConnected    (2, 4)    16    data, fc_weight, fc_bias
    """
    order, svals, _t = _graph_info(sym, shape)
    data_names = set(shape or {})
    muts = sym._mutated_ids(order)
    rows = [("Layer (name)", "Op", "Output Shape", "Param #", "Inputs")]
    total = 0
    for pos, n in enumerate(order):
        if n.op is None:
            if n.name in data_names or not n.name:
                s = svals.get((n, 0))
                rows.append((n.name, "Variable", str(tuple(s)) if _known(s) else "?", "0", ""))
            continue
        outs = []
        for i in range(n.num_visible()):
            s = svals.get((n, i))
            outs.append(str(tuple(s)) if _known(s) else "?")
        p = _param_count(n, pos, svals, data_names, muts)
        total += p
        rows.append((n.name, n.op.name, ", ".join(outs), str(p),
                     ", ".join(src.name for (src, _i, _v) in n.inputs)))
    widths = [max(len(r[c]) for r in rows) for c in range(5)]

    def line(r):
        return "    ".join(r[c].ljust(widths[c]) for c in range(5)).rstrip()
    sep = "=" * len(line(rows[0]))
    out = [line(rows[0]), sep] + [line(r) for r in rows[1:]]
    out.append(sep)
    out.append("Total params: %d" % total)
    return "\n".join(out)


def to_networkx(sym, shapes=None, dtypes=None):
    """The graph as a ``networkx.DiGraph``.

    Nodes are keyed by node name (``name#k`` if a name repeats) with attributes ``op``
    (``"null"`` for variables), ``name``, ``attrs`` (the string attribute dict), ``kind``
    (``"variable"``, ``"aux"`` or ``"op"``), ``order`` (DFS position), and, when known,
    ``shape`` (a tuple for a variable, a list of tuples for an op's visible outputs) and
    ``dtype`` (likewise).  An edge ``src -> dst`` carries ``slots``: a list of
    ``(output_index, input_index, version)`` (several when a node reads the same producer
    twice, as in ``a * a``).  The graph attribute ``heads`` lists ``(node_key, index)``.
    """
    import networkx as nx
    order, svals, tvals = _graph_info(sym, shapes, dtypes)
    keys = _node_keys(order)
    muts = sym._mutated_ids(order)
    g = nx.DiGraph()
    for pos, n in enumerate(order):
        d = {"op": n.op_name, "name": n.name, "attrs": dict(n.attrs), "order": pos}
        if n.op is None:
            d["kind"] = "aux" if id(n) in muts else "variable"
            s, t = svals.get((n, 0)), tvals.get((n, 0))
            if _known(s):
                d["shape"] = tuple(s)
            if t is not None:
                d["dtype"] = t
        else:
            d["kind"] = "op"
            ss = [svals.get((n, i)) for i in range(n.num_visible())]
            ts = [tvals.get((n, i)) for i in range(n.num_visible())]
            if all(_known(s) for s in ss):
                d["shape"] = [tuple(s) for s in ss]
            if all(t is not None for t in ts):
                d["dtype"] = ts
        g.add_node(keys[id(n)], **d)
    for n in order:
        for k, (src, idx, ver) in enumerate(n.inputs):
            u, v = keys[id(src)], keys[id(n)]
            if g.has_edge(u, v):
                g.edges[u, v]["slots"].append((idx, k, ver))
            else:
                g.add_edge(u, v, slots=[(idx, k, ver)])
    g.graph["heads"] = [(keys[id(n)], i) for n, i in sym._outputs]
    return g


def _dot_str(s):
    return '"%s"' % str(s).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def to_dot(sym, shapes=None, title=None):
    """Graphviz DOT text for the graph (render with any Graphviz, or paste in a viewer).

    Variables are ellipses (aux states dashed), operators boxes labelled with name and op;
    edges are labelled with the producer's output shape when known.
    """
    g = to_networkx(sym, shapes=shapes)
    lines = ["digraph %s {" % _dot_str(title or sym.name or "plot"),
             "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];']
    for key, d in g.nodes(data=True):
        if d["kind"] == "op":
            label = "%s\n%s" % (d["name"], d["op"])
            act = d["attrs"].get("act_type")
            if act:
                label += "\n" + act
            lines.append("  %s [shape=box, style=\"rounded,filled\", fillcolor=\"#dde8f8\", "
                         "label=%s];" % (_dot_str(key), _dot_str(label)))
        else:
            style = "dashed" if d["kind"] == "aux" else "solid"
            lines.append("  %s [shape=ellipse, style=%s, label=%s];"
                         % (_dot_str(key), style, _dot_str(d["name"])))
    for u, v, d in g.edges(data=True):
        src = g.nodes[u]
        for (idx, _k, _ver) in d["slots"]:
            label = ""
            shp = src.get("shape")
            if shp is not None:
                label = str(shp if src["kind"] != "op" else shp[idx] if idx < len(shp) else "")
            attr = (" [label=%s]" % _dot_str(label)) if label else ""
            lines.append("  %s -> %s%s;" % (_dot_str(u), _dot_str(v), attr))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layers(g):
    """Layer of every node: an op sits one above its highest op input; a variable sits just
    below its lowest consumer (so weights are drawn beside the op that reads them)."""
    import networkx as nx
    layer = {}
    for n in nx.topological_sort(g):
        if g.nodes[n]["kind"] != "op":
            continue
        preds = [p for p in g.predecessors(n) if g.nodes[p]["kind"] == "op"]
        layer[n] = 1 + max(layer[p] for p in preds) if preds else 1
    for n in g.nodes:
        if g.nodes[n]["kind"] != "op":
            succ = [layer[s] for s in g.successors(n)]
            layer[n] = min(succ) - 1 if succ else 0
    return layer


def draw(sym, ax=None, shapes=None):
    """Draw the graph with matplotlib (bottom-up layers, ops as boxes, variables as plain
    text) and return the Axes.  Needs ``matplotlib`` (the ``viz`` extra), no Graphviz."""
    try:
        import matplotlib.pyplot as plt
        from matplotlib.patches import FancyArrowPatch
    except ImportError as e:
        raise ImportError("Symbol.draw needs matplotlib; install it with "
                          "`pip install matplotlib` (or the agjit[viz] extra)") from e
    g = to_networkx(sym, shapes=shapes)
    layer = _layers(g)
    by_layer = {}
    for n in sorted(g.nodes, key=lambda k: g.nodes[k]["order"]):
        by_layer.setdefault(layer[n], []).append(n)
    pos = {}
    width = max(len(v) for v in by_layer.values())
    for y, nodes in by_layer.items():
        off = (width - len(nodes)) / 2.0
        for x, n in enumerate(nodes):
            pos[n] = (off + x, y)
    if ax is None:
        _fig, ax = plt.subplots(figsize=(max(4, 2.2 * width), max(3, 1.2 * (len(by_layer) + 1))))
    for u, v in g.edges:
        ax.add_patch(FancyArrowPatch(pos[u], pos[v], arrowstyle="-|>", mutation_scale=10,
                                     shrinkA=12, shrinkB=12, color="#555555"))
    for n, (x, y) in pos.items():
        d = g.nodes[n]
        if d["kind"] == "op":
            label = "%s\n%s" % (d["name"], d["op"])
            if "shape" in d:
                label += "\n" + ", ".join(str(s) for s in d["shape"])
            box = dict(boxstyle="round", fc="#dde8f8", ec="#345")
        else:
            label = d["name"] + (("\n" + str(d["shape"])) if "shape" in d else "")
            box = dict(boxstyle="round", fc="white", ec="#999", ls="--" if d["kind"] == "aux" else "-")
        ax.text(x, y, label, ha="center", va="center", fontsize=8, bbox=box)
    ax.set_xlim(-0.8, width - 0.2)
    ax.set_ylim(-0.8, max(by_layer) + 0.8)
    ax.set_axis_off()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ax.set_title(sym.name or "graph")
    return ax
