"""Open Inference Protocol datatypes: names <-> numpy dtypes, and which conversions are allowed.

A request may send an input as another datatype than the model's; the data is converted only when
no value can change (TF Serving applies the same idea to JSON numbers):

- integer to integer: every value must be in the target's range (INT32 data for an INT64 input);
- integer to float: every value must be exactly representable (at most 2**24 for FP32);
- float to float: every value must lie in the target's finite range; narrowing rounds to nearest,
  which is what sending decimals means anyway (FP64 data for an FP32 input, as numpy's default
  float64 arrays produce);
- nothing else: floats to integers, BOOL to or from numbers, BYTES to or from anything refuse.
"""

from __future__ import annotations

import numpy as np

from service.errors import InvalidInput
from service.protocol.casting import FLOAT_DIGITS, category, check_float_values, check_int_range
from service.protocol.nested import location

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
