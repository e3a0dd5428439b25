"""JSON values to typed tensors, under the shape and dtype rules both wire dialects share.

Shapes: nested JSON lists are regular, their shape is inferred from the first item at each depth
(TF Serving's rule) and must fit the signature's (``-1``: any size); every fault names its location.

Dtypes (the same on the fast and the slow decoding path):

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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InvalidInput, PayloadTooLarge
from service.models.card import TensorSpec


# ---- shapes of nested lists -------------------------------------------------------------------
def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    """``[-1, 28, 28]``: how shapes appear in every message."""
    return "[" + ", ".join(str(d) for d in shape) + "]"


def describe(value: Any) -> str:
    """A short phrase naming a JSON value's kind, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 20 else value[:17] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else "a value"


def location(flat_index: int, shape: tuple[int, ...]) -> str:
    """The ``[i, j, k]`` index of the ``flat_index``-th item of a row-major tensor of ``shape``."""
    if not shape:
        return "[]"
    return shape_text([int(i) for i in np.unravel_index(flat_index, shape)])


def infer_shape(value: Any) -> tuple[int, ...]:
    """The shape implied by the first item at every depth (TF Serving's rule); a scalar has ``()``."""
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def fits(shape: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """True if ``shape`` has the rank of ``expected`` and matches its fixed (non ``-1``) sizes."""
    return len(shape) == len(expected) and all(e in (-1, s) for s, e in zip(shape, expected, strict=True))


def flatten(value: Any, shape: tuple[int, ...], where: str) -> list[Any]:
    """The items below the last list level of a regular nested ``value`` of ``shape``, row-major.

    Raises if a list is ragged or a level mixes lists and values. Items at the leaf level are
    returned as found (lists among them are reported by the caller's type check).
    """
    level = [value]
    for depth, size in enumerate(shape):
        below: list[Any] = []
        for index, item in enumerate(level):
            if not isinstance(item, list):
                raise _mixed_depth(where, index, shape[:depth], item)
            if len(item) != size:
                raise InvalidInput(
                    f"{where} is ragged: the list at {location(index, shape[:depth])} has {len(item)} "
                    f"items where {size} were expected."
                )
            below.extend(item)
        level = below
    return level


def _mixed_depth(where: str, index: int, outer: tuple[int, ...], item: Any) -> InvalidInput:
    return InvalidInput(
        f"{where} mixes nesting depths: {describe(item)} at {location(index, outer)} stands where a "
        "list was expected."
    )


# ---- leaf values to typed arrays --------------------------------------------------------------
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


# ---- request tensors against the signature ----------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """What one request may carry. ``allow_nonfinite`` admits TF Serving's NaN/Infinity tokens."""

    max_instances: int = 65536
    allow_nonfinite: bool = False
    max_tensor_bytes: int = 1 << 62  # decoded input bytes per request (the server sets a real bound)


def to_array(value: Any, spec: TensorSpec, limits: Limits, where: str) -> np.ndarray:
    """A nested JSON value (batch first) as an array of ``spec``'s dtype and shape.

    ``where`` names the value in messages, e.g. ``"Input 'images'"``.
    """
    if spec.shape[:1] == (-1,) and isinstance(value, list):
        check_batch_size(len(value), limits, where)
    return nested_to_array(value, spec.shape, spec.dtype, limits.allow_nonfinite, where)


def nested_to_array(
    value: Any, expected: tuple[int, ...], dtype: str, allow_nonfinite: bool, where: str
) -> np.ndarray:
    """A nested JSON value as an array of ``dtype`` whose shape fits ``expected`` (-1: any size)."""
    shape = infer_shape(value)  # from the first item at each depth; flatten() checks the rest
    if not fits(shape, expected):
        raise InvalidInput(f"{where} must have shape {shape_text(expected)}; got {shape_text(shape)}.")
    return leaves_to_array(flatten(value, shape, where), shape, dtype, allow_nonfinite, where)


def check_batch_size(size: int, limits: Limits, where: str) -> None:
    """Refuse an empty batch and one larger than ``limits.max_instances``."""
    if size == 0:
        raise InvalidInput(f"{where} must hold at least one instance; got none.")
    if size > limits.max_instances:
        raise InvalidInput(
            f"{where} holds {size} instances; at most {limits.max_instances} are allowed per request."
        )


def check_tensor_bytes(size: int, limits: Limits, where: str = "The request's inputs") -> None:
    """Refuse decoded inputs over ``limits.max_tensor_bytes`` (PayloadTooLarge, a 413)."""
    if size > limits.max_tensor_bytes:
        raise PayloadTooLarge(
            f"{where} take {size} bytes decoded; at most {limits.max_tensor_bytes} are allowed per request."
        )


def tensor_bytes(inputs: Mapping[str, np.ndarray]) -> int:
    return sum(int(array.nbytes) for array in inputs.values())


def check_inputs(inputs: Mapping[str, np.ndarray], specs: Sequence[TensorSpec]) -> None:
    """Every signature input present, nothing else, and one batch size across batched inputs."""
    check_names(inputs, specs)
    sizes = {s.name: inputs[s.name].shape[0] for s in specs if s.shape[:1] == (-1,) and inputs[s.name].ndim}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{n!r} has {b}" for n, b in sizes.items())
        raise InvalidInput(f"All inputs must have the same batch size; {listed}.")


def check_names(names: Iterable[str], specs: Sequence[TensorSpec], context: str = "") -> None:
    """``names`` are exactly the signature's inputs; ``context`` (" in instance 3") locates them."""
    expected = [s.name for s in specs]
    known = ", ".join(repr(n) for n in expected)
    given = list(names)
    for name in given:
        if name not in expected:
            raise InvalidInput(f"Unknown input {name!r}{context}; the model's inputs are {known}.")
    for name in expected:
        if name not in given:
            raise InvalidInput(f"Input {name!r} is missing{context}; the model's inputs are {known}.")
