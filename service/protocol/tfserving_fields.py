"""The top-level fields TF Serving request bodies share: the object itself, signature and parameters.

``parameters`` (an object of string/number/boolean values) and the shorthand top-level ``top_k``
and ``threshold`` are this service's extension for probability outputs; TF Serving has neither,
and a TF Serving client that sends neither sees no difference.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from service.errors import InvalidInput
from service.protocol.nested import describe
from service.protocol.parameters import check_extension_parameters, scalar_parameters
from service.protocol.readers import Reader

EXTENSION_FIELDS = ("parameters", "top_k", "threshold")


def body_fields(r: Reader, allowed: Iterable[str], hint: str) -> dict[str, Any]:
    """The body's top-level object, refusing any field not in ``allowed`` (``hint`` lists them)."""
    fields = r.fields(r.root)
    if fields is None:
        raise InvalidInput(f"The request body must be a JSON object; got {describe(r.plain(r.root))}.")
    unknown = [name for name in fields if name not in allowed]
    if unknown:
        listed = ", ".join(repr(n) for n in unknown)
        raise InvalidInput(f"Unknown field(s) {listed} in the request body; {hint}")
    return fields


def signature_name(r: Reader, fields: dict[str, Any]) -> str | None:
    """The optional ``signature_name``, which must be a string."""
    value = r.plain(fields.get("signature_name"))
    if value is not None and not isinstance(value, str):
        raise InvalidInput(f"'signature_name' must be a string; got {describe(value)}.")
    return value


def parameters(r: Reader, fields: dict[str, Any]) -> dict[str, Any]:
    """``parameters`` merged with the top-level ``top_k``/``threshold`` shorthands, validated."""
    merged = scalar_parameters(r, fields.get("parameters"), "'parameters'")
    for name in ("top_k", "threshold"):
        if name in fields:
            if name in merged:
                raise InvalidInput(
                    f"'{name}' is given both at the top level and in 'parameters'; give it once."
                )
            merged[name] = r.plain(fields[name])
    check_extension_parameters(merged, "Parameter")
    return merged
