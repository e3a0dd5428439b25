"""training.train: seeded runs are bit-for-bit repeatable on CPU; progress is one line per epoch."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training import config
from training.__main__ import splits_for
from training.evaluate import predict
from training.train import MAX_PROGRESS_LINES, train

ROOT = Path(__file__).resolve().parents[2]


def fit_binary(seed: int, epochs: int = 4) -> list[np.ndarray]:
    cfg = config.load("binary", [("training.epochs", str(epochs)), ("training.seed", str(seed))])
    splits = splits_for(cfg, None)
    return train(cfg, splits, io.StringIO()).model.get_weights()


def test_same_seed_gives_identical_weights() -> None:
    first, second = fit_binary(7), fit_binary(7)
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_different_seed_gives_different_weights() -> None:
    assert not np.array_equal(fit_binary(7)[0], fit_binary(8)[0])


def test_history_and_progress_lines() -> None:
    cfg = config.load("binary", [("training.epochs", "3")])
    splits = splits_for(cfg, None)
    out = io.StringIO()
    trained = train(cfg, splits, out)
    lines = out.getvalue().splitlines()
    assert [line.split()[2] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all(line.startswith("[binary] epoch") and "val_accuracy=" in line for line in lines)
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(trained.history)
    assert all(len(values) == 3 for values in trained.history.values())
    assert trained.seconds > 0


@pytest.mark.slow
def test_long_runs_print_at_most_the_line_budget_and_the_last_epoch() -> None:
    cfg = config.load("linear", [("training.epochs", "120")])
    splits = splits_for(cfg, None)
    out = io.StringIO()
    train(cfg, splits, out)
    lines = out.getvalue().splitlines()
    assert len(lines) <= MAX_PROGRESS_LINES + 1 and lines[-1].split()[2] == "120/120"


@pytest.mark.slow
def test_separate_processes_publish_identical_models(tmp_path: Path) -> None:
    """Two CLI runs with the same seed give bit-identical outputs (same machine and library versions)."""
    outputs = []
    for run in ("a", "b"):
        subprocess.run(
            [sys.executable, "-m", "training", "binary", "--epochs", "5", "--output", str(tmp_path / run)],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=600,
        )
        grid = np.stack(np.meshgrid(np.linspace(0, 1, 21), np.linspace(0, 1, 21)), -1).reshape(-1, 2)
        outputs.append(predict(tmp_path / run / "binary" / "1", "binary", grid.astype(np.float32)))
    np.testing.assert_array_equal(outputs[0], outputs[1])
