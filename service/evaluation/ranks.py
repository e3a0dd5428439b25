"""ROC AUC from rank sums and ROC curve points, in memory linear in the rows (no argsort, no one-hot).

The trapezoidal ROC AUC that scikit-learn computes equals the Mann-Whitney statistic with average
ranks for ties: the share of (positive, negative) pairs ranked the right way round, ties counting
half. A positive's average rank among values sorted ascending is ``(L + R + 1) / 2``, with ``L``
the values strictly below it and ``R`` those at or below it, so every AUC here needs only one
sorted copy of a score column and binary searches into it, summed as exact integers. Micro-average
AUC ranks each row's true-class score among all N x K scores: its ``L`` and ``R`` are sums over the
columns, so the columns are sorted one at a time and no N x K copy is ever made.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Values handled per call when searching or walking a sorted column: bounds the temporaries
# (int64 positions, counts) to 512 KiB each, whatever the number of rows.
BLOCK = 1 << 16
# A curve with more corners than this is thinned to about this many points (see roc_points).
MAX_CURVE_POINTS = 1000


def rank_sum(sorted_values: np.ndarray, positives: np.ndarray) -> int:
    """Sum of ``L + R`` over ``positives``: values of ``sorted_values`` below / at or below each.

    ``positives`` sorted as well makes it several times faster: each search starts where the
    previous one ended instead of missing the cache all over ``sorted_values``.
    """
    total = 0
    for start in range(0, len(positives), BLOCK):
        part = positives[start : start + BLOCK]
        total += int(np.searchsorted(sorted_values, part, "left").sum(dtype=np.int64))
        total += int(np.searchsorted(sorted_values, part, "right").sum(dtype=np.int64))
    return total


def auc(rank_total: int, n_pos: int, n_neg: int) -> float | None:
    """AUC from :func:`rank_sum` of the positives; None when either side is empty."""
    if n_pos == 0 or n_neg == 0:
        return None
    # 2U = sum(L + R + 1) - n_pos(n_pos + 1) = rank_total - n_pos**2, exact in Python integers
    return (rank_total - n_pos * n_pos) / (2 * n_pos * n_neg)


@dataclass
class Ranked:
    """What :func:`rank_columns` found: per-class one-vs-rest AUC, micro AUC, per-class curves."""

    auc: list[float | None] = field(default_factory=list)
    micro: float | None = None
    curves: list[dict[str, Any] | None] = field(default_factory=list)


def rank_columns(y: np.ndarray, scores: np.ndarray, *, micro: bool, curves: bool) -> Ranked:
    """One pass over the K columns of ``scores`` (class ids ``y``), one sorted column at a time."""
    n, k = scores.shape
    truth = _true_class_scores(y, scores) if micro else None
    out, micro_total = Ranked(), 0
    for c in range(k):
        column = np.sort(scores[:, c])
        mine = scores[y == c, c]
        mine.sort()  # in place: a copy already
        out.auc.append(auc(rank_sum(column, mine), len(mine), n - len(mine)))
        if truth is not None:
            micro_total += rank_sum(column, truth)
        if curves:
            out.curves.append(roc_points(column, mine))
        del column, mine
    if truth is not None:
        out.micro = auc(micro_total, n, n * (k - 1))
    return out


def _true_class_scores(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each row's score for its own class, sorted; picked a block at a time, as numpy's fancy
    indexing of all rows at once would build N-long int64 index arrays (twice the result)."""
    out = np.empty(len(y), dtype=scores.dtype)
    for start in range(0, len(y), BLOCK):
        part = slice(start, start + BLOCK)
        out[part] = np.take_along_axis(scores[part], y[part, None], axis=1)[:, 0]
    out.sort()
    return out


def rank_binary(y: np.ndarray, p: np.ndarray, *, curve: bool) -> Ranked:
    """AUC (and the curve) of the positive-class scores ``p`` against 0/1 labels ``y``."""
    mine = p[y == 1]
    mine.sort()  # in place: a copy already
    column = np.sort(p)
    out = Ranked(auc=[auc(rank_sum(column, mine), len(mine), len(p) - len(mine))])
    if curve:
        out.curves.append(roc_points(column, mine))
    return out


def roc_points(
    sorted_all: np.ndarray, sorted_pos: np.ndarray, limit: int = MAX_CURVE_POINTS
) -> dict[str, Any] | None:
    """scikit-learn's ``roc_curve`` (collinear points dropped) from sorted scores; None if undefined.

    Points are produced in blocks of thresholds, so memory is linear in the rows; a curve with more
    than ``limit`` corners keeps the first corner in each of ``limit`` equal steps of fpr + tpr
    (which only grows along the curve) plus the last, so straight lines between the kept points stay
    within 2 / ``limit`` of the full curve, and says ``"reduced_from"``: how many corners it had.
    """
    n_pos = len(sorted_pos)
    n_neg = len(sorted_all) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    kept = _Thinned(n_pos, n_neg, limit)
    for thresholds, fps, tps in _corners(sorted_all, sorted_pos):
        kept.add(thresholds, fps, tps)
    return kept.result()


def _distinct_descending(sorted_all: np.ndarray) -> Iterator[np.ndarray]:
    """The distinct values of ``sorted_all``, highest first, in blocks (each value where its run ends)."""
    for stop in range(len(sorted_all), 0, -BLOCK):
        start = max(0, stop - BLOCK)
        block = sorted_all[start : stop + 1]  # one past the block: is its last value a run's end?
        ends = (
            np.append(block[:-1] != block[1:], True) if stop == len(sorted_all) else block[:-1] != block[1:]
        )
        yield block[: stop - start][ends][::-1]


def _corners(
    sorted_all: np.ndarray, sorted_pos: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(thresholds, fps, tps) of the points ``roc_curve(drop_intermediate=True)`` keeps, in blocks.

    Point i of the distinct thresholds (descending) counts the negatives (fps) and positives (tps)
    scored at or above it; it is kept when it is the first or the last, or a corner: its second
    difference in fps or tps is not zero. The last two points of a block wait for the next block.
    """
    carry: list[np.ndarray] = [sorted_all[:0], np.empty(0, np.int64), np.empty(0, np.int64)]
    first = True
    for t in _distinct_descending(sorted_all):
        ascending = t[::-1]  # searchsorted is fastest with keys in ascending order
        tps = (len(sorted_pos) - np.searchsorted(sorted_pos, ascending, "left"))[::-1]
        fps = (len(sorted_all) - np.searchsorted(sorted_all, ascending, "left"))[::-1] - tps
        t, fps, tps = (np.concatenate([c, x]) for c, x in zip(carry, (t, fps, tps), strict=True))
        if first:
            yield t[:1], fps[:1], tps[:1]
        lo = max(1, len(carry[0]) - 1)  # the first undecided point: the carried last, or the second
        corner = (np.diff(fps, 2) != 0) | (np.diff(tps, 2) != 0)  # for points 1 .. len - 2
        keep = corner[lo - 1 :]
        yield t[lo:-1][keep], fps[lo:-1][keep], tps[lo:-1][keep]
        carry, first = [t[-2:], fps[-2:], tps[-2:]], False
    if len(carry[0]) == 2:  # the last point, unless the curve has one threshold (it was the first)
        yield carry[0][-1:], carry[1][-1:], carry[2][-1:]


class _Thinned:
    """Collects curve points; past ``limit`` corners, keeps the first point of each fpr + tpr step."""

    def __init__(self, n_pos: int, n_neg: int, limit: int) -> None:
        self.n_pos, self.n_neg, self.limit = n_pos, n_neg, limit
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.count = 0  # corners seen
        self.thinning = False
        self.last_step = -1
        self.final: tuple[Any, Any, Any] = (None, None, None)  # the last corner, kept whatever its step

    def add(self, t: np.ndarray, fps: np.ndarray, tps: np.ndarray) -> None:
        self.count += len(t)
        if self.thinning:
            self._thin(t, fps, tps)
            return
        self.parts.append((t, fps, tps))
        if self.count > self.limit:
            self.thinning = True
            joined = [np.concatenate(a) for a in zip(*self.parts, strict=True)]
            self.parts = []
            self._thin(*joined)

    def _thin(self, t: np.ndarray, fps: np.ndarray, tps: np.ndarray) -> None:
        if len(t) == 0:
            return
        self.final = (t[-1], fps[-1], tps[-1])
        steps = np.floor((fps / self.n_neg + tps / self.n_pos) * (self.limit / 2)).astype(np.int64)
        new = np.append(steps[:1] != self.last_step, steps[1:] != steps[:-1])
        self.last_step = int(steps[-1])
        self.parts.append((t[new], fps[new], tps[new]))

    def result(self) -> dict[str, Any]:
        t, fps, tps = (np.concatenate(a) for a in zip(*self.parts, strict=True))
        if self.thinning and (fps[-1], tps[-1]) != (self.n_neg, self.n_pos):
            t, fps, tps = (np.append(a, a_last) for a, a_last in zip((t, fps, tps), self.final, strict=True))
        curve: dict[str, Any] = {
            "fpr": [0.0, *(fps / self.n_neg).tolist()],
            "tpr": [0.0, *(tps / self.n_pos).tolist()],
            # scikit-learn's first threshold is +inf ("nothing is positive"); JSON has no infinity
            "thresholds": [None, *np.asarray(t, np.float64).tolist()],
        }
        if self.thinning:
            curve["reduced_from"] = self.count + 1
        return curve
