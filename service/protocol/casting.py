"""Typed numpy arrays from JSON leaf values, under the dtype rules both wire dialects share.

Rules (the same on the fast and the slow decoding path):

- float inputs take JSON numbers. Decimals round to the nearest value of the input's type; an
  integer must be exactly representable (at most 2**24 in magnitude for float32, 2**53 for float64,
  2**11 for float16), as TF Serving requires; anything beyond the type's finite range is rejected.
- integer inputs take JSON integers only (``1.0`` is refused, as TF Serving does) within range.
- bool inputs take ``true``/``false`` only, and booleans are never numbers (TF Serving agrees).
- string inputs take JSON strings (UTF-8 encoded) or ``{"b64": "..."}`` objects (decoded).
- NaN and +-Infinity (non-standard JSON tokens that TF Serving accepts) only when allowed.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import numpy as np

from service.errors import InvalidInput
from service.protocol.nested import describe, location

FLOAT_DIGITS = {"float16": 11, "float32": 24, "float64": 53}
INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")

_ALLOWED: dict[str, tuple[type, ...]] = {
    "string": (str, dict),
    "bool": (bool,),
    "int": (int,),
    "float": (int, float),
}
_EXPECTED = {"string": "strings", "bool": "booleans", "int": "integers", "float": "numbers"}


def category(dtype: str) -> str:
    """``"float"``, ``"int"``, ``"bool"`` or ``"string"`` for a tensor spec dtype name."""
    if dtype in FLOAT_DIGITS:
        return "float"
    if dtype in INT_DTYPES:
        return "int"
    if dtype in ("bool", "string"):
        return dtype
    raise ValueError(f"Unsupported tensor dtype {dtype!r}.")


def leaves_to_array(
    leaves: list[Any], shape: tuple[int, ...], dtype: str, allow_nonfinite: bool, where: str
) -> np.ndarray:
    """Convert the flat, row-major ``leaves`` of a tensor of ``shape`` to an array of ``dtype``."""
    kind = category(dtype)
    allowed = _ALLOWED[kind]
    if not set(map(type, leaves)) <= set(allowed):
        index = next(i for i, leaf in enumerate(leaves) if type(leaf) not in allowed)
        raise _bad_leaf(where, leaves[index], location(index, shape), kind)
    if kind == "string":
        return _strings(leaves, where, shape).reshape(shape)
    if kind == "bool":
        return np.array(leaves, dtype=bool).reshape(shape)
    if kind == "int":
        return _integers(leaves, dtype, where, shape).reshape(shape)
    return _floats(leaves, dtype, allow_nonfinite, where, shape).reshape(shape)


def _bad_leaf(where: str, leaf: Any, at: str, kind: str) -> InvalidInput:
    if isinstance(leaf, list):
        return InvalidInput(
            f"{where} mixes nesting depths: a list at {at} stands where a value was expected."
        )
    if isinstance(leaf, dict) and "b64" in leaf:
        return InvalidInput(f"{where} got a {{'b64': ...}} object at {at}; base64 is only for string inputs.")
    return InvalidInput(f"{where} must hold {_EXPECTED[kind]}; got {describe(leaf)} at {at}.")


def _strings(leaves: list[Any], where: str, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(len(leaves), dtype=object)
    for index, leaf in enumerate(leaves):
        try:
            out[index] = _string_bytes(leaf)
        except ValueError as exc:  # includes UnicodeEncodeError and binascii.Error
            raise InvalidInput(f"{where} has {exc} at {location(index, shape)}.") from None
    return out


def _string_bytes(leaf: str | dict[str, Any]) -> bytes:
    if isinstance(leaf, str):
        try:
            return leaf.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string that is not valid Unicode text") from None
    if set(leaf) != {"b64"} or not isinstance(leaf["b64"], str):
        raise ValueError("an object other than {'b64': '<base64 text>'}")
    try:
        return base64.b64decode(leaf["b64"], validate=True)
    except binascii.Error:
        raise ValueError("a 'b64' value that is not valid base64") from None


def _integers(leaves: list[Any], dtype: str, where: str, shape: tuple[int, ...]) -> np.ndarray:
    wide = np.uint64 if dtype == "uint64" else np.int64
    try:
        values = np.array(leaves, dtype=wide)
    except OverflowError:
        info = np.iinfo(wide)
        index = next(i for i, v in enumerate(leaves) if not info.min <= v <= info.max)
        raise _out_of_range(where, leaves[index], location(index, shape), dtype) from None
    return check_int_range(values, dtype, where, shape)


def check_int_range(values: np.ndarray, dtype: str, where: str, shape: tuple[int, ...]) -> np.ndarray:
    """Integer ``values`` as ``dtype``, refusing any value outside its range.

    NumPy 2 compares integer arrays with out-of-range Python ints exactly, so this holds for any
    pair of integer dtypes (uint64 values beyond int64, negative values for unsigned types).
    """
    info = np.iinfo(dtype)
    bad = (values < info.min) | (values > info.max)
    if bad.any():
        index = int(np.argmax(bad))
        raise _out_of_range(where, int(values[index]), location(index, shape), dtype)
    return values.astype(dtype)


def _out_of_range(where: str, value: Any, at: str, dtype: str) -> InvalidInput:
    return InvalidInput(f"{where} value {value!r} at {at} is out of range for {dtype}.")


def _floats(
    leaves: list[Any], dtype: str, allow_nonfinite: bool, where: str, shape: tuple[int, ...]
) -> np.ndarray:
    bound = 2.0 ** FLOAT_DIGITS[dtype]
    try:
        values = np.array(leaves, dtype=np.float64)
        suspect = bool((np.abs(values) > bound).any())
    except OverflowError:  # an integer beyond float64, which the loop below always reports
        values, suspect = np.empty(0), True
    if suspect:
        inexact = next((i for i, v in enumerate(leaves) if type(v) is int and abs(v) > bound), None)
        if inexact is not None:
            at = location(inexact, shape)
            raise InvalidInput(
                f"{where} integer {leaves[inexact]} at {at} cannot be represented exactly as {dtype}."
            )
    return check_float_values(values, dtype, allow_nonfinite, where, shape)


def check_float_values(
    values: np.ndarray, dtype: str, allow_nonfinite: bool, where: str, shape: tuple[int, ...]
) -> np.ndarray:
    """``values`` as ``dtype``, refusing NaN/Infinity unless allowed and anything beyond its range."""
    with np.errstate(over="ignore"):
        out = values.astype(dtype)
    if np.isfinite(out).all():  # the usual case, in one pass: nothing non-finite, nothing overflowed
        return out
    finite = np.isfinite(values)
    if not allow_nonfinite and not finite.all():
        index = int(np.argmin(finite))
        got = number_text(float(values.flat[index]))
        raise InvalidInput(f"{where} must hold finite numbers; got {got} at {location(index, shape)}.")
    overflow = finite & ~np.isfinite(out)
    if overflow.any():
        index = int(np.argmax(overflow))
        raise _out_of_range(where, float(values.flat[index]), location(index, shape), dtype)
    return out


def number_text(value: float) -> str:
    """A float as JSON (with TF Serving's NaN/Infinity tokens) would write it."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)
