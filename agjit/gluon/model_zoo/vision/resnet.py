"""ResNet V1 ("Deep Residual Learning for Image Recognition", He et al. 2015) and V2
("Identity Mappings in Deep Residual Networks", He et al. 2016) as in MXNet 1.9.1's zoo.

The blocks are created in the same order and name scopes as MXNet's, so the parameter names
(``resnetv10_conv0_weight``, ``resnetv10_stage1_conv0_weight``, ``resnetv10_dense0_weight``,
``resnetv20_stage2_batchnorm3_gamma`` ...) and shapes equal MXNet's and its pretrained
``.params`` files load.
"""
from ...block import HybridBlock
from ... import nn
from ..model_store import get_model_file

__all__ = ["ResNetV1", "ResNetV2", "BasicBlockV1", "BasicBlockV2", "BottleneckV1",
           "BottleneckV2", "resnet18_v1", "resnet34_v1", "resnet50_v1", "resnet101_v1",
           "resnet152_v1", "resnet18_v2", "resnet34_v2", "resnet50_v2", "resnet101_v2",
           "resnet152_v2", "get_resnet"]


def _conv3x3(channels, stride, in_channels):
    return nn.Conv2D(channels, kernel_size=3, strides=stride, padding=1, use_bias=False,
                     in_channels=in_channels)


def _projection_v1(channels, stride, in_channels):
    """1x1 strided convolution + BatchNorm: the V1 shortcut when the shape changes."""
    proj = nn.HybridSequential(prefix="")
    proj.add(nn.Conv2D(channels, kernel_size=1, strides=stride, use_bias=False,
                       in_channels=in_channels))
    proj.add(nn.BatchNorm())
    return proj


class BasicBlockV1(HybridBlock):
    """Two 3x3 convolutions (ResNet-18/34 V1): ``relu(bn(conv(relu(bn(conv(x))))) + x)``.

    channels : output channels; stride : of the first convolution; downsample : add the 1x1
    projection shortcut; in_channels : input channels (0 = inferred at the first call).
    """

    def __init__(self, channels, stride, downsample=False, in_channels=0, **kwargs):
        super(BasicBlockV1, self).__init__(**kwargs)
        body = nn.HybridSequential(prefix="")
        body.add(_conv3x3(channels, stride, in_channels), nn.BatchNorm(), nn.Activation("relu"),
                 _conv3x3(channels, 1, channels), nn.BatchNorm())
        self.body = body
        self.downsample = _projection_v1(channels, stride, in_channels) if downsample else None

    def hybrid_forward(self, F, x):
        shortcut = self.downsample(x) if self.downsample else x
        return F.Activation(shortcut + self.body(x), act_type="relu")


class BottleneckV1(HybridBlock):
    """1x1 reduce, 3x3, 1x1 expand (ResNet-50/101/152 V1), shortcut added before the last
    relu.  As in MXNet, the two 1x1 convolutions of the body keep their bias."""

    def __init__(self, channels, stride, downsample=False, in_channels=0, **kwargs):
        super(BottleneckV1, self).__init__(**kwargs)
        mid = channels // 4
        body = nn.HybridSequential(prefix="")
        body.add(nn.Conv2D(mid, kernel_size=1, strides=stride), nn.BatchNorm(),
                 nn.Activation("relu"),
                 _conv3x3(mid, 1, mid), nn.BatchNorm(), nn.Activation("relu"),
                 nn.Conv2D(channels, kernel_size=1, strides=1), nn.BatchNorm())
        self.body = body
        self.downsample = _projection_v1(channels, stride, in_channels) if downsample else None

    def hybrid_forward(self, F, x):
        shortcut = self.downsample(x) if self.downsample else x
        return F.Activation(self.body(x) + shortcut, act_type="relu")


class BasicBlockV2(HybridBlock):
    """Pre-activation basic block (ResNet-18/34 V2): bn-relu-conv3x3 twice, plus the shortcut
    (a 1x1 convolution of the pre-activated input when the shape changes)."""

    def __init__(self, channels, stride, downsample=False, in_channels=0, **kwargs):
        super(BasicBlockV2, self).__init__(**kwargs)
        self.bn1 = nn.BatchNorm()
        self.conv1 = _conv3x3(channels, stride, in_channels)
        self.bn2 = nn.BatchNorm()
        self.conv2 = _conv3x3(channels, 1, channels)
        self.downsample = (nn.Conv2D(channels, 1, stride, use_bias=False, in_channels=in_channels)
                           if downsample else None)

    def hybrid_forward(self, F, x):
        pre = F.Activation(self.bn1(x), act_type="relu")
        shortcut = self.downsample(pre) if self.downsample else x
        y = self.conv1(pre)
        y = self.conv2(F.Activation(self.bn2(y), act_type="relu"))
        return y + shortcut


class BottleneckV2(HybridBlock):
    """Pre-activation bottleneck (ResNet-50/101/152 V2): bn-relu-conv 1x1, 3x3 (strided), 1x1,
    plus the shortcut."""

    def __init__(self, channels, stride, downsample=False, in_channels=0, **kwargs):
        super(BottleneckV2, self).__init__(**kwargs)
        mid = channels // 4
        self.bn1 = nn.BatchNorm()
        self.conv1 = nn.Conv2D(mid, kernel_size=1, strides=1, use_bias=False)
        self.bn2 = nn.BatchNorm()
        self.conv2 = _conv3x3(mid, stride, mid)
        self.bn3 = nn.BatchNorm()
        self.conv3 = nn.Conv2D(channels, kernel_size=1, strides=1, use_bias=False)
        self.downsample = (nn.Conv2D(channels, 1, stride, use_bias=False, in_channels=in_channels)
                           if downsample else None)

    def hybrid_forward(self, F, x):
        pre = F.Activation(self.bn1(x), act_type="relu")
        shortcut = self.downsample(pre) if self.downsample else x
        y = self.conv1(pre)
        y = self.conv2(F.Activation(self.bn2(y), act_type="relu"))
        y = self.conv3(F.Activation(self.bn3(y), act_type="relu"))
        return y + shortcut


def _stage(block, num_blocks, channels, stride, index, in_channels):
    """``stage<index>_``: the first block may change stride/channels, the rest keep them."""
    stage = nn.HybridSequential(prefix="stage%d_" % index)
    with stage.name_scope():
        stage.add(block(channels, stride, channels != in_channels, in_channels=in_channels,
                        prefix=""))
        for _ in range(num_blocks - 1):
            stage.add(block(channels, 1, False, in_channels=channels, prefix=""))
    return stage


def _stem(features, channels, thumbnail):
    """7x7/2 convolution + bn + relu + 3x3/2 max pooling, or one 3x3 convolution for small
    (thumbnail, e.g. CIFAR-sized) images."""
    if thumbnail:
        features.add(_conv3x3(channels, 1, 0))
    else:
        features.add(nn.Conv2D(channels, 7, 2, 3, use_bias=False), nn.BatchNorm(),
                     nn.Activation("relu"), nn.MaxPool2D(3, 2, 1))


class ResNetV1(HybridBlock):
    """ResNet V1: ``features`` (stem, 4 stages, global average pooling) and ``output`` (Dense).

    block : BasicBlockV1 or BottleneckV1; layers : blocks per stage; channels : stem channels
    followed by each stage's (one longer than ``layers``); classes : output units (1000);
    thumbnail : 3x3 stem without pooling for small images.
    """

    def __init__(self, block, layers, channels, classes=1000, thumbnail=False, **kwargs):
        super(ResNetV1, self).__init__(**kwargs)
        assert len(layers) == len(channels) - 1
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            _stem(self.features, channels[0], thumbnail)
            for i, n in enumerate(layers):
                self.features.add(_stage(block, n, channels[i + 1], 1 if i == 0 else 2, i + 1,
                                         in_channels=channels[i]))
            self.features.add(nn.GlobalAvgPool2D())
            self.output = nn.Dense(classes, in_units=channels[-1])

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


class ResNetV2(HybridBlock):
    """ResNet V2: an affine-free BatchNorm of the input, stem, 4 pre-activation stages, final
    bn + relu, global average pooling, Flatten (``features``), and ``output`` (Dense).
    Arguments as :class:`ResNetV1`."""

    def __init__(self, block, layers, channels, classes=1000, thumbnail=False, **kwargs):
        super(ResNetV2, self).__init__(**kwargs)
        assert len(layers) == len(channels) - 1
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            self.features.add(nn.BatchNorm(scale=False, center=False))
            _stem(self.features, channels[0], thumbnail)
            width = channels[0]
            for i, n in enumerate(layers):
                self.features.add(_stage(block, n, channels[i + 1], 1 if i == 0 else 2, i + 1,
                                         in_channels=width))
                width = channels[i + 1]
            self.features.add(nn.BatchNorm(), nn.Activation("relu"), nn.GlobalAvgPool2D(),
                              nn.Flatten())
            self.output = nn.Dense(classes, in_units=width)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


# depth: (block kind, blocks per stage, channels of the stem and of each stage)
resnet_spec = {18: ("basic_block", [2, 2, 2, 2], [64, 64, 128, 256, 512]),
               34: ("basic_block", [3, 4, 6, 3], [64, 64, 128, 256, 512]),
               50: ("bottle_neck", [3, 4, 6, 3], [64, 256, 512, 1024, 2048]),
               101: ("bottle_neck", [3, 4, 23, 3], [64, 256, 512, 1024, 2048]),
               152: ("bottle_neck", [3, 8, 36, 3], [64, 256, 512, 1024, 2048])}
resnet_net_versions = [ResNetV1, ResNetV2]
resnet_block_versions = [{"basic_block": BasicBlockV1, "bottle_neck": BottleneckV1},
                         {"basic_block": BasicBlockV2, "bottle_neck": BottleneckV2}]


def get_resnet(version, num_layers, pretrained=False, ctx=None, root=None, **kwargs):
    """ResNet ``version`` (1 or 2) with ``num_layers`` (18, 34, 50, 101, 152).

    pretrained : load ``<root>/resnet<N>_v<V>-<hash>.params`` (root defaults to
    ``$MXNET_HOME/models``); ctx : where to load them; other kwargs (classes, thumbnail,
    prefix, params) go to the network class.
    """
    assert num_layers in resnet_spec, \
        "Invalid number of layers: %d. Options are %s" % (num_layers, str(resnet_spec.keys()))
    assert 1 <= version <= 2, "Invalid resnet version: %d. Options are 1 and 2." % version
    kind, layers, channels = resnet_spec[num_layers]
    net = resnet_net_versions[version - 1](resnet_block_versions[version - 1][kind], layers,
                                           channels, **kwargs)
    if pretrained:
        net.load_parameters(get_model_file("resnet%d_v%d" % (num_layers, version), root=root),
                            ctx=ctx)
    return net


def _constructor(version, depth):
    def make(**kwargs):
        return get_resnet(version, depth, **kwargs)
    make.__name__ = "resnet%d_v%d" % (depth, version)
    make.__qualname__ = make.__name__
    make.__doc__ = ("ResNet-%d V%d. kwargs: pretrained (False), ctx, root ('$MXNET_HOME/models'),"
                    " classes (1000), thumbnail (False)." % (depth, version))
    return make


resnet18_v1 = _constructor(1, 18)
resnet34_v1 = _constructor(1, 34)
resnet50_v1 = _constructor(1, 50)
resnet101_v1 = _constructor(1, 101)
resnet152_v1 = _constructor(1, 152)
resnet18_v2 = _constructor(2, 18)
resnet34_v2 = _constructor(2, 34)
resnet50_v2 = _constructor(2, 50)
resnet101_v2 = _constructor(2, 101)
resnet152_v2 = _constructor(2, 152)
