"""Helpers shared by the neural-network op families (symbol/ops/nn_*.py): sample
generators, shape merging, MXNet's data-led type rule, and two internal ops their gradients
use (``_nn_reshape_like``, ``_nn_channel_view``).
"""
from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, merge_shape, norm_axis


_BOOL_F = Attr("bool", False)


def _rand(rng, shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape)


def _known(s):
    return s is not None and all(d > 0 for d in s)


def _prod(dims):
    p = 1
    for d in dims:
        p *= int(d)
    return p


def _merge(op, what, a, b):
    return merge_shape(op, what, a, b)


def _data_led_type(op, names):
    """MXNet's type rule of Convolution, SoftmaxOutput and the like: every input takes the
    data's dtype (checked where given), or the output's while the data's is unknown;
    nothing is inferred from the other inputs alone."""
    def infer(attrs, ins, outs=None):
        from ..registry import check_uniform
        t = ins[0] if ins[0] is not None else (outs or [None])[0]
        if t is None:
            return ins, [None]
        check_uniform(op, names, ins, expected=t)
        return [t] * len(ins), [t]
    return infer


def _shape_of(x):
    """The shape of an eager gradient operand, or None for a symbolic one."""
    s = getattr(x, "shape", None)
    return tuple(s) if isinstance(s, tuple) else None


def _like(F, y, x):
    """``y`` reshaped to ``x``'s shape; skipped when eager shapes already agree."""
    sy, sx = _shape_of(y), _shape_of(x)
    if sy is not None and sy == sx:
        return y
    return F._nn_reshape_like(y, x)

# ---------------------------------------------------------------------------------------
# internal shape helpers used by gradients
# ---------------------------------------------------------------------------------------
def _rl_infer(attrs, ins):
    d, l = ins
    if _known(d) and _known(l) and _prod(d) != _prod(l):
        raise MXNetError("_nn_reshape_like: cannot reshape %s (size %d) to %s (size %d)"
                         % (fmt(d), _prod(d), fmt(l), _prod(l)))
    return ins, [l]


register("_nn_reshape_like", inputs=("data", "like"), infer_shape=_rl_infer,
         infer_type=lambda attrs, ins: (ins, [ins[0]]),
         forward=lambda attrs, ins, ctx: [ins[0].reshape(ins[1].shape).copy()],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._nn_reshape_like(og[0], ins[0]), None],
         lowering="view", doc="Reshape ``data`` to the shape of ``like`` (sizes must agree).",
         samples=lambda rng: [Sample([_rand(rng, (2, 6)), _rand(rng, (3, 2, 2))]),
                              Sample([_rand(rng, (4,)), _rand(rng, (4, 1))])])


def _cv_shape(op, attrs, data, like):
    nd = len(like)
    ax = norm_axis(op, attrs["axis"], nd)
    if len(data) != 1:
        raise MXNetError("%s: expected a 1-D per-channel vector, got shape %s" % (op, fmt(data)))
    out = [1] * nd
    out[ax] = data[0]
    if like[ax] and data[0] and like[ax] != data[0]:
        raise MXNetError("%s: vector of length %d does not match axis %d of %s"
                         % (op, data[0], ax, fmt(like)))
    return tuple(out)


def _cv_infer(attrs, ins):
    d, l = ins
    if d is None or l is None:
        return ins, [None]
    return ins, [_cv_shape("_nn_channel_view", attrs, d, l)]


register("_nn_channel_view", inputs=("data", "like"), attrs={"axis": Attr("int", 1)},
         infer_shape=_cv_infer, infer_type=lambda attrs, ins: (ins, [ins[0]]),
         forward=lambda attrs, ins, ctx: [ins[0].reshape(
             _cv_shape("_nn_channel_view", attrs, ins[0].shape, ins[1].shape)).copy()],
         gradient=lambda F, attrs, ins, outs, og, ctx: [F._nn_reshape_like(og[0], ins[0]), None],
         lowering="view",
         doc="View a per-channel vector (C,) as (1,..,C,..,1) broadcastable against ``like``.",
         samples=lambda rng: [Sample([_rand(rng, (3,)), _rand(rng, (2, 3, 2))], {"axis": 1}),
                              Sample([_rand(rng, (2,)), _rand(rng, (3, 2))], {"axis": -1})])
