"""training.config: packaged configs, overrides, and one clear error per bad value."""

from __future__ import annotations

from typing import Any

import pytest

from training import config
from training.errors import ConfigError

MODELS = ["binary", "linear", "mnist", "mnist_3b1b", "mnist_cnn", "regression"]


def test_the_six_contract_models_are_packaged() -> None:
    assert config.available() == MODELS


@pytest.mark.parametrize("name", MODELS)
def test_packaged_configs_are_valid_and_round_trip(name: str) -> None:
    loaded = config.load(name)
    assert loaded.name == name
    assert config.from_dict(name, loaded.to_dict()) == loaded


def test_contract_details_of_the_small_models() -> None:
    linear, binary = config.load("linear"), config.load("binary")
    assert [str(s) for s in linear.layers] == ["dense:1:linear"]
    assert (linear.training.optimizer, linear.training.loss, linear.training.epochs) == ("sgd", "mse", 500)
    assert [str(s) for s in binary.layers] == ["dense:3:relu", "dense:1:sigmoid"]
    assert (binary.training.optimizer, binary.training.loss) == ("adam", "binary_crossentropy")


def test_contract_details_of_the_mnist_mlps() -> None:
    mnist, small = config.load("mnist"), config.load("mnist_3b1b")
    # The seed's network; in front of it only a training-time augmentation with no weights of its own.
    trained_only = {"reshape", "warp"}
    assert [str(s) for s in mnist.layers if s.kind not in trained_only] == [
        "flatten",
        "dense:128:relu",
        "dropout:0.2",
        "dense:10:softmax",
    ]
    assert [s.kind for s in mnist.layers[:2]] == ["reshape", "warp"]
    assert (mnist.training.validation_split, mnist.training.optimizer, mnist.training.refit) == (
        0.2,
        "adam",
        True,
    )
    assert [str(s) for s in small.layers][1:] == ["dense:16:sigmoid", "dense:16:sigmoid", "dense:10:softmax"]


def test_overrides_reach_every_section() -> None:
    loaded = config.load(
        "mnist",
        [
            ("training.epochs", "2"),
            ("training.learning_rate", "1e-3"),
            ("training.optimizer", "rmsprop"),
            ("training.validation_split", "0.1"),
            ("layers", "flatten,dense:32:tanh,dense:10:softmax"),
            ("data.seed", "7"),
            ("data.params.test_size", "100"),
            ("description", "custom"),
        ],
    )
    fit = loaded.training
    assert (fit.epochs, fit.learning_rate, fit.optimizer, fit.validation_split) == (2, 0.001, "rmsprop", 0.1)
    assert str(loaded.layers[1]) == "dense:32:tanh"
    assert (loaded.data.seed, loaded.data.params, loaded.description) == (7, {"test_size": 100}, "custom")


def test_later_overrides_win_and_null_disables_validation() -> None:
    loaded = config.load(
        "binary", [("training.validation_split", "0.5"), ("training.validation_split", "null")]
    )
    assert loaded.training.validation_split is None


def test_layers_override_accepts_a_yaml_list() -> None:
    loaded = config.load("binary", [("layers", "[dense:8:tanh, dense:1:sigmoid]")])
    assert [str(s) for s in loaded.layers] == ["dense:8:tanh", "dense:1:sigmoid"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("training.epochs", "-3", "training.epochs must be an integer >= 1, got -3"),
        ("training.epochs", "2.5", "training.epochs must be an integer"),
        ("training.epochs", "true", "training.epochs must be an integer"),
        ("training.batch_size", "0", "training.batch_size must be an integer >= 1"),
        ("training.learning_rate", "0", "training.learning_rate must be greater than 0"),
        ("training.learning_rate", "fast", "training.learning_rate must be a number"),
        ("training.optimizer", "adamm", "training.optimizer 'adamm' is not supported; choose one of: adam"),
        ("training.schedule", "step", "training.schedule 'step' is not supported"),
        ("training.loss", "mse", "training.loss 'mse' is not supported for a binary model"),
        ("training.validation_split", "1.5", "validation_split must be between 0 and 1"),
        ("training.validation_split", "0", "validation_split must be between 0 and 1"),
        ("training.validation_split", "1", "validation_split must be between 0 and 1"),
        ("training.seed", "-1", "training.seed must be an integer >= 0"),
        ("training.epoch", "5", "Unknown config key training.epoch"),
        ("model", "x", "Unknown config key model"),
        ("data.kind", "cifar", "data.kind 'cifar' is not supported"),
        ("data.params.size", "3", "Unknown config key data.params.size"),
        ("data.params.n", "lots", "data.params.n must be an integer"),
        ("layers", "dense:3:relu,dense:1:softmx", "'softmx' is not a known activation"),
        ("layers", "dense:3:relu,dense:2:softmax", "a binary model must end with dense:1:sigmoid"),
        ("layers", "dense:3:relu,,dense:1:sigmoid", "non-empty list"),
        ("training.epochs.max", "3", "training.epochs is not a section"),
        ("task", "clustering", "task 'clustering' is not supported"),
    ],
)
def test_bad_values_name_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", "\\(")):
        config.load("binary", [(key, value)])


def test_unknown_model_lists_the_available_ones() -> None:
    with pytest.raises(ConfigError, match="Unknown model 'nope'; choose one of: binary, linear"):
        config.load("nope")


@pytest.mark.parametrize("text", ["training.epochs", "=3", ""])
def test_malformed_assignments(text: str) -> None:
    with pytest.raises(ConfigError, match=r"expected key\.path=value"):
        config.parse_assignment(text)


def test_assignment_keeps_equals_signs_in_the_value() -> None:
    assert config.parse_assignment("description=a=b") == ("description", "a=b")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1, 2], "The config must be a mapping"),
        ({"task": "binary"}, "lacks the key description"),
    ],
)
def test_structural_errors(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config.from_dict("x", raw)


def test_apply_overrides_does_not_touch_the_original() -> None:
    raw = config.read_raw("linear")
    changed = config.apply_overrides(raw, [("training.epochs", "3")])
    assert raw["training"]["epochs"] == 500 and changed["training"]["epochs"] == 3
