"""JSON bytes in and out: strict parsing with TF Serving's NaN/Infinity tokens, numpy-aware writing.

Reading: orjson first; a body it refuses is retried with the standard library only when it holds
``NaN``/``Infinity`` tokens, which TF Serving's REST API documents as valid (and which Python
clients, tritonclient included, write for non-finite floats). Whether such values are then
accepted is the decoder's call (``Limits.allow_nonfinite``).

Writing: orjson with numpy support. Non-finite floats are written as ``NaN``, ``Infinity`` and
``-Infinity`` like TF Serving's writer does (orjson would write ``null``, losing the value); that
slower path is taken only when the caller says an output holds such values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import orjson

from service.errors import InvalidInput

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
