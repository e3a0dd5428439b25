"""Typed service settings, read once from the environment at start-up and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

MIB = 1024 * 1024


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    model_repository: Path = Path("models")
    # Version policies, labels and batching per model; default: <repository>/serving.yaml if present.
    model_config: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8501
    # The gRPC front door (TF Serving's and the V2 services) in the same workers; 0 turns it off.
    grpc_port: int = 8500
    workers: int = 2
    threads: int = 16
    # TensorFlow's own thread pools per worker; workers x intra-op threads should fit the cores.
    tf_intra_op_threads: int = 0  # 0: cores // workers, at least 1
    tf_inter_op_threads: int = 1
    poll_interval: float = 1.0
    max_body_bytes: int = 64 * MIB
    max_instances: int = 65536
    allow_nonfinite: bool = False
    batching: bool = True
    # Rows per signature call. 1,024 lets a large request run as one call instead of four chunks;
    # the MNIST MLP takes ~2 ms for 1,024 rows on one core (docs/benchmarks.md).
    max_batch_size: int = 1024
    batch_timeout: float = 0.002
    max_queue: int = 8192
    request_timeout: float = 30.0
    # Slow clients: seconds to send a request's headers (from connecting, or from the previous
    # response on a kept-alive connection), seconds spent waiting for its body (in total, so a
    # trickled body ends too), and seconds an idle kept-alive connection stays open.
    header_timeout: float = 10.0
    body_timeout: float = 15.0
    keepalive_timeout: int = 5  # whole seconds (gunicorn's keepalive)
    # Memory per worker: request bodies held at once (past it: 503 + Retry-After), and the decoded
    # tensors of one request (past it: 413). docs/reliability.md has the measurements behind them.
    max_inflight_bytes: int = 120 * MIB
    max_tensor_bytes: int = 128 * MIB
    # TensorFlow's working memory for one signature call; rows per call are capped to fit.
    max_call_bytes: int = 64 * MIB
    # Streamed (NDJSON) :evaluate bodies: bounded per line and in rows instead of max_body_bytes.
    max_evaluation_rows: int = 1_000_000
    max_line_bytes: int = 1 * MIB
    data_dir: Path = Path("var")
    # Bounded state: dataset label values per model in /metrics (later names share "_other"), and
    # the evaluation history per model (rotated past this size, the newest kept).
    max_datasets: int = 20
    max_history_bytes: int = 16 * MIB
    # Where gunicorn's workers share their Prometheus samples; made at start when not given.
    metrics_dir: Path | None = None
    log_level: str = "info"
    access_log: str | None = None  # gunicorn's accesslog: a file, or "-" for stdout
    log_format: str = "text"  # "json": app, gunicorn and access logs as one JSON object per line
    # OpenTelemetry: off unless an exporter is named; the SDK reads the other OTEL_* variables.
    traces_exporter: str = "none"
    otel_service_name: str = "model-serving"
    # Seconds between refreshes of the live-quality, drift and shadow gauges (service.quality).
    quality_interval: float = 10.0
    mnist_dir: Path | None = None  # labelled MNIST data (IDX folder or mnist.npz) for training
    # Security. No token file: every route is open (for loopback use). The file is re-read when it
    # changes; a path whose file does not exist yet means closed until it appears.
    auth_tokens_file: Path | None = None
    rate_limit: str | None = None  # e.g. "200/s,burst=400", per token (or client address when open)
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call cross-origin ("*": any)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    model_control: str = "poll"
    # Readiness waits for every model with versions on disk (true), or only for those named in
    # serving.yaml or that have served (false): one broken export does not take a pod out.
    strict_readiness: bool = False  # Triton's names: "poll" the repository, or "explicit" (API loads)

    @property
    def model_config_path(self) -> Path | None:
        if self.model_config is not None:
            return self.model_config
        default = self.model_repository / "serving.yaml"
        return default if default.exists() else None

    @property
    def intra_op_threads(self) -> int:
        if self.tf_intra_op_threads > 0:
            return self.tf_intra_op_threads
        return max(1, (os.cpu_count() or 1) // max(1, self.workers))


# Environment variable -> Settings field. Kept explicit so the README can list them.
ENV = {
    "MODEL_REPOSITORY": "model_repository",
    "MODEL_CONFIG": "model_config",
    "HOST": "host",
    "PORT": "port",
    "GRPC_PORT": "grpc_port",
    "WORKERS": "workers",
    "THREADS": "threads",
    "TF_INTRA_OP_THREADS": "tf_intra_op_threads",
    "TF_INTER_OP_THREADS": "tf_inter_op_threads",
    "POLL_INTERVAL": "poll_interval",
    "MAX_BODY_BYTES": "max_body_bytes",
    "MAX_INSTANCES": "max_instances",
    "ALLOW_NONFINITE": "allow_nonfinite",
    "BATCHING": "batching",
    "MAX_BATCH_SIZE": "max_batch_size",
    "BATCH_TIMEOUT": "batch_timeout",
    "MAX_QUEUE": "max_queue",
    "REQUEST_TIMEOUT": "request_timeout",
    "HEADER_TIMEOUT": "header_timeout",
    "BODY_TIMEOUT": "body_timeout",
    "KEEPALIVE_TIMEOUT": "keepalive_timeout",
    "MAX_INFLIGHT_BYTES": "max_inflight_bytes",
    "MAX_TENSOR_BYTES": "max_tensor_bytes",
    "MAX_CALL_BYTES": "max_call_bytes",
    "MAX_EVALUATION_ROWS": "max_evaluation_rows",
    "MAX_LINE_BYTES": "max_line_bytes",
    "DATA_DIR": "data_dir",
    "MAX_DATASETS": "max_datasets",
    "MAX_HISTORY_BYTES": "max_history_bytes",
    "PROMETHEUS_MULTIPROC_DIR": "metrics_dir",
    "LOG_LEVEL": "log_level",
    "ACCESS_LOG": "access_log",
    "LOG_FORMAT": "log_format",
    "OTEL_TRACES_EXPORTER": "traces_exporter",
    "OTEL_SERVICE_NAME": "otel_service_name",
    "QUALITY_INTERVAL": "quality_interval",
    "MNIST_DIR": "mnist_dir",
    "AUTH_TOKENS_FILE": "auth_tokens_file",
    "RATE_LIMIT": "rate_limit",
    "CORS_ORIGINS": "cors_origins",
    "TLS_CERT": "tls_cert",
    "TLS_KEY": "tls_key",
    "MODEL_CONTROL": "model_control",
    "STRICT_READINESS": "strict_readiness",
}
PATHS = (
    "model_repository",
    "data_dir",
    "model_config",
    "metrics_dir",
    "mnist_dir",
    "auth_tokens_file",
    "tls_cert",
    "tls_key",
)
MODEL_CONTROL = ("poll", "explicit")
LOG_FORMATS = ("text", "json")
TRACES_EXPORTERS = ("none", "otlp", "console")  # service.tracing.EXPORTERS, without importing it
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(name: str, raw: str, kind: str) -> object:
    try:
        if kind in ("int",):
            value: object = int(raw)
        elif kind == "float":
            value = float(raw)
        elif kind == "bool":
            if raw.lower() not in _TRUE | _FALSE:
                raise ValueError(raw)
            value = raw.lower() in _TRUE
        elif "Path" in kind:
            value = Path(raw) if raw else None
        elif kind.startswith("tuple"):
            value = tuple(item.strip() for item in raw.split(",") if item.strip())
        else:
            value = raw
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r} is not a valid {kind.split()[0]}.") from exc
    return value


def _check(settings: Settings) -> Settings:
    positive = (
        "port",
        "workers",
        "threads",
        "max_body_bytes",
        "max_instances",
        "max_batch_size",
        "max_queue",
        "max_evaluation_rows",
        "max_line_bytes",
        "max_inflight_bytes",
        "max_tensor_bytes",
        "max_call_bytes",
        "max_datasets",
        "max_history_bytes",
    )
    for name in positive:
        if getattr(settings, name) <= 0:
            raise SettingsError(f"{name} must be positive; got {getattr(settings, name)}.")
    seconds = ("poll_interval", "request_timeout", "header_timeout", "body_timeout", "keepalive_timeout")
    for name in (*seconds, "quality_interval"):
        if getattr(settings, name) <= 0:
            raise SettingsError(f"{name} must be a positive number of seconds.")
    if not 0 <= settings.grpc_port <= 65535 or settings.grpc_port == settings.port:
        raise SettingsError(
            f"GRPC_PORT must be 0 (off) or a port from 1 to 65535 other than PORT; got {settings.grpc_port}."
        )
    if settings.batch_timeout < 0:
        raise SettingsError("batch_timeout must be >= 0 seconds.")
    if settings.rate_limit is not None:
        from service.auth.ratelimit import RateLimiter, RateLimitError

        try:
            RateLimiter.parse(settings.rate_limit)
        except RateLimitError as exc:
            raise SettingsError(f"RATE_LIMIT: {exc}") from None
    if settings.model_control not in MODEL_CONTROL:
        raise SettingsError(
            f"MODEL_CONTROL must be one of {', '.join(MODEL_CONTROL)}; got {settings.model_control!r}."
        )
    if settings.log_format not in LOG_FORMATS:
        raise SettingsError(f"LOG_FORMAT must be text or json; got {settings.log_format!r}.")
    if settings.traces_exporter not in TRACES_EXPORTERS:
        raise SettingsError(
            f"OTEL_TRACES_EXPORTER must be one of {', '.join(TRACES_EXPORTERS)}; got {settings.traces_exporter!r}."
        )
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise SettingsError("TLS_CERT and TLS_KEY go together: give both (HTTPS) or neither (HTTP).")
    for name in ("tls_cert", "tls_key"):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            raise SettingsError(f"{name.upper()}={path} is not a readable file.")
    return settings


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build Settings from ``environ`` (default: os.environ) and explicit overrides."""
    environ = os.environ if environ is None else environ
    kinds = {f.name: str(f.type) for f in fields(Settings)}
    values: dict[str, object] = {}
    for var, attr in ENV.items():
        if environ.get(var) not in (None, ""):
            values[attr] = _convert(var, environ[var], kinds[attr])
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in PATHS:
        if isinstance(values.get(key), str):
            values[key] = Path(str(values[key]))
    return _check(Settings(**values))  # type: ignore[arg-type]


def quiet_tensorflow() -> None:
    """Keep TensorFlow's C++ start-up banner out of the logs unless TF_CPP_MIN_LOG_LEVEL says otherwise.

    TensorFlow reads the variable itself when it is first imported, so call this before that.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
