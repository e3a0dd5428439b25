"""ECE (service.evaluation.calibration) on cases worked out by hand, and through figures.compute."""

from __future__ import annotations

import numpy as np
import pytest

from service.evaluation import calibration, figures


def test_perfectly_calibrated_bins_give_zero() -> None:
    # Every row at confidence 1.0 and right: nothing to correct.
    proba = np.array([[1.0, 0.0]] * 4)
    assert calibration.classification_ece(np.zeros(4, np.int64), proba) == 0.0


def test_classification_ece_by_hand() -> None:
    # Four rows at confidence 0.9 (bin 13), three right: |0.75 - 0.9| = 0.15, all rows in one bin.
    proba = np.array([[0.9, 0.1]] * 4)
    y = np.array([0, 0, 0, 1])
    assert calibration.classification_ece(y, proba) == pytest.approx(0.15, abs=1e-12)
    # Add four rows at confidence 0.6 (bin 9), all right: |1.0 - 0.6| = 0.4; weighted mean 0.275.
    proba2 = np.vstack([proba, [[0.4, 0.6]] * 4])
    y2 = np.concatenate([y, [1, 1, 1, 1]])
    assert calibration.classification_ece(y2, proba2) == pytest.approx((0.15 + 0.4) / 2, abs=1e-12)


def test_binary_ece_compares_positive_rates() -> None:
    p = np.array([0.2, 0.2, 0.2, 0.2, 0.2])  # one bin; observed positive rate 0.4
    assert calibration.binary_ece(np.array([1, 1, 0, 0, 0]), p) == pytest.approx(0.2, abs=1e-12)


def test_figures_report_ece_by_default() -> None:
    proba = np.array([[0.9, 0.1]] * 4)
    out = figures.compute("classification", np.array([0, 0, 0, 1]), proba, class_labels=["a", "b"])
    assert out["ece"] == pytest.approx(0.15, abs=1e-12)
    assert figures.scalars(out)["ece"] == out["ece"]
    binary = figures.compute("binary", np.array([1, 1, 0, 0, 0]), np.full(5, 0.2))
    assert binary["ece"] == pytest.approx(0.2, abs=1e-12)
