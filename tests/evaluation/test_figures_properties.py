"""figures.compute against scikit-learn on random scores and labels: ties, constant scores, missing
classes, two classes, coarse (float16-like) values; with chunks and search blocks made tiny so
their boundaries fall inside the data."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn import metrics as skm

from service.errors import InvalidInput
from service.evaluation import figures, ranks, tallies

TOL = 1e-9
SETTINGS = settings(max_examples=100, deadline=None)


@contextmanager
def tiny_blocks(block: int, chunk: int) -> Iterator[None]:
    with mock.patch.object(ranks, "BLOCK", block), mock.patch.object(tallies, "CHUNK_VALUES", chunk):
        yield


@st.composite
def classified(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probability rows): small integer weights normalised, so rows tie often."""
    k = draw(st.integers(2, 6))
    n = draw(st.integers(1, 60))
    levels = draw(st.integers(1, 5))  # 1: every score the same
    y = draw(arrays(np.int64, n, elements=st.integers(0, k - 1)))
    weights = draw(arrays(np.float64, (n, k), elements=st.integers(1, levels).map(float)))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.float16]))
    return y, (weights / weights.sum(axis=1, keepdims=True)).astype(dtype)


@st.composite
def binary_scored(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 60))
    y = draw(arrays(np.int64, n, elements=st.integers(0, 1)))
    grid = draw(st.sampled_from([2, 5, 17, 1024]))  # coarse values tie
    p = draw(arrays(np.int64, n, elements=st.integers(0, grid))) / grid
    return y, p.astype(draw(st.sampled_from([np.float32, np.float64, np.float16])))


def close(mine: float | None, reference: float) -> bool:
    return mine is not None and abs(mine - reference) <= TOL


def sklearn_curve(truth: np.ndarray, score: np.ndarray) -> dict[str, Any] | None:
    if truth.all() or not truth.any():
        return None
    fpr, tpr, thresholds = skm.roc_curve(truth, score)
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": [None, *thresholds[1:].tolist()]}


def sklearn_ovr(y: np.ndarray, p64: np.ndarray, average: str) -> float:
    k = p64.shape[1]
    if np.allclose(1, p64.sum(axis=1)):
        return float(skm.roc_auc_score(y, p64, multi_class="ovr", average=average, labels=list(range(k))))
    # float16 rows miss sklearn's sum-to-1 check; past it, sklearn averages these very binary AUCs
    per_class = [skm.roc_auc_score(y == c, p64[:, c]) for c in range(k)]
    return float(
        np.average(per_class, weights=np.bincount(y, minlength=k) if average == "weighted" else None)
    )


def check_classification(y: np.ndarray, proba: np.ndarray, top_k: int) -> None:
    k = proba.shape[1]
    out = figures.compute(
        "classification", y, proba, metrics=list(figures.CLASSIFICATION_METRICS), top_k=top_k
    )
    p64 = proba.astype(np.float64)
    predicted = p64.argmax(axis=1)
    labels = list(range(k))
    assert close(out["accuracy"], skm.accuracy_score(y, predicted))
    kk = min(top_k, k)
    if kk >= k:
        assert out["top_k_accuracy"] == 1.0
    elif k == 2:
        assert close(out["top_k_accuracy"], skm.accuracy_score(y, predicted))
    else:
        assert close(out["top_k_accuracy"], skm.top_k_accuracy_score(y, p64, k=kk, labels=labels))
    assert close(out["roc_auc_micro"], skm.roc_auc_score(np.eye(k)[y], p64, average="micro"))
    assert close(out["log_loss"], skm.log_loss(y, p64 / p64.sum(axis=1, keepdims=True), labels=labels))
    assert out["confusion_matrix"] == skm.confusion_matrix(y, predicted, labels=labels).tolist()
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    for c in labels:
        mine = out["per_class"][str(c)]
        assert all(
            close(mine[m], ref[c]) for m, ref in (("precision", precision), ("recall", recall), ("f1", f1))
        )
        assert mine["support"] == support[c]
        assert out["roc_curve"][str(c)] == sklearn_curve(y == c, p64[:, c])
    if len(np.unique(y)) < k:
        assert out["roc_auc"] is None and out["roc_auc_ovr_weighted"] is None
        assert any("undefined" in w for w in out["warnings"])
    elif k == 2:
        assert close(out["roc_auc"], skm.roc_auc_score(y, p64[:, 1]))
    else:
        for average, name in (("macro", "roc_auc"), ("weighted", "roc_auc_ovr_weighted")):
            assert close(out[name], sklearn_ovr(y, p64, average))
        assert out["roc_auc_ovr_macro"] == out["roc_auc"]


@SETTINGS
@given(classified(), st.integers(1, 6), st.sampled_from([(1, 1), (2, 3), (3, 7), (1 << 18, 1 << 20)]))
def test_classification_equals_sklearn(data: tuple[np.ndarray, np.ndarray], top_k: int, sizes: Any) -> None:
    with tiny_blocks(*sizes):
        check_classification(*data, top_k)


@SETTINGS
@given(
    binary_scored(),
    st.sampled_from([0.0, 0.3, 0.5, 0.6, 1.0]),
    st.sampled_from([(1, 1), (2, 3), (1 << 18, 1 << 20)]),
)
def test_binary_equals_sklearn(data: tuple[np.ndarray, np.ndarray], threshold: float, sizes: Any) -> None:
    y, p = data
    with tiny_blocks(*sizes):
        out = figures.compute("binary", y, p, metrics=list(figures.BINARY_METRICS), threshold=threshold)
    p64 = p.astype(np.float64)
    decided = (p64 >= threshold).astype(int)
    assert close(out["accuracy"], skm.accuracy_score(y, decided))
    for name, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert close(out[name], fn(y, decided, labels=[0, 1], zero_division=0))
    assert close(out["log_loss"], skm.log_loss(y, p64, labels=[0, 1]))
    assert out["confusion_matrix"] == skm.confusion_matrix(y, decided, labels=[0, 1]).tolist()
    assert out["roc_curve"] == {"1": sklearn_curve(y == 1, p64)}
    if y.min() == y.max():
        assert out["roc_auc"] is None and out["warnings"]
    else:
        assert close(out["roc_auc"], skm.roc_auc_score(y, p64))


@SETTINGS
@given(
    st.integers(2, 400),
    st.sampled_from([3, 50, 100_000]),
    st.integers(2, 40),
    st.sampled_from([1, 2, 7]),
    st.randoms(use_true_random=False),
)
def test_long_curves_are_thinned_to_points_of_the_full_curve(
    n: int, grid: int, limit: int, block: int, rand: Any
) -> None:
    rng = np.random.default_rng(rand.randint(0, 2**32 - 1))
    truth = rng.random(n) < rng.random()
    score = (rng.integers(0, grid, n) / grid).astype(np.float32)
    if truth.all() or not truth.any():
        truth[0] = not truth[0]
    fpr, tpr, thresholds = skm.roc_curve(truth, score)
    with mock.patch.object(ranks, "BLOCK", block):
        curve = ranks.roc_points(np.sort(score), np.sort(score[truth]), limit)
    assert curve is not None
    full = list(zip(fpr.tolist(), tpr.tolist(), [math.inf, *thresholds[1:].tolist()], strict=True))
    if len(full) - 1 <= limit:  # at most `limit` corners: the curve itself
        assert "reduced_from" not in curve and curve["fpr"] == fpr.tolist() and curve["tpr"] == tpr.tolist()
        return
    assert curve["reduced_from"] == len(full)
    kept = list(zip(curve["fpr"], curve["tpr"], [math.inf, *curve["thresholds"][1:]], strict=True))
    assert len(kept) <= limit + 3 and kept[0] == full[0] and kept[-1] == full[-1]
    positions = [full.index(point) for point in kept]  # every kept point is a point of the curve
    assert positions == sorted(positions)
    # Each full point lies within 2 / limit (in fpr + tpr) of the last kept point at or before it.
    at = 0
    for i, (f, t, _) in enumerate(full):
        while at + 1 < len(positions) and positions[at + 1] <= i:
            at += 1
        assert f + t - (kept[at][0] + kept[at][1]) <= 2 / limit + 1e-12


def test_negative_scores_leave_log_loss_undefined_not_failing() -> None:
    y = np.array([0, 1, 2, 1])
    scores = np.array([[2.0, -1.0, 0.5]] * 4, np.float32)
    out = figures.compute("classification", y, scores, metrics=["log_loss", "accuracy"])
    assert out["log_loss"] is None and "not probabilities" in out["warnings"][0]
    assert out["accuracy"] == 0.25
    out = figures.compute("binary", np.array([0, 1]), np.array([0.2, 1.5]), metrics=["log_loss"])
    assert out["log_loss"] is None


def test_labels_outside_the_classes_are_refused() -> None:
    with pytest.raises(InvalidInput, match=r"0\.\.2"):
        figures.compute("classification", np.array([0, 3]), np.full((2, 3), 1 / 3), metrics=["accuracy"])
    with pytest.raises(InvalidInput, match="match"):
        figures.compute("binary", np.array([0, 1, 1]), np.array([0.2, 0.4]), metrics=["accuracy"])
