"""The access log (``ACCESS_LOG``): one line per request naming the caller's token, never the token.

    127.0.0.1 eval-job "POST /v1/models/mnist:evaluate HTTP/1.1" 200 1832 41.7ms 5f0c2a91d3b4-1a

The caller is the token's name from the token file ("-" when auth is off or the route is open);
the last field is the request id (``X-Request-Id``). With ``LOG_FORMAT=json`` each line is a JSON
object instead, with the model, version, instances and batch size of model-running requests.
Written by the app rather than gunicorn, which cannot know who a token belongs to.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from service.http.guard import RECORD, REQUEST_ID
from service.logs import timestamp

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


class Exchange:
    """What the log line needs from one request; filled in as the request is answered."""

    __slots__ = ("caller", "size", "started", "status")

    def __init__(self) -> None:
        self.caller, self.status, self.size, self.started = "", 0, 0, time.perf_counter()


class AccessLog:
    def __init__(self, target: str, json: bool = False) -> None:
        self._log = logging.getLogger("service.access")
        self._log.propagate = False  # its own format, not the app log's
        handler = logging.StreamHandler(sys.stdout) if target == "-" else logging.FileHandler(target)
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._log.handlers[:] = [handler]
        self._log.setLevel(logging.INFO)
        self._json = json

    def watch(self, send: Send) -> tuple[Send, Exchange]:
        """``send`` that notes the status and body size of the response on the way out."""
        exchange = Exchange()

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
            elif message["type"] == "http.response.body":
                exchange.size += len(message.get("body", b""))
            await send(message)

        return noting, exchange

    def write(self, scope: MutableMapping[str, Any], exchange: Exchange) -> None:
        client = scope.get("client") or ("-", 0)
        target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        query = scope.get("query_string", b"").decode("latin-1")
        path = f"{target}{'?' + query if query else ''}"
        ms = (time.perf_counter() - exchange.started) * 1000
        status = exchange.status or 499  # no response started: the client left first
        request_id = scope.get(REQUEST_ID, "-")
        if self._json:
            self._log.info(orjson.dumps(_document(scope, exchange, path, status, ms)).decode())
            return
        request = f"{scope['method']} {path} HTTP/{scope.get('http_version', '1.1')}"
        self._log.info(
            '%s %s "%s" %d %d %.1fms %s',
            client[0],
            exchange.caller or "-",
            request,
            status,
            exchange.size,
            ms,
            request_id,
        )


def _document(
    scope: MutableMapping[str, Any], exchange: Exchange, path: str, status: int, ms: float
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "time": timestamp(time.time()),
        "request_id": scope.get(REQUEST_ID, ""),
        "client": (scope.get("client") or ("-", 0))[0],
        "caller": exchange.caller or "-",
        "method": scope["method"],
        "path": path,
        "status": status,
        "bytes": exchange.size,
        "duration_ms": round(ms, 3),
    }
    record = scope.get(RECORD)
    if record is not None and record.model:
        doc.update(model=record.model, version=record.version, instances=record.instances)
        if record.batch_rows:
            doc["batch_size"] = record.batch_rows
    return doc
