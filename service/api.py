"""Thin Flask routes for TF Serving REST v1 and the Open Inference Protocol, and the JSON error handlers."""

from __future__ import annotations

import io
import logging
import re
import time
from typing import Any, BinaryIO

import orjson
from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import LimitedStream

from service import metrics
from service.errors import (
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    UnsupportedMediaType,
)
from service.evaluating import Evaluator
from service.inference import Inference, ModelRef, Trace
from service.protocol import v2
from service.registry import Registry

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__)

SERVER_NAME = "model-serving"
SERVER_VERSION = "0.1.0"
V2_EXTENSIONS = ["binary_tensor_data", "classification", "model_repository", "evaluation"]
BINARY_HEADER = "Inference-Header-Content-Length"
# curl -d sends form-urlencoded and TF Serving ignores the content type, so its users' habits work.
JSON_TYPES = frozenset({"", "application/json", "application/x-www-form-urlencoded", "text/plain"})
BINARY_TYPES = JSON_TYPES | {"application/octet-stream"}
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})

# TF Serving's URL grammar: /v1/models/{name}[/versions/{v}|/labels/{l}][:verb|/metadata|/evaluations]
_TFS_PATH = re.compile(
    r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?::(?P<verb>[A-Za-z]+)|/(?P<resource>metadata|evaluations))?$"
)
TFS_VERBS = ("predict", "classify", "regress", "evaluate")


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), status, mimetype="application/json")


def _inference() -> Inference:
    return current_app.extensions["inference"]


def _registry() -> Registry:
    return current_app.extensions["registry"]


def _body(allowed: frozenset[str]) -> bytes:
    if request.mimetype not in allowed:
        raise UnsupportedMediaType(
            f"Content type {request.mimetype!r} is not supported here; send application/json."
        )
    if request.content_length is None and request.environ.get("wsgi.input_terminated"):
        return _read_streamed(request.environ["wsgi.input"], current_app.config["MAX_CONTENT_LENGTH"])
    # With a Content-Length, werkzeug answers 413 from MAX_CONTENT_LENGTH before reading anything.
    return request.get_data(cache=False)


def _read_streamed(stream: Any, limit: int) -> bytes:
    """Read a chunked body, refusing it as soon as it passes ``limit`` (werkzeug would truncate it)."""
    parts, size = [], 0
    while chunk := stream.read(min(1 << 20, limit + 1 - size)):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
    return b"".join(parts)


def _version(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit():
        raise NotFound(f"Model {name!r} has no version {raw!r}; versions are positive integers.")
    return int(raw)


def _track(protocol: str, endpoint: str) -> Trace:
    g.trace, g.protocol, g.endpoint = Trace(), protocol, endpoint
    return g.trace


# ---- TF Serving REST v1 ------------------------------------------------------------------------
@bp.route("/v1/models/<path:rest>", methods=["GET", "POST"])
def tfs_dispatch(rest: str) -> Response:
    match = _TFS_PATH.match(rest)
    if match is None:
        raise NotFound(f"No TF Serving route matches /v1/models/{rest}.")
    name, verb, resource = match["name"], match["verb"], match["resource"]
    ref = ModelRef(name, _version(match["version"], name), match["label"])
    if verb is not None:
        if verb not in TFS_VERBS:
            raise NotFound(f"Unknown method ':{verb}'; use :predict, :classify, :regress or :evaluate.")
        if request.method != "POST":
            raise MethodNotAllowed(f":{verb} takes POST, not {request.method}.")
        trace = _track("tfserving", verb)
        if verb == "evaluate":
            return _evaluate(ref, "tfserving", trace)
        body = _body(JSON_TYPES)
        handler = getattr(_inference(), f"tfs_{verb}")
        return Response(handler(ref, body, trace), 200, mimetype="application/json")
    if request.method != "GET":
        raise MethodNotAllowed(f"{request.path} takes GET, not {request.method}.")
    if resource == "metadata":
        return json_response(_inference().tfs_metadata(ref, _track("tfserving", "metadata")))
    if resource == "evaluations":
        return json_response({"evaluations": _evaluator().history(ref, request.args)})
    return json_response(_inference().tfs_status(ref))


# ---- Open Inference Protocol (KServe V2) -------------------------------------------------------
@bp.get("/v2")
def v2_server_metadata() -> Response:
    return json_response(v2.server_metadata(SERVER_NAME, SERVER_VERSION, V2_EXTENSIONS))


@bp.get("/v2/health/live")
@bp.get("/healthz")
def live() -> Response:
    return json_response({"live": True})


@bp.get("/v2/health/ready")
@bp.get("/readyz")
def ready() -> Response:
    waiting = _registry().not_ready()
    if waiting:
        return json_response(
            {"ready": False, "error": f"Waiting for a version of: {', '.join(waiting)} to become AVAILABLE."},
            503,
        )
    return json_response({"ready": True})


@bp.get("/v2/models")
def v2_models() -> Response:
    return json_response({"models": _inference().model_index()})


@bp.post("/v2/repository/index")
def v2_repository_index() -> Response:
    states = {"AVAILABLE": "READY", "END": "UNAVAILABLE"}
    index = [{**e, "state": states.get(e["state"], e["state"])} for e in _inference().model_index()]
    return json_response(index)


@bp.get("/v2/models/<name>")
@bp.get("/v2/models/<name>/versions/<version>")
def v2_model_metadata(name: str, version: str | None = None) -> Response:
    ref = ModelRef(name, _version(version, name))
    return json_response(_inference().v2_metadata(ref, _track("v2", "metadata")))


@bp.get("/v2/models/<name>/ready")
@bp.get("/v2/models/<name>/versions/<version>/ready")
def v2_model_ready(name: str, version: str | None = None) -> Response:
    ready = _inference().v2_ready(ModelRef(name, _version(version, name)))
    doc = {"name": name, "ready": ready}
    if version is not None:
        doc["version"] = version
    return json_response(doc, 200 if ready else 503)


@bp.post("/v2/models/<name>/infer")
@bp.post("/v2/models/<name>/versions/<version>/infer")
def v2_infer(name: str, version: str | None = None) -> Response:
    trace = _track("v2", "infer")
    header_length = _header_length()
    body = _body(BINARY_TYPES)
    payload, headers = _inference().v2_infer(
        ModelRef(name, _version(version, name)), body, header_length, trace
    )
    return Response(payload, 200, headers=headers)


def _header_length() -> int | None:
    header = request.headers.get(BINARY_HEADER)
    header_length = int(header) if header is not None and header.isdigit() else None
    if header is not None and header_length is None:
        raise InvalidInput(f"{BINARY_HEADER} must be a non-negative integer; got {header!r}.")
    return header_length


@bp.post("/v2/models/<name>/evaluate")
@bp.post("/v2/models/<name>/versions/<version>/evaluate")
def v2_evaluate(name: str, version: str | None = None) -> Response:
    return _evaluate(ModelRef(name, _version(version, name)), "v2", _track("v2", "evaluate"))


# ---- evaluation (both dialects) ----------------------------------------------------------------
def _evaluator() -> Evaluator:
    return current_app.extensions["evaluator"]


def _evaluate(ref: ModelRef, dialect: str, trace: Trace) -> Response:
    """A JSON body (size-limited like :predict) or an NDJSON stream (bounded per line instead)."""
    if request.mimetype in NDJSON_TYPES:
        return json_response(_evaluator().evaluate_stream(ref, _input_stream(), request.args, trace))
    header_length = _header_length() if dialect == "v2" else None
    body = _body(BINARY_TYPES if dialect == "v2" else JSON_TYPES)
    return json_response(_evaluator().evaluate(ref, body, header_length, dialect, trace))


def _input_stream() -> BinaryIO:
    """The raw request body as a stream, read as it arrives (chunked or with a Content-Length)."""
    raw = request.environ["wsgi.input"]
    if request.content_length is not None:
        return LimitedStream(raw, request.content_length)  # type: ignore[return-value]
    # Chunked: gunicorn de-chunks and marks the input terminated; otherwise there is no body.
    return raw if request.environ.get("wsgi.input_terminated") else io.BytesIO()


# ---- metrics and errors ------------------------------------------------------------------------
@bp.get("/metrics")
@bp.get("/monitoring/prometheus/metrics")
def prometheus_metrics() -> Response:
    payload, content_type = metrics.render()
    return Response(payload, 200, content_type=content_type)


def _error(message: str, status: int) -> Response:
    return json_response({"error": message}, status)


def handle_service_error(exc: ServiceError) -> Response:
    return _error(exc.message, exc.status)


def handle_http_exception(exc: HTTPException) -> Response:
    messages = {
        404: f"No route for {request.method} {request.path}.",
        405: f"{request.method} is not allowed on {request.path}.",
        413: f"The request body exceeds the limit of {current_app.config['MAX_CONTENT_LENGTH']} bytes.",
    }
    return _error(messages.get(exc.code or 500, exc.description or exc.name), exc.code or 500)


def handle_unexpected(exc: Exception) -> Response:
    log.exception("Unhandled error on %s %s", request.method, request.path)
    return _error(f"Internal error while handling {request.method} {request.path}; see the server log.", 500)


def _start_timer() -> None:
    g.started = time.perf_counter()


def _observe(response: Response) -> Response:
    trace: Trace | None = g.get("trace")
    if trace is not None:
        metrics.observe_request(
            trace.model,
            trace.version,
            g.protocol,
            g.endpoint,
            response.status_code,
            time.perf_counter() - g.started,
            trace.instances,
        )
    return response


def register(app: Flask) -> None:
    app.register_blueprint(bp)
    app.register_error_handler(ServiceError, handle_service_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
    app.before_request(_start_timer)
    app.after_request(_observe)
