"""Live figures of one model version from the prediction store: quality over labelled feedback, drift.

Quality uses :func:`service.evaluation.figures.compute` on exactly the scores the version
answered with (stored as float32, as the model returned them) and the labels fed back, so a window
holding the same instances and labels as a file gives the numbers ``:evaluate`` gives on that file.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from service.errors import ServiceError
from service.evaluation import figures
from service.evaluation.options import class_names
from service.models.card import ModelCard
from service.models.quality_config import FeedbackConfig
from service.quality import drift
from service.quality.store import PredictionStore


def quality(
    store: PredictionStore, card: ModelCard, feedback: FeedbackConfig, window: int | None = None
) -> dict[str, Any]:
    """``sample_count`` labelled instances in the window and the figures :evaluate computes on them."""
    since = time.time() - feedback.ttl_s
    labels, scores = store.labelled(card.name, card.version, window or feedback.window, since)
    doc: dict[str, Any] = {"window": window or feedback.window, "sample_count": len(labels)}
    if not len(labels):
        doc["metrics"] = {}
        return doc
    y = labels if card.task == "regression" else labels.astype(np.int64)
    s = scores if card.task == "classification" else scores.reshape(-1)
    try:
        doc["metrics"] = figures.compute(card.task, y, s, class_labels=class_names(card))
    except ServiceError as exc:  # e.g. non-finite scores: say so instead of failing the report
        doc["metrics"], doc["error"] = {}, exc.message
    return doc


def drift_figures(
    store: PredictionStore, card: ModelCard, feedback: FeedbackConfig, ref: dict[str, Any]
) -> dict[str, Any]:
    """PSI per signal over the newest ``drift_window`` predictions of this version."""
    since = time.time() - feedback.ttl_s
    scores = store.recent_scores(card.name, card.version, feedback.drift_window, since)
    live = scores if card.task == "classification" else scores.reshape(-1)
    return {
        "sample_count": len(scores),
        "reference_count": ref.get("count"),
        "psi": drift.compare(ref, card.task, live),
    }
