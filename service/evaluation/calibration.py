"""Expected calibration error: how far a model's stated confidence is from how often it is right.

Equal-width bins over [0, 1] (15, as in Guo et al. 2017, "On Calibration of Modern Neural
Networks"); ECE is the sample-weighted mean of |observed frequency - mean confidence| per bin.

- classification: confidence is the top-class probability, observed is "the top class is right".
- binary: the positive-class probability against the observed rate of positives (threshold-free,
  so it does not move with the decision threshold).
"""

from __future__ import annotations

import numpy as np

BINS = 15


def _ece(confidence: np.ndarray, observed: np.ndarray, bins: int) -> float:
    # Bin i holds [i/bins, (i+1)/bins); a confidence of exactly 1.0 goes to the last bin.
    index = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    confidence_sums = np.bincount(index, weights=confidence, minlength=bins)
    observed_sums = np.bincount(index, weights=observed, minlength=bins)
    return float(np.abs(observed_sums - confidence_sums).sum() / len(confidence))


def classification_ece(y: np.ndarray, proba: np.ndarray, bins: int = BINS) -> float:
    """ECE of the top-class probability of each row of ``proba`` (N x K) against labels ``y``."""
    proba = np.asarray(proba, np.float64)
    confidence = np.clip(proba.max(axis=1), 0.0, 1.0)
    correct = (proba.argmax(axis=1) == np.asarray(y)).astype(np.float64)
    return _ece(confidence, correct, bins)


def binary_ece(y: np.ndarray, probability: np.ndarray, bins: int = BINS) -> float:
    """ECE of positive-class probabilities against 0/1 labels."""
    p = np.clip(np.asarray(probability, np.float64).reshape(-1), 0.0, 1.0)
    return _ece(p, np.asarray(y, np.float64), bins)
