"""The binary tensor data extension: splitting the body, reading and writing raw tensors."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from service.errors import InvalidInput
from service.protocol.v2_binary import (
    BinarySection,
    decode_tensor,
    encode_tensor,
    serialize_bytes,
    split_body,
)


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
