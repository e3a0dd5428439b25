"""service.protocol.numbers: ASCII digits only, a bounded count of them."""

from __future__ import annotations

import pytest

from service.protocol.numbers import MAX_DIGITS, parse_count


@pytest.mark.parametrize(
    ("raw", "value"), [("0", 0), ("7", 7), (b"42", 42), ("9" * MAX_DIGITS, int("9" * MAX_DIGITS))]
)
def test_ascii_digits_are_counts(raw: str | bytes, value: int) -> None:
    assert parse_count(raw) == value


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "\u00b2",
        "\u0661",
        "\u0663\u0664",
        "\uff11",
        " 1",
        "1 ",
        "+1",
        "-1",
        "1_0",
        "0x1",
        "1.0",
        "9" * (MAX_DIGITS + 1),
        "9" * 5000,
        b"\xd9\xa1",
    ],
)
def test_anything_else_is_refused(raw: str | bytes) -> None:
    assert parse_count(raw) is None


def test_none_is_absent() -> None:
    assert parse_count(None) is None
