"""``mx.viz`` / ``mx.visualization``: MXNet 1.x's ``print_summary`` and ``plot_network``.

Both read the Symbol's graph JSON, so they show exactly what MXNet shows for the same graph:

* :func:`print_summary` prints a fixed-width table (columns end at ``positions`` of
  ``line_length``): one row per operator (and the first variable), its output shape without
  the batch axis, its parameter count, and the layers feeding it; returns None.  Parameter
  counts are MXNet's: Convolution ``C_in * F / groups * prod(kernel)`` (+F), FullyConnected
  ``(in + 1) * out`` (``in * out`` without bias), BatchNorm ``2 * C`` (moving statistics not
  counted), Embedding ``input_dim * output_dim``, where ``C_in`` / ``in`` is the sum of the
  channel sizes of the *operator* inputs (variables other than the graph's first do not count).
* :func:`plot_network` returns a ``graphviz.Digraph`` (the ``graphviz`` Python package, the
  ``viz`` extra; rendering needs Graphviz's ``dot`` binary, building the graph does not):
  one node per operator and per non-weight variable, edges from each operator back to its
  inputs (``dir=back``), labelled with shapes/dtypes when given.

agjit's own views of a graph (``Symbol.summary``, ``to_networkx``, ``to_dot``, ``draw``) are in
:mod:`symbol.viz`.
"""
import copy
import json
import re
import warnings

from .symbol import Symbol

__all__ = ["print_summary", "plot_network"]

_WEIGHT_SUFFIXES = ('_weight', '_bias', '_beta', '_gamma', '_moving_var', '_moving_mean',
                    '_running_var', '_running_mean')
_COLORS = ("#8dd3c7", "#fb8072", "#ffffb3", "#bebada", "#80b1d3", "#fdb462", "#b3de69",
           "#fccde5")


def _ints(text):
    return re.findall(r"\d+", text)


def _internal_shapes(symbol, shape):
    internals = symbol.get_internals()
    _, out_shapes, _ = internals.infer_shape(**shape)
    if out_shapes is None:
        raise ValueError("Input shape is incomplete")
    return dict(zip(internals.list_outputs(), out_shapes))


def _entry_key(node):
    return node["name"] + "_output" if node["op"] != "null" else node["name"]


def _param_count(node, in_channels, shapes):
    op, attrs = node["op"], node.get("attrs", {})
    no_bias = attrs.get("no_bias") == "True"
    if op == "Convolution":
        count = in_channels * int(attrs["num_filter"]) // int(attrs.get("num_group", "1"))
        for k in _ints(attrs["kernel"]):
            count *= int(k)
        return count if no_bias else count + int(attrs["num_filter"])
    if op == "FullyConnected":
        return (in_channels + (0 if no_bias else 1)) * int(attrs["num_hidden"])
    if op == "BatchNorm":
        return 2 * int(shapes[_entry_key(node)][1]) if shapes is not None else 0
    if op == "Embedding":
        return int(attrs["input_dim"]) * int(attrs["output_dim"])
    return 0


def print_summary(symbol, shape=None, line_length=120, positions=(.44, .64, .74, 1.)):
    """Print a layer table of ``symbol`` (see the module docstring); ``shape`` maps input
    names to shapes and enables the shape and BatchNorm columns."""
    if not isinstance(symbol, Symbol):
        raise TypeError("symbol must be Symbol")
    shapes = _internal_shapes(symbol, shape) if shape is not None else None
    conf = json.loads(symbol.tojson())
    nodes = conf["nodes"]
    heads = set(conf["heads"][0])
    positions = list(positions)
    if positions[-1] <= 1:
        positions = [int(line_length * p) for p in positions]

    def row(fields):
        line = ""
        for stop, field in zip(positions, fields):
            line = (line + str(field))[:stop]
            line += " " * (stop - len(line))
        print(line)

    def out_shape(node):
        if shapes is None:
            return []
        s = shapes.get(_entry_key(node))
        return list(s[1:]) if s is not None else []

    print("_" * line_length)
    row(["Layer (type)", "Output Shape", "Param #", "Previous Layer"])
    print("=" * line_length)
    total = 0
    for i, node in enumerate(nodes):
        if node["op"] == "null" and i > 0:
            continue
        previous, in_channels = [], 0
        if node["op"] != "null":
            for src, _idx, _ver in node["inputs"]:
                inp = nodes[src]
                if inp["op"] == "null" and src not in heads:
                    continue
                previous.append(inp["name"])
                if shapes is not None and _entry_key(inp) in shapes:
                    in_channels += int(shapes[_entry_key(inp)][1])
        shown = out_shape(node) if (node["op"] != "null" or i in heads) else []
        count = _param_count(node, in_channels, shapes)
        total += count
        row(["%s(%s)" % (node["name"], node["op"]), "x".join(str(d) for d in shown), count,
             previous[0] if previous else ""])
        for name in previous[1:]:
            row(["", "", "", name])
        print("=" * line_length if i == len(nodes) - 1 else "_" * line_length)
    print("Total params: {params}".format(params=total))
    print("_" * line_length)


def _label(node):
    op, attrs = node["op"], node.get("attrs", {})
    if op == "Convolution":
        return "Convolution\n%s/%s, %s" % ("x".join(_ints(attrs["kernel"])),
                                            "x".join(_ints(attrs["stride"])) if "stride" in attrs else "1",
                                            attrs["num_filter"]), _COLORS[1]
    if op == "FullyConnected":
        return "FullyConnected\n%s" % attrs["num_hidden"], _COLORS[1]
    if op == "BatchNorm":
        return node["name"], _COLORS[3]
    if op == "Activation":
        return "Activation\n%s" % attrs["act_type"], _COLORS[2]
    if op == "LeakyReLU":
        return "LeakyReLU\n%s" % attrs.get("act_type", "Leaky"), _COLORS[2]
    if op == "Pooling":
        return "Pooling\n%s, %s/%s" % (attrs["pool_type"],
                                       "x".join(_ints(attrs["kernel"])) if "kernel" in attrs else "[]",
                                       "x".join(_ints(attrs["stride"])) if "stride" in attrs else "1"), _COLORS[4]
    if op in ("Concat", "Flatten", "Reshape"):
        return node["name"], _COLORS[5]
    if op == "Softmax":
        return node["name"], _COLORS[6]
    return (attrs["op_type"] if op == "Custom" else node["name"]), _COLORS[7]


def plot_network(symbol, title="plot", save_format="pdf", shape=None, dtype=None,
                 node_attrs=None, hide_weights=True):
    """A ``graphviz.Digraph`` of ``symbol`` named ``title`` (see the module docstring)."""
    try:
        from graphviz import Digraph
    except ImportError:
        raise ImportError("Draw network requires graphviz library (pip install graphviz, "
                          "or the agjit[viz] extra)") from None
    if not isinstance(symbol, Symbol):
        raise TypeError("symbol must be a Symbol")
    shapes = _internal_shapes(symbol, shape) if shape is not None else None
    types = None
    if dtype is not None:
        internals = symbol.get_internals()
        _, out_types, _ = internals.infer_type(**dtype)
        if out_types is None:
            raise ValueError("Input type is incomplete")
        types = dict(zip(internals.list_outputs(), out_types))
    nodes = json.loads(symbol.tojson())["nodes"]
    names = [n["name"] for n in nodes]
    if len(names) != len(set(names)):
        repeated = sorted({n for n in names if names.count(n) > 1})
        warnings.warn("There are multiple variables with the same name in your graph, this may "
                      "result in cyclic graph. Repeated names: " + ",".join(repeated), RuntimeWarning)
    base = {"shape": "box", "fixedsize": "true", "width": "1.3", "height": "0.8034",
            "style": "filled"}
    base.update(node_attrs or {})
    dot = Digraph(name=title, format=save_format)
    hidden = set()
    for node in nodes:
        attr = copy.deepcopy(base)
        if node["op"] == "null":
            if node["name"].endswith(_WEIGHT_SUFFIXES):
                if hide_weights:
                    hidden.add(node["name"])
                continue
            attr["shape"] = "oval"
            label, attr["fillcolor"] = node["name"], _COLORS[0]
        else:
            label, attr["fillcolor"] = _label(node)
        dot.node(name=node["name"], label=label, **attr)
    for node in nodes:
        if node["op"] == "null":
            continue
        inputs = node["inputs"][:1] if node["op"] == "_contrib_BilinearResize2D" else node["inputs"]
        for src, _idx, _ver in inputs:
            inp = nodes[src]
            if inp["name"] in hidden:
                continue
            attr = {"dir": "back", "arrowtail": "open", "label": ""}
            key = _entry_key(inp)
            if inp["op"] != "null" and "num_outputs" in inp.get("attrs", {}):
                key += str(int(inp["attrs"]["num_outputs"]) - 1)
            if shapes is not None:
                attr["label"] = "x".join(str(d) for d in shapes[key][1:])
            if types is not None:
                attr["label"] += "(%s)" % types[key].__name__
            dot.edge(tail_name=node["name"], head_name=inp["name"], **attr)
    return dot
