"""service.protocol.tensors: nested shapes and locations, leaf values to typed arrays, request checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.errors import InvalidInput
from service.models.card import TensorSpec
from service.protocol.tensors import (
    Limits,
    category,
    check_batch_size,
    check_float_values,
    check_inputs,
    check_int_range,
    check_names,
    describe,
    fits,
    flatten,
    infer_shape,
    leaves_to_array,
    location,
    shape_text,
    to_array,
)


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        (3, ()),
        ([], (0,)),
        ([1, 2, 3], (3,)),
        ([[1, 2], [3, 4], [5, 6]], (3, 2)),
        ([[[1]], [[2]]], (2, 1, 1)),
        ([[], []], (2, 0)),
        ([[1, 2], [3]], (2, 2)),  # from the first items only; flatten() finds the ragged row
    ],
)
def test_infer_shape_follows_the_first_item_at_each_depth(value: Any, shape: tuple[int, ...]) -> None:
    assert infer_shape(value) == shape


@pytest.mark.parametrize(
    ("shape", "expected", "ok"),
    [
        ((4, 28, 28), (-1, 28, 28), True),
        ((4, 784), (-1, 28, 28), False),
        ((4, 28, 27), (-1, 28, 28), False),
        ((4,), (-1,), True),
        ((), (-1,), False),
        ((2, 5), (-1, -1), True),
    ],
)
def test_fits_checks_rank_and_fixed_sizes(
    shape: tuple[int, ...], expected: tuple[int, ...], ok: bool
) -> None:
    assert fits(shape, expected) is ok


def test_flatten_returns_leaves_row_major() -> None:
    assert flatten([[1, 2], [3, 4]], (2, 2), "x") == [1, 2, 3, 4]
    assert flatten(7, (), "x") == [7]


@pytest.mark.parametrize(
    ("value", "shape", "message"),
    [
        ([[1, 2], [3]], (2, 2), "Input 'x' is ragged: the list at [1] has 1 items where 2 were expected."),
        ([[[1, 2], [3, 4]], [[5, 6], [7]]], (2, 2, 2), "the list at [1, 1] has 1 items"),
        ([[1, 2], 3], (2, 2), "Input 'x' mixes nesting depths: the number 3 at [1] stands where a list"),
    ],
)
def test_flatten_names_ragged_and_mixed_depth_lists(value: Any, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        flatten(value, shape, "Input 'x'")
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "the boolean true"),
        (3, "the number 3"),
        (1.5, "the number 1.5"),
        ("abc", "the string 'abc'"),
        ("x" * 30, "the string 'xxxxxxxxxxxxxxxxx...'"),
        ([1], "a list"),
        ({"a": 1}, "an object"),
        (object(), "a value"),
    ],
)
def test_describe_names_json_kinds(value: Any, text: str) -> None:
    assert describe(value) == text


def test_location_and_shape_text() -> None:
    assert location(5, (2, 3)) == "[1, 2]"
    assert location(0, ()) == "[]"
    assert shape_text((-1, 28, 28)) == "[-1, 28, 28]"


@pytest.mark.parametrize(
    ("leaves", "dtype", "expected"),
    [
        ([1, 2.5], "float32", np.array([1, 2.5], np.float32)),
        ([0.1], "float64", np.array([0.1])),
        ([2**24, -(2**24)], "float32", np.array([2**24, -(2**24)], np.float32)),
        ([2048], "float16", np.array([2048], np.float16)),
        ([16777217.0], "float32", np.array([16777216], np.float32)),  # a decimal rounds like any other
        ([1, -3], "int8", np.array([1, -3], np.int8)),
        ([2**63 - 1], "int64", np.array([2**63 - 1], np.int64)),
        ([2**64 - 1], "uint64", np.array([2**64 - 1], np.uint64)),
        ([255], "uint8", np.array([255], np.uint8)),
        ([True, False], "bool", np.array([True, False])),
        (["hé", {"b64": "AAE="}], "string", np.array([b"h\xc3\xa9", b"\x00\x01"], dtype=object)),
    ],
)
def test_valid_leaves_convert_to_the_spec_dtype(leaves: list[Any], dtype: str, expected: np.ndarray) -> None:
    out = leaves_to_array(leaves, (len(leaves),), dtype, False, "Input 'x'")
    assert out.dtype == expected.dtype
    assert out.tolist() == expected.tolist()


@pytest.mark.parametrize(
    ("leaves", "dtype", "message"),
    [
        ([1, "2"], "float32", "Input 'x' must hold numbers; got the string '2' at [1]."),
        ([True], "float32", "Input 'x' must hold numbers; got the boolean true at [0]."),
        ([None], "float32", "got null at [0]"),
        ([1.0], "int64", "Input 'x' must hold integers; got the number 1.0 at [0]."),
        ([False], "int32", "must hold integers; got the boolean false"),
        ([1], "bool", "must hold booleans; got the number 1"),
        ([1], "string", "must hold strings; got the number 1"),
        ([[1]], "float32", "mixes nesting depths: a list at [0] stands where a value was expected."),
        ([{"b64": "AA=="}], "float32", "base64 is only for string inputs"),
        ([{"a": 1}], "float32", "must hold numbers; got an object at [0]"),
        ([{"b64": "***"}], "string", "has a 'b64' value that is not valid base64 at [0]."),
        ([{"b64": "AA==", "x": 1}], "string", "an object other than {'b64': '<base64 text>'}"),
        (["\ud800"], "string", "a string that is not valid Unicode text"),
        ([2**24 + 1], "float32", "integer 16777217 at [0] cannot be represented exactly as float32."),
        ([2**2000], "float64", "cannot be represented exactly as float64"),
        ([1e39], "float32", "Input 'x' value 1e+39 at [0] is out of range for float32."),
        ([70000.0], "float16", "out of range for float16"),
        ([256], "uint8", "Input 'x' value 256 at [0] is out of range for uint8."),
        ([-1], "uint64", "value -1 at [0] is out of range for uint64"),
        ([2**63], "int64", "value 9223372036854775808 at [0] is out of range for int64"),
        ([float("nan")], "float32", "Input 'x' must hold finite numbers; got NaN at [0]."),
        ([1, float("-inf")], "float64", "got -Infinity at [1]"),
    ],
)
def test_invalid_leaves_are_refused_with_a_located_message(
    leaves: list[Any], dtype: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        leaves_to_array(leaves, (len(leaves),), dtype, False, "Input 'x'")
    assert message in caught.value.message


def test_nonfinite_values_pass_when_allowed() -> None:
    out = leaves_to_array([float("nan"), float("inf")], (2,), "float32", True, "x")
    assert np.isnan(out[0]) and np.isposinf(out[1])


def test_location_is_the_multi_index_of_the_offending_leaf() -> None:
    with pytest.raises(InvalidInput, match=r"at \[1, 0\]"):
        leaves_to_array([1, 2, "x", 4], (2, 2), "float32", False, "x")


def test_range_checks_work_across_integer_kinds() -> None:
    assert check_int_range(np.array([2**64 - 1], np.uint64), "uint64", "x", (1,)).dtype == np.uint64
    with pytest.raises(InvalidInput):
        check_int_range(np.array([2**64 - 1], np.uint64), "int64", "x", (1,))
    with pytest.raises(InvalidInput):
        check_int_range(np.array([-1], np.int8), "uint8", "x", (1,))


def test_float_overflow_is_distinguished_from_nonfinite_input() -> None:
    out = check_float_values(np.array([np.inf]), "float32", True, "x", (1,))
    assert np.isposinf(out[0])
    with pytest.raises(InvalidInput, match="out of range"):
        check_float_values(np.array([1e300]), "float32", True, "x", (1,))


def test_category_rejects_unknown_dtypes() -> None:
    assert [category(d) for d in ("float16", "uint8", "bool", "string")] == ["float", "int", "bool", "string"]
    with pytest.raises(ValueError):
        category("complex64")


IMAGES = TensorSpec("images", "float32", (-1, 2, 2))
LIMITS = Limits(max_instances=4)


def test_defaults() -> None:
    assert Limits() == Limits(max_instances=65536, allow_nonfinite=False)


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
