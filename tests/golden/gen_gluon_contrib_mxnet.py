"""Records tests/golden/gluon_contrib_mxnet.json with real MXNet 1.9.1:

    /work/mxenv/bin/python tests/golden/gen_gluon_contrib_mxnet.py > tests/golden/gluon_contrib_mxnet.json

Each CASES entry is a small Gluon program ``fn(mx) -> dict`` written against the MXNet 1.x
API: the contrib blocks of ``gluon.contrib.nn`` / ``gluon.contrib.rnn``, an
``gluon.contrib.estimator`` fit, ``mx.init.Bilinear`` / ``LSTMBias``.  Parameters are set
from a seeded NumPy generator in sorted-name order (so both libraries compute with the same
numbers); the recorded values are parameter names and shapes, forward outputs, and the
gradients of ``sum(out * head)`` for a fixed ``head``.  tests/test_gluon_contrib.py runs the
same functions with ``import agjit as mx`` and compares."""
import json
import sys

import numpy as np


def _set_params(net, seed=0):
    rng = np.random.RandomState(seed)
    params = net.collect_params()
    for name in sorted(params.keys()):
        p = params[name]
        p.set_data(rng.uniform(-0.5, 0.5, size=p.shape).astype('float32'))


def _head(shape, k=1.0):
    n = int(np.prod(shape))
    return np.sin(np.arange(n) * 0.37 * k + 0.1).reshape(shape).astype('float32')


def _names(net):
    return [[k, list(v.shape)] for k, v in sorted(net.collect_params().items())]


def _grads(net):
    return {k: v.grad().asnumpy().tolist() for k, v in sorted(net.collect_params().items())
            if v.grad_req != 'null'}


def _run_block(mx, net, x, hybridize=False, extra=None):
    """Forward once (deferred init), set params, forward+backward under record."""
    net.initialize()
    if hybridize:
        net.hybridize()
    x = mx.nd.array(x)
    net(x)
    _set_params(net)
    x.attach_grad()
    with mx.autograd.record():
        out = net(x)
        loss = (out * mx.nd.array(_head(out.shape))).sum()
    loss.backward()
    res = {'names': _names(net), 'out': out.asnumpy().tolist(), 'shape': list(out.shape),
           'xgrad': x.grad.asnumpy().tolist(), 'grads': _grads(net), 'prefix': net.prefix}
    if extra:
        res.update(extra(net))
    return res


def _x(shape, seed=1):
    return np.random.RandomState(seed).uniform(-1, 1, size=shape).astype('float32')


def case_hybridconcurrent(mx):
    from mxnet.gluon import nn
    from mxnet.gluon.contrib.nn import HybridConcurrent, Identity
    net = HybridConcurrent(axis=1)
    with net.name_scope():
        net.add(nn.Dense(3), nn.Dense(2, activation='tanh'), Identity())
    return _run_block(mx, net, _x((2, 4)))


def hybrid_stack(mx):
    """SyncBatchNorm -> PixelShuffle2D -> HybridConcurrent(Identity, Conv2D) -> PixelShuffle1D
    (after a reshape): every hybrid contrib.nn block in one graph."""
    from mxnet.gluon import nn
    from mxnet.gluon.contrib.nn import (HybridConcurrent, Identity, SyncBatchNorm,
                                        PixelShuffle1D, PixelShuffle2D)
    net = nn.HybridSequential(prefix='stack_')
    with net.name_scope():
        net.add(SyncBatchNorm(in_channels=8, num_devices=1), PixelShuffle2D(2))
        branch = HybridConcurrent(axis=1)
        with branch.name_scope():
            branch.add(Identity(), nn.Conv2D(2, 3, padding=1, in_channels=2))
        net.add(branch, nn.HybridLambda(lambda F, x: F.reshape(x, (0, -3, 0))),
                PixelShuffle1D(2))
    return net


def case_hybrid_stack_hybridized(mx):
    return _run_block(mx, hybrid_stack(mx), _x((2, 8, 2, 2)) * 2, hybridize=True)


def case_concurrent(mx):
    from mxnet.gluon import nn
    from mxnet.gluon.contrib.nn import Concurrent, Identity
    net = Concurrent()
    with net.name_scope():
        net.add(nn.Dense(2, flatten=False), Identity(), nn.Dense(1, flatten=False))
    return _run_block(mx, net, _x((2, 3, 4)))


def case_syncbatchnorm(mx):
    from mxnet.gluon.contrib.nn import SyncBatchNorm

    def stats(net):
        return {'running': [net.running_mean.data().asnumpy().tolist(),
                            net.running_var.data().asnumpy().tolist()],
                'predict': net(mx.nd.array(_x((2, 3, 2, 2), seed=5))).asnumpy().tolist()}
    return _run_block(mx, SyncBatchNorm(in_channels=3, num_devices=1, momentum=0.8),
                      _x((4, 3, 2, 2)) * 3 + 1, extra=stats)


def case_syncbatchnorm_deferred(mx):
    from mxnet.gluon.contrib.nn import SyncBatchNorm
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        net = SyncBatchNorm(scale=False, epsilon=1e-3)
    return _run_block(mx, net, _x((3, 2, 5)))


def case_pixelshuffle1d(mx):
    from mxnet.gluon.contrib.nn import PixelShuffle1D
    return _run_block(mx, PixelShuffle1D(3), _x((2, 6, 4)))


def case_pixelshuffle2d(mx):
    from mxnet.gluon.contrib.nn import PixelShuffle2D
    return _run_block(mx, PixelShuffle2D((2, 3)), _x((1, 12, 2, 3)))


def case_pixelshuffle3d(mx):
    from mxnet.gluon.contrib.nn import PixelShuffle3D
    return _run_block(mx, PixelShuffle3D((2, 1, 2)), _x((1, 8, 2, 3, 2)))


def case_sparseembedding(mx):
    from mxnet.gluon.contrib.nn import SparseEmbedding
    net = SparseEmbedding(6, 3)
    net.initialize()
    _set_params(net)
    mx.gluon.Trainer(net.collect_params(), 'sgd')   # MXNet: row_sparse_data needs a Trainer
    x = mx.nd.array([[0, 2], [5, 2]])
    with mx.autograd.record():
        out = net(x)
        loss = (out * mx.nd.array(_head(out.shape))).sum()
    loss.backward()
    return {'names': _names(net), 'out': out.asnumpy().tolist(), 'repr': repr(net),
            'wgrad': net.weight.grad().asnumpy().tolist()}


def _run_cell(mx, cell, x, layout='NTC', hybridize=False, merge=True):
    cell.initialize()
    if hybridize:
        cell.hybridize()
    x = mx.nd.array(x)
    length = x.shape[layout.find('T')]
    if any(0 in p.shape for p in cell.collect_params().values()):
        # deferred shapes: one unroll first (not otherwise: MXNet cannot set_data into the
        # MKLDNN-laid-out weights a convolution leaves behind)
        cell.unroll(length, x, layout=layout, merge_outputs=merge)
    _set_params(cell)
    x.attach_grad()
    with mx.autograd.record():
        out, states = cell.unroll(length, x, layout=layout, merge_outputs=merge)
        if not merge:
            out = mx.nd.stack(*out, axis=layout.find('T'))
        loss = (out * mx.nd.array(_head(out.shape))).sum()
        for k, s in enumerate(states):
            loss = loss + (s * mx.nd.array(_head(s.shape, k + 2.0))).sum()
    loss.backward()
    return {'names': _names(cell), 'out': out.asnumpy().tolist(),
            'states': [s.asnumpy().tolist() for s in states],
            'state_info': [[list(i['shape']), i['__layout__']] for i in cell.state_info(2)],
            'xgrad': x.grad.asnumpy().tolist(), 'grads': _grads(cell), 'prefix': cell.prefix,
            'repr': repr(cell)}


def case_lstmp(mx):
    from mxnet.gluon.contrib.rnn import LSTMPCell
    return _run_cell(mx, LSTMPCell(4, 3), _x((2, 3, 5)))


def case_lstmp_tnc_list(mx):
    from mxnet.gluon.contrib.rnn import LSTMPCell
    return _run_cell(mx, LSTMPCell(3, 2, input_size=4, prefix='p_'), _x((2, 2, 4)),
                     layout='TNC', merge=False)


def case_conv1d_rnn(mx):
    from mxnet.gluon.contrib.rnn import Conv1DRNNCell
    return _run_cell(mx, Conv1DRNNCell((2, 5), 3, 3, 3, i2h_pad=1), _x((2, 2, 2, 5)))


def case_conv2d_rnn_relu(mx):
    from mxnet.gluon.contrib.rnn import Conv2DRNNCell
    return _run_cell(mx, Conv2DRNNCell((1, 4, 3), 2, (3, 1), (1, 3), activation='relu'),
                     _x((2, 2, 1, 4, 3)))


def case_conv1d_lstm(mx):
    from mxnet.gluon.contrib.rnn import Conv1DLSTMCell
    return _run_cell(mx, Conv1DLSTMCell((2, 4), 2, 3, 5, i2h_pad=1), _x((2, 3, 2, 4)))


def case_conv2d_lstm(mx):
    from mxnet.gluon.contrib.rnn import Conv2DLSTMCell
    return _run_cell(mx, Conv2DLSTMCell((2, 3, 3), 2, (3, 3), (3, 3), i2h_pad=(1, 1)),
                     _x((2, 2, 2, 3, 3)))


def case_conv1d_lstm_hybridized(mx):
    from mxnet.gluon.contrib.rnn import Conv1DLSTMCell
    return _run_cell(mx, Conv1DLSTMCell((2, 4), 2, 3, 3, i2h_pad=1), _x((2, 3, 2, 4)),
                     hybridize=True)


def case_conv1d_gru(mx):
    from mxnet.gluon.contrib.rnn import Conv1DGRUCell
    return _run_cell(mx, Conv1DGRUCell((3, 5), 2, 3, 1), _x((2, 2, 3, 5)))


def case_conv2d_gru(mx):
    from mxnet.gluon.contrib.rnn import Conv2DGRUCell
    return _run_cell(mx, Conv2DGRUCell((2, 3, 4), 2, (1, 3), (3, 3), i2h_pad=(0, 1)),
                     _x((2, 2, 2, 3, 4)))


def case_conv3d_lstm(mx):
    from mxnet.gluon.contrib.rnn import Conv3DLSTMCell
    return _run_cell(mx, Conv3DLSTMCell((1, 2, 3, 2), 1, 1, 1), _x((1, 2, 1, 2, 3, 2)))


def case_vardrop_predict(mx):
    from mxnet.gluon import rnn
    from mxnet.gluon.contrib.rnn import VariationalDropoutCell
    cell = VariationalDropoutCell(rnn.LSTMCell(3, input_size=2), drop_inputs=0.5,
                                  drop_states=0.5, drop_outputs=0.5)
    cell.initialize()
    _set_params(cell)
    out, states = cell.unroll(3, mx.nd.array(_x((2, 3, 2))), merge_outputs=True)
    return {'names': _names(cell), 'prefix': cell.prefix, 'out': out.asnumpy().tolist(),
            'states': [s.asnumpy().tolist() for s in states], 'repr': repr(cell)}


def case_init_bilinear_lstmbias(mx):
    from mxnet.gluon import rnn
    w = mx.nd.zeros((2, 1, 4, 4))
    mx.init.Bilinear()(mx.init.InitDesc('up_weight'), w)
    w3 = mx.nd.zeros((1, 1, 3, 5))
    mx.init.Bilinear()(mx.init.InitDesc('up_weight'), w3)
    b = mx.nd.zeros((2,))
    mx.init.Bilinear()(mx.init.InitDesc('up_bias'), b)
    cell = rnn.LSTMCell(2, input_size=3, i2h_bias_initializer=mx.init.LSTMBias(0.7))
    cell.initialize()
    return {'bilinear': w.asnumpy().tolist(), 'bilinear35': w3.asnumpy().tolist(),
            'bias': b.asnumpy().tolist(), 'lstm_i2h_bias': cell.i2h_bias.data().asnumpy().tolist(),
            'dumps': mx.init.LSTMBias(0.7).dumps(), 'dumps_bilinear': mx.init.Bilinear().dumps()}


def case_estimator_fit(mx):
    import warnings
    from mxnet import gluon
    from mxnet.gluon.contrib.estimator import Estimator
    X = _x((10, 4))
    y = (np.arange(10) % 3).astype('float32')
    data = gluon.data.DataLoader(gluon.data.ArrayDataset(X, y), batch_size=4)
    net = gluon.nn.Dense(3, in_units=4)
    net.initialize()
    _set_params(net)
    trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.5,
                                                          'momentum': 0.9})
    est = Estimator(net, gluon.loss.SoftmaxCrossEntropyLoss(), trainer=trainer)
    est.logger.handlers = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        est.fit(data, val_data=data, epochs=3)
    return {'weight': net.weight.data().asnumpy().tolist(),
            'bias': net.bias.data().asnumpy().tolist(),
            'train': [list(m.get()) for m in est.train_metrics],
            'val': [list(m.get()) for m in est.val_metrics]}


def case_estimator_batches(mx):
    import warnings
    from mxnet import gluon
    from mxnet.gluon.contrib.estimator import Estimator
    X = _x((10, 4), seed=3)
    y = _x((10, 3), seed=4)
    data = gluon.data.DataLoader(gluon.data.ArrayDataset(X, y), batch_size=3)
    net = gluon.nn.Dense(3)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        net.initialize()
        net(mx.nd.array(X))
        _set_params(net)
        # the same optimizer and shapes as estimator_fit: one compiled update in agjit
        trainer = gluon.Trainer(net.collect_params(), 'sgd', {'learning_rate': 0.2,
                                                              'momentum': 0.9})
        est = Estimator(net, gluon.loss.L2Loss(), train_metrics=mx.metric.MAE(),
                        trainer=trainer)
        est.logger.handlers = []
        est.fit(data, batches=5)
    return {'weight': net.weight.data().asnumpy().tolist(),
            'train': [list(m.get()) for m in est.train_metrics],
            'val_names': [m.name for m in est.val_metrics]}


CASES = {k[len('case_'):]: v for k, v in sorted(globals().items()) if k.startswith('case_')}


def run_case(mx, name):
    """One case with fresh block-name counters (both libraries start at ``dense0_``)."""
    with mx.name.NameManager():
        return CASES[name](mx)


if __name__ == '__main__':
    if len(sys.argv) > 1:       # one case per process: an MXNet engine error can be sticky
        import mxnet as mx
        try:
            res = run_case(mx, sys.argv[1])
        except Exception as e:  # recorded, so the test can show what MXNet refused
            res = {'error': '%s: %s' % (type(e).__name__, str(e).splitlines()[0])}
        json.dump(res, sys.stdout)
        sys.exit(0)
    import subprocess
    out = {}
    for name in CASES:
        text = subprocess.run([sys.executable, __file__, name], check=True, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
        out[name] = json.loads(text)
    json.dump(out, sys.stdout, indent=0, sort_keys=True)
    sys.stdout.write('\n')
