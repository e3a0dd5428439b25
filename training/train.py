"""Fit a model from its config with seeded, deterministic ops, printing progress once per epoch."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, TextIO

import keras
import numpy as np
import tensorflow as tf

from training.config import Config
from training.data import Arrays, Splits
from training.models import build, compile_model

MAX_PROGRESS_LINES = 50  # long runs (linear: 500 epochs) report every k-th epoch instead


@dataclass(frozen=True)
class Trained:
    model: keras.Model
    history: dict[str, list[float]]  # the run that watched validation, even when a refit followed
    seconds: float
    best_epoch: int | None = None  # the epoch (from 1) whose weights early stopping kept
    refit_epochs: int | None = None  # set when the model was fit again on train + validation


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


def train(config: Config, splits: Splits, out: TextIO, refit: bool = True) -> Trained:
    """Fit on ``splits.train`` watching ``splits.validation``; then refit on both if the config asks.

    The refit starts from scratch with the same seed and runs for the epochs the first run chose (its
    best epoch under early stopping, else all of them); ``refit=False`` skips it, for tuning.
    """
    fit = config.training
    first = _fit(config, splits.train, splits.validation, out)
    if not (refit and fit.refit and splits.validation is not None):
        return first
    epochs = first.best_epoch or len(first.history["loss"])
    print(f"[{config.name}] refit on train + validation for {epochs} epochs", file=out, flush=True)
    both = (
        np.concatenate([splits.train[0], splits.validation[0]]),
        np.concatenate([splits.train[1], splits.validation[1]]),
    )
    again = dataclasses.replace(config, training=dataclasses.replace(fit, epochs=epochs))
    final = _fit(again, both, None, out)
    return Trained(final.model, first.history, first.seconds + final.seconds, first.best_epoch, epochs)


def _fit(config: Config, data: Arrays, validation: Arrays | None, out: TextIO) -> Trained:
    """Build, compile and fit the config's model once, seeded afresh."""
    fit = config.training
    seed_everything(fit.seed)
    model = build(config)
    compile_model(model, config, steps_per_epoch=math.ceil(len(data[0]) / fit.batch_size))
    callbacks: list[keras.callbacks.Callback] = [EpochLog(config.name, fit.epochs, out)]
    stopper = None
    if fit.early_stopping is not None and validation is not None:
        stopper = keras.callbacks.EarlyStopping(
            monitor=fit.early_stopping.monitor,
            patience=fit.early_stopping.patience,
            restore_best_weights=True,
        )
        callbacks.append(stopper)
    started = time.perf_counter()
    history = model.fit(
        *data,
        batch_size=fit.batch_size,
        epochs=fit.epochs,
        validation_data=validation,
        shuffle=True,
        verbose=0,
        callbacks=callbacks,
    )
    seconds = time.perf_counter() - started
    curves = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    return Trained(model, curves, seconds, None if stopper is None else stopper.best_epoch + 1)
