"""Early stopping and the refit on train + validation: config keys, what training does, what the card says."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import keras
import numpy as np
import pytest

from training import config
from training.__main__ import splits_for
from training.card import build_card
from training.errors import ConfigError
from training.models import TRACKED_METRICS
from training.train import Trained, train

STOP = "{monitor: val_accuracy, patience: 2}"  # the synthetic binary task plateaus within 40 epochs


def binary(*overrides: tuple[str, str]) -> tuple[config.Config, Any]:
    cfg = config.load("binary", [("training.epochs", "40"), *overrides])
    return cfg, splits_for(cfg, None)


def test_early_stopping_and_refit_parse_and_round_trip() -> None:
    loaded = config.load("mnist", [("training.early_stopping", STOP), ("training.refit", "true")])
    assert loaded.training.early_stopping == config.EarlyStopping("val_accuracy", 2)
    assert loaded.training.refit is True
    assert config.from_dict("mnist", loaded.to_dict()) == loaded


def test_configs_written_before_the_keys_existed_mean_no_stopping_and_no_refit() -> None:
    raw = config.load("binary").to_dict()
    for key in config.FIT_DEFAULTS:
        del raw["training"][key]
    old = config.from_dict("binary", raw)
    assert (old.training.early_stopping, old.training.refit) == (None, False)


def test_monitors_are_the_metrics_training_tracks() -> None:
    for task, names in config.MONITORS.items():
        assert set(names) == {"val_loss", *(f"val_{m}" for m in TRACKED_METRICS[task])}


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("regression", [("training.early_stopping", "{monitor: val_accuracy, patience: 3}")], "not supported for a regression"),
        ("binary", [("training.early_stopping", "{monitor: val_loss, patience: 0}")], "patience must be an integer >= 1"),
        ("binary", [("training.early_stopping", "{monitor: val_loss}")], "lacks the key training.early_stopping.patience"),
        ("binary", [("training.early_stopping", "{monitor: val_loss, patience: 2, delta: 1}")], "Unknown config key training.early_stopping.delta"),
        ("binary", [("training.early_stopping", "5")], "training.early_stopping must be a mapping"),
        ("binary", [("training.refit", "yes please")], "training.refit must be true or false"),
        ("binary", [("training.refit", "true"), ("training.validation_split", "null")], "training.refit needs a validation split"),
        ("binary", [("training.early_stopping", STOP), ("training.validation_split", "null")], "early_stopping needs a validation split"),
    ],
)  # fmt: skip
def test_bad_fit_options_name_the_key(name: str, overrides: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.load(name, overrides)


def test_early_stopping_stops_and_keeps_the_best_epochs_weights() -> None:
    cfg, splits = binary(("training.early_stopping", STOP))
    trained = train(cfg, splits, io.StringIO())
    accuracy = trained.history["val_accuracy"]
    assert trained.best_epoch == int(np.argmax(accuracy)) + 1  # the first epoch to reach the best
    assert len(accuracy) == trained.best_epoch + 2 < 40  # two epochs without improvement end it
    # The accuracy plateaus, so the loss tells the epochs apart: the weights are the best epoch's, not the last.
    x, y = splits.validation
    kept = float(np.mean(keras.losses.binary_crossentropy(y[:, None], trained.model.predict(x, verbose=0))))
    losses = trained.history["val_loss"]
    assert kept == pytest.approx(losses[trained.best_epoch - 1], rel=1e-5)
    assert kept != pytest.approx(losses[-1], rel=1e-3)


def test_without_early_stopping_every_epoch_runs() -> None:
    cfg, splits = binary(("training.epochs", "4"))
    trained = train(cfg, splits, io.StringIO())
    assert (len(trained.history["loss"]), trained.best_epoch, trained.refit_epochs) == (4, None, None)


def test_refit_is_a_fresh_seeded_fit_on_train_and_validation_for_the_chosen_epochs() -> None:
    cfg, splits = binary(("training.early_stopping", STOP), ("training.refit", "true"))
    out = io.StringIO()
    refitted = train(cfg, splits, out)
    chosen = train(cfg, splits, io.StringIO(), refit=False)
    assert refitted.refit_epochs == chosen.best_epoch and refitted.history == chosen.history
    assert f"refit on train + validation for {chosen.best_epoch} epochs" in out.getvalue()

    both = tuple(np.concatenate(pair) for pair in zip(splits.train, splits.validation, strict=True))
    plain = dataclasses.replace(
        cfg,
        training=dataclasses.replace(
            cfg.training, epochs=chosen.best_epoch, early_stopping=None, refit=False, validation_split=None
        ),
    )
    by_hand = train(plain, dataclasses.replace(splits, train=both, validation=None), io.StringIO())
    for mine, theirs in zip(refitted.model.get_weights(), by_hand.model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


def test_card_records_the_chosen_epoch_and_the_refit() -> None:
    cfg, splits = binary(("training.early_stopping", STOP), ("training.refit", "true"))
    trained = train(cfg, splits, io.StringIO())
    chosen = build_card(cfg, splits, trained, {"accuracy": 1.0})["selection"]
    epoch = trained.best_epoch
    assert chosen["early_stopping"]["best_epoch"] == epoch and chosen["refit"]["epochs"] == epoch
    assert chosen["early_stopping"]["validation"]["accuracy"] == trained.history["val_accuracy"][epoch - 1]
    assert chosen["refit"]["size"] == len(splits.train[0]) + len(splits.validation[0])


def test_plain_runs_have_no_selection_in_their_card() -> None:
    cfg, splits = binary(("training.epochs", "2"))
    trained = Trained(train(cfg, splits, io.StringIO()).model, {"loss": [1.0, 0.5]}, 1.0)
    assert "selection" not in build_card(cfg, splits, trained, {"accuracy": 1.0})
