"""``gluon.contrib``: MXNet 1.9.1's contributed Gluon blocks -- ``nn`` (Concurrent,
HybridConcurrent, Identity, SyncBatchNorm, PixelShuffle1D/2D/3D, SparseEmbedding), ``rnn``
(VariationalDropoutCell, LSTMPCell, the convolutional RNN/LSTM/GRU cells) and
``estimator`` (Estimator and its event handlers) and ``data`` (IntervalSampler).  MXNet's
``contrib.cnn`` (DeformableConvolution, which needs MXNet's _contrib_DeformableConvolution
op) is not here."""
from . import nn  # noqa: F401
from . import rnn  # noqa: F401
from . import estimator  # noqa: F401
from . import data  # noqa: F401
