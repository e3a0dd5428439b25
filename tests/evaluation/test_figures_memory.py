"""figures.compute's temporaries stay within a small multiple of the scores (traced allocations):
classifiers at most one more copy of their N x K scores (ranking copies one column at a time),
binary models at most three (their single column copied sorted, plus its positives sorted)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from service.evaluation import figures


def peak_extra(task: str, y: np.ndarray, scores: np.ndarray, metrics: tuple[str, ...]) -> int:
    """Bytes allocated at the peak of one compute call, beyond what was allocated before it."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        figures.compute(task, y, scores, metrics=metrics)
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("task", "copies"), [("classification", 1), ("binary", 3)])
def test_every_figure_at_once_takes_a_copy_or_two_of_the_scores(task: str, copies: int) -> None:
    # numpy reports its buffers to tracemalloc, so this sees every temporary array
    rng = np.random.default_rng(3)
    rows, classes = (400_000, 10) if task == "classification" else (2_000_000, 1)
    y = rng.integers(0, classes if classes > 1 else 2, rows)
    raw = rng.random((rows, classes), dtype=np.float32)
    scores = raw / raw.sum(axis=1, keepdims=True) if task == "classification" else raw.ravel()
    # the labels (int64) are the caller's as well; the bound is on what compute adds to both
    extra = peak_extra(task, y, scores, figures.METRICS_BY_TASK[task])
    assert extra < copies * scores.nbytes, (
        f"{extra / 2**20:.1f} MiB for {scores.nbytes / 2**20:.1f} MiB of scores"
    )
