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

from service import memory
from service.auth.sharedlimit import limiter_for
from service.auth.watch import TokenSource
from service.config import Settings
from service.errors import ServiceError
from service.evaluation.datasets import DatasetLabels
from service.evaluation.evaluator import Evaluator, StreamLimits
from service.evaluation.history import History
from service.http import admin, routes, views
from service.http.access import AccessLog
from service.http.guard import CALLER, HEAD, RECORD, REQUEST_ID, Guard, RequestHead, parse_head
from service.http.identity import HEADER as REQUEST_ID_HEADER
from service.http.identity import RequestIds
from service.http.intake import Body, Budget, ClientGone, Deadlines
from service.http.quick import Quick
from service.http.responses import render_error
from service.inference import Inference
from service.logs import REQUEST_ID as LOGGED_REQUEST_ID
from service.logs import configure as configure_logging
from service.metrics import RequestRecord
from service.models.loading import build_registry
from service.models.registry import Registry
from service.protocol.tensors import Limits
from service.quality.monitor import Quality, build_quality
from service.tracing import Tracer, build_tracer

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
# After a request that held this many body bytes, freed heap pages are handed back to the system.
TRIM_AFTER_BYTES = 8 * 1024 * 1024


def _terminated_input(app: Callable[..., Any]) -> Callable[..., Any]:
    """The bridge's body stream ends with the request, chunked or not: tell werkzeug it may read it."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["wsgi.input_terminated"] = True
        return app(environ, start_response)

    return wsgi


class ServingApp:
    """ASGI application: the route table's LOOP lane on the event loop, its FLASK lane over a bridge."""

    def __init__(
        self,
        inference: Inference,
        flask_app: Flask,
        settings: Settings,
        guard: Guard,
        audit: admin.AuditLog,
        quality: Quality | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.inference = inference
        self.registry: Registry = inference.registry
        self.settings = settings
        self.grpc: GrpcServer | None = None  # this worker's gRPC server, once the lifespan starts it
        self._grpc_stop: asyncio.Future[None] | None = None
        self.max_body = settings.max_body_bytes
        self.body_timeout = settings.body_timeout
        self.budget = Budget(settings.max_inflight_bytes)
        self.deadlines = Deadlines()
        self.quick = Quick(inference, settings.metrics_dir, quality)
        self.guard = guard
        self.audit = audit
        self.quality = quality
        self.tracer = tracer
        self.ids = RequestIds()
        json_log = settings.log_format == "json"
        self.access = AccessLog(settings.access_log, json_log) if settings.access_log else None
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
        scope[REQUEST_ID] = request_id = self.ids.choose(head.request_id)
        LOGGED_REQUEST_ID.set(request_id)
        try:
            if scope["method"] == "OPTIONS" and head.origin and head.preflight_method:
                route, _ = routes.match(head.preflight_method, scope["path"])
                headers = {**self.guard.preflight(route, head), REQUEST_ID_HEADER: request_id}
                await _send(send, 204, b"", _encode_headers(headers, 0))
                return
            route, values = routes.match(scope["method"], scope["path"])
        except ServiceError as exc:
            await _send(send, *self._error(exc, scope, head))
            return
        client = (scope.get("client") or ("-", 0))[0]
        try:
            caller = self.guard.admit(route, values.get("name"), head, scope.get("scheme", "http"), client)
        except ServiceError as exc:
            RequestRecord.refused(*_labels(route), exc.status)  # so refusals can be alerted on
            if route.endpoint in admin.ACTIONS:  # refused admin attempts are audited too
                name = self.guard.identify(head)
                self.audit.record(name, admin.ACTIONS[route.endpoint], values["name"], client, exc)
            await _send(send, *self._error(exc, scope, head))
            return
        scope[CALLER] = caller
        if route.lane == routes.QUICK:
            await self._answer_quick(route, values, head, scope, send)
            return
        body: Body | None = None
        try:
            stream = route.lane == routes.FLASK and head.mimetype in routes.NDJSON_TYPES
            body = self._body(receive, head, stream)
            if route.lane == routes.LOOP:
                await self._run_model(route, values, head, scope, body, send)
            else:
                await self._flask(route, head, scope, body, send)
        except ServiceError as exc:  # the body refused before a byte was read (encoding, size, budget)
            await _send(send, *self._error(exc, scope, head))
            _count_refusal(route, exc.status)
        finally:
            if body is not None and body.release() >= TRIM_AFTER_BYTES:
                memory.trim_soon()

    def _body(self, receive: Receive, head: RequestHead, stream: bool) -> Body:
        return Body(
            receive,
            encoding=head.content_encoding,
            declared=head.content_length,
            timeout=self.body_timeout,
            deadlines=self.deadlines,
            limit=None if stream else self.max_body,
            budget=None if stream else self.budget,
        )

    async def _answer_quick(
        self, route: routes.Route, values: Mapping[str, str], head: RequestHead, scope: Scope, send: Send
    ) -> None:
        try:
            status, payload, headers = await self.quick.answer(route.endpoint, values)
        except Exception as exc:
            await _send(send, *self._error(exc, scope, head))
            return
        if head.origin is not None:
            headers = {**headers, **self.guard.cors_headers(head)}
        await _send(send, status, payload, _encode_headers(headers, len(payload)))

    async def _flask(
        self, route: routes.Route, head: RequestHead, scope: Scope, body: Body, send: Send
    ) -> None:
        """Hand the request to Flask: a streamed body as it arrives, any other read here first, so a
        slow upload waits on the loop instead of holding one of the pool's threads."""
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")]
        if head.mimetype in routes.NDJSON_TYPES:
            receive: Receive = body.receive
        else:
            try:
                data = await body.read()
            except ClientGone:
                return
            except ServiceError as exc:
                await _send(send, *self._error(exc, scope, head))
                _count_refusal(route, exc.status)
                return
            receive = _replay(data)
            headers.append((b"content-length", str(len(data)).encode()))
        await self._bridge({**scope, "headers": headers}, receive, send)  # type: ignore[arg-type]

    async def _run_model(
        self,
        route: routes.Route,
        values: Mapping[str, str],
        head: RequestHead,
        scope: Scope,
        body: Body,
        send: Send,
    ) -> None:
        assert route.metric is not None  # every model-running route is metered
        record, status = RequestRecord(*route.metric), 500
        scope[RECORD] = record
        try:
            status, payload, headers = await self._answer(route, values, head, scope, body, record)
            await _send(send, status, payload, headers)
        except ClientGone:
            status = 499  # nginx's "client closed request": counted, never sent
        finally:
            record.finish(status)
        # The answer is out: what follows never delays it, and never fails the exchange.
        if self.tracer is not None or record.observed is not None:
            try:
                self._after(route, head, scope, record, status)
            except Exception:
                log.exception("Tracing or quality bookkeeping of %s failed", scope[REQUEST_ID])

    def _after(
        self, route: routes.Route, head: RequestHead, scope: Scope, record: RequestRecord, status: int
    ) -> None:
        if self.tracer is not None:
            name = f"{scope['method']} {route.rules[0]}"
            self.tracer.request(name, head.traceparent, record, scope[REQUEST_ID], status)
        if record.observed is not None and self.quality is not None and status == 200:
            self.quality.after_response(record, scope[REQUEST_ID])

    async def _answer(
        self,
        route: routes.Route,
        values: Mapping[str, str],
        head: RequestHead,
        scope: Scope,
        body: Body,
        record: RequestRecord,
    ) -> tuple[int, bytes, Headers]:
        try:
            ref = routes.model_ref(values)
            header_length = routes.parse_header_length(head.binary_header) if route.binary else None
            routes.check_media_type(route, head.mimetype)
            data = await body.read()
            payload, headers = await self.inference.run(route.endpoint, ref, data, header_length, record)
            headers = {**headers, REQUEST_ID_HEADER: scope[REQUEST_ID]}
            if head.origin is not None:
                headers.update(self.guard.cors_headers(head))
            return 200, payload, _encode_headers(headers, len(payload))
        except ClientGone:
            raise
        except Exception as exc:  # ServiceErrors as themselves, anything else as a logged 500
            return self._error(exc, scope, head)

    def _error(self, exc: BaseException, scope: Scope, head: RequestHead) -> tuple[int, bytes, Headers]:
        status, body, headers = render_error(exc, scope["method"], scope["path"])
        headers[REQUEST_ID_HEADER] = scope[REQUEST_ID]
        if head.origin is not None:
            headers.update(self.guard.cors_headers(head))
        return status, body, _encode_headers(headers, len(body))

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
                await asyncio.get_running_loop().run_in_executor(None, self.close_extras)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def close_extras(self) -> None:
        """Write what the quality store and the tracer still hold; idempotent."""
        if self.quality is not None:
            self.quality.close()
        if self.tracer is not None:
            self.tracer.close()
            self.tracer = None

    def begin_shutdown(self) -> None:
        """Stop taking gRPC calls and let those in flight finish; on the loop, at SIGTERM (a gunicorn
        hook calls it, so gRPC drains while gunicorn drains HTTP) or else at the lifespan shutdown."""
        if self.grpc is not None and self._grpc_stop is None:
            self._grpc_stop = asyncio.ensure_future(self.grpc.stop())

    async def _start_grpc(self) -> None:
        """The gRPC front door on this worker's loop, unless GRPC_PORT is 0."""
        if self.settings.grpc_port:
            from service.grpc.server import GrpcServer  # grpc and TensorFlow's protos: workers only

            self.grpc = await GrpcServer.start(
                self.settings, self.inference, self.guard, self.audit, self.quality, self.tracer
            )


def _replay(data: bytes) -> Receive:
    """``receive`` for a body already read: all of it at once, then the end."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": data, "more_body": False}

    return receive


def _count_refusal(route: routes.Route, status: int) -> None:
    """A request refused before its handler ran (body too large, too slow...) counts too."""
    RequestRecord.refused(*_labels(route), status)


def _labels(route: routes.Route) -> tuple[str, str]:
    """A route's (protocol, endpoint) metric labels; routes not metered otherwise get them from the table."""
    if route.metric is not None:
        return route.metric
    protocol = (
        "tfserving"
        if route.endpoint.startswith("tfs_")
        else "v2"
        if route.rules[0].startswith("/v2")
        else "http"
    )
    return protocol, route.endpoint.removeprefix("tfs_").removeprefix("v2_")


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
    configure_logging(settings.log_level, settings.log_format)
    given = registry is not None
    if registry is None:
        registry = build_registry(settings)
    limits = Limits(settings.max_instances, settings.allow_nonfinite, settings.max_tensor_bytes)
    inference = Inference(registry, limits, settings.request_timeout)
    stream = StreamLimits(settings.max_evaluation_rows, settings.max_line_bytes)
    history = History(settings.data_dir / "evaluations", settings.max_history_bytes)
    datasets = DatasetLabels(settings.data_dir / "evaluations", settings.max_datasets)
    evaluator = Evaluator(registry, history, limits, settings.request_timeout, stream, datasets)
    # Before the first sync: the quality layer sees every serving config (feedback, gates, shadow).
    quality = build_quality(settings, inference, history)
    if not given:
        registry.start()
    quality.start()
    guard, audit = build_guard(settings), admin.AuditLog(settings.data_dir / "audit.jsonl")
    flask_app = views.create_flask_app(settings, inference, evaluator, guard, audit, quality)
    tracer = build_tracer(settings.traces_exporter, settings.otel_service_name)
    return ServingApp(inference, flask_app, settings, guard, audit, quality, tracer)


def build_guard(settings: Settings) -> Guard:
    """Tokens from the token file (if any), the rate limit (if any) and the allowed CORS origins."""
    path = settings.auth_tokens_file
    tokens = TokenSource(path, poll_interval=settings.poll_interval) if path is not None else None
    limiter = limiter_for(settings.rate_limit, settings.metrics_dir)  # one budget for all workers
    return Guard(tokens, limiter, settings.cors_origins)
