"""Parameter objects: the V2 ``$parameters`` shape, and this service's ``top_k``/``threshold``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from service.errors import InvalidInput
from service.protocol.jsonio import Reader
from service.protocol.tensors import describe


def scalar_parameters(r: Reader, value: Any, where: str) -> dict[str, Any]:
    """A parameters object: names mapped to strings, numbers or booleans (absent: empty)."""
    if value is None:
        return {}
    fields = r.fields(value)
    if fields is None:
        raise InvalidInput(f"{where} must be an object; got {describe(r.plain(value))}.")
    result = {name: r.plain(v) for name, v in fields.items()}
    for name, v in result.items():
        if v is None or isinstance(v, (list, dict)):
            raise InvalidInput(f"{where} {name!r} must be a string, number or boolean; got {describe(v)}.")
    return result


def check_extension_parameters(parameters: Mapping[str, Any], where: str) -> None:
    """Our probability-output parameters: ``top_k`` a positive integer, ``threshold`` in [0, 1]."""
    top_k = parameters.get("top_k")
    if top_k is not None and (type(top_k) is not int or top_k < 1):
        raise InvalidInput(f"{where} 'top_k' must be a positive integer; got {describe(top_k)}.")
    threshold = parameters.get("threshold")
    if threshold is None:
        return
    if type(threshold) not in (int, float) or not math.isfinite(threshold) or not 0 <= threshold <= 1:
        raise InvalidInput(f"{where} 'threshold' must be a number from 0 to 1; got {describe(threshold)}.")
