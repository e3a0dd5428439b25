"""The serving signature each task exports, as promised in the model card and relied on by the service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import tensorflow as tf

from service.models.card import TensorSpec

SIGNATURE_NAME = "serving_default"
DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class Signature:
    """Named inputs and outputs (``-1`` = batch), which output holds the scores, and the class labels."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    scores: str
    class_labels: tuple[str, ...] | None

    @property
    def input(self) -> TensorSpec:
        return self.inputs[0]


SIGNATURES = {
    "regression": Signature(
        (TensorSpec("x", "float32", (-1,)),), (TensorSpec("y", "float32", (-1,)),), "y", None
    ),
    "binary": Signature(
        (TensorSpec("features", "float32", (-1, 2)),),
        (TensorSpec("probability", "float32", (-1,)),),
        "probability",
        ("0", "1"),
    ),
    "classification": Signature(
        (TensorSpec("images", "float32", (-1, 28, 28)),),
        (TensorSpec("probabilities", "float32", (-1, 10)), TensorSpec("class_id", "int64", (-1,))),
        "probabilities",
        DIGITS,
    ),
}


def serving_function(model: keras.Model, task: str) -> Callable[[tf.Tensor], dict[str, tf.Tensor]]:
    """The endpoint body: inference mode (no dropout, no augmentation), outputs named as in SIGNATURES."""

    def regression(x: tf.Tensor) -> dict[str, tf.Tensor]:
        # One number per instance, like TF Serving's half_plus_two; the model itself wants [batch, 1].
        return {"y": tf.reshape(model(tf.reshape(x, [-1, 1]), training=False), [-1])}

    def binary(features: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"probability": tf.reshape(model(features, training=False), [-1])}

    def classification(images: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = model(images, training=False)
        return {"probabilities": probabilities, "class_id": tf.argmax(probabilities, axis=1)}

    return {"regression": regression, "binary": binary, "classification": classification}[task]


def input_signature(task: str) -> list[tf.TensorSpec]:
    spec = SIGNATURES[task].input
    shape = [None if d == -1 else d for d in spec.shape]
    return [tf.TensorSpec(shape, tf.as_dtype(spec.dtype), name=spec.name)]


def write_saved_model(model: keras.Model, task: str, path: str) -> None:
    """Export ``model`` as a SavedModel whose only endpoint is ``serving_default``."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE_NAME, serving_function(model, task), input_signature=input_signature(task))
    archive.write_out(path, verbose=False)
