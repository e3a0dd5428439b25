""":evaluate request bodies: JSON (both dialects), and NDJSON streamed a chunk of rows at a time.

JSON bodies take two forms, each parsed once by the predict/infer decoders with the extra fields
allowed:

- TF Serving style, on both routes: ``{"instances" | "inputs": ..., "labels": [...]}`` with the
  options ``metrics`` (a list), ``dataset``, ``top_k``, ``threshold`` at the top level or in
  ``parameters``.
- V2 typed tensors, on the V2 route (JSON or with binary tensor data): ``{"inputs": [{"name",
  "shape", "datatype", "data"}], "labels": [...]}`` with the options in ``parameters``
  (``metrics`` there as a comma-separated string, since V2 parameters are scalars) or at the top
  level. A body is read as V2 tensors when it has binary data or its ``inputs`` is a list of
  objects carrying a ``datatype``; otherwise as TF Serving style.

A streamed body has one ``{"instance": ..., "label": ...}`` per line. It is read line by line (never
whole), each line bounded in length, and decoded a chunk of rows at a time with the TF Serving row
decoder, so an instance means exactly what it means in ``"instances"``. A bad line is reported with
its 1-based line number; blank lines are skipped.

Options come back as sent; ``service.evaluation.options`` validates them against the model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import orjson

from service.errors import InvalidInput, PayloadTooLarge
from service.models.card import TensorSpec
from service.protocol.jsonio import Reader, decode_json
from service.protocol.tensors import Limits, describe
from service.protocol.tfserving.predict import decode_predict, read_predict
from service.protocol.v2.datatypes import split_body
from service.protocol.v2.request import read_infer

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


# ---- streamed NDJSON ------------------------------------------------------------------------
ROW_FIELDS = ("instance", "label")
_BLOCK = 1 << 16


@dataclass(frozen=True)
class Chunk:
    lines: list[int]  # the 1-based line number of each row
    inputs: dict[str, np.ndarray]
    labels: list[Any]  # as sent


def lines(stream: BinaryIO, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for every non-blank line; a line over ``max_line_bytes`` is refused.

    Reads blocks and splits them here: ``readline`` on a WSGI input reads byte by byte or in
    small steps, which costs seconds on a few megabytes.
    """
    pending, number = bytearray(), 0
    while True:
        block = stream.read(_BLOCK)
        pending += block
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            number += 1
            yield from _checked(number, bytes(pending[start : end + 1]), max_line_bytes)
            start = end + 1
        del pending[:start]
        if len(pending) > max_line_bytes or not block:
            break
    yield from _checked(number + 1, bytes(pending), max_line_bytes)


def _checked(number: int, line: bytes, max_line_bytes: int) -> Iterator[tuple[int, bytes]]:
    if len(line.rstrip(b"\r\n")) > max_line_bytes:
        raise PayloadTooLarge(f"Line {number} is longer than the limit of {max_line_bytes} bytes.")
    if line.strip():
        yield number, line


def parse_row(number: int, line: bytes) -> tuple[Any, Any]:
    """(instance, label) of one line."""
    try:
        row = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"Line {number} is not valid JSON: {exc}.") from None
    if not isinstance(row, dict) or sorted(row) != sorted(ROW_FIELDS):
        got = f"fields {sorted(row)}" if isinstance(row, dict) else describe(row)
        raise InvalidInput(f'Line {number} must be an object {{"instance": ..., "label": ...}}; got {got}.')
    return row["instance"], row["label"]


def chunks(
    stream: BinaryIO, specs: Sequence[TensorSpec], limits: Limits, rows: int, max_line_bytes: int
) -> Iterator[Chunk]:
    """The stream's rows decoded ``rows`` at a time (the last chunk may be shorter)."""
    pending: list[tuple[int, Any, Any]] = []
    for number, line in lines(stream, max_line_bytes):
        pending.append((number, *parse_row(number, line)))
        if len(pending) == rows:
            yield decode_rows(pending, specs, limits)
            pending = []
    if pending:
        yield decode_rows(pending, specs, limits)


def decode_rows(rows: list[tuple[int, Any, Any]], specs: Sequence[TensorSpec], limits: Limits) -> Chunk:
    """One chunk of (line number, instance, label); a fault is traced back to its line."""
    numbers = [number for number, _, _ in rows]
    instances = [instance for _, instance, _ in rows]
    try:
        inputs = decode_instances(instances, specs, limits)
    except InvalidInput:
        for number, instance in zip(numbers, instances, strict=True):
            try:
                decode_instances([instance], specs, limits)
            except InvalidInput as exc:
                raise InvalidInput(f"Line {number}: {exc.message}") from None
        raise  # only the rows together are at fault (mixed instance kinds)
    return Chunk(numbers, inputs, [label for _, _, label in rows])


def decode_instances(
    instances: list[Any], specs: Sequence[TensorSpec], limits: Limits
) -> dict[str, np.ndarray]:
    """Rows as in a predict request's 'instances', decoded against the model's input specs."""
    # Written back to JSON (orjson: C speed, shortest round-trip floats) so the fast reader
    # takes numeric tensors straight into numpy; pure Python per value would be ~50x slower.
    return decode_predict(orjson.dumps({"instances": instances}), specs, limits).inputs
