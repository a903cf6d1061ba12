"""Small MXNet 1.9.1 names real programs use: mx.runtime.Features / feature_list,
mx.engine.bulk / set_bulk_size, mx.current_context, mx.util's NumPy switches, mx.libinfo,
mx.library.load, mx.test_utils.get_mnist, mx.init.Bilinear / LSTMBias (their numbers
against MXNet are in tests/test_gluon_contrib.py's golden)."""
import gzip
import os
import struct

import numpy as np
import pytest

import agjit as mx
from agjit.base import MXNetError

# MXNet 1.9.1's mx.runtime.Features().keys(), in its order
MXNET_FEATURES = ['CUDA', 'CUDNN', 'NCCL', 'CUDA_RTC', 'TENSORRT', 'CPU_SSE', 'CPU_SSE2',
                  'CPU_SSE3', 'CPU_SSE4_1', 'CPU_SSE4_2', 'CPU_SSE4A', 'CPU_AVX', 'CPU_AVX2',
                  'OPENMP', 'SSE', 'F16C', 'JEMALLOC', 'BLAS_OPEN', 'BLAS_ATLAS', 'BLAS_MKL',
                  'BLAS_APPLE', 'LAPACK', 'MKLDNN', 'OPENCV', 'CAFFE', 'PROFILER',
                  'DIST_KVSTORE', 'CXX14', 'INT64_TENSOR_SIZE', 'SIGNAL_HANDLER', 'DEBUG',
                  'TVM_OP']


def test_runtime_features():
    f = mx.runtime.Features()
    assert list(f.keys()) == MXNET_FEATURES
    assert f is mx.runtime.Features()
    for name in ('CUDA', 'CUDNN', 'NCCL', 'TENSORRT', 'MKLDNN', 'OPENCV', 'TVM_OP'):
        assert f.is_enabled(name) is False
    assert f.is_enabled('profiler') is True and f.is_enabled('LAPACK') is True
    assert repr(f['CUDA']) == '\u2716 CUDA' and repr(f['PROFILER']) == '\u2714 PROFILER'
    assert f['CUDA'].name == 'CUDA' and f['CUDA'].enabled is False and f['CUDA'].index == 0
    assert repr(f).startswith('[\u2716 CUDA, \u2716 CUDNN, ')
    with pytest.raises(RuntimeError, match="Feature 'FOO' is unknown, known features are"):
        f.is_enabled('foo')
    fl = mx.runtime.feature_list()
    assert [x.name for x in fl] == MXNET_FEATURES and [x.index for x in fl] == list(range(32))


def test_engine_bulk():
    prev = mx.engine.set_bulk_size(7)
    assert mx.engine.set_bulk_size(7) == 7
    with mx.engine.bulk(30) as scope:
        assert type(scope).__name__ == '_BulkScope'
        assert mx.engine.set_bulk_size(30) == 30
        x = mx.nd.zeros((1,))
        for _ in range(3):
            x += 1
    assert x.asscalar() == 3.0
    assert mx.engine.set_bulk_size(prev) == 7


def test_current_context():
    assert mx.current_context() == mx.cpu(0)
    assert mx.context.current_context is mx.current_context
    with mx.cpu(1):
        assert mx.current_context() == mx.cpu(1)
        with mx.cpu_pinned(0) as c:
            assert mx.current_context() is c
        assert mx.current_context() == mx.cpu(1)
    assert mx.current_context() == mx.cpu(0)


def test_util_numpy_switches(monkeypatch):
    assert mx.util.is_np_array() is False and mx.util.is_np_shape() is False
    with mx.util.np_array(False):
        pass
    with pytest.raises(MXNetError, match="not the mx.np/mx.npx"):
        with mx.util.np_array(True):
            pass

    @mx.util.use_np
    def f(x):
        return x
    with pytest.raises(MXNetError, match="NumPy-array semantics cannot be turned on"):
        f(1)

    @mx.util.use_np
    class Net(object):
        def __init__(self):
            self.a = 1
    with pytest.raises(MXNetError):
        Net()
    with pytest.raises(ValueError, match="NumPy Shape semantics is required"):
        mx.util.set_np(shape=False, array=True)
    with pytest.raises(MXNetError):
        mx.util.set_np()
    mx.util.set_np(shape=True, array=False)
    try:
        assert mx.util.is_np_shape() is True
    finally:
        mx.util.reset_np()
    assert mx.util.is_np_shape() is False
    monkeypatch.delenv('AGJIT_TEST_ENV_X', raising=False)
    assert mx.util.getenv('AGJIT_TEST_ENV_X') is None
    mx.util.setenv('AGJIT_TEST_ENV_X', 3)
    assert mx.util.getenv('AGJIT_TEST_ENV_X') == '3'
    mx.util.setenv('AGJIT_TEST_ENV_X', None)
    assert 'AGJIT_TEST_ENV_X' not in os.environ
    assert mx.util.get_gpu_count() == 0


def test_libinfo_and_library(tmp_path, monkeypatch):
    assert mx.libinfo.__version__ == mx.__version__
    with pytest.raises(MXNetError, match="no libmxnet shared library"):
        mx.libinfo.find_lib_path()
    with pytest.raises(MXNetError, match="load path /no/such/lib.so does NOT exist"):
        mx.library.load('/no/such/lib.so')
    lib = tmp_path / 'libop.so'
    lib.write_bytes(b'\x7fELF')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MXNetError, match="load path libop.so is not an absolute path"):
        mx.library.load('libop.so')
    with pytest.raises(MXNetError, match="cannot load compiled MXNet custom operator "
                                         "libraries.*mx.operator.CustomOp"):
        mx.library.load(str(lib))


def _write_mnist(root, n_train=3, n_test=2):
    rng = np.random.RandomState(0)
    out = {}
    for split, n in (('train', n_train), ('t10k', n_test)):
        imgs = rng.randint(0, 256, (n, 28, 28)).astype(np.uint8)
        labels = rng.randint(0, 10, n).astype(np.uint8)
        with gzip.open(os.path.join(root, '%s-images-idx3-ubyte.gz' % split), 'wb') as f:
            f.write(struct.pack('>IIII', 2051, n, 28, 28) + imgs.tobytes())
        with gzip.open(os.path.join(root, '%s-labels-idx1-ubyte.gz' % split), 'wb') as f:
            f.write(struct.pack('>II', 2049, n) + labels.tobytes())
        out[split] = (imgs, labels)
    return out


def test_get_mnist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MXNetError, match="train-images-idx3-ubyte.gz.*were not found in %s"
                       % tmp_path):
        mx.test_utils.get_mnist()
    (tmp_path / 'data').mkdir()
    raw = _write_mnist(str(tmp_path / 'data'))
    d = mx.test_utils.get_mnist()              # ./data, as MXNet's download dirs
    assert list(d) == ['train_data', 'train_label', 'test_data', 'test_label']
    assert d['train_data'].shape == (3, 1, 28, 28) and d['train_data'].dtype == np.float32
    assert d['test_label'].dtype == np.int8 and d['test_label'].shape == (2,)
    np.testing.assert_allclose(d['train_data'][:, 0], raw['train'][0] / 255.0, rtol=1e-6)
    assert d['train_label'].tolist() == raw['train'][1].tolist()
    assert d['test_label'].tolist() == raw['t10k'][1].tolist()
    d2 = mx.test_utils.get_mnist(path=str(tmp_path / 'data'))
    np.testing.assert_array_equal(d2['test_data'], d['test_data'])


def test_init_bilinear_and_lstmbias_registered():
    assert isinstance(mx.init.create('bilinear'), mx.init.Bilinear)
    b = mx.init.create('lstmbias', forget_bias=2.0)
    arr = mx.nd.ones((8,))
    # as MXNet 1.9.1: called directly on a '*_bias' name the suffix rule wins (zeros);
    # the forget-gate values come from _init_weight, i.e. a '*_weight' name or the
    # variable's __init__ attr (what a Parameter's init= sets)
    b(mx.init.InitDesc('lstm_i2h_bias'), arr)
    assert arr.asnumpy().tolist() == [0] * 8
    b(mx.init.InitDesc('lstm_i2h_weight'), arr)
    assert arr.asnumpy().tolist() == [0, 0, 2, 2, 0, 0, 0, 0]
    arr[:] = 5
    b(mx.init.InitDesc('lstm_i2h_bias', attrs={'__init__': b.dumps()}), arr)
    assert arr.asnumpy().tolist() == [0, 0, 2, 2, 0, 0, 0, 0]
    w = mx.nd.zeros((1, 1, 2, 2))
    mx.init.Bilinear()(mx.init.InitDesc('up_weight'), w)
    # f = ceil(2/2) = 1, c = (2f - 1 - f % 2) / 2f = 0: only tap (0, 0) is 1 (MXNet's values)
    assert w.asnumpy().ravel().tolist() == [1, 0, 0, 0]


def test_docstring_examples():
    import doctest
    import agjit.gluon.contrib.nn.basic_layers as contrib_nn
    import agjit.gluon.contrib.data.sampler as contrib_sampler
    for module in (mx.runtime, mx.engine, mx.profiler, contrib_nn, contrib_sampler):
        res = doctest.testmod(module, extraglobs={'mx': mx, 'np': np})
        assert res.failed == 0 and res.attempted > 0, module.__name__
    mx.profiler._P.__init__()
    mx.profiler._P.sync_hook()


def test_interval_sampler_as_mxnet():
    from agjit.gluon.contrib.data import IntervalSampler
    # MXNet 1.9.1's docstring values
    assert list(IntervalSampler(13, interval=3)) == [0, 3, 6, 9, 12, 1, 4, 7, 10, 2, 5, 8, 11]
    s = IntervalSampler(13, interval=3, rollover=False)
    assert list(s) == [0, 3, 6, 9, 12] and len(s) == 13
    with pytest.raises(AssertionError, match="Interval 5 must be smaller than or equal to "
                                             "length 4"):
        IntervalSampler(4, 5)
    loader = mx.gluon.data.DataLoader(mx.gluon.data.ArrayDataset(np.arange(6)),
                                      sampler=IntervalSampler(6, 2), batch_size=3)
    assert [b.asnumpy().tolist() for b in loader] == [[0, 2, 4], [1, 3, 5]]


def test_version_is_the_mxnet_api_level():
    # MXNet programs gate on mx.__version__ (LooseVersion(mx.__version__) >= "1.6"): it names
    # the MXNet release agjit implements; agjit's own release is the package metadata's.
    import importlib.metadata
    assert mx.__version__ == "1.9.1"
    assert tuple(int(p) for p in mx.__version__.split(".")) >= (1, 6)
    assert mx.agjit_version == importlib.metadata.version("agjit")
