"""Walk nested JSON lists: infer their shape, check they are regular, and flatten them row-major."""

from __future__ import annotations

from typing import Any

import numpy as np

from service.errors import InvalidInput


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
