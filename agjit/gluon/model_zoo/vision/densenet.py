"""DenseNet ("Densely Connected Convolutional Networks", Huang et al. 2016) as in MXNet
1.9.1's zoo: ``densenet0_conv0_weight``, ``densenet0_stage1_batchnorm0_gamma`` ... (606
parameters for densenet121)."""
from ...block import HybridBlock
from ... import nn
from ..model_store import get_model_file
from ._blocks import HybridConcurrent, Identity

__all__ = ["DenseNet", "densenet121", "densenet161", "densenet169", "densenet201"]


def _dense_layer(growth_rate, bn_size, dropout):
    """bn-relu-conv1x1(bn_size*growth) - bn-relu-conv3x3(growth) [-dropout], its output
    concatenated to its input along the channels."""
    branch = nn.HybridSequential(prefix="")
    branch.add(nn.BatchNorm(), nn.Activation("relu"),
               nn.Conv2D(bn_size * growth_rate, kernel_size=1, use_bias=False),
               nn.BatchNorm(), nn.Activation("relu"),
               nn.Conv2D(growth_rate, kernel_size=3, padding=1, use_bias=False))
    if dropout:
        branch.add(nn.Dropout(dropout))
    layer = HybridConcurrent(axis=1, prefix="")
    layer.add(Identity())
    layer.add(branch)
    return layer


def _dense_block(num_layers, bn_size, growth_rate, dropout, stage_index):
    block = nn.HybridSequential(prefix="stage%d_" % stage_index)
    with block.name_scope():
        for _ in range(num_layers):
            block.add(_dense_layer(growth_rate, bn_size, dropout))
    return block


def _transition(channels):
    """bn-relu-conv1x1 to ``channels`` and a 2x2/2 average pooling between dense blocks."""
    trans = nn.HybridSequential(prefix="")
    trans.add(nn.BatchNorm(), nn.Activation("relu"),
              nn.Conv2D(channels, kernel_size=1, use_bias=False),
              nn.AvgPool2D(pool_size=2, strides=2))
    return trans


class DenseNet(HybridBlock):
    """num_init_features : stem channels; growth_rate : channels each layer adds;
    block_config : layers per dense block; bn_size : bottleneck width factor (4);
    dropout : rate after each layer (0 = none); classes : 1000.
    The final 7x7 average pooling expects 224x224 inputs."""

    def __init__(self, num_init_features, growth_rate, block_config, bn_size=4, dropout=0,
                 classes=1000, **kwargs):
        super(DenseNet, self).__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            self.features.add(nn.Conv2D(num_init_features, kernel_size=7, strides=2, padding=3,
                                        use_bias=False),
                              nn.BatchNorm(), nn.Activation("relu"),
                              nn.MaxPool2D(pool_size=3, strides=2, padding=1))
            width = num_init_features
            last = len(block_config) - 1
            for i, num_layers in enumerate(block_config):
                self.features.add(_dense_block(num_layers, bn_size, growth_rate, dropout, i + 1))
                width += num_layers * growth_rate
                if i != last:
                    width //= 2
                    self.features.add(_transition(width))
            self.features.add(nn.BatchNorm(), nn.Activation("relu"), nn.AvgPool2D(pool_size=7),
                              nn.Flatten())
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


# depth: (stem channels, growth rate, layers per dense block)
densenet_spec = {121: (64, 32, [6, 12, 24, 16]),
                 161: (96, 48, [6, 12, 36, 24]),
                 169: (64, 32, [6, 12, 32, 32]),
                 201: (64, 32, [6, 12, 48, 32])}


def get_densenet(num_layers, pretrained=False, ctx=None, root=None, **kwargs):
    """DenseNet with ``num_layers`` (121, 161, 169, 201); pretrained loads
    ``<root>/densenet<N>-<hash>.params``."""
    stem, growth, config = densenet_spec[num_layers]
    net = DenseNet(stem, growth, config, **kwargs)
    if pretrained:
        net.load_parameters(get_model_file("densenet%d" % num_layers, root=root), ctx=ctx)
    return net


def _constructor(depth):
    def make(**kwargs):
        return get_densenet(depth, **kwargs)
    make.__name__ = make.__qualname__ = "densenet%d" % depth
    make.__doc__ = ("DenseNet-%d. kwargs: pretrained (False), ctx, root ('$MXNET_HOME/models'), "
                    "classes (1000), bn_size, dropout." % depth)
    return make


densenet121 = _constructor(121)
densenet161 = _constructor(161)
densenet169 = _constructor(169)
densenet201 = _constructor(201)
