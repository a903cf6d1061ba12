"""Joining and splitting: Concat, SliceChannel, stack.

Gradients that need their input's shape use the helper ops of symbol/ops/shape.py note
*scatter-gradients*.
"""
import numpy as np
from ..base import MXNetError
from ..registry import register, Attr, Sample
from ._common import fmt, same_shape, merge_shape
from ._shape_util import _axis, _first_type, _new_axis, _rand
from ._shape_lower import assign, call, index_key


# ---------------------------------------------------------------------------------------
# lowerings: basic-slicing copies with run-time offsets (symbol/ops/_shape_lower.py)
# ---------------------------------------------------------------------------------------
def _lower_concat(ctx):
    nd = ctx.out_ndim[0]
    if nd == 0:
        return None
    a = _axis("Concat", ctx.attrs["dim"], nd, "dim")
    out, off = ctx.outs[0], ctx.tmp("o")
    lines = ["%s = 0" % off]
    for x in ctx.ins:
        n = "%s.shape[%d]" % (x, a)
        lines.append("%s%s = %s" % (out, index_key(nd, {a: "%s:%s + %s" % (off, off, n)}), x))
        lines.append("%s += %s" % (off, n))
    return lines


def _lower_concat_slice(ctx):
    nd = ctx.out_ndim[0]
    a = _axis("_concat_slice", ctx.attrs["dim"], nd, "dim")
    k = ctx.attrs["index"]
    likes = ctx.ins[1:]
    if not 0 <= k < len(likes):
        return None
    start = " + ".join(["0"] + ["%s.shape[%d]" % (x, a) for x in likes[:k]])
    b = ctx.tmp("b")
    return ["%s = %s" % (b, start),
            assign(ctx.outs[0], ctx.ins[0] + index_key(
                nd, {a: "%s:%s + %s.shape[%d]" % (b, b, likes[k], a)}))]


def _lower_split(ctx):
    nd = ctx.in_ndim[0]
    a = _axis("SliceChannel", ctx.attrs["axis"], nd)
    x = ctx.ins[0]
    if ctx.attrs["squeeze_axis"]:
        return [assign(o, x + index_key(nd, {a: str(k)})) for k, o in enumerate(ctx.outs)]
    n = ctx.tmp("n")
    lines = ["%s = %s.shape[%d] // %d" % (n, x, a, len(ctx.outs))]
    for k, o in enumerate(ctx.outs):
        lines.append(assign(o, x + index_key(nd, {a: "%d * %s:%d * %s" % (k, n, k + 1, n)})))
    return lines


def _lower_stack(ctx):
    nd = ctx.out_ndim[0]
    a = _new_axis("stack", ctx.attrs["axis"], nd - 1)
    return ["%s%s = %s" % (ctx.outs[0], index_key(nd, {a: str(k)}), x)
            for k, x in enumerate(ctx.ins)]


# ---------------------------------------------------------------------------------------
# Concat, SliceChannel, stack
# ---------------------------------------------------------------------------------------
def _concat_shape(op, shapes, dim):
    if any(s is None for s in shapes):
        return None
    nd = len(shapes[0])
    if any(len(s) != nd for s in shapes):
        raise MXNetError("%s: all inputs must have the same number of dimensions, got %s"
                         % (op, ", ".join(fmt(s) for s in shapes)))
    a = _axis(op, dim, nd, "dim")
    out = list(shapes[0])
    out[a] = 0
    for s in shapes:
        for i in range(nd):
            if i == a:
                out[a] += s[i]
            elif s[i] != out[i] and s[i] != 0 and out[i] != 0:
                raise MXNetError("%s: input shapes must agree except on dim=%d, got %s"
                                 % (op, dim, ", ".join(fmt(x) for x in shapes)))
            elif out[i] == 0:
                out[i] = s[i]
    return tuple(out)


def _loose_merge(a, b):
    """MXNet's shape_assign when its failure is ignored: the merge, or ``a`` on conflict."""
    try:
        return merge_shape("Concat", "shape", a, b)
    except MXNetError:
        return a


def _concat_infer(attrs, ins, outs=None):
    """MXNet's ConcatShape: the inputs and the output agree except on ``dim``; the known
    parts flow between all of them, and the output's ``dim`` is the sum once every input's
    is known."""
    op = "Concat"
    if attrs["num_args"] != len(ins):
        raise MXNetError("Concat: num_args=%d but %d inputs given" % (attrs["num_args"], len(ins)))
    dim = attrs["dim"]
    common, size, unknown, axis = None, 0, False, None
    for x in ins:
        if x is None:
            continue
        if not x:
            raise MXNetError("%s: zero-dimensional arrays cannot be concatenated" % op)
        axis = _axis(op, dim, len(x), "dim")
        unknown = unknown or x[axis] == 0
        size += x[axis]
        t = list(x)
        t[axis] = 0
        common = _loose_merge(common, tuple(t))
    o = outs[0] if outs else None
    if o is not None:
        axis = _axis(op, dim, len(o), "dim")
        t = list(o)
        t[axis] = 0
        common = _loose_merge(common, tuple(t))
    if common is None:
        return ins, [None]
    res = []
    for x in ins:
        try:
            res.append(merge_shape(op, "input", x, common))
        except MXNetError:
            raise MXNetError("%s: input shapes must agree except on dim=%d, got %s"
                             % (op, dim, ", ".join(fmt(v) for v in ins))) from None
    out = list(common)
    if not unknown:
        out[axis] = size
    out = tuple(out)
    if o is not None:
        try:
            out = merge_shape(op, "output", o, out)
        except MXNetError:
            raise MXNetError("%s: incompatible output shape: expected %s, got %s"
                             % (op, fmt(out), fmt(o))) from None
    return res, [out]


def _concat_fwd(attrs, ins, ctx):
    _concat_shape("Concat", [x.shape for x in ins], attrs["dim"])
    return [np.concatenate(ins, axis=_axis("Concat", attrs["dim"], ins[0].ndim, "dim"))]


def _concat_grad(F, attrs, ins, outs, og, ctx):
    n = len(ins)
    return [F._concat_slice(og[0], *ins, num_args=n + 1, dim=attrs["dim"], index=i)
            for i in range(n)]


register("Concat", inputs=(), variadic="num_args",
         attrs={"num_args": Attr("int", doc="number of inputs"),
                "dim": Attr("int", 1, doc="axis to concatenate along")},
         aliases=("concat",), infer_shape=_concat_infer, forward=_concat_fwd,
         gradient=_concat_grad, lowering=call(_lower_concat),
         samples=lambda rng: [Sample([_rand(rng, (2, 3)), _rand(rng, (2, 2))], {"num_args": 2}),
                              Sample([_rand(rng, (2, 3)), _rand(rng, (1, 3)), _rand(rng, (3, 3))],
                                     {"num_args": 3, "dim": 0}),
                              Sample([_rand(rng, (2, 3, 1)), _rand(rng, (2, 3, 2))],
                                     {"num_args": 2, "dim": -1})],
         doc="Concatenate the inputs along ``dim``.")


def _cs_range(attrs, like_shapes):
    dim, k = attrs["dim"], attrs["index"]
    nd = len(like_shapes[0])
    a = _axis("_concat_slice", dim, nd, "dim")
    if not 0 <= k < len(like_shapes):
        raise MXNetError("_concat_slice: index=%d is out of range for %d parts"
                         % (k, len(like_shapes)))
    start = sum(s[a] for s in like_shapes[:k])
    return a, start, start + like_shapes[k][a]


def _cs_infer(attrs, ins):
    likes = ins[1:]
    if any(s is None for s in likes):
        return ins, [None]
    return ins, [tuple(likes[attrs["index"]])]


def _cs_fwd(attrs, ins, ctx):
    g, likes = ins[0], ins[1:]
    a, b, e = _cs_range(attrs, [x.shape for x in likes])
    return [np.ascontiguousarray(g[(slice(None),) * a + (slice(b, e),)])]


def _cs_grad(F, attrs, ins, outs, og, ctx):
    likes = ins[1:]
    k = attrs["index"]
    parts = [og[0] if j == k else F.zeros_like(x) for j, x in enumerate(likes)]
    return [F.Concat(*parts, num_args=len(parts), dim=attrs["dim"])] + [None] * len(likes)


register("_concat_slice", inputs=(), variadic="num_args",
         attrs={"num_args": Attr("int", doc="1 + number of concatenated parts"),
                "dim": Attr("int", 1), "index": Attr("int", 0, doc="which part to cut out")},
         infer_shape=_cs_infer, infer_type=_first_type, forward=_cs_fwd, gradient=_cs_grad,
         lowering=call(_lower_concat_slice),
         samples=lambda rng: [Sample([_rand(rng, (2, 5)), _rand(rng, (2, 3)), _rand(rng, (2, 2))],
                                     {"num_args": 3, "dim": 1, "index": 1}),
                              Sample([_rand(rng, (6, 2)), _rand(rng, (2, 2)), _rand(rng, (1, 2)),
                                      _rand(rng, (3, 2))],
                                     {"num_args": 4, "dim": 0, "index": 2})],
         doc="The part of a Concat result (arg0) that came from input ``index`` of the "
             "concatenated parts arg1..argN (the gradient of Concat).")


def _split_shapes(attrs, s):
    n, axis = attrs["num_outputs"], attrs["axis"]
    if n < 1:
        raise MXNetError("SliceChannel: num_outputs=%d must be positive" % n)
    if s is None:
        return [None] * n
    a = _axis("SliceChannel", axis, len(s))
    if s[a] % n:
        raise MXNetError("SliceChannel: dimension %d of shape %s (=%d) is not divisible by "
                         "num_outputs=%d" % (a, fmt(s), s[a], n))
    part = list(s)
    part[a] = s[a] // n
    if attrs["squeeze_axis"]:
        if part[a] != 1:
            raise MXNetError("SliceChannel: squeeze_axis=True needs num_outputs=%d to equal "
                             "dimension %d of shape %s" % (n, a, fmt(s)))
        del part[a]
        if not part:
            part = [1]
    return [tuple(part)] * n


def _split_infer(attrs, ins, outs=None):
    """SliceChannel's shape rule, with MXNet's back-calculation of the input from the
    parts (the split axis from their sum, the other axes from the first part)."""
    x = ins[0]
    if x is None:
        return ins, [None] * attrs["num_outputs"]
    n = attrs["num_outputs"]
    a = _axis("SliceChannel", attrs["axis"], len(x))
    if x[a] == 0:
        part = list(x)
        if attrs["squeeze_axis"]:
            del part[a]
        parts = [tuple(part)] * n
    else:
        parts = _split_shapes(attrs, x)
    if outs:
        parts = [merge_shape("SliceChannel", "output %d" % i, p, o)
                 for i, (p, o) in enumerate(zip(parts, list(outs) + [None] * n))]
        squeezed = attrs["squeeze_axis"] and len(parts[0]) == len(x) - 1
        for p in parts:
            if squeezed:
                back = tuple(p[:a]) + (n,) + tuple(p[a:])
            else:
                back = tuple(d * n if i == a else d for i, d in enumerate(p))
            x = merge_shape("SliceChannel", "data", x, back)
    return [x], parts


def _split_fwd(attrs, ins, ctx):
    x = ins[0]
    shapes = _split_shapes(attrs, x.shape)
    a = _axis("SliceChannel", attrs["axis"], x.ndim)
    return [np.ascontiguousarray(p).reshape(s)
            for p, s in zip(np.split(x, attrs["num_outputs"], axis=a), shapes)]


def _split_grad(F, attrs, ins, outs, og, ctx):
    parts = list(og)
    if attrs["squeeze_axis"]:
        parts = [F.expand_dims(g, axis=attrs["axis"]) for g in parts]
    return [F.Concat(*parts, num_args=len(parts), dim=attrs["axis"])]


register("SliceChannel", inputs=("data",),
         attrs={"num_outputs": Attr("int", doc="number of equal parts"),
                "axis": Attr("int", 1, doc="axis to split"),
                "squeeze_axis": Attr("bool", False, doc="drop the split axis (needs parts of size 1)")},
         aliases=("split",), num_outputs=lambda attrs: attrs["num_outputs"],
         infer_shape=lambda attrs, ins, outs=None: _split_infer(attrs, ins, outs),
         forward=_split_fwd, gradient=_split_grad, lowering=call(_lower_split),
         samples=lambda rng: [Sample([_rand(rng, (2, 6))], {"num_outputs": 3}),
                              Sample([_rand(rng, (4, 3))], {"num_outputs": 2, "axis": 0}),
                              Sample([_rand(rng, (2, 3, 2))], {"num_outputs": 2, "axis": -1,
                                                                "squeeze_axis": True})],
         doc="Split into ``num_outputs`` equal parts along ``axis``; every part is an output "
             "(``<name>_output<i>``).")


def _stack_shape(attrs, ins):
    if attrs["num_args"] != len(ins):
        raise MXNetError("stack: num_args=%d but %d inputs given" % (attrs["num_args"], len(ins)))
    try:
        s = same_shape("stack", ins)
    except MXNetError:
        raise MXNetError("stack: all inputs must have the same shape, got %s"
                         % ", ".join(fmt(x) for x in ins)) from None
    if s is None:
        return [None] * len(ins), None
    a = _new_axis("stack", attrs["axis"], len(s))
    return [s] * len(ins), tuple(s[:a]) + (len(ins),) + tuple(s[a:])


def _stack_infer(attrs, ins):
    """MXNet's StackOpShape merges the inputs into the output without writing back to them."""
    _ins2, out = _stack_shape(attrs, ins)
    return ins, [out]


def _stack_fwd(attrs, ins, ctx):
    _stack_shape(attrs, [x.shape for x in ins])
    return [np.stack(ins, axis=_new_axis("stack", attrs["axis"], ins[0].ndim))]


def _stack_grad(F, attrs, ins, outs, og, ctx):
    ax = attrs["axis"]
    return [F.reshape_like(F.slice_axis(og[0], axis=ax, begin=i, end=i + 1), x)
            for i, x in enumerate(ins)]


register("stack", inputs=(), variadic="num_args",
         attrs={"axis": Attr("int", 0, doc="position of the new axis"),
                "num_args": Attr("int", doc="number of inputs")},
         infer_shape=_stack_infer, forward=_stack_fwd, gradient=_stack_grad,
         lowering=call(_lower_stack),
         samples=lambda rng: [Sample([_rand(rng, (2, 3)), _rand(rng, (2, 3))], {"num_args": 2}),
                              Sample([_rand(rng, (2, 3)), _rand(rng, (2, 3)), _rand(rng, (2, 3))],
                                     {"num_args": 3, "axis": -1}),
                              Sample([_rand(rng, (4,)), _rand(rng, (4,))],
                                     {"num_args": 2, "axis": 1})],
         doc="Stack same-shaped inputs along a new axis.")
