"""The app gunicorn runs (``service.http.asgi``), driven by a werkzeug test client.

a2wsgi's ASGI-to-WSGI adapter runs the ASGI app on an event loop in a thread, so model-running
routes take the event-loop lane and the rest the Flask lane behind its bridge, as in production.
"""

from __future__ import annotations

from a2wsgi import ASGIMiddleware
from werkzeug.test import Client

from service.http.asgi import ServingApp


def client_for(app: ServingApp) -> Client:
    return Client(ASGIMiddleware(app))  # type: ignore[arg-type]
