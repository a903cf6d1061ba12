"""MXNet 1.x symbolic-API programs run unchanged after ``agjit.alias_as_mxnet()``: the docs'
linear-regression Module tutorial, an example/module/mnist_mlp.py-style MLP on local data
(scikit-learn's digits), and a custom softmax operator trained in a Module and in autograd."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROGRAMS = r'''
import json, logging
import numpy as np
import mxnet as mx
results = {}

# 1. "Linear regression" tutorial (MXNet docs, Module API)
np.random.seed(0)
mx.random.seed(0)
train_data = np.random.uniform(0, 1, [100, 2])
train_label = np.array([train_data[i][0] + 2 * train_data[i][1] for i in range(100)])
eval_data = np.array([[7, 2], [6, 10], [12, 2]])
eval_label = np.array([11, 26, 16])
batch_size = 1
train_iter = mx.io.NDArrayIter(train_data, train_label, batch_size, shuffle=True,
                               label_name='lin_reg_label')
eval_iter = mx.io.NDArrayIter(eval_data, eval_label, batch_size, shuffle=False)
X = mx.sym.Variable('data')
Y = mx.symbol.Variable('lin_reg_label')
fully_connected_layer = mx.sym.FullyConnected(data=X, name='fc1', num_hidden=1)
lro = mx.sym.LinearRegressionOutput(data=fully_connected_layer, label=Y, name="lro")
model = mx.mod.Module(symbol=lro, data_names=['data'], label_names=['lin_reg_label'])
model.fit(train_iter, eval_iter, optimizer_params={'learning_rate': 0.005, 'momentum': 0.9},
          num_epoch=20, eval_metric='mse', batch_end_callback=mx.callback.Speedometer(batch_size, 2))
results["linreg_weight"] = model.get_params()[0]['fc1_weight'].asnumpy().tolist()
results["linreg_mse"] = model.score(eval_iter, mx.metric.MSE())[0][1]

# 2. example/module/mnist_mlp.py style, on the digits data that scikit-learn ships
from sklearn.datasets import load_digits
digits = load_digits()
Xd = (digits.data / 16.0).astype(np.float32)
yd = digits.target.astype(np.float32)
train = mx.io.NDArrayIter(Xd[:1400], yd[:1400], batch_size=50, shuffle=True)
val = mx.io.NDArrayIter(Xd[1400:], yd[1400:], batch_size=50)
data = mx.symbol.Variable('data')
fc1 = mx.symbol.FullyConnected(data, name='fc1', num_hidden=64)
act1 = mx.symbol.Activation(fc1, name='relu1', act_type="relu")
fc2 = mx.symbol.FullyConnected(act1, name='fc2', num_hidden=10)
mlp = mx.symbol.SoftmaxOutput(fc2, name='softmax')
mod = mx.mod.Module(mlp)
mod.fit(train, eval_data=val, optimizer='sgd',
        optimizer_params={'learning_rate': 0.1, 'momentum': 0.9, 'wd': 1e-4},
        initializer=mx.init.Xavier(), num_epoch=6, eval_metric='acc')
results["mlp_val_acc"] = mod.score(val, 'acc')[0][1]
results["mlp_predict_shape"] = list(mod.predict(val).shape)

# 3. a custom softmax operator (MXNet's example/numpy-ops) trained in a Module and in autograd
class Softmax(mx.operator.CustomOp):
    def forward(self, is_train, req, in_data, out_data, aux):
        x = in_data[0].asnumpy()
        y = np.exp(x - x.max(axis=1).reshape((x.shape[0], 1)))
        y /= y.sum(axis=1).reshape((x.shape[0], 1))
        self.assign(out_data[0], req[0], mx.nd.array(y))

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        l = in_data[1].asnumpy().ravel().astype(np.int64)
        y = out_data[0].asnumpy()
        y[np.arange(l.shape[0]), l] -= 1.0
        self.assign(in_grad[0], req[0], mx.nd.array(y))

@mx.operator.register("softmax_prog")
class SoftmaxProp(mx.operator.CustomOpProp):
    def __init__(self):
        super(SoftmaxProp, self).__init__(need_top_grad=False)
    def list_arguments(self):
        return ['data', 'label']
    def list_outputs(self):
        return ['output']
    def infer_shape(self, in_shape):
        return [in_shape[0], (in_shape[0][0],)], [in_shape[0]], []
    def create_operator(self, ctx, shapes, dtypes):
        return Softmax()

net = mx.symbol.Custom(fc2, name='softmax', op_type='softmax_prog')
cmod = mx.mod.Module(net)
train.reset()
cmod.fit(train, eval_data=val, optimizer='sgd', optimizer_params={'learning_rate': 0.1 / 50,
         'rescale_grad': 1.0}, initializer=mx.init.Xavier(), num_epoch=4, eval_metric='acc')
results["custom_module_acc"] = cmod.score(val, 'acc')[0][1]

w = mx.nd.random.normal(scale=0.1, shape=(10, 64))
w.attach_grad()
xb, yb = mx.nd.array(Xd[:200]), mx.nd.array(yd[:200])
for step in range(30):
    with mx.autograd.record():
        out = mx.nd.Custom(mx.nd.dot(xb, w, transpose_b=True), yb, op_type='softmax_prog')
    out.backward()
    w[:] = w - 0.5 / 200 * w.grad
results["custom_autograd_acc"] = float((out.asnumpy().argmax(1) == yd[:200]).mean())
print("RESULTS " + json.dumps(results))
'''


def test_mxnet_symbolic_programs_run_unchanged(tmp_path):
    prog = tmp_path / "programs.py"
    prog.write_text(PROGRAMS)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    r = subprocess.run([sys.executable, "-c", "import agjit, runpy; agjit.alias_as_mxnet(); "
                        "runpy.run_path(%r, run_name='__main__')" % str(prog)],
                       capture_output=True, text=True, timeout=400, cwd=str(tmp_path), env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads([ln for ln in r.stdout.splitlines() if ln.startswith("RESULTS ")][-1][8:])
    w = res["linreg_weight"][0]
    assert abs(w[0] - 1) < 0.1 and abs(w[1] - 2) < 0.1, w
    assert res["linreg_mse"] < 0.05
    assert res["mlp_val_acc"] > 0.85 and res["mlp_predict_shape"] == [397, 10]
    assert res["custom_module_acc"] > 0.8
    assert res["custom_autograd_acc"] > 0.8
