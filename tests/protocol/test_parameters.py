"""Parameter objects and the top_k / threshold extension."""

from __future__ import annotations

from typing import Any

import pytest

from service.errors import InvalidInput
from service.protocol.jsonio import SlowReader
from service.protocol.parameters import check_extension_parameters, scalar_parameters


def test_scalar_parameters_accepts_strings_numbers_and_booleans() -> None:
    r = SlowReader(b'{"p": {"a": "x", "b": 2, "c": 0.5, "d": false}}')
    assert scalar_parameters(r, r.root["p"], "p") == {"a": "x", "b": 2, "c": 0.5, "d": False}
    assert scalar_parameters(r, None, "p") == {}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"p": [1]}', "'parameters' must be an object; got a list."),
        (b'{"p": {"a": [1]}}', "'parameters' 'a' must be a string, number or boolean; got a list."),
        (b'{"p": {"a": null}}', "got null"),
        (b'{"p": {"a": {}}}', "got an object"),
    ],
)
def test_scalar_parameters_refuses_other_values(body: bytes, message: str) -> None:
    r = SlowReader(body)
    with pytest.raises(InvalidInput) as caught:
        scalar_parameters(r, r.root["p"], "'parameters'")
    assert message in caught.value.message


@pytest.mark.parametrize(
    "parameters", [{}, {"top_k": 1}, {"top_k": 5, "threshold": 0}, {"threshold": 1}, {"threshold": 0.25}]
)
def test_valid_extension_parameters(parameters: dict[str, Any]) -> None:
    check_extension_parameters(parameters, "Parameter")


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"top_k": 0}, "Parameter 'top_k' must be a positive integer; got the number 0."),
        ({"top_k": 2.0}, "'top_k' must be a positive integer"),
        ({"top_k": True}, "'top_k' must be a positive integer; got the boolean true."),
        ({"top_k": "3"}, "'top_k' must be a positive integer"),
        ({"threshold": 1.5}, "Parameter 'threshold' must be a number from 0 to 1; got the number 1.5."),
        ({"threshold": -0.1}, "'threshold' must be a number from 0 to 1"),
        ({"threshold": float("nan")}, "'threshold' must be a number from 0 to 1"),
        ({"threshold": False}, "'threshold' must be a number from 0 to 1"),
        ({"threshold": "0.5"}, "'threshold' must be a number from 0 to 1"),
    ],
)
def test_invalid_extension_parameters(parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_extension_parameters(parameters, "Parameter")
    assert message in caught.value.message
