"""Integers from URLs, headers and query strings: ASCII digits only, and never more than a few.

``str.isdigit`` accepts "²" and Arabic-Indic digits and ``int`` accepts some of those, spaces, signs
and underscores, and converting thousands of digits costs time (Python refuses past 4,300): text
from the wire is held to ``[0-9]{1,max_digits}`` before it is converted.
"""

from __future__ import annotations

import re

# 18 digits always fit a signed 64-bit integer, which is what versions and lengths are elsewhere.
MAX_DIGITS = 18
_DIGITS = re.compile(rb"[0-9]+")


def parse_count(raw: str | bytes | None, max_digits: int = MAX_DIGITS) -> int | None:
    """The non-negative integer ``raw`` spells in ASCII digits, or None if it spells anything else."""
    if raw is None:
        return None
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else raw
    if not 0 < len(data) <= max_digits or _DIGITS.fullmatch(data) is None:
        return None
    return int(data)
