"""The one route table: every HTTP route with its methods, lane, accepted bodies and metric labels.

Every lane reads it. The ASGI entry (:mod:`service.http.asgi`) matches every request here: routes
in the ``LOOP`` lane (the ones that run a model) and the ``QUICK`` lane (:mod:`service.http.quick`)
are answered on the event loop, the others are handed to the Flask app (:mod:`service.http.views`),
which registers exactly the ``FLASK`` routes of this table. Unknown paths and wrong methods are answered from here, before either lane runs.

TF Serving's URL grammar is ``/v1/models/{name}[/versions/{v}|/labels/{l}][:verb|/resource]``;
the Open Inference Protocol's is ``/v2/models/{name}[/versions/{v}]/...``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.routing import BaseConverter, Map, Rule

from service.errors import InvalidInput, MethodNotAllowed, NotFound, PayloadTooLarge, UnsupportedMediaType
from service.inference import ModelRef
from service.protocol.numbers import parse_count
from service.protocol.v2.response import HEADER_LENGTH

# LOOP: runs a model on the event loop; QUICK: a cheap read answered on the loop without a thread
# (health, readiness, status, /metrics: they must answer however busy the Flask pool is); FLASK: the rest.
LOOP, QUICK, FLASK = "loop", "quick", "flask"
BINARY_HEADER = HEADER_LENGTH
# curl -d sends form-urlencoded and TF Serving ignores the content type, so its users' habits work.
JSON_TYPES = frozenset({"", "application/json", "application/x-www-form-urlencoded", "text/plain"})
BINARY_TYPES = JSON_TYPES | {"application/octet-stream"}
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})
TFS_VERBS = ("predict", "classify", "regress", "evaluate", "feedback")


class _Segment(BaseConverter):
    """A TF Serving name, version or label: anything up to the next ``/`` or ``:``."""

    regex = r"[^/:]+"


class _UnknownVerb(BaseConverter):
    """A ``:verb`` that is none of TF Serving's (those have routes of their own)."""

    regex = r"(?!(?:" + "|".join(TFS_VERBS) + r")(?![A-Za-z]))[A-Za-z]+"


CONVERTERS = {"segment": _Segment, "unknown_verb": _UnknownVerb}


@dataclass(frozen=True)
class Route:
    """One endpoint: its URL rules, methods, lane, the bodies it accepts and its metric labels."""

    endpoint: str  # the handler's name in its lane
    rules: tuple[str, ...]
    methods: tuple[str, ...]
    lane: str = FLASK
    media_types: frozenset[str] = frozenset()  # content types a POST body may have
    metric: tuple[str, str] | None = None  # (protocol, endpoint) labels of serving_requests_total
    scope: str | None = "infer"  # the token scope it needs (service.auth); None: open to anyone
    writes: bool = False  # changes state (history, gauges, loaded models): no cross-origin forms

    @property
    def binary(self) -> bool:
        """True if bodies may use the V2 binary tensor extension (and its header length)."""
        return "application/octet-stream" in self.media_types


_TFS = (
    "/v1/models/<segment:name>",
    "/v1/models/<segment:name>/versions/<segment:version>",
    "/v1/models/<segment:name>/labels/<segment:label>",
)
_V2 = ("/v2/models/<name>", "/v2/models/<name>/versions/<version>")
GET, POST = ("GET",), ("POST",)


def _each(prefixes: tuple[str, ...], suffix: str) -> tuple[str, ...]:
    return tuple(prefix + suffix for prefix in prefixes)


def _tfs_model_route(verb: str) -> Route:
    return Route(f"tfs_{verb}", _each(_TFS, f":{verb}"), POST, LOOP, JSON_TYPES, ("tfserving", verb))


def _admin_route(endpoint: str, rule: str) -> Route:
    return Route(endpoint, (rule,), POST, media_types=JSON_TYPES, scope="admin", writes=True)


def _evaluate_route(
    endpoint: str, rules: tuple[str, ...], media_types: frozenset[str], protocol: str
) -> Route:
    metric = (protocol, "evaluate")
    return Route(endpoint, rules, POST, FLASK, media_types | NDJSON_TYPES, metric, "evaluate", writes=True)


ROUTES = (
    # ---- the model-running routes: answered on the event loop
    _tfs_model_route("predict"),
    _tfs_model_route("classify"),
    _tfs_model_route("regress"),
    Route("v2_infer", _each(_V2, "/infer"), POST, LOOP, BINARY_TYPES, ("v2", "infer")),
    # ---- TF Serving REST v1
    Route("tfs_status", _TFS, GET, QUICK),
    Route("tfs_metadata", _each(_TFS, "/metadata"), GET, metric=("tfserving", "metadata")),
    _evaluate_route("tfs_evaluate", _each(_TFS, ":evaluate"), JSON_TYPES, "tfserving"),
    Route("tfs_evaluations", _each(_TFS, "/evaluations"), GET, scope="evaluate"),
    # ---- quality in production (service.quality): late labels, live figures, shadow traffic
    Route(
        "tfs_feedback",
        ("/v1/models/<segment:name>:feedback",),
        POST,
        FLASK,
        JSON_TYPES,
        ("tfserving", "feedback"),
        "evaluate",
        writes=True,
    ),
    Route("tfs_quality", _each(_TFS[:2], "/quality"), GET, scope="evaluate"),
    Route("tfs_shadow", ("/v1/models/<segment:name>/shadow",), GET, scope="evaluate"),
    Route("tfs_unknown_verb", _each(_TFS, ":<unknown_verb:verb>"), ("GET", "POST")),
    Route("tfs_card", _each(_TFS, "/card"), GET),
    Route("tfs_training_curves", _each(_TFS, "/card/training_curves.png"), GET),
    # ---- Open Inference Protocol (V2)
    Route("v2_server_metadata", ("/v2",), GET),
    Route("live", ("/v2/health/live", "/healthz"), GET, QUICK, scope=None),
    Route("ready", ("/v2/health/ready", "/readyz"), GET, QUICK, scope=None),
    Route("v2_models", ("/v2/models",), GET),
    Route("v2_model_metadata", _V2, GET, metric=("v2", "metadata")),
    Route("v2_model_ready", _each(_V2, "/ready"), GET, QUICK),
    _evaluate_route("v2_evaluate", _each(_V2, "/evaluate"), BINARY_TYPES, "v2"),
    Route(
        "v2_feedback",
        ("/v2/models/<name>/feedback",),
        POST,
        FLASK,
        JSON_TYPES,
        ("v2", "feedback"),
        "evaluate",
        writes=True,
    ),
    # ---- Triton's model repository extension: the admin API
    Route("v2_repository_index", ("/v2/repository/index",), POST, media_types=JSON_TYPES, scope="admin"),
    _admin_route("v2_repository_load", "/v2/repository/models/<name>/load"),
    _admin_route("v2_repository_unload", "/v2/repository/models/<name>/unload"),
    # ---- the browser console: static files, open (it asks for a token when a call needs one)
    Route("console_index", ("/",), GET, scope=None),
    Route("console_file", ("/console/<path:filename>",), GET, scope=None),
    # ---- operations
    Route("metrics", ("/metrics", "/monitoring/prometheus/metrics"), GET, QUICK, scope="metrics"),
    Route("openapi", ("/openapi.json",), GET, scope=None),
    Route("api_docs", ("/docs",), GET, scope=None),
    Route("api_docs_file", ("/docs/<path:filename>",), GET, scope=None),
)
BY_ENDPOINT = {route.endpoint: route for route in ROUTES}

_MAP = Map(
    [Rule(rule, endpoint=route.endpoint, methods=route.methods) for route in ROUTES for rule in route.rules],
    converters=CONVERTERS,
    merge_slashes=False,  # werkzeug would answer '//' with a redirect; here it is a 404 like any typo
)
_URLS = _MAP.bind("")


@lru_cache(maxsize=1024)
def match(method: str, path: str) -> tuple[Route, Mapping[str, str]]:
    """The route and URL values for ``method path`` (memoised: the values must not be changed).

    Raises NotFound or MethodNotAllowed with the message the client gets.
    """
    try:
        endpoint, values = _URLS.match(path, method)
    except WerkzeugMethodNotAllowed as exc:
        allowed = [m for m in exc.valid_methods or () if m not in ("HEAD", "OPTIONS")]
        endpoint, values = _URLS.match(path, allowed[0])
        what = f":{endpoint[4:]}" if endpoint.startswith("tfs_") and ":" in path else path
        raise MethodNotAllowed(f"{what} takes {' or '.join(allowed)}, not {method}.") from None
    except WerkzeugNotFound:
        raise NotFound(f"No route for {method} {path}.") from None
    return BY_ENDPOINT[endpoint], values


def model_ref(values: Mapping[str, str]) -> ModelRef:
    """What a model route's URL names: a model, and a version (a positive integer) or a label."""
    name = values["name"]
    return ModelRef(name, parse_version(values.get("version"), name), values.get("label"))


def parse_version(raw: str | None, name: str) -> int | None:
    if raw is None:
        return None
    version = parse_count(raw)
    if version is None:
        raise NotFound(f"Model {name!r} has no version {raw[:40]!r}; versions are positive integers.")
    return version


def check_media_type(route: Route, mimetype: str) -> None:
    if mimetype not in route.media_types:
        raise UnsupportedMediaType(f"Content type {mimetype!r} is not supported here; send application/json.")


def parse_header_length(header: str | None) -> int | None:
    """The V2 binary extension's JSON header length, or None when the header is absent."""
    if header is None:
        return None
    length = parse_count(header)
    if length is None:
        raise InvalidInput(f"{BINARY_HEADER} must be a non-negative integer; got {header[:40]!r}.")
    return length


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
