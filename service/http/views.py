"""The Flask app: the route table's FLASK lane (metadata, evaluation, model lists, the admin API).

Thin views over :class:`~service.inference.Inference` and :class:`~service.evaluation.evaluator.Evaluator`.
The app is only ever reached through :mod:`service.http.asgi`, which has already matched the route,
so the views are registered from the same table and every error goes through the one renderer.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from flask import Flask, Response, current_app, g, request, send_file
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream

from service.config import Settings
from service.errors import NotFound, ServiceError
from service.evaluation.evaluator import Evaluator
from service.http import admin, apidocs, console, openapi, pages, routes
from service.http.guard import CALLER, HEAD, RECORD, REQUEST_ID, Guard
from service.http.identity import HEADER as REQUEST_ID_HEADER
from service.http.responses import JSON, json_body, render_error
from service.inference import Inference
from service.logs import REQUEST_ID as LOGGED_REQUEST_ID
from service.metrics import RequestRecord
from service.protocol.v2.response import EXTENSIONS, server_metadata
from service.quality.monitor import Quality

SERVER_NAME = "model-serving"
SERVER_VERSION = "0.1.0"
V2_EXTENSIONS = [*EXTENSIONS, "model_repository", "evaluation"]


def json_response(doc: Any, status: int = 200) -> Response:
    return Response(json_body(doc), status, mimetype=JSON)


def _inference() -> Inference:
    return current_app.extensions["inference"]


def _evaluator() -> Evaluator:
    return current_app.extensions["evaluator"]


# ---- TF Serving REST v1 ------------------------------------------------------------------------
def tfs_metadata(**values: str) -> Response:
    return json_response(_inference().tfs_metadata(routes.model_ref(values), g.record))


def tfs_evaluate(**values: str) -> Response:
    return _evaluate(routes.model_ref(values), "tfserving")


def tfs_evaluations(**values: str) -> Response:
    evaluations = _evaluator().history(routes.model_ref(values), request.args)
    return json_response({"evaluations": evaluations})


def tfs_unknown_verb(verb: str, **values: str) -> Response:
    raise NotFound(f"Unknown method ':{verb}'; use :predict, :classify, :regress, :evaluate or :feedback.")


# ---- quality in production (service.quality) ---------------------------------------------------
def _quality() -> Quality:
    return current_app.extensions["quality"]


def tfs_feedback(name: str) -> Response:
    return _feedback(name)


def v2_feedback(name: str) -> Response:
    return _feedback(name)


def _feedback(name: str) -> Response:
    routes.check_media_type(routes.BY_ENDPOINT[request.endpoint or ""], request.mimetype)
    if g.record is not None:
        g.record.model = name if name in _inference().registry.model_names() else ""
    return json_response(_quality().feedback(name, _body()))


def tfs_quality(**values: str) -> Response:
    ref = routes.model_ref(values)
    return json_response(_quality().report(ref.name, ref.version, request.args))


def tfs_shadow(name: str) -> Response:
    return json_response(_quality().shadow_report(name))


def tfs_card(**values: str) -> Response:
    return json_response(_inference().card_document(routes.model_ref(values)))


def tfs_training_curves(**values: str) -> Response:
    path = _inference().training_curves(routes.model_ref(values))
    return send_file(path, mimetype="image/png", max_age=0)  # answers If-None-Match itself


# ---- Open Inference Protocol (KServe V2) -------------------------------------------------------
def v2_server_metadata() -> Response:
    return json_response(server_metadata(SERVER_NAME, SERVER_VERSION, V2_EXTENSIONS))


def v2_models() -> Response:
    return json_response({"models": _inference().model_index()})


def v2_repository_index() -> Response:
    return json_response(admin.repository_index(_inference().model_index()))


def v2_repository_load(name: str) -> Response:
    """Triton's load: serve ``name`` again (with ``parameters.config`` overriding its settings)."""
    with _audited("load", name):
        entry = admin.load_override(_body(), name)
        _inference().registry.load(name, entry)
    return json_response({})


def v2_repository_unload(name: str) -> Response:
    """Triton's unload: stop serving ``name`` until it is loaded again (in-flight requests finish)."""
    with _audited("unload", name):
        admin.check_unload_body(_body(), name)
        _inference().registry.unload(name)
    return json_response({})


@contextmanager
def _audited(action: str, model: str) -> Iterator[None]:
    """Record an admin action, its caller and its outcome in the audit log, whatever happens."""
    log: admin.AuditLog = current_app.extensions["audit"]
    try:
        yield
    except Exception as exc:
        log.record(_caller(), action, model, request.remote_addr, exc)
        raise
    log.record(_caller(), action, model, request.remote_addr, None)


def v2_model_metadata(**values: str) -> Response:
    return json_response(_inference().v2_metadata(routes.model_ref(values), g.record))


def v2_evaluate(**values: str) -> Response:
    return _evaluate(routes.model_ref(values), "v2")


# ---- evaluation (both dialects) ----------------------------------------------------------------
def _evaluate(ref: Any, dialect: str) -> Response:
    """A JSON body (size-limited like :predict) or an NDJSON stream (bounded per line instead)."""
    route = routes.BY_ENDPOINT[request.endpoint or ""]
    routes.check_media_type(route, request.mimetype)
    if request.mimetype in routes.NDJSON_TYPES:
        return json_response(_evaluator().evaluate_stream(ref, _input_stream(), request.args, g.record))
    header_length = (
        routes.parse_header_length(request.headers.get(routes.BINARY_HEADER)) if route.binary else None
    )
    result = _evaluator().evaluate(ref, _body(), header_length, dialect, g.record)
    return json_response(result)


def _body() -> bytes:
    # The ASGI entry has read it already (bounded in size and time, inflated) and set its length.
    return request.get_data(cache=False)


def _input_stream() -> BinaryIO:
    """The raw request body as a stream, read as it arrives (chunked or with a Content-Length)."""
    raw = request.environ["wsgi.input"]
    if request.content_length is not None:
        return LimitedStream(raw, request.content_length)  # type: ignore[return-value]
    # Chunked: gunicorn de-chunks and marks the input terminated; otherwise there is no body.
    return raw if request.environ.get("wsgi.input_terminated") else io.BytesIO()


VIEWS: dict[str, Callable[..., Response]] = {
    "tfs_metadata": tfs_metadata,
    "tfs_evaluate": tfs_evaluate,
    "tfs_evaluations": tfs_evaluations,
    "tfs_unknown_verb": tfs_unknown_verb,
    "tfs_feedback": tfs_feedback,
    "v2_feedback": v2_feedback,
    "tfs_quality": tfs_quality,
    "tfs_shadow": tfs_shadow,
    "tfs_card": tfs_card,
    "tfs_training_curves": tfs_training_curves,
    "v2_server_metadata": v2_server_metadata,
    "v2_models": v2_models,
    "v2_repository_index": v2_repository_index,
    "v2_model_metadata": v2_model_metadata,
    "v2_evaluate": v2_evaluate,
    "v2_repository_load": v2_repository_load,
    "v2_repository_unload": v2_repository_unload,
    **pages.PAGES,
}


# ---- metrics and errors ------------------------------------------------------------------------
def _start_record() -> None:
    route = routes.BY_ENDPOINT.get(request.endpoint or "")
    g.record = RequestRecord(*route.metric) if route is not None and route.metric else None
    scope = request.environ.get("asgi.scope", {})
    LOGGED_REQUEST_ID.set(scope.get(REQUEST_ID, ""))  # this thread's log lines name the request
    if g.record is not None:
        scope[RECORD] = g.record  # the access log reads model and version from it


def _finish_record(response: Response) -> Response:
    if g.get("record") is not None:
        g.record.finish(response.status_code)
    return response


def _finish_unanswered(exc: BaseException | None) -> None:
    if g.get("record") is not None:
        g.record.finish(500)  # a no-op once _finish_record counted the response


def _render(exc: Exception) -> Response:
    if isinstance(exc, RequestEntityTooLarge):
        exc = routes.too_large(current_app.config["MAX_CONTENT_LENGTH"])
    elif isinstance(exc, HTTPException):  # werkzeug's own, e.g. a body cut short (400)
        error = ServiceError(exc.description or exc.name)
        error.status = exc.code or 500
        exc = error
    status, body, headers = render_error(exc, request.method, request.path)
    return Response(body, status, headers=headers)


def _caller() -> str:
    """The token name the ASGI entry admitted this request with ("" when auth is off)."""
    return str(request.environ.get("asgi.scope", {}).get(CALLER, ""))


def _answer_headers(response: Response) -> Response:
    """Security headers on every answer, and CORS headers for an allowed browser origin."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Server"] = "model-serving"
    scope = request.environ.get("asgi.scope", {})
    if REQUEST_ID in scope:
        response.headers[REQUEST_ID_HEADER] = scope[REQUEST_ID]
    head = scope.get(HEAD)
    if head is not None and head.origin is not None:
        response.headers.update(current_app.extensions["guard"].cors_headers(head))
    return response


def create_flask_app(
    settings: Settings,
    inference: Inference,
    evaluator: Evaluator,
    guard: Guard,
    audit: admin.AuditLog,
    quality: Quality,
) -> Flask:
    """The FLASK lane of the route table, registered from it, with the one error renderer."""
    app = Flask(__name__)
    app.url_map.converters.update(routes.CONVERTERS)
    app.url_map.merge_slashes = False
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions.update(
        settings=settings, inference=inference, evaluator=evaluator, guard=guard, audit=audit, quality=quality
    )
    app.extensions.update(
        console=console.load_assets(), apidocs=apidocs.load(), openapi=openapi.build(SERVER_VERSION)
    )
    for route in routes.ROUTES:
        if route.lane == routes.FLASK:
            for rule in route.rules:
                app.add_url_rule(rule, route.endpoint, VIEWS[route.endpoint], methods=route.methods)
    app.register_error_handler(Exception, _render)
    app.before_request(_start_record)
    app.after_request(_finish_record)
    app.after_request(_answer_headers)
    app.teardown_request(_finish_unanswered)
    return app
