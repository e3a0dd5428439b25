"""The ASGI entry gunicorn runs: every request is matched against the one route table, then answered
on the event loop (routes that run a model) or by the Flask app behind a WSGI bridge (the rest).

Under gunicorn's ``asgi`` worker one event loop per worker parses every connection. A model-running
request (TF Serving ``:predict``/``:classify``/``:regress``, V2 ``/infer``) is read, decoded and
encoded on the loop and *awaits* the micro-batcher, so one worker keeps dozens of requests in flight
on a single thread and they merge into large batches while the model runs (the model call releases
the GIL on the batcher's thread). Status, metadata, ``:evaluate``, health and ``/metrics`` run in
Flask on a thread pool. Unknown routes and wrong methods are answered here, from the table.

:func:`create_app` is the application factory: it wires settings, registry, inference, evaluation
and both lanes, and receives a registry from tests that build their own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from a2wsgi import WSGIMiddleware
from flask import Flask

from service.auth.ratelimit import RateLimiter
from service.auth.watch import TokenSource
from service.config import Settings
from service.errors import ServiceError
from service.evaluation.evaluator import Evaluator, StreamLimits
from service.evaluation.history import History
from service.http import admin, routes, views
from service.http.access import AccessLog
from service.http.guard import CALLER, HEAD, Guard, RequestHead, parse_head
from service.http.responses import render_error
from service.inference import Inference
from service.metrics import RequestRecord
from service.models.loading import build_registry
from service.models.registry import Registry
from service.protocol.tensors import Limits

if TYPE_CHECKING:  # grpc is imported in the workers only, when the lifespan starts it
    from service.grpc.server import GrpcServer

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
# On every answer: no MIME sniffing of JSON, and a Server header that names no software or version.
SECURITY_HEADERS = ((b"X-Content-Type-Options", b"nosniff"), (b"Server", b"model-serving"))


class ClientGone(Exception):
    """The client disconnected before its request body arrived; there is nobody to answer."""


def _terminated_input(app: Callable[..., Any]) -> Callable[..., Any]:
    """The bridge's body stream ends with the request, chunked or not: tell werkzeug it may read it."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["wsgi.input_terminated"] = True
        return app(environ, start_response)

    return wsgi


class ServingApp:
    """ASGI application: the route table's LOOP lane on the event loop, its FLASK lane over a bridge."""

    def __init__(
        self, inference: Inference, flask_app: Flask, settings: Settings, guard: Guard, audit: admin.AuditLog
    ) -> None:
        self.inference = inference
        self.registry: Registry = inference.registry
        self.settings = settings
        self.grpc: GrpcServer | None = None  # this worker's gRPC server, once the lifespan starts it
        self._grpc_stop: asyncio.Future[None] | None = None
        self.max_body = settings.max_body_bytes
        self.guard = guard
        self.audit = audit
        self.access = AccessLog(settings.access_log) if settings.access_log else None
        self._bridge = WSGIMiddleware(_terminated_input(flask_app.wsgi_app), workers=settings.threads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if self.access is None:
                await self._http(scope, receive, send)
                return
            send, exchange = self.access.watch(send)
            try:
                await self._http(scope, receive, send)
            finally:
                exchange.caller = scope.get(CALLER, "")
                self.access.write(scope, exchange)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets: nothing here speaks them
            await send({"type": "websocket.close", "code": 1003})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        head = parse_head(scope["headers"])
        scope[HEAD] = head
        try:
            if scope["method"] == "OPTIONS" and head.origin and head.preflight_method:
                route, _ = routes.match(head.preflight_method, scope["path"])
                await _send(send, 204, b"", _encode_headers(self.guard.preflight(route, head), 0))
                return
            route, values = routes.match(scope["method"], scope["path"])
        except ServiceError as exc:
            await _send(send, *self._error(exc, scope, head))
            return
        client = (scope.get("client") or ("-", 0))[0]
        try:
            caller = self.guard.admit(route, values.get("name"), head, scope.get("scheme", "http"), client)
        except ServiceError as exc:
            if route.endpoint in admin.ACTIONS:  # refused admin attempts are audited too
                name = self.guard.identify(head)
                self.audit.record(name, admin.ACTIONS[route.endpoint], values["name"], client, exc)
            await _send(send, *self._error(exc, scope, head))
            return
        scope[CALLER] = caller
        if route.lane == routes.LOOP:
            await self._run_model(route, values, head, scope, receive, send)
        else:
            await self._bridge(scope, receive, send)  # type: ignore[arg-type]

    async def _run_model(
        self,
        route: routes.Route,
        values: Mapping[str, str],
        head: RequestHead,
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        assert route.metric is not None  # every model-running route is metered
        record, status = RequestRecord(*route.metric), 500
        try:
            status, body, headers = await self._answer(route, values, head, scope, receive, record)
            await _send(send, status, body, headers)
        except ClientGone:
            status = 499  # nginx's "client closed request": counted, never sent
        finally:
            record.finish(status)

    async def _answer(
        self,
        route: routes.Route,
        values: Mapping[str, str],
        head: RequestHead,
        scope: Scope,
        receive: Receive,
        record: RequestRecord,
    ) -> tuple[int, bytes, Headers]:
        try:
            ref = routes.model_ref(values)
            header_length = routes.parse_header_length(head.binary_header) if route.binary else None
            routes.check_media_type(route, head.mimetype)
            body = await self._read_body(receive, head.content_length)
            payload, headers = await self.inference.run(route.endpoint, ref, body, header_length, record)
            if head.origin is not None:
                headers = {**headers, **self.guard.cors_headers(head)}
            return 200, payload, _encode_headers(headers, len(payload))
        except ClientGone:
            raise
        except Exception as exc:  # ServiceErrors as themselves, anything else as a logged 500
            return self._error(exc, scope, head)

    def _error(self, exc: BaseException, scope: Scope, head: RequestHead) -> tuple[int, bytes, Headers]:
        status, body, headers = render_error(exc, scope["method"], scope["path"])
        if head.origin is not None:
            headers.update(self.guard.cors_headers(head))
        return status, body, _encode_headers(headers, len(body))

    async def _read_body(self, receive: Receive, declared: int | None) -> bytes:
        """The whole body, refused with 413 as soon as it is known to pass the limit."""
        limit = self.max_body
        if declared is not None and declared > limit:
            raise routes.too_large(limit)  # before reading a byte (and before any 100 Continue)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise routes.too_large(limit)
            chunks.append(chunk)
            more = message.get("more_body", False)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._start_grpc()
                except Exception as exc:  # e.g. GRPC_PORT taken: gunicorn stops instead of looping boots
                    log.exception("The gRPC server did not start")
                    await send({"type": "lifespan.startup.failed", "message": f"gRPC: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.begin_shutdown()
                if self._grpc_stop is not None:  # in-flight gRPC calls finish before the models drain
                    await self._grpc_stop
                # Draining waits for in-flight requests, which need this loop to finish: off the loop.
                await asyncio.get_running_loop().run_in_executor(None, self.registry.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def begin_shutdown(self) -> None:
        """Stop taking gRPC calls and let those in flight finish; on the loop, at SIGTERM (a gunicorn
        hook calls it, so gRPC drains while gunicorn drains HTTP) or else at the lifespan shutdown."""
        if self.grpc is not None and self._grpc_stop is None:
            self._grpc_stop = asyncio.ensure_future(self.grpc.stop())

    async def _start_grpc(self) -> None:
        """The gRPC front door on this worker's loop, unless GRPC_PORT is 0."""
        if self.settings.grpc_port:
            from service.grpc.server import GrpcServer  # grpc and TensorFlow's protos: workers only

            self.grpc = await GrpcServer.start(self.settings, self.inference, self.guard, self.audit)


async def _send(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _encode_headers(headers: Mapping[str, str], length: int) -> Headers:
    # Names keep their usual casing on the HTTP/1.1 wire, as TF Serving and Triton send them:
    # header names are case-insensitive, but hand-written clients do index them exactly.
    encoded = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    encoded += [(b"Content-Length", str(length).encode()), *SECURITY_HEADERS]
    return encoded


def create_app(settings: Settings, registry: Registry | None = None) -> ServingApp:
    """Wire the service. Without a registry, one is built and started (initial load + poller)."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if registry is None:
        registry = build_registry(settings)
        registry.start()
    limits = Limits(max_instances=settings.max_instances, allow_nonfinite=settings.allow_nonfinite)
    inference = Inference(registry, limits, settings.request_timeout)
    stream = StreamLimits(settings.max_evaluation_rows, settings.max_line_bytes)
    history = History(settings.data_dir / "evaluations")
    evaluator = Evaluator(registry, history, limits, settings.request_timeout, stream)
    guard, audit = build_guard(settings), admin.AuditLog(settings.data_dir / "audit.jsonl")
    flask_app = views.create_flask_app(settings, inference, evaluator, guard, audit)
    return ServingApp(inference, flask_app, settings, guard, audit)


def build_guard(settings: Settings) -> Guard:
    """Tokens from the token file (if any), the rate limit (if any) and the allowed CORS origins."""
    path = settings.auth_tokens_file
    tokens = TokenSource(path, poll_interval=settings.poll_interval) if path is not None else None
    limiter = RateLimiter.parse(settings.rate_limit) if settings.rate_limit else None
    return Guard(tokens, limiter, settings.cors_origins)
