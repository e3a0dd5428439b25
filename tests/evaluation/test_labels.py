"""service.evaluation.labels: labels checked against the task and located in messages; chunks gathered."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import InvalidInput
from service.evaluation.labels import Accumulator, encode_labels

N = 40
Y = np.random.default_rng(0).integers(0, 4, N)
PROBA = np.random.default_rng(1).dirichlet(np.ones(4), N)


@pytest.mark.parametrize(
    ("task", "raw", "expected"),
    [
        ("classification", [0, "b", 2.0, np.int64(1)], [0, 1, 2, 1]),
        ("binary", [True, 0, "positive"], [1, 0, 1]),
        ("regression", [1, 2.5, [3.0], np.float32(4)], [1.0, 2.5, 3.0, 4.0]),
    ],
)
def test_encode_labels(task: str, raw: list[object], expected: list[float]) -> None:
    names = {"classification": ["a", "b", "c"], "binary": ["negative", "positive"], "regression": None}[task]
    assert encode_labels(raw, task, names, len(raw)).tolist() == expected


@pytest.mark.parametrize(
    ("task", "raw", "fragment"),
    [
        ("classification", [0, 3], "Label 3 at position 1 is outside the classes 0..2"),
        ("classification", [0, "z"], "Label 'z' at position 1 is not a class id"),
        ("classification", [0.5], "not a class id"),
        ("classification", [None], "not a class id"),
        ("binary", [2], "outside the classes 0..1"),
        ("regression", ["1"], "Regression label '1' at position 0 is not a finite number"),
        ("regression", [float("inf")], "not a finite number"),
        ("regression", [[1, 2]], "not a finite number"),
        ("regression", "12", "must be a list"),
        ("regression", [1.0], "Got 1 labels for 2 instances"),
    ],
)
def test_bad_labels(task: str, raw: object, fragment: str) -> None:
    count = 2 if fragment.startswith("Got") else len(raw)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=fragment.replace("(", r"\(").replace(".", r"\.")):
        encode_labels(raw, task, ["a", "b", "c"], count)


def test_label_locations_can_be_named() -> None:
    with pytest.raises(InvalidInput, match="Label 9 on line 7 "):
        encode_labels([0, 9], "binary", None, 2, lambda i: f"on line {6 + i}")


def test_accumulator_gathers_chunks() -> None:
    gathered = Accumulator()
    gathered.add(Y[:10], PROBA[:10])
    gathered.add(Y[10:], PROBA[10:])
    labels, scores = gathered.arrays()
    assert gathered.count == N and np.array_equal(labels, Y) and np.array_equal(scores, PROBA)
    with pytest.raises(InvalidInput):
        Accumulator().arrays()
