"""The OpenAPI 3.1 description, generated from the route table: every route, its parameters, bodies,
answers (errors included) and the token scope it needs.

The paths, methods, parameters, security and error answers come from :mod:`service.http.routes`;
what only a person can say (a summary, the body schemas) comes from ``DOCS``, one entry per
endpoint, and building the document fails for a route without one, so the description cannot drift
from the routes (a test builds it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from service.http import routes
from service.http.schemas import COMPONENTS, Schema, ref

JSON, NDJSON, BINARY = "application/json", "application/x-ndjson", "application/octet-stream"
TEXT, HTML = "text/plain", "text/html"


@dataclass(frozen=True)
class Doc:
    summary: str
    tag: str
    request: str | None = None  # component name of the JSON request body
    answer: str | None = None  # component name of the 200 JSON answer
    answer_types: dict[str, Schema] = field(default_factory=dict)  # other 200 media types
    statuses: tuple[int, ...] = ()  # route-specific answers besides the generic ones


def _model_route(summary: str, tag: str, request: str, answer: str, binary: bool = False) -> Doc:
    types = {BINARY: {"type": "string", "format": "binary"}} if binary else {}
    return Doc(summary, tag, request, answer, types, (404, 503))


DOCS: dict[str, Doc] = {
    "tfs_predict": _model_route(
        "Predict (row or columnar format)", "TF Serving", "TfsPredictRequest", "TfsPredictResponse"
    ),
    "tfs_classify": _model_route(
        "Classify tf.Example-style examples", "TF Serving", "TfsExamplesRequest", "TfsClassifyResponse"
    ),
    "tfs_regress": _model_route(
        "Regress tf.Example-style examples", "TF Serving", "TfsExamplesRequest", "TfsRegressResponse"
    ),
    "v2_infer": _model_route(
        "Inference (typed tensors, binary data and classification extensions)",
        "Open Inference Protocol",
        "V2InferRequest",
        "V2InferResponse",
        binary=True,
    ),
    "tfs_status": Doc("Model version status", "TF Serving", answer="TfsModelStatus", statuses=(404,)),
    "tfs_metadata": Doc(
        "Model metadata (signature_def)", "TF Serving", answer="TfsModelMetadata", statuses=(404, 503)
    ),
    "tfs_evaluate": Doc(
        "Evaluate on labelled instances (JSON or NDJSON stream)",
        "Evaluation",
        "EvaluateRequest",
        "EvaluateResponse",
        statuses=(404, 422, 503),
    ),
    "tfs_evaluations": Doc(
        "Evaluation history, newest first", "Evaluation", answer="Evaluations", statuses=(400, 404)
    ),
    "tfs_unknown_verb": Doc(
        "Any other :verb (always a 404 naming the verbs there are)", "TF Serving", statuses=(404,)
    ),
    "tfs_feedback": Doc(
        "Labels for remembered predictions, joined by request id",
        "Quality",
        "FeedbackRequest",
        "FeedbackResponse",
        statuses=(400, 404),
    ),
    "v2_feedback": Doc(
        "Labels for remembered predictions, joined by request id",
        "Quality",
        "FeedbackRequest",
        "FeedbackResponse",
        statuses=(400, 404),
    ),
    "tfs_quality": Doc(
        "Live figures, drift and gate verdict per version",
        "Quality",
        answer="QualityReport",
        statuses=(400, 404),
    ),
    "tfs_shadow": Doc(
        "Shadow traffic: agreement and disagreement matrix per pair",
        "Quality",
        answer="ShadowReport",
        statuses=(404,),
    ),
    "tfs_card": Doc(
        "Model card with state, error and serving labels", "Models", answer="ModelCard", statuses=(404, 503)
    ),
    "tfs_training_curves": Doc(
        "Training-curve image of a version",
        "Models",
        answer_types={"image/png": {"type": "string", "format": "binary"}},
        statuses=(304, 404, 503),
    ),
    "v2_server_metadata": Doc(
        "Server metadata and extensions", "Open Inference Protocol", answer="V2ServerMetadata"
    ),
    "live": Doc("Liveness", "Health", answer="Live"),
    "ready": Doc(
        "Readiness: 503 until every expected model has a version AVAILABLE",
        "Health",
        answer="Ready",
        statuses=(503,),
    ),
    "v2_models": Doc(
        "Every model and version with its state", "Open Inference Protocol", answer="ModelIndex"
    ),
    "v2_model_metadata": Doc(
        "Model metadata", "Open Inference Protocol", answer="V2ModelMetadata", statuses=(404, 503)
    ),
    "v2_model_ready": Doc(
        "Model readiness (503 when no version is AVAILABLE)",
        "Open Inference Protocol",
        answer="V2ModelReady",
        statuses=(404, 503),
    ),
    "v2_evaluate": Doc(
        "Evaluate on labelled instances (V2 tensors, TF Serving style or NDJSON)",
        "Evaluation",
        "EvaluateRequest",
        "EvaluateResponse",
        statuses=(404, 422, 503),
    ),
    "v2_repository_index": Doc(
        "Repository index (Triton's model repository extension)", "Admin", answer="RepositoryIndex"
    ),
    "v2_repository_load": Doc(
        "Load (or reload) a model, optionally overriding its serving settings",
        "Admin",
        "LoadRequest",
        "Empty",
        statuses=(404, 422, 503, 504),
    ),
    "v2_repository_unload": Doc(
        "Unload a model until it is loaded again",
        "Admin",
        "UnloadRequest",
        "Empty",
        statuses=(404, 503, 504),
    ),
    "console_index": Doc(
        "The browser console", "Console", answer_types={HTML: {"type": "string"}}, statuses=(304,)
    ),
    "console_file": Doc(
        "A static file of the console",
        "Console",
        answer_types={"*/*": {"type": "string"}},
        statuses=(304, 404),
    ),
    "metrics": Doc(
        "Prometheus metrics of every worker", "Operations", answer_types={TEXT: {"type": "string"}}
    ),
    "openapi": Doc("This OpenAPI description", "Operations", answer_types={JSON: {"type": "object"}}),
    "api_docs": Doc(
        "Interactive API documentation (Swagger UI)", "Operations", answer_types={HTML: {"type": "string"}}
    ),
    "api_docs_file": Doc(
        "A static file of the API documentation page",
        "Operations",
        answer_types={"*/*": {"type": "string"}},
        statuses=(404,),
    ),
}
EXTRA_COMPONENTS: dict[str, Schema] = {
    "ModelIndex": {
        "type": "object",
        "properties": {"models": {"type": "array", "items": ref("ModelIndexEntry")}},
        "required": ["models"],
    },
    "RepositoryIndex": {"type": "array", "items": ref("ModelIndexEntry")},
    "Empty": {"type": "object", "additionalProperties": False},
}
ERRORS = {
    400: "The request is malformed or does not fit the model.",
    401: "No token, or an unknown one (auth on).",
    403: "The token lacks the route's scope, or a browser page from another origin tried to change state.",
    404: "Unknown model, version, label or resource.",
    405: "The route does not take this method.",
    408: "The request took too long to arrive.",
    413: "The body is over the limit.",
    415: "The body's content type is not one the route reads.",
    422: "Well-formed, but the model cannot do it (a metric its task lacks, a model that failed to load).",
    429: "The caller's request budget is spent; retry after Retry-After seconds.",
    503: "No version can take the request right now (loading, unloading, queue full, shutting down).",
    504: "The admin change is in force on the worker that answered, not yet on every worker.",
    304: "The client's copy is current (ETag).",
}
_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def build(version: str) -> dict[str, Any]:
    """The whole document; KeyError for a route without a ``DOCS`` entry."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes.ROUTES:
        doc = DOCS[route.endpoint]
        for rule in route.rules:
            for method in route.methods:
                paths.setdefault(_path(rule), {})[method.lower()] = _operation(route, rule, method, doc)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "model-serving",
            "version": version,
            "description": "TensorFlow SavedModels over TF Serving's REST API and the Open Inference Protocol (V2), "
            "with evaluation, an admin API and metrics. Errors are always JSON: {\"error\": \"...\"}.",
        },
        "paths": paths,
        "components": {
            "schemas": {**COMPONENTS, **EXTRA_COMPONENTS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "A token from the token file (AUTH_TOKENS_FILE); each route names the scope it needs."}},
        },
    }  # fmt: skip


def _path(rule: str) -> str:
    return _PARAM.sub(lambda m: "{" + m.group(2) + "}", rule)


def _operation(route: routes.Route, rule: str, method: str, doc: Doc) -> dict[str, Any]:
    suffix = re.sub(r"\W+", "_", rule).strip("_")
    operation: dict[str, Any] = {
        "operationId": f"{route.endpoint}__{method.lower()}__{suffix}",
        "summary": doc.summary,
        "tags": [doc.tag],
        "parameters": _parameters(rule, route),
        "responses": _responses(route, doc),
    }
    if route.scope is None:
        operation["security"] = []
    else:
        operation["security"] = [{"bearer": []}]
        operation["description"] = f"Needs a token with the `{route.scope}` scope when auth is on."
    if method == "POST":
        operation["requestBody"] = _request(route, doc)
    return operation


def _parameters(rule: str, route: routes.Route) -> list[dict[str, Any]]:
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for _, name in _PARAM.findall(rule)
    ]
    if route.binary:
        parameters.append(
            {"name": routes.BINARY_HEADER, "in": "header", "required": False,
             "description": "Length of the JSON header when binary tensor data follows it.",
             "schema": {"type": "string", "pattern": "^[0-9]+$"}}
        )  # fmt: skip
    if route.endpoint == "tfs_evaluations":
        for name in ("version", "dataset", "limit"):
            parameters.append({"name": name, "in": "query", "required": False, "schema": {"type": "string"}})
    if route.endpoint == "tfs_quality":
        parameters.append({"name": "window", "in": "query", "required": False, "schema": {"type": "string"}})
    return parameters


def _request(route: routes.Route, doc: Doc) -> dict[str, Any]:
    schema = ref(doc.request) if doc.request else {"type": "object"}
    content: dict[str, Any] = {JSON: {"schema": schema}}
    if route.binary:
        content[BINARY] = {"schema": {"type": "string", "format": "binary"}}
    if routes.NDJSON_TYPES & route.media_types:
        content[NDJSON] = {
            "schema": {"type": "string", "description": 'one {"instance": ..., "label": ...} per line'}
        }
    return {"required": False, "content": content}


def _responses(route: routes.Route, doc: Doc) -> dict[str, Any]:
    content = {media: {"schema": schema} for media, schema in doc.answer_types.items()}
    if doc.answer is not None:
        content[JSON] = {"schema": ref(doc.answer)}
    answers: dict[str, Any] = {"200": {"description": "OK", "content": content}}
    for status in sorted(set(doc.statuses) | _generic_statuses(route)):
        answers[str(status)] = _error(status)
    return answers


def _generic_statuses(route: routes.Route) -> set[int]:
    statuses = {404, 405}  # an unknown path, a method the path does not take
    if route.scope is not None:
        statuses |= {401, 403, 429}
    if "POST" in route.methods:
        statuses |= {400, 408, 413, 415}
    return statuses


def _error(status: int) -> dict[str, Any]:
    if status == 304:
        return {"description": ERRORS[304]}
    answer: dict[str, Any] = {"description": ERRORS[status], "content": {JSON: {"schema": ref("Error")}}}
    if status == 401:
        answer["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    if status == 429:
        answer["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    return answer
