"""Probability outputs: labels, top-k and thresholds on top of the signature's outputs."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.errors import InvalidInput
from service.models.card import ModelCard, TensorSpec
from service.models.outputs import OutputOptions, derive, parse_options

CLASSIFIER = ModelCard(
    "digits", 1, "classification", "serving_default",
    (TensorSpec("images", "float32", (-1, 28, 28)),),
    (TensorSpec("probabilities", "float32", (-1, 3)), TensorSpec("class_id", "int64", (-1,))),
    ("cat", "dog", "eel"),
)  # fmt: skip
BINARY = ModelCard(
    "binary", 1, "binary", "serving_default",
    (TensorSpec("features", "float32", (-1, 2)),), (TensorSpec("probability", "float32", (-1,)),), ("no", "yes"),
)  # fmt: skip
REGRESSOR = ModelCard(
    "linear", 1, "regression", "serving_default",
    (TensorSpec("x", "float32", (-1,)),), (TensorSpec("y", "float32", (-1,)),),
)  # fmt: skip


def test_classifier_gets_labels_and_top_k() -> None:
    proba = np.array([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]], np.float32)
    out = derive({"probabilities": proba, "class_id": np.array([1, 0])}, CLASSIFIER, OutputOptions(top_k=2))
    assert out["label"].tolist() == ["dog", "cat"]
    assert out["top_k_class_ids"].tolist() == [[1, 2], [0, 2]]
    assert out["top_k_labels"].tolist() == [["dog", "eel"], ["cat", "eel"]]
    np.testing.assert_array_equal(out["top_k_probabilities"], np.array([[0.5, 0.3], [0.6, 0.3]], np.float32))
    assert out["probabilities"] is proba  # the model's own outputs pass through untouched


def test_top_k_ties_keep_argmax_order() -> None:
    proba = np.array([[0.4, 0.4, 0.2]], np.float32)
    out = derive({"probabilities": proba, "class_id": np.array([0])}, CLASSIFIER, OutputOptions(top_k=3))
    assert out["top_k_class_ids"].tolist() == [[0, 1, 2]]


@pytest.mark.parametrize(("threshold", "expected"), [(0.5, [0, 1, 1]), (0.7, [0, 0, 1]), (0.0, [1, 1, 1])])
def test_binary_threshold(threshold: float, expected: list[int]) -> None:
    out = derive(
        {"probability": np.array([0.2, 0.5, 0.9], np.float32)}, BINARY, OutputOptions(threshold=threshold)
    )
    assert out["class_id"].tolist() == expected
    assert out["label"].tolist() == [["no", "yes"][i] for i in expected]


def test_regression_is_unchanged() -> None:
    outputs = {"y": np.array([19.0], np.float32)}
    assert derive(outputs, REGRESSOR, OutputOptions()) == outputs


@pytest.mark.parametrize(
    ("card", "params", "fragment"),
    [
        (CLASSIFIER, {"top_k": 0}, "top_k must be an integer from 1 to 3"),
        (CLASSIFIER, {"top_k": 4}, "from 1 to 3"),
        (CLASSIFIER, {"top_k": "2"}, "from 1 to 3"),
        (CLASSIFIER, {"top_k": True}, "from 1 to 3"),
        (REGRESSOR, {"top_k": 1}, "top_k applies to classifiers"),
        (CLASSIFIER, {"threshold": 0.5}, "threshold applies to binary"),
        (BINARY, {"threshold": 1.5}, "from 0 to 1"),
        (BINARY, {"threshold": "high"}, "from 0 to 1"),
        (BINARY, {"threshold": float("nan")}, "NaN|from 0 to 1"),
    ],
)
def test_bad_options(card: ModelCard, params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        parse_options(params, card)


def test_good_options() -> None:
    assert parse_options({"top_k": 2}, CLASSIFIER) == OutputOptions(top_k=2)
    assert parse_options({"threshold": 1}, BINARY) == OutputOptions(threshold=1.0)
    assert parse_options({}, REGRESSOR) == OutputOptions()
