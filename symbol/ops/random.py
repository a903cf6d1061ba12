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


# -- *_like: the data's shape and dtype, scalar parameters ----------------------------------
def _like(op, draw, attrs, doc):
    def forward(a, ins, ctx):
        return [np.asarray(draw(ctx.rng, a, ins[0].shape)).astype(ins[0].dtype)]
    register(op, inputs=("data",), attrs=attrs,
             infer_shape=lambda a, ins: (ins, [ins[0]]),
             infer_type=lambda a, ins: (ins, [ins[0]]), forward=forward, gradient=None,
             differentiable=False, needs_rng=True, lowerable=False, doc=doc,
             samples=lambda rng: [Sample([rng.uniform(0, 1, (2, 3))])])


_like("_random_uniform_like", lambda g, a, s: g.uniform(a["low"], a["high"], size=s),
      {"low": Attr("float", 0.0), "high": Attr("float", 1.0)},
      "Uniform samples in [low, high) shaped like data.")
_like("_random_normal_like", lambda g, a, s: g.normal(a["loc"], a["scale"], size=s),
      {"loc": Attr("float", 0.0), "scale": Attr("float", 1.0)},
      "N(loc, scale^2) samples shaped like data.")
_like("_random_exponential_like", lambda g, a, s: g.exponential(1.0 / a["lam"], size=s),
      {"lam": Attr("float", 1.0)}, "Exponential samples (rate lam) shaped like data.")
_like("_random_gamma_like", lambda g, a, s: g.gamma(a["alpha"], a["beta"], size=s),
      {"alpha": Attr("float", 1.0), "beta": Attr("float", 1.0)},
      "Gamma samples (shape alpha, scale beta) shaped like data.")
_like("_random_poisson_like", lambda g, a, s: g.poisson(a["lam"], size=s),
      {"lam": Attr("float", 1.0)}, "Poisson samples (as floats) shaped like data.")


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


# -- _sample_multinomial / _shuffle ---------------------------------------------------------
_OP_MULTI = "_sample_multinomial"


def _multi_infer(attrs, ins):
    d = ins[0]
    if d is None:
        return ins, [None] * (2 if attrs["get_prob"] else 1)
    if len(d) < 1:
        raise MXNetError("%s: data must hold probabilities along its last axis, got shape ()"
                         % _OP_MULTI)
    s = tuple(d[:-1]) + tuple(attrs["shape"])
    s = s or (1,)
    return ins, [s, s] if attrs["get_prob"] else [s]


def _multi_type(attrs, ins):
    t = attrs["dtype"] or "int32"
    if t not in ("int32", "int64", "float16", "float32", "float64", "uint8"):
        raise MXNetError("%s: dtype must be an integer or float type, got %s" % (_OP_MULTI, t))
    return ins, [t, ins[0]] if attrs["get_prob"] else [t]


def _multi_fwd(attrs, ins, ctx):
    p = np.asarray(ins[0], dtype=np.float64)
    if p.ndim < 1 or p.shape[-1] == 0:
        raise MXNetError("%s: data must have a non-empty last axis, got shape %s"
                         % (_OP_MULTI, p.shape))
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise MXNetError("%s: probabilities must be finite and non-negative" % _OP_MULTI)
    extra = tuple(attrs["shape"])
    rows = p.reshape(-1, p.shape[-1])
    total = rows.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        raise MXNetError("%s: every distribution must have a positive total probability"
                         % _OP_MULTI)
    cdf = np.cumsum(rows / total, axis=1)
    cdf[:, -1] = 1.0
    n = int(np.prod(extra)) if extra else 1
    u = ctx.rng.uniform(0.0, 1.0, size=(rows.shape[0], n))
    idx = np.stack([np.searchsorted(cdf[r], u[r], side="right") for r in range(rows.shape[0])])
    idx = np.minimum(idx, p.shape[-1] - 1)
    shape = _multi_infer(attrs, [p.shape])[1][0]
    out = [idx.reshape(shape).astype(_multi_type(attrs, [None])[1][0])]
    if attrs["get_prob"]:
        lp = np.log(np.take_along_axis(rows, idx, axis=1))
        out.append(lp.reshape(shape).astype(ins[0].dtype))
    return out


def _multi_grad(F, attrs, ins, outs, og, ctx):
    # d log p[k] / d p[k] = 1 / p[k] at every sampled k (MXNet's rule: the total is not
    # differentiated)
    if not attrs["get_prob"]:
        return [F.zeros_like(ins[0])]
    return [F._sample_multinomial_grad(og[1], outs[0], ins[0], shape=attrs["shape"])]


def _multi_grad_np(attrs, g, idx, p):
    K = p.shape[-1]
    rows = p.reshape(-1, K).astype(np.float64)
    n = idx.size // rows.shape[0]
    ii = idx.reshape(rows.shape[0], n).astype(np.int64)
    gg = g.reshape(rows.shape[0], n).astype(np.float64)
    out = np.zeros_like(rows)
    for r in range(rows.shape[0]):
        np.add.at(out[r], ii[r], gg[r] / rows[r, ii[r]])
    return out.reshape(p.shape).astype(p.dtype)


register(_OP_MULTI, inputs=("data",),
         attrs={"shape": Attr("shape", ()), "get_prob": Attr("bool", False),
                "dtype": Attr("dtype", "int32")},
         aliases=("sample_multinomial",), infer_shape=_multi_infer, infer_type=_multi_type,
         forward=_multi_fwd, gradient=_multi_grad, needs_rng=True, lowerable=False,
         grad_check=False, second_order=False,
         num_outputs=lambda attrs: 2 if attrs["get_prob"] else 1,
         output_names=("sample", "log_prob"),
         samples=lambda rng: [Sample([np.array([[0.2, 0.3, 0.5], [0.6, 0.4, 0.0]])], {"shape": (4,)}),
                              Sample([np.array([0.1, 0.9])], {"get_prob": True})],
         doc="Samples indices from the categorical distributions along data's last axis "
             "(probabilities, normalised per row); output data.shape[:-1] + shape; with "
             "get_prob also the log-probability of each sample (differentiable in data).")
register("_sample_multinomial_grad", inputs=("ograd", "sample", "data"),
         attrs={"shape": Attr("shape", ())},
         infer_shape=lambda attrs, ins: (ins, [ins[2]]),
         infer_type=lambda attrs, ins: (ins, [ins[2]]),
         forward=lambda attrs, ins, ctx: [_multi_grad_np(attrs, ins[0], ins[1], ins[2])],
         differentiable=False, lowerable=False,
         samples=lambda rng: [Sample([rng.uniform(-1, 1, (2, 3)), np.array([[0, 2, 2], [1, 1, 0]]),
                                      rng.uniform(0.2, 1.0, (2, 4))], {"shape": (3,)})],
         doc="_sample_multinomial's data gradient for the log-probability output.")


def _shuffle_fwd(attrs, ins, ctx):
    x = ins[0]
    if x.ndim == 0:
        return [x.copy()]
    return [np.ascontiguousarray(x[ctx.rng.permutation(x.shape[0])])]


register("_shuffle", inputs=("data",), aliases=("shuffle",),
         infer_shape=lambda attrs, ins: (ins, [ins[0]]), forward=_shuffle_fwd,
         differentiable=False, needs_rng=True, lowerable=False,
         samples=lambda rng: [Sample([rng.uniform(-1, 1, (5, 2))])],
         doc="A random permutation of data along its first axis.")
