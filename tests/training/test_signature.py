"""training.signature: the contract table, the endpoint bodies and the SavedModel they produce."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from training import config
from training.models import build
from training.signature import SIGNATURES, input_signature, serving_function, write_saved_model

from .savedmodels import signature_specs

TASK_OF = {"regression": "linear", "binary": "binary", "classification": "mnist_3b1b"}
BATCH = {"regression": (3,), "binary": (3, 2), "classification": (3, 28, 28)}


@pytest.mark.parametrize("task", sorted(SIGNATURES))
def test_input_signature_follows_the_table(task: str) -> None:
    (spec,) = input_signature(task)
    promised = SIGNATURES[task].input
    assert spec.name == promised.name and spec.dtype.name == promised.dtype
    assert [-1 if d is None else d for d in spec.shape.as_list()] == list(promised.shape)


@pytest.mark.parametrize("task", sorted(SIGNATURES))
def test_serving_function_outputs_follow_the_table(task: str) -> None:
    model = build(config.load(TASK_OF[task]))
    spec = SIGNATURES[task]
    x = tf.constant(np.random.default_rng(0).uniform(0, 1, BATCH[task]).astype(np.float32))
    outputs = serving_function(model, task)(x)
    assert sorted(outputs) == sorted(s.name for s in spec.outputs)
    for promised in spec.outputs:
        tensor = outputs[promised.name]
        assert tensor.dtype.name == promised.dtype
        assert [3 if d == -1 else d for d in promised.shape] == list(tensor.shape)


def test_class_labels() -> None:
    assert SIGNATURES["classification"].class_labels == tuple("0123456789")
    assert SIGNATURES["binary"].class_labels == ("0", "1")
    assert SIGNATURES["regression"].class_labels is None


def test_saved_model_has_only_serving_default(tmp_path: Path) -> None:
    write_saved_model(build(config.load("binary")), "binary", str(tmp_path))
    assert list(tf.saved_model.load(str(tmp_path)).signatures) == ["serving_default"]
    inputs, outputs = signature_specs(tmp_path)
    assert inputs == {"features": ("float32", [-1, 2])} and outputs == {"probability": ("float32", [-1])}
