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
from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask

from service.config import Settings
from service.errors import ServiceError
from service.evaluation.evaluator import Evaluator, StreamLimits
from service.evaluation.history import History
from service.http import routes, views
from service.http.responses import JSON, render_error
from service.inference import Inference
from service.metrics import RequestRecord
from service.models.loading import build_registry
from service.models.registry import Registry
from service.protocol.tensors import Limits

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


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

    def __init__(self, inference: Inference, flask_app: Flask, settings: Settings) -> None:
        self.inference = inference
        self.registry: Registry = inference.registry
        self.max_body = settings.max_body_bytes
        self._bridge = WSGIMiddleware(_terminated_input(flask_app.wsgi_app), workers=settings.threads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            try:
                route, values = routes.match(scope["method"], scope["path"])
            except ServiceError as exc:
                await _send(send, *_error(exc, scope))
                return
            if route.lane == routes.LOOP:
                await self._run_model(route, values, scope, receive, send)
            else:
                await self._bridge(scope, receive, send)  # type: ignore[arg-type]
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets: nothing here speaks them
            await send({"type": "websocket.close", "code": 1003})

    async def _run_model(
        self, route: routes.Route, values: Mapping[str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        assert route.metric is not None  # every model-running route is metered
        record, status = RequestRecord(*route.metric), 500
        try:
            status, body, headers = await self._answer(route, values, scope, receive, record)
            await _send(send, status, body, headers)
        except ClientGone:
            status = 499  # nginx's "client closed request": counted, never sent
        finally:
            record.finish(status)

    async def _answer(
        self,
        route: routes.Route,
        values: Mapping[str, str],
        scope: Scope,
        receive: Receive,
        record: RequestRecord,
    ) -> tuple[int, bytes, Headers]:
        try:
            ref = routes.model_ref(values)
            mimetype, declared, binary_header = _request_headers(scope["headers"])
            header_length = routes.parse_header_length(binary_header) if route.binary else None
            routes.check_media_type(route, mimetype)
            body = await self._read_body(receive, declared)
            payload, headers = await self.inference.run(route.endpoint, ref, body, header_length, record)
            return 200, payload, _encode_headers(headers, len(payload))
        except ClientGone:
            raise
        except Exception as exc:  # ServiceErrors as themselves, anything else as a logged 500
            return _error(exc, scope)

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
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Draining waits for in-flight requests, which need this loop to finish: off the loop.
                await asyncio.get_running_loop().run_in_executor(None, self.registry.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _send(send: Send, status: int, body: bytes, headers: Headers) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _request_headers(headers: list[tuple[bytes, bytes]]) -> tuple[str, int | None, str | None]:
    """Media type (lower case, no parameters), declared Content-Length and the V2 header length."""
    mimetype, declared, header_length = "", None, None
    for name, value in headers:
        if name == b"content-type":
            mimetype = value.split(b";", 1)[0].strip().lower().decode("latin-1")
        elif name == b"content-length":
            declared = int(value) if value.isdigit() else None
        elif name == b"inference-header-content-length":
            header_length = value.decode("latin-1")
    return mimetype, declared, header_length


def _encode_headers(headers: Mapping[str, str], length: int) -> Headers:
    # Names keep their usual casing on the HTTP/1.1 wire, as TF Serving and Triton send them:
    # header names are case-insensitive, but hand-written clients do index them exactly.
    encoded = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    encoded.append((b"Content-Length", str(length).encode()))
    return encoded


def _error(exc: BaseException, scope: Scope) -> tuple[int, bytes, Headers]:
    status, body = render_error(exc, scope["method"], scope["path"])
    return status, body, _encode_headers({"Content-Type": JSON}, len(body))


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
    return ServingApp(inference, views.create_flask_app(settings, inference, evaluator), settings)
