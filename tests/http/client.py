"""The app gunicorn runs (``service.http.asgi``), driven by a werkzeug test client.

a2wsgi's ASGI-to-WSGI adapter runs the ASGI app on an event loop in a thread, so model-running
routes take the event-loop lane and the rest the Flask lane behind its bridge, as in production.
"""

from __future__ import annotations

from typing import Any

from a2wsgi import ASGIMiddleware
from werkzeug.test import Client, TestResponse

from service.http.asgi import ServingApp


class _BufferedClient(Client):
    """Reads every answer to its end, as a real HTTP client does.

    a2wsgi acknowledges an ASGI ``send`` only when the WSGI side asks for the next chunk. A test
    that looks at the status alone would leave the app's coroutine awaiting the acknowledgement of
    its last body message; the garbage collector later closes it wherever it happens to run, and
    the coroutine's ``finally`` (request metrics, which take prometheus_client's lock) could then
    run inside a thread that already holds that lock and wait for itself forever.
    """

    def open(self, *args: Any, buffered: bool = True, **kwargs: Any) -> TestResponse:
        return super().open(*args, buffered=buffered, **kwargs)


def client_for(app: ServingApp) -> Client:
    return _BufferedClient(ASGIMiddleware(app))  # type: ignore[arg-type]
