"""Triton's binary tensor data extension: raw tensors after the JSON header, in and out.

Per ``extension_binary_data.md``: the first ``Inference-Header-Content-Length`` bytes of the body
are the JSON object; the tensors follow in the order of the inputs (or outputs) that carry a
``binary_data_size`` parameter, little-endian, row-major, without padding. BOOL is one byte (0 or
1) per element; each BYTES element is a 4-byte little-endian length followed by that many bytes.
"""

from __future__ import annotations

import struct

import numpy as np

from service.errors import InvalidInput
from service.protocol.v2_datatypes import dtype_of

_LENGTH = struct.Struct("<I")


def split_body(body: bytes, header_length: int | None) -> tuple[bytes, bytes | None]:
    """(JSON header, binary section or None when the request has no header length)."""
    if header_length is None:
        return body, None
    if not 0 <= header_length <= len(body):
        raise InvalidInput(
            f"The Inference-Header-Content-Length header says {header_length} bytes, but the request "
            f"body holds {len(body)}."
        )
    return body[:header_length], body[header_length:]


class BinarySection:
    """The binary part of a request body, handed out input by input."""

    def __init__(self, data: bytes | None) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int, where: str) -> memoryview:
        if self.data is None:
            raise InvalidInput(
                f"{where} declares binary_data_size, but the request has no Inference-Header-Content-Length "
                "header saying where its binary data starts."
            )
        remaining = len(self.data) - self.offset
        if size > remaining:
            raise InvalidInput(
                f"{where} declares {size} bytes of binary data, but only {remaining} remain in the body."
            )
        chunk = memoryview(self.data)[self.offset : self.offset + size]
        self.offset += size
        return chunk

    def finish(self) -> None:
        """Refuse bytes that no input's ``binary_data_size`` accounted for."""
        extra = len(self.data) - self.offset if self.data is not None else 0
        if extra:
            raise InvalidInput(
                f"The request body has {extra} bytes after the binary data of its inputs; the inputs' "
                "binary_data_size parameters must account for every byte."
            )


def decode_tensor(raw: memoryview, datatype: str, count: int, where: str) -> np.ndarray:
    """The ``count`` elements of one input's binary data, as a flat array of its datatype."""
    if datatype == "BYTES":
        items = _deserialize_bytes(raw, where)
        if len(items) != count:
            raise InvalidInput(
                f"{where} has {len(items)} BYTES elements in its binary data; its shape needs {count}."
            )
        array = np.empty(count, dtype=object)
        array[:] = items
        return array
    dtype = dtype_of(datatype)
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(
            f"{where} has {len(raw)} bytes of binary data; {count} {datatype} elements need {count * dtype.itemsize}."
        )
    if datatype == "BOOL":
        octets = np.frombuffer(raw, dtype=np.uint8)
        if (octets > 1).any():
            raise InvalidInput(f"{where} has BOOL binary data with bytes other than 0 and 1.")
        return octets.astype(bool)
    return np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)  # a native-order copy


def _deserialize_bytes(raw: memoryview, where: str) -> list[bytes]:
    items, offset = [], 0
    while offset < len(raw):
        if offset + _LENGTH.size > len(raw):
            raise InvalidInput(f"{where} has BYTES binary data that ends inside an element's length prefix.")
        (size,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if offset + size > len(raw):
            raise InvalidInput(f"{where} has a BYTES element of {size} bytes running past its binary data.")
        items.append(bytes(raw[offset : offset + size]))
        offset += size
    return items


def encode_tensor(array: np.ndarray) -> bytes:
    """An output's binary data: little-endian raw values, or length-prefixed BYTES elements."""
    if array.dtype.kind in "OSU":
        return serialize_bytes(array)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def serialize_bytes(array: np.ndarray) -> bytes:
    """BYTES elements (bytes, or text encoded as UTF-8), each behind its 4-byte length."""
    parts = []
    for item in array.reshape(-1).tolist():
        data = item.encode("utf-8") if isinstance(item, str) else bytes(item)
        parts += [_LENGTH.pack(len(data)), data]
    return b"".join(parts)
