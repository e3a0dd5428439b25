"""to_array, batch limits and request-level input checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.errors import InvalidInput
from service.models.card import TensorSpec
from service.protocol.common import (
    STATES,
    Limits,
    VersionStatus,
    check_batch_size,
    check_inputs,
    check_names,
    to_array,
)

IMAGES = TensorSpec("images", "float32", (-1, 2, 2))
LIMITS = Limits(max_instances=4)


def test_defaults() -> None:
    assert Limits() == Limits(max_instances=65536, allow_nonfinite=False)
    assert VersionStatus(3, "AVAILABLE") == VersionStatus(3, "AVAILABLE", None, "UNKNOWN")
    assert STATES == ("UNKNOWN", "START", "LOADING", "AVAILABLE", "UNLOADING", "END")


@pytest.mark.parametrize(
    ("value", "spec", "expected"),
    [
        ([[[1, 2], [3, 4]]], IMAGES, np.array([[[1, 2], [3, 4]]], np.float32)),
        ([1, 2, 3], TensorSpec("x", "int64", (-1,)), np.array([1, 2, 3], np.int64)),
        ([[1, 2], [3, 4]], TensorSpec("x", "float64", (-1, -1)), np.array([[1, 2], [3, 4]], np.float64)),
        (["a", {"b64": "Yg=="}], TensorSpec("t", "string", (-1,)), np.array([b"a", b"b"], dtype=object)),
        ([[True], [False]], TensorSpec("m", "bool", (-1, 1)), np.array([[True], [False]])),
        (5, TensorSpec("s", "int32", ()), np.array(5, np.int32)),
    ],
)
def test_to_array_converts_valid_values(value: Any, spec: TensorSpec, expected: np.ndarray) -> None:
    out = to_array(value, spec, LIMITS, f"Input {spec.name!r}")
    assert out.dtype == expected.dtype and out.shape == expected.shape
    assert out.tolist() == expected.tolist()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([[1, 2, 3, 4]], "Input 'images' must have shape [-1, 2, 2]; got [1, 4]."),
        ([[[1, 2, 3], [4, 5, 6]]], "Input 'images' must have shape [-1, 2, 2]; got [1, 2, 3]."),
        ([[[1, 2], [3]]], "Input 'images' is ragged: the list at [0, 1] has 1 items where 2 were expected."),
        ([[[1, 2], [3, 4]], [[5, 6]]], "is ragged: the list at [1] has 1 items"),
        ([[[1, 2], 3]], "mixes nesting depths: the number 3 at [0, 1]"),
        ([[[1, 2], [[3], 4]]], "mixes nesting depths: a list at [0, 1, 0]"),
        ([[[1, 2], ["3", 4]]], "must hold numbers; got the string '3' at [0, 1, 0]."),
        ([[[1, 2], [None, 4]]], "got null at [0, 1, 0]"),
        ([[[1, 2], [3, False]]], "got the boolean false at [0, 1, 1]"),
        ([[[1, 2], [3, float("nan")]]], "must hold finite numbers; got NaN at [0, 1, 1]."),
        ([[[1, 2], [3, float("inf")]]], "got Infinity"),
        ([], "Input 'images' must hold at least one instance; got none."),
        ([[[0, 0], [0, 0]]] * 5, "Input 'images' holds 5 instances; at most 4 are allowed per request."),
        (7, "Input 'images' must have shape [-1, 2, 2]; got []."),
    ],
)
def test_to_array_refuses_malformed_values(value: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        to_array(value, IMAGES, LIMITS, "Input 'images'")
    assert message in caught.value.message


def test_to_array_takes_nonfinite_values_when_allowed() -> None:
    out = to_array([[[1, 2], [3, float("nan")]]], IMAGES, Limits(allow_nonfinite=True), "x")
    assert np.isnan(out[0, 1, 1])


def test_check_batch_size_bounds() -> None:
    check_batch_size(4, LIMITS, "x")
    for size in (0, 5):
        with pytest.raises(InvalidInput):
            check_batch_size(size, LIMITS, "x")


SPECS = [TensorSpec("a", "float32", (-1, 2)), TensorSpec("b", "int64", (-1,))]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"a": np.zeros((3, 2))}, "Input 'b' is missing; the model's inputs are 'a', 'b'."),
        (
            {"a": np.zeros((3, 2)), "b": np.zeros(3), "c": np.zeros(3)},
            "Unknown input 'c'; the model's inputs are",
        ),
        (
            {"a": np.zeros((3, 2)), "b": np.zeros(4)},
            "All inputs must have the same batch size; 'a' has 3, 'b' has 4.",
        ),
    ],
)
def test_check_inputs_refuses_missing_unknown_and_mismatched(
    inputs: dict[str, np.ndarray], message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        check_inputs(inputs, SPECS)
    assert message in caught.value.message


def test_check_inputs_accepts_a_consistent_request() -> None:
    check_inputs({"b": np.zeros(3), "a": np.zeros((3, 2))}, SPECS)


def test_check_names_places_the_problem() -> None:
    with pytest.raises(InvalidInput, match="Input 'b' is missing in instance 2;"):
        check_names(["a"], SPECS, " in instance 2")
