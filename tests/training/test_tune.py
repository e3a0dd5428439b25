"""python -m training.tune: validation-only figures per seed, never the held-out test images."""

from __future__ import annotations

import io
import statistics

import numpy as np
import pytest

from training import config
from training.__main__ import splits_for
from training.train import train
from training.tune import blind, main, trial


def test_blind_drops_the_test_images_and_keeps_the_rest() -> None:
    splits = splits_for(config.load("binary"), None)
    hidden = blind(splits)
    assert len(hidden.test[0]) == len(hidden.test[1]) == 0 and len(splits.test[0]) > 0
    assert hidden.train is splits.train and hidden.validation is splits.validation


def test_the_row_is_the_mean_and_spread_of_each_seeds_validation_accuracy(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["binary", "--set", "training.epochs=3", "--seeds", "1,2", "--label", "three epochs"]) == 0
    cells = [cell.strip() for cell in capsys.readouterr().out.strip().strip("|").split("|")]
    finals = []
    for seed in (1, 2):
        cfg = config.load("binary", [("training.epochs", "3"), ("training.seed", str(seed))])
        finals.append(train(cfg, splits_for(cfg, None), io.StringIO()).history["val_accuracy"][-1])
    mean, sd = statistics.fmean(finals), statistics.stdev(finals)
    assert cells[:4] == ["three epochs", "1, 2", f"{mean:.4f} ± {sd:.4f}", f"{mean:.4f} ± {sd:.4f}"]
    assert cells[4] == "3/3, 3/3"


def test_with_early_stopping_the_kept_epoch_is_judged() -> None:
    stop = "{monitor: val_accuracy, patience: 2}"
    cfg = config.load("binary", [("training.epochs", "40"), ("training.early_stopping", stop)])
    result = trial(cfg, splits_for(cfg, None), io.StringIO())
    assert result.kept == result.peak and result.kept_epoch < result.epochs_run < 40


def test_tuning_never_refits_on_the_validation_images() -> None:
    cfg = config.load("binary", [("training.epochs", "3"), ("training.refit", "true")])
    splits = splits_for(cfg, None)
    result = trial(cfg, splits, io.StringIO())
    alone = train(cfg, splits, io.StringIO(), refit=False)
    assert result.kept == alone.history["val_accuracy"][-1]
    assert np.isfinite(result.seconds) and result.seconds > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["regression"], "regression is a regression model; tuning judges by validation accuracy"),
        (["binary", "--set", "training.validation_split=null"], "Tuning needs a validation split"),
        (["binary", "--seeds", "1,x"], "--seeds '1,x': expected integers"),
        (["binary", "--set", "training.epochs=0"], "training.epochs must be an integer >= 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("python -m training.tune: error: ")
    assert message in captured.err and captured.err.count("\n") == 1
