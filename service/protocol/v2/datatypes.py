"""Open Inference Protocol datatypes: names <-> numpy dtypes, safe conversions, and their binary form.

A request may send an input as another datatype than the model's; the data is converted only when
no value can change (TF Serving applies the same idea to JSON numbers):

- integer to integer: every value must be in the target's range (INT32 data for an INT64 input);
- integer to float: every value must be exactly representable (at most 2**24 for FP32);
- float to float: every value must lie in the target's finite range; narrowing rounds to nearest,
  which is what sending decimals means anyway (FP64 data for an FP32 input, as numpy's default
  float64 arrays produce);
- nothing else: floats to integers, BOOL to or from numbers, BYTES to or from anything refuse.

Triton's binary tensor data extension (``extension_binary_data.md``): the first
``Inference-Header-Content-Length`` bytes of a body are the JSON object; the tensors follow in the
order of the inputs (or outputs) that carry a ``binary_data_size`` parameter, little-endian,
row-major, without padding. BOOL is one byte (0 or 1) per element; each BYTES element is a 4-byte
little-endian length followed by that many bytes.
"""

from __future__ import annotations

import struct

import numpy as np

from service.errors import InvalidInput
from service.protocol.tensors import FLOAT_DIGITS, category, check_float_values, check_int_range, location

# ---- datatypes --------------------------------------------------------------------------------
_BY_DTYPE = {
    "bool": "BOOL",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "string": "BYTES",
}
_BY_DATATYPE = {v: k for k, v in _BY_DTYPE.items()}
DATATYPES = tuple(_BY_DATATYPE)


def datatype_of(dtype: str | np.dtype) -> str:
    """The V2 datatype (``"FP32"``) of a spec dtype name (``"float32"``, ``"string"``) or numpy dtype."""
    if dtype == "string":
        return "BYTES"
    resolved = np.dtype(dtype)
    if resolved.kind in "OSU":
        return "BYTES"
    try:
        return _BY_DTYPE[resolved.name]
    except KeyError:
        raise ValueError(f"numpy dtype {resolved.name} has no Open Inference Protocol datatype.") from None


def spec_dtype_of(datatype: str) -> str:
    """The tensor spec dtype name (``"float32"``, ``"string"``) for a V2 datatype sent by a client."""
    try:
        return _BY_DATATYPE[datatype]
    except (KeyError, TypeError):
        known = ", ".join(DATATYPES)
        raise InvalidInput(f"Unknown datatype {datatype!r}; expected one of {known}.") from None


def dtype_of(datatype: str) -> np.dtype:
    """The numpy dtype holding a V2 datatype's values (``object`` for BYTES)."""
    name = spec_dtype_of(datatype)
    return np.dtype(object) if name == "string" else np.dtype(name)


def convert(array: np.ndarray, dtype: str, where: str) -> np.ndarray:
    """``array`` (decoded as its request datatype) as the model's ``dtype``, under the rules above."""
    source = "string" if array.dtype.kind in "OSU" else array.dtype.name
    if source == dtype:
        return array
    kinds = category(source), category(dtype)
    if kinds == ("int", "int"):
        return check_int_range(array, dtype, where, array.shape)
    if kinds == ("int", "float"):
        return _exact_floats(array, dtype, where)
    if kinds == ("float", "float"):
        return check_float_values(array.astype(np.float64), dtype, True, where, array.shape)
    raise InvalidInput(
        f"{where} is sent as {datatype_of(source)} but the model takes {datatype_of(dtype)}, "
        "and that conversion could change values; send it as the model's datatype."
    )


def _exact_floats(array: np.ndarray, dtype: str, where: str) -> np.ndarray:
    inexact = np.abs(array.astype(np.float64)) > 2.0 ** FLOAT_DIGITS[dtype]
    if inexact.any():
        index = int(np.argmax(inexact))
        value = array.reshape(-1)[index]
        raise InvalidInput(
            f"{where} integer {value} at {location(index, array.shape)} cannot be represented exactly as {dtype}."
        )
    return array.astype(dtype)


# ---- binary tensor data -----------------------------------------------------------------------
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


def decode_tensor(raw: memoryview, datatype: str, count: int, where: str, copy: bool = True) -> np.ndarray:
    """The ``count`` elements of one input's binary data, as a flat array of its datatype.

    ``copy=False`` returns numbers as a read-only view of ``raw`` when they are in the machine's
    own byte order (saving a pass over a large tensor), for callers whose buffer outlives the array.
    """
    if datatype == "BYTES":
        items = _deserialize_bytes(raw, where)
        if len(items) != count:
            raise InvalidInput(
                f"{where} has {len(items)} BYTES elements in its binary data; its shape needs {count}."
            )
        array = np.empty(count, dtype=object)
        array[:] = items
        return array
    return unpack_little_endian(raw, dtype_of(datatype), count, where, kind=datatype, copy=copy)


def unpack_little_endian(
    raw: bytes | memoryview,
    dtype: np.dtype,
    count: int,
    where: str,
    *,
    kind: str,
    source: str = "binary data",
    unit: str = "elements",
    copy: bool = True,
) -> np.ndarray:
    """``count`` numbers of ``dtype`` packed little-endian in ``raw`` (V2's binary data, TensorProto's
    tensor_content), as a flat array; booleans must be bytes 0 or 1. ``copy=False`` as in decode_tensor.
    ``kind`` (``FP32``, ``DT_FLOAT``), ``source`` and ``unit`` name things in the errors as the
    caller's protocol does."""
    if len(raw) != count * dtype.itemsize:
        raise InvalidInput(
            f"{where} has {len(raw)} bytes of {source}; {count} {kind} {unit} need {count * dtype.itemsize}."
        )
    if dtype == np.bool_:
        octets = np.frombuffer(raw, dtype=np.uint8)
        if (octets > 1).any():
            raise InvalidInput(f"{where} has {kind} {source} with bytes other than 0 and 1.")
        return octets.astype(bool)
    values = np.frombuffer(raw, dtype=dtype.newbyteorder("<"))
    return values if not copy and values.dtype.isnative else values.astype(dtype)  # a native-order copy


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
