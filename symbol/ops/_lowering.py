"""Helpers for the ``lowering`` part of op definitions: the typed lowerings themselves live
in :mod:`symbol.lowering` (note *lowering-contract*) and are re-exported here; this module
adds what a :class:`KernelCall`'s ``emit(ctx)`` uses.

Nothing here imports Numba: lowerings only build source text; sizes are read at run time
(``x.shape[k]``) so kernels never depend on shapes, only on ndims (``ctx.in_ndim``).
"""
from ..lowering import Lowering, Elementwise, Alias, View, KernelCall, Reduction, ByAttr

__all__ = ["LowerCtx", "loop_nest", "index_expr", "typed_const", "Lowering", "Elementwise",
           "Alias", "View", "KernelCall", "Reduction", "ByAttr"]

# placeholders in emitted statements, replaced by generated names in code generation
TMP_FMT = "__T%d_%s__"
RUNTIME_FMT = "__R_%s__"


class LowerCtx:
    """What a KernelCall's ``emit`` may use.

    ins / outs:        variable names of the input / output arrays in the generated code;
    in_ndim / out_ndim: their ndims (compile-time constants);
    in_shapes / out_shapes: shapes at the trace that generated the kernel -- use them only
                       for decisions that hold for every batch size (e.g. "this dim is 1");
    attrs:             the parsed attrs; dtype: the output dtype name;
    const(v):          a typed literal for value v (np.float32(...) for float32 kernels);
    tmp(prefix):       a fresh local variable name (prefix: lower-case letters);
    fn(name):          the name to call kernel-library function ``name`` by; it must be
                       listed in the KernelCall's ``uses`` (symbol.lowering note);
    runtime(what):     a value of the run, passed to the segment: ``"train"`` (bool, the
                       run's training mode) or ``"rng"`` (the ``mx.random`` generator, a
                       ``np.random.Generator`` the kernel draws from as eager code would).
    """

    def __init__(self, node, ins, outs, in_shapes, out_shapes, dtype, counter, uses=()):
        self.node = node
        self.attrs = node.parsed
        self.ins = ins
        self.outs = outs
        self.in_shapes = in_shapes
        self.out_shapes = out_shapes
        self.in_ndim = [len(s) for s in in_shapes]
        self.out_ndim = [len(s) if s is not None else None for s in out_shapes]
        self.dtype = dtype
        self._counter = counter
        self.uses = tuple(uses)
        self.used = []

    def const(self, v):
        return typed_const(v, self.dtype)

    def tmp(self, prefix="t"):
        self._counter[0] += 1
        return TMP_FMT % (self._counter[0], prefix)

    def runtime(self, what):
        if what not in ("train", "rng"):
            raise ValueError("LowerCtx.runtime: unknown run value %r" % (what,))
        return RUNTIME_FMT % what

    def fn(self, name):
        if name not in self.uses:
            raise ValueError("lowering of %s calls kernel-library function %r without listing "
                             "it in KernelCall(uses=...)" % (self.node.op.name, name))
        if name not in self.used:
            self.used.append(name)
        return name


def typed_const(v, dtype):
    """Source for the constant ``v`` of type ``dtype`` (``np.float32(0.5)``): a bare Python
    float would turn float32 loops into float64 maths."""
    v = float(v)
    if v != v:
        lit = "np.nan"
    elif v in (float("inf"), float("-inf")):
        lit = "np.inf" if v > 0 else "-np.inf"
    else:
        lit = repr(v)
    return "np.%s(%s)" % (dtype, lit)


def loop_nest(size_var, ndim, body, ctx, first=0):
    """Nested loops over the first ``ndim`` dims of ``size_var`` around ``body`` (a list of
    lines using the returned index names).  Returns (lines, index names)."""
    idx = [ctx.tmp("i") for _ in range(ndim)]
    lines = []
    ind = ""
    for k in range(ndim):
        lines.append("%sfor %s in range(%s.shape[%d]):" % (ind, idx[k], size_var, first + k))
        ind += "    "
    return lines, idx, ind


def index_expr(var, idx):
    return "%s[%s]" % (var, ", ".join(idx)) if idx else "%s[()]" % var
