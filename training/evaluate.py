"""Score an exported SavedModel through its serving signature, with the metric code the service uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from service.evaluation import figures
from training.signature import SIGNATURE_NAME, SIGNATURES

BATCH = 2048  # bounds memory on the full 10,000-image test set without slowing small sets


def load_signature(path: str | Path) -> Callable[..., dict[str, tf.Tensor]]:
    """The ``serving_default`` function of the SavedModel at ``path``."""
    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures[SIGNATURE_NAME]

    def call(**inputs: tf.Tensor) -> dict[str, tf.Tensor]:
        _ = loaded  # the signature's variables live only as long as the loaded object
        return signature(**inputs)

    return call


def predict(path: str | Path, task: str, x: np.ndarray) -> np.ndarray:
    """The signature's score output (probabilities, probability or y) for every row of ``x``."""
    call, spec = load_signature(path), SIGNATURES[task]
    chunks = [
        call(**{spec.input.name: tf.constant(x[i : i + BATCH])})[spec.scores].numpy()
        for i in range(0, len(x), BATCH)
    ]
    return np.concatenate(chunks)


def score(path: str | Path, task: str, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Held-out metrics of the exported model, exactly as the service's :evaluate would compute them."""
    labels = SIGNATURES[task].class_labels
    return figures.compute(task, y, predict(path, task, x), class_labels=labels)
