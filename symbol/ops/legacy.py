"""Operators kept from MXNet 0.x / 1.x tutorials: fill_element_0index, batch_take and
SoftmaxActivation (FINDINGS.md "Legacy names and ops").

* fill_element_0index(lhs, mhs, rhs): ``lhs`` with ``lhs[i, rhs[i]] = mhs[i]``; MXNet gives it
  no gradient, so a backward through it raises MXNetError.
* batch_take(a, indices): ``a[i, indices[i]]`` for int32 indices (float indices are refused,
  as MXNet does), clipped into range.
* SoftmaxActivation(data, mode): ``instance`` normalises each sample over all its elements
  (axis 1 of a 2-D input), ``channel`` over axis 1 at every position.
"""
import numpy as np

from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, unary_infer
from .nn_softmax import softmax_activation_lowering
from ._lowering import KernelCall


def _rand(rng, shape):
    return rng.uniform(-2, 2, size=shape)


def _rows_index(op, data_shape, idx_shape):
    if len(data_shape) != 2 or tuple(idx_shape) != (data_shape[0],):
        raise MXNetError("%s: needs 2-D data and one index per row, got data %s and index %s"
                         % (op, fmt(data_shape), fmt(idx_shape)))


def _fill_infer(attrs, ins):
    l, m, r = ins
    if l is not None:
        n = (l[0],)
        for what, s in (("mhs", m), ("rhs", r)):
            if s is not None and tuple(s) != n:
                raise MXNetError("fill_element_0index: %s shape %s must be %s for lhs %s"
                                 % (what, fmt(s), fmt(n), fmt(l)))
        return [l, n, n], [l]
    return ins, [None]


def _fill_fwd(attrs, ins, ctx):
    lhs, mhs, rhs = ins
    _rows_index("fill_element_0index", lhs.shape, rhs.shape)
    out = lhs.copy()
    cols = np.clip(rhs.astype(np.int64), 0, lhs.shape[1] - 1)
    out[np.arange(lhs.shape[0]), cols] = mhs
    return [out]


register("fill_element_0index", inputs=("lhs", "mhs", "rhs"), infer_shape=_fill_infer,
         forward=_fill_fwd, gradient=None, differentiable=False, lowerable=False,
         doc="lhs with lhs[i, rhs[i]] = mhs[i] (not differentiable, as in MXNet).",
         samples=lambda rng: [Sample([_rand(rng, (3, 4)), np.array([9., 8, 7]),
                                      np.array([1., 0, 3])])])


def _bt_infer(attrs, ins):
    a, i = ins
    if a is None:
        return ins, [None]
    if i is not None:
        _rows_index("batch_take", a, i)
    return [a, (a[0],)], [(a[0],)]


def _bt_type(attrs, ins):
    a, i = ins
    if i is not None and np.dtype(i) != np.int32:
        raise MXNetError("batch_take: indices must be int32, got %s" % np.dtype(i).name)
    return [a, "int32"], [a]


def _bt_fwd(attrs, ins, ctx):
    a, idx = ins
    if idx.dtype != np.int32:
        raise MXNetError("batch_take: indices must be int32, got %s" % idx.dtype.name)
    _rows_index("batch_take", a.shape, idx.shape)
    cols = np.clip(idx.astype(np.int64), 0, a.shape[1] - 1)
    return [a[np.arange(a.shape[0]), cols]]


def _lower_batch_take(ctx):
    if ctx.in_ndim[0] != 2:
        return None
    a, idx = ctx.ins
    out = ctx.outs[0]
    f, i, k, m = ctx.tmp("f"), ctx.tmp("i"), ctx.tmp("k"), ctx.tmp("m")
    return ["%s = %s.reshape(%s.size)" % (f, idx, idx),
            "%s = %s.shape[1]" % (m, a),
            "for %s in range(%s.shape[0]):" % (i, a),
            "    %s = int(%s[%s])" % (k, f, i),
            "    %s = 0 if %s < 0 else (%s - 1 if %s >= %s else %s)" % (k, k, m, k, m, k),
            "    %s[%s] = %s[%s, %s]" % (out, i, a, i, k)]


register("batch_take", inputs=("a", "indices"), infer_shape=_bt_infer, infer_type=_bt_type,
         forward=_bt_fwd, gradient=lambda F, attrs, ins, outs, og, ctx: [
             F._pick_scatter(og[0], F.cast(ins[1], dtype="float32"), ins[0], axis=1), None],
         lowering=KernelCall(_lower_batch_take, any_dtype=True), grad_check=False,
         doc="a[i, indices[i]] for int32 indices (clipped into range).",
         samples=lambda rng: [Sample([_rand(rng, (3, 4)), np.array([1, 0, 3], dtype=np.int32)])])


def _sa_axes(attrs, ndim):
    if attrs["mode"] == "channel":
        if ndim < 2:
            raise MXNetError("SoftmaxActivation: mode='channel' needs at least 2-D input")
        return (1,)
    return tuple(range(1, ndim)) if ndim > 1 else (0,)


def _sa_fwd(attrs, ins, ctx):
    x = ins[0]
    ax = _sa_axes(attrs, x.ndim)
    z = x - np.max(x, axis=ax, keepdims=True)
    e = np.exp(z)
    return [(e / np.sum(e, axis=ax, keepdims=True)).astype(x.dtype)]


def _sa_grad(F, attrs, ins, outs, og, ctx):
    y = outs[0]
    gy = F.elemwise_mul(og[0], y)
    if attrs["mode"] == "channel":
        s = F.sum(gy, axis=1, keepdims=True)
    else:
        s = F.sum(gy, axis=0, exclude=True, keepdims=True)
    return [F.elemwise_mul(y, F.broadcast_sub(og[0], s))]


register("SoftmaxActivation", inputs=("data",),
         attrs={"mode": Attr("str", "instance", choices=("instance", "channel"))},
         infer_shape=unary_infer("SoftmaxActivation"), forward=_sa_fwd, gradient=_sa_grad,
         lowering=softmax_activation_lowering,
         doc="Softmax over each instance (mode='instance') or over axis 1 (mode='channel').",
         samples=lambda rng: [Sample([_rand(rng, (3, 4))]),
                              Sample([_rand(rng, (2, 3, 2))], {"mode": "channel"})])
