"""AlexNet ("One weird trick for parallelizing convolutional neural networks", Krizhevsky
2014) as in MXNet 1.9.1's zoo: ``alexnet0_conv0_weight`` ... ``alexnet0_dense2_bias``."""
from ...block import HybridBlock
from ... import nn
from ..model_store import get_model_file

__all__ = ["AlexNet", "alexnet"]


class AlexNet(HybridBlock):
    """``features``: five convolutions (relu) with three 3x3/2 max poolings, Flatten, two
    Dense(4096, relu) + Dropout(0.5); ``output``: Dense(classes)."""

    def __init__(self, classes=1000, **kwargs):
        super(AlexNet, self).__init__(**kwargs)
        with self.name_scope():
            self.features = nn.HybridSequential(prefix="")
            with self.features.name_scope():
                f = self.features
                f.add(nn.Conv2D(64, kernel_size=11, strides=4, padding=2, activation="relu"))
                f.add(nn.MaxPool2D(pool_size=3, strides=2))
                f.add(nn.Conv2D(192, kernel_size=5, padding=2, activation="relu"))
                f.add(nn.MaxPool2D(pool_size=3, strides=2))
                for width in (384, 256, 256):
                    f.add(nn.Conv2D(width, kernel_size=3, padding=1, activation="relu"))
                f.add(nn.MaxPool2D(pool_size=3, strides=2))
                f.add(nn.Flatten())
                for _ in range(2):
                    f.add(nn.Dense(4096, activation="relu"))
                    f.add(nn.Dropout(0.5))
            self.output = nn.Dense(classes)

    def hybrid_forward(self, F, x):
        return self.output(self.features(x))


def alexnet(pretrained=False, ctx=None, root=None, **kwargs):
    """AlexNet. pretrained loads ``<root>/alexnet-<hash>.params`` (root defaults to
    ``$MXNET_HOME/models``); other kwargs (classes, prefix, params) go to :class:`AlexNet`."""
    net = AlexNet(**kwargs)
    if pretrained:
        net.load_parameters(get_model_file("alexnet", root=root), ctx=ctx)
    return net
