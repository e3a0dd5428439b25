"""Prometheus objects and the /metrics renderer.

Under gunicorn every worker writes its samples to ``Settings.metrics_dir`` (exported as
``PROMETHEUS_MULTIPROC_DIR`` by :mod:`service.http.server` before any worker starts, so
prometheus_client picks multiprocess values at import) and the renderer aggregates all workers;
dead workers' files are removed by the gunicorn ``child_exit`` hook. Without a metrics folder
(tests, the app in-process) the default in-process registry is used.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from service.models.servable import STATES

# Sub-millisecond signature calls up to multi-second evaluations of large sets.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
    0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536)
LOAD_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)

REQUESTS = Counter(
    "serving_requests_total",
    "HTTP requests by model, version, protocol, endpoint and status code.",
    ["model", "version", "protocol", "endpoint", "code"],
)
REQUEST_LATENCY = Histogram(
    "serving_request_duration_seconds",
    "Wall time from request received to response ready, errors included.",
    ["model", "protocol", "endpoint", "code"],
    buckets=LATENCY_BUCKETS,
)
INFERENCE_LATENCY = Histogram(
    "serving_inference_duration_seconds",
    "Time spent in the model's signature call, per (micro-)batch.",
    ["model", "version"],
    buckets=LATENCY_BUCKETS,
)
BATCH_SIZE = Histogram(
    "serving_batch_size",
    "Instances per signature call after micro-batching.",
    ["model", "version"],
    buckets=SIZE_BUCKETS,
)
REQUEST_INSTANCES = Histogram(
    "serving_request_instances",
    "Instances per inference request.",
    ["model", "endpoint"],
    buckets=SIZE_BUCKETS,
)
IN_FLIGHT = Gauge(
    "serving_in_flight_requests",
    "Requests being processed now.",
    ["protocol"],
    multiprocess_mode="livesum",
)
RATE_LIMITED = Counter(
    "serving_rate_limited_total",
    "Requests refused with 429 by the per-caller rate limit, by token name ('-': by client address).",
    ["token"],
)
LOAD_ATTEMPTS = Counter(
    "serving_model_load_attempts_total",
    "Model version load attempts by result.",
    ["model", "version", "result"],
)
LOAD_DURATION = Histogram(
    "serving_model_load_duration_seconds",
    "Time to load, check and warm up a model version.",
    ["model"],
    buckets=LOAD_BUCKETS,
)
VERSION_STATE = Gauge(
    "serving_model_version_state",
    "1 for the state a model version is in (START, LOADING, AVAILABLE, UNLOADING, END), else 0.",
    ["model", "version", "state"],
    multiprocess_mode="livemax",
)
MODELS_UNAVAILABLE = Gauge(
    "serving_models_unavailable",
    "Models in the repository or serving.yaml without an AVAILABLE version (a broken or card-less "
    "export that failed to load, say); alert when above 0 for a few minutes.",
    multiprocess_mode="livemax",
)
VERSION_DAMAGED = Gauge(
    "serving_model_version_damaged",
    "1 while a live version's files on disk no longer load (it keeps serving the copy it loaded).",
    ["model", "version"],
    multiprocess_mode="livemax",
)
EVALUATION = Gauge(
    "serving_model_evaluation",
    "Latest figure of an evaluation (accuracy, roc_auc, r2, ...) by model, version and dataset.",
    ["model", "version", "dataset", "metric"],
    multiprocess_mode="mostrecent",
)
QUEUE_WAIT = Histogram(
    "serving_batch_queue_wait_seconds",
    "Time a request (or chunk) waited in its model version's batch queue before its batch ran.",
    ["model", "version"],
    buckets=LATENCY_BUCKETS,
)
QUEUE_DEPTH = Gauge(
    "serving_batch_queue_depth",
    "Requests left waiting in the batch queue when a batch starts (summed over workers).",
    ["model", "version"],
    multiprocess_mode="livesum",
)
# ---- quality in production (service.quality); every worker computes the same figures from the
# shared prediction store, so the most recent write is the value.
LIVE_QUALITY = Gauge(
    "serving_model_live_quality",
    "A figure (accuracy, roc_auc, log_loss, ece, mae, rmse...) over the live feedback window.",
    ["model", "version", "metric"],
    multiprocess_mode="mostrecent",
)
LIVE_SAMPLES = Gauge(
    "serving_model_live_samples",
    "Remembered predictions of a version (kind=predicted) and those with a label fed back (labelled).",
    ["model", "version", "kind"],
    multiprocess_mode="mostrecent",
)
DRIFT_PSI = Gauge(
    "serving_model_drift_psi",
    "Population stability index of a prediction signal on live traffic vs the held-out reference.",
    ["model", "version", "signal"],
    multiprocess_mode="mostrecent",
)
GATE_PASSED = Gauge(
    "serving_model_gate_passed",
    "1 if a version passed its rollout gate, 0 if it failed.",
    ["model", "version"],
    multiprocess_mode="mostrecent",
)
SHADOW_REQUESTS = Counter(
    "serving_shadow_requests_total",
    "Live requests also run on a candidate version, by outcome (agree, disagree, error, skipped).",
    ["model", "version", "candidate", "result"],
)
SHADOW_AGREEMENT = Gauge(
    "serving_shadow_agreement_ratio",
    "Share of shadowed instances where the candidate's answer matched the live version's.",
    ["model", "version", "candidate"],
    multiprocess_mode="mostrecent",
)
WORKER_RSS = Gauge(
    "serving_worker_resident_memory_bytes",
    "Resident memory of each worker process (the standard process collector is unavailable "
    "in multiprocess mode).",
    multiprocess_mode="liveall",
)
WORKER_CPU = Gauge(
    "serving_worker_cpu_seconds",
    "User + system CPU seconds used by each worker process.",
    multiprocess_mode="liveall",
)
WORKER_START = Gauge(
    "serving_worker_start_time_seconds",
    "Unix time each worker process started.",
    multiprocess_mode="liveall",
)


def record_load(model: str, version: int, result: str, seconds: float) -> None:
    LOAD_ATTEMPTS.labels(model, str(version), result).inc()
    LOAD_DURATION.labels(model).observe(seconds)


def set_state(model: str, version: int, state: str) -> None:
    for candidate in STATES:
        VERSION_STATE.labels(model, str(version), candidate).set(1 if candidate == state else 0)


def set_damaged(model: str, version: int, damaged: bool) -> None:
    VERSION_DAMAGED.labels(model, str(version)).set(1 if damaged else 0)


def observe_batch(model: str, version: int, size: int, seconds: float) -> None:
    BATCH_SIZE.labels(model, str(version)).observe(size)
    INFERENCE_LATENCY.labels(model, str(version)).observe(seconds)


def queue_reporters(
    model: str, version: int
) -> tuple[Callable[[Sequence[float]], None], Callable[[int], None]]:
    """The batcher's ``on_wait`` and ``on_depth`` for one model version (label children bound once)."""
    wait, depth = QUEUE_WAIT.labels(model, str(version)), QUEUE_DEPTH.labels(model, str(version))

    def on_wait(seconds: Sequence[float]) -> None:
        for value in seconds:
            wait.observe(value)

    return on_wait, depth.set


def record_evaluation(model: str, version: int, dataset: str, figures: dict[str, float | None]) -> None:
    for metric, value in figures.items():
        if value is not None:
            EVALUATION.labels(model, str(version), dataset, metric).set(value)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def update_process_metrics() -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    WORKER_RSS.set(_rss_bytes())
    WORKER_CPU.set(usage.ru_utime + usage.ru_stime)


def worker_started() -> None:
    WORKER_START.set(time.time())
    update_process_metrics()


class RequestRecord:
    """One metered request: in flight from creation until :meth:`finish`; its handler fills in what
    it was about (only names the registry resolved become labels, so random 404s add no series)."""

    __slots__ = (
        "_open",
        "_started",
        "batch_finished",
        "batch_rows",
        "batch_started",
        "decoded",
        "encoded",
        "endpoint",
        "instances",
        "model",
        "observed",
        "predicted",
        "protocol",
        "resolved",
        "status",
        "version",
    )

    def __init__(self, protocol: str, endpoint: str) -> None:
        self.protocol, self.endpoint = protocol, endpoint
        self.model, self.version, self.instances, self.status = "", "", 0, 0
        self._started, self._open = time.perf_counter(), True
        # Stage marks (perf_counter seconds, 0.0 until reached) for traces and the access log:
        # version resolved, body decoded, batch started and finished, outputs back, answer encoded.
        self.resolved = self.decoded = self.batch_started = self.batch_finished = 0.0
        self.predicted = self.encoded = 0.0
        self.batch_rows = 0  # rows of the signature call this request ran in (after micro-batching)
        self.observed: Any = None  # what service.quality keeps of a watched model's request
        IN_FLIGHT.labels(protocol).inc()

    @staticmethod
    def refused(protocol: str, endpoint: str, code: int) -> None:
        """Count a request the guard turned away (401, 403, 429...): no model was resolved, nothing ran."""
        REQUESTS.labels("", "", protocol, endpoint, str(code)).inc()

    @property
    def started(self) -> float:
        return self._started

    def finish(self, code: int) -> None:
        """Count the request with its status; the first call wins (a lane may reach it twice)."""
        if not self._open:
            return
        self._open, self.status = False, code
        IN_FLIGHT.labels(self.protocol).dec()
        seconds = time.perf_counter() - self._started
        REQUESTS.labels(self.model, self.version, self.protocol, self.endpoint, str(code)).inc()
        REQUEST_LATENCY.labels(self.model, self.protocol, self.endpoint, str(code)).observe(seconds)
        if self.instances:
            REQUEST_INSTANCES.labels(self.model, self.endpoint).observe(self.instances)


def render(multiprocess_dir: Path | None) -> tuple[bytes, str]:
    """The exposition text for every worker (gunicorn: samples in ``multiprocess_dir``) or this process."""
    if multiprocess_dir is not None:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=str(multiprocess_dir))
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
