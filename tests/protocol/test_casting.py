"""Leaf values to typed arrays: the dtype rules both decoding paths share."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.errors import InvalidInput
from service.protocol.casting import category, check_float_values, check_int_range, leaves_to_array


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
