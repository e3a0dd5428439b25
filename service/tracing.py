"""OpenTelemetry traces of model-running requests: off unless ``OTEL_TRACES_EXPORTER`` names an exporter.

A request notes when each stage ended (:class:`~service.metrics.RequestRecord`'s marks) and, once
it is answered, :meth:`Tracer.request` turns those marks into a server span with one child per
stage: ``decode``, ``queue wait``, ``model call`` and ``encode``. Spans are made after the fact
with explicit times, so a request pays nothing for tracing while it is being served, and nothing
at all when tracing is off (the SDK is not even imported). A W3C ``traceparent`` header makes the
request's span a child of the caller's.

The SDK reads the standard variables itself: ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_TRACES_SAMPLER`` and
``OTEL_TRACES_SAMPLER_ARG``, ``OTEL_BSP_*`` (batching of exports), ``OTEL_RESOURCE_ATTRIBUTES``.
The exporter is OTLP over HTTP/protobuf (``otlp``), or ``console`` (spans printed, for debugging).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from service.metrics import RequestRecord

log = logging.getLogger(__name__)

EXPORTERS = ("none", "otlp", "console")
STAGES = (
    ("decode", "resolved", "decoded"),
    ("queue wait", "decoded", "batch_started"),
    ("model call", "batch_started", "batch_finished"),
    ("encode", "predicted", "encoded"),
)


class Tracer:
    """Spans of answered requests, exported in the background by the SDK's batch processor."""

    def __init__(self, exporter: str, service_name: str) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
        from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        if exporter == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            span_exporter: Any = OTLPSpanExporter()
        else:
            span_exporter = ConsoleSpanExporter()
        # Made in the worker after fork: the processor's export thread belongs to this process.
        self._provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        self._provider.add_span_processor(BatchSpanProcessor(span_exporter))
        self._tracer = self._provider.get_tracer("service.tracing")
        self._propagator = TraceContextTextMapPropagator()
        self._in_context, self._server = set_span_in_context, SpanKind.SERVER
        self._error = Status(StatusCode.ERROR)

    def request(
        self, name: str, traceparent: str | None, record: RequestRecord, request_id: str, status: int
    ) -> None:
        """Export the spans of one answered request from its marks."""
        now_ns, mono_ns, perf_ns = time.time_ns(), time.monotonic_ns(), time.perf_counter_ns()

        def epoch(mark: float, clock_ns: int) -> int:  # a clock reading -> Unix nanoseconds
            return now_ns - (clock_ns - int(mark * 1e9))

        parent = self._propagator.extract({"traceparent": traceparent}) if traceparent else None
        root = self._tracer.start_span(
            name,
            context=parent,
            kind=self._server,
            start_time=epoch(record.started, perf_ns),
            attributes=_attributes(record, request_id, status),
        )
        if not root.is_recording():  # not sampled: its children would not be either
            return
        inside = self._in_context(root)
        for stage, begin, end in STAGES:
            first, last = getattr(record, begin), getattr(record, end)
            if first and last >= first:  # a request that failed early has no later stages
                span = self._tracer.start_span(stage, context=inside, start_time=epoch(first, mono_ns))
                span.end(end_time=epoch(last, mono_ns))
        if status >= 500:
            root.set_status(self._error)
        root.end(end_time=now_ns)

    def close(self) -> None:
        """Export what is still buffered (bounded by the SDK's export timeout)."""
        self._provider.shutdown()


def _attributes(record: RequestRecord, request_id: str, status: int) -> dict[str, Any]:
    return {
        "http.response.status_code": status,
        "request.id": request_id,
        "model.name": record.model,
        "model.version": record.version,
        "request.instances": record.instances,
        "batch.size": record.batch_rows,
    }


def build_tracer(exporter: str, service_name: str) -> Tracer | None:
    """A tracer for ``OTEL_TRACES_EXPORTER`` (None when it is "none", the default)."""
    if exporter == "none":
        return None
    log.info("Tracing on: spans of inference requests go to the %s exporter", exporter)
    return Tracer(exporter, service_name)
