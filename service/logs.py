"""Log lines as JSON (``LOG_FORMAT=json``): the app log, gunicorn's error log and the access log.

One object per line with ``time``, ``level``, ``logger`` and ``message``, plus the id of the request
being answered when the line was written (a context variable the ASGI entry sets per request) and
the formatted traceback as ``exception``. The plain-text format stays the default.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

import orjson

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The request a line was logged for; set by service.http.asgi (event loop) and the Flask lane.
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")


def timestamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """A LogRecord as one JSON object; ``extra={"fields": {...}}`` adds keys of its own."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            doc["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure(level: str, log_format: str) -> None:
    """The worker's root logger: plain text, or JSON lines on stderr."""
    if log_format != "json":
        logging.basicConfig(level=level.upper(), format=TEXT_FORMAT)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)


def gunicorn_logconfig(level: str) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict`` that writes its own (master and worker) lines as JSON too."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "service.logs.JsonFormatter"}},
        "handlers": {"error_console": handler},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"level": level.upper(), "handlers": [], "propagate": False},
        },
        "root": {"level": level.upper(), "handlers": ["error_console"]},
    }
