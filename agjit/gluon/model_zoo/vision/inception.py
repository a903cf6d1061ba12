"""Inception V3 ("Rethinking the Inception Architecture for Computer Vision", Szegedy et al.
2015) as in MXNet 1.9.1's zoo: ``inception30_conv0_weight``, ``inception30_A1_conv0_weight``
... (input 299x299)."""
from ...block import HybridBlock
from ... import nn
from ..model_store import get_model_file
from ._blocks import HybridConcurrent

__all__ = ["Inception3", "inception_v3"]

_CONV_ARGS = ("channels", "kernel_size", "strides", "padding")


def _conv_bn_relu(**kwargs):
    """A bias-free convolution + BatchNorm(epsilon=0.001) + relu."""
    out = nn.HybridSequential(prefix="")
    out.add(nn.Conv2D(use_bias=False, **kwargs), nn.BatchNorm(epsilon=0.001),
            nn.Activation("relu"))
    return out


def _branch(pool, *convs):
    """An optional pooling ('avg': 3x3/1 pad 1, 'max': 3x3/2) followed by conv-bn-relu units,
    each given as (channels, kernel_size, strides, padding) with None = the default."""
    out = nn.HybridSequential(prefix="")
    if pool == "avg":
        out.add(nn.AvgPool2D(pool_size=3, strides=1, padding=1))
    elif pool == "max":
        out.add(nn.MaxPool2D(pool_size=3, strides=2))
    for setting in convs:
        out.add(_conv_bn_relu(**{k: v for k, v in zip(_CONV_ARGS, setting) if v is not None}))
    return out


def _mixed(prefix, *branches):
    """Branches (built inside the block's name scope) concatenated along the channels."""
    out = HybridConcurrent(axis=1, prefix=prefix)
    with out.name_scope():
        for make in branches:
            out.add(make())
    return out


def _block_a(pool_features, prefix):
    return _mixed(prefix,
                  lambda: _branch(None, (64, 1, None, None)),
                  lambda: _branch(None, (48, 1, None, None), (64, 5, None, 2)),
                  lambda: _branch(None, (64, 1, None, None), (96, 3, None, 1), (96, 3, None, 1)),
                  lambda: _branch("avg", (pool_features, 1, None, None)))


def _block_b(prefix):
    return _mixed(prefix,
                  lambda: _branch(None, (384, 3, 2, None)),
                  lambda: _branch(None, (64, 1, None, None), (96, 3, None, 1), (96, 3, 2, None)),
                  lambda: _branch("max"))


def _block_c(c7, prefix):
    return _mixed(prefix,
                  lambda: _branch(None, (192, 1, None, None)),
                  lambda: _branch(None, (c7, 1, None, None), (c7, (1, 7), None, (0, 3)),
                                  (192, (7, 1), None, (3, 0))),
                  lambda: _branch(None, (c7, 1, None, None), (c7, (7, 1), None, (3, 0)),
                                  (c7, (1, 7), None, (0, 3)), (c7, (7, 1), None, (3, 0)),
                                  (192, (1, 7), None, (0, 3))),
                  lambda: _branch("avg", (192, 1, None, None)))


def _block_d(prefix):
    return _mixed(prefix,
                  lambda: _branch(None, (192, 1, None, None), (320, 3, 2, None)),
                  lambda: _branch(None, (192, 1, None, None), (192, (1, 7), None, (0, 3)),
                                  (192, (7, 1), None, (3, 0)), (192, 3, 2, None)),
                  lambda: _branch("max"))


def _split_tail(head):
    """``head`` followed by a 1x3 and a 3x1 convolution side by side (block E)."""
    seq = nn.HybridSequential(prefix="")
    seq.add(head)
    split = HybridConcurrent(axis=1, prefix="")
    split.add(_branch(None, (384, (1, 3), None, (0, 1))))
    split.add(_branch(None, (384, (3, 1), None, (1, 0))))
    seq.add(split)
    return seq


def _block_e(prefix):
    return _mixed(prefix,
                  lambda: _branch(None, (320, 1, None, None)),
                  lambda: _split_tail(_branch(None, (384, 1, None, None))),
                  lambda: _split_tail(_branch(None, (448, 1, None, None), (384, 3, None, 1))),
                  lambda: _branch("avg", (192, 1, None, None)))


def make_aux(classes):
    """The auxiliary classifier head of the paper (MXNet defines it; the zoo network does not
    use it)."""
    out = nn.HybridSequential(prefix="")
    out.add(nn.AvgPool2D(pool_size=5, strides=3))
    out.add(_conv_bn_relu(channels=128, kernel_size=1))
    out.add(_conv_bn_relu(channels=768, kernel_size=5))
    out.add(nn.Flatten())
    out.add(nn.Dense(classes))
    return out


class Inception3(HybridBlock):
    """``features``: the stem, blocks A1-A3, B, C1-C4, D, E1-E2, 8x8 average pooling and
    Dropout(0.5); ``output``: Dense(classes).  classes : 1000."""

    def __init__(self, classes=1000, **kwargs):
        super(Inception3, self).__init__(**kwargs)
        with self.name_scope():
            self.features = f = nn.HybridSequential(prefix="")
            f.add(_conv_bn_relu(channels=32, kernel_size=3, strides=2))
            f.add(_conv_bn_relu(channels=32, kernel_size=3))
            f.add(_conv_bn_relu(channels=64, kernel_size=3, padding=1))
            f.add(nn.MaxPool2D(pool_size=3, strides=2))
            f.add(_conv_bn_relu(channels=80, kernel_size=1))
            f.add(_conv_bn_relu(channels=192, kernel_size=3))
            f.add(nn.MaxPool2D(pool_size=3, strides=2))
            f.add(_block_a(32, "A1_"))
            f.add(_block_a(64, "A2_"))
            f.add(_block_a(64, "A3_"))
            f.add(_block_b("B_"))
            f.add(_block_c(128, "C1_"))
            f.add(_block_c(160, "C2_"))
            f.add(_block_c(160, "C3_"))
            f.add(_block_c(192, "C4_"))
            f.add(_block_d("D_"))
            f.add(_block_e("E1_"))
            f.add(_block_e("E2_"))
            f.add(nn.AvgPool2D(pool_size=8))
            f.add(nn.Dropout(0.5))
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def inception_v3(pretrained=False, ctx=None, root=None, **kwargs):
    """Inception V3. pretrained loads ``<root>/inceptionv3-<hash>.params`` (root defaults to
    ``$MXNET_HOME/models``); other kwargs (classes, prefix, params) go to :class:`Inception3`."""
    net = Inception3(**kwargs)
    if pretrained:
        net.load_parameters(get_model_file("inceptionv3", root=root), ctx=ctx)
    return net
