"""Metric math shared by the :evaluate endpoints, the batch evaluation job and training's model cards.

Pure numpy + scikit-learn, so a figure means the same thing online, offline and in a card. Every
figure is computed by scikit-learn from the model's own outputs; undefined figures (AUC when a
class has no samples) are reported as ``None`` with a warning instead of failing the evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from service.errors import InvalidInput, UnprocessableRequest
from service.evaluation import calibration
from service.models.outputs import DEFAULT_THRESHOLD, binary_decision


class _SklearnMetrics:
    """``sklearn.metrics``, imported on first use: ~65 MB a serving worker that never evaluates
    does not need to hold."""

    def __getattr__(self, name: str) -> Any:
        from sklearn import metrics

        return getattr(metrics, name)


skm = _SklearnMetrics()

CLASSIFICATION_METRICS = (
    "accuracy",
    "top_k_accuracy",
    "roc_auc",
    "roc_auc_ovr_macro",
    "roc_auc_ovr_weighted",
    "roc_auc_micro",
    "log_loss",
    "ece",
    "per_class",
    "confusion_matrix",
    "roc_curve",
)
BINARY_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "log_loss",
    "ece",
    "per_class",
    "confusion_matrix",
    "roc_curve",
)
REGRESSION_METRICS = ("mse", "rmse", "mae", "r2", "max_error")
METRICS_BY_TASK = {
    "classification": CLASSIFICATION_METRICS,
    "binary": BINARY_METRICS,
    "regression": REGRESSION_METRICS,
}
# Curves are long; they are sent only when asked for.
ON_REQUEST = frozenset({"roc_curve"})
DEFAULT_TOP_K = 5


# The single-number figures of a result, in a stable order: gauges, gates and comparisons use these.
TABLES = frozenset({"per_class", "confusion_matrix", "roc_curve"})
FIGURES = tuple(dict.fromkeys(m for metrics in METRICS_BY_TASK.values() for m in metrics if m not in TABLES))


def scalars(result: Mapping[str, Any]) -> dict[str, float | None]:
    """The single-number figures of a :func:`compute` result (no tables, curves or settings)."""
    return {name: result[name] for name in FIGURES if name in result}


def select_metrics(task: str, requested: Sequence[str] | None) -> tuple[str, ...]:
    """The metrics to compute: the task's defaults, or the requested ones if the task has them."""
    available = METRICS_BY_TASK[task]
    if requested is None:
        return tuple(m for m in available if m not in ON_REQUEST)
    if isinstance(requested, str) or not all(isinstance(m, str) for m in requested):
        raise InvalidInput("'metrics' must be a list of metric names.")
    unknown = [m for m in requested if m not in available]
    if unknown:
        raise UnprocessableRequest(
            f"Metric(s) {', '.join(map(repr, unknown))} do not apply to a {task} model; "
            f"available: {', '.join(available)}."
        )
    return tuple(dict.fromkeys(requested))


def compute(
    task: str,
    y_true: np.ndarray,
    scores: np.ndarray,
    *,
    class_labels: Sequence[str] | None = None,
    metrics: Iterable[str] | None = None,
    top_k: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
) -> dict[str, Any]:
    """All requested metrics for one model's outputs.

    ``scores`` is the class-probability matrix (classification), the positive-class probability
    (binary) or the predictions (regression), exactly as the model returned them.
    """
    chosen = select_metrics(task, list(metrics) if metrics is not None else None)
    if len(y_true) == 0:
        raise InvalidInput("Cannot evaluate on zero instances.")
    _check_finite(scores)
    if task == "regression":
        return _regression(np.asarray(y_true, np.float64), np.asarray(scores, np.float64).reshape(-1), chosen)
    if task == "binary":
        probability = np.asarray(scores, np.float64).reshape(-1)
        return _binary(np.asarray(y_true, np.int64), probability, chosen, threshold, class_labels)
    return _classification(
        np.asarray(y_true, np.int64), np.asarray(scores, np.float64), chosen, top_k, class_labels
    )


def _check_finite(scores: np.ndarray) -> None:
    bad = int(np.count_nonzero(~np.isfinite(np.asarray(scores, np.float64))))
    if bad:
        raise UnprocessableRequest(
            f"The model returned {bad} non-finite score(s) (NaN or Infinity); its metrics are undefined."
        )


def _classification(
    y: np.ndarray,
    proba: np.ndarray,
    chosen: tuple[str, ...],
    top_k: int | None,
    class_labels: Sequence[str] | None,
) -> dict[str, Any]:
    n_classes = proba.shape[1]
    classes = list(range(n_classes))
    names = list(class_labels) if class_labels else [str(c) for c in classes]
    predicted = np.argmax(proba, axis=1)
    out: dict[str, Any] = {}
    warnings: list[str] = []
    auc = _ovr_auc(y, proba, classes, names, warnings)
    for name in chosen:
        if name == "accuracy":
            out[name] = float(skm.accuracy_score(y, predicted))
        elif name == "top_k_accuracy":
            k = min(top_k or DEFAULT_TOP_K, n_classes)
            out[name] = _top_k_accuracy(y, proba, predicted, k)
            out["top_k"] = k
        elif name in ("roc_auc", "roc_auc_ovr_macro"):
            out[name] = auc("macro")
        elif name == "roc_auc_ovr_weighted":
            out[name] = auc("weighted")
        elif name == "roc_auc_micro":
            # one-hot by hand: label_binarize gives a single column for two classes
            onehot = np.eye(n_classes, dtype=np.int64)[y]
            out[name] = _safe_auc(
                onehot, partial(skm.roc_auc_score, onehot, proba, average="micro"), name, warnings
            )
        elif name == "log_loss":
            out[name] = float(skm.log_loss(y, _normalised(proba), labels=classes))
        elif name == "ece":
            out[name] = calibration.classification_ece(y, proba)
        elif name == "per_class":
            out[name] = _per_class(y, predicted, classes, names)
        elif name == "confusion_matrix":
            out[name] = skm.confusion_matrix(y, predicted, labels=classes).tolist()
        elif name == "roc_curve":
            out[name] = {names[c]: _roc_points(y == c, proba[:, c]) for c in classes}
    if warnings:
        out["warnings"] = warnings
    return out


def _ovr_auc(
    y: np.ndarray, proba: np.ndarray, classes: list[int], names: list[str], warnings: list[str]
) -> Any:
    missing = [names[c] for c in classes if not np.any(y == c)]

    def auc(average: str) -> float | None:
        if missing:
            note = f"One-vs-rest ROC AUC is undefined: class(es) {', '.join(missing)} have no samples."
            if note not in warnings:
                warnings.append(note)
            return None
        if len(classes) == 2:
            # sklearn treats two classes as binary; one-vs-rest macro and weighted both reduce to this
            return float(skm.roc_auc_score(y, proba[:, 1]))
        return float(skm.roc_auc_score(y, proba, multi_class="ovr", average=average, labels=classes))

    return auc


def _top_k_accuracy(y: np.ndarray, proba: np.ndarray, predicted: np.ndarray, k: int) -> float:
    if k >= proba.shape[1]:
        return 1.0  # every class is among the top k
    if proba.shape[1] == 2:
        # sklearn refuses a 2-column score for binary targets; with k=1 top-k accuracy is accuracy
        return float(skm.accuracy_score(y, predicted))
    return float(skm.top_k_accuracy_score(y, proba, k=k, labels=list(range(proba.shape[1]))))


def _binary(
    y: np.ndarray,
    p: np.ndarray,
    chosen: tuple[str, ...],
    threshold: float,
    class_labels: Sequence[str] | None,
) -> dict[str, Any]:
    predicted = binary_decision(p, threshold)
    names = list(class_labels) if class_labels else ["0", "1"]
    out: dict[str, Any] = {"threshold": threshold}
    warnings: list[str] = []
    for name in chosen:
        if name == "accuracy":
            out[name] = float(skm.accuracy_score(y, predicted))
        elif name in ("precision", "recall", "f1"):
            fn = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[name]
            out[name] = float(fn(y, predicted, labels=[0, 1], zero_division=0))
        elif name == "roc_auc":
            out[name] = _safe_auc(y, lambda: skm.roc_auc_score(y, p), name, warnings)
        elif name == "log_loss":
            out[name] = float(skm.log_loss(y, p, labels=[0, 1]))
        elif name == "ece":
            out[name] = calibration.binary_ece(y, p)
        elif name == "per_class":
            out[name] = _per_class(y, predicted, [0, 1], names)
        elif name == "confusion_matrix":
            out[name] = skm.confusion_matrix(y, predicted, labels=[0, 1]).tolist()
        elif name == "roc_curve":
            out[name] = {names[1]: _roc_points(y == 1, p)}
    if warnings:
        out["warnings"] = warnings
    return out


def _regression(y: np.ndarray, pred: np.ndarray, chosen: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    mse = float(skm.mean_squared_error(y, pred))
    for name in chosen:
        if name == "mse":
            out[name] = mse
        elif name == "rmse":
            out[name] = math.sqrt(mse)
        elif name == "mae":
            out[name] = float(skm.mean_absolute_error(y, pred))
        elif name == "r2":
            # R² needs at least two samples with different targets; sklearn returns nan otherwise.
            r2 = float(skm.r2_score(y, pred)) if len(y) > 1 else float("nan")
            out[name] = r2 if math.isfinite(r2) else None
        elif name == "max_error":
            out[name] = float(skm.max_error(y, pred))
    return out


def _safe_auc(truth: np.ndarray, fn: Any, name: str, warnings: list[str]) -> float | None:
    """``fn()``'s AUC, or None with a warning when ``truth`` (0/1) holds one value only."""
    # Checked here because scikit-learn raised on this before 1.6 and returns nan after.
    if truth.min() == truth.max():
        warnings.append(f"{name} is undefined on this data: the labels hold only one class.")
        return None
    return float(fn())


def _normalised(proba: np.ndarray) -> np.ndarray:
    # float32 softmax rows sum to 1 only within ~1e-7; log-loss wants exact probabilities.
    # AUC and accuracy use the raw scores, so ranks are exactly those the model produced.
    sums = proba.sum(axis=1, keepdims=True)
    return proba / np.where(sums > 0, sums, 1.0)


def _per_class(y: np.ndarray, predicted: np.ndarray, classes: list[int], names: list[str]) -> dict[str, Any]:
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, predicted, labels=classes, zero_division=0
    )
    return {
        names[c]: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, c in enumerate(classes)
    }


def _roc_points(positive: np.ndarray, score: np.ndarray) -> dict[str, Any] | None:
    if positive.all() or not positive.any():
        return None
    fpr, tpr, thresholds = skm.roc_curve(positive, score)
    # sklearn's first threshold is +inf ("nothing is positive"); JSON has no infinity.
    return {
        "fpr": fpr.tolist(),
        "tpr": tpr.tolist(),
        "thresholds": [float(t) if math.isfinite(t) else None for t in thresholds],
    }
