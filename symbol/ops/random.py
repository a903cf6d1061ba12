"""Random sampling operators: MXNet 1.x's legacy ``_random_*`` ops (``nd.random_normal``,
``nd.uniform``, ``sym.random_uniform`` ...) and the ``_sample_*`` ops whose distribution
parameters are arrays.

They draw from the generator seeded by ``mx.random.seed`` (``ctx.rng``), have no inputs
(``_random_*``) or parameter-array inputs (``_sample_*``), and no gradient: MXNet's random ops
are not differentiable.  A legacy op needs ``shape``: with the default ``()`` it raises, as
MXNet's shape inference does.
"""
import numpy as np

from ..base import MXNetError
from ..registry import Attr, register, Sample

_DTYPES = (None, "float16", "float32", "float64")


def _dtype(attrs, default="float32"):
    return attrs["dtype"] if attrs.get("dtype") is not None else default


def _check_dtype(op, attrs, allowed=_DTYPES):
    if attrs.get("dtype") not in allowed:
        raise MXNetError("%s: dtype must be one of %s, got %s" % (op, [d for d in allowed if d], attrs["dtype"]))


def _legacy_shape(op):
    def infer(attrs, ins):
        shape = attrs["shape"]
        if not shape or any(d <= 0 for d in shape):
            raise MXNetError("%s: shape must be given and positive, got %s (the legacy random "
                             "ops have no default shape)" % (op, tuple(shape)))
        return ins, [tuple(shape)]
    return infer


def _legacy_type(op, allowed=_DTYPES, default="float32"):
    def infer(attrs, ins):
        _check_dtype(op, attrs, allowed)
        return ins, [_dtype(attrs, default)]
    return infer


def _legacy(op, draw, attrs, allowed=_DTYPES, default="float32", aliases=(), doc="",
            sample_attrs=None):
    def forward(a, ins, ctx):
        _legacy_shape(op)(a, ins)
        return [np.asarray(draw(ctx.rng, a, tuple(a["shape"]))).astype(_dtype(a, default))]
    common = {"shape": Attr("shape", ()), "ctx": Attr("str", ""), "dtype": Attr("dtype", None)}
    common.update(attrs)
    register(op, inputs=(), attrs=common, infer_shape=_legacy_shape(op),
             infer_type=_legacy_type(op, allowed, default), forward=forward, gradient=None,
             differentiable=False, needs_rng=True, lowerable=False, aliases=aliases, doc=doc,
             samples=lambda rng: [Sample([], dict({"shape": (2, 3)}, **(sample_attrs or {})))])


_legacy("_random_uniform", lambda g, a, s: g.uniform(a["low"], a["high"], size=s),
        {"low": Attr("float", 0.0), "high": Attr("float", 1.0)},
        aliases=("random_uniform", "uniform"),
        doc="Samples uniformly from [low, high) (MXNet's legacy uniform / random_uniform).")
_legacy("_random_normal", lambda g, a, s: g.normal(a["loc"], a["scale"], size=s),
        {"loc": Attr("float", 0.0), "scale": Attr("float", 1.0)},
        aliases=("random_normal", "normal"),
        doc="Samples from N(loc, scale^2) (MXNet's legacy normal / random_normal).")
_legacy("_random_exponential", lambda g, a, s: g.exponential(1.0 / a["lam"], size=s),
        {"lam": Attr("float", 1.0)}, aliases=("random_exponential",),
        doc="Samples from an exponential distribution with rate lam.")
_legacy("_random_gamma", lambda g, a, s: g.gamma(a["alpha"], a["beta"], size=s),
        {"alpha": Attr("float", 1.0), "beta": Attr("float", 1.0)}, aliases=("random_gamma",),
        doc="Samples from a gamma distribution with shape alpha and scale beta.")
_legacy("_random_poisson", lambda g, a, s: g.poisson(a["lam"], size=s),
        {"lam": Attr("float", 1.0)}, aliases=("random_poisson",),
        doc="Samples from a Poisson distribution (as floats).")
_legacy("_random_randint", lambda g, a, s: g.integers(a["low"], a["high"], size=s),
        {"low": Attr("int"), "high": Attr("int")}, allowed=(None, "int32", "int64"),
        default="int32", doc="Samples integers uniformly from [low, high).",
        sample_attrs={"low": 0, "high": 5})


# -- parameters given as arrays: output shape = param.shape + shape -------------------------
def _sample_infer(op, names):
    def infer(attrs, ins):
        known = [s for s in ins if s is not None]
        if not known:
            return ins, [None]
        p = known[0]
        for n, s in zip(names, ins):
            if s is not None and tuple(s) != tuple(p):
                raise MXNetError("%s: parameter %s has shape %s, expected %s (all parameter "
                                 "arrays must have one shape)" % (op, n, tuple(s), tuple(p)))
        return [tuple(p)] * len(ins), [tuple(p) + tuple(attrs["shape"])]
    return infer


def _sample_type(op):
    def infer(attrs, ins):
        _check_dtype(op, attrs)
        known = [t for t in ins if t is not None]
        return [known[0] if known else None] * len(ins), [_dtype(attrs)]
    return infer


def _sample(op, names, draw, aliases=(), doc=""):
    def forward(a, ins, ctx):
        extra = tuple(a["shape"])
        params = [np.asarray(p, dtype=np.float64).reshape(p.shape + (1,) * len(extra))
                  for p in ins]
        size = tuple(ins[0].shape) + extra
        return [np.asarray(draw(ctx.rng, params, size)).astype(_dtype(a))]
    register(op, inputs=names, attrs={"shape": Attr("shape", ()), "dtype": Attr("dtype", None)},
             infer_shape=_sample_infer(op, names), infer_type=_sample_type(op), forward=forward,
             gradient=None, differentiable=False, needs_rng=True, lowerable=False,
             aliases=aliases, doc=doc,
             samples=lambda rng: [Sample([rng.uniform(0, 1, (2,)), rng.uniform(1, 2, (2,))],
                                         {"shape": (3,)})])


_sample("_sample_uniform", ("low", "high"),
        lambda g, p, s: g.uniform(p[0], p[1], size=s), aliases=("sample_uniform",),
        doc="Per-element uniform samples in [low[i], high[i]); output shape low.shape + shape.")
_sample("_sample_normal", ("mu", "sigma"),
        lambda g, p, s: g.normal(p[0], p[1], size=s), aliases=("sample_normal",),
        doc="Per-element normal samples N(mu[i], sigma[i]^2); output shape mu.shape + shape.")
