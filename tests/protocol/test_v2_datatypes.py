"""V2 datatype names and the conversions allowed between a request's datatype and the model's."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import InvalidInput
from service.protocol.v2 import DATATYPES, convert, datatype_of, dtype_of, spec_dtype_of

PAIRS = [
    ("bool", "BOOL"),
    ("uint8", "UINT8"),
    ("uint16", "UINT16"),
    ("uint32", "UINT32"),
    ("uint64", "UINT64"),
    ("int8", "INT8"),
    ("int16", "INT16"),
    ("int32", "INT32"),
    ("int64", "INT64"),
    ("float16", "FP16"),
    ("float32", "FP32"),
    ("float64", "FP64"),
    ("string", "BYTES"),
]


@pytest.mark.parametrize(("dtype", "datatype"), PAIRS)
def test_names_map_both_ways(dtype: str, datatype: str) -> None:
    assert datatype_of(dtype) == datatype
    assert spec_dtype_of(datatype) == dtype
    assert dtype_of(datatype) == (np.dtype(object) if dtype == "string" else np.dtype(dtype))


@pytest.mark.parametrize("dtype", [np.dtype(object), np.dtype("U3"), np.dtype("S2"), np.dtype(np.float32)])
def test_numpy_dtypes_are_named_too(dtype: np.dtype) -> None:
    assert datatype_of(dtype) == ("FP32" if dtype.kind == "f" else "BYTES")


def test_all_datatypes_of_the_spec_are_known() -> None:
    assert set(DATATYPES) == {d for _, d in PAIRS}


@pytest.mark.parametrize("datatype", ["BF16", "FLOAT32", "fp32", 3, None])
def test_unknown_datatypes_are_refused(datatype: object) -> None:
    with pytest.raises(InvalidInput, match="Unknown datatype"):
        spec_dtype_of(datatype)  # type: ignore[arg-type]


def test_numpy_dtypes_without_a_datatype_are_a_programming_error() -> None:
    with pytest.raises(ValueError):
        datatype_of(np.dtype(np.complex64))


@pytest.mark.parametrize(
    ("array", "dtype", "expected"),
    [
        (np.array([1.5], np.float64), "float32", np.array([1.5], np.float32)),
        (np.array([0.1], np.float32), "float64", np.array([np.float32(0.1)], np.float64)),
        (np.array([1, -2], np.int32), "int64", np.array([1, -2], np.int64)),
        (np.array([200], np.int64), "uint8", np.array([200], np.uint8)),
        (np.array([2**24], np.int64), "float32", np.array([2**24], np.float32)),
        (np.array([255], np.uint8), "float16", np.array([255], np.float16)),
        (np.array([b"a"], dtype=object), "string", np.array([b"a"], dtype=object)),
        (np.array([True]), "bool", np.array([True])),
    ],
)
def test_lossless_conversions_are_made(array: np.ndarray, dtype: str, expected: np.ndarray) -> None:
    out = convert(array, dtype, "Input 'x'")
    assert out.dtype == expected.dtype and out.tolist() == expected.tolist()


@pytest.mark.parametrize(
    ("array", "dtype", "message"),
    [
        (np.array([1.0], np.float32), "int64", "Input 'x' is sent as FP32 but the model takes INT64"),
        (np.array([True]), "float32", "is sent as BOOL but the model takes FP32"),
        (np.array([1], np.int32), "bool", "is sent as INT32 but the model takes BOOL"),
        (np.array([b"1"], dtype=object), "float32", "is sent as BYTES"),
        (np.array([1.0], np.float32), "string", "the model takes BYTES"),
        (np.array([300], np.int64), "uint8", "Input 'x' value 300 at [0] is out of range for uint8."),
        (np.array([-1], np.int32), "uint32", "value -1 at [0] is out of range for uint32"),
        (np.array([2**64 - 1], np.uint64), "int64", "out of range for int64"),
        (
            np.array([2**24 + 1], np.int64),
            "float32",
            "integer 16777217 at [0] cannot be represented exactly as float32.",
        ),
        (np.array([1e300], np.float64), "float32", "value 1e+300 at [0] is out of range for float32"),
    ],
)
def test_lossy_conversions_are_refused(array: np.ndarray, dtype: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        convert(array, dtype, "Input 'x'")
    assert message in caught.value.message


def test_nonfinite_floats_survive_a_float_conversion() -> None:
    out = convert(np.array([np.nan, np.inf]), "float32", "x")
    assert np.isnan(out[0]) and np.isposinf(out[1])
