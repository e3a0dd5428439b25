"""JSONL / NDJSON: one ``{"instance": ..., "label": ...}`` per line, an instance as in ``instances``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from service.errors import InvalidInput, JobError
from service.evaluation import wire
from service.evaluation.batch.locations import Location
from service.evaluation.batch.rows import Batch
from service.evaluation.batch.textrows import IndexedText, rows_of
from service.models.card import TensorSpec
from service.protocol.tensors import Limits

_UNBOUNDED = Limits(max_instances=1 << 62, allow_nonfinite=True)  # the scorer applies the value policy


class JsonlRows(IndexedText):
    def __init__(self, location: Location) -> None:
        super().__init__(location, header=False)

    def decode(self, span: range, raw: bytes, specs: Sequence[TensorSpec]) -> Batch:
        return jsonl_batch(rows_of(raw, len(span), span.start), span.start, specs)


def jsonl_batch(lines: Sequence[bytes], first: int, specs: Sequence[TensorSpec]) -> Batch:
    parsed: list[tuple[int, Any, Any]] = []
    errors: list[tuple[int, str]] = []
    for row, line in enumerate(lines, first):
        try:
            parsed.append((row, *wire.parse_row(row, line)))
        except InvalidInput as exc:
            errors.append((row, exc.message))
    kept, inputs = _decodable(parsed, specs, errors)
    rows = np.array([row for row, _, _ in kept], dtype=np.int64)
    return Batch(rows, inputs, [label for _, _, label in kept], sorted(errors))


def _decodable(
    parsed: list[tuple[int, Any, Any]], specs: Sequence[TensorSpec], errors: list[tuple[int, str]]
) -> tuple[list[tuple[int, Any, Any]], dict[str, np.ndarray]]:
    """The rows whose instances decode (all at once when they all do), and their inputs."""
    try:
        return parsed, wire.decode_instances([i for _, i, _ in parsed], specs, _UNBOUNDED) if parsed else {}
    except InvalidInput:
        pass  # find the culprits row by row (rows may also just mix plain and named instances)
    kept, parts = [], []
    for row, instance, label in parsed:
        try:
            parts.append(wire.decode_instances([instance], specs, _UNBOUNDED))
            kept.append((row, instance, label))
        except InvalidInput as exc:
            errors.append((row, exc.message))
    try:
        return kept, {
            s.name: np.concatenate([part[s.name] for part in parts]) for s in specs
        } if parts else {}
    except ValueError as exc:
        raise JobError(
            f"JSONL rows {kept[0][0]}..{kept[-1][0]} have inputs of different shapes: {exc}"
        ) from None
