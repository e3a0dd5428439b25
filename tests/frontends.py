"""Both front ends of one app as werkzeug test clients, so every route test runs through each.

``flask``: the Flask app's own test client (what a WSGI deployment runs). ``asgi``: the ASGI app
gunicorn runs (``service.asgi``: model-running POSTs on the event loop, the rest bridged to
Flask), driven through a2wsgi's ASGI-to-WSGI adapter, which runs it on an event loop in a thread.
"""

from __future__ import annotations

from a2wsgi import ASGIMiddleware
from flask import Flask
from werkzeug.test import Client

from service.asgi import ServingApp
from service.config import Settings

FRONT_ENDS = ("flask", "asgi")


def client_for(front_end: str, app: Flask, settings: Settings) -> Client:
    if front_end == "flask":
        return app.test_client()
    return Client(ASGIMiddleware(ServingApp(app, settings)))  # type: ignore[arg-type]
