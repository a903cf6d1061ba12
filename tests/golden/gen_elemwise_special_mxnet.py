"""Records tests/golden/elemwise_special_mxnet.json with real MXNet 1.9.1:

    /work/mxenv/bin/python tests/golden/gen_elemwise_special_mxnet.py > tests/golden/elemwise_special_mxnet.json

Every unary, binary and scalar elementwise op of symbol/ops/elemwise.py (the lists below; the
test checks they are complete) at +-inf, nan, +-1e30, +-0 and a few ordinary numbers, float32
and float64: the forward values and the gradient for a head gradient of ones.  An op MXNet
refuses is recorded as the string "error", one it does not have as "missing".  Used by tests/test_elemwise_special.py."""
import json
import math

import mxnet as mx
import numpy as np

inf, nan = math.inf, math.nan
V = [inf, -inf, nan, 1e30, -1e30, 0.0, -0.0, 1.0, -1.0, 0.5, 2.5, 100.0, -100.0]
VB = [inf, -inf, nan, 1e30, -1e30, 0.0, -0.0, 1.0, -2.0]
SCALARS = [2.0, 0.0, -0.5]
UNARY = ['_digamma', 'abs', 'arccos', 'arccosh', 'arcsin', 'arcsinh', 'arctan', 'arctanh', 'cbrt',
         'ceil', 'cos', 'cosh', 'degrees', 'erfinv', 'exp', 'expm1', 'fix', 'floor', 'gamma',
         'gammaln', 'log', 'log10', 'log1p', 'log2', 'logical_not', 'negative', 'radians', 'rcbrt',
         'reciprocal', 'relu', 'rint', 'round', 'rsqrt', 'sigmoid', 'sign', 'sin', 'sinh',
         'softsign', 'sqrt', 'square', 'tan', 'tanh', 'trunc']
BINARY = ['_equal', '_greater', '_greater_equal', '_lesser', '_lesser_equal', '_maximum', '_minimum',
          '_mod', '_not_equal', '_power', 'broadcast_add', 'broadcast_div', 'broadcast_equal',
          'broadcast_greater', 'broadcast_greater_equal', 'broadcast_lesser',
          'broadcast_lesser_equal', 'broadcast_maximum', 'broadcast_minimum', 'broadcast_mod',
          'broadcast_mul', 'broadcast_not_equal', 'broadcast_power', 'broadcast_sub',
          'elemwise_add', 'elemwise_div', 'elemwise_mul', 'elemwise_sub']
SCALAR = ['_div_scalar', '_equal_scalar', '_greater_equal_scalar', '_greater_scalar',
          '_lesser_equal_scalar', '_lesser_scalar', '_logical_and_scalar', '_logical_or_scalar',
          '_logical_xor_scalar', '_maximum_scalar', '_minimum_scalar',
          '_minus_scalar', '_mod_scalar', '_mul_scalar', '_not_equal_scalar', '_plus_scalar',
          '_power_scalar', '_rdiv_scalar', '_rminus_scalar', '_rmod_scalar', '_rpower_scalar']
ACT = {"Activation:%s" % t: ("Activation", {"act_type": t})
       for t in ("relu", "sigmoid", "tanh", "softrelu", "softsign")}
ACT.update({"LeakyReLU:%s" % t: ("LeakyReLU", dict({"act_type": t}, **({"slope": 0.25} if t in ("leaky", "elu") else {})))
            for t in ("leaky", "elu", "selu", "gelu")})
ACT["clip"] = ("clip", {"a_min": -2.0, "a_max": 2.0})


def op(name):
    f = getattr(mx.nd, name, None) or getattr(mx.nd._internal, name, None)
    return f


def run(fn, arrays):
    if fn is None:
        return "missing"
    xs = [mx.nd.array(a, dtype=a.dtype) for a in arrays]
    for x in xs:
        x.attach_grad()
    try:
        with mx.autograd.record():
            y = fn(*xs)
        y.backward(mx.nd.ones(y.shape, dtype=y.dtype))
        return [y.asnumpy().tolist()] + [x.grad.asnumpy().tolist() for x in xs]
    except Exception:       # noqa: BLE001 -- recorded as refused
        return "error"


def enc(v):
    if isinstance(v, list):
        return [enc(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return repr(v)          # 'nan', 'inf', '-inf'
    return v


out = {"_comment": "recorded with MXNet 1.9.1 (pip mxnet==1.9.1) by "
                   "tests/golden/gen_elemwise_special_mxnet.py; non-finite numbers as strings",
       "V": enc(V), "VB": enc(VB), "SCALARS": SCALARS}
for dt in ("float32", "float64"):
    x = np.array(V, dtype=dt)
    for name in UNARY:
        out["%s:%s" % (name, dt)] = enc(run(op(name), [x]))
    for key, (name, kw) in ACT.items():
        out["%s:%s" % (key, dt)] = enc(run(lambda a, _n=name, _k=kw: getattr(mx.nd, _n)(a, **_k), [x]))
    a = np.array([p for p in VB for _q in VB], dtype=dt)
    b = np.array([q for _p in VB for q in VB], dtype=dt)
    for name in BINARY:
        out["%s:%s" % (name, dt)] = enc(run(op(name), [a, b]))
    for name in SCALAR:
        for s in SCALARS:
            out["%s(%s):%s" % (name, s, dt)] = enc(run(
                lambda t, _n=name, _s=s: op(_n)(t, scalar=_s), [x]))
print("{\n" + ",\n".join("%s: %s" % (json.dumps(k), json.dumps(v)) for k, v in out.items()) + "\n}")
