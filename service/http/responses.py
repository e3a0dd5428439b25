"""What both lanes answer with: JSON bodies, and the one rendering of an error as ``{"error": ...}``."""

from __future__ import annotations

import logging
from typing import Any

import orjson

from service.errors import ServiceError

log = logging.getLogger(__name__)

JSON = "application/json"


def json_body(doc: Any) -> bytes:
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def render_error(exc: BaseException, method: str, path: str) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and headers for ``exc``: a ServiceError's own, or a logged 500 for anything else.

    An unexpected exception is a bug: its traceback goes to the log, never to the client.
    """
    if isinstance(exc, ServiceError):
        return exc.status, json_body({"error": exc.message}), {"Content-Type": JSON, **exc.headers}
    log.error("Unhandled error on %s %s", method, path, exc_info=exc)
    message = f"Internal error while handling {method} {path}; see the server log."
    return 500, json_body({"error": message}), {"Content-Type": JSON}
