"""The FLASK lane's pages for people: the browser console at /, the OpenAPI document and Swagger UI.

Static files are served from what was read at start-up (``console.load_assets()``,
``apidocs.load()``), with ETags so a browser's copy is revalidated, never rebuilt per request.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Response, current_app, request

from service.errors import NotFound
from service.http import apidocs, console
from service.http.responses import JSON, json_body


def console_index() -> Response:
    return _console_file("index.html")


def console_file(filename: str) -> Response:
    return _console_file(filename)


def _console_file(filename: str) -> Response:
    return _asset("console", filename, console.HEADERS, "The console")


def openapi_document() -> Response:
    return Response(json_body(current_app.extensions["openapi"]), 200, mimetype=JSON)


def api_docs() -> Response:
    return _asset("apidocs", "index.html", apidocs.HEADERS, "The API documentation")


def api_docs_file(filename: str) -> Response:
    return _asset("apidocs", filename, apidocs.HEADERS, "The API documentation")


def _asset(collection: str, filename: str, headers: dict[str, str], what: str) -> Response:
    # A lookup in what was read at start-up: no path is ever built from the URL, so no traversal.
    asset = current_app.extensions[collection].get(filename)
    if asset is None:
        raise NotFound(f"{what} has no file {filename!r}.")
    response = Response(asset.body, 200, content_type=asset.content_type, headers=headers)
    response.set_etag(asset.etag)
    response.make_conditional(request)  # in place: a 304 when the browser's copy is current
    return response


PAGES: dict[str, Callable[..., Response]] = {
    "console_index": console_index,
    "console_file": console_file,
    "openapi": openapi_document,
    "api_docs": api_docs,
    "api_docs_file": api_docs_file,
}
