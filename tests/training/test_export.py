"""training.export: published versions load with TensorFlow, match their cards, and score as recorded."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from service.models.repository import CURVES_FILE, STAGING_PREFIX, Repository
from service.quality import drift
from training import config, export
from training.__main__ import main, splits_for
from training.evaluate import predict, score

from .savedmodels import card_specs, signature_specs

MODELS = ["binary", "linear", "mnist", "mnist_3b1b", "mnist_cnn", "regression"]
METRICS = {
    "classification": {"accuracy", "top_k_accuracy", "roc_auc_ovr_macro", "roc_auc_micro", "log_loss"},
    "binary": {"accuracy", "roc_auc", "precision", "recall", "log_loss"},
    "regression": {"mse", "rmse", "mae", "r2", "max_error"},
}


def read_card(root: Path, name: str) -> dict[str, Any]:
    return json.loads(Repository(root).card_path(name, 1).read_text())


@pytest.fixture(scope="module")
def linear_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("linear") / "models"
    assert main(["linear", "--epochs", "20", "--output", str(root)]) == 0
    return root


def test_linear_signature_matches_its_card(linear_repo: Path) -> None:
    card = read_card(linear_repo, "linear")
    inputs, outputs = signature_specs(Repository(linear_repo).version_dir("linear", 1))
    assert inputs == card_specs(card, "inputs") == {"x": ("float32", [-1])}
    assert outputs == card_specs(card, "outputs") == {"y": ("float32", [-1])}
    assert card["class_labels"] is None and card["signature_name"] == "serving_default"


def test_linear_card_weights_are_what_the_signature_computes(linear_repo: Path) -> None:
    card = read_card(linear_repo, "linear")
    x = np.array([-2.0, 0.0, 10.0], np.float32)
    y = predict(Repository(linear_repo).version_dir("linear", 1), "regression", x)
    w, b = card["weights"]["weight"], card["weights"]["bias"]
    np.testing.assert_allclose(y, w * x + b, rtol=1e-5, atol=1e-5)


def test_a_new_card_carries_the_drift_reference_of_its_held_out_answers(linear_repo: Path) -> None:
    card, cfg = read_card(linear_repo, "linear"), config.load("linear")
    x_test, _ = splits_for(cfg, None).test
    answers = predict(Repository(linear_repo).version_dir("linear", 1), "regression", x_test)
    expected = drift.reference("regression", answers)
    assert card["drift_reference"] == {**json.loads(json.dumps(expected)), "split": "grid"}
    assert card["drift_reference"]["count"] == len(x_test) > 0
    # The service reads it as is: live answers equal to the held-out ones show no drift at all.
    assert drift.compare(card["drift_reference"], "regression", np.tile(answers, 20))["prediction"] == 0.0


def test_linear_metrics_are_labelled_as_a_grid(linear_repo: Path) -> None:
    card = read_card(linear_repo, "linear")
    assert card["metrics_split"] == "grid" and "No held-out sample" in card["data"]["test_from"]
    assert card["data"]["split"] == {"train": 6, "validation": 0, "test": 81}
    assert card["config"]["training"]["epochs"] == 20 and len(card["history"]["loss"]) == 20


def test_a_failure_during_export_publishes_nothing(
    linear_repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "save_curves", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        main(["linear", "--epochs", "1", "--output", str(tmp_path)])
    assert Repository(tmp_path).versions("linear") == []
    assert not list((tmp_path / "linear").glob(f"{STAGING_PREFIX}*"))


def test_a_second_run_publishes_version_2(tmp_path: Path) -> None:
    for _ in range(2):
        assert main(["regression", "--epochs", "1", "--output", str(tmp_path)]) == 0
    assert Repository(tmp_path).versions("regression") == [1, 2]


@pytest.fixture(scope="module")
def all_repo(tmp_path_factory: pytest.TempPathFactory, small_mnist: Path) -> Path:
    """Every packaged model, one epoch each (MNIST ones on 500 digits), in a fresh repository."""
    root = tmp_path_factory.mktemp("all") / "models"
    assert main(["all", "--epochs", "1", "--data", str(small_mnist), "--output", str(root)]) == 0
    return root


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_each_model_is_published_once_with_card_and_curves(all_repo: Path, name: str) -> None:
    repo = Repository(all_repo)
    assert repo.model_names() == MODELS and repo.versions(name) == [1]
    card = repo.read_card(name, 1)
    assert card.version == 1 and card.name == name
    curves = repo.version_dir(name, 1) / "assets.extra" / CURVES_FILE
    assert curves.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_signature_matches_card(all_repo: Path, name: str) -> None:
    card = read_card(all_repo, name)
    inputs, outputs = signature_specs(Repository(all_repo).version_dir(name, 1))
    assert inputs == card_specs(card, "inputs")
    assert outputs == card_specs(card, "outputs")


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_card_records_how_the_model_was_made(all_repo: Path, name: str) -> None:
    card, resolved = read_card(all_repo, name), config.load(name, [("training.epochs", "1")])
    assert card["config"] == resolved.to_dict()
    assert card["description"] == resolved.description and card["task"] == resolved.task
    assert card["data"]["seed"] == resolved.data.seed and sum(card["data"]["split"].values()) > 0
    assert METRICS[card["task"]] <= set(card["metrics"])
    assert card["metrics_split"] == ("grid" if name == "linear" else "test")
    assert all(len(values) == 1 for values in card["history"].values())
    assert card["parameter_count"] > 0 and card["training_seconds"] > 0
    assert set(card["libraries"]) == {"python", "tensorflow", "keras", "numpy"}
    assert datetime.fromisoformat(card["created_at"]).utcoffset().total_seconds() == 0
    assert ("weights" in card) == (name in ("linear", "regression"))


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_card_metrics_are_reproduced_from_the_published_model(
    all_repo: Path, small_mnist: Path, name: str
) -> None:
    card, cfg = read_card(all_repo, name), config.load(name)
    splits = splits_for(cfg, str(small_mnist))
    assert card["data"]["split"] == splits.sizes()
    again = score(Repository(all_repo).version_dir(name, 1), cfg.task, *splits.test)
    assert json.loads(json.dumps(again)) == card["metrics"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist", "mnist_cnn"])  # both train with augmentation layers
def test_classifier_outputs_agree(all_repo: Path, small_mnist: Path, name: str) -> None:
    function = tf.saved_model.load(str(Repository(all_repo).version_dir(name, 1))).signatures[
        "serving_default"
    ]
    images = tf.constant(np.random.default_rng(0).uniform(0, 1, (8, 28, 28)).astype(np.float32))
    first, second = function(images=images), function(images=images)
    probabilities = first["probabilities"].numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(first["class_id"].numpy(), probabilities.argmax(axis=1))
    # Identical twice: the augmentation layers are not active when serving.
    np.testing.assert_array_equal(probabilities, second["probabilities"].numpy())
