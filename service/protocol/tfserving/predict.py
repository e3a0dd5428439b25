"""TF Serving REST v1 predict: request JSON (row or columnar) to arrays, and arrays to response JSON.

Follows https://www.tensorflow.org/tfx/serving/api_rest and TF Serving's ``json_tensor.cc``. Where
this module is stricter than TF Serving it says why: unknown top-level fields and unknown input
names are refused rather than ignored (a typo should not silently change a prediction), and the
columnar format also needs one batch size across inputs, since every signature here batches all
of its inputs on the first dimension. The top-level fields every TF Serving body shares
(``signature_name``, and this service's ``parameters``/``top_k``/``threshold`` extension, which a TF
Serving client that sends none of them never notices) are read here for classify/regress too.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.errors import InvalidInput
from service.models.card import TensorSpec
from service.protocol import jsonio
from service.protocol.jsonio import Reader, decode_json
from service.protocol.parameters import check_extension_parameters, scalar_parameters
from service.protocol.tensors import Limits, check_batch_size, check_inputs, check_names, describe

# ---- top-level fields every TF Serving body shares --------------------------------------------
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


# ---- predict ----------------------------------------------------------------------------------
_FIELDS = ("signature_name", "instances", "inputs", *EXTENSION_FIELDS)
_HINT = "a predict request has 'instances' or 'inputs', and optionally 'signature_name' and 'parameters'."


@dataclass(frozen=True)
class PredictRequest:
    inputs: dict[str, np.ndarray]
    columnar: bool
    signature_name: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # the allowed extra fields given, as plain JSON


def decode_predict(
    body: bytes, specs: Sequence[TensorSpec], limits: Limits, extra: Sequence[str] = ()
) -> PredictRequest:
    """Decode a ``:predict`` body against the signature's input ``specs``.

    ``extra`` names further top-level fields to allow (``:evaluate``'s ``labels``...); their plain
    values come back in ``PredictRequest.extra``, so the body is parsed once.
    """
    return decode_json(body, lambda r: read_predict(r, specs, limits, extra))


def read_predict(
    r: Reader, specs: Sequence[TensorSpec], limits: Limits, extra: Sequence[str] = ()
) -> PredictRequest:
    """``decode_predict`` on a given reader (the fast or the slow one)."""
    hint = f"{_HINT} This endpoint also takes {', '.join(map(repr, extra))}." if extra else _HINT
    fields = body_fields(r, (*_FIELDS, *extra), hint)
    signature, options = signature_name(r, fields), parameters(r, fields)
    if ("instances" in fields) == ("inputs" in fields):
        which = "both" if "inputs" in fields else "neither"
        raise InvalidInput(
            "A predict request needs exactly one of 'instances' (row format) or 'inputs' "
            f"(columnar format); got {which}."
        )
    if "instances" in fields:
        inputs = _rows(r, fields["instances"], specs, limits)
    else:
        inputs = _columns(r, fields["inputs"], specs, limits)
    check_inputs(inputs, specs)
    given = {name: r.plain(fields[name]) for name in extra if name in fields}
    return PredictRequest(inputs, "inputs" in fields, signature, options, given)


def _rows(r: Reader, value: Any, specs: Sequence[TensorSpec], limits: Limits) -> dict[str, np.ndarray]:
    if not r.is_array(value):
        raise InvalidInput(f"'instances' must be a list; got {describe(r.plain(value))}.")
    check_batch_size(r.length(value), limits, "'instances'")
    if _is_named(r, r.first(value)):
        return _named_rows(r, r.items(value) or [], specs, limits)
    spec = _only_input(specs, "'instances' holds plain values", "each instance an object keyed by input name")
    return {spec.name: r.array(value, spec.shape, spec.dtype, limits.allow_nonfinite, f"Input {spec.name!r}")}


def _named_rows(
    r: Reader, rows: list[Any], specs: Sequence[TensorSpec], limits: Limits
) -> dict[str, np.ndarray]:
    columns: dict[str, list[Any]] = {s.name: [] for s in specs}
    for index, row in enumerate(rows):
        fields = r.fields(row) if _is_named(r, row) else None
        if fields is None:
            raise InvalidInput(
                f"Instance {index} must be an object keyed by input name, like the first; "
                f"got {describe(r.plain(row))}."
            )
        check_names(fields, specs, f" in instance {index}")
        for name, item in fields.items():
            columns[name].append(item)
    return {
        s.name: r.stack(columns[s.name], s.shape, s.dtype, limits.allow_nonfinite, f"Input {s.name!r}")
        for s in specs
    }


def _columns(r: Reader, value: Any, specs: Sequence[TensorSpec], limits: Limits) -> dict[str, np.ndarray]:
    if not _is_named(r, value):
        spec = _only_input(specs, "'inputs' holds a plain value", "'inputs' an object keyed by input name")
        return {spec.name: _column(r, value, spec, limits)}
    fields = r.fields(value) or {}
    check_names(fields, specs, " in 'inputs'")
    by_name = {s.name: s for s in specs}
    return {name: _column(r, item, by_name[name], limits) for name, item in fields.items()}


def _column(r: Reader, value: Any, spec: TensorSpec, limits: Limits) -> np.ndarray:
    where = f"Input {spec.name!r}"
    if spec.shape[:1] == (-1,) and r.is_array(value):
        check_batch_size(r.length(value), limits, where)
    return r.array(value, spec.shape, spec.dtype, limits.allow_nonfinite, where)


def _is_named(r: Reader, value: Any) -> bool:
    """An object keyed by input name, as opposed to a value or a ``{"b64": ...}`` string."""
    fields = r.fields(value)
    return fields is not None and not (list(fields) == ["b64"] and isinstance(fields["b64"], str))


def _only_input(specs: Sequence[TensorSpec], what: str, instead: str) -> TensorSpec:
    if len(specs) != 1:
        names = ", ".join(repr(s.name) for s in specs)
        raise InvalidInput(f"{what}, but the model has {len(specs)} inputs ({names}); make {instead}.")
    return specs[0]


def encode_predict(outputs: Mapping[str, np.ndarray], columnar: bool) -> bytes:
    """The ``:predict`` response: ``{"predictions": ...}`` (row) or ``{"outputs": ...}`` (columnar)."""
    if not outputs:
        raise ValueError("A predict response needs at least one output.")
    columns = {name: _json_ready(name, np.asarray(array)) for name, array in outputs.items()}
    single = next(iter(columns.values())) if len(columns) == 1 else None
    if columnar:
        doc: dict[str, Any] = {"outputs": columns if single is None else single}
    else:
        batch = _batch_size(outputs)
        rows = single if single is not None else [{n: c[i] for n, c in columns.items()} for i in range(batch)]
        doc = {"predictions": rows}
    return jsonio.dumps(doc, nonfinite=jsonio.has_nonfinite(outputs.values()))


def _batch_size(outputs: Mapping[str, np.ndarray]) -> int:
    sizes = {}
    for name, array in outputs.items():
        if np.ndim(array) == 0:
            raise InvalidInput(
                f"Output {name!r} is a scalar, which the row format cannot split into instances; use 'inputs'."
            )
        sizes[name] = np.shape(array)[0]
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{n!r} has {b}" for n, b in sizes.items())
        raise InvalidInput(
            f"The outputs have different batch sizes ({listed}), which the row format cannot express; "
            "send the request in the columnar format ('inputs') instead."
        )
    return next(iter(sizes.values()))


def _json_ready(name: str, array: np.ndarray) -> Any:
    """Numeric arrays as contiguous arrays for orjson; string arrays as nested lists of text.

    Like TF Serving, outputs whose name ends in ``_bytes`` are written as ``{"b64": ...}``
    objects; so are string outputs holding bytes that are not UTF-8 (TF Serving would write
    invalid JSON there).
    """
    if array.dtype.kind not in "OSU":
        return np.ascontiguousarray(array)
    items = [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in array.reshape(-1).tolist()]
    text = None if name.endswith("_bytes") else _utf8(items)
    nested = np.empty(len(items), dtype=object)
    nested[:] = text if text is not None else [{"b64": base64.b64encode(v).decode("ascii")} for v in items]
    return nested.reshape(array.shape).tolist()


def _utf8(items: list[bytes]) -> list[str] | None:
    try:
        return [v.decode("utf-8") for v in items]
    except UnicodeDecodeError:
        return None
