"""What a graph read from a file may make agjit allocate (issue 10, item 7).

Note *file-budget*.  A graph JSON document is untrusted: an attribute of a few bytes
(``_zeros shape=(100000, 100000)``, ``tile reps``, ``one_hot depth``, ``Embedding
input_dim``, ...) can size an allocation of gigabytes once the graph is inferred, bound or
run.  Every document loaded by :func:`symbol.json_io.load_json` (and so by ``mx.sym.load``,
``mx.model.load_checkpoint``, ``SymbolBlock.imports``, ``Module.load``) gets a budget of
array elements proportional to its size::

    limit = max(FLOOR, PER_BYTE * len(text))      # FLOOR = 2**22, PER_BYTE = 16384

or ``AGJIT_MAX_FILE_ELEMENTS`` when that environment variable is set (``0`` = no limit), and
two checks keep it.  PER_BYTE is what legitimate exports need: a network's parameters are
sized by a small document (an exported VGG16, 22 KB of JSON, has 1.4e8 weights, 6,300 per
character; a word-level LSTM language model on a 33,278-word vocabulary, 7 KB, needs 7e7
elements at batch 35x20, 10,500 per character).

* at load time, the elements each node's attributes ask for on their own (the table
  ``_SIZERS``: a creation op's ``shape``, ``tile``'s ``reps``, ``repeat``'s ``repeats``,
  FullyConnected's ``num_hidden``, Convolution's ``num_filter * prod(kernel) *
  prod(1 + 2 * pad)``, RNN's parameter count, a variable's ``__shape__``, ...) are added up
  over the document; going over the limit is an MXNetError naming the node, the op, the
  attribute and the size, raised before anything is allocated;
* when a graph holding nodes of a loaded document is shape-inferred
  (``Symbol.infer_shape``/``infer_shape_partial``, and so ``simple_bind``, ``Module.bind``,
  ``SymbolBlock``'s deferred initialisation, ``Model.predict``) or bound to arrays
  (``Symbol.bind``), the elements of every inferred entry (node outputs, arguments,
  auxiliary states) must stay within the documents' limits plus ``INPUT_FACTOR`` (1024)
  times the elements of the shapes or arrays the caller passed.  This catches sizes that
  come from products over several nodes (two FullyConnected layers of 60,000 units make a
  3.6e9-element weight although each attribute is small).

Graphs built in Python are not limited: the program asked for what it gets.  Reshape's
target is not counted (a reshape allocates nothing and must keep its input's size).
"""
import math as _math
import os as _os
import weakref as _weakref

from .base import MXNetError

__all__ = ["ENV", "FLOOR", "PER_BYTE", "INPUT_FACTOR", "file_limit", "check_document",
           "check_entries", "file_nodes", "active", "attr_sizes"]

ENV = "AGJIT_MAX_FILE_ELEMENTS"
FLOOR = 1 << 22
PER_BYTE = 16384
INPUT_FACTOR = 1024


class _Record:
    __slots__ = ("nbytes", "limit", "__weakref__")

    def __init__(self, nbytes, limit):
        self.nbytes = nbytes
        self.limit = limit


# node -> the _Record of the document it was read from
_FILE_NODES = _weakref.WeakKeyDictionary()


def file_limit(nbytes):
    """The element budget of a document of ``nbytes`` characters (None: unlimited)."""
    text = _os.environ.get(ENV, "").strip()
    if text:
        try:
            v = int(float(text))
        except ValueError:
            raise MXNetError("%s must be a number of array elements (0 for no limit), got %r"
                             % (ENV, text)) from None
        return None if v <= 0 else v
    return max(FLOOR, PER_BYTE * nbytes)


def _knob():
    return ("set %s to a larger number of elements (0 for no limit) to load a model that "
            "legitimately needs more" % ENV)


# -- what attributes ask for ---------------------------------------------------------------
def _prod(dims, plus=0, scale=1):
    p = 1
    for d in dims or ():
        if d is None:
            continue
        d = int(d)
        if d > 0 or plus:
            p *= max(d * scale + plus, 1)
    return p


def _tuple(v):
    if v is None:
        return ()
    return tuple(v) if isinstance(v, (tuple, list)) else (v,)


def _shape_attr(name):
    return lambda a: [(name, _prod(_tuple(a.get(name))))]


def _arange(a):
    if a.get("infer_range"):
        return []
    start, stop, step = a.get("start"), a.get("stop"), a.get("step", 1.0)
    if stop is None:
        start, stop = 0.0, start
    try:
        n = (float(stop) - float(start)) / float(step)
    except (TypeError, ValueError, ZeroDivisionError):
        return []
    if _math.isnan(n):
        return []
    n = _math.inf if _math.isinf(n) else max(_math.ceil(n), 0)
    return [("start/stop/step/repeat", n * max(int(a.get("repeat", 1) or 1), 1))]


def _conv(a):
    k = _prod(_tuple(a.get("kernel")))
    p = _prod(_tuple(a.get("pad")), plus=1, scale=2)
    n = max(int(a.get("num_filter") or 1), 1)
    return [("num_filter*kernel*pad", n * k * p)]


def _deconv(a):
    out = _conv(a)
    s = _prod(_tuple(a.get("stride")))
    t = _prod(_tuple(a.get("target_shape")))
    n = max(int(a.get("num_filter") or 1), 1)
    return out + [("num_filter*stride", n * s), ("target_shape", t)]


def _pooling(a):
    return [("pad", _prod(_tuple(a.get("pad")), plus=1, scale=2))]


def _pad(a):
    w = _tuple(a.get("pad_width"))
    p = 1
    for i in range(0, len(w) - 1, 2):
        p *= 1 + max(int(w[i]), 0) + max(int(w[i + 1]), 0)
    return [("pad_width", p)]


def _upsampling(a):
    s = max(int(a.get("scale") or 1), 1)
    n = max(int(a.get("num_args") or 1), 1)
    out = [("scale", s * s * n)]
    if a.get("sample_type") == "bilinear":
        k = 2 * s - s % 2
        out.append(("num_filter*scale", max(int(a.get("num_filter") or 1), 1) * k * k))
    return out


def _rnn(a):
    gates = {"rnn_relu": 1, "rnn_tanh": 1, "lstm": 4, "gru": 3}.get(a.get("mode"), 4)
    h = max(int(a.get("state_size") or 1), 1)
    p = a.get("projection_size")
    p = h if p is None else max(int(p), 1)
    layers = max(int(a.get("num_layers") or 1), 1)
    dirs = 2 if a.get("bidirectional") else 1
    return [("state_size*num_layers", layers * dirs * gates * h * (h + p + 2))]


def _int_attr(name):
    return lambda a: [(name, max(int(a.get(name) or 0), 0))]


_SIZERS = {
    "FullyConnected": _int_attr("num_hidden"),
    "Convolution": _conv,
    "Deconvolution": _deconv,
    "Pooling": _pooling,
    "Embedding": lambda a: [("input_dim*output_dim",
                             max(int(a.get("input_dim") or 0), 0) *
                             max(int(a.get("output_dim") or 0), 0))],
    "one_hot": _int_attr("depth"),
    "repeat": _int_attr("repeats"),
    "SliceChannel": _int_attr("num_outputs"),
    "tile": _shape_attr("reps"),
    "broadcast_to": _shape_attr("shape"),
    "broadcast_axis": _shape_attr("size"),
    "scatter_nd": _shape_attr("shape"),
    "ROIPooling": _shape_attr("pooled_size"),
    "_image_resize": _shape_attr("size"),
    "_arange": _arange,
    "Pad": _pad,
    "UpSampling": _upsampling,
    "RNN": _rnn,
}
_NOT_COUNTED = frozenset(["Reshape"])


def attr_sizes(op, parsed):
    """``[(attribute, elements), ...]`` that the attributes of one node ask for by themselves.
    Any op with a ``shape``-kind attribute called ``shape`` (``_zeros``, ``_full``, the random
    creation and sampling ops, ...) counts its product unless listed above."""
    f = _SIZERS.get(op.name)
    if f is not None:
        return f(parsed)
    if op.name in _NOT_COUNTED:
        return []
    a = op.attrs.get("shape")
    if a is not None and a.kind == "shape":
        return [("shape", _prod(_tuple(parsed.get("shape"))))]
    return []


def _shape_text(v):
    try:
        from .base import parse_literal
        s = parse_literal(v)
    except Exception:
        return None
    if isinstance(s, int) and not isinstance(s, bool):
        s = (s,)
    if not isinstance(s, tuple) or not all(isinstance(d, int) and not isinstance(d, bool)
                                           for d in s):
        return None
    return s


def _show(v, limit=60):
    r = repr(v)
    return r if len(r) <= limit else r[:limit - 3] + "..."


def check_document(nodes, nbytes, reachable=()):
    """Load-time check of one document's nodes (see the note *file-budget*); marks them as
    read from a file of ``nbytes`` characters.  Raises MXNetError naming the node, op,
    attribute and size that goes over the limit."""
    limit = file_limit(nbytes)
    rec = _Record(nbytes, limit)
    total = 0
    for i, node in enumerate(nodes):
        if node.op is None:
            text = node.attrs.get("__shape__")
            sizes = []
            if text is not None:
                s = _shape_text(text)
                if s is not None:
                    sizes = [("__shape__", _prod(s))]
            opname, values = "variable", {"__shape__": text}
        else:
            try:
                sizes = attr_sizes(node.op, node.parsed)
            except (TypeError, ValueError, OverflowError):
                sizes = []
            opname, values = node.op.name, node.parsed
        for attr, n in sizes:
            total += n
            if limit is not None and total > limit:
                keys = attr.replace("*", "/").split("/")
                shown = ", ".join("%s=%s" % (k, _show(values.get(k))) for k in keys)
                size = ("%d" % n) if n != _math.inf else "unbounded"
                sofar = "" if total == n else " (with the nodes before it: %s)" % (
                    ("%d" % total) if total != _math.inf else "unbounded")
                raise MXNetError(
                    "load_json: node %d (%r): %s attribute%s %s ask%s for %s array elements%s; "
                    "a graph file of %d characters may ask for at most %d elements in all; %s"
                    % (i, node.name, opname, "s" if len(keys) > 1 else "", shown,
                       "" if len(keys) > 1 else "s", size, sofar, nbytes, limit, _knob()))
    for node in nodes:
        _FILE_NODES[node] = rec
    for node in reachable:          # variables added by the pre-0.9 upgrade
        _FILE_NODES.setdefault(node, rec)
    return limit


def active():
    """Whether any node read from a file is alive (a cheap test before a graph walk)."""
    return bool(_FILE_NODES)


def file_nodes(order):
    """The budget records of the file-loaded nodes in ``order`` (empty when none)."""
    if not _FILE_NODES:
        return {}
    recs = {}
    for n in order:
        r = _FILE_NODES.get(n)
        if r is not None:
            recs[id(r)] = r
    return recs


def _elements(shape):
    p = 1
    for d in shape:
        p *= max(int(d), 1)
    return p


def check_entries(order, values, given, where):
    """Inference-time check (see the note *file-budget*): ``values`` maps entries to inferred
    shapes, ``given`` is the list of shapes the caller passed.  No-op for graphs without
    file-loaded nodes or with an unlimited budget."""
    recs = file_nodes(order)
    if not recs:
        return
    limits = [r.limit for r in recs.values()]
    if any(x is None for x in limits):
        return
    given_n = sum(_elements(s) for s in given if s is not None)
    allowed = sum(limits) + INPUT_FACTOR * given_n
    total = 0
    biggest = None
    for key, shape in values.items():
        if shape is None:
            continue
        n = _elements(shape)
        total += n
        if biggest is None or n > biggest[0]:
            biggest = (n, key, shape)
    if total <= allowed:
        return
    n, (node, idx), shape = biggest
    what = node.name if node.op is None else "%s output %d (%s)" % (node.name, idx, node.op.name)
    nbytes = sum(r.nbytes for r in recs.values())
    raise MXNetError(
        "%s: the graph read from a file would allocate more than %d array elements (the "
        "largest entry: %s of shape %s, %d elements); a graph file of %d characters may make "
        "agjit allocate at most %d elements plus %d per element of the given inputs (%d); %s"
        % (where, allowed, what, _show(tuple(shape)), n, nbytes, sum(limits), INPUT_FACTOR,
           given_n, _knob()))
