"""Score an exported SavedModel as the service does: its loader, its runtime and its metric code.

The version being exported has no card yet (the card records these very figures), so it is scored
against the card its task's signature promises; ``service.models.loading.prepare`` loads it, checks
the signature against that card, warms it up and pads calls as the service does, so the figures in
a card are the ones ``:evaluate`` and the offline batch job compute on the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from service.evaluation import figures
from service.evaluation.options import scores_of
from service.models.card import ModelCard
from service.models.loading import prepare
from service.quality import drift
from training.signature import SIGNATURE_NAME, SIGNATURES

BATCH = 2048  # bounds memory on the full 10,000-image test set without slowing small sets


def promised_card(task: str) -> ModelCard:
    """The card contract of a ``task`` export (name and version are filled in at commit)."""
    spec = SIGNATURES[task]
    return ModelCard("unpublished", 0, task, SIGNATURE_NAME, spec.inputs, spec.outputs, spec.class_labels)


def predict(path: str | Path, task: str, x: np.ndarray) -> np.ndarray:
    """The signature's score output (probabilities, probability or y) for every row of ``x``."""
    card = promised_card(task)
    model, name = prepare(card, Path(path)), card.inputs[0].name
    return np.concatenate([scores_of(model({name: x[i : i + BATCH]}), card) for i in range(0, len(x), BATCH)])


def score(path: str | Path, task: str, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Held-out metrics of the exported model, exactly as the service's :evaluate would compute them."""
    return score_with_reference(path, task, x, y)[0]


def score_with_reference(
    path: str | Path, task: str, x: np.ndarray, y: np.ndarray
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Held-out metrics, and the distribution of the model's answers on the same rows (the
    ``drift_reference`` the service compares live traffic with: :mod:`service.quality.drift`)."""
    labels = SIGNATURES[task].class_labels
    scores = predict(path, task, x)
    classes = len(labels) if task == "classification" and labels else None
    return figures.compute(task, y, scores, class_labels=labels), drift.reference(task, scores, classes)
