"""One evaluation's options, and what a model card's outputs mean to it. Pure: no registry, no I/O.

Shared by the online :evaluate endpoints (``service.evaluation.evaluator``) and the batch job
(``service.evaluation.batch``), so both read options, class names and scores the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InvalidInput, UnprocessableRequest
from service.evaluation import figures
from service.evaluation.wire import OPTIONS
from service.models import outputs
from service.models.card import ModelCard

DEFAULT_DATASET = "adhoc"
_NUMBER = re.compile(r"(?:[0-9]{1,18}(?:\.[0-9]{0,18})?|\.[0-9]{1,18})(?:[eE][+-]?[0-9]{1,3})?")
_DATASET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")  # a label value: bounded, printable


@dataclass(frozen=True)
class Options:
    metrics: tuple[str, ...]
    dataset: str
    top_k: int | None
    threshold: float


def parse_options(raw: Mapping[str, Any], card: ModelCard) -> Options:
    """Check ``metrics``, ``dataset``, ``top_k`` and ``threshold`` against the model's task."""
    if card.task not in figures.METRICS_BY_TASK:
        raise UnprocessableRequest(
            f"Model {card.name!r} is served as task {card.task!r} (a SavedModel without a model card), which "
            "has no metrics; name its task (and class_labels) in serving.yaml to evaluate it."
        )
    output = outputs.parse_options({k: raw[k] for k in ("top_k", "threshold") if k in raw}, card)
    chosen = figures.select_metrics(card.task, _metric_names(raw.get("metrics")))
    if not chosen:
        raise InvalidInput("'metrics' names no metric; leave it out for the task's defaults.")
    return Options(chosen, _dataset(raw.get("dataset")), output.top_k, output.threshold)


def _metric_names(value: Any) -> Any:
    if isinstance(value, str):  # "accuracy,roc_auc" (query strings and V2 parameters)
        return [name.strip() for name in value.split(",") if name.strip()]
    return value  # select_metrics refuses anything but a list of names


def _dataset(value: Any) -> str:
    if value is None:
        return DEFAULT_DATASET
    if not isinstance(value, str) or not _DATASET.match(value):
        raise InvalidInput(
            f"'dataset' must be a name of at most 64 letters, digits and _ . : - characters; got {value!r}."
        )
    return value


def query_options(query: Mapping[str, str]) -> dict[str, Any]:
    """The options of a streamed evaluation, from its query string, typed as in a JSON body."""
    unknown = sorted(set(query) - set(OPTIONS))
    if unknown:
        raise InvalidInput(f"Unknown query parameter(s) {unknown}; expected {', '.join(OPTIONS)}.")
    raw: dict[str, Any] = dict(query)
    for name, kind in (("top_k", int), ("threshold", float)):
        if name in raw:
            text = raw[name]
            # ASCII only: int() and float() also take other scripts' digits, spaces and underscores.
            if not _NUMBER.fullmatch(text):
                raise InvalidInput(f"Query parameter {name}={text[:40]!r} is not a number.")
            # top_k "2.5" stays a float, for parse_options to refuse as not an integer
            raw[name] = int(text) if kind is int and text.isdecimal() else float(text)
    return raw


def class_names(card: ModelCard) -> tuple[str, ...] | None:
    """The card's class labels; for a classifier without them, its class ids as text."""
    if card.task != "classification" or card.class_labels:
        return card.class_labels
    width = next((s.shape[-1] for s in card.outputs if s.name == outputs.PROBABILITIES), 0)
    return tuple(str(i) for i in range(width))


def score_output(card: ModelCard) -> str:
    """The signature output evaluation scores: probabilities, the probability, or the prediction."""
    if card.task == "classification":
        return outputs.PROBABILITIES
    if card.task == "binary":
        return outputs.PROBABILITY
    if len(card.outputs) != 1:
        raise UnprocessableRequest(
            f"Model {card.name!r} has {len(card.outputs)} outputs; a regressor is evaluated on exactly one."
        )
    return card.outputs[0].name


def scores_of(outputs: Mapping[str, np.ndarray], card: ModelCard) -> np.ndarray:
    scores = np.asarray(outputs[score_output(card)])
    return scores if card.task == "classification" else scores.reshape(-1)


def measure(card: ModelCard, labels: np.ndarray, scores: np.ndarray, options: Options) -> dict[str, Any]:
    return figures.compute(
        card.task,
        labels,
        scores,
        class_labels=class_names(card),
        metrics=options.metrics,
        top_k=options.top_k,
        threshold=options.threshold,
    )
