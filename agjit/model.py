"""``mx.model``: checkpoints in MXNet's two-file format, and a runnable model loaded from them.

Note: checkpoint-format
    A checkpoint is the pair MXNet 1.x's ``mx.model.save_checkpoint`` and Gluon's
    ``HybridBlock.export`` write::

        PREFIX-symbol.json      the graph (Symbol.tojson)
        PREFIX-%04d.params      an NDArray dict file (agjit.ndarray.utils note
                                *ndarray-file-format*) with keys 'arg:NAME' for the
                                arguments and 'aux:NAME' for the auxiliary states

    :func:`save_checkpoint` writes the pair with one :func:`symbol.base.atomic_write_group`:
    both files go to temporaries first (a failure leaves both targets as they were), then
    the params file is renamed into place, then the symbol file.  Both record a *graph id*,
    the first 8 bytes of the SHA-256 of the symbol's JSON: in the params file's reserved
    header word (MXNet writes 0 there and ignores it) and as the graph attribute
    ``agjit_graph_id`` of the JSON (``["str", "<16 hex digits>"]``; MXNet ignores unknown
    graph attributes and drops them when it saves).  So a crash between the two renames
    leaves new params beside the old symbol, and :func:`load_checkpoint` (and
    ``Model.load``) refuses such a pair with an MXNetError when the graph changed; files
    where either id is absent (written by MXNet, or ``symbol=None``) are not checked.  The
    id is a function of the graph only, so every epoch's params fit the one symbol file.
    Arguments of the symbol that have no 'arg:' entry are the model's *inputs* (``data``,
    ``softmax_label``, ...).

Functions
---------
save_checkpoint(prefix, epoch, symbol, arg_params, aux_params)   MXNet's signature
export(sym, arg_params, aux_params, prefix, epoch=0)              the same, with validation
load_checkpoint(prefix, epoch) -> (symbol, arg_params, aux_params)
load_params(prefix, epoch) -> (arg_params, aux_params)
export_recorded(output, prefix, epoch, params, inputs)            from an autograd recording
Model.load(prefix, epoch)                                        a runnable model

>>> import agjit as mx, tempfile, os
>>> prefix = os.path.join(tempfile.mkdtemp(), 'net')
>>> net = mx.sym.FullyConnected(mx.sym.var('data'), num_hidden=2, name='fc')
>>> w, b = mx.nd.ones((2, 3)), mx.nd.zeros((2,))
>>> _ = mx.model.export(net, {'fc_weight': w, 'fc_bias': b}, {}, prefix, 1)
>>> m = mx.model.Model.load(prefix, 1)
>>> m.predict(data=mx.nd.ones((1, 3))).asnumpy().tolist()
[[3.0, 3.0]]
"""
import json
import logging
import os
import warnings
from collections import namedtuple

import numpy as np

from symbol.base import MXNetError
from symbol.symbol import Symbol
from . import ndarray as _nd
from .ndarray import NDArray
from .ndarray.ndarray import _wrap
from .ndarray.utils import atomic_write, _encode, _normalise
from .context import cpu

__all__ = ["save_checkpoint", "load_checkpoint", "load_params", "export", "export_recorded",
           "Model", "BatchEndParam"]

# What a batch-end callback receives (mx.callback, Module.fit): MXNet's namedtuple.
BatchEndParam = namedtuple("BatchEndParams", ["epoch", "nbatch", "eval_metric", "locals"])


def _files(prefix, epoch):
    if not isinstance(prefix, (str, os.PathLike)):
        raise TypeError("prefix must be a string, got %s" % type(prefix).__name__)
    if isinstance(epoch, bool) or not isinstance(epoch, (int, np.integer)) or epoch < 0:
        raise TypeError("epoch must be a non-negative int, got %r" % (epoch,))
    prefix = os.fspath(prefix)
    return "%s-symbol.json" % prefix, "%s-%04d.params" % (prefix, int(epoch))


def _param_dict(arg_params, aux_params):
    for what, d in (("arg_params", arg_params), ("aux_params", aux_params)):
        if not isinstance(d, dict):
            raise TypeError("%s must be a dict of str -> NDArray, got %s"
                            % (what, type(d).__name__))
    save_dict = {"arg:%s" % k: v for k, v in arg_params.items()}
    save_dict.update({"aux:%s" % k: v for k, v in aux_params.items()})
    return save_dict


def save_checkpoint(prefix, epoch, symbol, arg_params, aux_params, remove_amp_cast=True):
    """Write ``prefix-symbol.json`` (unless ``symbol`` is None) and ``prefix-%04d.params``
    exactly as MXNet's ``mx.model.save_checkpoint`` does (note *checkpoint-format*).

    Parameters
    ----------
    prefix : str
    epoch : int
    symbol : Symbol or None
    arg_params, aux_params : dict of str to NDArray
    """
    sym_file, param_file = _files(prefix, epoch)
    save_dict = _param_dict(arg_params or {}, aux_params or {})
    arrays, names = _normalise(save_dict)
    if symbol is None:
        atomic_write(param_file, _encode(arrays, names))
        logging.info('Saved checkpoint to "%s"', param_file)
        return sym_file, param_file
    if not isinstance(symbol, Symbol):
        raise TypeError("symbol must be a Symbol, got %s" % type(symbol).__name__)
    text = symbol.tojson()
    gid = graph_id(text)
    write_checkpoint_files([(param_file, _encode(arrays, names, reserved=gid), "wb"),
                            (sym_file, [_with_graph_id(text, gid)], "w")])
    logging.info('Saved checkpoint to "%s"', param_file)
    return sym_file, param_file


GRAPH_ID_ATTR = "agjit_graph_id"


def graph_id(json_text):
    """The graph id of a symbol's JSON text (note *checkpoint-format*): never 0."""
    import hashlib
    return int.from_bytes(hashlib.sha256(json_text.encode("utf-8")).digest()[:8], "little") or 1


def _with_graph_id(text, gid):
    anchor = '"attrs": {'
    k = text.rfind(anchor)          # the graph's attrs: the last object of the document
    if k < 0:
        return text
    k += len(anchor)
    return '%s"%s": ["str", "%016x"], %s' % (text[:k], GRAPH_ID_ATTR, gid, text[k:])


def write_checkpoint_files(items):
    """Publish a model's files (``[(fname, chunks, mode)]``, params first, symbol last) so
    a crash never leaves a partial file and a mixed pair is detectable (note
    *checkpoint-format*); the one writer of mx.model.save_checkpoint and Gluon's export."""
    from symbol.base import atomic_write_group
    atomic_write_group(items)


def _check_pair(sym_file, sym_text, param_file, where):
    """Refuse a symbol/params pair whose recorded graph ids differ (note *checkpoint-format*)."""
    try:
        with open(param_file, "rb") as f:
            head = f.read(16)
    except OSError:
        return          # the params loader reports it
    if len(head) < 16:
        return
    pid = int.from_bytes(head[8:16], "little")
    try:
        v = json.loads(sym_text).get("attrs", {}).get(GRAPH_ID_ATTR)
        sid = int(v[1], 16) if isinstance(v, list) and len(v) == 2 and v[0] == "str" else 0
    except (ValueError, TypeError, AttributeError):
        sid = 0
    if pid and sid and pid != sid:
        raise MXNetError("%s: %s (graph id %016x) was not saved with %s (graph id %016x): "
                         "the pair does not fit (an interrupted save_checkpoint, or files of "
                         "different saves)" % (where, param_file, pid, sym_file, sid))


def export(sym, arg_params, aux_params, prefix, epoch=0):
    """Export a Symbol and its parameters as an MXNet checkpoint (note *checkpoint-format*);
    returns ``(symbol_file, params_file)``.

    Unlike :func:`save_checkpoint` (which, like MXNet's, writes whatever it is given) this
    first checks the parameters against the graph: every ``arg_params`` key must be an
    argument and every ``aux_params`` key an auxiliary state of ``sym``, every auxiliary
    state needs a value, and the shapes must agree with shape inference.  Errors are
    MXNetError naming the parameter.
    """
    if not isinstance(sym, Symbol):
        raise TypeError("sym must be a Symbol, got %s" % type(sym).__name__)
    arg_params = dict(arg_params or {})
    aux_params = dict(aux_params or {})
    _param_dict(arg_params, aux_params)
    _normalise({"arg:" + k: v for k, v in arg_params.items()})
    _normalise({"aux:" + k: v for k, v in aux_params.items()})
    _check_params(sym, arg_params, aux_params, "export")
    return save_checkpoint(prefix, epoch, sym, arg_params, aux_params)


def _check_params(sym, arg_params, aux_params, where, allow_extra=False):
    args = sym.list_arguments()
    aux = sym.list_auxiliary_states()
    for name in arg_params:
        if name not in args:
            if allow_extra:
                continue
            hint = " (it is an auxiliary state: pass it in aux_params)" if name in aux else ""
            raise MXNetError("%s: arg_params has %r, which is not an argument of the symbol%s; "
                             "the arguments are %s" % (where, name, hint, args))
    for name in aux_params:
        if name not in aux:
            if allow_extra:
                continue
            hint = " (it is an argument: pass it in arg_params)" if name in args else ""
            raise MXNetError("%s: aux_params has %r, which is not an auxiliary state of the "
                             "symbol%s; the auxiliary states are %s" % (where, name, hint, aux))
    missing = [a for a in aux if a not in aux_params]
    if missing:
        raise MXNetError("%s: no value for the auxiliary state(s) %s" % (where, missing))
    shapes = {k: v.shape for k, v in arg_params.items() if k in args}
    shapes.update({k: v.shape for k, v in aux_params.items() if k in aux})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sym.infer_shape_partial(**shapes)
    except MXNetError as e:
        raise MXNetError("%s: the parameter shapes do not fit the symbol: %s" % (where, e)) \
            from None


def load_params(prefix, epoch):
    """``(arg_params, aux_params)`` from ``prefix-%04d.params`` (MXNet's
    ``mx.model.load_params``)."""
    _sym_file, param_file = _files(prefix, epoch)
    save_dict = _nd.load(param_file)
    arg_params, aux_params = {}, {}
    if not save_dict:
        return arg_params, aux_params
    if not isinstance(save_dict, dict):
        raise MXNetError("load_params: %s holds an unnamed list of arrays, not a checkpoint "
                         "('arg:NAME' / 'aux:NAME' keys)" % param_file)
    for k, v in save_dict.items():
        tp, sep, name = k.partition(":")
        if not sep or tp not in ("arg", "aux"):
            raise MXNetError("load_params: %s has the key %r; checkpoint keys are 'arg:NAME' "
                             "or 'aux:NAME'" % (param_file, k))
        (arg_params if tp == "arg" else aux_params)[name] = v
    return arg_params, aux_params


def load_checkpoint(prefix, epoch):
    """``(symbol, arg_params, aux_params)`` from a checkpoint (MXNet's
    ``mx.model.load_checkpoint``)."""
    import symbol as _sym
    sym_file, param_file = _files(prefix, epoch)
    try:
        with open(sym_file, "rb") as f:
            sym_text = f.read().decode("utf-8")
        symbol = _sym.load_json(sym_text)
    except OSError as e:
        raise MXNetError("load_checkpoint: cannot read %s: %s" % (sym_file, e.strerror or e)) \
            from None
    except UnicodeDecodeError as e:
        raise MXNetError("load_checkpoint: %s is not UTF-8 JSON text: %s" % (sym_file, e)) \
            from None
    _check_pair(sym_file, sym_text, param_file, "load_checkpoint")
    arg_params, aux_params = load_params(prefix, epoch)
    return symbol, arg_params, aux_params


# ---------------------------------------------------------------------------------------
# exporting an autograd recording
# ---------------------------------------------------------------------------------------
def _tape_leaves(roots):
    """{variable name: NDArray} for every leaf (``var<k>``/``null<k>``) of the recorded
    history of ``roots`` (entries), found through the tape's saved input arrays."""
    leaves = {}
    seen = set()
    stack = [e[0] for e in roots]
    while stack:
        tn = stack.pop()
        if id(tn) in seen or tn.is_var:
            continue
        seen.add(id(tn))
        for (src, _i), arr in zip(tn.inputs, tn.in_arrays or ()):
            if src.is_var:
                leaves.setdefault(src.sym.name, arr)
            else:
                stack.append(src)
    return leaves


def export_recorded(output, prefix, epoch=0, params=None, inputs=None, bake_constants=False):
    """Export what autograd recorded for ``output`` as an MXNet checkpoint.

    ``autograd.get_symbol(output)`` names the recorded leaves ``var<k>`` (arrays with
    ``attach_grad``) and ``null<k>`` (other arrays), in the order they were first seen.
    This renames them: the variable of every array in ``params`` gets that dict key and the
    array is saved as its value ('arg:NAME', or 'aux:NAME' when the graph uses it as an
    auxiliary state such as BatchNorm's moving statistics); the variable of every array in
    ``inputs`` gets that key and is left out of the file, so it is an input of the loaded
    model.  A leaf named by neither is an error (it would otherwise become an input nobody
    knows to feed, or silently freeze data into the model) unless ``bake_constants=True``,
    which saves such constants under their generated ``null<k>``/``var<k>`` name.

    Parameters
    ----------
    output : NDArray or list of NDArray
        Recorded result(s) (inside ``autograd.record()``, before a non-retaining backward).
    prefix : str
    epoch : int
    params : dict of str to NDArray
    inputs : dict of str to NDArray, optional
    bake_constants : bool

    Returns
    -------
    (Symbol, dict, dict)
        The renamed symbol, arg_params and aux_params that were written.

    Examples
    --------
    >>> import agjit as mx, tempfile, os
    >>> w = mx.nd.ones((2, 3)); x = mx.nd.ones((4, 3)); w.attach_grad()
    >>> with mx.autograd.record():
    ...     y = mx.nd.FullyConnected(x, w, num_hidden=2, no_bias=True)
    >>> sym, args, aux = mx.model.export_recorded(
    ...     y, os.path.join(tempfile.mkdtemp(), 'fc'), 0, params={'w': w}, inputs={'data': x})
    >>> sym.list_arguments()
    ['data', 'w']
    """
    from . import autograd
    from .tape import entry_of
    import symbol as _sym
    outs = list(output) if isinstance(output, (list, tuple)) else [output]
    if not outs or any(not isinstance(o, NDArray) for o in outs):
        raise TypeError("export_recorded: output must be an NDArray or a list of NDArrays")
    params = dict(params or {})
    inputs = dict(inputs or {})
    entries = []
    for o in outs:
        e = entry_of(o)
        if e is None:
            raise MXNetError("export_recorded: the output was not recorded (compute it inside "
                             "autograd.record(), and export before a backward() without "
                             "retain_graph=True)")
        entries.append(e)
    syms = [autograd.get_symbol(o) for o in outs]
    sym = syms[0] if len(syms) == 1 else _sym.Group(syms)
    leaves = _tape_leaves(entries)
    graph_vars = set(sym.list_inputs())

    rename = {}                     # old variable name -> new name
    for kind, d in (("params", params), ("inputs", inputs)):
        for name, arr in d.items():
            if not isinstance(name, str) or not isinstance(arr, NDArray):
                raise TypeError("export_recorded: %s must map str -> NDArray" % kind)
            e = entry_of(arr)
            old = e[0].sym.name if e is not None and e[0].is_var else None
            if old is None or old not in graph_vars:
                raise MXNetError("export_recorded: %s[%r] (shape %s) is not a leaf of the "
                                 "recorded computation of the output" % (kind, name, arr.shape))
            if old in rename:
                raise MXNetError("export_recorded: %r and %r are the same array"
                                 % (rename[old], name))
            rename[old] = name
    if set(params) & set(inputs):
        raise MXNetError("export_recorded: %s named in both params and inputs"
                         % sorted(set(params) & set(inputs)))
    baked = {}
    for v in sorted(graph_vars - set(rename)):
        if v in params or v in inputs:
            raise MXNetError("export_recorded: the name %r is already used by an unnamed "
                             "recorded variable; choose another" % v)
        if bake_constants and v in leaves:
            baked[v] = leaves[v]
            continue
        shp = leaves[v].shape if v in leaves else "?"
        raise MXNetError("export_recorded: the recorded variable %s (shape %s) is named by "
                         "neither params nor inputs; pass it in params (to save its value) "
                         "or in inputs (to feed it), or use bake_constants=True" % (v, shp))
    graph = json.loads(sym.tojson())
    for node in graph["nodes"]:
        if node["op"] == "null" and node["name"] in rename:
            node["name"] = rename[node["name"]]
    sym = _sym.load_json(json.dumps(graph))
    values = dict(params)
    values.update(baked)
    aux_names = set(sym.list_auxiliary_states())
    arg_params = {k: v for k, v in values.items() if k not in aux_names}
    aux_params = {k: v for k, v in values.items() if k in aux_names}
    export(sym, arg_params, aux_params, prefix, epoch)
    return sym, arg_params, aux_params


# ---------------------------------------------------------------------------------------
# a runnable model
# ---------------------------------------------------------------------------------------
def _label_inputs(sym, names):
    """The variables among ``names`` that some operator reads through an input named
    ``label`` (SoftmaxOutput, LinearRegressionOutput, ...)."""
    from symbol.graph import topo_order
    wanted = set(names)
    labels = set()
    for n in topo_order(sym._outputs):
        if n.op is None:
            continue
        try:
            slots = n.op.input_names(n.parsed)
        except Exception:  # noqa: BLE001 - an op that cannot name its inputs has no label
            continue
        for k, (src, _i, _v) in enumerate(n.inputs):
            if src.op is None and src.name in wanted and k < len(slots) and slots[k] == "label":
                labels.add(src.name)
    return [a for a in names if a in labels]


class Model:
    """A Symbol with its parameters, run in predict mode through the Symbol executor.

    Parameters
    ----------
    symbol : Symbol
    arg_params, aux_params : dict of str to NDArray
        Arguments without a value are the model's inputs (:attr:`data_names`); those a loss
        layer reads as its ``label`` (:attr:`label_names`) may be left out of ``predict``.
    allow_extra_params : bool
        Ignore parameters the symbol does not use (otherwise MXNetError).

    Examples
    --------
    >>> m = Model.load('mlp', 10)                          # doctest: +SKIP
    >>> probs = m.predict(data=mx.nd.ones((1, 784)))       # doctest: +SKIP
    """

    _MAX_EXECUTORS = 8

    def __init__(self, symbol, arg_params=None, aux_params=None, allow_extra_params=False,
                 ctx=None):
        if not isinstance(symbol, Symbol):
            raise TypeError("Model: symbol must be a Symbol, got %s" % type(symbol).__name__)
        arg_params = dict(arg_params or {})
        aux_params = dict(aux_params or {})
        for d in (arg_params, aux_params):
            for k, v in d.items():
                if not isinstance(k, str) or not isinstance(v, NDArray):
                    raise TypeError("Model: parameters must map str -> NDArray")
        _check_params(symbol, arg_params, aux_params, "Model", allow_extra=allow_extra_params)
        args = symbol.list_arguments()
        aux = symbol.list_auxiliary_states()
        self.symbol = symbol
        self.arg_params = {k: v for k, v in arg_params.items() if k in args}
        self.aux_params = {k: v for k, v in aux_params.items() if k in aux}
        self.data_names = [a for a in args if a not in self.arg_params]
        self.label_names = _label_inputs(symbol, self.data_names)
        self.output_names = symbol.list_outputs()
        self.ctx = ctx if ctx is not None else cpu()
        self._executors = {}

    @classmethod
    def load(cls, prefix, epoch=0, **kwargs):
        """Load ``prefix-symbol.json`` and ``prefix-%04d.params`` (note *checkpoint-format*)."""
        sym, arg_params, aux_params = load_checkpoint(prefix, epoch)
        return cls(sym, arg_params, aux_params, **kwargs)

    def save(self, prefix, epoch=0):
        """Write this model as a checkpoint (see :func:`export`)."""
        return export(self.symbol, self.arg_params, self.aux_params, prefix, epoch)

    def __repr__(self):
        return "<Model inputs=%s outputs=%s params=%d>" % (
            self.data_names, self.output_names,
            sum(int(v.size) for v in list(self.arg_params.values()) + list(self.aux_params.values())))

    def _inputs(self, args, kwargs):
        if len(args) > len(self.data_names):
            raise MXNetError("predict: %d positional inputs given but the model has %d (%s)"
                             % (len(args), len(self.data_names), ", ".join(self.data_names)))
        given = dict(zip(self.data_names, args))
        for k, v in kwargs.items():
            if k not in self.data_names:
                what = "a parameter" if k in self.arg_params else "not an input"
                raise MXNetError("predict: %r is %s of the model; the inputs are %s"
                                 % (k, what, self.data_names))
            if k in given:
                raise MXNetError("predict: input %r given twice" % k)
            given[k] = v
        out = {}
        for k, v in given.items():
            if isinstance(v, NDArray):
                out[k] = v
            else:
                try:
                    a = np.asarray(v)
                except Exception as e:  # noqa: BLE001 - any conversion failure is bad input
                    raise MXNetError("predict: input %r cannot be converted to an array: %s"
                                     % (k, e)) from None
                if a.dtype == object or a.dtype.kind not in "biuf":
                    raise MXNetError("predict: input %r must be numeric, got %s" % (k, a.dtype))
                out[k] = _nd.array(a, dtype=a.dtype if a.dtype.kind == "f" else "float32")
        return out

    def _executor(self, inputs):
        key = tuple((k, inputs[k].shape, inputs[k]._data.dtype.name) if k in inputs else (k,)
                    for k in self.data_names)
        ex = self._executors.get(key)
        if ex is not None:
            return ex
        shapes = {k: v.shape for k, v in self.arg_params.items()}
        shapes.update({k: v.shape for k, v in inputs.items()})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            arg_shapes, _o, _a = self.symbol.infer_shape_partial(**shapes)
        args = dict(self.arg_params)
        missing = []
        for name, shp in zip(self.symbol.list_arguments(), arg_shapes):
            if name in inputs:
                v = inputs[name]
                args[name] = _wrap(np.zeros(v.shape, dtype=v._data.dtype))
            elif name not in args:
                # a loss layer's label is not needed to predict: zeros of the inferred
                # shape, as MXNet's Module binds labels for inference.  Any other missing
                # input is an error, never silently zero.
                if name in self.label_names and shp and all(d > 0 for d in shp):
                    args[name] = _wrap(np.zeros(shp, dtype=np.float32))
                else:
                    missing.append(name)
        if missing:
            raise MXNetError("predict: missing input(s) %s; the model's inputs are %s"
                             % (missing, self.data_names))
        ex = self.symbol.bind(self.ctx, args, grad_req="null",
                              aux_states=dict(self.aux_params) if self.aux_params else None)
        if len(self._executors) >= self._MAX_EXECUTORS:
            self._executors.pop(next(iter(self._executors)))
        self._executors[key] = ex
        return ex

    def predict(self, *args, **inputs):
        """Run the graph in predict mode (Dropout off, BatchNorm on its moving statistics).

        Inputs are given by name (or positionally in :attr:`data_names` order) as NDArrays
        or anything ``numpy.asarray`` accepts.  Returns one NDArray, or a list when the
        symbol has several outputs; the arrays are fresh (a later call never changes them).
        An executor is bound per distinct set of input shapes and dtypes and reused.
        """
        given = self._inputs(args, inputs)
        ex = self._executor(given)
        outs = ex.forward(is_train=False, **given)
        res = [_wrap(np.array(o._data, copy=True)) for o in outs]
        return res[0] if len(res) == 1 else res

    __call__ = predict
