"""Reading and writing request and response JSON: one reader interface, a fast path and an exact one.

Decoders are written once against the ``Reader`` methods. ``decode_json`` runs a decoder on the
simdjson ``fastjson.FastReader`` first; when that reader cannot vouch for the request (``Fallback``)
or the decoder finds fault with it, the request is decoded again with the ``SlowReader`` (orjson and
pure Python), which decides what is valid and words every error message. ``dumps`` writes
responses, with TF Serving's NaN/Infinity tokens when an output holds them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

import numpy as np
import orjson

from service.errors import InvalidInput
from service.protocol.fastjson import Fallback, FastReader
from service.protocol.tensors import nested_to_array

# ---- parsing and writing ----------------------------------------------------------------------
_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
_CONSTANT_TOKENS = (b"NaN", b"Infinity")


def loads(body: bytes) -> Any:
    """Parse a request body; malformed JSON raises ``InvalidInput`` naming the position."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        reason = str(exc)
    doc = _loads_with_constants(body)
    if doc is _REFUSED:
        if not body.strip():
            raise InvalidInput("The request body is empty; expected a JSON object.")
        raise InvalidInput(f"The request body is not valid JSON: {reason}.")
    return doc


_REFUSED = object()


def _loads_with_constants(body: bytes) -> Any:
    if not any(token in body for token in _CONSTANT_TOKENS):
        return _REFUSED
    used: list[str] = []

    def constant(token: str) -> float:
        used.append(token)
        return float(token)

    try:
        # strict UTF-8 and no BOM, as orjson requires; the stdlib alone would be laxer on both
        doc = json.loads(body.decode("utf-8"), parse_constant=constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return _REFUSED
    return doc if used else _REFUSED  # without tokens, orjson's refusal stands


def dumps(doc: Any, nonfinite: bool = False) -> bytes:
    """Serialise ``doc`` (which may hold numpy arrays and scalars) to compact JSON bytes."""
    if not nonfinite:
        return orjson.dumps(doc, option=_DUMP_OPTIONS)
    text = json.dumps(_plain(doc), allow_nan=True, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8")


def has_nonfinite(arrays: Iterable[np.ndarray]) -> bool:
    """True if any float array holds NaN or an infinity (so ``dumps`` needs ``nonfinite=True``)."""
    return any(a.dtype.kind == "f" and not np.isfinite(a).all() for a in arrays)


def plain_floats(array: np.ndarray) -> Any:
    """A float array as nested Python floats that print like the array's own type.

    ``float(np.float32(0.1))`` prints as 0.10000000149011612; going through the shortest string
    of the narrow type first gives the float whose repr is ``0.1``, as TF Serving writes it.
    """
    if array.dtype.itemsize < 8:
        return array.astype(str).astype(np.float64).tolist()
    return array.astype(np.float64).tolist()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        return plain_floats(array) if array.dtype.kind == "f" else array.tolist()
    return value


# ---- one reader interface, two readers --------------------------------------------------------
T = TypeVar("T")


class Reader(Protocol):
    """What a decoder may ask of a parsed body; ``root`` is its top-level value.

    ``fields``/``items`` give an object's members or a list's elements (None for another kind);
    ``is_array``, ``length`` and ``first`` look at a list without reading it all; ``plain`` gives a
    small value as Python; ``array`` reads a tensor that must fit ``shape`` (-1: any size) as
    ``dtype``, and ``stack`` a batch from its instances' values.
    """

    root: Any

    def fields(self, value: Any) -> dict[str, Any] | None: ...
    def items(self, value: Any) -> list[Any] | None: ...
    def is_array(self, value: Any) -> bool: ...
    def length(self, value: Any) -> int: ...
    def first(self, value: Any) -> Any: ...
    def plain(self, value: Any) -> Any: ...
    def array(
        self, value: Any, shape: tuple[int, ...], dtype: str, allow_nonfinite: bool, where: str
    ) -> np.ndarray: ...
    def stack(
        self, values: list[Any], shape: tuple[int, ...], dtype: str, allow_nonfinite: bool, where: str
    ) -> np.ndarray: ...


def decode_json(body: bytes, decode: Callable[[Reader], T]) -> T:
    """Run ``decode`` on the fast reader, or on the slow one when the fast one cannot vouch."""
    try:
        return decode_fast(body, decode)
    except (Fallback, InvalidInput):
        pass  # the slow path decides validity and words every error
    return decode(SlowReader(body))


def decode_fast(body: bytes, decode: Callable[[Reader], T]) -> T:
    """``decode`` on the fast reader only; raises ``Fallback`` when it cannot vouch for the result."""
    reader = FastReader(body)
    result = decode(reader)
    reader.finish()
    return result


class SlowReader:
    """orjson and pure Python: exact, and the source of every error message."""

    def __init__(self, body: bytes) -> None:
        self.root = loads(body)

    def fields(self, value: Any) -> dict[str, Any] | None:
        return value if isinstance(value, dict) else None

    def items(self, value: Any) -> list[Any] | None:
        return value if isinstance(value, list) else None

    def is_array(self, value: Any) -> bool:
        return isinstance(value, list)

    def length(self, value: list[Any]) -> int:
        return len(value)

    def first(self, value: list[Any]) -> Any:
        return value[0] if value else None

    def plain(self, value: Any) -> Any:
        return value

    def array(
        self, value: Any, shape: tuple[int, ...], dtype: str, allow_nonfinite: bool, where: str
    ) -> np.ndarray:
        return nested_to_array(value, shape, dtype, allow_nonfinite, where)

    def stack(
        self, values: list[Any], shape: tuple[int, ...], dtype: str, allow_nonfinite: bool, where: str
    ) -> np.ndarray:
        return nested_to_array(values, shape, dtype, allow_nonfinite, where)
