"""Neural-network operators, one module per sub-family (importing this module registers them
all):

* ``nn_dense``   -- dot, batch_dot, FullyConnected, Embedding;
* ``nn_softmax`` -- softmax, log_softmax, SoftmaxOutput, softmax_cross_entropy;
* ``nn_norm``    -- Dropout, BatchNorm, LayerNorm;
* ``nn_conv``    -- Convolution, Pooling;
* ``_nn_util``   -- the helpers they share.

More NN ops (Deconvolution, InstanceNorm, GroupNorm, UpSampling, ...) are in ``nn_extra``.
"""
from . import nn_dense, nn_softmax, nn_norm, nn_conv  # noqa: F401  (registers the ops)
