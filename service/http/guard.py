"""Who may call what: bearer tokens and scopes, the per-caller rate limit, and browsers on other origins.

Checked once per request by the ASGI entry, for both lanes, right after the route is matched:

1. Health routes (scope None) are open to anyone and never limited.
2. A state-changing route (``Route.writes``) refuses a browser request from another origin unless
   ``CORS_ORIGINS`` allows it, and refuses the bodies a cross-site form can send without a CORS
   preflight (form-encoded, multipart, text/plain) whenever an ``Origin`` is present at all.
3. With a token file, the bearer token must be known (401) and hold the route's scope for the model
   the URL names (403).
4. With ``RATE_LIMIT``, each token (or client address when open) has a request budget (429). A request
   with a bad token spends its address's budget, so guessing tokens is limited too.

CORS stays off unless ``CORS_ORIGINS`` names origins; then preflights are answered here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from service import metrics
from service.auth.ratelimit import Limiter
from service.auth.watch import TokenSource
from service.errors import Forbidden, TooManyRequests, Unauthorized, UnsupportedMediaType
from service.http.routes import Route
from service.protocol.numbers import parse_count

# What an HTML form (or a fetch without preflight) may send cross-origin: never trusted for writes.
SIMPLE_TYPES = frozenset({"", "application/x-www-form-urlencoded", "multipart/form-data", "text/plain"})
ALLOWED_HEADERS = "Authorization, Content-Type, Inference-Header-Content-Length, X-Request-Id, traceparent"
EXPOSED_HEADERS = "Inference-Header-Content-Length, Retry-After, WWW-Authenticate, X-Request-Id"
PREFLIGHT_SECONDS = "600"
# Where the ASGI entry leaves what it learnt in the request's scope, for the Flask lane to read.
HEAD, CALLER = "model_serving.head", "model_serving.caller"
REQUEST_ID, RECORD = "model_serving.request_id", "model_serving.record"


@dataclass
class RequestHead:
    """The request headers the lanes and the guard look at, parsed once."""

    mimetype: str = ""  # lower case, without parameters
    content_length: int | None = None
    content_encoding: str = ""  # lower case; "" when absent
    binary_header: str | None = None  # Inference-Header-Content-Length, as sent
    authorization: str | None = None
    origin: str | None = None
    host: str = ""
    preflight_method: str | None = None  # Access-Control-Request-Method
    request_id: bytes | None = None  # X-Request-Id as sent (service.http.identity checks it)
    traceparent: str | None = None  # W3C trace context, read only when tracing is on


def parse_head(headers: Iterable[tuple[bytes, bytes]]) -> RequestHead:
    head = RequestHead()
    for name, value in headers:
        if name == b"content-type":
            head.mimetype = value.split(b";", 1)[0].strip().lower().decode("latin-1")
        elif name == b"content-length":
            head.content_length = parse_count(value)
        elif name == b"content-encoding":
            head.content_encoding = value.strip().lower().decode("latin-1")
        elif name == b"inference-header-content-length":
            head.binary_header = value.decode("latin-1")
        elif name == b"authorization":
            head.authorization = value.decode("latin-1")
        elif name == b"origin":
            head.origin = value.decode("latin-1")
        elif name == b"host":
            head.host = value.decode("latin-1")
        elif name == b"access-control-request-method":
            head.preflight_method = value.decode("latin-1")
        elif name == b"x-request-id":
            head.request_id = value
        elif name == b"traceparent":
            head.traceparent = value.decode("latin-1")
    return head


class Guard:
    def __init__(
        self, tokens: TokenSource | None, limiter: Limiter | None, cors_origins: Iterable[str]
    ) -> None:
        self.tokens = tokens
        self.limiter = limiter
        self.cors_origins = frozenset(cors_origins)

    def admit(self, route: Route, model: str | None, head: RequestHead, scheme: str, client: str) -> str:
        """The caller's name (its token's; "" when auth is off or the route is open), or raise."""
        if route.scope is None:
            return ""
        if route.writes and head.origin is not None:
            self._check_browser_write(head, scheme)
        return self.authorize(route.scope, model, head.authorization, client)

    def authorize(self, scope: str, model: str | None, authorization: str | None, client: str) -> str:
        """Steps 3 and 4 alone, for any protocol: the token's scope for ``model``, then the rate limit.

        ``authorization`` is the ``Bearer <token>`` credential (an HTTP header, or gRPC metadata).
        """
        name = ""
        if self.tokens is not None:
            try:
                principal = self.tokens.current().authenticate(authorization)
            except Unauthorized:
                self._spend(f"address {client}", "-")
                raise
            principal.require(scope, model)
            name = principal.name
        self._spend(f"token {name}" if name else f"address {client}", name or "-")
        return name

    def identify(self, head: RequestHead) -> str:
        """The name of the token a request carries, if it is known (for audit records); else ""."""
        if self.tokens is None:
            return ""
        try:
            return self.tokens.current().authenticate(head.authorization).name
        except Unauthorized:
            return ""

    def _spend(self, key: str, label: str) -> None:
        if self.limiter is None:
            return
        try:
            self.limiter.enforce(key)
        except TooManyRequests:
            metrics.RATE_LIMITED.labels(label).inc()
            raise

    def _check_browser_write(self, head: RequestHead, scheme: str) -> None:
        assert head.origin is not None
        if not (head.origin == f"{scheme}://{head.host}" or self.allows_origin(head.origin)):
            raise Forbidden(
                f"A browser page from {head.origin} may not change state here; set CORS_ORIGINS to allow it."
            )
        if head.mimetype in SIMPLE_TYPES:
            shown = head.mimetype or "no content type"
            raise UnsupportedMediaType(
                f"A browser request must send this body as application/json, not {shown}."
            )

    # ---- CORS ---------------------------------------------------------------------------------
    def allows_origin(self, origin: str) -> bool:
        return "*" in self.cors_origins or origin in self.cors_origins

    def cors_headers(self, head: RequestHead) -> dict[str, str]:
        """Headers that let an allowed origin's page read the response (none for others)."""
        if head.origin is None or not self.allows_origin(head.origin):
            return {}
        return {
            "Access-Control-Allow-Origin": head.origin,
            "Access-Control-Expose-Headers": EXPOSED_HEADERS,
            "Vary": "Origin",
        }

    def preflight(self, route: Route, head: RequestHead) -> dict[str, str]:
        """The answer headers to a preflight for ``route``; Forbidden for an origin not allowed."""
        assert head.origin is not None
        if not self.allows_origin(head.origin):
            raise Forbidden(f"Cross-origin requests from {head.origin} are not allowed here (CORS_ORIGINS).")
        return {
            **self.cors_headers(head),
            "Access-Control-Allow-Methods": ", ".join(route.methods),
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": PREFLIGHT_SECONDS,
        }
