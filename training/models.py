"""Build and compile Keras models from a config's layer specs: the one place that maps specs to Keras."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
from keras import layers as kl

from training.augment import RandomWarp
from training.config import Config
from training.errors import ConfigError
from training.layerspec import LayerSpec

# Fixed by the export contract: what one instance looks like for each task, and what comes out.
INPUT_SHAPES = {"regression": (1,), "binary": (2,), "classification": (28, 28)}
OUTPUT_WIDTH = {"regression": 1, "binary": 1, "classification": 10}
TRACKED_METRICS = {"regression": ["mae"], "binary": ["accuracy"], "classification": ["accuracy"]}
COSINE_FLOOR = 0.01  # a cosine schedule ends at 1% of the initial learning rate

OPTIMIZERS: dict[str, type[keras.optimizers.Optimizer]] = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
    "adagrad": keras.optimizers.Adagrad,
    "adadelta": keras.optimizers.Adadelta,
    "adamax": keras.optimizers.Adamax,
    "nadam": keras.optimizers.Nadam,
}

# Augmentation fills with 0 (black), MNIST's background; the random layers are identity unless training.
_BUILDERS: dict[str, Callable[[Mapping[str, Any]], kl.Layer]] = {
    "flatten": lambda a: kl.Flatten(),
    "reshape": lambda a: kl.Reshape(a["shape"]),
    "dense": lambda a: kl.Dense(a["units"], activation=a["activation"]),
    "dropout": lambda a: kl.Dropout(a["rate"]),
    "conv": lambda a: kl.Conv2D(a["filters"], a["kernel"], padding="same", activation=a["activation"]),
    "maxpool": lambda a: kl.MaxPooling2D(a["size"]),
    "gap": lambda a: kl.GlobalAveragePooling2D(),
    "batchnorm": lambda a: kl.BatchNormalization(momentum=a["momentum"]),
    "act": lambda a: kl.Activation(a["activation"]),
    "rotate": lambda a: kl.RandomRotation(a["factor"], fill_mode="constant"),
    "zoom": lambda a: kl.RandomZoom(a["factor"], fill_mode="constant"),
    "translate": lambda a: kl.RandomTranslation(a["factor"], a["factor"], fill_mode="constant"),
    "warp": lambda a: RandomWarp(a["degrees"], a["zoom"], a["shift"], a["elastic"], a["grid"]),
}


def build(config: Config) -> keras.Model:
    """The functional model the config describes, checked to output one row of the task's width."""
    inputs = keras.Input(INPUT_SHAPES[config.task])
    tensor = inputs
    for spec in config.layers:
        tensor = _apply(spec, tensor)
    model = keras.Model(inputs, tensor, name=config.name)
    expected = (None, OUTPUT_WIDTH[config.task])
    if tuple(model.output_shape) != expected:
        raise ConfigError(
            f"layers end in shape {model.output_shape}, not {expected}: add flatten or gap before the last dense."
        )
    return model


def _apply(spec: LayerSpec, tensor: Any) -> Any:
    try:
        return _BUILDERS[spec.kind](spec.args)(tensor)
    except ValueError as exc:  # Keras' shape checks, e.g. a convolution on a flat vector
        reason = str(exc).strip().splitlines()[0]
        raise ConfigError(f"Layer {spec} cannot take input of shape {tuple(tensor.shape)}: {reason}") from exc


def compile_model(model: keras.Model, config: Config, steps_per_epoch: int) -> None:
    """Attach optimizer (with its learning-rate schedule), loss and the metrics the history tracks."""
    fit = config.training
    rate: float | keras.optimizers.schedules.LearningRateSchedule = fit.learning_rate
    if fit.schedule == "cosine":
        total = max(1, fit.epochs * steps_per_epoch)
        rate = keras.optimizers.schedules.CosineDecay(fit.learning_rate, total, alpha=COSINE_FLOOR)
    optimizer = OPTIMIZERS[fit.optimizer](learning_rate=rate)
    model.compile(optimizer=optimizer, loss=fit.loss, metrics=TRACKED_METRICS[config.task])
