"""Request ids and JSON log lines."""

from __future__ import annotations

import logging

import orjson
import pytest

from service.http.identity import RequestIds
from service.logs import REQUEST_ID, JsonFormatter


@pytest.mark.parametrize("sent", [b"abc", b"123e4567-e89b-12d3-a456-426614174000", b"a.b:c_d-e", b"x" * 128])
def test_a_sane_client_id_is_kept(sent: bytes) -> None:
    assert RequestIds().choose(sent) == sent.decode()


@pytest.mark.parametrize(
    "sent", [None, b"", b"x" * 129, b"has space", b"new\nline", b"caf\xc3\xa9", b"<script>"]
)
def test_anything_else_is_replaced(sent: bytes | None) -> None:
    ids = RequestIds()
    first, second = ids.choose(sent), ids.choose(sent)
    assert first != second and first.split("-")[0] == second.split("-")[0]
    assert RequestIds().choose(None).split("-")[0] != first.split("-")[0]  # another worker's prefix


def test_json_lines_carry_the_request_id_and_the_traceback() -> None:
    record = logging.LogRecord("service.x", logging.ERROR, __file__, 1, "failed %s", ("here",), None)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    token = REQUEST_ID.set("req-7")
    try:
        doc = orjson.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert doc["message"] == "failed here" and doc["level"] == "error" and doc["logger"] == "service.x"
    assert doc["request_id"] == "req-7" and "ValueError: boom" in doc["exception"]
