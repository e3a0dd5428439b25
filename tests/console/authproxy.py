"""A tiny stand-in for the auth that issue 10 adds: a proxy that answers 401 without the right bearer token.

It forwards everything else to the real server unchanged and records the Authorization header of
each request, so a test can see what the console sent. The console and health stay open, as they
will be with real tokens (the page must load to ask for one).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

OPEN_PREFIXES = ("/console/", "/v2/health/")
# Hop-by-hop headers, and those this server writes itself.
NOT_COPIED = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "content-encoding",
    "server",
    "date",
}


class AuthProxy:
    def __init__(self, upstream: str, token: str) -> None:
        self.upstream = upstream
        self.token = token
        self.seen: list[tuple[str, str | None]] = []  # (path, Authorization header)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                authorization = self.headers.get("Authorization")
                proxy.seen.append((self.path, authorization))
                is_open = self.path == "/" or self.path.startswith(OPEN_PREFIXES)
                if not is_open and authorization != f"Bearer {proxy.token}":
                    self._answer(401, b'{"error": "A valid bearer token is required."}', "application/json")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                upstream = requests.request(
                    self.command,
                    proxy.upstream + self.path,
                    data=self.rfile.read(length) if length else None,
                    headers={
                        k: v for k, v in self.headers.items() if k.lower() not in ("host", "authorization")
                    },
                    timeout=120,
                )
                self._answer(upstream.status_code, upstream.content, None, upstream.headers)

            def _answer(
                self, status: int, body: bytes, content_type: str | None, headers: Any = None
            ) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    if name.lower() not in NOT_COPIED:
                        self.send_header(name, value)
                if content_type:
                    self.send_header("Content-Type", content_type)
                    self.send_header("WWW-Authenticate", "Bearer")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _forward

        return Handler

    def __enter__(self) -> AuthProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
