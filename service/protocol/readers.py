"""Two ways to read one JSON request: the fast simdjson reader and the exact, authoritative one.

Decoders are written once against the ``Reader`` methods. ``decode_json`` runs a decoder on the
``fastjson.FastReader`` first; when that reader cannot vouch for the request (``Fallback``) or the
decoder finds fault with it, the request is decoded again with the ``SlowReader`` (orjson and pure
Python), which decides what is valid and words every error message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import numpy as np

from service.errors import InvalidInput
from service.protocol import jsonio
from service.protocol.common import nested_to_array
from service.protocol.fastjson import Fallback, FastReader

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
        self.root = jsonio.loads(body)

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
