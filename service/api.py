"""Thin Flask routes for TF Serving REST v1 and the Open Inference Protocol, and the JSON error handlers."""

from __future__ import annotations

import io
import logging
import time
from typing import Any, BinaryIO

import orjson
from flask import Blueprint, Flask, Response, current_app, g, request, send_file
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import LimitedStream

from service import console, metrics, routes
from service.errors import (
    MethodNotAllowed,
    NotFound,
    ServiceError,
)
from service.evaluating import Evaluator
from service.inference import Inference, ModelRef, Trace
from service.protocol import v2
from service.registry import Registry
from service.routes import BINARY_TYPES, JSON_TYPES, NDJSON_TYPES, TFS_PATH, TFS_VERBS, parse_version

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__)

SERVER_NAME = "model-serving"
SERVER_VERSION = "0.1.0"
V2_EXTENSIONS = ["binary_tensor_data", "classification", "model_repository", "evaluation"]


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), status, mimetype="application/json")


def _inference() -> Inference:
    return current_app.extensions["inference"]


def _registry() -> Registry:
    return current_app.extensions["registry"]


def _body(allowed: frozenset[str]) -> bytes:
    routes.check_media_type(request.mimetype, allowed)
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
            raise routes.too_large(limit)
    return b"".join(parts)


def _track(protocol: str, endpoint: str) -> Trace:
    g.trace, g.protocol, g.endpoint = Trace(), protocol, endpoint
    metrics.IN_FLIGHT.labels(protocol).inc()  # undone in _untrack, which Flask always calls
    return g.trace


def _untrack(exc: BaseException | None) -> None:
    if g.get("trace") is not None:
        metrics.IN_FLIGHT.labels(g.protocol).dec()


# ---- TF Serving REST v1 ------------------------------------------------------------------------
@bp.route("/v1/models/<path:rest>", methods=["GET", "POST"])
def tfs_dispatch(rest: str) -> Response:
    match = TFS_PATH.match(rest)
    if match is None:
        raise NotFound(f"No TF Serving route matches /v1/models/{rest}.")
    name, verb, resource = match["name"], match["verb"], match["resource"]
    ref = ModelRef(name, parse_version(match["version"], name), match["label"])
    if verb is not None:
        if verb not in TFS_VERBS:
            raise NotFound(f"Unknown method ':{verb}'; use :predict, :classify, :regress or :evaluate.")
        if request.method != "POST":
            raise MethodNotAllowed(f":{verb} takes POST, not {request.method}.")
        trace = _track("tfserving", verb)
        if verb == "evaluate":
            return _evaluate(ref, "tfserving", trace)
        payload, headers = _inference().answer(f"tfs_{verb}", ref, _body(JSON_TYPES), None, trace)
        return Response(payload, 200, headers=headers)
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
    ref = ModelRef(name, parse_version(version, name))
    return json_response(_inference().v2_metadata(ref, _track("v2", "metadata")))


@bp.get("/v2/models/<name>/ready")
@bp.get("/v2/models/<name>/versions/<version>/ready")
def v2_model_ready(name: str, version: str | None = None) -> Response:
    ready = _inference().v2_ready(ModelRef(name, parse_version(version, name)))
    doc = {"name": name, "ready": ready}
    if version is not None:
        doc["version"] = version
    return json_response(doc, 200 if ready else 503)


@bp.post("/v2/models/<name>/infer")
@bp.post("/v2/models/<name>/versions/<version>/infer")
def v2_infer(name: str, version: str | None = None) -> Response:
    ref = ModelRef(name, parse_version(version, name))
    trace = _track("v2", "infer")
    header_length = _header_length()
    payload, headers = _inference().answer("v2_infer", ref, _body(BINARY_TYPES), header_length, trace)
    return Response(payload, 200, headers=headers)


def _header_length() -> int | None:
    return routes.parse_header_length(request.headers.get(routes.BINARY_HEADER))


@bp.post("/v2/models/<name>/evaluate")
@bp.post("/v2/models/<name>/versions/<version>/evaluate")
def v2_evaluate(name: str, version: str | None = None) -> Response:
    return _evaluate(ModelRef(name, parse_version(version, name)), "v2", _track("v2", "evaluate"))


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


# ---- model cards and the browser console (read-only) -------------------------------------------
# POST is listed only so that it gets TF Serving's 405 here rather than the catch-all's 404.
@bp.route("/v1/models/<name>/card", methods=["GET", "POST"])
@bp.route("/v1/models/<name>/versions/<version>/card", methods=["GET", "POST"])
@bp.route("/v1/models/<name>/labels/<label>/card", methods=["GET", "POST"])
def model_card(name: str, version: str | None = None, label: str | None = None) -> Response:
    _read_only()
    return json_response(_inference().card_document(ModelRef(name, parse_version(version, name), label)))


@bp.route("/v1/models/<name>/card/training_curves.png", methods=["GET", "POST"])
@bp.route("/v1/models/<name>/versions/<version>/card/training_curves.png", methods=["GET", "POST"])
@bp.route("/v1/models/<name>/labels/<label>/card/training_curves.png", methods=["GET", "POST"])
def training_curves(name: str, version: str | None = None, label: str | None = None) -> Response:
    _read_only()
    path = _inference().training_curves(ModelRef(name, parse_version(version, name), label))
    response = send_file(path, mimetype="image/png", max_age=0)  # answers If-None-Match itself
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _read_only() -> None:
    if request.method not in ("GET", "HEAD"):
        raise MethodNotAllowed(f"{request.path} takes GET, not {request.method}.")


@bp.get("/")
def console_index() -> Response:
    return _console_file("index.html")


@bp.get("/console/<path:filename>")
def console_file(filename: str) -> Response:
    return _console_file(filename)


def _console_file(filename: str) -> Response:
    # A lookup in what was read at start-up: no path is ever built from the URL, so no traversal.
    asset = current_app.extensions["console"].get(filename)
    if asset is None:
        raise NotFound(f"The console has no file {filename!r}.")
    response = Response(asset.body, 200, content_type=asset.content_type, headers=console.HEADERS)
    response.set_etag(asset.etag)
    response.make_conditional(request)  # in place: a 304 when the browser's copy is current
    return response


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
    app.teardown_request(_untrack)
