"""The committed models/ folder: version 1 of each model, loadable, and as good as its card says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.models.repository import Repository
from training import config, data
from training.__main__ import splits_for
from training.evaluate import predict, score

from .savedmodels import card_specs, signature_specs

ROOT = Path(__file__).resolve().parents[2]
REPO = Repository(ROOT / "models")
MODELS = ["binary", "linear", "mnist", "mnist_3b1b", "mnist_cnn", "regression"]
MNIST_MODELS = ["mnist", "mnist_3b1b", "mnist_cnn"]
TOLERANCE = 0.005  # half a percentage point

pytestmark = pytest.mark.skipif(not REPO.model_names(), reason="models/ has not been trained yet")


def card(name: str) -> dict[str, Any]:
    return json.loads(REPO.card_path(name, 1).read_text())


def test_exactly_version_1_of_each_model() -> None:
    assert REPO.model_names() == MODELS
    assert {name: REPO.versions(name) for name in MODELS} == {name: [1] for name in MODELS}


@pytest.mark.parametrize("name", MODELS)
def test_signature_matches_card(name: str) -> None:
    doc = card(name)
    inputs, outputs = signature_specs(REPO.version_dir(name, 1))
    assert (inputs, outputs) == (card_specs(doc, "inputs"), card_specs(doc, "outputs"))
    assert REPO.read_card(name, 1).name == name


def test_linear_predicts_19_at_10() -> None:
    y = predict(REPO.version_dir("linear", 1), "regression", np.array([10.0, 0.0], np.float32))
    assert abs(y[0] - 19) <= 0.05
    weights = card("linear")["weights"]
    assert abs(weights["weight"] - 2) < 0.01 and abs(weights["bias"] + 1) < 0.05
    assert y[1] == pytest.approx(weights["bias"], abs=1e-6)


def held_out(name: str, mnist_dir: Path | None = None) -> data.Splits:
    """The test split the card was measured on, rebuilt from the card's own resolved config."""
    doc = card(name)
    cfg = config.from_dict(name, doc["config"])
    path = str(mnist_dir) if mnist_dir else None
    splits = splits_for(cfg, path)
    if [f["sha256"] for f in splits.provenance.get("files", [])] != [
        f["sha256"] for f in doc["data"].get("files", [])
    ]:
        pytest.skip(f"MNIST_DIR ({mnist_dir}) holds other files than {name} was trained on")
    assert splits.sizes() == doc["data"]["split"]
    return splits


@pytest.mark.parametrize("name", MNIST_MODELS)
def test_mnist_models_meet_their_card_accuracy(name: str, mnist_dir: Path) -> None:
    splits = held_out(name, mnist_dir)
    measured = score(REPO.version_dir(name, 1), "classification", *splits.test)
    assert card(name)["metrics_split"] == "test"
    assert abs(measured["accuracy"] - card(name)["metrics"]["accuracy"]) <= TOLERANCE


def test_cnn_clearly_beats_the_mlp() -> None:
    cnn, mlp = card("mnist_cnn")["metrics"]["accuracy"], card("mnist")["metrics"]["accuracy"]
    assert cnn >= 0.993 and cnn > mlp


@pytest.mark.parametrize(
    ("name", "headline"), [("binary", "accuracy"), ("regression", "r2"), ("linear", "r2")]
)
def test_synthetic_models_meet_their_card(name: str, headline: str) -> None:
    splits = held_out(name)
    measured = score(REPO.version_dir(name, 1), card(name)["task"], *splits.test)
    assert abs(measured[headline] - card(name)["metrics"][headline]) <= TOLERANCE
