"""The architectures users ship, as data: name -> a builder of a small Keras model of that family.

Every exporter test that takes an ``architecture`` covers them all (see
``test_architectures.py``), the way Optimum's ``PYTORCH_EXPORT_MODELS_TINY``
feeds its exporter grid: adding an architecture is one entry here.

``keras.applications`` models are built with ``weights=None`` (nothing can be
downloaded) at 32x32 RGB with 4 classes; the MobileNets at their smallest
``alpha``. ``tier`` says where each runs: ``fast`` in ``make test-fast``, ``e2e``
in ``make test``, ``slow`` (a minute or more of export each on 2 cores: tens of
millions of parameters, hundreds of layers) in ``make test-slow`` only, to keep
the whole suite within its time.
Untrained, a deep network's activations vanish through BatchNorm layers still at
their initial statistics and every image gets the same output, so :func:`build`
settles them on a batch of random pixels; BatchNorm momentum is lowered where a
test trains briefly (:func:`fast_batchnorm`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

SIZE = 32
CLASSES = 4


@dataclass(frozen=True)
class Architecture:
    """One family: how to build it, the input it takes, whether it fits the fast tier, what it exercises."""

    build: Callable[[], Any]
    input_shape: tuple[int, int, int] = (SIZE, SIZE, 3)
    tier: str = "e2e"  # "fast", "e2e" or "slow" (see the module docstring)
    #: What in its graph the exporters must handle (documentation for a reader of the grid).
    exercises: str = ""
    #: Format -> what its one-line failure must name, for the formats that cannot serve this model today.
    cannot: dict[str, str] = field(default_factory=dict)
    #: Format -> why its file misses its gate on this untrained model today. A float format's miss is expected:
    #: the test fails once the gap closes, so the entry is removed then. An int8 one depends on the CPU: the test
    #: expects the miss only where it happens.
    open_gaps: dict[str, str] = field(default_factory=dict)


def _apps():
    from edgecnn import tfquiet

    return tfquiet.keras().applications


def _app(name: str, *, classes: int = CLASSES, **options) -> Callable[[], Any]:
    def build():
        return getattr(_apps(), name)(input_shape=(SIZE, SIZE, 3), weights=None, classes=classes, **options)
    return build


def reference_cnn():
    from edgecnn.model import build_model

    return build_model((28, 28, 1), 10)


def nested_wrapper(classes: int = CLASSES, alpha: float = 0.35):
    """The user's wrapper: ``Input -> Rescaling -> MobileNetV2`` as a nested model (preprocessing outside it)."""
    from edgecnn import tfquiet

    keras = tfquiet.keras()
    inner = _app("MobileNetV2", classes=classes, alpha=alpha)()
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    return keras.Model(inputs, inner(keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)), name="wrapped")


def normalization_inside():
    """A small model whose first layer is a Keras ``Normalization`` with ImageNet statistics in 0..255 pixels."""
    from edgecnn import tfquiet

    keras = tfquiet.keras()
    layers = keras.layers
    inputs = keras.Input((SIZE, SIZE, 3))
    x = layers.Normalization(mean=[123.7, 116.3, 103.5], variance=[3409.0, 3249.0, 3262.0])(inputs)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="swish")(x)
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.LayerNormalization()(x)
    x = layers.Activation("gelu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(CLASSES, activation="softmax", name="predictions")(x))


_SATURATED = ("untrained, EfficientNetV2B0 saturates (float16 differs by 1.0, one-hot outputs): its float32 "
              "TFLite and ONNX files differ from Keras by 1e-3, not yet explained")

_COIN_FLIP = ("untrained, EfficientNetB0's outputs are near one-hot (float16 differs by 1.0): its int8 ONNX top-1 "
              "agrees on 19 or 20 of the 40 images depending on the CPU (AMD EPYC, AVX2 only: 19; Intel Xeon: 20 or "
              "more); tests/test_trained_architectures.py holds the trained model's int8")

#: name -> architecture, in the order the tables show them.
ARCHITECTURES: dict[str, Architecture] = {
    "reference-cnn": Architecture(reference_cnn, (28, 28, 1), tier="fast", exercises="Conv2D, MaxPool, Flatten, Dense"),
    # e2e: their depthwise convs, ReLU6, BatchNorm and residual adds run in the fast tier inside nested-wrapper
    "mobilenet": Architecture(_app("MobileNet", alpha=0.25), exercises="depthwise convs, ReLU6, BatchNorm"),
    "mobilenet-v2": Architecture(_app("MobileNetV2", alpha=0.35), exercises="inverted residual adds"),
    "mobilenet-v3-small": Architecture(_app("MobileNetV3Small", alpha=0.75, include_preprocessing=True), tier="fast",
                                       exercises="Rescaling inside, hard-swish, squeeze-and-excitation"),
    "nested-wrapper": Architecture(nested_wrapper, tier="fast",
                                   exercises="a nested functional model (MobileNetV2: depthwise, ReLU6, residual adds)"),
    "normalization-inside": Architecture(
        normalization_inside, tier="fast", exercises="Normalization inside, swish, LayerNormalization, GELU",
        # LiteRT has no int16 SQUARED_DIFFERENCE (LayerNormalization's variance): the file is refused at export
        cannot={"tflite-int16x8": "SQUARED_DIFFERENCE"}),
    "mobilenet-v3-large": Architecture(_app("MobileNetV3Large", include_preprocessing=True),
                                       exercises="hard-swish, squeeze-and-excitation"),
    "efficientnet-b0": Architecture(_app("EfficientNetB0"), exercises="Rescaling + Normalization, swish, SE",
                                    open_gaps=dict.fromkeys(("onnx-int8", "onnx-ort-int8"), _COIN_FLIP)),
    "efficientnet-v2-b0": Architecture(_app("EfficientNetV2B0", include_preprocessing=True),
                                       exercises="Normalization inside, fused MBConv",
                                       open_gaps=dict.fromkeys(("tflite", "onnx", "onnx-ort"), _SATURATED)),
    "resnet50": Architecture(_app("ResNet50"), tier="slow", exercises="residual adds, BatchNorm"),
    "resnet50-v2": Architecture(_app("ResNet50V2"), tier="slow", exercises="pre-activation residuals"),
    "densenet121": Architecture(_app("DenseNet121"), tier="slow", exercises="concatenations"),
    "nasnet-mobile": Architecture(_app("NASNetMobile"), tier="slow", exercises="separable convs, many concatenations"),
    "convnext-tiny": Architecture(_app("ConvNeXtTiny"), tier="slow",
                                  exercises="Normalization inside, LayerNormalization, GELU",
                                  cannot={"tflite-int16x8": "SQUARED_DIFFERENCE"}),
}


def build(name: str, seed: int = 0):
    """The named model, seeded, its BatchNorm statistics settled (see the module docstring)."""
    from edgecnn import tfquiet

    keras = tfquiet.keras()
    keras.utils.set_random_seed(seed)
    model = ARCHITECTURES[name].build()
    _settle_batchnorm(model, ARCHITECTURES[name].input_shape, seed)
    return model


def _settle_batchnorm(model, input_shape: tuple[int, int, int], seed: int) -> None:
    """Set every BatchNorm's moving statistics to those of a batch of random pixels: at their initial values
    (mean 0, variance 1) activations vanish through a deep untrained network and every image gets the same output."""
    import numpy as np

    from edgecnn.model import all_layers

    layers = [layer for layer in all_layers(model) if type(layer).__name__ == "BatchNormalization"]
    if not layers:
        return
    x = np.random.default_rng(seed).random((16, *input_shape), dtype=np.float32) * 255
    saved = [layer.momentum for layer in layers]
    fast_batchnorm(model, 0.0)
    model(x, training=True)
    for layer, momentum in zip(layers, saved):
        layer.momentum = momentum


def fast_batchnorm(model, momentum: float = 0.9) -> None:
    """Lower every BatchNorm's momentum, so a few epochs move its moving statistics to the data's."""
    from edgecnn.model import all_layers

    for layer in all_layers(model):
        if type(layer).__name__ == "BatchNormalization":
            layer.momentum = momentum


#: The architectures trained briefly on real images by the e2e tests and ``bench/architectures.py``: the ones
#: users ship to phones first, in the three shapes their preprocessing comes in (inside as Rescaling, outside in
#: the user's wrapper, inside as Rescaling + Normalization).
TRAINED = ("mobilenet-v3-small", "nested-wrapper", "efficientnet-b0")
#: Fashion-MNIST classes as the trained copies see them.
REAL_CLASSES = 10


def fashion_folders(root, *, train: int, test: int):
    """The first ``train`` and ``test`` Fashion-MNIST images as 32x32 RGB PNGs in ``root/{train,test}/<class>/``:
    real images in the class-folder layout a user's own data comes in."""
    from pathlib import Path

    from PIL import Image

    from edgecnn.datasets import load_dataset

    root, data = Path(root), load_dataset(allow_download=False)
    names = [name.replace("/", " or ") for name in data.names(REAL_CLASSES)]  # "T-shirt/top" is no folder name
    for split, images, labels, count in (("train", data.x_train, data.y_train, train),
                                         ("test", data.x_test, data.y_test, test)):
        for name in names:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            picture = Image.fromarray(images[i].squeeze()).resize((SIZE, SIZE), Image.BILINEAR).convert("RGB")
            picture.save(root / split / names[labels[i]] / f"{i:05d}.png")
    return root


def train_briefly(name: str, data, *, epochs: int = 3, seed: int = 0):
    """The named architecture with 10 classes, trained ``epochs`` epochs on the training split of ``data`` (a
    :class:`edgecnn.datasets.Dataset`, e.g. :func:`fashion_folders` loaded), BatchNorm momentum lowered so its
    moving statistics follow (see the module docstring)."""
    import numpy as np

    from edgecnn import tfquiet

    keras = tfquiet.keras()
    keras.utils.set_random_seed(seed)
    model = _TRAINED_BUILDS[name]()
    fast_batchnorm(model)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(data.x_train.astype(np.float32), data.y_train, batch_size=64, epochs=epochs, verbose=0)
    return model


#: At the families' default sizes (alpha 1.0), as users ship them.
_TRAINED_BUILDS: dict[str, Callable[[], Any]] = {
    "mobilenet-v3-small": _app("MobileNetV3Small", classes=REAL_CLASSES, include_preprocessing=True),
    "nested-wrapper": lambda: nested_wrapper(REAL_CLASSES, alpha=1.0),
    "efficientnet-b0": _app("EfficientNetB0", classes=REAL_CLASSES),
}
