"""Records tests/golden/special_values_mxnet.json with real MXNet 1.9.1:

    /work/mxenv/bin/python tests/golden/gen_special_values_mxnet.py > tests/golden/special_values_mxnet.json

Used by tests/test_special_values.py (agjit eager and compiled must give these numbers)."""
import mxnet as mx, json
inf, nan = float('inf'), float('nan')
X = [float("-inf"), float("inf"), float("nan"), -0.0, 0.0, 0.5, 1.5, 2.5, -0.5, -2.5, 3.5, -3.5,
     0.49999997, 3.7, -3.7, 1e30, -1e30, 1e-40, 100.0, -100.0, 1000.0, -1000.0]
out = {}
for dt in ("float32", "float64"):
    x = mx.nd.array(X, dtype=dt)
    for name in ["relu", "floor", "ceil", "round", "rint", "fix", "trunc", "sign", "sigmoid", "tanh", "abs"]:
        out[name + ":" + dt] = getattr(mx.nd, name)(x).asnumpy().tolist()
    out["pow_half:" + dt] = (x ** 0.5).asnumpy().tolist()
    out["pow_1_5:" + dt] = (x ** 1.5).asnumpy().tolist()
    out["broadcast_power_half:" + dt] = mx.nd.broadcast_power(x, mx.nd.full((1,), 0.5, dtype=dt)).asnumpy().tolist()
    xg = x.copy()
    xg.attach_grad()
    with mx.autograd.record():
        y = xg ** 1.5
    y.backward()
    out["grad_pow_1_5:" + dt] = xg.grad.asnumpy().tolist()
    for t in ["sigmoid", "tanh", "softrelu"]:
        out["Act_" + t + ":" + dt] = mx.nd.Activation(x, act_type=t).asnumpy().tolist()
a = [float("nan"), 1.0, 2.0, float("nan"), -float("inf"), 0.0]
b = [1.0, float("nan"), 0.0, float("nan"), 1.0, -0.0]
ma = [inf, -inf, nan, 1.0, -1.0, 5.0, -5.0, 0.0, 3.0, inf, 2.5, -2.5, 7.0]
mb = [0.0, 0.0, 0.0, 0.0, inf, -inf, inf, 2.0, nan, 2.0, -1.0, 1.0, -3.0]
for dt in ("float32", "float64"):
    MA, MB = mx.nd.array(ma, dtype=dt), mx.nd.array(mb, dtype=dt)
    out["broadcast_mod:" + dt] = mx.nd.broadcast_mod(MA, MB).asnumpy().tolist()
    out["mod_scalar:" + dt] = (MA % 2.0).asnumpy().tolist()
    out["mod_zero:" + dt] = (MA % 0.0).asnumpy().tolist()
    out["rmod_scalar:" + dt] = (3.0 % MA).asnumpy().tolist()
A, B = mx.nd.array(a), mx.nd.array(b)
out["broadcast_maximum"] = mx.nd.broadcast_maximum(A, B).asnumpy().tolist()
out["broadcast_minimum"] = mx.nd.broadcast_minimum(A, B).asnumpy().tolist()
out["maximum_scalar"] = mx.nd.maximum(A, 1.0).asnumpy().tolist()
out["minimum_scalar"] = mx.nd.minimum(A, 1.0).asnumpy().tolist()
out["clip"] = mx.nd.clip(A, 0.5, 1.5).asnumpy().tolist()
A.attach_grad(); B.attach_grad()
with mx.autograd.record():
    y = mx.nd.broadcast_maximum(A, B)
y.backward()
out["grad_bmax"] = [A.grad.asnumpy().tolist(), B.grad.asnumpy().tolist()]
out = {"_comment": "recorded with MXNet 1.9.1 (pip mxnet==1.9.1) by tests/golden/gen_special_values_mxnet.py", **out}
print("{\n" + ",\n".join("%s: %s" % (json.dumps(k), json.dumps(v)) for k, v in out.items()) + "\n}")
