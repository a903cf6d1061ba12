"""``mx.runtime``: the build features of this library (MXNet 1.9.1's ``Features`` API).

agjit is NumPy + Numba on the CPU, so the features are reported for that build: no CUDA,
CUDNN, NCCL, TensorRT, MKLDNN, OpenCV, Caffe, TVM ops, jemalloc or OpenMP; the ``CPU_*`` /
``F16C`` flags are the running CPU's (as NumPy detects them), ``BLAS_OPEN`` / ``LAPACK``
describe NumPy's OpenBLAS, ``PROFILER`` is on (``mx.profiler``), ``DIST_KVSTORE`` is on
(``mx.kv.create('dist_sync')`` with worker processes) and ``INT64_TENSOR_SIZE`` is on
(NumPy indexes with 64-bit integers).

>>> import agjit as mx
>>> mx.runtime.Features().is_enabled('CUDA')
False
"""
import collections

__all__ = ["Feature", "feature_list", "Features"]

# MXNet 1.9.1's feature names, in its order
_NAMES = ['CUDA', 'CUDNN', 'NCCL', 'CUDA_RTC', 'TENSORRT', 'CPU_SSE', 'CPU_SSE2', 'CPU_SSE3',
          'CPU_SSE4_1', 'CPU_SSE4_2', 'CPU_SSE4A', 'CPU_AVX', 'CPU_AVX2', 'OPENMP', 'SSE',
          'F16C', 'JEMALLOC', 'BLAS_OPEN', 'BLAS_ATLAS', 'BLAS_MKL', 'BLAS_APPLE', 'LAPACK',
          'MKLDNN', 'OPENCV', 'CAFFE', 'PROFILER', 'DIST_KVSTORE', 'CXX14',
          'INT64_TENSOR_SIZE', 'SIGNAL_HANDLER', 'DEBUG', 'TVM_OP']
_CPU = {'CPU_SSE': 'SSE', 'CPU_SSE2': 'SSE2', 'CPU_SSE3': 'SSE3', 'CPU_SSE4_1': 'SSE41',
        'CPU_SSE4_2': 'SSE42', 'CPU_AVX': 'AVX', 'CPU_AVX2': 'AVX2', 'SSE': 'SSE',
        'F16C': 'F16C'}
_ON = {'LAPACK', 'PROFILER', 'DIST_KVSTORE', 'INT64_TENSOR_SIZE'}


def _cpu_features():
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:         # NumPy < 2
        try:
            from numpy.core._multiarray_umath import __cpu_features__
        except ImportError:
            return {}
    return __cpu_features__


def _numpy_blas():
    import numpy as np
    try:
        name = np.show_config(mode='dicts')['Build Dependencies']['blas']['name']
    except Exception:
        return ''
    return str(name).lower()


def _enabled():
    cpu = _cpu_features()
    blas = _numpy_blas()
    on = {}
    for name in _NAMES:
        if name in _CPU:
            on[name] = bool(cpu.get(_CPU[name], False))
        elif name == 'BLAS_OPEN':
            on[name] = 'openblas' in blas
        elif name == 'BLAS_MKL':
            on[name] = 'mkl' in blas
        elif name == 'BLAS_APPLE':
            on[name] = 'accelerate' in blas
        else:
            on[name] = name in _ON
    return on


class Feature(object):
    """One compile-time feature: ``name``, ``enabled``, ``index``."""

    def __init__(self, name, enabled, index):
        self._name = name
        self._enabled = enabled
        self.index = index

    @property
    def name(self):
        return self._name

    @property
    def enabled(self):
        return self._enabled

    def __repr__(self):
        return ('\u2714 ' if self.enabled else '\u2716 ') + self.name


def feature_list():
    """The features of this build as a list of :class:`Feature`."""
    on = _enabled()
    return [Feature(name, on[name], i) for i, name in enumerate(_NAMES)]


class Features(collections.OrderedDict):
    """The features by name: ``Features()['CUDA'].enabled``, ``is_enabled('CUDA')``."""
    instance = None

    def __new__(cls):
        if cls.instance is None:
            cls.instance = super(Features, cls).__new__(cls)
            super(Features, cls.instance).__init__([(f.name, f) for f in feature_list()])
        return cls.instance

    def __init__(self):   # filled once, in __new__
        pass

    def __repr__(self):
        return str(list(self.values()))

    def is_enabled(self, feature_name):
        """Whether ``feature_name`` (case-insensitive) is enabled; RuntimeError if unknown."""
        feature_name = feature_name.upper()
        if feature_name not in self:
            raise RuntimeError("Feature '{}' is unknown, known features are: {}".format(
                feature_name, list(self.keys())))
        return self[feature_name].enabled
