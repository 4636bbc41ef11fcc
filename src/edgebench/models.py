"""Model registry: ResNet34 with the original ImageNet stem and with the CIFAR stem.

Every model takes NHWC float32 pixels in 0..255 (the uint8 range) and returns 10 logits; the
normalisation is the model's first layer, so every exported format takes the same input.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

from edgebench.contracts.vocabulary import INPUT_NAME, INPUT_SHAPE, NUM_CLASSES
from edgebench.errors import EdgebenchError


class ModelsError(EdgebenchError):
    """The model zoo's root: a model name or record it does not have."""


class UnknownModelError(ModelsError, KeyError):
    """A model name the zoo does not register: a KeyError too."""


class ModelRecordError(ModelsError, ValueError):
    """A registered model that lacks what was asked of it (an architecture record): a ValueError too."""

# Per-channel mean and std of the CIFAR-10 training set, in 0..255 units.
CIFAR10_MEAN = (125.307, 122.950, 113.865)
CIFAR10_STD = (62.993, 62.089, 66.705)


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    build: Callable[..., object]
    stem: str
    blocks: Optional[Tuple[int, ...]] = None  # basic blocks per stage (ResNets): complexity without a build
    widths: Tuple[int, ...] = (64, 128, 256, 512)


_REGISTRY: Dict[str, ModelSpec] = {}


def register(name: str, description: str, stem: str, blocks: Optional[Tuple[int, ...]] = None,
             widths: Tuple[int, ...] = (64, 128, 256, 512)):
    def deco(fn):
        _REGISTRY[name] = ModelSpec(name, description, fn, stem, blocks, widths)
        return fn

    return deco


def available() -> List[str]:
    return sorted(_REGISTRY)


def get(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(f"unknown model {name!r}; known: {', '.join(available())}") from None


def build(name: str, num_classes: int = NUM_CLASSES):
    return get(name).build(num_classes=num_classes)


def _basic_block(x, filters: int, stride: int, name: str):
    from tensorflow.keras import layers

    conv = dict(kernel_size=3, padding="same", use_bias=False, kernel_initializer="he_normal")
    shortcut = x
    y = layers.Conv2D(filters, strides=stride, name=f"{name}_conv1", **conv)(x)
    y = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, strides=1, name=f"{name}_conv2", **conv)(y)
    y = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, kernel_initializer="he_normal",
                                 name=f"{name}_down_conv")(x)
        shortcut = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=f"{name}_down_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def resnet(stage_blocks: Tuple[int, ...], stem: str, name: str, num_classes: int = NUM_CLASSES,
           widths: Tuple[int, ...] = (64, 128, 256, 512)):
    """A ResNet of basic blocks: `stage_blocks` blocks per stage at `widths` channels (the stem at the first),
    with the `imagenet` (7x7/2 conv + 3x3/2 max-pool) or `cifar` (3x3/1 conv) stem. The registered models use
    the standard widths; smaller ones serve tests that run under emulation."""
    import tensorflow as tf
    from tensorflow.keras import layers

    inputs = tf.keras.Input(shape=INPUT_SHAPE, name=INPUT_NAME, dtype="float32")
    x = layers.Normalization(mean=list(CIFAR10_MEAN), variance=[s * s for s in CIFAR10_STD], name="normalize")(inputs)
    if stem == "imagenet":
        x = layers.Conv2D(widths[0], 7, strides=2, padding="same", use_bias=False, kernel_initializer="he_normal",
                          name="stem_conv")(x)
    else:
        x = layers.Conv2D(widths[0], 3, strides=1, padding="same", use_bias=False, kernel_initializer="he_normal",
                          name="stem_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    if stem == "imagenet":
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, (blocks, filters) in enumerate(zip(stage_blocks, widths), start=1):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage > 1) else 1
            x = _basic_block(x, filters, stride, name=f"s{stage}b{b + 1}")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return tf.keras.Model(inputs, outputs, name=name)


@register("resnet34", "ResNet34, original ImageNet stem (7x7/2 conv + 3x3/2 max-pool)", stem="imagenet",
          blocks=(3, 4, 6, 3))
def resnet34(num_classes: int = NUM_CLASSES):
    return resnet((3, 4, 6, 3), "imagenet", "resnet34", num_classes)


@register("resnet34-cifar", "ResNet34, CIFAR stem (3x3/1 conv, no pool): the seed study's model", stem="cifar",
          blocks=(3, 4, 6, 3))
def resnet34_cifar(num_classes: int = NUM_CLASSES):
    return resnet((3, 4, 6, 3), "cifar", "resnet34_cifar", num_classes)


@register("resnet18", "ResNet18, original ImageNet stem (small, for quick tests)", stem="imagenet",
          blocks=(2, 2, 2, 2))
def resnet18(num_classes: int = NUM_CLASSES):
    return resnet((2, 2, 2, 2), "imagenet", "resnet18", num_classes)


DEMO_WIDTHS = (32, 64, 128, 256)


@register("resnet18-half", "ResNet18 at half width (32-256 channels), ImageNet stem: `make demo`'s model",
          stem="imagenet", blocks=(2, 2, 2, 2), widths=DEMO_WIDTHS)
def resnet18_half(num_classes: int = NUM_CLASSES):
    return resnet((2, 2, 2, 2), "imagenet", "resnet18_half", num_classes, widths=DEMO_WIDTHS)


def _conv(side: int, k: int, c_in: int, c_out: int, stride: int = 1) -> Tuple[int, int, int]:
    """(output side, MACs, params) of a bias-free 'same' convolution followed by a batch norm."""
    out = -(-side // stride)
    return out, out * out * k * k * c_in * c_out, k * k * c_in * c_out + 4 * c_out


def complexity(name: str, num_classes: int = NUM_CLASSES) -> Dict[str, int]:
    """What count_flops(build(name)) says, from the architecture alone (no TensorFlow, no build): MACs, FLOPs
    and parameters (batch-norm statistics included, as Keras counts them). tests/unit/test_models checks it
    against a real build of every registered model."""
    spec = get(name)
    if spec.blocks is None:
        raise ModelRecordError(f"model {name!r} has no architecture record; build it and use count_flops")
    side, c = INPUT_SHAPE[0], spec.widths[0]
    side, macs, params = _conv(side, 7 if spec.stem == "imagenet" else 3, INPUT_SHAPE[2], c,
                               2 if spec.stem == "imagenet" else 1)
    if spec.stem == "imagenet":
        side = -(-side // 2)  # the 3x3/2 max-pool
    for stage, (blocks, width) in enumerate(zip(spec.blocks, spec.widths), start=1):
        for b in range(blocks):
            stride = 2 if (b == 0 and stage > 1) else 1
            parts = [_conv(side, 3, c, width, stride)]
            parts.append(_conv(parts[0][0], 3, width, width))
            if stride != 1 or c != width:
                parts.append(_conv(side, 1, c, width, stride))
            side, c = parts[0][0], width
            macs += sum(p[1] for p in parts)
            params += sum(p[2] for p in parts)
    macs += c * num_classes
    params += c * num_classes + num_classes
    return {"macs": int(macs), "flops": int(2 * macs), "params": int(params)}


def count_flops(model) -> Dict[str, int]:
    """Multiply-accumulates and FLOPs (2 per MAC) for one image, from the layer shapes.

    Counts convolutions and dense layers (the work that matters); batch-norm, ReLU, add and pooling
    are elementwise and are left out, as is customary for ResNet FLOP counts.
    """
    from tensorflow.keras import layers

    macs = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output_shape
            kh, kw = layer.kernel_size
            c_in = layer.input_shape[-1]
            macs += h * w * kh * kw * c_in * c_out // layer.groups
        elif isinstance(layer, layers.Dense):
            macs += int(layer.input_shape[-1]) * layer.units
    return {"macs": int(macs), "flops": int(2 * macs), "params": int(model.count_params())}
