"""The fast JSON reader: simdjson, with numeric tensors read through ``as_buffer``.

``readers.decode_json`` runs a decoder with this reader first: simdjson parses the body and
numeric tensors go from JSON text to numpy through ``as_buffer`` without a Python float per value
(pysimdjson parses about four times faster than orjson plus ``np.asarray``). ``as_buffer`` flattens whatever nesting it
finds, so the fast reader proves the structure before trusting it:

- every list above the leaf level is walked and its ``len`` checked against the expected shape;
- lists hidden among the leaves (``[[1, 2], [[3], 4]]``) are ruled out by counting: the body must
  hold exactly as many ``[`` bytes as there are arrays the decoder consumed (the walked tensor
  levels plus every other list it read); a ``[`` inside a string or anything unread breaks the
  equality, which only ever sends the request to the slow path;
- bodies where simdjson and orjson might disagree (a byte order mark, any backslash escape,
  duplicate keys) are left to the slow path too.

On anything unexpected the fast reader raises ``Fallback`` (or the decoder raises ``InvalidInput``)
and the request is decoded again by the ``SlowReader`` (orjson and pure Python), which owns every
error message. So the fast path can only ever return what the slow path would have returned.
"""

from __future__ import annotations

import math
import threading
from itertools import chain
from typing import Any

import numpy as np
import simdjson

from service.errors import InvalidInput
from service.protocol.tensors import (
    FLOAT_DIGITS,
    category,
    check_float_values,
    check_int_range,
    fits,
    nested_to_array,
)

_BOM = b"\xef\xbb\xbf"
_local = threading.local()  # simdjson parsers are not thread-safe: one per thread


class Fallback(Exception):
    """The fast reader cannot vouch for this request; decode it with the slow reader."""


class FastReader:
    """simdjson with numeric tensors read through ``as_buffer``; see the module docstring."""

    def __init__(self, body: bytes) -> None:
        if body.startswith(_BOM) or b"\\" in body:
            raise Fallback
        self.body = body
        self.arrays = 0  # JSON arrays consumed so far, to compare with the body's '[' count
        self.root = _parse(body)

    def finish(self) -> None:
        if self.body.count(b"[") != self.arrays:
            raise Fallback

    def fields(self, value: Any) -> dict[str, Any] | None:
        if not isinstance(value, simdjson.Object):
            return None
        keys = list(value.keys())
        if len(set(keys)) != len(keys):
            raise Fallback  # simdjson reads the first duplicate, orjson the last
        return {key: value[key] for key in keys}

    def items(self, value: Any) -> list[Any] | None:
        if not isinstance(value, simdjson.Array):
            return None
        self.arrays += 1
        return list(value)

    def is_array(self, value: Any) -> bool:
        return isinstance(value, simdjson.Array)

    def length(self, value: Any) -> int:
        return len(value)

    def first(self, value: Any) -> Any:
        return value[0] if len(value) else None

    def plain(self, value: Any) -> Any:
        """The value as Python lists and dicts, counting every list in it."""
        if isinstance(value, simdjson.Array):
            return [self.plain(v) for v in self.items(value) or ()]
        fields = self.fields(value)
        return value if fields is None else {k: self.plain(v) for k, v in fields.items()}

    def array(
        self, value: Any, shape: tuple[int, ...], dtype: str, allow_nonfinite: bool, where: str
    ) -> np.ndarray:
        if _buffer_kind(dtype) and isinstance(value, simdjson.Array):
            return self._numeric(value, shape, dtype)
        return nested_to_array(self.plain(value), shape, dtype, allow_nonfinite, where)

    def stack(
        self, values: list[Any], shape: tuple[int, ...], dtype: str, allow_nonfinite: bool, where: str
    ) -> np.ndarray:
        if not (_buffer_kind(dtype) and values and all(isinstance(v, simdjson.Array) for v in values)):
            return nested_to_array([self.plain(v) for v in values], shape, dtype, allow_nonfinite, where)
        rows = [self._numeric(v, shape[1:], dtype) for v in values]
        if len({r.shape for r in rows}) != 1 or not fits((len(rows), *rows[0].shape), shape):
            raise Fallback
        return np.stack(rows)

    def _numeric(self, value: Any, expected: tuple[int, ...], dtype: str) -> np.ndarray:
        shape = self._walk(value, expected)
        kind = _buffer_kind(dtype) or "d"  # callers only come here for numeric dtypes
        try:
            flat = np.frombuffer(value.as_buffer(of_type=kind), dtype=_BUFFER_DTYPES[kind])
        except (TypeError, ValueError):  # a string, bool, null or object, or a number out of range
            raise Fallback from None
        if flat.size != math.prod(shape):
            raise Fallback
        return _checked(flat, dtype).reshape(shape)

    def _walk(self, value: Any, expected: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of a regular nested array fitting ``expected``; counts its arrays."""
        if not expected:
            raise Fallback
        shape, level = [len(value)], [value]
        for size in expected[1:]:
            # map/chain/set keep the per-child work in C: a 64-image body has 1,792 rows to check.
            level = list(chain.from_iterable(level))
            if not level or set(map(type, level)) != _ARRAY_TYPE:
                raise Fallback
            lengths = set(map(len, level))
            if len(lengths) != 1:
                raise Fallback
            shape.append(lengths.pop())
            if size not in (-1, shape[-1]):
                raise Fallback
        self.arrays += 1 + sum(math.prod(shape[:d]) for d in range(1, len(shape)))
        if not fits(tuple(shape), expected) or 0 in shape:
            raise Fallback
        return tuple(shape)


_ARRAY_TYPE = {simdjson.Array}
_BUFFER_DTYPES = {"d": np.float64, "i": np.int64, "u": np.uint64}


def _buffer_kind(dtype: str) -> str | None:
    """The ``as_buffer`` type code for a numeric dtype, or None for bool and string tensors."""
    kind = category(dtype)
    if kind == "float":
        return "d"
    return ("u" if dtype == "uint64" else "i") if kind == "int" else None


def _checked(flat: np.ndarray, dtype: str) -> np.ndarray:
    """``flat`` as ``dtype`` when the slow path would give the same, else ``Fallback``."""
    try:
        if flat.dtype.kind == "f":
            # integers this large must be exact, which only the slow path can tell from decimals;
            # max/min, unlike abs(), make no temporary copy of the whole tensor
            limit = 2.0 ** FLOAT_DIGITS[dtype]
            if flat.size and (flat.max() > limit or flat.min() < -limit):
                raise Fallback
            return check_float_values(flat, dtype, False, "", flat.shape)
        return check_int_range(flat, dtype, "", flat.shape)
    except InvalidInput:
        raise Fallback from None


# A parser keeps the capacity of the largest document it parsed (several times its size) for as
# long as it lives: bodies past this size get a parser of their own, freed with their document.
REUSE_PARSER_BELOW = 1 << 20


def _parse(body: bytes) -> Any:
    if len(body) >= REUSE_PARSER_BELOW:
        try:
            return simdjson.Parser().parse(body)
        except ValueError:
            raise Fallback from None
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    try:
        return parser.parse(body)
    except RuntimeError:
        # a document from this thread's last parse is still referenced (say, by a traceback kept
        # alive somewhere); give the thread a fresh parser and let the slow path take this body
        _local.parser = simdjson.Parser()
        raise Fallback from None
    except ValueError:  # malformed JSON, invalid UTF-8, NaN tokens, numbers beyond float64
        raise Fallback from None
