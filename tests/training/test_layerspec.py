"""training.layerspec: the layer grammar, its defaults and its error messages."""

from __future__ import annotations

import pytest

from training.errors import ConfigError
from training.layerspec import KINDS, LayerSpec, parse_layer, parse_layers


@pytest.mark.parametrize(
    ("text", "kind", "args"),
    [
        ("flatten", "flatten", {}),
        ("dense:128:relu", "dense", {"units": 128, "activation": "relu"}),
        ("dense:1", "dense", {"units": 1, "activation": "linear"}),
        ("dropout:0.2", "dropout", {"rate": 0.2}),
        ("dropout:0", "dropout", {"rate": 0.0}),
        ("conv:32", "conv", {"filters": 32, "kernel": 3, "activation": "linear"}),
        ("conv:16:5:relu", "conv", {"filters": 16, "kernel": 5, "activation": "relu"}),
        ("reshape:28x28x1", "reshape", {"shape": (28, 28, 1)}),
        ("maxpool", "maxpool", {"size": 2}),
        ("batchnorm", "batchnorm", {"momentum": 0.99}),
        ("act:relu", "act", {"activation": "relu"}),
        ("rotate:0.05", "rotate", {"factor": 0.05}),
        (
            "warp:10:0.05:2.8:1.2",
            "warp",
            {"degrees": 10.0, "zoom": 0.05, "shift": 2.8, "elastic": 1.2, "grid": 4},
        ),
        (" gap ", "gap", {}),
    ],
)
def test_parse_layer(text: str, kind: str, args: dict) -> None:
    spec = parse_layer(text)
    assert spec == LayerSpec(kind, args)


@pytest.mark.parametrize(
    "text", ["dense:1:linear", "conv:32:3:relu", "reshape:28x28x1", "flatten", "zoom:0.1"]
)
def test_str_is_the_canonical_token(text: str) -> None:
    assert str(parse_layer(text)) == text
    assert parse_layer(str(parse_layer(text))) == parse_layer(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dense", "expected dense:units:\\[activation\\]"),
        ("dense:10:relu:extra", "expected dense"),
        ("dense:abc", "units 'abc' is not an integer"),
        ("dense:0", "must be a positive integer"),
        ("dense:10:softmx", "'softmx' is not a known activation"),
        ("dropout:1.0", "must be in \\[0, 1\\)"),
        ("dropout:x", "is not a number"),
        ("zoom:0", "must be in \\(0, 1\\)"),
        ("warp:10:0.1:-1:1", "shift '-1' must be 0 or more"),
        ("reshape:28xx1", "is not an integer"),
        ("lstm:8", "unknown kind 'lstm'"),
        ("flatten:3", "expected flatten"),
    ],
)
def test_parse_layer_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_layer(text)


def test_parse_layers_accepts_a_comma_string_or_a_list() -> None:
    tokens = ["flatten", "dense:10:softmax"]
    assert parse_layers("flatten,dense:10:softmax") == parse_layers(tokens)
    assert len(parse_layers(tokens)) == 2


@pytest.mark.parametrize("value", ["", "flatten,,dense:1", "flatten,dense:1,", [], ["dense:1", 3]])
def test_parse_layers_rejects_empty_tokens(value: object) -> None:
    with pytest.raises(ConfigError, match="non-empty list"):
        parse_layers(value)  # type: ignore[arg-type]


def test_every_kind_has_a_keras_builder() -> None:
    from training.models import _BUILDERS

    assert set(KINDS) == set(_BUILDERS)
