"""Metric math shared by the :evaluate endpoints, the batch evaluation job and training's model cards.

One module, so a figure means the same thing online, offline and in a card. Classifier figures
follow scikit-learn's definitions to 1e-9 (tests compare them) but are computed in memory that
does not grow with the rows beyond the scores themselves: counts in row chunks (``tallies``), AUC
from rank sums and ROC curves from sorted columns (``ranks``), never an N x K float64 or int64
array. Regression figures are scikit-learn's (their inputs are one column). Undefined figures (AUC
when a class has no samples) are reported as ``None`` with a warning instead of failing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from service.errors import InvalidInput, UnprocessableRequest
from service.evaluation import calibration, ranks, tallies
from service.models.outputs import DEFAULT_THRESHOLD


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
    (binary) or the predictions (regression), exactly as the model returned them. Classifier
    figures take memory linear in the rows beyond the scores themselves, which are not copied.
    """
    chosen = select_metrics(task, list(metrics) if metrics is not None else None)
    if len(y_true) == 0:
        raise InvalidInput("Cannot evaluate on zero instances.")
    scores = _floats(scores)
    bad = tallies.count_nonfinite(scores)
    if bad:
        raise UnprocessableRequest(
            f"The model returned {bad} non-finite score(s) (NaN or Infinity); its metrics are undefined."
        )
    if task == "regression":
        return _regression(np.asarray(y_true, np.float64), np.asarray(scores, np.float64).reshape(-1), chosen)
    y = np.asarray(y_true, np.int64)
    if task == "binary":
        p = scores.reshape(-1)
        _check_classes(y, 2, len(p))
        return _binary(y, p, chosen, threshold, class_labels)
    _check_classes(y, scores.shape[1], len(scores))
    return _classification(y, scores, chosen, top_k, class_labels)


def _floats(scores: np.ndarray) -> np.ndarray:
    """The scores as they are when float32 or float64 (a float64 copy of N x K is what to avoid)."""
    array = np.asarray(scores)
    if array.dtype in (np.float32, np.float64):
        return array
    return array.astype(np.float32 if array.dtype == np.float16 else np.float64)


def _check_classes(y: np.ndarray, n_classes: int, rows: int) -> None:
    if len(y) != rows:
        raise InvalidInput(f"Got {len(y)} labels for {rows} score rows; they must match one to one.")
    if y.min() < 0 or y.max() >= n_classes:
        raise InvalidInput(f"Labels must be class ids in 0..{n_classes - 1}.")


def _classification(
    y: np.ndarray,
    proba: np.ndarray,
    chosen: tuple[str, ...],
    top_k: int | None,
    class_labels: Sequence[str] | None,
) -> dict[str, Any]:
    n_rows, n_classes = proba.shape
    names = list(class_labels) if class_labels else [str(c) for c in range(n_classes)]
    k = min(top_k or DEFAULT_TOP_K, n_classes)
    # k >= K: every class is among the top k; two classes (k=1): top-1 is the prediction
    ranked_top_k = "top_k_accuracy" in chosen and k < n_classes and n_classes > 2
    tally = tallies.classification(y, proba, k if ranked_top_k else None, "log_loss" in chosen)
    ranked = _rank(y, proba, chosen)
    counts = np.bincount(y, minlength=n_classes)
    out: dict[str, Any] = {}
    warnings: list[str] = []
    for name in chosen:
        if name == "accuracy":
            out[name] = _accuracy(tally.confusion)
        elif name == "top_k_accuracy":
            if ranked_top_k:
                out[name] = tally.top_k_hits / n_rows
            else:
                out[name] = 1.0 if k >= n_classes else _accuracy(tally.confusion)
            out["top_k"] = k
        elif name in ("roc_auc", "roc_auc_ovr_macro", "roc_auc_ovr_weighted"):
            average = "weighted" if name.endswith("weighted") else "macro"
            out[name] = _ovr_auc(ranked.auc, counts, average, names, warnings)
        elif name == "roc_auc_micro":
            out[name] = _defined(ranked.micro, name, warnings)
        elif name == "log_loss":
            out[name] = _log_loss(tally.log_loss_sum, n_rows, warnings)
        elif name == "ece":
            out[name] = calibration.classification_ece(y, proba)
        elif name == "per_class":
            out[name] = _per_class(tally.confusion, names)
        elif name == "confusion_matrix":
            out[name] = tally.confusion.tolist()
        elif name == "roc_curve":
            out[name] = dict(zip(names, ranked.curves, strict=True))
    if warnings:
        out["warnings"] = warnings
    return out


def _rank(y: np.ndarray, proba: np.ndarray, chosen: tuple[str, ...]) -> ranks.Ranked:
    wanted = {"roc_auc", "roc_auc_ovr_macro", "roc_auc_ovr_weighted", "roc_auc_micro", "roc_curve"}
    if not wanted.intersection(chosen):
        return ranks.Ranked()
    return ranks.rank_columns(y, proba, micro="roc_auc_micro" in chosen, curves="roc_curve" in chosen)


def _ovr_auc(
    per_class: list[float | None], counts: np.ndarray, average: str, names: list[str], warnings: list[str]
) -> float | None:
    """scikit-learn's one-vs-rest AUC: a plain or class-count-weighted mean; two classes are binary."""
    missing = [names[c] for c, count in enumerate(counts) if count == 0]
    if missing:
        note = f"One-vs-rest ROC AUC is undefined: class(es) {', '.join(missing)} have no samples."
        if note not in warnings:
            warnings.append(note)
        return None
    if len(per_class) == 2:
        # sklearn treats two classes as binary (column 1 against class 1); macro and weighted reduce to it
        return per_class[1]
    values = np.array(per_class, dtype=np.float64)
    if average == "macro":
        return float(np.average(values))
    return float(np.average(values, weights=counts))


def _binary(
    y: np.ndarray,
    p: np.ndarray,
    chosen: tuple[str, ...],
    threshold: float,
    class_labels: Sequence[str] | None,
) -> dict[str, Any]:
    names = list(class_labels) if class_labels else ["0", "1"]
    tally = tallies.binary(y, p, threshold, "log_loss" in chosen)
    cm = tally.confusion
    ranked = None
    if {"roc_auc", "roc_curve"}.intersection(chosen):
        ranked = ranks.rank_binary(y, p, curve="roc_curve" in chosen)
    out: dict[str, Any] = {"threshold": threshold}
    warnings: list[str] = []
    for name in chosen:
        if name == "accuracy":
            out[name] = _accuracy(cm)
        elif name in ("precision", "recall", "f1"):
            out[name] = _per_class(cm, names)[names[1]][name]
        elif name == "roc_auc" and ranked is not None:
            out[name] = _defined(ranked.auc[0], name, warnings)
        elif name == "log_loss":
            out[name] = _log_loss(tally.log_loss_sum, len(p), warnings)
        elif name == "ece":
            out[name] = calibration.binary_ece(y, p)
        elif name == "per_class":
            out[name] = _per_class(cm, names)
        elif name == "confusion_matrix":
            out[name] = cm.tolist()
        elif name == "roc_curve" and ranked is not None:
            out[name] = {names[1]: ranked.curves[0]}
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


def _defined(value: float | None, name: str, warnings: list[str]) -> float | None:
    """``value``, or None with a warning when the labels hold one class only (no pairs to rank)."""
    # scikit-learn raised on this before 1.6 and returns nan after; a report says why instead
    if value is None:
        warnings.append(f"{name} is undefined on this data: the labels hold only one class.")
    return value


def _log_loss(total: float | None, rows: int, warnings: list[str]) -> float | None:
    if total is None:
        warnings.append("log_loss is undefined: the model's scores are not probabilities in [0, 1].")
        return None
    return total / rows


def _accuracy(confusion: np.ndarray) -> float:
    return int(np.trace(confusion)) / int(confusion.sum())


def _per_class(confusion: np.ndarray, names: list[str]) -> dict[str, Any]:
    """scikit-learn's precision, recall and F1 per class (0 where undefined: zero_division=0)."""
    tp = np.diag(confusion).astype(np.float64)
    support, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    return {
        name: {
            "precision": _ratio(tp[c], predicted[c]),
            "recall": _ratio(tp[c], support[c]),
            "f1": _ratio(2 * tp[c], support[c] + predicted[c]),
            "support": int(support[c]),
        }
        for c, name in enumerate(names)
    }


def _ratio(part: float, whole: int) -> float:
    return float(part / whole) if whole else 0.0
