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
"""
import itertools
import threading

from symbol.graph import Node

__all__ = ["state", "TapeNode", "is_recording", "is_training", "set_recording", "set_training",
           "new_variable", "new_constant", "entry_of"]


class _State(threading.local):
    def __init__(self):
        self.recording = False
        self.training = False
        self.tracer = None      # agjit.compiler.trace.Tracer while tracing a jitted function


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
    the gradient rule receives (kept until the graph is freed).
    """

    __slots__ = ("sym", "op", "attrs", "inputs", "in_arrays", "out_arrays", "cleared",
                 "is_var", "grad_req", "grad", "function", "train", "fresh", "__weakref__")

    def __init__(self, sym, op=None, attrs=None, inputs=(), in_arrays=None, out_arrays=None,
                 is_var=False, grad_req="null", grad=None, function=None, train=False):
        self.sym = sym
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

    def __repr__(self):
        return "<TapeNode %s%s>" % (self.sym.name, " cleared" if self.cleared else "")


def entry_of(arr):
    """The live autograd entry ``(TapeNode, index)`` of an NDArray, or None."""
    e = arr._entry
    if e is None or e[0].cleared:
        return None
    return e


def new_variable(grad_req, grad):
    k = _next_var()
    return TapeNode(Node(None, "var%d" % k), is_var=True, grad_req=grad_req, grad=grad)


def new_constant():
    k = _next_var()
    return TapeNode(Node(None, "null%d" % k), is_var=True, grad_req="null")


def new_op_node(op, attrs_str, parsed, in_entries, in_arrays, out_arrays, function=None,
                train=False, node_cls=Node):
    sym = node_cls(op, "node_%d" % next(_node_counter), attrs_str,
               tuple([(e[0].sym, e[1], 0) for e in in_entries]))
    return TapeNode(sym, op, parsed, tuple(in_entries), in_arrays, out_arrays, False, "null",
                    None, function, train)


def record(op, attrs_str, parsed, inputs, outputs, function=None, node_cls=Node):
    """Record an op application (see the tape-model note).  Outputs get entries; the graph
    node is a ``node_cls`` (a Node subclass may carry more, e.g. a jitted call's trace)."""
    in_entries = []
    for x in inputs:
        e = x._entry
        if e is None or e[0].cleared:
            e = (new_constant(), 0)
            x._entry = e
        in_entries.append(e)
    tn = new_op_node(op, attrs_str, parsed, in_entries, list(inputs), list(outputs), function,
                     state.training, node_cls)
    for i, o in enumerate(outputs):
        o._entry = (tn, i)
    return tn


def needs_record(inputs):
    if not state.recording:
        return False
    for x in inputs:
        e = x._entry
        if e is not None and not e[0].cleared:
            return True
    return False
