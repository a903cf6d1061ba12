"""The data contract between an op and the JIT: what ``OpDef.lowering`` may hold.

Note: lowering-contract
    An op's ``lowering`` is one typed object (the registry normalises the older spellings:
    a template string becomes :class:`Elementwise`, ``"view"`` becomes :class:`View`, a dict
    keyed by ``act_type`` becomes :class:`ByAttr`, a bare callable becomes
    :class:`KernelCall`):

    * :class:`Elementwise` -- a scalar expression template fused into one loop nest
      (``{0}``/``{1}`` the inputs, ``{s}`` the scalar attr, ``{name}`` a numeric attr), or
      the sum of all inputs (``Elementwise.nary_sum()``, add_n);
    * :class:`Alias` -- the identity of input 0: the compiler may hand back input 0's
      buffer instead of copying it (a backward graph's ``_gradient_output``);
    * :class:`View` -- the output is a free reshaped view of input 0 (Reshape, Flatten...);
    * :class:`KernelCall` -- ``emit(ctx)`` writes the statements that compute the op in a
      compiled segment (BLAS calls, row kernels, loop nests), or returns an expression
      template where the op is elementwise for these attrs/shapes, or None where they are
      not supported (the op then runs eagerly);
    * :class:`Reduction` -- a KernelCall that is also a sum (or mean) over ``axes(attrs,
      ndim)``: a full reduction of a value computed by an open loop is accumulated inside
      that loop;
    * :class:`ByAttr` -- one of the above per value of an attribute (Activation's act_type).

    Kernel-library references.  ``symbol`` never imports agjit or Numba, so a lowering
    names the functions it calls: a template's calls are read from its text (``sigmoid``,
    ``maximum``, ``math.asin``, ``np.abs``, ``abs``), a KernelCall lists the library
    functions its statements call in ``uses`` and writes each through ``ctx.fn(name)``.
    A bare name refers to ``agjit.compiler.kernels.LIBRARY`` (``K.name`` is accepted as the
    same reference); ``np.*``/``math.*`` to NumPy / the math module; ``abs``/``min``/``max``/
    ``int``/``float`` to the builtins.  The compiler (agjit.compiler.oplower) resolves every
    reference to the Python object, refuses an unknown one, imports into the generated
    module exactly the names its schedule uses, and reads the parallel cost model's
    per-element cost from the library's declared costs (or the template's own ``cost``).

This module imports nothing from the project: the registry and the op files both use it.
"""
import ast
import string

__all__ = ["Lowering", "Elementwise", "Alias", "View", "KernelCall", "Reduction", "ByAttr",
           "as_lowering", "template_refs"]


class Lowering:
    """Base of the typed lowerings (see the module note)."""

    __slots__ = ()
    kind = "?"

    def select(self, attrs):
        """The lowering that applies for these attrs (ByAttr picks a case), or None."""
        return self

    def refs(self):
        """Kernel-library references this lowering may use (see the module note)."""
        return ()


def template_refs(template):
    """The functions a template calls, one entry per call, as references: ``"sigmoid"``,
    ``"math.asin"``, ``"np.abs"`` (``K.x`` is read as ``x``).  Raises ValueError for a template that does not
    parse as one expression."""
    parts = []
    k = 0
    for lit, field, _spec, _conv in string.Formatter().parse(template):
        parts.append(lit)
        if field is not None:
            parts.append("_a%d" % k)
            k += 1
    text = "".join(parts)
    tree = ast.parse(text, mode="eval")
    out = []            # one entry per call (the cost model counts each)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name):
                ref = f.id
            elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                ref = f.attr if f.value.id == "K" else "%s.%s" % (f.value.id, f.attr)
            else:
                raise ValueError("template %r calls something that is not a named function"
                                 % template)
            out.append(ref)
    return tuple(out)


class Elementwise(Lowering):
    """A fusible scalar expression (``template``) or, with ``nary``, the sum of every input.
    ``cost``: work per element for the parallel cost model; None = 1 + the declared costs
    of the library functions the template calls."""

    __slots__ = ("template", "cost", "nary", "calls")
    kind = "elementwise"

    def __init__(self, template, cost=None, nary=False):
        if not nary and not isinstance(template, str):
            raise TypeError("Elementwise needs a template string")
        self.template = template
        self.cost = cost
        self.nary = bool(nary)
        self.calls = () if nary else template_refs(template)

    @classmethod
    def nary_sum(cls, cost=None):
        return cls(None, cost=cost, nary=True)

    def refs(self):
        return tuple(dict.fromkeys(self.calls))

    def __repr__(self):
        return "%s(%r)" % (type(self).__name__, "<sum of inputs>" if self.nary else self.template)


class Alias(Elementwise):
    """The identity of input 0 (same shape and dtype): lowered as an elementwise copy, or
    -- where input 0 is already a buffer of the same kernel that nothing else returns --
    as that buffer itself (no step)."""

    __slots__ = ()
    kind = "alias"

    def __init__(self):
        super().__init__("{0}", cost=1)


class View(Lowering):
    """The output is input 0 reshaped (no copy)."""

    __slots__ = ()
    kind = "view"

    def __repr__(self):
        return "View()"


class KernelCall(Lowering):
    """``emit(ctx)`` -> list of statements | template string | None (see the module note);
    ``uses``: the kernel-library functions the statements may call (through ``ctx.fn``);
    ``any_dtype``: the statements accept inputs and outputs of different (numeric) dtypes
    (Cast, one_hot's dtype, shape_array) -- otherwise every input has the output's float
    dtype."""

    __slots__ = ("emit", "uses", "any_dtype")
    kind = "call"

    def __init__(self, emit, uses=(), any_dtype=False):
        if not callable(emit):
            raise TypeError("KernelCall needs a callable emit(ctx)")
        self.emit = emit
        self.uses = tuple(uses)
        self.any_dtype = bool(any_dtype)

    def refs(self):
        return self.uses

    def __repr__(self):
        return "%s(%s, uses=%r)" % (type(self).__name__, getattr(self.emit, "__qualname__", "?"),
                                    self.uses)


class Reduction(KernelCall):
    """A sum (``mean=False``) or mean over ``axes(attrs, ndim)`` (a tuple of axes); ``emit``
    lowers it on its own, and a full reduction of a loop value fuses into that loop."""

    __slots__ = ("axes", "mean")
    kind = "reduction"

    def __init__(self, emit, axes, mean=False, uses=()):
        super().__init__(emit, uses)
        self.axes = axes
        self.mean = bool(mean)


class ByAttr(Lowering):
    """One lowering per value of the attribute ``attr``; values not listed run eagerly."""

    __slots__ = ("attr", "cases")
    kind = "by_attr"

    def __init__(self, attr, cases):
        self.attr = attr
        self.cases = {k: as_lowering(v) for k, v in cases.items()}

    def select(self, attrs):
        low = self.cases.get(attrs.get(self.attr))
        return None if low is None else low.select(attrs)

    def refs(self):
        out = []
        for low in self.cases.values():
            for r in low.refs():
                if r not in out:
                    out.append(r)
        return tuple(out)

    def __repr__(self):
        return "ByAttr(%r, %r)" % (self.attr, self.cases)


def as_lowering(obj):
    """The typed lowering for an op declaration's ``lowering=`` (see the module note)."""
    if obj is None or isinstance(obj, Lowering):
        return obj
    if isinstance(obj, str):
        return View() if obj == "view" else Elementwise(obj)
    if isinstance(obj, dict):
        return ByAttr("act_type", obj)
    if callable(obj):
        return KernelCall(obj)
    raise TypeError("a lowering is a Lowering, a template string, a dict or a callable, "
                    "not %r" % (obj,))
