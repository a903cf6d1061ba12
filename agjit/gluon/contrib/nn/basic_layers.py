"""Contributed layers of MXNet 1.9.1's ``gluon.contrib.nn``.

Note: contrib-nn
    * ``Concurrent`` / ``HybridConcurrent(axis=-1)`` feed the same input to every child and
      concatenate the children's outputs along ``axis`` (the graph op is ``Concat`` with
      ``dim=axis``); they are Sequential / HybridSequential otherwise (``add``, indexing,
      naming ``concurrent0_`` / ``hybridconcurrent0_``).
    * ``Identity`` returns its input (``identity0_``, no parameters).
    * ``SyncBatchNorm`` normalises over the whole mini-batch across devices.  agjit runs in
      one process on one device, where that is exactly ``BatchNorm(axis=1)``: the same
      parameters (``syncbatchnorm0_gamma/beta/running_mean/running_var``), the same
      numbers and running-statistics update.  ``num_devices`` is accepted (None -> the
      number of GPUs or 1, with MXNet's caution warning) and recorded; the graph op is
      ``BatchNorm`` (MXNet's is ``_contrib_SyncBatchNorm``, which agjit's registry has not).
    * ``PixelShuffle1D/2D/3D(factor)`` move groups of ``f`` (``f1*f2*...``) channels into
      the spatial axes: ``(N, C*f1*f2, H, W) -> (N, C, H*f1, W*f2)``, the channel index
      ``c*f1*f2 + i*f2 + j`` going to pixel ``(h*f1 + i, w*f2 + j)``; written with
      ``reshape`` (special codes 0/-3/-4) and ``transpose`` so it hybridizes and exports.
    * ``SparseEmbedding`` is a (non-hybrid) Block: MXNet keeps its weight and gradient as
      row_sparse arrays for distributed training.  agjit has dense storage only, so it is an
      ``Embedding`` with a dense weight and gradient, the same numbers and names
      (``sparseembedding0_weight``).
"""
import warnings

from .... import ndarray as _nd
from .... import context as _context
from ...block import HybridBlock, Block
from ...nn import Sequential, HybridSequential, BatchNorm

__all__ = ['Concurrent', 'HybridConcurrent', 'Identity', 'SparseEmbedding', 'SyncBatchNorm',
           'PixelShuffle1D', 'PixelShuffle2D', 'PixelShuffle3D']


class Concurrent(Sequential):
    """Runs every child on the same input and concatenates their outputs along ``axis``."""

    def __init__(self, axis=-1, prefix=None, params=None):
        super(Concurrent, self).__init__(prefix=prefix, params=params)
        self.axis = axis

    def forward(self, x):
        outs = [child(x) for child in self._children.values()]
        return _nd.concat(*outs, dim=self.axis)


class HybridConcurrent(HybridSequential):
    """Hybrid version of :class:`Concurrent` (one ``Concat`` node in the graph)."""

    def __init__(self, axis=-1, prefix=None, params=None):
        super(HybridConcurrent, self).__init__(prefix=prefix, params=params)
        self.axis = axis

    def hybrid_forward(self, F, x):
        outs = [child(x) for child in self._children.values()]
        return F.concat(*outs, dim=self.axis)


class Identity(HybridBlock):
    """Returns its input unchanged (a residual branch of a HybridConcurrent)."""

    def __init__(self, prefix=None, params=None):
        super(Identity, self).__init__(prefix=prefix, params=params)

    def hybrid_forward(self, F, x):
        return x


class SparseEmbedding(Block):
    """Embedding with MXNet's sparse-gradient API; dense storage in agjit (note
    *contrib-nn*)."""

    def __init__(self, input_dim, output_dim, dtype='float32', weight_initializer=None,
                 **kwargs):
        super(SparseEmbedding, self).__init__(**kwargs)
        self._kwargs = {'input_dim': input_dim, 'output_dim': output_dim, 'dtype': dtype,
                        'sparse_grad': True}
        self.weight = self.params.get('weight', shape=(input_dim, output_dim),
                                      init=weight_initializer, dtype=dtype)

    def forward(self, x):
        kw = dict(self._kwargs)
        kw['sparse_grad'] = False
        return _nd.Embedding(x, self.weight.data(), name='fwd', **kw)

    def __repr__(self):
        return '{block_name}({input_dim} -> {output_dim}, {dtype})'.format(
            block_name=self.__class__.__name__, **self._kwargs)


class SyncBatchNorm(BatchNorm):
    """Cross-device batch normalisation; on agjit's single device it is BatchNorm over
    axis 1 (note *contrib-nn*)."""

    def __init__(self, in_channels=0, num_devices=None, momentum=0.9, epsilon=1e-5,
                 center=True, scale=True, use_global_stats=False, beta_initializer='zeros',
                 gamma_initializer='ones', running_mean_initializer='zeros',
                 running_variance_initializer='ones', **kwargs):
        super(SyncBatchNorm, self).__init__(
            axis=1, momentum=momentum, epsilon=epsilon, center=center, scale=scale,
            use_global_stats=use_global_stats, beta_initializer=beta_initializer,
            gamma_initializer=gamma_initializer,
            running_mean_initializer=running_mean_initializer,
            running_variance_initializer=running_variance_initializer,
            in_channels=in_channels, **kwargs)
        if num_devices is None:
            warnings.warn("Caution using SyncBatchNorm: if not using all the GPUs, please "
                          "mannually set num_devices", UserWarning)
            num_devices = max(_context.num_gpus(), 1)
        self.num_devices = num_devices


def _as_factors(factor, n):
    try:
        return (int(factor),) * n
    except TypeError:
        factors = tuple(int(f) for f in factor)
        assert len(factors) == n, "wrong length {}".format(len(factors))
        return factors


class PixelShuffle1D(HybridBlock):
    """``(N, f*C, W) -> (N, C, W*f)``."""

    def __init__(self, factor):
        super(PixelShuffle1D, self).__init__()
        self._factor = int(factor)

    def hybrid_forward(self, F, x):
        f = self._factor
        x = F.reshape(x, (0, -4, -1, f, 0))       # N, C, f, W
        x = F.transpose(x, (0, 1, 3, 2))          # N, C, W, f
        return F.reshape(x, (0, 0, -3))           # N, C, W*f

    def __repr__(self):
        return "{}({})".format(self.__class__.__name__, self._factor)


class PixelShuffle2D(HybridBlock):
    """``(N, f1*f2*C, H, W) -> (N, C, H*f1, W*f2)``.

    >>> import agjit as mx
    >>> from agjit.gluon.contrib.nn import PixelShuffle2D
    >>> PixelShuffle2D((2, 3))(mx.nd.zeros((1, 12, 3, 5))).shape
    (1, 2, 6, 15)
    """

    def __init__(self, factor):
        super(PixelShuffle2D, self).__init__()
        self._factors = _as_factors(factor, 2)

    def hybrid_forward(self, F, x):
        f1, f2 = self._factors
        x = F.reshape(x, (0, -4, -1, f1 * f2, 0, 0))  # N, C, f1*f2, H, W
        x = F.reshape(x, (0, 0, -4, f1, f2, 0, 0))    # N, C, f1, f2, H, W
        x = F.transpose(x, (0, 1, 4, 2, 5, 3))        # N, C, H, f1, W, f2
        return F.reshape(x, (0, 0, -3, -3))           # N, C, H*f1, W*f2

    def __repr__(self):
        return "{}({})".format(self.__class__.__name__, self._factors)


class PixelShuffle3D(HybridBlock):
    """``(N, f1*f2*f3*C, D, H, W) -> (N, C, D*f1, H*f2, W*f3)``."""

    def __init__(self, factor):
        super(PixelShuffle3D, self).__init__()
        self._factors = _as_factors(factor, 3)

    def hybrid_forward(self, F, x):
        f1, f2, f3 = self._factors
        # N, C*f1*f2*f3, D, H, W -> N, C, f1*f2*f3, D, H, W -> N, C, f1, f2*f3, D, H, W
        x = F.reshape(x, (0, -4, -1, f1 * f2 * f3, 0, 0, 0))
        x = F.reshape(x, (0, 0, -4, f1, f2 * f3, 0, 0, 0))
        x = F.reshape(x, (0, 0, 0, -4, f2, f3, 0, 0, 0))      # N, C, f1, f2, f3, D, H, W
        x = F.transpose(x, (0, 1, 5, 2, 6, 3, 7, 4))          # N, C, D, f1, H, f2, W, f3
        return F.reshape(x, (0, 0, -3, -3, -3))

    def __repr__(self):
        return "{}({})".format(self.__class__.__name__, self._factors)
