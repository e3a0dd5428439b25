"""Online evaluation: score labelled instances with a served version, compute, record and answer.

Protocol-neutral orchestration beside ``service.inference`` (no Flask). JSON bodies (TF Serving
style or V2 tensors) and streamed NDJSON are decoded by ``service.protocol``; a stream runs through
the servable a chunk at a time, keeping only per-row labels and scores. Figures come from
``service.evaluation``, go to the ``serving_model_evaluation`` gauges and to the history.

The answer (and the history record, without ROC curve points)::

    {"model": "digits", "version": "1", "dataset": "holdout", "task": "classification",
     "sample_count": 1500, "duration_seconds": 0.41, "metrics": {"accuracy": 0.97, ...}}
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, BinaryIO

import numpy as np

from service import metrics
from service.errors import InvalidInput, NotFound, PayloadTooLarge
from service.evaluation import figures, wire
from service.evaluation.datasets import DatasetLabels
from service.evaluation.history import History
from service.evaluation.labels import Accumulator, encode_labels
from service.evaluation.options import Options, class_names, measure, parse_options, query_options, scores_of
from service.inference import ModelRef
from service.metrics import RequestRecord
from service.models.card import ModelCard
from service.models.registry import Registry
from service.models.servable import Servable
from service.protocol.numbers import parse_count
from service.protocol.tensors import Limits, check_tensor_bytes, tensor_bytes

HISTORY_LIMIT, MAX_HISTORY_LIMIT = 100, 10_000


@dataclass(frozen=True)
class StreamLimits:
    """Bounds of a streamed (NDJSON) evaluation: rows in all, bytes per line, rows per model call."""

    max_rows: int
    max_line_bytes: int
    chunk_rows: int = 512


class Evaluator:
    def __init__(
        self,
        registry: Registry,
        history: History,
        limits: Limits,
        timeout: float,
        stream: StreamLimits,
        datasets: DatasetLabels,
    ) -> None:
        self.registry = registry
        self.history_store = history
        self.datasets = datasets
        self.limits = limits
        self.timeout = timeout
        self.stream = stream

    def evaluate(
        self, ref: ModelRef, body: bytes, header_length: int | None, dialect: str, record: RequestRecord
    ) -> dict[str, Any]:
        """A JSON (or V2 binary) body: ``dialect`` is ``"tfserving"`` or ``"v2"``."""

        def work(servable: Servable, card: ModelCard, started: float) -> dict[str, Any]:
            if dialect == "v2":
                request = wire.decode_v2(body, header_length, card.inputs, self.limits)
            else:
                request = wire.decode_tfserving(body, card.inputs, self.limits)
            options = parse_options(request.options, card)
            count = len(next(iter(request.inputs.values())))
            labels = encode_labels(request.labels, card.task, class_names(card), count)
            scores = self._scores(servable, card, request.inputs, record)
            return self._finish(servable, card, options, labels, scores, started)

        return self._acquired(ref, record, work)

    def evaluate_stream(
        self, ref: ModelRef, stream: BinaryIO, query: Mapping[str, str], record: RequestRecord
    ) -> dict[str, Any]:
        """An NDJSON body, read and scored a chunk at a time; options come from the query string."""

        def work(servable: Servable, card: ModelCard, started: float) -> dict[str, Any]:
            options = parse_options(query_options(query), card)
            gathered = Accumulator()
            rows = min(self.stream.chunk_rows, self.limits.max_instances)
            for chunk in wire.chunks(stream, card.inputs, self.limits, rows, self.stream.max_line_bytes):
                if gathered.count + len(chunk.lines) > self.stream.max_rows:
                    raise PayloadTooLarge(f"The stream holds more than {self.stream.max_rows} rows.")
                where = _on_line(chunk.lines)
                labels = encode_labels(chunk.labels, card.task, class_names(card), len(chunk.lines), where)
                gathered.add(labels, self._scores(servable, card, chunk.inputs, record))
            return self._finish(servable, card, options, *gathered.arrays(), started)

        return self._acquired(ref, record, work)

    def history(self, ref: ModelRef, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """``GET .../evaluations``: recorded evaluations, newest first (``version``, ``dataset``, ``limit``)."""
        unknown = sorted(set(query) - {"version", "dataset", "limit"})
        if unknown:
            raise InvalidInput(f"Unknown query parameter(s) {unknown}; expected version, dataset, limit.")
        version = str(ref.version) if ref.version is not None else query.get("version")
        if ref.label is not None:
            version = str(self.registry.status(ref.name, label=ref.label)[0].version)
        if not self.history_store.exists(ref.name) and ref.name not in self.registry.model_names():
            raise NotFound(f"Model {ref.name!r} is not served here and has no evaluation history.")
        return self.history_store.read(ref.name, version, query.get("dataset"), _limit(query.get("limit")))

    def _acquired(
        self,
        ref: ModelRef,
        record: RequestRecord,
        work: Callable[[Servable, ModelCard, float], dict[str, Any]],
    ) -> dict[str, Any]:
        started = time.perf_counter()
        with self.registry.acquire(ref.name, ref.version, ref.label) as servable:
            record.model, record.version = ref.name, str(servable.version)
            assert servable.card is not None  # AVAILABLE servables always carry their card
            return work(servable, servable.card, started)

    def _scores(
        self, servable: Servable, card: ModelCard, inputs: dict[str, np.ndarray], record: RequestRecord
    ) -> np.ndarray:
        record.instances += len(next(iter(inputs.values())))
        check_tensor_bytes(tensor_bytes(inputs), self.limits)
        return scores_of(servable.predict(inputs, timeout=self.timeout), card)

    def _finish(
        self,
        servable: Servable,
        card: ModelCard,
        options: Options,
        labels: np.ndarray,
        scores: np.ndarray,
        started: float,
    ) -> dict[str, Any]:
        computed = measure(card, labels, scores, options)
        _check_finite(computed, card)
        result = {
            "model": card.name,
            "version": str(servable.version),
            "dataset": options.dataset,
            "task": card.task,
            "sample_count": len(labels),
            "duration_seconds": round(time.perf_counter() - started, 6),
            "metrics": computed,
        }
        gauges = {**figures.scalars(computed), "sample_count": float(len(labels))}
        label = self.datasets.label(card.name, options.dataset)
        metrics.record_evaluation(card.name, servable.version, label, gauges)
        entry = {**result, "metrics": {k: v for k, v in computed.items() if k != "roc_curve"}}
        self.history_store.append(card.name, {"evaluated_at": _now(), **entry})
        return result


def _check_finite(computed: Mapping[str, Any], card: ModelCard) -> None:
    """Refuse figures that overflowed (labels or scores near 1e308): nothing is recorded or stored."""
    bad = {
        name: value
        for name, value in figures.scalars(computed).items()
        if value is not None and not math.isfinite(value)
    }
    if bad:
        shown = ", ".join(f"{name}={value}" for name, value in bad.items())
        raise InvalidInput(
            f"The evaluation of {card.name!r} gives non-finite figures ({shown}): labels or predictions "
            "are too large to compute with. Nothing was recorded."
        )


def _on_line(lines: list[int]) -> Callable[[int], str]:
    return lambda i: f"on line {lines[i]}"


def _limit(raw: str | None) -> int:
    if raw is None:
        return HISTORY_LIMIT
    limit = parse_count(raw)
    if limit is None or not 1 <= limit <= MAX_HISTORY_LIMIT:
        raise InvalidInput(f"'limit' must be an integer from 1 to {MAX_HISTORY_LIMIT}; got {raw[:40]!r}.")
    return limit


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
