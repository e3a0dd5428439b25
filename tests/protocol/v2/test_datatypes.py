"""service.protocol.v2.datatypes: datatype names, safe conversions, and binary tensor data."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from service.errors import InvalidInput
from service.protocol.v2.datatypes import (
    DATATYPES,
    BinarySection,
    convert,
    datatype_of,
    decode_tensor,
    dtype_of,
    encode_tensor,
    serialize_bytes,
    spec_dtype_of,
    split_body,
)

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


def test_split_body_uses_the_header_length() -> None:
    assert split_body(b"{}abc", 2) == (b"{}", b"abc")
    assert split_body(b"{}", 2) == (b"{}", b"")
    assert split_body(b"{}", None) == (b"{}", None)


@pytest.mark.parametrize("length", [3, -1])
def test_split_body_refuses_an_impossible_header_length(length: int) -> None:
    with pytest.raises(InvalidInput, match=f"says {length} bytes, but the request body holds 2"):
        split_body(b"{}", length)


def test_binary_section_hands_out_consecutive_chunks() -> None:
    section = BinarySection(b"abcdef")
    assert bytes(section.take(2, "a")) == b"ab"
    assert bytes(section.take(4, "b")) == b"cdef"
    section.finish()


@pytest.mark.parametrize(
    ("data", "sizes", "message"),
    [
        (b"abc", [4], "Input 'x' declares 4 bytes of binary data, but only 3 remain in the body."),
        (b"abcdef", [4], "The request body has 2 bytes after the binary data of its inputs"),
        (
            None,
            [1],
            "declares binary_data_size, but the request has no Inference-Header-Content-Length header",
        ),
    ],
)
def test_binary_section_sizes_must_match_exactly(data: bytes | None, sizes: list[int], message: str) -> None:
    section = BinarySection(data)
    with pytest.raises(InvalidInput) as caught:
        for size in sizes:
            section.take(size, "Input 'x'")
        section.finish()
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("array", "datatype"),
    [
        (np.arange(6, dtype=np.float32).reshape(2, 3), "FP32"),
        (np.array([1, -(2**62)], np.int64), "INT64"),
        (np.array([0.5, 2], np.float16), "FP16"),
        (np.array([1, 255], np.uint8), "UINT8"),
        (np.array([True, False, True]), "BOOL"),
        (np.array([b"", b"ab", b"\x00\xff"], dtype=object), "BYTES"),
    ],
)
def test_tensors_round_trip_through_binary(array: np.ndarray, datatype: str) -> None:
    raw = memoryview(encode_tensor(array))
    out = decode_tensor(raw, datatype, array.size, "Input 'x'")
    assert out.dtype == array.dtype and out.tolist() == array.reshape(-1).tolist()


def test_without_copy_numbers_are_a_view_of_the_buffer_and_the_rest_still_decoded() -> None:
    raw = encode_tensor(np.array([1.5, -2.0], np.float32))
    view = decode_tensor(memoryview(raw), "FP32", 2, "Input 'x'", copy=False)
    assert np.shares_memory(view, np.frombuffer(raw, np.uint8)) and not view.flags.writeable
    assert view.dtype == np.float32 and view.tolist() == [1.5, -2.0]
    copied = decode_tensor(memoryview(raw), "FP32", 2, "Input 'x'")
    assert not np.shares_memory(copied, np.frombuffer(raw, np.uint8)) and copied.flags.writeable
    flags = decode_tensor(memoryview(b"\x01\x00"), "BOOL", 2, "Input 'x'", copy=False)
    assert flags.dtype == np.bool_ and flags.tolist() == [True, False]


def test_binary_data_is_little_endian() -> None:
    assert encode_tensor(np.array([1], dtype=">i4")) == b"\x01\x00\x00\x00"
    assert decode_tensor(memoryview(b"\x01\x00\x00\x00"), "INT32", 1, "x").tolist() == [1]


def test_bytes_elements_carry_a_four_byte_length() -> None:
    assert (
        serialize_bytes(np.array(["é", b"ab"], dtype=object)) == b"\x02\x00\x00\x00\xc3\xa9\x02\x00\x00\x00ab"
    )


@pytest.mark.parametrize(
    ("raw", "datatype", "count", "message"),
    [
        (b"\x00" * 7, "FP32", 2, "Input 'x' has 7 bytes of binary data; 2 FP32 elements need 8."),
        (b"\x00\x02", "BOOL", 2, "BOOL binary data with bytes other than 0 and 1"),
        (
            struct.pack("<I", 1) + b"a",
            "BYTES",
            2,
            "has 1 BYTES elements in its binary data; its shape needs 2.",
        ),
        (b"\x01\x00", "BYTES", 1, "ends inside an element's length prefix"),
        (struct.pack("<I", 5) + b"ab", "BYTES", 1, "a BYTES element of 5 bytes running past its binary data"),
    ],
)
def test_malformed_binary_tensors_are_refused(raw: bytes, datatype: str, count: int, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_tensor(memoryview(raw), datatype, count, "Input 'x'")
    assert message in caught.value.message
