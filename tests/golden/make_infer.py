"""Shape and dtype inference cases, recorded from real MXNet 1.9.1 into
tests/golden/infer.json:  /work/mxenv/bin/python tests/golden/make_infer.py tests/golden/infer.json

The same program runs against agjit in tests/test_infer_mxnet.py.  Each case builds a small
graph and records what ``infer_shape`` / ``infer_shape_partial`` / ``infer_type`` return
(per argument name, output and auxiliary state), the warnings they emit, or the class of the
error they raise.  The cases cover MXNet's own tests/python/unittest/test_infer_shape.py and
test_infer_type.py behaviours (rewritten here with other values) plus inference in both
directions (an input from an output or label, unknown dimensions filled in) op by op.
"""
import json
import sys
import warnings

import numpy as np

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


class Recorder:
    def __init__(self, mx):
        self.mx = mx
        self.out = []

    def _run(self, kind, net, args, kwargs):
        rec = {"kind": kind}
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            try:
                res = getattr(net, kind)(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 -- the class is the answer
                rec["error"] = type(e).__name__
                self.out.append(rec)
                return
        rec["warn"] = [str(x.message) for x in w if issubclass(x.category, UserWarning)]
        a, o, x = res
        conv = (lambda s: None if s is None else list(s)) if "shape" in kind else \
            (lambda t: None if t is None else np.dtype(t).name)
        if a is None:
            rec["args"] = rec["outs"] = rec["aux"] = None
        else:
            rec["args"] = dict(zip(net.list_arguments(), [conv(s) for s in a]))
            rec["outs"] = [conv(s) for s in o]
            rec["aux"] = dict(zip(net.list_auxiliary_states(), [conv(s) for s in x]))
        self.out.append(rec)

    def shape(self, net, *args, **kwargs):
        self._run("infer_shape", net, args, kwargs)

    def partial(self, net, *args, **kwargs):
        self._run("infer_shape_partial", net, args, kwargs)

    def type(self, net, *args, **kwargs):
        self._run("infer_type", net, args, kwargs)

    def type_partial(self, net, *args, **kwargs):
        self._run("infer_type_partial", net, args, kwargs)


def V(mx, name, shape=None, **kw):
    return mx.sym.Variable(name, shape=shape, **kw) if shape is not None else mx.sym.Variable(name, **kw)


# -- MXNet's test_infer_shape behaviours ---------------------------------------------------------
def _mlp(mx):
    d = mx.sym.Variable("data")
    h = mx.sym.FullyConnected(d, name="fc1", num_hidden=64)
    h = mx.sym.Activation(h, act_type="relu")
    return mx.sym.FullyConnected(h, name="fc2", num_hidden=7)


@case
def mlp_forward(mx, r):
    r.shape(_mlp(mx), data=(20, 30))
    r.type(_mlp(mx), data=np.float64)


@case
def mlp_inconsistent_weight(mx, r):
    r.shape(_mlp(mx), data=(20, 30), fc1_weight=(2, 30))
    r.shape(_mlp(mx), data=(20, 30), fc2_bias=(8,))


@case
def identity_like_rhs_backward(mx, r):
    w = mx.sym.Variable("weight")
    sh = mx.sym.Variable("wshift", shape=(1,))
    wt = mx.sym._internal._identity_with_attr_like_rhs(mx.sym.broadcast_add(w, sh), w)
    net = mx.sym.FullyConnected(mx.sym.Variable("data"), weight=wt, num_hidden=6, no_bias=True)
    r.shape(net, data=(3, 40))
    r.partial(net, data=(3, 40))


@case
def elemwise_fill(mx, r):
    net = V(mx, "a", (0, 4)) + V(mx, "b", (9, 0))
    r.shape(net)
    r.partial(net)
    net = V(mx, "a", (0, 4, 0)) * V(mx, "b", (2, 0, 0))
    r.shape(net)
    r.partial(net)


@case
def fc_backward_from_sum(mx, r):
    fc = mx.sym.FullyConnected(V(mx, "a", (0, 6)), num_hidden=13, name="fc")
    net = fc + V(mx, "c", (4, 0))
    r.shape(net)
    r.partial(net)


@case
def fc_flatten_false(mx, r):
    fc = mx.sym.FullyConnected(V(mx, "a", (0, 3, 6)), num_hidden=5, flatten=False, name="fc")
    net = fc + V(mx, "c", (2, 0, 0))
    r.partial(net)
    fc = mx.sym.FullyConnected(V(mx, "a", (0, 3, 6)), num_hidden=5, name="fc")
    net = fc + V(mx, "c", (2, 0))
    r.partial(net)


@case
def slicechannel_backward(mx, r):
    parts = mx.sym.SliceChannel(V(mx, "a", (0, 6)), num_outputs=6, axis=1, squeeze_axis=True)
    net = parts[2] + V(mx, "c", (8,))
    r.shape(net)
    parts = mx.sym.SliceChannel(V(mx, "a", (0, 12, 0)), num_outputs=4)
    net = parts[3] + V(mx, "c", (2, 3, 7))
    r.shape(net)
    r.partial(net)


@case
def convolution_backward(mx, r):
    conv = mx.sym.Convolution(V(mx, "a", (0, 3, 0, 0)), num_filter=8, kernel=(3, 3), pad=(1, 1), name="cv")
    net = conv + V(mx, "c", (2, 8, 10, 12))
    r.shape(net)
    conv = mx.sym.Convolution(V(mx, "a", (0, 3, 0, 0)), num_filter=8, kernel=(3, 3), stride=(2, 2), name="cv")
    net = conv + V(mx, "c", (2, 8, 5, 5))
    r.partial(net)
    conv = mx.sym.Convolution(V(mx, "a", (0, 3, 9, 9)), num_filter=8, kernel=(3, 3), name="cv")
    r.partial(conv)


@case
def concat_backward(mx, r):
    cat = mx.sym.Concat(V(mx, "a", (0, 4)), V(mx, "b", (0, 3)), num_args=2, dim=1)
    net = V(mx, "d", (5, 0)) + cat
    r.shape(net)
    cat = mx.sym.Concat(V(mx, "a", (0, 4)), V(mx, "b"), num_args=2, dim=1)
    net = V(mx, "d", (5, 9)) + cat
    r.shape(net)
    r.partial(net)
    cat = mx.sym.Concat(V(mx, "a", (2, 0)), V(mx, "b", (2, 3)), num_args=2, dim=0)
    r.partial(cat)


@case
def type_fc(mx, r):
    net = mx.sym.FullyConnected(mx.sym.Variable("data"), name="fc1", num_hidden=10)
    r.type(net, data=np.float32)
    r.type(net, data=np.float16)
    r.type(net, fc1_weight=np.float64)


@case
def shape_unknown(mx, r):
    net = mx.sym.sin(mx.sym.var("data"))
    r.partial(net)
    r.shape(net)


@case
def dot_partial(mx, r):
    z = mx.sym.dot(mx.sym.Variable("x"), mx.sym.Variable("y"))
    r.partial(z, x=(0, 2, 6), y=(6, 3))
    r.partial(z, x=(0, 6), y=(6, 0))
    r.partial(z, x=(4, 6))
    z = mx.sym.dot(mx.sym.Variable("x"), mx.sym.Variable("y"), transpose_a=True)
    r.partial(z, x=(6, 0), y=(6, 3))


@case
def batch_dot_partial(mx, r):
    z = mx.sym.batch_dot(mx.sym.Variable("x"), mx.sym.Variable("y"))
    r.partial(z, x=(0, 2, 6), y=(0, 6, 3))
    r.partial(z, x=(0, 2, 6), y=(0, 0, 3))
    r.partial(z, x=(4, 2, 6), y=(0, 6, 3))


@case
def embedding_partial(mx, r):
    y = mx.sym.Embedding(mx.sym.Variable("x"), mx.sym.Variable("w"), input_dim=50, output_dim=4)
    r.partial(y, x=(0, 7), w=(50, 4))
    r.partial(y, x=(0, 7))
    r.shape(y, x=(3, 7))


@case
def transpose_partial(mx, r):
    y = mx.sym.transpose(mx.sym.Variable("x"), axes=(0, 2, 3, 1))
    r.partial(y, x=(0, 3, 16, 8))
    y = mx.sym.transpose(mx.sym.Variable("x"))
    r.partial(y, x=(0, 5))


@case
def pick_partial(mx, r):
    y = mx.sym.pick(mx.sym.Variable("x"), mx.sym.Variable("index"), axis=1)
    r.partial(y, x=(0, 4, 2), index=(0, 2))
    r.partial(y, x=(3, 4, 2))


@case
def where_partial(mx, r):
    w = mx.sym.where(mx.sym.Variable("cond"), mx.sym.Variable("x"), mx.sym.Variable("y"))
    r.partial(w, cond=(0, 3), x=(0, 3), y=(0, 3))
    r.partial(w, cond=(0,), x=(3, 3), y=(3, 3))
    r.partial(w, cond=(3,), x=(3, 2), y=(3, 0))
    r.partial(w, cond=(3, 2), x=(3, 2))


# -- backward inference op by op ---------------------------------------------------------------
@case
def unary_backward(mx, r):
    for fn in ("sin", "relu", "sigmoid", "exp", "negative", "square", "BlockGrad", "identity",
               "zeros_like"):
        net = getattr(mx.sym, fn)(mx.sym.Variable("x")) + V(mx, "c", (3, 4))
        r.shape(net)


@case
def activation_dropout_backward(mx, r):
    x = mx.sym.Variable("x")
    net = mx.sym.Dropout(mx.sym.Activation(x, act_type="tanh"), p=0.3) + V(mx, "c", (2, 5))
    r.shape(net)
    net = mx.sym.LeakyReLU(x, act_type="leaky") * V(mx, "c", (2, 5))
    r.shape(net)


@case
def scalar_ops_backward(mx, r):
    x = mx.sym.Variable("x")
    net = (x * 2 + 1) / 3 - V(mx, "c", (6,))
    r.shape(net)
    net = mx.sym.clip(x, 0, 1) + V(mx, "c", (2, 2))
    r.shape(net)


@case
def broadcast_partial(mx, r):
    net = mx.sym.broadcast_add(mx.sym.Variable("a"), mx.sym.Variable("b"))
    r.partial(net, a=(2, 1, 4), b=(3, 1))
    r.partial(net, a=(2, 0, 4), b=(3, 1))
    r.partial(net, a=(2, 3))
    r.shape(net, a=(2, 3), b=(4, 3))
    net = mx.sym.broadcast_mul(mx.sym.Variable("a"), mx.sym.Variable("b")) + V(mx, "c", (2, 3))
    r.partial(net, a=(2, 1))
    net = mx.sym.broadcast_mul(V(mx, "a", (0, 3)), V(mx, "b", (1, 3)))
    r.partial(net)


@case
def add_n_backward(mx, r):
    net = mx.sym.add_n(mx.sym.Variable("a"), V(mx, "b", (0, 3)), V(mx, "c", (4, 0)))
    r.shape(net)
    net = mx.sym.ElementWiseSum(mx.sym.Variable("a"), mx.sym.Variable("b"), num_args=2) \
        + V(mx, "c", (5,))
    r.shape(net)


@case
def batchnorm_backward(mx, r):
    bn = mx.sym.BatchNorm(mx.sym.Variable("x"), name="bn")
    net = bn + V(mx, "c", (2, 3, 4, 4))
    r.shape(net)
    r.shape(bn, x=(2, 5))
    r.shape(bn, bn_gamma=(3,))
    r.partial(bn, bn_gamma=(3,))
    bn = mx.sym.BatchNorm(V(mx, "x", (0, 3, 0, 0)), name="bn", axis=1)
    r.partial(bn)
    r.shape(mx.sym.BatchNorm(mx.sym.Variable("x"), name="bn"), x=(2, 3), bn_moving_var=(4,))


@case
def layernorm_instancenorm(mx, r):
    ln = mx.sym.LayerNorm(mx.sym.Variable("x"), name="ln")
    r.shape(ln, x=(2, 3, 5))
    r.shape(ln + V(mx, "c", (2, 6)))
    inn = mx.sym.InstanceNorm(mx.sym.Variable("x"), name="inn")
    r.shape(inn, x=(2, 3, 5))


@case
def reshape_backward(mx, r):
    x = mx.sym.Variable("x")
    net = mx.sym.Reshape(x, shape=(0, -1)) + V(mx, "c", (2, 12))
    r.shape(net)
    r.partial(net)
    net = mx.sym.Reshape(x, shape=(-1, 4))
    r.partial(net, x=(0, 6))
    r.shape(net, x=(3, 6))
    r.shape(mx.sym.Reshape(x, shape=(5, -1)), x=(3, 6))
    net = mx.sym.Reshape(V(mx, "x", (2, 0)), shape=(2, 3, 4)) + V(mx, "c", (2, 3, 4))
    r.partial(net)
    net = mx.sym.Flatten(x) + V(mx, "c", (2, 12))
    r.partial(net)
    r.partial(mx.sym.Flatten(x), x=(0, 3, 4))


@case
def softmax_output_label(mx, r):
    fc = mx.sym.FullyConnected(mx.sym.Variable("data"), num_hidden=10, name="fc")
    net = mx.sym.SoftmaxOutput(fc, name="sm")
    r.shape(net, data=(16, 20))
    r.shape(net, sm_label=(16,), data=(0, 20))
    r.partial(net, sm_label=(16,))
    r.type(net, data=np.float64)
    net = mx.sym.SoftmaxOutput(fc, name="sm", multi_output=True)
    r.shape(net, data=(16, 20))
    net = mx.sym.SoftmaxOutput(mx.sym.Variable("data"), name="sm", multi_output=True)
    r.shape(net, data=(4, 3, 5))
    net = mx.sym.SoftmaxOutput(mx.sym.Variable("data"), name="sm", preserve_shape=True)
    r.shape(net, data=(4, 3, 5))
    r.shape(net, sm_label=(4, 3))
    r.shape(mx.sym.SoftmaxOutput(mx.sym.Variable("data"), name="sm"), data=(4, 3), sm_label=(5,))


@case
def regression_outputs(mx, r):
    for fn in ("LinearRegressionOutput", "LogisticRegressionOutput", "MAERegressionOutput"):
        net = getattr(mx.sym, fn)(mx.sym.Variable("data"), name="lr")
        r.shape(net, data=(4, 3))
        r.shape(net, lr_label=(4, 3))
        r.type(net, data=np.float64)
    net = mx.sym.LinearRegressionOutput(mx.sym.Variable("data"), name="lr")
    r.shape(net, data=(4, 1), lr_label=(4,))
    r.shape(net, data=(4, 2), lr_label=(4,))


@case
def pooling_flatten(mx, r):
    p = mx.sym.Pooling(mx.sym.Variable("x"), kernel=(2, 2), stride=(2, 2), pool_type="max")
    r.partial(p, x=(0, 3, 8, 8))
    r.shape(p + V(mx, "c", (2, 3, 4, 4)))
    g = mx.sym.Pooling(mx.sym.Variable("x"), kernel=(1, 1), global_pool=True, pool_type="avg")
    r.partial(g, x=(0, 3, 8, 8))


@case
def deconvolution(mx, r):
    d = mx.sym.Deconvolution(mx.sym.Variable("x"), num_filter=4, kernel=(2, 2), stride=(2, 2), name="dc")
    r.shape(d, x=(1, 3, 5, 5))
    r.partial(d, x=(0, 3, 5, 5))


@case
def shape_ops_backward(mx, r):
    x = mx.sym.Variable("x")
    r.shape(mx.sym.expand_dims(x, axis=1) + V(mx, "c", (3, 1, 4)))
    r.shape(mx.sym.transpose(x, axes=(1, 0)) + V(mx, "c", (3, 4)))
    r.shape(mx.sym.SwapAxis(x, dim1=0, dim2=1) + V(mx, "c", (3, 4)))
    r.shape(mx.sym.sum(x, axis=1) + V(mx, "c", (3,)))
    r.partial(mx.sym.sum(x, axis=1), x=(0, 4))
    r.partial(mx.sym.mean(x, axis=0, keepdims=True), x=(0, 4))
    r.shape(mx.sym.Cast(x, dtype="float16") + V(mx, "c", (2, 2)))
    r.shape(mx.sym.tile(x, reps=(2, 1)) + V(mx, "c", (4, 3)))
    r.partial(mx.sym.tile(x, reps=(2, 1)), x=(0, 3))
    r.shape(mx.sym.broadcast_to(x, shape=(3, 4)))
    r.partial(mx.sym.broadcast_to(x, shape=(3, 4)), x=(1, 0))
    r.shape(mx.sym.squeeze(x, axis=1) + V(mx, "c", (3,)))
    r.partial(mx.sym.slice_axis(x, axis=1, begin=0, end=2), x=(0, 5))
    r.partial(mx.sym.slice(x, begin=(0, 1), end=(2, 3)), x=(4, 0))
    r.partial(mx.sym.stack(V(mx, "a", (0, 3)), V(mx, "b", (2, 0)), num_args=2, axis=1))
    r.shape(mx.sym.stack(V(mx, "a"), V(mx, "b"), num_args=2) + V(mx, "c", (2, 3)))
    r.partial(mx.sym.one_hot(x, depth=5), x=(0, 2))
    r.partial(mx.sym.take(x, V(mx, "i", (0, 2))), x=(6, 3))
    r.partial(mx.sym.repeat(x, repeats=2, axis=0), x=(0, 3))
    r.shape(mx.sym.reshape_like(x, V(mx, "y", (3, 4))) + V(mx, "c", (3, 4)))
    r.partial(mx.sym.softmax(x) + V(mx, "c", (2, 7)))
    r.partial(mx.sym.log_softmax(x, axis=0), x=(0, 3))


@case
def variable_attrs(mx, r):
    a = mx.sym.Variable("a", shape=(2, 3), dtype="float16")
    b = mx.sym.Variable("b")
    r.shape(a + b)
    r.type(a + b)
    r.type(a + b, b=np.float32)
    r.shape(a + b, a=(4, 3))


@case
def type_propagation(mx, r):
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    r.type(a * b, a=np.float16)
    r.type(a * b, b="int32")
    r.type(a * b, a=np.float16, b=np.float32)
    r.type(mx.sym.Cast(a, dtype="float16") + b)
    r.type(mx.sym.Cast(a, dtype="float16") + b, a=np.int32)
    r.type(mx.sym.Cast(a, dtype="float16"))
    r.type(mx.sym.sin(a))
    r.type(mx.sym.broadcast_add(a, b), a=np.float64)
    r.type(mx.sym.dot(a, b), b=np.float64)
    r.type(mx.sym.Embedding(a, b, input_dim=4, output_dim=2), a=np.int32)
    r.type(mx.sym.Embedding(a, b, input_dim=4, output_dim=2), b=np.float16)
    r.type(mx.sym.one_hot(a, depth=3), a=np.int32)
    r.type(mx.sym.argmax(a, axis=0), a=np.float64)
    r.type(mx.sym.BatchNorm(a, name="bn"), a=np.float16)
    r.type(mx.sym.BatchNorm(a, name="bn"), bn_gamma=np.float32)
    r.type(mx.sym.Convolution(a, kernel=(1, 1), num_filter=2, name="cv"), cv_weight=np.float64)
    r.type(mx.sym.concat(a, b, dim=0), b=np.float16)
    r.type(mx.sym.where(mx.sym.Variable("c"), a, b), c=np.int32, a=np.float32)
    r.type(mx.sym.take(a, b), a=np.float64)
    r.type(mx.sym.take(a, b), b=np.int32)
    r.type(mx.sym.pick(a, b), a=np.float16)


@case
def errors(mx, r):
    a, b = mx.sym.Variable("a"), mx.sym.Variable("b")
    r.shape(a + b, a=(2, 3), b=(3, 2))
    r.shape(a + b, c=(2, 3))
    r.shape(mx.sym.dot(a, b), a=(2, 3), b=(4, 5))
    r.shape(mx.sym.Concat(a, b, dim=1), a=(2, 3), b=(4, 5))
    r.shape(mx.sym.Reshape(a, shape=(5, 5)), a=(2, 3))
    r.shape(mx.sym.Convolution(a, kernel=(5, 5), num_filter=2), a=(1, 1, 3, 3))
    r.partial(a + b, a=(2, 3), b=(3, 2))
    r.type(a + b, a=np.float16, b=np.float64)
    r.shape(a + b, (2, 3), (2, 3))
    r.shape(a + b, (2, 3))


@case
def more_layers(mx, r):
    x = mx.sym.Variable("x")
    dc = mx.sym.Deconvolution(x, num_filter=4, kernel=(2, 2), stride=(2, 2), name="dc")
    r.shape(dc + V(mx, "c", (2, 4, 6, 6)))
    r.partial(dc + V(mx, "c", (2, 4, 6, 6)), x=(0, 3, 0, 0))
    p = mx.sym.Pooling(x, kernel=(2, 2), stride=(1, 1), pool_type="avg")
    r.partial(p + V(mx, "c", (2, 3, 4, 4)), x=(0, 3, 0, 0))
    r.shape(mx.sym.LeakyReLU(x, act_type="prelu", name="pr"), x=(2, 3, 4))
    r.partial(mx.sym.LeakyReLU(x, act_type="prelu", name="pr"), pr_gamma=(3,))
    r.shape(mx.sym.UpSampling(x, scale=2, sample_type="nearest", num_args=1), x=(1, 2, 3, 3))
    r.partial(mx.sym.UpSampling(x, scale=2, sample_type="nearest", num_args=1), x=(0, 2, 3, 3))
    r.shape(mx.sym.L2Normalization(x) + V(mx, "c", (2, 5)))
    r.shape(mx.sym.SoftmaxActivation(x) + V(mx, "c", (2, 5)))
    r.shape(mx.sym.SequenceMask(x, use_sequence_length=False) + V(mx, "c", (4, 2, 3)))
    r.partial(mx.sym.SequenceLast(x), x=(0, 2, 3))
    r.partial(mx.sym.SequenceReverse(x), x=(4, 0, 3))
    e = mx.sym.Embedding(x, input_dim=10, output_dim=4, name="emb")
    r.shape(e + V(mx, "c", (2, 3, 4)))
    r.shape(e, x=(2, 3))
    r.type(e, x=np.int32)
    r.shape(mx.sym.Dropout(x, p=0.5, axes=(1,)) + V(mx, "c", (2, 5)))
    r.shape(mx.sym.softmax(x, axis=1) + V(mx, "c", (2, 5)))
    r.shape(mx.sym.smooth_l1(x, scalar=1.0) + V(mx, "c", (2, 5)))
    r.shape(mx.sym.GroupNorm(x, num_groups=2, name="gn"), x=(2, 4, 3))
    r.partial(mx.sym.LayerNorm(x, name="ln"), ln_gamma=(5,))
    r.partial(mx.sym.InstanceNorm(x, name="inn"), x=(0, 3, 0))


@case
def rnn_and_misc(mx, r):
    x = mx.sym.Variable("x")
    rnn = mx.sym.RNN(x, mx.sym.Variable("p"), mx.sym.Variable("s"), state_size=5,
                     num_layers=1, mode="rnn_tanh", name="rnn")
    r.shape(rnn, x=(3, 2, 4))
    r.partial(rnn, x=(3, 0, 4))
    lstm = mx.sym.RNN(x, mx.sym.Variable("p"), mx.sym.Variable("s"), mx.sym.Variable("sc"),
                      state_size=5, num_layers=2, mode="lstm", state_outputs=True, name="lstm")
    r.shape(lstm, x=(3, 2, 4))
    r.type(lstm, x=np.float32)
    r.shape(mx.sym.Crop(x, V(mx, "l", (1, 1, 3, 3)), num_args=2), x=(1, 2, 5, 5))
    r.shape(mx.sym.ROIPooling(x, V(mx, "rois", (4, 5)), pooled_size=(2, 2), spatial_scale=1.0),
            x=(1, 3, 8, 8))
    r.shape(mx.sym.topk(x, k=2, ret_typ="both"), x=(3, 6))
    r.shape(mx.sym.sort(x) + V(mx, "c", (3, 6)))
    r.shape(mx.sym.argsort(x), x=(3, 6))
    r.type(mx.sym.argsort(x), x=np.float64)
    r.type(mx.sym.topk(x, k=2), x=np.float64)
    r.shape(mx.sym.MakeLoss(x) + V(mx, "c", (2, 2)))
    r.shape(mx.sym.SVMOutput(x, name="svm"), x=(4, 3))
    r.shape(mx.sym.Cast(x, dtype="int32"), x=(2,))
    r.type(mx.sym.Cast(x, dtype="int32"), x=np.float32)
    r.shape(mx.sym.reshape(x, shape=(-3, 0)), x=(2, 3, 4))
    r.shape(mx.sym.reshape(x, shape=(-4, 2, -1, 0)), x=(6, 4))
    r.partial(mx.sym.reshape(x, shape=(-2,)), x=(0, 4))
    r.shape(mx.sym.broadcast_like(x, V(mx, "y", (3, 4))), x=(1, 4))
    r.shape(mx.sym.elemwise_add(x, V(mx, "y", (3, 4))))
    r.shape(mx.sym.Group([x + 1, x * 2]), x=(2, 2))
    net = mx.sym.Group([mx.sym.FullyConnected(x, num_hidden=3, name="f"), V(mx, "y") * 2])
    r.partial(net, x=(2, 4))


@case
def type_partial(mx, r):
    a, b, c = mx.sym.Variable("a"), mx.sym.Variable("b"), mx.sym.Variable("c")
    r.type_partial(a * b + mx.sym.Cast(c, dtype="int32"))
    r.type_partial(a * b + c, a=np.float16)
    r.type_partial(mx.sym.Group([a * 2, mx.sym.Cast(b, dtype="float64")]))
    r.type_partial(mx.sym.FullyConnected(a, num_hidden=2, name="fc"), fc_weight=np.float64)
    r.type_partial(mx.sym.SoftmaxOutput(a, name="sm"), sm_label=np.float32)
    r.type_partial(a + b, a=np.float16, b=np.float32)


@case
def np_shape_semantics(mx, r):
    x, y = mx.sym.Variable("x"), mx.sym.Variable("y")
    with mx.np_shape(True):
        r.partial(mx.sym.sin(mx.sym.var("data")))
        r.partial(mx.sym.dot(x, y), x=(-1, 2, 6), y=(6, 3))
        r.partial(mx.sym.batch_dot(x, y), x=(-1, 2, 6), y=(-1, 6, 3))
        r.partial(mx.sym.batch_dot(x, y), x=(-1, 2, 6), y=(-1, -1, 3))
        r.partial(mx.sym.transpose(x, axes=(0, 2, 1)), x=(-1, 3, 5))
        r.partial(mx.sym.Embedding(x, y, input_dim=9, output_dim=2), x=(-1, 4), y=(9, 2))
        r.partial(mx.sym.where(mx.sym.Variable("c"), x, y), c=(-1, 2), x=(-1, 2), y=(-1, 2))
        r.partial(x + y, x=(-1, 3), y=(4, -1))
        r.shape(mx.sym.sin(x), x=(-1, 3))
        r.shape(mx.sym.sin(x), x=(2, 3))
    r.partial(mx.sym.sin(mx.sym.var("data")))


def run(mx):
    out = {}
    for fn in CASES:
        r = Recorder(mx)
        try:
            fn(mx, r)
        except Exception as e:  # noqa: BLE001 -- a builder failed: recorded, compared too
            r.out.append({"kind": "build", "error": type(e).__name__})
        out[fn.__name__] = r.out
    return out


if __name__ == "__main__":
    import mxnet
    warnings.simplefilter("ignore")
    with open(sys.argv[1], "w") as f:
        json.dump(run(mxnet), f, indent=0, sort_keys=True)
