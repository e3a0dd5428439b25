"""service.evaluation.figures: every figure equals scikit-learn's on the same scores; metric choice."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from service.errors import InvalidInput, UnprocessableRequest
from service.evaluation import figures

RNG = np.random.default_rng(11)
N, K = 400, 4
Y = RNG.integers(0, K, N)
_logits = RNG.normal(size=(N, K)) + 1.5 * np.eye(K)[Y]
PROBA = (np.exp(_logits) / np.exp(_logits).sum(axis=1, keepdims=True)).astype(np.float32)
Y_BIN = RNG.integers(0, 2, N)
P_BIN = np.clip(0.3 * Y_BIN + RNG.random(N) * 0.7, 0, 1).astype(np.float32)
Y_REG = RNG.normal(size=N)
PRED = Y_REG + RNG.normal(0, 0.3, N)


def close(a: float | None, b: float) -> bool:
    return a is not None and abs(a - b) <= 1e-9


def test_classification_figures_equal_sklearn() -> None:
    chosen = [*figures.CLASSIFICATION_METRICS]
    out = figures.compute("classification", Y, PROBA, metrics=chosen, top_k=2, class_labels=list("abcd"))
    p64 = PROBA.astype(np.float64)
    predicted = p64.argmax(axis=1)
    assert close(out["accuracy"], skm.accuracy_score(Y, predicted))
    assert close(out["top_k_accuracy"], skm.top_k_accuracy_score(Y, p64, k=2)) and out["top_k"] == 2
    assert close(out["roc_auc"], skm.roc_auc_score(Y, p64, multi_class="ovr", average="macro"))
    assert close(
        out["roc_auc_ovr_weighted"], skm.roc_auc_score(Y, p64, multi_class="ovr", average="weighted")
    )
    assert close(out["roc_auc_micro"], skm.roc_auc_score(np.eye(K)[Y], p64, average="micro"))
    assert close(out["log_loss"], skm.log_loss(Y, p64 / p64.sum(axis=1, keepdims=True)))
    assert out["confusion_matrix"] == skm.confusion_matrix(Y, predicted).tolist()
    _, _, f1, support = skm.precision_recall_fscore_support(Y, predicted, zero_division=0)
    assert list(out["per_class"]) == list("abcd")
    assert close(out["per_class"]["c"]["f1"], f1[2]) and out["per_class"]["c"]["support"] == support[2]
    fpr, tpr, _ = skm.roc_curve(Y == 1, p64[:, 1])
    assert out["roc_curve"]["b"]["fpr"] == fpr.tolist() and out["roc_curve"]["b"]["tpr"] == tpr.tolist()
    assert out["roc_curve"]["b"]["thresholds"][0] is None  # sklearn's +inf, which JSON cannot hold


def test_binary_figures_equal_sklearn_at_the_threshold() -> None:
    out = figures.compute("binary", Y_BIN, P_BIN, threshold=0.6)
    p = P_BIN.astype(np.float64)
    decided = (p >= 0.6).astype(int)
    assert out["threshold"] == 0.6
    assert close(out["accuracy"], skm.accuracy_score(Y_BIN, decided))
    assert close(out["precision"], skm.precision_score(Y_BIN, decided))
    assert close(out["recall"], skm.recall_score(Y_BIN, decided))
    assert close(out["f1"], skm.f1_score(Y_BIN, decided))
    assert close(out["roc_auc"], skm.roc_auc_score(Y_BIN, p))  # threshold-free
    assert close(out["log_loss"], skm.log_loss(Y_BIN, p))
    assert out["confusion_matrix"] == skm.confusion_matrix(Y_BIN, decided).tolist()
    assert "roc_curve" not in out  # only on request


def test_regression_figures_equal_sklearn() -> None:
    out = figures.compute("regression", Y_REG, PRED)
    assert close(out["mse"], skm.mean_squared_error(Y_REG, PRED))
    assert close(out["rmse"], math.sqrt(skm.mean_squared_error(Y_REG, PRED)))
    assert close(out["mae"], skm.mean_absolute_error(Y_REG, PRED))
    assert close(out["r2"], skm.r2_score(Y_REG, PRED))
    assert close(out["max_error"], skm.max_error(Y_REG, PRED))


def test_two_class_classifier_reduces_to_binary_auc() -> None:
    proba = np.stack([1 - P_BIN, P_BIN], axis=1)
    out = figures.compute(
        "classification", Y_BIN, proba, metrics=["roc_auc", "roc_auc_micro", "top_k_accuracy"], top_k=1
    )
    assert close(out["roc_auc"], skm.roc_auc_score(Y_BIN, P_BIN))
    assert close(out["roc_auc_micro"], skm.roc_auc_score(np.eye(2)[Y_BIN], proba, average="micro"))
    assert close(out["top_k_accuracy"], skm.accuracy_score(Y_BIN, proba.argmax(axis=1)))


@pytest.mark.parametrize(
    ("task", "labels", "scores", "metric"),
    [
        ("binary", np.ones(5, int), np.linspace(0.1, 0.9, 5), "roc_auc"),
        ("classification", np.zeros(5, int), np.full((5, 3), 1 / 3), "roc_auc"),
        ("classification", np.array([0, 1, 0, 1]), np.full((4, 3), 1 / 3), "roc_auc_ovr_weighted"),
    ],
)
def test_undefined_auc_is_none_with_a_warning(
    task: str, labels: np.ndarray, scores: np.ndarray, metric: str
) -> None:
    out = figures.compute(task, labels, scores, metrics=[metric])
    assert out[metric] is None
    assert out["warnings"] and "undefined" in out["warnings"][0]


def test_undefined_r2_is_none() -> None:
    assert figures.compute("regression", np.array([1.0]), np.array([2.0]), metrics=["r2"])["r2"] is None


def test_non_finite_scores_are_refused() -> None:
    with pytest.raises(UnprocessableRequest, match="non-finite"):
        figures.compute("regression", np.array([1.0, 2.0]), np.array([np.nan, 1.0]))


def test_zero_instances_are_refused() -> None:
    with pytest.raises(InvalidInput, match="zero"):
        figures.compute("regression", np.array([]), np.array([]))


def test_select_metrics() -> None:
    assert "roc_curve" not in figures.select_metrics("classification", None)
    assert figures.select_metrics("binary", ["f1", "f1", "roc_curve"]) == ("f1", "roc_curve")
    with pytest.raises(UnprocessableRequest, match="'accuracy' do not apply to a regression model"):
        figures.select_metrics("regression", ["accuracy"])
    with pytest.raises(InvalidInput, match="list"):
        figures.select_metrics("regression", "mse")  # type: ignore[arg-type]


def test_figures_are_the_single_numbers() -> None:
    out = figures.compute("classification", Y, PROBA, metrics=["accuracy", "per_class", "top_k_accuracy"])
    assert figures.scalars(out) == {"accuracy": out["accuracy"], "top_k_accuracy": out["top_k_accuracy"]}
