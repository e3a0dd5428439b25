"""training.card: the single-neuron weights and the library versions recorded in every card."""

from __future__ import annotations

import platform

import keras
import numpy as np

from training import config
from training.card import libraries, single_neuron
from training.models import build


def test_single_neuron_weights_are_read_from_a_dense_1() -> None:
    model = build(config.load("linear"))
    model.layers[-1].set_weights([np.array([[2.0]], np.float32), np.array([-1.0], np.float32)])
    assert single_neuron(model) == {"weight": 2.0, "bias": -1.0}


def test_other_models_have_no_single_neuron() -> None:
    assert single_neuron(build(config.load("binary"))) is None


def test_libraries() -> None:
    found = libraries()
    assert found["python"] == platform.python_version() and found["keras"] == keras.__version__
    assert set(found) == {"python", "tensorflow", "keras", "numpy"}
