"""The autograd tape: thread-local recording/training flags, tape nodes and naming counters.

Note: tape-model
    Recording follows MXNet 1.9.1's ``Imperative::RecordOp`` (FINDINGS §2):

    * an op is recorded only while recording is on *and* at least one input already carries
      autograd info (an ``entry``);
    * an input without info becomes a constant variable ``null<k>`` and keeps that entry;
    * ``attach_grad`` / ``mark_variables`` make ``var<k>`` variables; ``var``/``null`` share one
      process-wide counter, op nodes are ``node_<k>`` from another;
    * a non-retaining backward *clears* every tape node whose grad_req is null (op nodes,
      constants, grad_req='null' variables): arrays pointing at a cleared node have no info.

    Each tape node owns the immutable :class:`symbol.graph.Node` built when it was recorded,
    so ``get_symbol`` is just a Symbol over those nodes.

Note: compiled-calls
    The JIT meets the tape through three small protocols defined here, never by duck typing
    or op names:

    * :class:`TapeObserver` -- what ``state.tracer`` holds while a jitted function is traced
      (:func:`set_tracer`): ``agjit.ndarray.invoke`` reports every op to ``on_op`` and
      conversions of arrays to Python values to ``frozen``.
    * :class:`CompiledNode` -- the ``function`` of a tape node that stands for a whole
      compiled call.  Autograd calls its ``backward`` (or the fast ``backward_into``) with one
      head gradient per output: an array, :data:`ONES` (a head gradient of ones, the default
      of ``backward()``) or None (no gradient flows from that output: its branch of the
      backward graph is not built, so an absent head never multiplies a partial by zero).
      ``inputs_of(k)`` says which inputs output ``k`` reads, so a backward from an output
      reaches only the variables that output depends on, as eager.
    * :class:`CompiledCall` -- the graph node (a :class:`symbol.graph.Node`) of such a tape
      node; ``expand`` copies the graph the call ran, so :func:`inline_compiled_calls` (used
      by ``autograd.get_symbol``) returns a Symbol of registered ops only.
"""
import abc
import itertools
import sys
import threading

from symbol.graph import Node, topo_order, verify

_getrefcount = sys.getrefcount

__all__ = ["state", "TapeNode", "is_recording", "is_training", "set_recording", "set_training",
           "new_variable", "new_constant", "entry_of", "TapeObserver", "set_tracer",
           "CompiledNode", "CompiledCall", "ONES", "inline_compiled_calls", "flush_pending"]


class _State(threading.local):
    def __init__(self):
        self.recording = False
        self.training = False
        self.tracer = None      # a TapeObserver (agjit.compiler.trace.Tracer) while tracing
        # outputs of recorded calls whose computation waits for their first use
        # (agjit.gluon.block note *composition*); forced by flush_pending
        self.pending = []


state = _State()

_var_counter = itertools.count()
_node_counter = itertools.count()


def _next_var():
    # next() on an itertools.count is one C call under the GIL: atomic across threads
    return next(_var_counter)


def _next_node():
    return next(_node_counter)


def is_recording():
    return state.recording


def is_training():
    return state.training


def set_recording(flag):
    prev = state.recording
    state.recording = bool(flag)
    return prev


def set_training(flag):
    prev = state.training
    state.training = bool(flag)
    return prev


class TapeNode:
    """One recorded op, constant or variable.

    ``inputs`` are ``(TapeNode, index)`` pairs; ``in_arrays`` / ``out_arrays`` are the NDArrays
    the gradient rule receives (kept until the graph is freed).  ``sym``, the node's graph
    node, is built on first use (``get_symbol``, error messages): a recorded op takes its
    name's counter value when it is recorded, so names are those of an eager build.
    """

    __slots__ = ("_sym", "op", "attrs", "inputs", "in_arrays", "out_arrays", "cleared",
                 "is_var", "grad_req", "grad", "function", "train", "fresh", "__weakref__")

    def __init__(self, sym, op=None, attrs=None, inputs=(), in_arrays=None, out_arrays=None,
                 is_var=False, grad_req="null", grad=None, function=None, train=False):
        self._sym = sym
        self.op = op
        self.attrs = attrs
        self.inputs = inputs
        self.in_arrays = in_arrays
        self.out_arrays = out_arrays
        self.cleared = False
        self.is_var = is_var
        self.grad_req = grad_req
        self.grad = grad          # NDArray gradient buffer of a variable
        self.function = function  # autograd.Function instance for custom nodes
        self.train = train
        self.fresh = False        # a backward wrote ``grad`` since the last optimizer step

    @property
    def sym(self):
        s = self._sym
        if type(s) is tuple:        # (counter value, node class, attrs string, extra attributes)
            k, node_cls, attrs_str, extra = s
            if node_cls is None:
                s = Node(None, "null%d" % k)
            else:
                s = node_cls(self.op, "node_%d" % k, attrs_str,
                             tuple([(e[0].sym, e[1], 0) for e in self.inputs]))
                if extra:
                    for k, v in extra.items():
                        setattr(s, k, v)
            self._sym = s
        return s

    def __repr__(self):
        return "<TapeNode %s%s>" % (self.sym.name, " cleared" if self.cleared else "")


def entry_of(arr):
    """The live autograd entry ``(TapeNode, index)`` of an NDArray, or None."""
    e = arr._entry
    if e is None or e[0].cleared:
        return None
    return e


_new = object.__new__


def new_variable(grad_req, grad):
    k = _next_var()
    return TapeNode(Node(None, "var%d" % k), is_var=True, grad_req=grad_req, grad=grad)


def new_constant():
    n = _new(TapeNode)
    n._sym = (next(_var_counter), None, None, None)       # named "null<k>" when built
    n.op = n.attrs = n.in_arrays = n.out_arrays = n.grad = n.function = None
    n.inputs = ()
    n.cleared = n.train = n.fresh = False
    n.is_var = True
    n.grad_req = "null"
    return n


def new_op_node(op, attrs_str, parsed, in_entries, in_arrays, out_arrays, function=None,
                train=False, node_cls=Node, extra=None):
    n = _new(TapeNode)
    n._sym = (next(_node_counter), node_cls, attrs_str, extra)     # named "node_<k>"
    n.op = op
    n.attrs = parsed
    n.inputs = tuple(in_entries)
    n.in_arrays = in_arrays
    n.out_arrays = out_arrays
    n.cleared = n.is_var = n.fresh = False
    n.grad_req = "null"
    n.grad = None
    n.function = function
    n.train = train
    return n


def record(op, attrs_str, parsed, inputs, outputs, function=None, node_cls=Node, extra=None):
    """Record an op application (see the tape-model note).  Outputs get entries; the graph
    node is a ``node_cls`` (a Node subclass may carry more, e.g. a jitted call's trace:
    ``extra`` holds attributes to set on it when it is built)."""
    in_entries = []
    for x in inputs:
        e = x._entry
        if e is None or e[0].cleared:
            e = (new_constant(), 0)
            x._entry = e
        in_entries.append(e)
    tn = new_op_node(op, attrs_str, parsed, in_entries, list(inputs), list(outputs), function,
                     state.training, node_cls, extra)
    for i, o in enumerate(outputs):
        o._entry = (tn, i)
    return tn


def record_entries(op, attrs_str, parsed, inputs, entries, outputs, function, node_cls,
                   extra):
    """:func:`record` for a caller that has read the inputs' live entries already
    (``entries``: per input its entry, None where it has none or a cleared one; the list
    is filled in)."""
    if None in entries:
        k = -1
        for e in entries:
            k += 1
            if e is None:
                e = entries[k] = (new_constant(), 0)
                inputs[k]._entry = e
    tn = new_op_node(op, attrs_str, parsed, entries, list(inputs), list(outputs), function,
                     state.training, node_cls, extra)
    i = 0
    for o in outputs:
        o._entry = (tn, i)
        i += 1
    return tn


def flush_pending():
    """Compute every deferred output of this thread that is still referenced (agjit.gluon
    .block note *composition*): reading ``_data`` of one forces it (a forced one is a plain
    NDArray); one that nothing else holds any more can never be read and is dropped."""
    pl = state.pending
    while pl:
        arr = pl.pop()
        if _getrefcount(arr) > 2:       # (this frame's reference and getrefcount's)
            arr._data


def needs_record(inputs):
    if not state.recording:
        return False
    for x in inputs:
        e = x._entry
        if e is not None and not e[0].cleared:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# the JIT on the tape (note *compiled-calls*)
# ---------------------------------------------------------------------------------------------
class TapeObserver(abc.ABC):
    """Sees every op run while installed as ``state.tracer`` (:func:`set_tracer`)."""

    @abc.abstractmethod
    def on_op(self, op, given, inputs, results):
        """``op`` (an OpDef) ran with attrs ``given`` on NDArrays ``inputs``, giving ``results``."""

    @abc.abstractmethod
    def frozen(self, arr, what):
        """``arr`` was converted to a Python value by ``what`` (e.g. ``asnumpy``)."""


def set_tracer(observer):
    """Install ``observer`` (a :class:`TapeObserver`, or None) for this thread; returns the
    previous one."""
    if observer is not None and not isinstance(observer, TapeObserver):
        raise TypeError("set_tracer: expected a TapeObserver, got %s" % type(observer).__name__)
    prev = state.tracer
    state.tracer = observer
    return prev


class _Ones:
    """The head gradient of ones (``backward()`` without head gradients)."""
    __slots__ = ()

    def __repr__(self):
        return "ONES"


ONES = _Ones()


class CompiledNode(abc.ABC):
    """The ``function`` of a tape node that stands for one compiled call (note
    *compiled-calls*).  ``out_grads`` has one entry per output of the call: an array (NDArray
    for ``backward``, NumPy for ``backward_into``), :data:`ONES`, or None for an output no
    gradient flows from."""

    @abc.abstractmethod
    def backward(self, *out_grads, train=None):
        """Gradients per recorded input (fresh NDArrays; None where none is needed) in
        backward mode ``train`` (default: the thread's training flag)."""

    @abc.abstractmethod
    def backward_into(self, out_grads, sinks, consume=False):
        """Write ('write') or add ('add') the gradients straight into the variables'
        gradient buffers: ``sinks`` holds (gradient NDArray, grad_req) or None per recorded
        input.  ``consume``: the graph is freed afterwards (no retain_graph)."""

    def inputs_of(self, k):
        """Indices of the inputs output ``k`` depends on, or None: all of them (as an eager
        op).  Autograd's targets are the variables the heads reach through these."""
        return None


class CompiledCall(Node):
    """The graph node of a :class:`CompiledNode`'s tape node."""
    __slots__ = ()

    def expand(self, inputs):
        """The entries of this call's outputs in a copy of the graph it ran, whose inputs
        are ``inputs`` (entries ``(Node, index)``, one per input of this node)."""
        raise NotImplementedError


def inline_compiled_calls(sym):
    """``sym`` with every :class:`CompiledCall` reachable from it replaced by the graph it
    ran (``sym`` itself when there is none)."""
    from symbol.symbol import Symbol
    order = topo_order(sym._outputs)
    if not any(isinstance(n, CompiledCall) for n in order):
        return sym
    new = {}

    def entry(src, i):
        m = new.get(src)
        return (src, i) if m is None else m[i]

    for n in order:
        if n.op is None:
            continue
        ins = [entry(s, i) for (s, i, _v) in n.inputs]
        if isinstance(n, CompiledCall):
            new[n] = n.expand(ins)
        elif any(e != (s, i) for e, (s, i, _v) in zip(ins, n.inputs)):
            nn = Node(n.op, n.name, n.attrs, [e + (v,) for e, (_s, _i, v) in zip(ins, n.inputs)])
            new[n] = [(nn, i) for i in range(n.num_outputs())]
    out = Symbol([entry(n, i) for n, i in sym._outputs])
    verify(out._outputs)
    return out
