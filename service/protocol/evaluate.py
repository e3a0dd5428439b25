"""``:evaluate`` request bodies: a predict (or V2 infer) body plus ``labels`` and evaluation options.

Two JSON forms, each parsed once by the existing decoders with the extra fields allowed:

- TF Serving style, on both routes: ``{"instances" | "inputs": ..., "labels": [...]}`` with the
  options ``metrics`` (a list), ``dataset``, ``top_k``, ``threshold`` at the top level or in
  ``parameters``.
- V2 typed tensors, on the V2 route (JSON or with binary tensor data): ``{"inputs": [{"name",
  "shape", "datatype", "data"}], "labels": [...]}`` with the options in ``parameters``
  (``metrics`` there as a comma-separated string, since V2 parameters are scalars) or at the top
  level. A body is read as V2 tensors when it has binary data or its ``inputs`` is a list of
  objects carrying a ``datatype``; otherwise as TF Serving style.

Options come back as sent; ``service.evaluating`` validates them against the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InvalidInput
from service.protocol.common import Limits
from service.protocol.readers import Reader, decode_json
from service.protocol.tfserving import read_predict
from service.protocol.v2_binary import split_body
from service.protocol.v2_request import read_infer
from service.repository import TensorSpec

EXTRA_FIELDS = ("labels", "metrics", "dataset")
OPTIONS = ("metrics", "dataset", "top_k", "threshold")


@dataclass(frozen=True)
class EvaluateRequest:
    inputs: dict[str, np.ndarray]
    labels: Any  # as sent; checked against the model's task by service.evaluation.encode_labels
    options: dict[str, Any]  # the OPTIONS given, as sent


def decode_tfserving(body: bytes, specs: Sequence[TensorSpec], limits: Limits) -> EvaluateRequest:
    """``POST /v1/models/...:evaluate`` with a JSON body."""
    return decode_json(body, lambda r: _tfserving(r, specs, limits))


def decode_v2(
    body: bytes, header_length: int | None, specs: Sequence[TensorSpec], limits: Limits
) -> EvaluateRequest:
    """``POST /v2/models/.../evaluate``: V2 tensors (JSON or binary) or the TF Serving style body."""
    header, binary = split_body(body, header_length)
    return decode_json(header, lambda r: _v2(r, binary, specs, limits))


def _tfserving(r: Reader, specs: Sequence[TensorSpec], limits: Limits) -> EvaluateRequest:
    request = read_predict(r, specs, limits, EXTRA_FIELDS)
    return _request(request.inputs, request.extra, request.parameters)


def _v2(r: Reader, binary: bytes | None, specs: Sequence[TensorSpec], limits: Limits) -> EvaluateRequest:
    if binary is None and not _has_typed_tensors(r):
        return _tfserving(r, specs, limits)
    request = read_infer(r, binary, specs, limits, EXTRA_FIELDS)
    return _request(request.inputs, request.extra, request.parameters)


def _has_typed_tensors(r: Reader) -> bool:
    """True for V2's ``"inputs": [{"name": ..., "datatype": ...}, ...]`` (looks at the first only)."""
    fields = r.fields(r.root) or {}
    inputs = fields.get("inputs")
    first = r.fields(r.first(inputs)) if inputs is not None and r.is_array(inputs) else None
    return first is not None and "datatype" in first


def _request(
    inputs: dict[str, np.ndarray], extra: dict[str, Any], parameters: Mapping[str, Any]
) -> EvaluateRequest:
    if "labels" not in extra:
        raise InvalidInput("An evaluate request needs 'labels', one per instance.")
    options = {name: parameters[name] for name in OPTIONS if name in parameters}
    for name in ("metrics", "dataset"):
        if name in extra:
            if name in options:
                raise InvalidInput(
                    f"'{name}' is given both at the top level and in 'parameters'; give it once."
                )
            options[name] = extra[name]
    return EvaluateRequest(inputs, extra["labels"], options)
