"""Symbol construction: ``Variable``/``var``, ``Group``, and every registered operator as a
function ``symbol.<Name>`` (aliases included), generated from the registry.

An op function takes its inputs as Symbols (positionally, in the op's input order, or by
input name: ``weight=w``), then its attributes (positionally in declaration order, or by
keyword), plus ``name=`` and ``attr={...}``.  Only explicitly given attributes are recorded,
as ``str()`` of the Python value (``dtype`` attributes as the dtype's name).  Inputs that are
not given become variables ``<name>_<input>`` carrying a copy of the op's attributes
(``no_bias=True`` drops the bias).  Unnamed ops are named by :class:`symbol.name.NameManager`
from the lower-cased function name (``fullyconnected0``).  See the Note *symbol-api* in
:mod:`symbol.symbol`.

>>> import symbol as sym
>>> fc = sym.FullyConnected(sym.Variable('data'), num_hidden=8, name='fc1')
>>> fc.list_arguments()
['data', 'fc1_weight', 'fc1_bias']
"""
import sys
import types

import numpy as np

from .base import MXNetError, DTYPE_CODES, dtype_name
from .graph import Node, verify
from .registry import get_op, all_names
from .symbol import Symbol, hidden_key, var_version, bump_version
from .name import NameManager
from .attribute import AttrScope

__all__ = ["Variable", "var", "Group", "maximum", "minimum", "power", "SymbolInputError"]

_STYPE_CODES = {"undefined": -1, "default": 0, "row_sparse": 1, "csr": 2}

# Initial values FSetInputVarAttrOnCompose gives to BatchNorm-like moving statistics.
_AUX_INIT = {"moving_mean": '["zero", {}]', "moving_var": '["one", {}]'}


class SymbolInputError(MXNetError, AssertionError):
    """A non-Symbol where an op expects a Symbol input (MXNet raises AssertionError there)."""


# ---------------------------------------------------------------------------------------------
# variables and groups
# ---------------------------------------------------------------------------------------------
def Variable(name, attr=None, shape=None, lr_mult=None, wd_mult=None, dtype=None, init=None,
             stype=None, **kwargs):
    """Create a symbolic variable.

    Parameters
    ----------
    name : str
    attr : dict of str to str, optional
        Extra attributes (merged over the current :class:`symbol.attribute.AttrScope`).
    shape : tuple, optional
        Stored as ``__shape__`` (``"(2, 3)"``) and used as a hint by infer_shape.
    lr_mult, wd_mult : float, optional
        Stored as ``__lr_mult__`` / ``__wd_mult__``.
    dtype : str or numpy dtype, optional
        Stored as ``__dtype__``, MXNet's type code (float32 0, float64 1, ...).
    init : str or initializer, optional
        ``__init__``: an initializer JSON string, or an object with ``dumps()``.
    stype : str, optional
        Storage type (``default``, ``row_sparse``, ``csr``) as ``__storage_type__``.
    **kwargs
        More ``__dunder__`` attributes.

    >>> v = Variable('v', shape=(2, 3), dtype='float64')
    >>> v.attr('__shape__'), v.attr('__dtype__')
    ('(2, 3)', '1')
    """
    if not isinstance(name, str):
        raise TypeError("Expect a string for variable `name`")
    attrs = {}
    for k, v in AttrScope.current.get(attr).items():
        if not isinstance(v, str):
            raise ValueError("Set Attr only accepts string values (attribute %s=%r)" % (k, v))
        attrs[hidden_key(k)] = v
    if shape is not None:
        attrs["__shape__"] = str(shape)
    if lr_mult is not None:
        attrs["__lr_mult__"] = str(lr_mult)
    if wd_mult is not None:
        attrs["__wd_mult__"] = str(wd_mult)
    if dtype is not None:
        dn = dtype_name(dtype)
        if dn not in DTYPE_CODES:
            raise MXNetError("Variable %s: dtype %s is not supported (supported: %s)"
                             % (name, dn, ", ".join(DTYPE_CODES)))
        attrs["__dtype__"] = str(DTYPE_CODES[dn])
    if init is not None:
        if not isinstance(init, str):
            if not hasattr(init, "dumps"):
                raise TypeError("Variable %s: init must be a string or an initializer with "
                                "dumps(), got %s" % (name, type(init).__name__))
            init = init.dumps()
        attrs["__init__"] = init
    if stype is not None:
        if stype not in _STYPE_CODES:
            raise MXNetError("Variable %s: unknown storage type %r" % (name, stype))
        attrs["__storage_type__"] = str(_STYPE_CODES[stype])
    for k, v in kwargs.items():
        if k.startswith("__") and k.endswith("__"):
            attrs[k] = str(v)
        else:
            raise ValueError("Attribute name=%s is not supported. Additional attributes must "
                             "start and end with double underscores, e.g, __yourattr__" % k)
    return Symbol([(Node(None, name, attrs), 0)])


var = Variable


def Group(symbols):
    """One Symbol whose outputs are the outputs of ``symbols``, in order.

    >>> a, b = Variable('a'), Variable('b')
    >>> Group([a + b, a]).list_outputs()
    ['_plus0_output', 'a']
    """
    if not symbols or any(not isinstance(s, Symbol) for s in symbols):
        raise TypeError("Expected a list of symbols as input")
    outs = []
    for s in symbols:
        outs.extend(s._outputs)
    out = Symbol(outs)
    verify(out._outputs)
    return out


# ---------------------------------------------------------------------------------------------
# op application
# ---------------------------------------------------------------------------------------------
def _format(op, key, value):
    a = op.attrs.get(key)
    if a is not None and a.kind == "dtype" and value is not None and not isinstance(value, str):
        return dtype_name(value)
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    return str(value)


def _input_names(op, params):
    """The op's input names given (some of) its attributes."""
    if not callable(op.inputs) and not op.variadic:
        return list(op.inputs)
    try:
        parsed = op.parse_attrs(params, strict=False)
    except MXNetError:
        parsed = {k: (None if a.required else a.default) for k, a in op.attrs.items()}
        for k, v in params.items():
            if k in op.attrs:
                try:
                    parsed[k] = op.attrs[k].convert(v, op.name, k)
                except MXNetError:
                    pass
    return op.input_names(parsed)


def _check_input(fname, what, value):
    if not isinstance(value, Symbol):
        raise SymbolInputError("%s: argument %s must be a Symbol, but got %s"
                               % (fname, what, type(value).__name__))


def _create_op(op, args, params, name, hint, sym_kwargs=None, fname=None, scoped=True):
    """Apply ``op`` to Symbol inputs.

    ``args`` are positional inputs, ``sym_kwargs`` inputs by name; ``params`` the attributes
    as given, merged under the current AttrScope unless ``scoped=False`` (the op functions
    merge it themselves).  Returns the new Symbol (its visible outputs).
    """
    if isinstance(op, str):
        op = get_op(op)
    if scoped:
        merged = AttrScope.current.get(None)
        for k, v in params.items():
            merged.setdefault(k, v)
        params = merged
    fname = fname or op.name
    sym_kwargs = sym_kwargs or {}
    name = NameManager.current.get(name, hint)
    if op.variadic and op.variadic not in params:
        params = dict(params)
        params[op.variadic] = len(args) + len(sym_kwargs)
    attrs = {}
    for k, v in params.items():
        k = hidden_key(k)
        if k not in attrs:
            attrs[k] = _format(op, k, v)
    parsed = op.parse_attrs(attrs, strict=True, call=True)
    in_names = op.arg_names(parsed)
    if len(args) > len(in_names):
        raise MXNetError("%s: too many positional inputs: got %d, the op takes %d (%s)"
                         % (fname, len(args), len(in_names), ", ".join(in_names)))
    given = {}
    for i, a in enumerate(args):
        given[in_names[i]] = a
    unknown = [k for k in sym_kwargs if k not in in_names or k in given]
    if unknown:
        raise MXNetError("%s: keyword argument(s) %s do not name an input; the inputs are %s"
                         % (fname, ", ".join(repr(k) for k in unknown), in_names))
    given.update(sym_kwargs)
    muts = set(op.mutate_inputs)
    inputs = []
    for k, in_name in enumerate(in_names):
        s = given.get(in_name)
        if s is None:
            vattrs = dict(attrs)
            if k in muts and in_name in _AUX_INIT and "__init__" not in vattrs:
                vattrs["__init__"] = _AUX_INIT[in_name]
            src, idx = Node(None, "%s_%s" % (name, in_name), vattrs), 0
        else:
            if len(s._outputs) != 1:
                raise MXNetError("%s: argument %s is a group of %d outputs; a single output is "
                                 "required" % (fname, in_name, len(s._outputs)))
            src, idx = s._outputs[0]
            if k in muts and src.op is None and in_name in _AUX_INIT \
                    and "__init__" not in src.attrs:
                # MXNet's FSetInputVarAttrOnCompose writes into the given variable itself.
                src.attrs["__init__"] = _AUX_INIT[in_name]
        if src.op is None:
            if k in muts:
                ver = bump_version(src)
            else:
                ver = var_version(src)
        else:
            if k in muts:
                raise MXNetError("%s: input %s is mutated by the op, so it must be a Variable, "
                                 "got the output of %s (%s)" % (fname, in_name, src.name, src.op_name))
            ver = 0
        inputs.append((src, idx, ver))
    node = Node(op, name, attrs, inputs)
    return Symbol([(node, i) for i in range(node.num_visible())])


def _call(opname, fname, args, kwargs):
    """Call op ``opname`` as function ``fname`` would (used by fluent methods)."""
    fn = OP_FUNCTIONS.get(fname) or _make_op_function(get_op(opname), fname)
    return fn(*args, **kwargs)


def _make_op_function(op, fname):
    """Build ``symbol.<fname>`` for OpDef ``op``."""
    hint = fname.lower()
    attr_names = list(op.attrs)

    def fn(*args, **kwargs):
        name = kwargs.pop("name", None)
        attr = kwargs.pop("attr", None)
        kwargs.pop("out", None)
        sym_kwargs = {}
        extras = {}
        declared = {}
        for k, v in kwargs.items():
            if isinstance(v, Symbol):
                sym_kwargs[k] = v
            elif k in op.attrs:
                declared[k] = v
            else:
                extras[k] = v
        pos_inputs = []
        if op.variadic:
            for i, a in enumerate(args):
                if isinstance(a, (list, tuple)):
                    for b in a:
                        _check_input(fname, "%d" % i, b)
                        pos_inputs.append(b)
                else:
                    _check_input(fname, "%d" % i, a)
                    pos_inputs.append(a)
        else:
            # ops whose inputs depend on free-form attrs (Custom) see the extras too
            names = _input_names(op, dict(extras, **declared))
            for i, a in enumerate(args):
                if i < len(names):
                    if a is not None:
                        _check_input(fname, names[i], a)
                        sym_kwargs[names[i]] = a
                    continue
                k = i - len(names)
                if k >= len(attr_names):
                    raise MXNetError("%s: too many positional arguments (inputs: %s; attributes: "
                                     "%s)" % (fname, ", ".join(names), ", ".join(attr_names)))
                if attr_names[k] in declared:
                    raise MXNetError("%s: got multiple values for argument %r"
                                     % (fname, attr_names[k]))
                declared[attr_names[k]] = a
            for k in list(extras):
                if k in names:
                    v = extras.pop(k)
                    if v is not None:
                        _check_input(fname, k, v)
        # MXNet's order: the AttrScope and attr={} go over the extra kwargs, and win over
        # declared parameters of the same name.
        params = dict(extras)
        params.update(AttrScope.current.get(attr))
        for k, v in declared.items():
            params.setdefault(k, v)
        if pos_inputs and sym_kwargs:
            raise TypeError("Operators with variable length input can only accept input Symbols "
                            "either as positional or keyword arguments, not both")
        return _create_op(op, pos_inputs, params, name, hint, sym_kwargs=sym_kwargs,
                          fname=fname, scoped=False)

    fn.__name__ = fname
    fn.__qualname__ = fname
    ins = "num_args Symbols" if op.variadic else (
        "..." if callable(op.inputs) else ", ".join(op.inputs))
    fn.__doc__ = op.doc or ("MXNet operator %s as a Symbol function (inputs: %s; attributes: %s)."
                            % (op.name, ins, ", ".join(attr_names) or "none"))
    return fn


# ---------------------------------------------------------------------------------------------
# hand-written helpers (as in MXNet's symbol.py)
# ---------------------------------------------------------------------------------------------
def _binary_helper(left, right, sym_op, sym_hint, scalar_op, scalar_hint, rscalar_op,
                   rscalar_hint, pyfn, fname):
    from numbers import Number
    if isinstance(left, Symbol) and isinstance(right, Symbol):
        return _create_op(sym_op, [left, right], {}, None, sym_hint)
    if isinstance(left, Symbol) and isinstance(right, Number):
        return _create_op(scalar_op, [left], {"scalar": right}, None, scalar_hint)
    if isinstance(left, Number) and isinstance(right, Symbol):
        return _create_op(rscalar_op, [right], {"scalar": left}, None, rscalar_hint)
    if isinstance(left, Number) and isinstance(right, Number):
        return pyfn(left, right)
    raise TypeError("%s: types (%s, %s) not supported"
                    % (fname, type(left).__name__, type(right).__name__))


def maximum(left, right):
    """Elementwise maximum of Symbols and/or scalars (``_maximum``/``_maximum_scalar``)."""
    return _binary_helper(left, right, "_maximum", "_maximum", "_maximum_scalar",
                          "_maximumscalar", "_maximum_scalar", "_maximumscalar",
                          lambda a, b: a if a > b else b, "maximum")


def minimum(left, right):
    """Elementwise minimum of Symbols and/or scalars (``_minimum``/``_minimum_scalar``)."""
    return _binary_helper(left, right, "_minimum", "_minimum", "_minimum_scalar",
                          "_minimumscalar", "_minimum_scalar", "_minimumscalar",
                          lambda a, b: a if a < b else b, "minimum")


def power(base, exp):
    """``base ** exp`` for Symbols and/or scalars."""
    return _binary_helper(base, exp, "_power", "_power", "_power_scalar", "_powerscalar",
                          "_rpower_scalar", "_rpower_scalar", lambda a, b: a ** b, "power")


pow = power  # noqa: A001  (MXNet exports both names)

_SKIP = {"maximum", "minimum", "power", "pow", "Variable", "var", "Group"}

# ``symbol._internal``: the same functions, where MXNet puts the underscore-named ones.
_internal = types.ModuleType(__name__.rsplit(".", 1)[0] + "._internal",
                             "Underscore-named operator functions (as mx.sym._internal).")


def _populate():
    made = {}
    for fname, op in all_names().items():
        if fname in _SKIP:
            continue
        fn = _make_op_function(op, fname)
        made[fname] = fn
        setattr(_internal, fname, fn)
    return made


# Kept out of this module's globals so op names such as ``sum`` or ``slice`` never shadow
# builtins here; ``symbol/__init__.py`` exports them and module ``__getattr__`` finds them.
OP_FUNCTIONS = _populate()
sys.modules.setdefault(_internal.__name__, _internal)


def __getattr__(name):
    try:
        return OP_FUNCTIONS[name]
    except KeyError:
        raise AttributeError("module %r has no attribute %r" % (__name__, name)) from None
