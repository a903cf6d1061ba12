"""The op registry: one :class:`OpDef` per operator.

Note: one-definition-per-op
    Every operator is declared exactly once, in one of the ``symbol/ops/*.py`` modules, by a
    call to :func:`register`.  The declaration carries everything the project needs:

    * the MXNet name, aliases and the lower-case function-name hint used by NameManager;
    * input names (``inputs``; a variadic op sets ``variadic="num_args"``), hidden outputs
      (``num_outputs``), visible outputs (``num_visible``), output names, mutated inputs
      (aux states);
    * typed attributes (:class:`Attr`), parsed from and written to MXNet's attr strings;
    * ``infer_shape(attrs, in_shapes) -> (in_shapes, out_shapes)`` working on partially known
      shapes (``None`` for an unknown shape, ``0`` for an unknown dimension);
    * ``infer_type`` (default: every input and output shares one dtype);
    * ``forward(attrs, inputs, ctx) -> list[np.ndarray]`` -- the eager NumPy kernel;
    * ``gradient(F, attrs, inputs, outputs, out_grads, ctx) -> list`` written with registered
      ops through ``F`` (``mx.nd`` in eager mode, the symbol builder for backward graphs), so
      gradients can be recorded (higher order) and exported;
    * ``lowering`` for the JIT (a scalar expression for fusible ops) or ``lowerable=False``;
    * ``samples(rng)`` -> list of ``Sample`` for the registry-driven test tables.

    ``symbol`` owns the registry because the graph IR needs schemas and inference; the eager
    kernels are plain NumPy, so nothing here imports agjit's runtime.
"""
import collections
import dataclasses

import numpy as np

from .base import MXNetError, parse_literal, AttrParseError, dtype_name
from .lowering import as_lowering

__all__ = ["Attr", "OpDef", "register", "get_op", "all_ops", "Sample", "REQUIRED",
           "check_uniform", "SchemaSpec", "InferenceSpec", "KernelSpec", "GradientSpec",
           "LoweringSpec", "SampleSpec"]

REQUIRED = object()
_REGISTRY = {}
_CANONICAL = []

Sample = collections.namedtuple("Sample", "inputs attrs")
Sample.__new__.__defaults__ = ({},)


class Attr:
    """A typed operator attribute.

    kind is one of: int, float, floats (tuple of floats), bool, str, dtype, shape (tuple of ints), axis (int, tuple of
    ints or None), int_or_none, float_or_none, tuple_or_none (tuple of int-or-None, for slice
    begin/end/step).  ``choices`` restricts str values.
    """

    __slots__ = ("kind", "default", "choices", "doc")

    def __init__(self, kind, default=REQUIRED, choices=None, doc=""):
        self.kind = kind
        self.default = default
        self.choices = choices
        self.doc = doc

    @property
    def required(self):
        return self.default is REQUIRED

    def convert(self, value, op, name):
        """Check and convert a user value (Python object or attr string) to the typed value."""
        if isinstance(value, str) and self.kind not in ("str", "dtype"):
            try:
                value = parse_literal(value)
            except AttrParseError as e:
                raise MXNetError("%s: cannot parse attribute %s=%r: %s" % (op, name, value, e)) from None
        try:
            return _CONVERT[self.kind](self, value)
        except (TypeError, ValueError) as e:
            raise MXNetError("%s: invalid value for attribute %s: %r (%s)" % (op, name, value, e)) from None


def _to_int(v):
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    raise TypeError("expected an integer")


def _c_int(a, v):
    return _to_int(v)


def _c_float(a, v):
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    raise TypeError("expected a number")


def _c_bool(a, v):
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)) and int(v) in (0, 1):
        return bool(v)
    raise TypeError("expected a boolean")


def _c_str(a, v):
    if not isinstance(v, str):
        raise TypeError("expected a string")
    if a.choices is not None and v not in a.choices:
        raise ValueError("must be one of %s" % (list(a.choices),))
    return v


def _c_dtype(a, v):
    if v is None and a.default is None:
        return None
    try:
        return dtype_name(v)
    except MXNetError as e:
        raise ValueError(str(e)) from None


def _c_shape(a, v):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v),)
    if isinstance(v, (tuple, list)):
        return tuple(_to_int(x) for x in v)
    raise TypeError("expected a shape tuple")


def _c_axis(a, v):
    if v is None:
        return None
    if isinstance(v, (tuple, list)):
        return tuple(_to_int(x) for x in v)
    return _to_int(v)


def _c_int_or_none(a, v):
    return None if v is None else _to_int(v)


def _c_float_or_none(a, v):
    return None if v is None else _c_float(a, v)


def _c_tuple_or_none(a, v):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return (int(v),)
    if isinstance(v, (tuple, list)):
        return tuple(None if x is None else _to_int(x) for x in v)
    raise TypeError("expected a tuple")


def _c_floats(a, v):
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return (float(v),)
    if isinstance(v, (tuple, list)):
        return tuple(_c_float(a, x) for x in v)
    raise TypeError("expected a tuple of numbers")


_CONVERT = {"floats": _c_floats, "int": _c_int, "float": _c_float, "bool": _c_bool, "str": _c_str, "dtype": _c_dtype,
            "shape": _c_shape, "axis": _c_axis, "int_or_none": _c_int_or_none,
            "float_or_none": _c_float_or_none, "tuple_or_none": _c_tuple_or_none}


def format_attr(value):
    """MXNet's Python front end writes ``str(value)`` for every explicitly passed kwarg."""
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    return str(value)


def _same_type(attrs, in_types, out_types=None):
    """The default type rule: every input and the output share one dtype, inferred either
    way (MXNet's ElemwiseType).  OpDef.infer_type checks the given input dtypes against each
    other first (see :func:`check_uniform`)."""
    known = [t for t in in_types if t is not None]
    if not known:
        known = [t for t in (out_types or ())[:1] if t is not None]
    if not known:
        return in_types, [None]
    t = known[0]
    return [t] * len(in_types), [t]


# At most this many outputs per node (SliceChannel's num_outputs, ...): a bound on what a
# small graph file can make shape inference and get_internals allocate.
MAX_OUTPUTS = 1 << 16


def _short_attrs(attrs):
    text = ", ".join("%s=%r" % kv for kv in sorted(attrs.items()) if not str(kv[0]).startswith("__"))
    return "(" + (text if len(text) <= 120 else text[:117] + "...") + ")"


def _tname(t):
    return t if isinstance(t, str) else np.dtype(t).name


def check_uniform(op, names, in_types, expected=None, first=0, what="input"):
    """MXNet's uniform-type check (``Incompatible attr in node ... at i-th input``): every
    known dtype of ``in_types[first:]`` must equal ``expected`` (default: the first known
    dtype among them).  Raises MXNetError naming the op, the argument and both dtypes; the
    one place where every op with same-dtype inputs is checked, for the eager, compiled
    and symbolic paths alike."""
    ref = None if expected is None else _tname(expected)
    ref_i = None
    for i in range(first, len(in_types)):
        t = in_types[i]
        if t is None:
            continue
        t = _tname(t)
        if ref is None:
            ref, ref_i = t, i
        elif t != ref:
            name = names[i] if names and i < len(names) else "input %d" % i
            src = (" (the dtype of %r)" % (names[ref_i] if names and ref_i < len(names) else
                                            "input %d" % ref_i)) if ref_i is not None else ""
            raise MXNetError(
                "%s: Incompatible dtype of %s %r (%d-th %s): expected %s%s, got %s "
                "(the inputs of %s must have one dtype)" % (op, what, name, i, what, ref, src, t, op))
    return ref


_TAKES_OUTS = {}


def _takes_outs(fn):
    """Whether an inference rule takes the output values as a third argument."""
    r = _TAKES_OUTS.get(fn)
    if r is None:
        import inspect
        try:
            ps = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            ps = []
        r = len(ps) >= 3 or any(p.kind is p.VAR_POSITIONAL for p in ps)
        _TAKES_OUTS[fn] = r
    return r


# Note: opdef-groups
#     An op declaration has six groups of fields, each a small dataclass: SchemaSpec (names,
#     inputs, outputs, attrs), InferenceSpec (shape/type rules and the eager fast-path
#     switches), KernelSpec (the NumPy kernel and its needs), GradientSpec (the gradient
#     rule and what the tests check of it), LoweringSpec (symbol.lowering note
#     *lowering-contract*) and SampleSpec (test samples, NumPy reference).  ``register``
#     takes the groups (``schema=``, ``inference=``, ``kernel=``, ``grad=``, ``lower=``,
#     ``test=``) or -- as every op file does -- their fields as flat keywords
#     (``infer_shape=``, ``gradient=``, ``lowering=`` ...); a flat keyword overrides the
#     field of a group given too.  The OpDef keeps each field as a plain attribute (the
#     eager path reads them per call).
@dataclasses.dataclass
class SchemaSpec:
    inputs: object = ("data",)
    attrs: object = None
    aliases: tuple = ()
    hint: object = None
    num_outputs: object = 1
    num_visible: object = None
    output_names: object = None
    mutate_inputs: tuple = ()
    variadic: object = None
    optional_inputs: tuple = ()
    key_var_num_args: object = None
    doc: str = ""


@dataclasses.dataclass
class InferenceSpec:
    infer_shape: object = None
    infer_type: object = None
    dtype_out: object = None
    eager_infer: bool = True
    eager_fast: object = None
    type_check_uniform: bool = False


@dataclasses.dataclass
class KernelSpec:
    forward: object = None
    is_loss: bool = False
    needs_rng: bool = False
    train_dependent: bool = False
    backward_hook: object = None


@dataclasses.dataclass
class GradientSpec:
    gradient: object = None
    differentiable: bool = True
    grad_check: bool = True
    second_order: bool = True


@dataclasses.dataclass
class LoweringSpec:
    lowering: object = None
    lowerable: object = None


@dataclasses.dataclass
class SampleSpec:
    samples: object = None
    np_reference: object = None


_GROUPS = (("schema", SchemaSpec), ("inference", InferenceSpec), ("kernel", KernelSpec),
           ("grad", GradientSpec), ("lower", LoweringSpec), ("test", SampleSpec))
# flat keyword -> its group
_FIELD_GROUP = {f.name: g for g, cls in _GROUPS for f in dataclasses.fields(cls)}


def _group(groups, flat):
    """The six group objects from the given groups and flat keywords (note *opdef-groups*)."""
    out = {}
    for g, cls in _GROUPS:
        spec = groups.get(g)
        if spec is None:
            spec = cls()
        elif not isinstance(spec, cls):
            raise TypeError("%s= must be a %s, not %r" % (g, cls.__name__, spec))
        else:
            spec = dataclasses.replace(spec)
        out[g] = spec
    for k, v in flat.items():
        g = _FIELD_GROUP.get(k)
        if g is None:
            raise TypeError("OpDef() got an unexpected keyword argument %r" % k)
        setattr(out[g], k, v)
    return out


class OpDef:
    """One operator.  See the module notes *one-definition-per-op* and *opdef-groups*."""

    def __init__(self, name, schema=None, inference=None, kernel=None, grad=None, lower=None,
                 test=None, **fields):
        g = _group(dict(schema=schema, inference=inference, kernel=kernel, grad=grad,
                        lower=lower, test=test), fields)
        sc, inf, kn, gr, lo, te = (g["schema"], g["inference"], g["kernel"], g["grad"],
                                   g["lower"], g["test"])
        self.name = name
        inputs, num_outputs, num_visible = sc.inputs, sc.num_outputs, sc.num_visible
        gradient, lowering, variadic = gr.gradient, lo.lowering, sc.variadic
        self.inputs = inputs if callable(inputs) else tuple(inputs)
        self.attrs = dict(sc.attrs or {})
        self._infer_shape = inf.infer_shape
        self.forward = kn.forward
        self._gradient = gradient
        self._infer_type = inf.infer_type or _same_type
        self.aliases = tuple(sc.aliases)
        self.hint = sc.hint
        self._num_outputs = num_outputs
        self._num_visible = num_visible
        self._output_names = sc.output_names
        self.mutate_inputs = tuple(sc.mutate_inputs)
        self.variadic = variadic          # attr name counting variadic inputs ("num_args")
        self.differentiable = gr.differentiable and gradient is not None
        self.declared_differentiable = gr.differentiable   # False only when said explicitly
        # a typed lowering (symbol.lowering note *lowering-contract*); lowerable=True
        # without one would run eagerly while claiming otherwise
        self.lowering = as_lowering(lowering)
        self.lowerable = (lowering is not None) if lo.lowerable is None else bool(lo.lowerable)
        if self.lowerable and self.lowering is None:
            raise ValueError("operator %s: lowerable=True needs a lowering" % name)
        self.samples = te.samples
        self.doc = sc.doc
        self.key_var_num_args = sc.key_var_num_args
        self.is_loss = kn.is_loss
        self.needs_rng = kn.needs_rng
        self.train_dependent = kn.train_dependent
        self.np_reference = te.np_reference
        self.grad_check = gr.grad_check
        self.second_order = gr.second_order
        self.dtype_out = inf.dtype_out
        self.optional_inputs = tuple(sc.optional_inputs)
        # called by eager backward / executors after the gradient: (attrs, in_np, out_np)
        self.backward_hook = kn.backward_hook
        # eager fast path (see agjit.ndarray.invoke): skip inference when the kernel itself
        # refuses every bad shape
        self.eager_infer = inf.eager_infer
        # the eager fast path (agjit.ndarray.fast_call) may run the kernel directly: by
        # default the ops that skip shape inference; an op whose kernel raises on every bad
        # input (or raises MXNetError itself) may opt in
        self.eager_fast = (not inf.eager_infer) if inf.eager_fast is None else inf.eager_fast
        # eager calls run infer_type only when the input dtypes differ; an op whose rule can
        # refuse inputs of one dtype (BatchNorm: float16 data needs float32 parameters) sets this
        self.type_check_uniform = inf.type_check_uniform
        self._defaults = None
        self._attr_cache = {}
        self._nvis = None if callable(num_outputs) or callable(num_visible) else (
            num_outputs if num_visible is None else num_visible)
        self._n_inputs = None if (variadic or callable(inputs) or sc.optional_inputs) \
            else len(self.inputs)

    # -- schema -------------------------------------------------------------------
    def __repr__(self):
        return "OpDef(%s)" % self.name

    def input_names(self, attrs):
        # callable inputs win over variadic ones: UpSampling is variadic (num_args) for
        # nearest but takes (data, weight) for bilinear
        if callable(self.inputs):
            return list(self.inputs(attrs))
        if self.variadic:
            n = attrs.get(self.variadic)
            return ["arg%d" % i for i in range(n or 0)]
        return list(self.inputs)

    def arg_names(self, attrs):
        """Input names for auto-created Symbol arguments (e.g. no_bias drops 'bias')."""
        names = self.input_names(attrs)
        if attrs.get("no_bias") and "bias" in names:
            names.remove("bias")
        return names

    def num_outputs(self, attrs):
        n = self._num_outputs
        if not callable(n):
            return n
        n = n(attrs)
        if not 0 <= n <= MAX_OUTPUTS:
            # an attr (num_outputs, ...) from an untrusted file must not make every later
            # get_internals / infer_shape allocate one entry per claimed output
            raise MXNetError("%s: the attributes %s give %d outputs; a node may have between "
                             "0 and %d outputs" % (self.name, _short_attrs(attrs), n,
                                                   MAX_OUTPUTS))
        return n

    def num_visible(self, attrs):
        n = self._num_visible
        if n is None:
            return self.num_outputs(attrs)
        return n(attrs) if callable(n) else n

    def output_names(self, attrs):
        n = self._output_names
        if n is None:
            return None
        return list(n(attrs)) if callable(n) else list(n)

    # -- attributes ----------------------------------------------------------------
    def parse_attrs(self, raw, strict=True, call=False):
        """Turn a dict of attr values (strings from JSON, or Python values from a call) into
        typed values with defaults filled in.  Unknown keys raise MXNetError when strict; keys
        starting with ``__`` (hidden attrs such as ``__ctx_group__``) are ignored.  An op
        without attributes (MXNet registers no parameter struct for relu, exp, sigmoid, ...)
        ignores extra keys in a call and in a graph document alike, as MXNet 1.9.1 does:
        ``sym.relu(x, foo=1)`` keeps ``foo`` among the node's attrs, writes it to JSON and
        loads that JSON again; an op with attributes refuses an unknown key ("Cannot find
        argument").  ``call`` is accepted for the callers that say which path they are on;
        both paths follow the same rule."""
        out = {}
        for k, v in raw.items():
            a = self.attrs.get(k)
            if a is None:
                if k.startswith("__") and k.endswith("__"):
                    continue
                if k == "name":
                    continue
                if strict and self.attrs:
                    raise MXNetError(
                        "%s: unknown argument %r; valid arguments are %s"
                        % (self.name, k, sorted(self.attrs)))
                continue
            out[k] = a.convert(v, self.name, k)
        for k, a in self.attrs.items():
            if k not in out:
                if a.required:
                    raise MXNetError("%s: required argument %r is missing" % (self.name, k))
                out[k] = a.default
        return out

    # -- inference -------------------------------------------------------------------
    def infer_shape(self, attrs, in_shapes, out_shapes=None):
        """Returns (in_shapes, out_shapes) with every visible and hidden output.  Unknown
        shapes are None.  Raises MXNetError on inconsistency.  ``out_shapes`` (the graph's
        partial knowledge of the outputs) reaches rules written ``(attrs, ins, outs)``, which
        infer backwards too (symbol.infer's note *two-way-inference*)."""
        if self._infer_shape is None:
            raise MXNetError("%s: no shape inference" % self.name)
        if out_shapes is not None and _takes_outs(self._infer_shape):
            return self._infer_shape(attrs, list(in_shapes), list(out_shapes))
        return self._infer_shape(attrs, list(in_shapes))

    def infer_type(self, attrs, in_types, out_types=None):
        if self._infer_type is _same_type and len(in_types) > 1:
            check_uniform(self.name, self.input_names(attrs), in_types)
        if out_types is not None and _takes_outs(self._infer_type):
            ins, outs = self._infer_type(attrs, list(in_types), list(out_types))
        else:
            ins, outs = self._infer_type(attrs, list(in_types))
        nout = self.num_outputs(attrs)
        if len(outs) < nout:
            outs = list(outs) + [outs[0] if outs else None] * (nout - len(outs))
        return list(ins), list(outs)

    # -- gradient ----------------------------------------------------------------------
    def gradient(self, F, attrs, inputs, outputs, out_grads, ctx=None):
        return self._gradient(F, attrs, inputs, outputs, out_grads, ctx)


def register(name, cls=None, **kw):
    """Declare an operator (see the module note).  Returns the OpDef (of class ``cls``, an
    OpDef subclass, when given: ops whose schema is decided at run time, like Custom)."""
    if name in _REGISTRY:
        raise ValueError("operator %s registered twice" % name)
    op = (cls or OpDef)(name, **kw)
    _REGISTRY[name] = op
    _CANONICAL.append(op)
    for a in op.aliases:
        if a in _REGISTRY:
            raise ValueError("alias %s of %s already registered" % (a, name))
        _REGISTRY[a] = op
    return op


def get_op(name):
    """Look an operator (or alias) up; MXNetError if unknown."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise MXNetError("Failed loading Op %s: operator is not registered" % (name,)) from None


def has_op(name):
    return name in _REGISTRY


def all_ops():
    """Every canonical OpDef in declaration order."""
    _ensure_loaded()
    return list(_CANONICAL)


def all_names():
    _ensure_loaded()
    return dict(_REGISTRY)


_loaded = False


def _ensure_loaded():
    global _loaded
    if not _loaded:
        _loaded = True
        from . import ops  # noqa: F401  (registers everything)
