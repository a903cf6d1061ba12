"""``mx.nd.contrib``: every registered ``_contrib_*`` operator under its short name
(``mx.nd.contrib.box_nms`` is ``_contrib_box_nms``)."""
from symbol.contrib import _NAMES

__all__ = list(_NAMES)


def _populate():
    from .. import ndarray as _nd
    g = globals()
    for n in _NAMES:
        g[n] = getattr(_nd, "_contrib_" + n)


_populate()


# ---------------------------------------------------------------------------------------
# control flow (MXNet 1.9.1's imperative mx.nd.contrib.foreach / while_loop / cond): Python
# loops over recorded eager ops, so autograd differentiates through them
# ---------------------------------------------------------------------------------------
def _as_list(x):
    """(list, was_single)"""
    if isinstance(x, (list, tuple)):
        return list(x), False
    return [x], True


def _check_arrays(fname, what, xs):
    from .ndarray import NDArray
    for x in xs:
        if not isinstance(x, NDArray):
            raise ValueError("%s: %s must be NDArrays (or a list of them), got %s"
                             % (fname, what, type(x).__name__))


def _stack(fname, steps):
    from .. import ndarray as _nd
    if not steps:
        return []
    n = len(steps[0])
    if any(len(s) != n for s in steps):
        raise ValueError("%s: the body must return the same number of outputs at every step"
                         % fname)
    return [_nd.stack(*[s[i] for s in steps], axis=0) for i in range(n)]


def foreach(body, data, init_states):
    """Run ``body(data[i], states) -> (outputs, new_states)`` for every slice along axis 0 of
    ``data`` (an NDArray or a list of them, sliced together) and return ``(outputs stacked
    along axis 0, final states)``.  Single arrays in give single arrays out, lists give
    lists, as in MXNet."""
    if not callable(body):
        raise ValueError("foreach: body must be callable, got %s" % type(body).__name__)
    datas, single_data = _as_list(data)
    states, single_state = _as_list(init_states)
    _check_arrays("foreach", "data", datas)
    _check_arrays("foreach", "init_states", states)
    if not datas:
        raise ValueError("foreach: data must not be empty")
    n = datas[0].shape[0] if datas[0].ndim else 0
    if any((d.shape[0] if d.ndim else 0) != n for d in datas):
        raise ValueError("foreach: all data arrays must have the same length along axis 0, got %s"
                         % [d.shape for d in datas])
    if n == 0:
        raise ValueError("foreach: data has no elements along axis 0 (shape %s)" % (datas[0].shape,))
    cur = states[0] if single_state else states
    steps = []
    single_out = True
    for i in range(n):
        eles = datas[0][i] if single_data else [d[i] for d in datas]
        outs, cur = body(eles, cur)
        outs, single_out = _as_list(outs)
        _check_arrays("foreach", "the body's outputs", outs)
        steps.append(outs)
    stacked = _stack("foreach", steps)
    return (stacked[0] if single_out and len(stacked) == 1 else stacked), cur


def while_loop(cond, func, loop_vars, max_iterations=None):
    """While ``cond(*loop_vars)`` holds and fewer than ``max_iterations`` steps ran:
    ``step_output, loop_vars = func(*loop_vars)``.  Returns ``(outputs, loop_vars)``: each
    step output stacked along axis 0 and padded with zeros to ``max_iterations`` rows (MXNet
    pads with uninitialised memory), and the final loop variables."""
    from .. import ndarray as _nd
    if max_iterations is None:
        raise ValueError("max_iterations should be specified")
    max_iterations = int(max_iterations)
    if max_iterations < 0:
        raise ValueError("while_loop: max_iterations must be >= 0, got %d" % max_iterations)
    if not callable(cond) or not callable(func):
        raise ValueError("while_loop: cond and func must be callable")
    vars_, single_var = _as_list(loop_vars)
    _check_arrays("while_loop", "loop_vars", vars_)

    def holds():
        c = cond(*vars_)
        try:
            return bool(c.asscalar()) if hasattr(c, "asscalar") else bool(c)
        except ValueError:
            raise ValueError("while_loop: cond must return a scalar (one-element NDArray or "
                             "bool), got shape %s" % (getattr(c, "shape", None),)) from None

    steps = []
    single_out = False
    while len(steps) < max_iterations and holds():
        out, new_vars = func(*vars_)
        outs, single_out = _as_list(out if out is not None else [])
        _check_arrays("while_loop", "the step outputs", outs)
        new_list, _s = _as_list(new_vars)
        if len(new_list) != len(vars_):
            raise ValueError("while_loop: func returned %d loop variables, expected %d"
                             % (len(new_list), len(vars_)))
        vars_ = new_list
        steps.append(outs)
    stacked = _stack("while_loop", steps)
    pad = max_iterations - len(steps)
    if pad:
        stacked = [_nd.concat(s, _nd.zeros((pad,) + s.shape[1:], dtype=s.dtype), dim=0)
                   for s in stacked]
    outputs = stacked[0] if single_out and len(stacked) == 1 else stacked
    return outputs, (vars_[0] if single_var else vars_)


def cond(pred, then_func, else_func):
    """``then_func()`` if the one-element ``pred`` is non-zero, else ``else_func()``."""
    if not callable(then_func) or not callable(else_func):
        raise ValueError("cond: then_func and else_func must be callable")
    if hasattr(pred, "asscalar"):
        try:
            p = bool(pred.asscalar())
        except ValueError:
            raise ValueError("The current array is not a scalar") from None
    else:
        p = bool(pred)
    return then_func() if p else else_func()


__all__ += ["foreach", "while_loop", "cond"]


# ---------------------------------------------------------------------------------------
# data-dependent shapes and MXNet's Python-level helpers
# ---------------------------------------------------------------------------------------
def boolean_mask(data, index, axis=0, out=None, name=None):
    """The slices of ``data`` along ``axis`` where ``index`` is non-zero (MXNet's
    ``_contrib_boolean_mask``).  The output length depends on the values, so it runs as a
    recorded ``take`` of the selected positions: gradients reach the kept slices."""
    import numpy as np
    from .ndarray import NDArray, invoke
    from .. import ndarray as _nd
    from symbol.base import MXNetError
    if not isinstance(data, NDArray) or not isinstance(index, NDArray):
        raise MXNetError("boolean_mask: data and index must be NDArrays")
    ax = axis % data.ndim if -data.ndim <= axis < data.ndim else None
    if ax is None or index.ndim != 1 or index.shape[0] != data.shape[ax]:
        raise MXNetError("boolean_mask: index must be 1-D with data.shape[%d] elements, got "
                         "index shape %s for data shape %s" % (axis, index.shape, data.shape))
    pos = np.flatnonzero(index.asnumpy()).astype(np.float32)
    res = invoke("take", [data, _nd.array(pos)], {"axis": ax})
    if out is not None:
        out[:] = res
        return out
    return res


def isinf(data):
    """1 where ``data`` is +-inf, else 0 (in data's dtype)."""
    return data.abs() == float("inf")


def isfinite(data):
    """1 where ``data`` is neither nan nor +-inf, else 0 (in data's dtype)."""
    return (data.abs() != float("inf")) * (data == data)


def isnan(data):
    """1 where ``data`` is nan, else 0 (in data's dtype)."""
    return data != data


__all__ += ["boolean_mask", "isinf", "isfinite", "isnan"]
