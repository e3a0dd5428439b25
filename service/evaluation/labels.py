"""Labels a user sends with instances, checked against the model's task; gathered with scores in chunks."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from service.errors import InvalidInput


def _position(index: int) -> str:
    return f"at position {index}"


def encode_labels(
    raw: Any,
    task: str,
    class_labels: Sequence[str] | None,
    count: int,
    where: Callable[[int], str] = _position,
) -> np.ndarray:
    """Validate user-supplied labels and turn them into class ids (int64) or targets (float64).

    ``where(i)`` locates the i-th label in messages ("at position 3", "on line 12").
    """
    if not isinstance(raw, (list, np.ndarray)):
        raise InvalidInput("'labels' must be a list with one label per instance.")
    if len(raw) != count:
        raise InvalidInput(f"Got {len(raw)} labels for {count} instances; they must match one to one.")
    if task == "regression":
        return np.array([_target(label, where(i)) for i, label in enumerate(raw)], dtype=np.float64)
    n_classes = 2 if task == "binary" else len(class_labels or ())
    names = {name: i for i, name in enumerate(class_labels or ())}
    ids = np.empty(len(raw), dtype=np.int64)
    for i, label in enumerate(raw):
        ids[i] = _class_id(label, names, n_classes, where(i))
    return ids


def _class_id(label: Any, names: dict[str, int], n_classes: int, where: str) -> int:
    integral = isinstance(label, (float, np.floating)) and float(label).is_integer()
    if isinstance(label, (bool, np.bool_, int, np.integer)) or integral:
        value = int(label)
    elif isinstance(label, str) and label in names:
        return names[label]
    else:
        raise InvalidInput(
            f"Label {label!r} {where} is not a class id in 0..{n_classes - 1}"
            + (f" or one of the class labels {sorted(names)}." if names else ".")
        )
    if not 0 <= value < n_classes:
        raise InvalidInput(f"Label {value} {where} is outside the classes 0..{n_classes - 1}.")
    return value


def _target(label: Any, where: str) -> float:
    """A regression label as a finite float; ``[x]`` (a one-element row) counts as ``x``."""
    value = label[0] if isinstance(label, (list, np.ndarray)) and len(label) == 1 else label
    number = (
        float(value)
        if isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        else None
    )
    if number is None or not math.isfinite(number):
        raise InvalidInput(f"Regression label {label!r} {where} is not a finite number.")
    return number


class Accumulator:
    """Collects labels and model outputs chunk by chunk (streamed NDJSON, batch jobs)."""

    def __init__(self) -> None:
        self._labels: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []
        self.count = 0

    def add(self, labels: np.ndarray, scores: np.ndarray) -> None:
        if len(labels) != len(scores):
            raise ValueError("labels and scores of one chunk must have the same length")
        self._labels.append(np.asarray(labels))
        self._scores.append(np.asarray(scores))
        self.count += len(labels)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if not self._labels:
            raise InvalidInput("Cannot evaluate on zero instances.")
        return np.concatenate(self._labels), np.concatenate(self._scores)
