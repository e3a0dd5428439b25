"""Assemble a model card: the signature contract plus how the model was made and how well it does."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from training.config import Config
from training.data import Splits
from training.signature import SIGNATURE_NAME, SIGNATURES
from training.train import Trained


def libraries() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def build_card(
    config: Config,
    splits: Splits,
    trained: Trained,
    metrics: dict[str, Any],
    drift_reference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything ``StagedVersion.commit`` needs except name and version, which it fills in.

    ``drift_reference``: what the model answers on the held-out split, for live drift checks.
    """
    signature = SIGNATURES[config.task]
    card: dict[str, Any] = {
        "task": config.task,
        "signature_name": SIGNATURE_NAME,
        "inputs": [spec.to_dict() for spec in signature.inputs],
        "outputs": [spec.to_dict() for spec in signature.outputs],
        "class_labels": list(signature.class_labels) if signature.class_labels else None,
        "description": config.description,
        "config": config.to_dict(),
        "data": {**splits.provenance, "seed": config.data.seed, "split": splits.sizes()},
        "metrics": metrics,
        "metrics_split": splits.metrics_split,
        "parameter_count": int(trained.model.count_params()),
        "history": trained.history,
        "training_seconds": round(trained.seconds, 2),
        "libraries": libraries(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if drift_reference is not None:
        card["drift_reference"] = drift_reference
    weights = single_neuron(trained.model)
    if weights is not None:
        card["weights"] = weights
    chosen = selection(config, splits, trained)
    if chosen:
        card["selection"] = chosen
    return card


def selection(config: Config, splits: Splits, trained: Trained) -> dict[str, Any]:
    """Which epoch the validation run kept and, after a refit, what the served weights were fit on."""
    found: dict[str, Any] = {}
    stopping = config.training.early_stopping
    if stopping is not None and trained.best_epoch is not None:
        epoch = trained.best_epoch
        found["early_stopping"] = {
            "monitor": stopping.monitor,
            "patience": stopping.patience,
            "best_epoch": epoch,
            "epochs_run": len(trained.history["loss"]),
            "validation": {
                k[4:]: trained.history[k][epoch - 1] for k in trained.history if k.startswith("val_")
            },
        }
    if trained.refit_epochs is not None:
        sizes = splits.sizes()
        found["refit"] = {
            "data": "train+validation",
            "size": sizes["train"] + sizes["validation"],
            "epochs": trained.refit_epochs,
            "note": "The served weights were fit again from scratch on train and validation together; "
            "the history and the validation figures are those of the run that chose the epoch count.",
        }
    return found


def single_neuron(model: keras.Model) -> dict[str, float] | None:
    """Weight and bias of a model that is one Dense(1) on one input (y = weight * x + bias), else None."""
    dense = [layer for layer in model.layers if layer.weights]
    if len(dense) != 1 or [tuple(w.shape) for w in dense[0].weights] != [(1, 1), (1,)]:
        return None
    kernel, bias = dense[0].get_weights()
    return {"weight": float(kernel[0, 0]), "bias": float(bias[0])}
