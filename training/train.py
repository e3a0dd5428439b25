"""Fit a model from its config with seeded, deterministic ops, printing progress once per epoch."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, TextIO

import keras
import tensorflow as tf

from training.config import Config
from training.data import Splits
from training.models import build, compile_model

MAX_PROGRESS_LINES = 50  # long runs (linear: 500 epochs) report every k-th epoch instead


@dataclass(frozen=True)
class Trained:
    model: keras.Model
    history: dict[str, list[float]]
    seconds: float


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, and ask TensorFlow for deterministic kernels."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


class EpochLog(keras.callbacks.Callback):
    """One line per epoch: the metrics Keras logged and how long the epoch took."""

    def __init__(self, name: str, epochs: int, out: TextIO) -> None:
        super().__init__()
        self._name, self._epochs, self._out = name, epochs, out
        self._every = math.ceil(epochs / MAX_PROGRESS_LINES)
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        done = epoch + 1
        if done % self._every and done != self._epochs:
            return
        shown = " ".join(f"{k}={float(v):.4g}" for k, v in (logs or {}).items() if k != "learning_rate")
        seconds = time.perf_counter() - self._started
        print(
            f"[{self._name}] epoch {done}/{self._epochs} {shown} ({seconds:.1f}s)", file=self._out, flush=True
        )


def train(config: Config, splits: Splits, out: TextIO) -> Trained:
    """Build, compile and fit the config's model on ``splits.train``, validating on ``splits.validation``."""
    fit = config.training
    seed_everything(fit.seed)
    model = build(config)
    compile_model(model, config, steps_per_epoch=math.ceil(len(splits.train[0]) / fit.batch_size))
    started = time.perf_counter()
    history = model.fit(
        *splits.train,
        batch_size=fit.batch_size,
        epochs=fit.epochs,
        validation_data=splits.validation,
        shuffle=True,
        verbose=0,
        callbacks=[EpochLog(config.name, fit.epochs, out)],
    )
    seconds = time.perf_counter() - started
    return Trained(model, {k: [float(v) for v in vals] for k, vals in history.history.items()}, seconds)
