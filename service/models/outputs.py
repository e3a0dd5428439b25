"""Probability outputs added on top of a signature's own: labels, top-k and thresholded classes.

Pure numpy, protocol-neutral: both TF Serving and V2 responses carry what this returns.

- classification: ``probabilities`` [N, K] and ``class_id`` [N] from the model, plus ``label`` [N];
  with ``top_k``: ``top_k_class_ids``, ``top_k_probabilities`` and ``top_k_labels`` [N, k].
- binary: ``probability`` [N] from the model, plus ``class_id`` [N] (p >= threshold) and ``label``.
- regression: the model's outputs unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InvalidInput
from service.models.card import ModelCard, TensorSpec

PROBABILITIES = "probabilities"
PROBABILITY = "probability"
DEFAULT_THRESHOLD = 0.5


def binary_decision(probability: np.ndarray, threshold: float) -> np.ndarray:
    """The predicted class (0/1) of positive-class probabilities: positive when p >= threshold."""
    return (np.asarray(probability) >= threshold).astype(np.int64)


@dataclass(frozen=True)
class OutputOptions:
    top_k: int | None = None
    threshold: float = DEFAULT_THRESHOLD


def parse_options(parameters: Mapping[str, Any], card: ModelCard) -> OutputOptions:
    """Validate the ``top_k`` / ``threshold`` request parameters against the model's task."""
    top_k, threshold = parameters.get("top_k"), parameters.get("threshold")
    if top_k is not None:
        if card.task != "classification":
            raise InvalidInput(f"top_k applies to classifiers; model {card.name!r} is a {card.task} model.")
        n_classes = len(card.class_labels or ())
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= n_classes:
            raise InvalidInput(f"top_k must be an integer from 1 to {n_classes}; got {top_k!r}.")
    if threshold is None:
        return OutputOptions(top_k=top_k)
    if card.task != "binary":
        raise InvalidInput(f"threshold applies to binary models; model {card.name!r} is a {card.task} model.")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise InvalidInput(f"threshold must be a number from 0 to 1; got {threshold!r}.")
    if isinstance(threshold, float) and math.isnan(threshold):
        raise InvalidInput("threshold must be a number from 0 to 1; got NaN.")
    return OutputOptions(top_k=top_k, threshold=float(threshold))


TOP_K_OUTPUTS = ("top_k_class_ids", "top_k_probabilities", "top_k_labels")


def derived_specs(card: ModelCard) -> list[TensorSpec]:
    """Outputs :func:`derive` always adds to the signature's (top-k ones only on request)."""
    if card.task == "classification":
        return [TensorSpec("label", "string", (-1,))]
    if card.task == "binary":
        return [TensorSpec("class_id", "int64", (-1,)), TensorSpec("label", "string", (-1,))]
    return []


def output_names(card: ModelCard, options: OutputOptions) -> list[str]:
    """Every output name :func:`derive` returns for this card and these options."""
    names = [s.name for s in (*card.outputs, *derived_specs(card))]
    return names + list(TOP_K_OUTPUTS) if options.top_k else names


def _labels(ids: np.ndarray, names: Sequence[str]) -> np.ndarray:
    return np.asarray(names, dtype=object)[ids]


def derive(
    outputs: Mapping[str, np.ndarray], card: ModelCard, options: OutputOptions
) -> dict[str, np.ndarray]:
    """The signature's outputs plus the probability outputs the task calls for."""
    result = dict(outputs)
    names = card.class_labels
    if card.task == "classification" and PROBABILITIES in outputs and names:
        proba = outputs[PROBABILITIES]
        ids = result.get("class_id")
        ids = np.argmax(proba, axis=1) if ids is None else ids
        result["label"] = _labels(ids, names)
        if options.top_k:
            # stable sort on -p: ties keep the lower class id first, like argmax
            top = np.argsort(-proba, axis=1, kind="stable")[:, : options.top_k]
            result["top_k_class_ids"] = top.astype(np.int64)
            result["top_k_probabilities"] = np.take_along_axis(proba, top, axis=1)
            result["top_k_labels"] = _labels(top, names)
    elif card.task == "binary" and PROBABILITY in outputs:
        ids = binary_decision(outputs[PROBABILITY].reshape(-1), options.threshold)
        result["class_id"] = ids
        result["label"] = _labels(ids, names or ("0", "1"))
    return result
