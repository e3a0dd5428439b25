"""Test helper: read a SavedModel's serving signature and a card's promises in one comparable form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tensorflow as tf


def signature_specs(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inputs, outputs) of serving_default as {name: (dtype, shape with -1 for unknown)}."""
    function = tf.saved_model.load(str(path)).signatures["serving_default"]
    _, kwargs = function.structured_input_signature

    def describe(specs: dict[str, tf.TensorSpec]) -> dict[str, Any]:
        return {
            n: (s.dtype.name, [-1 if d is None else d for d in s.shape.as_list()]) for n, s in specs.items()
        }

    return describe(kwargs), describe(function.structured_outputs)


def card_specs(card: dict[str, Any], kind: str) -> dict[str, Any]:
    """The card's ``inputs`` or ``outputs`` in the form of :func:`signature_specs`."""
    return {s["name"]: (s["dtype"], s["shape"]) for s in card[kind]}
