"""gunicorn's asgi worker, with what it lacks for hostile clients and for draining on SIGTERM.

- A header timeout: gunicorn arms its keep-alive timer only after a first response, so a
  connection that sends nothing, or half a request line, was held forever. Here it is closed
  after ``header_timeout`` seconds (with a JSON 408 when it had started a request).
- gunicorn's own error answers (bad framing, an unreadable Content-Length, a request line too
  long, an app that answered nothing) are JSON like the app's, and a header value that made its
  parser raise (a 5,000-digit Content-Length) is a 400 instead of a dropped connection.
- SIGTERM: the worker takes the connections already queued on the listening socket before
  closing it (closing a socket with a backlog resets every connection in it), then serves what it
  has, each response saying ``Connection: close``, and runs the app's shutdown once they are done.
  The app's gRPC server is told at once (``begin_shutdown``), so it stops taking calls and lets
  those in flight finish while HTTP drains, instead of after.
- An app whose lifespan startup fails (the gRPC port taken) stops gunicorn with a boot error, as
  gunicorn's own asgi worker does, instead of being rebooted forever.

gunicorn's settings reach it as usual (``worker_class`` in :mod:`service.http.server`); the header
timeout travels in the service's Settings, which the gunicorn application object carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from http import HTTPStatus
from typing import Any

import orjson
from gunicorn.arbiter import Arbiter
from gunicorn.asgi.lifespan import LifespanManager, LifespanStartupFailed
from gunicorn.asgi.protocol import ASGIProtocol
from gunicorn.workers.gasgi import ASGIWorker

DEFAULT_HEADER_TIMEOUT = 10.0


class ServingProtocol(ASGIProtocol):
    """One HTTP/1 connection: gunicorn's, plus a header deadline and JSON error answers."""

    def __init__(self, worker: ServingWorker) -> None:
        super().__init__(worker)
        self._header_timer: asyncio.TimerHandle | None = None
        self._started_request = False  # bytes of a request arrived, its headers are not complete

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._header_timer = self.worker.loop.call_later(self.worker.header_timeout, self._headers_too_slow)

    def data_received(self, data: bytes) -> None:
        self._started_request = True
        super().data_received(data)

    def _on_headers_complete(self) -> Any:
        self._stop_header_timer()
        self._started_request = False
        return super()._on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._closed:
            return
        if self._started_request:  # someone is there, mid-request: tell them why
            seconds = f"{self.worker.header_timeout:g}"
            self._send_error_response(408, f"The request headers did not arrive within {seconds} seconds.")
        self._close_transport()
        if self._request_ready is not None:
            self._request_ready.set()  # the connection's loop wakes up, sees it closed and ends

    def _feed_callback_parser(self, data: bytes) -> bool:
        try:
            return bool(super()._feed_callback_parser(data))
        except ValueError:  # a header value gunicorn's parser failed to convert
            self._send_error_response(400, "A request header holds a value that cannot be read")
            self._close_transport()
            return False

    def _send_error_response(self, status: int, message: str, extra_headers: Any = ()) -> None:
        """gunicorn's answer to what never reached the app, in the app's JSON form."""
        body = orjson.dumps({"error": _sentence(message)})
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        head = [
            f"HTTP/1.1 {status} {reason}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            "X-Content-Type-Options: nosniff",
            "Server: model-serving",
            *(f"{name}: {value}" for name, value in extra_headers),
            "Connection: close",
        ]
        self._safe_write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)


def _sentence(message: str) -> str:
    message = message.strip() or "The request could not be read"
    return message if message.endswith(".") else message + "."


class ServingWorker(ASGIWorker):
    """gunicorn's asgi worker serving connections through :class:`ServingProtocol`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The Settings that service.http.server's gunicorn application carries (defaults elsewhere).
        settings = getattr(self.app, "settings", None)
        self.header_timeout = getattr(settings, "header_timeout", DEFAULT_HEADER_TIMEOUT)
        self._wake = asyncio.Event()  # set by a stop signal: the serving loop need not finish its second

    def handle_exit_signal(self) -> None:
        super().handle_exit_signal()
        self._wake.set()
        begin_shutdown = getattr(self.asgi, "begin_shutdown", None)
        if begin_shutdown is not None:
            begin_shutdown()

    def handle_quit_signal(self) -> None:
        super().handle_quit_signal()
        self._wake.set()

    async def _serve(self) -> None:
        self.lifespan = LifespanManager(self.asgi, self.log, self.state)
        try:
            await self.lifespan.startup()
        except LifespanStartupFailed as exc:
            self.log.error("ASGI lifespan startup failed: %s", exc)
            raise SystemExit(Arbiter.WORKER_BOOT_ERROR) from None
        ssl_context = self._get_ssl_context()
        for listener in self.sockets:
            server = await self.loop.create_server(
                lambda: ServingProtocol(self), sock=listener.sock, ssl=ssl_context, start_serving=True
            )
            self.servers.append(server)
            self.log.info("Listening on %s", listener)
        while self.alive and self.ppid == os.getppid():
            self.notify()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
        await self._drain(ssl_context)

    async def _drain(self, ssl_context: Any) -> None:
        """Stop accepting without resetting anyone, finish what is in progress, then shut the app down."""
        for listener, server in zip(self.sockets, self.servers, strict=False):
            await self._adopt_backlog(listener.sock, ssl_context)
            server.close()
            listener.close()  # this worker's descriptor: the last one closed ends the listening socket
        deadline = self.loop.time() + self.cfg.graceful_timeout
        if self.nr_conns:
            self.log.info("Finishing %d connection(s) before exiting", self.nr_conns)
        while self.nr_conns > 0 and self.loop.time() < deadline and not self._quick_shutdown:
            await asyncio.sleep(0.05)
        if self.nr_conns > 0:
            self.log.warning("Closing %d connection(s) still open after the graceful timeout", self.nr_conns)
        if not self._quick_shutdown:
            await self.lifespan.shutdown()

    async def _adopt_backlog(self, sock: socket.socket, ssl_context: Any) -> None:
        """Accept every connection already queued on ``sock``: they will be answered, not reset."""
        sock.setblocking(False)
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the listener is gone already (another worker shares it)
                return
            await self.loop.connect_accepted_socket(lambda: ServingProtocol(self), conn, ssl=ssl_context)
