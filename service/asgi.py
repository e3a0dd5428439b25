"""The ASGI entry point gunicorn runs: model-running POSTs on the event loop, everything else in Flask.

Under gunicorn's ``asgi`` worker one event loop per worker parses every connection. Requests that
run a model (TF Serving ``:predict``/``:classify``/``:regress``, V2 ``/infer``) are decoded and
encoded on the loop and *await* the micro-batcher, so one worker keeps dozens of requests in
flight on a single thread and they merge into large batches while the model runs (the model
call itself releases the GIL on the batcher's thread). Everything else (status, metadata,
``:evaluate``, ``/metrics``, health, and every error on other routes) goes to the Flask app,
run in a thread pool through a WSGI bridge.

Both lanes share the URL grammar (:mod:`service.routes`), the request handlers
(:class:`service.inference.Inference`) and the error tree, so they answer alike; the tests hold
them to it. gunicorn calls :func:`create_app` in each worker after fork.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from a2wsgi import WSGIMiddleware
from flask import Flask

from service import metrics, routes
from service.app import create_app as create_flask_app
from service.config import Settings, load_settings
from service.errors import ServiceError
from service.inference import Inference, Trace
from service.models.registry import Registry

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ClientGone(Exception):
    """The client disconnected before its request body arrived; there is nobody to answer."""


def _terminated_input(app: Callable[..., Any]) -> Callable[..., Any]:
    """The bridge's body stream ends with the request, chunked or not: tell werkzeug it may read it."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        environ["wsgi.input_terminated"] = True
        return app(environ, start_response)

    return wsgi


class ServingApp:
    """ASGI application: the inference lane on the loop, and the Flask app behind a WSGI bridge."""

    def __init__(self, flask_app: Flask, settings: Settings) -> None:
        self.inference: Inference = flask_app.extensions["inference"]
        self.registry: Registry = flask_app.extensions["registry"]
        self.max_body = settings.max_body_bytes
        self._bridge = WSGIMiddleware(_terminated_input(flask_app.wsgi_app), workers=settings.threads)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            try:
                route = routes.inference_route(scope["path"]) if scope["method"] == "POST" else None
            except ServiceError as exc:  # a malformed version in a model-running URL
                await _send(send, *_error(exc.message, exc.status))
                return
            if route is None:
                await self._bridge(scope, receive, send)  # type: ignore[arg-type]
            else:
                await self._infer(route, scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets: nothing here speaks them
            await send({"type": "websocket.close", "code": 1003})

    async def _infer(self, route: routes.InferenceRoute, scope: Scope, receive: Receive, send: Send) -> None:
        started, trace = time.perf_counter(), Trace()
        with metrics.track_request(route.protocol):
            try:
                status, body, headers = await self._answer(route, scope, receive, trace)
            except ClientGone:
                status = 499  # nginx's "client closed request": counted, never sent
            else:
                await _send(send, status, body, headers)
        seconds = time.perf_counter() - started
        metrics.observe_request(
            trace.model, trace.version, route.protocol, route.endpoint, status, seconds, trace.instances
        )

    async def _answer(
        self, route: routes.InferenceRoute, scope: Scope, receive: Receive, trace: Trace
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        try:
            mimetype, declared, binary_header = _request_headers(scope["headers"])
            header_length = routes.parse_header_length(binary_header) if route.protocol == "v2" else None
            routes.check_media_type(mimetype, route.media_types)
            body = await self._read_body(receive, declared)
            payload, headers = await self.inference.answer_async(
                route.kind, route.ref, body, header_length, trace
            )
            return 200, payload, _encode_headers(headers, len(payload))
        except ServiceError as exc:
            return _error(exc.message, exc.status)
        except ClientGone:
            raise
        except Exception:
            log.exception("Unhandled error on POST %s", scope["path"])
            return _error(f"Internal error while handling POST {scope['path']}; see the server log.", 500)

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


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
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


def _encode_headers(headers: dict[str, str], length: int) -> list[tuple[bytes, bytes]]:
    # Names keep their usual casing on the HTTP/1.1 wire, as TF Serving and Triton send them:
    # header names are case-insensitive, but hand-written clients do index them exactly.
    encoded = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]
    encoded.append((b"Content-Length", str(length).encode()))
    return encoded


def _error(message: str, status: int) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    body = orjson.dumps({"error": message})
    return status, body, _encode_headers({"Content-Type": "application/json"}, len(body))


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> ServingApp:
    """Build the ASGI app (and with it the Flask app, the registry and the loaded models)."""
    settings = settings or load_settings()
    app = ServingApp(create_flask_app(settings, registry), settings)
    # TensorFlow and the loaded models leave ~400k objects to the cyclic GC; a full collection of
    # them stalls the event loop for ~140 ms (a p99 spike every few thousand requests). Exempt what
    # exists now; versions loaded later are few objects and stay collectable.
    gc.collect()
    gc.freeze()
    return app
