"""The committed models/ folder: each model's versions, loadable, and as good as its card says."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from service.models.repository import Repository
from training import config, data
from training.__main__ import splits_for
from training.evaluate import predict, score

from .savedmodels import card_specs, signature_specs

ROOT = Path(__file__).resolve().parents[2]
REPO = Repository(ROOT / "models")
MODELS = ["binary", "linear", "mnist", "mnist_3b1b", "mnist_cnn", "regression"]
# mnist 2 is the seed MLP trained as well as the sample allows; 1 stays for version and hot-reload use.
VERSIONS = {name: [1] for name in MODELS} | {"mnist": [1, 2]}
MNIST_VERSIONS = [("mnist", 1), ("mnist", 2), ("mnist_3b1b", 1), ("mnist_cnn", 1)]
TOLERANCE = 0.005  # half a percentage point

pytestmark = pytest.mark.skipif(not REPO.model_names(), reason="models/ has not been trained yet")


def card(name: str, version: int = 1) -> dict[str, Any]:
    return json.loads(REPO.card_path(name, version).read_text())


def test_exactly_the_expected_versions_of_each_model() -> None:
    assert REPO.model_names() == MODELS
    assert {name: REPO.versions(name) for name in MODELS} == VERSIONS


@pytest.mark.parametrize(("name", "version"), [(n, v) for n in MODELS for v in VERSIONS[n]])
def test_signature_matches_card(name: str, version: int) -> None:
    doc = card(name, version)
    inputs, outputs = signature_specs(REPO.version_dir(name, version))
    assert (inputs, outputs) == (card_specs(doc, "inputs"), card_specs(doc, "outputs"))
    assert REPO.read_card(name, version).name == name


def test_linear_predicts_19_at_10() -> None:
    y = predict(REPO.version_dir("linear", 1), "regression", np.array([10.0, 0.0], np.float32))
    assert abs(y[0] - 19) <= 0.05
    weights = card("linear")["weights"]
    assert abs(weights["weight"] - 2) < 0.01 and abs(weights["bias"] + 1) < 0.05
    assert y[1] == pytest.approx(weights["bias"], abs=1e-6)


def held_out(name: str, mnist_dir: Path | None = None, version: int = 1) -> data.Splits:
    """The test split the card was measured on, rebuilt from the card's own resolved config."""
    doc = card(name, version)
    cfg = config.from_dict(name, doc["config"])
    path = str(mnist_dir) if mnist_dir else None
    splits = splits_for(cfg, path)
    if [f["sha256"] for f in splits.provenance.get("files", [])] != [
        f["sha256"] for f in doc["data"].get("files", [])
    ]:
        pytest.skip(f"MNIST_DIR ({mnist_dir}) holds other files than {name} was trained on")
    assert splits.sizes() == doc["data"]["split"]
    return splits


@pytest.mark.parametrize(("name", "version"), MNIST_VERSIONS)
def test_mnist_models_meet_their_card_accuracy(name: str, version: int, mnist_dir: Path) -> None:
    splits = held_out(name, mnist_dir, version)
    measured = score(REPO.version_dir(name, version), "classification", *splits.test)
    assert card(name, version)["metrics_split"] == "test"
    assert abs(measured["accuracy"] - card(name, version)["metrics"]["accuracy"]) <= TOLERANCE


def test_cnn_clearly_beats_the_mlp() -> None:
    cnn, mlp = card("mnist_cnn")["metrics"]["accuracy"], card("mnist", 2)["metrics"]["accuracy"]
    assert cnn >= 0.993 and cnn > mlp


def test_mnist_2_is_the_seed_mlp_on_the_same_held_out_digits_and_better() -> None:
    """Same served network (784 -> 128 relu -> 10 softmax) and the same 1,500 held-out digits as version 1."""
    old, new = card("mnist", 1), card("mnist", 2)
    kernels = [
        tuple(w.shape) for w in tf.saved_model.load(str(REPO.version_dir("mnist", 2))).trainable_variables
    ]
    assert sorted(kernels) == sorted([(784, 128), (128,), (128, 10), (10,)])
    assert new["parameter_count"] == old["parameter_count"] == 101_770
    assert new["config"]["data"] == old["config"]["data"] and new["data"]["files"] == old["data"]["files"]
    assert new["metrics"]["accuracy"] >= 0.95 > old["metrics"]["accuracy"]


@pytest.mark.parametrize(
    ("name", "headline"), [("binary", "accuracy"), ("regression", "r2"), ("linear", "r2")]
)
def test_synthetic_models_meet_their_card(name: str, headline: str) -> None:
    splits = held_out(name)
    measured = score(REPO.version_dir(name, 1), card(name)["task"], *splits.test)
    assert abs(measured[headline] - card(name)["metrics"][headline]) <= TOLERANCE
