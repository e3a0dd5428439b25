"""Shape inference, regularity checks and message helpers for nested JSON lists."""

from __future__ import annotations

from typing import Any

import pytest

from service.errors import InvalidInput
from service.protocol.nested import describe, fits, flatten, infer_shape, location, shape_text


@pytest.mark.parametrize(
    ("value", "shape"),
    [
        (3, ()),
        ([], (0,)),
        ([1, 2, 3], (3,)),
        ([[1, 2], [3, 4], [5, 6]], (3, 2)),
        ([[[1]], [[2]]], (2, 1, 1)),
        ([[], []], (2, 0)),
        ([[1, 2], [3]], (2, 2)),  # from the first items only; flatten() finds the ragged row
    ],
)
def test_infer_shape_follows_the_first_item_at_each_depth(value: Any, shape: tuple[int, ...]) -> None:
    assert infer_shape(value) == shape


@pytest.mark.parametrize(
    ("shape", "expected", "ok"),
    [
        ((4, 28, 28), (-1, 28, 28), True),
        ((4, 784), (-1, 28, 28), False),
        ((4, 28, 27), (-1, 28, 28), False),
        ((4,), (-1,), True),
        ((), (-1,), False),
        ((2, 5), (-1, -1), True),
    ],
)
def test_fits_checks_rank_and_fixed_sizes(
    shape: tuple[int, ...], expected: tuple[int, ...], ok: bool
) -> None:
    assert fits(shape, expected) is ok


def test_flatten_returns_leaves_row_major() -> None:
    assert flatten([[1, 2], [3, 4]], (2, 2), "x") == [1, 2, 3, 4]
    assert flatten(7, (), "x") == [7]


@pytest.mark.parametrize(
    ("value", "shape", "message"),
    [
        ([[1, 2], [3]], (2, 2), "Input 'x' is ragged: the list at [1] has 1 items where 2 were expected."),
        ([[[1, 2], [3, 4]], [[5, 6], [7]]], (2, 2, 2), "the list at [1, 1] has 1 items"),
        ([[1, 2], 3], (2, 2), "Input 'x' mixes nesting depths: the number 3 at [1] stands where a list"),
    ],
)
def test_flatten_names_ragged_and_mixed_depth_lists(value: Any, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        flatten(value, shape, "Input 'x'")
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (True, "the boolean true"),
        (3, "the number 3"),
        (1.5, "the number 1.5"),
        ("abc", "the string 'abc'"),
        ("x" * 30, "the string 'xxxxxxxxxxxxxxxxx...'"),
        ([1], "a list"),
        ({"a": 1}, "an object"),
        (object(), "a value"),
    ],
)
def test_describe_names_json_kinds(value: Any, text: str) -> None:
    assert describe(value) == text


def test_location_and_shape_text() -> None:
    assert location(5, (2, 3)) == "[1, 2]"
    assert location(0, ()) == "[]"
    assert shape_text((-1, 28, 28)) == "[-1, 28, 28]"
