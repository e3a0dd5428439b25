"""Row-chunked tallies behind the decomposable figures: confusion matrix, top-k hits, log-loss sums.

Each figure is a sum over rows, so the scores are read a chunk of rows at a time and only a chunk
is ever widened to float64 or compared column by column; memory does not grow with the rows.
The rules are scikit-learn's: the predicted class is the first of the highest scores (argmax),
top-k ranks ties by the higher class index first (its stable sort, reversed), and log-loss
normalises each row to sum to 1, clips to [eps, 1 - eps] in float64 and averages -log p(true).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

# Scores read per chunk, whatever the number of classes: each temporary is at most 512 KiB (float64),
# and a 10-class million-row evaluation still takes only ~150 chunks of Python overhead.
CHUNK_VALUES = 1 << 16
EPS = float(np.finfo(np.float64).eps)


def chunks(rows: int, width: int) -> Iterator[slice]:
    """Row slices holding about CHUNK_VALUES scores each."""
    step = max(1, CHUNK_VALUES // max(1, width))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


def count_nonfinite(scores: np.ndarray) -> int:
    flat = scores.reshape(len(scores), -1)
    return sum(int(np.count_nonzero(~np.isfinite(flat[part]))) for part in chunks(len(flat), flat.shape[1]))


@dataclass
class Tally:
    """Sums over rows; a log-loss of None means a score outside what log-loss accepts."""

    confusion: np.ndarray  # K x K int64, rows true, columns predicted
    top_k_hits: int = 0
    log_loss_sum: float | None = 0.0


def classification(y: np.ndarray, scores: np.ndarray, top_k: int | None, log_loss: bool) -> Tally:
    """Confusion matrix, hits of the true class among the ``top_k`` highest scores, log-loss sum."""
    n, k = scores.shape
    tally = Tally(np.zeros((k, k), dtype=np.int64), 0, 0.0 if log_loss else None)
    columns = np.arange(k)
    for part in chunks(n, k):
        block, truth = scores[part], y[part]
        predicted = np.argmax(block, axis=1)
        tally.confusion += np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)
        if top_k is not None:
            tally.top_k_hits += _top_k_hits(block, truth, columns, top_k)
        if tally.log_loss_sum is not None:
            tally.log_loss_sum = _add(tally.log_loss_sum, _row_losses(block, truth))
    return tally


def _top_k_hits(block: np.ndarray, truth: np.ndarray, columns: np.ndarray, k: int) -> int:
    """Rows whose true class is among the top ``k`` when ties go to the higher class index."""
    mine = np.take_along_axis(block, truth[:, None], axis=1)
    ahead = (block > mine) | ((block == mine) & (columns > truth[:, None]))
    return int(np.count_nonzero(np.count_nonzero(ahead, axis=1) < k))


def _row_losses(block: np.ndarray, truth: np.ndarray) -> np.ndarray | None:
    """-log p(true) per row, or None when a score is negative (scikit-learn refuses such rows)."""
    wide = block.astype(np.float64)
    if wide.size and wide.min() < 0:
        return None
    sums = wide.sum(axis=1)
    p = np.take_along_axis(wide, truth[:, None], axis=1).ravel() / np.where(sums > 0, sums, 1.0)
    return -np.log(np.clip(p, EPS, 1 - EPS))


def _add(total: float | None, losses: np.ndarray | None) -> float | None:
    return None if total is None or losses is None else total + float(losses.sum())


def binary(y: np.ndarray, p: np.ndarray, threshold: float, log_loss: bool) -> Tally:
    """Confusion matrix at ``threshold`` (positive when p >= threshold) and the log-loss sum."""
    tally = Tally(np.zeros((2, 2), dtype=np.int64), 0, 0.0 if log_loss else None)
    for part in chunks(len(p), 1):
        wide, truth = p[part].astype(np.float64), y[part]
        # compared in float64, as the threshold is given: float32 would round it first
        predicted = (wide >= threshold).astype(np.int64)
        tally.confusion += np.bincount(truth * 2 + predicted, minlength=4).reshape(2, 2)
        if tally.log_loss_sum is not None:
            outside = wide.size and (wide.min() < 0 or wide.max() > 1)
            losses = None if outside else -np.log(np.clip(np.where(truth == 1, wide, 1 - wide), EPS, 1 - EPS))
            tally.log_loss_sum = _add(tally.log_loss_sum, losses)
    return tally
