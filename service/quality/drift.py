"""Drift without labels: distributions of what a model predicts, live vs held-out, as PSI per signal.

Signals of a score matrix (pure numpy):

- classifiers (and binary models, as two columns): ``class`` (the predicted class),
  ``confidence`` (the top-class probability) and ``entropy`` (of the predicted distribution);
- regressors: ``prediction``.

A *reference* summarises the signals on held-out data: class shares, and for continuous signals
the proportions in bins cut at the reference's deciles (so each bin holds ~10% of held-out rows).
Training stores one in every new model card (``drift_reference``); live rows are counted into the
same bins and compared with the population stability index,
PSI = sum over bins of (live - reference) * ln(live / reference), shares floored at 1e-4 so an empty
bin stays finite. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 a real shift.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BINS = 10
FLOOR = 1e-4
MIN_LIVE = 100  # fewer live rows than this give no PSI: too noisy to alert on


def _as_matrix(task: str, scores: np.ndarray) -> np.ndarray:
    scores = np.asarray(scores, np.float64)
    if task == "binary":
        p = np.clip(scores.reshape(-1), 0.0, 1.0)
        return np.stack([1.0 - p, p], axis=1)
    return scores.reshape(len(scores), -1)


def signals(task: str, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Each signal's value per row of ``scores`` (the model's score output, N or N x K)."""
    if task == "regression":
        return {"prediction": np.asarray(scores, np.float64).reshape(-1)}
    proba = _as_matrix(task, scores)
    safe = np.clip(proba, 1e-12, 1.0)
    return {
        "class": proba.argmax(axis=1).astype(np.float64),
        "confidence": proba.max(axis=1),
        "entropy": -(proba * np.log(safe)).sum(axis=1),
    }


def _shares(counts: np.ndarray) -> list[float]:
    total = counts.sum()
    return (counts / total).tolist() if total else [0.0] * len(counts)


def _binned(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)


def reference(task: str, scores: np.ndarray, classes: int | None = None) -> dict[str, Any]:
    """The ``drift_reference`` of a model card: per-signal shares on held-out ``scores``."""
    out: dict[str, Any] = {}
    for name, values in signals(task, scores).items():
        if name == "class":
            k = classes or (
                2 if task == "binary" else int(np.asarray(scores).reshape(len(scores), -1).shape[1])
            )
            counts = np.bincount(values.astype(np.int64), minlength=k)
            out[name] = {"kind": "categorical", "shares": _shares(counts)}
            continue
        edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1]))
        out[name] = {"kind": "binned", "edges": edges.tolist(), "shares": _shares(_binned(values, edges))}
    return {"count": len(scores), "signals": out}


def live_shares(spec: dict[str, Any], values: np.ndarray) -> np.ndarray:
    """Shares of live ``values`` in the bins (or classes) of one reference signal."""
    if spec["kind"] == "categorical":
        k = len(spec["shares"])
        ids = values.astype(np.int64)
        counts = np.bincount(ids[(ids >= 0) & (ids < k)], minlength=k)
    else:
        counts = _binned(values, np.asarray(spec["edges"], np.float64))
    return np.asarray(_shares(counts))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(np.asarray(expected, np.float64), FLOOR)
    a = np.maximum(np.asarray(actual, np.float64), FLOOR)
    return float(((a - e) * np.log(a / e)).sum())


def compare(ref: dict[str, Any], task: str, scores: np.ndarray) -> dict[str, Any]:
    """PSI per signal of live ``scores`` against ``ref`` (None when too few live rows)."""
    live = signals(task, scores) if len(scores) else {}
    result: dict[str, Any] = {}
    for name, spec in ref["signals"].items():
        if len(scores) < MIN_LIVE or name not in live:
            result[name] = None
            continue
        result[name] = psi(np.asarray(spec["shares"]), live_shares(spec, live[name]))
    return result
