"""Expected calibration error: how far a model's stated confidence is from how often it is right.

Equal-width bins over [0, 1] (15, as in Guo et al. 2017, "On Calibration of Modern Neural
Networks"); ECE is the sample-weighted mean of |observed frequency - mean confidence| per bin.

- classification: confidence is the top-class probability, observed is "the top class is right".
- binary: the positive-class probability against the observed rate of positives (threshold-free,
  so it does not move with the decision threshold).

Rows are binned a chunk at a time, so the temporaries stay small however many rows there are.
"""

from __future__ import annotations

import numpy as np

from service.evaluation.tallies import chunks

BINS = 15


def _bin_sums(confidence: np.ndarray, observed: np.ndarray, bins: int) -> np.ndarray:
    """Per bin: [sum of confidence, sum of observed] for one chunk of rows."""
    # Bin i holds [i/bins, (i+1)/bins); a confidence of exactly 1.0 goes to the last bin.
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    return np.stack(
        [
            np.bincount(index, weights=confidence, minlength=bins),
            np.bincount(index, weights=observed, minlength=bins),
        ]
    )


def _ece(sums: np.ndarray, rows: int) -> float:
    return float(np.abs(sums[1] - sums[0]).sum() / rows) if rows else float("nan")


def classification_ece(y: np.ndarray, proba: np.ndarray, bins: int = BINS) -> float:
    """ECE of the top-class probability of each row of ``proba`` (N x K) against labels ``y``."""
    proba = np.asarray(proba)  # as given (float32): a float64 copy of N x K scores is not needed
    y = np.asarray(y)
    sums = np.zeros((2, bins))
    for rows in chunks(len(proba), proba.shape[1] if proba.ndim == 2 else 1):
        block = proba[rows]
        confidence = np.clip(block.max(axis=1).astype(np.float64), 0.0, 1.0)
        sums += _bin_sums(confidence, (block.argmax(axis=1) == y[rows]).astype(np.float64), bins)
    return _ece(sums, len(proba))


def binary_ece(y: np.ndarray, probability: np.ndarray, bins: int = BINS) -> float:
    """ECE of positive-class probabilities against 0/1 labels."""
    probability = np.asarray(probability).reshape(-1)
    y = np.asarray(y)
    sums = np.zeros((2, bins))
    for rows in chunks(len(probability), 1):
        p = np.clip(probability[rows].astype(np.float64), 0.0, 1.0)
        sums += _bin_sums(p, y[rows].astype(np.float64), bins)
    return _ece(sums, len(probability))
