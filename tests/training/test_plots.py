"""training.plots: the curves PNG for regressors (loss only) and classifiers (loss and accuracy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.plots import save_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "history",
    [
        {"loss": [1.0, 0.5, 0.1]},
        {"loss": [0.7, 0.4], "accuracy": [0.6, 0.9], "val_loss": [0.8, 0.5], "val_accuracy": [0.5, 0.85]},
        {"loss": [0.0, 0.0]},  # a perfect fit: no log axis possible
    ],
)
def test_save_curves_writes_a_png(tmp_path: Path, history: dict[str, list[float]]) -> None:
    path = tmp_path / "curves.png"
    save_curves(history, "model", path)
    assert path.read_bytes()[:8] == PNG_MAGIC
