"""service.quality.drift: signals, references and PSI on numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.quality import drift

RNG = np.random.default_rng(3)
HELD_OUT = RNG.dirichlet(np.full(10, 0.3), 2000).astype(np.float32)


def test_signals_of_a_classifier() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    found = drift.signals("classification", proba)
    assert found["class"].tolist() == [0, 2]
    assert found["confidence"].tolist() == [0.7, 0.8]
    expected = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
    assert found["entropy"][0] == pytest.approx(expected, abs=1e-12)


def test_binary_signals_read_the_positive_probability_as_two_classes() -> None:
    found = drift.signals("binary", np.array([0.9, 0.2]))
    assert found["class"].tolist() == [1, 0]
    assert found["confidence"].tolist() == pytest.approx([0.9, 0.8])


def test_psi_by_hand() -> None:
    expected, actual = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    by_hand = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert drift.psi(expected, actual) == pytest.approx(by_hand, abs=1e-12)
    assert drift.psi(expected, expected) == 0.0


def test_reference_bins_hold_a_tenth_each() -> None:
    ref = drift.reference("classification", HELD_OUT)
    assert ref["count"] == len(HELD_OUT)
    for name in ("confidence", "entropy"):
        shares = ref["signals"][name]["shares"]
        assert len(shares) == 10 and sum(shares) == pytest.approx(1.0)
        assert max(abs(s - 0.1) for s in shares) < 0.01
    assert len(ref["signals"]["class"]["shares"]) == 10


def test_same_distribution_is_stable_and_a_shift_is_not() -> None:
    ref = drift.reference("classification", HELD_OUT)
    same = RNG.dirichlet(np.full(10, 0.3), 1000)
    shifted = RNG.dirichlet(np.full(10, 3.0), 1000)  # far less confident answers
    stable, moved = drift.compare(ref, "classification", same), drift.compare(ref, "classification", shifted)
    assert all(value < 0.1 for value in stable.values())
    assert moved["confidence"] > 0.25 and moved["entropy"] > 0.25


def test_too_few_live_rows_give_no_psi() -> None:
    ref = drift.reference("regression", RNG.normal(size=500))
    assert drift.compare(ref, "regression", RNG.normal(size=drift.MIN_LIVE - 1)) == {"prediction": None}
    assert drift.compare(ref, "regression", RNG.normal(size=drift.MIN_LIVE))["prediction"] is not None


def test_live_classes_outside_the_reference_are_ignored() -> None:
    spec = {"kind": "categorical", "shares": [0.5, 0.5]}
    assert drift.live_shares(spec, np.array([0.0, 1.0, 1.0, 5.0])).tolist() == [1 / 3, 2 / 3]
