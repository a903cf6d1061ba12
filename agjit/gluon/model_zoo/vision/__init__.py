"""``gluon.model_zoo.vision``: MXNet 1.9.1's predefined image classification networks.

Every constructor takes ``pretrained=False``, ``ctx``, ``root`` (default
``$MXNET_HOME/models``, i.e. ``~/.mxnet/models``) and the network's own kwargs
(``classes=1000``, ``thumbnail`` for ResNets, ``batch_norm`` for VGG, ``multiplier`` for
MobileNets ...).  Parameter names and shapes equal MXNet's, so MXNet's pretrained
``<name>-<hash>.params`` files load; agjit never downloads them (see ``model_store``).

>>> from agjit.gluon.model_zoo import vision
>>> net = vision.get_model('resnet18_v1', classes=10, thumbnail=True)
"""
from .alexnet import *  # noqa: F401,F403
from .densenet import *  # noqa: F401,F403
from .inception import *  # noqa: F401,F403
from .resnet import *  # noqa: F401,F403
from .squeezenet import *  # noqa: F401,F403
from .vgg import *  # noqa: F401,F403
from .mobilenet import *  # noqa: F401,F403

# the constructors get_model's table names (the star imports above export the classes too)
from .alexnet import alexnet  # noqa: E402
from .densenet import densenet121, densenet161, densenet169, densenet201  # noqa: E402
from .inception import inception_v3  # noqa: E402
from .resnet import (resnet18_v1, resnet34_v1, resnet50_v1, resnet101_v1,  # noqa: E402
                     resnet152_v1, resnet18_v2, resnet34_v2, resnet50_v2, resnet101_v2,
                     resnet152_v2)
from .squeezenet import squeezenet1_0, squeezenet1_1  # noqa: E402
from .vgg import vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn  # noqa: E402
from .mobilenet import (mobilenet1_0, mobilenet0_75, mobilenet0_5,  # noqa: E402
                        mobilenet0_25, mobilenet_v2_1_0, mobilenet_v2_0_75, mobilenet_v2_0_5,
                        mobilenet_v2_0_25)

# get_model's names (MXNet 1.9.1's table: dots in squeezenet/mobilenet versions)
_models = {
    "resnet18_v1": resnet18_v1, "resnet34_v1": resnet34_v1, "resnet50_v1": resnet50_v1,
    "resnet101_v1": resnet101_v1, "resnet152_v1": resnet152_v1,
    "resnet18_v2": resnet18_v2, "resnet34_v2": resnet34_v2, "resnet50_v2": resnet50_v2,
    "resnet101_v2": resnet101_v2, "resnet152_v2": resnet152_v2,
    "vgg11": vgg11, "vgg13": vgg13, "vgg16": vgg16, "vgg19": vgg19,
    "vgg11_bn": vgg11_bn, "vgg13_bn": vgg13_bn, "vgg16_bn": vgg16_bn, "vgg19_bn": vgg19_bn,
    "alexnet": alexnet,
    "densenet121": densenet121, "densenet161": densenet161, "densenet169": densenet169,
    "densenet201": densenet201,
    "squeezenet1.0": squeezenet1_0, "squeezenet1.1": squeezenet1_1,
    "inceptionv3": inception_v3,
    "mobilenet1.0": mobilenet1_0, "mobilenet0.75": mobilenet0_75, "mobilenet0.5": mobilenet0_5,
    "mobilenet0.25": mobilenet0_25,
    "mobilenetv2_1.0": mobilenet_v2_1_0, "mobilenetv2_0.75": mobilenet_v2_0_75,
    "mobilenetv2_0.5": mobilenet_v2_0_5, "mobilenetv2_0.25": mobilenet_v2_0_25,
}


def get_model(name, **kwargs):
    """The network called ``name`` (case-insensitive; e.g. 'resnet50_v2', 'vgg16_bn',
    'squeezenet1.1', 'inceptionv3', 'mobilenetv2_0.5'), built with ``kwargs``
    (pretrained, ctx, root, classes, ...).  An unknown name raises ValueError listing the
    available ones."""
    key = name.lower()
    if key not in _models:
        raise ValueError("Model %s is not supported. Available options are\n\t%s"
                         % (key, "\n\t".join(sorted(_models))))
    return _models[key](**kwargs)
