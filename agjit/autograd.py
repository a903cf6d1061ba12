"""``mx.autograd``: recording scopes, backward, grad, get_symbol and custom Functions, with
MXNet 1.9.1's semantics (FINDINGS §1-4; see agjit.tape note *tape-model*).

Gradients are computed by walking the tape in reverse and calling each OpDef's gradient rule
with ``F = mx.nd``; with ``create_graph=True`` recording stays on during that walk, so the
gradient computation is itself recorded and can be differentiated again.
"""
import numpy as np

from symbol.base import MXNetError
from symbol.graph import topo_order
from symbol.registry import get_op
from symbol.ops._common import quiet_call
from . import tape
from .tape import state, entry_of, is_recording, is_training, set_recording, set_training
from .ndarray.ndarray import NDArray, _wrap, OpCtx
from . import ndarray as _nd

__all__ = ["record", "pause", "train_mode", "predict_mode", "is_recording", "is_training",
           "set_recording", "set_training", "mark_variables", "backward", "grad",
           "get_symbol", "Function"]


class _RecordingStateScope:
    """Sets (recording, training) on entry; on exit restores a flag only if the value it set
    differs from the value it found (MXNet's rule, seed note 000)."""

    __slots__ = ("_enter_is_record", "_enter_train_mode", "_prev_is_record",
                 "_prev_train_mode")

    def __init__(self, is_record, train_mode):
        self._enter_is_record = None if is_record is None else bool(is_record)
        self._enter_train_mode = None if train_mode is None else bool(train_mode)
        self._prev_is_record = None
        self._prev_train_mode = None

    def __enter__(self):
        st = state
        if self._enter_is_record is not None:
            self._prev_is_record = st.recording
            st.recording = self._enter_is_record
        if self._enter_train_mode is not None:
            self._prev_train_mode = st.training
            st.training = self._enter_train_mode
        return self

    def __exit__(self, ptype, value, trace):
        st = state
        if st.pending:      # deferred outputs run in the mode of their call (gluon.block)
            tape.flush_pending()
        if self._enter_is_record is not None and self._prev_is_record != self._enter_is_record:
            st.recording = self._prev_is_record
        if self._enter_train_mode is not None and self._prev_train_mode != self._enter_train_mode:
            st.training = self._prev_train_mode
        return False


_new_scope = object.__new__


def record(train_mode=True):
    """Scope that records operations for gradient computation (training mode by default)."""
    if train_mode is not True:
        return _RecordingStateScope(True, train_mode)
    s = _new_scope(_RecordingStateScope)      # (the common call, without __init__)
    s._enter_is_record = s._enter_train_mode = True
    s._prev_is_record = s._prev_train_mode = None
    return s


def pause(train_mode=False):
    """Scope that stops recording (and, by default, switches to predict mode)."""
    return _RecordingStateScope(False, train_mode)


def train_mode():
    """Scope in training mode; recording is left as it is."""
    return _RecordingStateScope(None, True)


def predict_mode():
    """Scope in predict mode; recording is left as it is."""
    return _RecordingStateScope(None, False)


_REQS = ("null", "write", "add")


def mark_variables(variables, gradients, grad_reqs="write"):
    """Mark arrays as variables ``var<k>`` whose gradients land in ``gradients``."""
    if isinstance(variables, NDArray):
        if not isinstance(gradients, NDArray):
            raise MXNetError("mark_variables: with a single variable, gradients must be one NDArray")
        variables, gradients = [variables], [gradients]
    variables, gradients = list(variables), list(gradients)
    if isinstance(grad_reqs, str):
        grad_reqs = [grad_reqs] * len(variables)
    grad_reqs = list(grad_reqs)
    if not (len(variables) == len(gradients) == len(grad_reqs)):
        raise MXNetError("mark_variables: got %d variables, %d gradients and %d grad_reqs"
                         % (len(variables), len(gradients), len(grad_reqs)))
    for v, g, r in zip(variables, gradients, grad_reqs):
        if not isinstance(v, NDArray) or not isinstance(g, NDArray):
            raise MXNetError("mark_variables: variables and gradients must be NDArrays")
        if r not in _REQS:
            raise MXNetError("mark_variables: grad_req must be one of %s, got %r" % (_REQS, r))
        if g.shape != v.shape:
            raise MXNetError("mark_variables: gradient buffer shape %s differs from variable shape %s"
                             % (g.shape, v.shape))
        v._entry = (tape.new_variable(r, g), 0)


class _GradCtx(OpCtx):
    """A gradient rule's ``ctx``: the modes (OpCtx) plus ``needs``, one bool per input of the
    node, False where the input leads to no variable being differentiated (the rule may
    return None for it: ``symbol.ops._common.grad_needed``)."""
    __slots__ = ("needs",)

    def __init__(self, is_train, forward_train, needs):
        OpCtx.__init__(self, is_train, forward_train)
        self.needs = needs


def _parse_heads(heads, head_grads):
    if isinstance(heads, NDArray):
        heads = [heads]
    heads = list(heads)
    if head_grads is None:
        head_grads = [None] * len(heads)
    elif isinstance(head_grads, NDArray):
        head_grads = [head_grads]
    head_grads = list(head_grads)
    assert len(heads) == len(head_grads), \
        "heads and head_grads must have the same length (%d vs %d)" % (len(heads), len(head_grads))
    for h in heads:
        if not isinstance(h, NDArray):
            raise MXNetError("backward: heads must be NDArrays, got %s" % type(h).__name__)
    return heads, head_grads


def _collect(head_nodes):
    """Tape nodes reachable from the heads, in topological (inputs-first) order: the graph
    IR's DFS post-order, which only reads ``node.inputs[k][0]`` and so walks tape nodes too."""
    return topo_order(head_nodes)


def _accumulate(grads, key, g):
    old = grads.get(key)
    if old is None:
        grads[key] = g
    elif not tape.state.recording and old.shape == g.shape and old.dtype == g.dtype:
        # nothing records the sum (no create_graph): elemwise_add's kernel without dispatch
        s = quiet_call(np.add, old._data, g._data)
        grads[key] = _wrap(s if type(s) is np.ndarray else np.asarray(s))   # 0-d: a scalar
    else:
        grads[key] = _nd.elemwise_add(old, g) if old.shape == g.shape else old + g


def _run_backward(heads, head_grads, variables, retain_graph, create_graph, train_mode):
    heads, head_grads = _parse_heads(heads, head_grads)
    entries = []
    for h in heads:
        e = entry_of(h)
        if e is None:
            raise MXNetError("Cannot differentiate node because it is not in a computational "
                             "graph. You need to set is_recording to true or use autograd.record() "
                             "to save computational graphs for backward. If you want to "
                             "differentiate the same graph twice, you need to pass "
                             "retain_graph=True to backward.")
        entries.append(e)
    order = _prune_compiled(_collect([e[0] for e in entries]), entries)
    if variables is None:
        targets = [n for n in order if n.is_var and n.grad_req != "null"]
        if not targets:
            raise MXNetError("There are no inputs in computation graph that require gradients.")
    else:
        in_graph = set(order)
        targets = []
        for v in variables:
            e = entry_of(v)
            if e is None or not e[0].is_var or e[0].grad_req == "null":
                raise MXNetError("Cannot differentiate with respect to an array that is not a "
                                 "variable marked with attach_grad()/mark_variables() "
                                 "(grad_req must not be 'null')")
            if e[0] not in in_graph:
                raise MXNetError("Cannot differentiate with respect to variable %s because it is "
                                 "unreachable from the outputs" % e[0].sym.name)
            targets.append(e[0])
    # which nodes lead to a target (prune everything else)
    # tables keyed by the tape nodes themselves (identity-hashed; ``order`` holds them all)
    target_set = set(targets)
    useful = set()
    for n in order:
        if n in target_set or any(i[0] in useful for i in n.inputs):
            useful.add(n)
    nd = _nd

    prev_rec = set_recording(create_graph)
    prev_train = set_training(train_mode)
    try:
        grads = {}
        for e, hg in zip(entries, head_grads):
            node, idx = e
            if hg is None:
                arr = node.out_arrays[idx] if node.out_arrays is not None else None
                like = arr if arr is not None else heads[entries.index(e)]
                hg = _wrap(np.ones(like.shape, dtype=like._data.dtype))
            elif not isinstance(hg, NDArray):
                raise MXNetError("backward: head_grads must be NDArrays or None")
            elif hg.shape != heads[entries.index(e)].shape:
                raise MXNetError("backward: head gradient shape %s does not match head shape %s"
                                 % (hg.shape, heads[entries.index(e)].shape))
            _accumulate(grads, (node, idx), hg)
        train_mode = bool(train_mode)
        for node in reversed(order):
            if node.is_var or node not in useful:
                continue
            nout = len(node.out_arrays)
            if nout == 1:
                g0 = grads.pop((node, 0), None)
                if g0 is None:
                    continue
                og = [g0]
            else:
                og = [grads.pop((node, i), None) for i in range(nout)]
                if all(g is None for g in og):
                    continue
            if node.function is not None and isinstance(node.function, tape.CompiledNode):
                # a compiled call: absent head gradients stay None, its backward skips
                # them (agjit.tape note *compiled-calls*)
                with pause_all():
                    in_grads = node.function.backward(*og)
                for (src, idx), g in zip(node.inputs, in_grads):
                    if g is not None and src in useful:
                        _accumulate(grads, (src, idx), g)
                continue
            if nout != 1:
                og = [g if g is not None else _wrap(np.zeros_like(node.out_arrays[i]._data))
                      for i, g in enumerate(og)]
            if node.function is not None:
                in_grads = _function_backward(node, og)
            else:
                op = node.op
                if not op.differentiable:
                    raise MXNetError("Operator %s is non-differentiable" % op.name)
                # the rule sees the backward's mode and the mode its forward ran in
                ctx = _GradCtx(train_mode, bool(node.train),
                               tuple([src in useful for src, _ in node.inputs]))
                in_grads = op.gradient(nd, node.attrs, node.in_arrays, node.out_arrays, og, ctx)
                if op.backward_hook is not None and train_mode:
                    with pause_all():
                        op.backward_hook(node.attrs, [a._data for a in node.in_arrays],
                                         [a._data for a in node.out_arrays], node.train)
            for (src, idx), g in zip(node.inputs, in_grads):
                if g is None or src not in useful:
                    continue
                _accumulate(grads, (src, idx), g)
        results = []
        for t in targets:
            g = grads.get((t, 0))
            if g is None:
                g = _wrap(np.zeros(t.grad.shape, dtype=t.grad._data.dtype))
            results.append(g)
    finally:
        set_recording(prev_rec)
        set_training(prev_train)
    if not retain_graph:
        for n in order:
            if n.is_var and n.grad_req != "null":
                continue
            n.cleared = True
            n.in_arrays = None
            n.out_arrays = None
            n.function = None
    return targets, results


def _prune_compiled(order, entries):
    """``order`` without the nodes the heads reach only through outputs of compiled calls
    that do not read them (``CompiledNode.inputs_of``: an output of a jitted call may read
    some of its inputs only; an eager op's outputs read all)."""
    if not any(n.function is not None and isinstance(n.function, tape.CompiledNode)
               and n.function.inputs_of(0) is not None for n in order):
        return order
    reached = set()
    seen = set()
    stack = list(entries)
    while stack:
        n, i = stack.pop()
        if (n, i) in seen:
            continue
        seen.add((n, i))
        reached.add(n)
        fn = n.function
        ks = fn.inputs_of(i) if isinstance(fn, tape.CompiledNode) else None
        stack.extend(n.inputs if ks is None else [n.inputs[k] for k in ks])
    return [n for n in order if n in reached]


class pause_all:
    def __enter__(self):
        self._r = set_recording(False)

    def __exit__(self, *a):
        set_recording(self._r)


_COMPILED_TYPES = set()     # the tape.CompiledNode subclasses seen by _single_call_backward


def _single_call_backward(head, head_grad, retain_graph, train_mode):
    """Fast path of :func:`backward` for the common compiled training step: one head whose
    graph is a single jitted call over leaf arrays.  The compiled backward kernel writes the
    gradients straight into the variables' buffers; the tape is then freed exactly as the
    general walk would.  Returns False (nothing done) whenever the general walk is needed,
    including every error case, so errors and semantics stay those of the general path."""
    if type(head) is not NDArray:
        return False
    e = head._entry
    if e is None:
        return False
    node, idx = e
    fn = node.function
    if node.cleared or fn is None:
        return False
    tf = type(fn)
    if tf not in _COMPILED_TYPES:
        if not isinstance(fn, tape.CompiledNode):
            return False
        _COMPILED_TYPES.add(tf)     # (an ABC's isinstance costs a Python-level call)
    outs = node.out_arrays
    if outs is None:
        return False
    inputs = node.inputs
    sinks = []
    any_target = False
    for src, _i in inputs:
        if not src.is_var or src.cleared:
            return False
        if src.grad_req != "null":
            any_target = True
            sinks.append((src.grad, src.grad_req))
        else:
            sinks.append(None)
    reads = fn.inputs_of(idx)
    if reads is not None:       # this output reads some of the call's inputs only
        any_target = False
        for k in reads:
            if sinks[k] is not None:
                any_target = True
                break
    if not any_target:
        return False
    n_in = len(inputs)
    if n_in > 1 and (inputs[0][0] is inputs[1][0] if n_in == 2 else
                     len({s for s, _i in inputs}) != n_in):
        return False            # one variable read twice: the general walk adds the parts
    if head_grad is None:
        g = tape.ONES
    elif type(head_grad) is NDArray and head_grad._data.shape == outs[idx]._data.shape:
        g = head_grad._data
    else:
        return False
    # the other outputs have no head gradient: None (their branch of the backward is skipped)
    if len(outs) == 1:
        og = [g]
    else:
        og = [None] * len(outs)
        og[idx] = g
    st = state
    prev_rec, prev_train = st.recording, st.training
    st.recording = False
    st.training = train_mode is True or bool(train_mode)
    try:
        fn.backward_into(og, sinks, consume=not retain_graph)
    finally:
        st.recording, st.training = prev_rec, prev_train
    if retain_graph:
        for src, _i in inputs:
            if src.grad_req != "null":
                src.fresh = True    # gluon.Trainer's stale-gradient check
        return True
    for src, _i in inputs:
        if src.grad_req != "null":
            src.fresh = True
        else:
            src.cleared = True
            src.in_arrays = src.out_arrays = src.function = None
    node.cleared = True
    node.in_arrays = node.out_arrays = node.function = None
    return True


def backward(heads, head_grads=None, retain_graph=False, train_mode=True):
    """Compute the gradients of ``heads`` w.r.t. every marked variable of their graph and
    write (or add) them into the variables' gradient buffers."""
    h, hg = heads, head_grads
    th = type(h)
    if th is list or th is tuple:
        h = h[0] if len(h) == 1 else None
    if type(hg) is list or type(hg) is tuple:
        hg = hg[0] if len(hg) == 1 else False
    if h is not None and hg is not False and \
            _single_call_backward(h, hg, retain_graph, train_mode):
        return
    targets, results = _run_backward(heads, head_grads, None, retain_graph, False, train_mode)
    for t, g in zip(targets, results):
        buf = t.grad._data
        t.fresh = True          # gluon.Trainer's stale-gradient check
        if t.grad_req == "add":
            buf += g._data.astype(buf.dtype, copy=False)
        else:
            buf[...] = g._data


def grad(heads, variables, head_grads=None, retain_graph=None, create_graph=False,
         train_mode=True):
    """Return the gradients of ``heads`` w.r.t. ``variables`` as a list of new arrays; the
    variables' ``.grad`` buffers are not touched."""
    if retain_graph is None:
        retain_graph = create_graph
    if isinstance(variables, NDArray):
        variables = [variables]
    variables = list(variables)
    assert len(variables) > 0, "variables cannot be empty"
    _, results = _run_backward(heads, head_grads, variables, retain_graph, create_graph,
                               train_mode)
    out = []
    for v, g in zip(variables, results):
        if g._data.dtype != v._data.dtype:
            g = g.astype(v._data.dtype)
        out.append(g)
    return out


def get_symbol(x, backward=False):
    """The recorded computation history of ``x`` as a :class:`symbol.Symbol`.

    With ``backward=True`` (an agjit extension) return instead the *backward graph* of that
    history w.r.t. its marked variables (``attach_grad``/``mark_variables`` with grad_req
    write or add), in graph order: ``symbol.autodiff.gradient(get_symbol(x), vars)``, whose
    arguments are the forward variables it needs plus ``<output>_head_grad`` and whose outputs
    are ``<var>_grad`` (see symbol.autodiff note *backward-graph*).  MXNetError if the
    history has no marked variable.

    >>> x = mx.nd.array([1., 2.]); x.attach_grad()
    >>> with mx.autograd.record():
    ...     y = mx.nd.sin(x)
    >>> mx.autograd.get_symbol(y, backward=True).list_outputs()   # doctest: +SKIP
    ['var0_grad']
    """
    assert isinstance(x, NDArray), "get_symbol: x must be an NDArray"
    e = entry_of(x)
    if e is None:
        raise MXNetError("get_symbol: the NDArray is not part of a computation graph (it was "
                         "not recorded, or its graph was freed by a backward without "
                         "retain_graph=True)")
    from symbol.symbol import Symbol
    sym = Symbol([(e[0].sym, e[1])])
    # compiled calls (mx.jit) become the graphs they ran (tape note *compiled-calls*)
    sym = tape.inline_compiled_calls(sym)
    if not backward:
        return sym
    wrt = [n.sym.name for n in _collect([e[0]]) if n.is_var and n.grad_req != "null"]
    if not wrt:
        raise MXNetError("get_symbol(backward=True): the history of this array has no variable "
                         "marked with attach_grad()/mark_variables() to differentiate w.r.t.")
    from symbol.autodiff import gradient
    return gradient(sym, wrt)


# ---------------------------------------------------------------------------------------
# custom functions
# ---------------------------------------------------------------------------------------
_CUSTOM = get_op("_CustomFunction")


class Function:
    """User-defined differentiable function: subclass and implement ``forward`` and
    ``backward``; each instance may be called once.

    >>> class Scale(Function):
    ...     def forward(self, x):
    ...         return x * 2
    ...     def backward(self, dy):
    ...         return dy * 2
    """

    def __init__(self):
        self._used = False
        self.saved_tensors = ()

    def save_for_backward(self, *args):
        self.saved_tensors = args

    def __call__(self, *inputs):
        assert not self._used, "Each Function instance can only be called once. " \
                               "Please create another instance."
        self._used = True
        prev = set_recording(False)
        try:
            outputs = self.forward(*inputs)
        finally:
            set_recording(prev)
        single = isinstance(outputs, NDArray)
        outs = [outputs] if single else list(outputs)
        if prev:
            nd_inputs = [x for x in inputs if isinstance(x, NDArray)]
            # outputs become fresh arrays so they carry this node's entry only
            fresh = [_wrap(o._data) for o in outs]
            tape.record(_CUSTOM, {}, {}, nd_inputs, fresh, function=self)
            outs = fresh
        return outs[0] if single else tuple(outs)

    def forward(self, *inputs):
        raise NotImplementedError

    def backward(self, *output_grads):
        raise NotImplementedError


def _function_backward(node, og):
    func = node.function
    prev = set_recording(False)
    try:
        res = func.backward(*og)
    finally:
        set_recording(prev)
    if isinstance(res, NDArray):
        res = [res]
    res = list(res)
    if len(res) != len(node.inputs):
        raise MXNetError("%s.backward must return %d gradients (one per forward input), got %d"
                         % (type(func).__name__, len(node.inputs), len(res)))
    for r, x in zip(res, node.in_arrays):
        if r is None:
            continue
        if not isinstance(r, NDArray):
            raise MXNetError("%s.backward must return NDArrays" % type(func).__name__)
        if r.shape != x.shape:
            raise MXNetError("%s.backward returned a gradient of shape %s for an input of shape %s"
                             % (type(func).__name__, r.shape, x.shape))
    return res
