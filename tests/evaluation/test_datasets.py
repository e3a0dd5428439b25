"""service.evaluation.datasets: the first N dataset names of a model keep a label value, across workers."""

from __future__ import annotations

from pathlib import Path

from service.evaluation.datasets import OTHER, DatasetLabels


def test_the_first_names_are_admitted_and_the_rest_share_one_value(tmp_path: Path) -> None:
    labels = DatasetLabels(tmp_path, limit=2)
    assert [labels.label("m", name) for name in ("a", "b", "c", "a", "d")] == ["a", "b", OTHER, "a", OTHER]
    assert labels.label("other-model", "c") == "c"  # per model


def test_workers_admit_the_same_names(tmp_path: Path) -> None:
    first, second = DatasetLabels(tmp_path, limit=2), DatasetLabels(tmp_path, limit=2)
    assert first.label("m", "a") == "a"
    assert second.label("m", "b") == "b"
    assert first.label("m", "c") == OTHER and second.label("m", "c") == OTHER
    assert first.label("m", "b") == "b"  # admitted by the other worker
    assert (tmp_path / "m.datasets").read_text().split() == ["a", "b"]
