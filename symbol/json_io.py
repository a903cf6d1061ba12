"""MXNet 1.x graph JSON: writing in exactly MXNet 1.9.1's layout, and loading.

Layout (nnvm ``SaveJSON`` through dmlc's JSONWriter): objects and arrays of non-scalars are
written one item per line with 2-space indentation per nesting level; an array of scalars
(or of ``[node, index, version]`` entries) stays on one line unless it has more than 10 items;
an object with at most one key stays on one line; items are separated by ``", "`` (so
multi-line items end in a trailing space).
"""
import json as _json
import logging as _logging

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


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------
# Note: json-loading
#     ``load_json`` treats its input as untrusted.  The text is decoded with the standard
#     ``json`` module (NaN/Infinity refused), then every field is checked before any Node is
#     built: the top-level keys (``nodes``, ``arg_nodes`` and ``heads`` are required as in
#     dmlc's JSON reader, ``node_row_ptr`` and ``attrs`` are optional, anything else is an
#     error), each node's keys, types, op (through the registry), attrs (parsed strictly by the
#     op's typed schema, never evaluated; ``__dunder__`` keys are free-form), input count and
#     input references (only to *earlier* nodes, so cycles and forward references are refused,
#     and output indices below that node's ``num_outputs``), heads and duplicate variable
#     names.  Every refusal is an MXNetError naming the node index and the field.
#
#     MXNet 0.8-1.9 documents load: the legacy ``param``/``attr`` node keys are merged into
#     the attrs (as nnvm does: ``param``, ``attr``, ``attrs`` in document order), two-entry
#     inputs ``[node, index]`` get version 0, ``node_row_ptr`` may be absent and
#     ``control_deps`` is ignored.  A document older than 1.9.1 (no ``mxnet_version`` means
#     0.8.0) goes through the upgrades MXNet applies (src/nnvm/legacy_json_util.cc): bare
#     hidden keys such as ``lr_mult`` become ``__lr_mult__`` (``weight_lr_mult`` on an op moves
#     to its ``weight`` variable), graphs before 0.9.0 get their missing trailing inputs (aux
#     states) as variables ``<node>_<input>``, BatchNorm moving statistics before 0.9.4 get
#     their ``__init__``, and argmax/argmin ``axis="-1"`` before 0.9.5 is dropped.
#     Input versions are kept, so ``tojson(load_json(j)) == j`` for documents in 1.9.1's layout.
#
#     The writer, like dmlc's, escapes only ``\r \n \t \\ "`` in strings and nothing in
#     object keys, so the reader accepts raw control characters inside strings and refuses
#     attribute names that could not be written back (quotes, backslashes, control characters).
_log = _logging.getLogger(__name__)

__all__ += ["load_json", "load"]

_TOP_REQUIRED = ("nodes", "arg_nodes", "heads")
_TOP_OPTIONAL = ("node_row_ptr", "attrs")
_NODE_KEYS = ("op", "name", "inputs", "attrs", "attr", "param", "control_deps", "subgraphs")
_HIDDEN_KEYS = ("ctx_group", "lr_mult", "wd_mult", "force_mirroring", "mirror_stage")
_MAX_NODES = 10 ** 6


def _version_str(v):
    return "v%d.%d.%d" % (v // 10000, (v // 100) % 100, v % 100)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _reject_constant(name):
    raise ValueError("%s is not valid JSON" % name)


def _decode(s):
    try:
        return _json.loads(s, parse_constant=_reject_constant, strict=False)
    except RecursionError:
        raise MXNetError("load_json: the JSON text is nested too deeply") from None
    except ValueError as e:
        raise MXNetError("load_json: the text is not valid JSON: %s" % e) from None


def _entry(value, where, nnodes):
    """Check a ``[node, index]`` / ``[node, index, version]`` reference (node < nnodes)."""
    if not isinstance(value, list) or len(value) not in (2, 3) or not all(_is_int(x) for x in value):
        raise MXNetError("load_json: %s must be [node_id, output_index] or [node_id, "
                         "output_index, version] with integers, got %s" % (where, _short(value)))
    nid, idx = value[0], value[1]
    ver = value[2] if len(value) == 3 else 0
    if not 0 <= nid < nnodes:
        raise MXNetError("load_json: %s refers to node %d, but only nodes 0..%d may be referenced "
                         "there (inputs must come before the node that uses them)"
                         % (where, nid, nnodes - 1))
    if idx < 0 or ver < 0:
        raise MXNetError("load_json: %s has a negative output index or version: %s"
                         % (where, _short(value)))
    return nid, idx, ver


def _short(v, limit=80):
    try:
        r = _json.dumps(v)
    except (TypeError, ValueError, RecursionError):
        r = repr(type(v))
    return r if len(r) <= limit else r[:limit] + "..."


def _str_dict(value, where):
    if not isinstance(value, dict):
        raise MXNetError("load_json: %s must be an object of strings, got %s" % (where, _short(value)))
    for k, v in value.items():
        if any(c in '"\\' or c < " " for c in k):
            # MXNet's writer (and ours, byte-compatible) writes keys unescaped
            raise MXNetError("load_json: %s has the key %r, which cannot be saved again "
                             "(quotes, backslashes and control characters are not allowed "
                             "in attribute names)" % (where, k))
        if not isinstance(v, str):
            raise MXNetError("load_json: %s[%r] must be a string, got %s" % (where, k, _short(v)))
    return value


def _graph_version(doc):
    attrs = doc.get("attrs")
    if attrs is None:
        return None
    if not isinstance(attrs, dict):
        raise MXNetError("load_json: field 'attrs' must be an object, got %s" % _short(attrs))
    for k, v in attrs.items():
        if not (isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)):
            raise MXNetError("load_json: graph attribute %r must be [type, value], got %s"
                             % (k, _short(v)))
    v = attrs.get("mxnet_version")
    if v is None:
        return None
    if v[0] != "int" or not _is_int(v[1]) or v[1] < 0:
        raise MXNetError("load_json: attrs.mxnet_version must be [\"int\", version], got %s" % _short(v))
    return v[1]


def _check_top(doc):
    if not isinstance(doc, dict):
        raise MXNetError("load_json: a graph JSON document is an object with nodes, arg_nodes "
                         "and heads; got %s" % type(doc).__name__)
    for k in doc:
        if k not in _TOP_REQUIRED and k not in _TOP_OPTIONAL:
            raise MXNetError("load_json: unknown field %r at the top level (expected %s)"
                             % (k, ", ".join(_TOP_REQUIRED + _TOP_OPTIONAL)))
    for k in _TOP_REQUIRED:
        if k not in doc:
            raise MXNetError("load_json: missing field %r" % k)
        if not isinstance(doc[k], list):
            raise MXNetError("load_json: field %r must be an array, got %s" % (k, _short(doc[k])))
    if len(doc["nodes"]) > _MAX_NODES:
        raise MXNetError("load_json: too many nodes (%d)" % len(doc["nodes"]))
    for k in ("arg_nodes", "node_row_ptr"):
        v = doc.get(k, [])
        if not isinstance(v, list) or not all(_is_int(x) for x in v):
            raise MXNetError("load_json: field %r must be an array of integers, got %s" % (k, _short(v)))
    if not doc["heads"]:
        raise MXNetError("load_json: 'heads' is empty: the graph has no outputs")


def _node_fields(i, raw):
    """Type-check one node object; returns (op_name, name, attrs, inputs)."""
    where = "node %d" % i
    if not isinstance(raw, dict):
        raise MXNetError("load_json: %s must be an object, got %s" % (where, _short(raw)))
    for k in raw:
        if k not in _NODE_KEYS:
            raise MXNetError("load_json: %s has an unknown field %r (expected %s)"
                             % (where, k, ", ".join(_NODE_KEYS)))
    for k in ("op", "name", "inputs"):
        if k not in raw:
            raise MXNetError("load_json: %s is missing the field %r" % (where, k))
    op_name, name = raw["op"], raw["name"]
    if not isinstance(op_name, str):
        raise MXNetError("load_json: %s field 'op' must be a string, got %s" % (where, _short(op_name)))
    if not isinstance(name, str):
        raise MXNetError("load_json: %s field 'name' must be a string, got %s" % (where, _short(name)))
    where = "node %d (%r)" % (i, name)
    if not isinstance(raw["inputs"], list):
        raise MXNetError("load_json: %s field 'inputs' must be an array, got %s"
                         % (where, _short(raw["inputs"])))
    if raw.get("subgraphs"):
        raise MXNetError("load_json: %s has subgraphs, which are not supported" % where)
    deps = raw.get("control_deps", [])
    if not isinstance(deps, list) or not all(_is_int(x) for x in deps):
        raise MXNetError("load_json: %s field 'control_deps' must be an array of integers" % where)
    attrs = {}
    for k in raw:                       # document order, as nnvm fills one map from all three
        if k in ("param", "attr", "attrs"):
            attrs.update(_str_dict(raw[k], "%s field %r" % (where, k)))
    return op_name, name, attrs, raw["inputs"]


def _fix_hidden_keys(op, attrs, inputs, exempt=None):
    """MXNet's ``UpgradeJSON_FixParsing`` for documents older than 1.9.1.  Keys such as
    ``weight_lr_mult`` that cannot move to a variable are kept and added to ``exempt`` (not
    checked against the op's schema)."""
    out = {}
    moved = []
    kept = exempt if exempt is not None else set()
    for k, v in attrs.items():
        target = None
        for h in _HIDDEN_KEYS:
            if k == h:
                target = ("__%s__" % h, None)
                break
            if len(k) > len(h) + 1 and k.endswith("_" + h) and op is not None:
                target = ("__%s__" % h, k[:-len(h) - 1])
                break
        if target is None:
            out[k] = v
        elif target[1] is None:
            out[target[0]] = v
        else:
            moved.append((k, v, target))
    for k, v, (hidden, arg) in moved:
        try:    # variadic inputs (arg0, arg1, ...) are not looked up: num_args is untrusted
            names = [] if op.variadic else op.input_names(op.parse_attrs(out, strict=False))
        except MXNetError:
            names = []
        if arg in names and names.index(arg) < len(inputs) and inputs[names.index(arg)][0].op is None:
            inputs[names.index(arg)][0].attrs[hidden] = v
        else:
            out[k] = v          # kept as is (MXNet parses the op's attrs without it)
            kept.add(k)
    return out


_BN_INIT = {3: '["zero", {}]', 4: '["one", {}]'}


def _expected_inputs(op, parsed, where, n_given):
    """The op's input names for these attrs, guarding attr-sized allocations."""
    if op.variadic:
        n = parsed.get(op.variadic)
        if not _is_int(n) or n != n_given:
            raise MXNetError("load_json: %s: %s=%r but the node has %d inputs"
                             % (where, op.variadic, n, n_given))
    names = op.input_names(parsed)
    if not isinstance(names, list):
        names = list(names)
    return names


def _count_ok(op, parsed, names, n):
    if callable(op.inputs) and not names:   # input list decided at record time (custom nodes)
        return True
    if n == len(names):
        return True
    if n == len(names) - 1 and parsed.get("no_bias") and "bias" in names:
        return True
    missing = names[n:]
    return n < len(names) and all(m in op.optional_inputs for m in missing)


def load_json(s):
    """Load a Symbol from MXNet graph JSON text (MXNet 0.8 to 1.9 layouts).

    Parameters
    ----------
    s : str
        The JSON text, e.g. from :meth:`Symbol.tojson` or a ``-symbol.json`` file.

    Returns
    -------
    Symbol

    Raises
    ------
    TypeError
        If ``s`` is not a str.
    MXNetError
        For anything malformed: bad JSON, missing or ill-typed fields, unknown operators or
        attributes, dangling references, cycles, duplicate variable names (the message names
        the node index and the field).  See the note *json-loading*.

    Examples
    --------
    >>> import symbol.json_io as jio
    >>> sym = jio.load_json('{"nodes": [{"op": "null", "name": "x", "inputs": []}, '
    ...                     '{"op": "exp", "name": "e", "inputs": [[0, 0, 0]]}], '
    ...                     '"arg_nodes": [0], "heads": [[1, 0, 0]]}')
    >>> sym.list_outputs()
    ['e_output']
    """
    if not isinstance(s, str):
        raise TypeError("load_json: expected a JSON string, got %s" % type(s).__name__)
    doc = _decode(s)
    _check_top(doc)
    version = _graph_version(doc)
    if version is None:
        _log.warning("Loading symbol saved by previous version v0.8.0 (no mxnet_version). "
                     "Attempting to upgrade...")
        version = 800
    elif version < MXNET_VERSION:
        _log.info("Loading symbol saved by previous version %s. Attempting to upgrade...",
                  _version_str(version))
    elif version > MXNET_VERSION:
        _log.warning("Loading symbol saved by MXNet version %s with lower version of MXNet %s. "
                     "May cause undefined behavior.", _version_str(version),
                     _version_str(MXNET_VERSION))
    from .graph import Node, verify
    from .registry import get_op

    raw_nodes = doc["nodes"]
    nodes = []
    var_names = {}
    for i, raw in enumerate(raw_nodes):
        op_name, name, attrs, raw_inputs = _node_fields(i, raw)
        where = "node %d (%r)" % (i, name)
        inputs = []
        for k, e in enumerate(raw_inputs):
            nid, idx, ver = _entry(e, "%s input %d" % (where, k), i)
            src = nodes[nid]
            nout = src.num_outputs()
            if idx >= nout:
                raise MXNetError("load_json: %s input %d refers to output %d of node %d (%r), "
                                 "which has %d output(s)" % (where, k, idx, nid, src.name, nout))
            inputs.append((src, idx, ver))
        if op_name == "null":
            if inputs:
                raise MXNetError("load_json: %s is a variable (op \"null\") but has inputs" % where)
            if version < MXNET_VERSION:
                attrs = _fix_hidden_keys(None, attrs, inputs)
            if name in var_names:
                raise MXNetError("load_json: %s: duplicate variable name %r (also node %d)"
                                 % (where, name, var_names[name]))
            var_names[name] = i
            nodes.append(Node(None, name, attrs))
            continue
        try:
            op = get_op(op_name)
        except MXNetError:
            raise MXNetError("load_json: %s: Failed loading Op %s: operator is not registered"
                             % (where, op_name)) from None
        exempt = set()
        if version < MXNET_VERSION:
            attrs = _fix_hidden_keys(op, attrs, inputs, exempt)
            if version < 905 and op.name in ("argmax", "argmin") and attrs.get("axis") == "-1":
                del attrs["axis"]
        parsed = _parse_node_attrs(op, {k: v for k, v in attrs.items() if k not in exempt}, where)
        names = _expected_inputs(op, parsed, where, len(inputs))
        if version < 900 and len(inputs) < len(names) and not op.variadic:
            # aux states were not stored before 0.9.0: MXNet adds <node>_<input> variables
            for arg in names[len(inputs):]:
                if parsed.get("no_bias") and arg == "bias":
                    continue
                vname = "%s_%s" % (name, arg)
                if vname in var_names:
                    raise MXNetError("load_json: %s: upgraded input variable %r duplicates "
                                     "node %d" % (where, vname, var_names[vname]))
                var_names[vname] = i
                inputs.append((Node(None, vname, attrs), 0, 0))
        if version < 904 and op.name == "BatchNorm":
            for k, init in _BN_INIT.items():
                if k < len(inputs) and inputs[k][0].op is None:
                    inputs[k][0].attrs.setdefault("__init__", init)
        if not _count_ok(op, parsed, names, len(inputs)):
            raise MXNetError("load_json: %s: operator %s expects %d inputs (%s), got %d"
                             % (where, op.name, len(names), ", ".join(names), len(inputs)))
        node = Node(op, name, attrs, inputs)
        node._parsed = parsed
        nodes.append(node)
        try:
            node.num_outputs()
        except MXNetError as e:
            raise MXNetError("load_json: %s: %s" % (where, e)) from None
        except Exception as e:  # an op's num_outputs callable on odd attrs
            raise MXNetError("load_json: %s: cannot determine the outputs of %s: %s"
                             % (where, op.name, e)) from None
    heads = []
    for k, e in enumerate(doc["heads"]):
        nid, idx, _ver = _entry(e, "heads[%d]" % k, len(nodes))
        if idx >= nodes[nid].num_outputs():
            raise MXNetError("load_json: heads[%d] refers to output %d of node %d (%r), which "
                             "has %d output(s)" % (k, idx, nid, nodes[nid].name,
                                                   nodes[nid].num_outputs()))
        heads.append((nodes[nid], idx))
    for k, nid in enumerate(doc["arg_nodes"]):
        if not 0 <= nid < len(nodes) or nodes[nid].op is not None:
            raise MXNetError("load_json: arg_nodes[%d] = %d is not the index of a variable node"
                             % (k, nid))
    order = verify(heads)
    from .budget import check_document
    check_document(nodes, len(s), order)     # see symbol/budget.py, note *file-budget*
    from .symbol import Symbol
    return Symbol(heads)


def _parse_node_attrs(op, attrs, where):
    try:
        return op.parse_attrs(attrs, strict=True)
    except MXNetError as e:
        raise MXNetError("load_json: %s: %s" % (where, e)) from None
    except Exception as e:  # defensive: a converter tripping over untrusted text
        raise MXNetError("load_json: %s: invalid attributes for %s: %s" % (where, op.name, e)) from None


def load(fname):
    """Load a Symbol from a graph JSON file written by :meth:`Symbol.save` (or by MXNet).

    Raises TypeError if ``fname`` is not a str, MXNetError naming the file if it cannot be
    read or decoded, and whatever :func:`load_json` raises for its content.
    """
    if not isinstance(fname, str):
        raise TypeError("load: fname must be a string, got %s" % type(fname).__name__)
    try:
        with open(fname, "r", encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise MXNetError("load: cannot read symbol file %r: %s" % (fname, e)) from None
    return load_json(text)


# backward graphs name their outputs with ``_gradient_output`` (symbol.autodiff); importing it
# here registers that op wherever graphs can be loaded or built
from . import autodiff as _autodiff  # noqa: E402,F401
