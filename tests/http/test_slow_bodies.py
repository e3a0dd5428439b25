"""service.http.asgi with slow and encoded bodies, on both lanes: JSON 408s, gzip, refusals counted."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.config import load_settings
from service.http.asgi import ServingApp, create_app
from service.models.loading import build_registry

TIMEOUT = 0.5


@pytest.fixture(scope="module")
def app(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingApp]:
    root = tmp_path_factory.mktemp("slow")
    settings = load_settings(
        {},
        model_repository=tiny_template,
        data_dir=root / "var",
        body_timeout=TIMEOUT,
        max_body_bytes=100_000,
    )
    registry = build_registry(settings)
    registry.sync()
    yield create_app(settings, registry)
    registry.stop()


class Client:
    """Sends ``chunks`` of a body, then stalls (never sends the rest) if ``stall``."""

    def __init__(self, chunks: list[bytes], stall: bool) -> None:
        self.chunks, self.stall = list(chunks), stall
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if not self.chunks:
            await asyncio.sleep(3600)
        chunk = self.chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks) or self.stall}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return {k.lower(): v for k, v in self.sent[0]["headers"]}

    @property
    def json(self) -> Any:
        return orjson.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


def play(
    app: ServingApp, path: str, chunks: list[bytes], headers: dict[str, str], stall: bool = False
) -> Client:
    client = Client(chunks, stall)
    scope = {
        "type": "http", "http_version": "1.1", "method": "POST", "path": path, "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()], "server": ("127.0.0.1", 8501),
    }  # fmt: skip
    asyncio.run(app(scope, client.receive, client.send))
    return client


JSON = {"Content-Type": "application/json"}
NDJSON = {"Content-Type": "application/x-ndjson"}


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/models/regressor:predict", {**JSON, "Content-Length": "100"}),  # model lane, short body
        ("/v2/models/regressor/infer", JSON),  # model lane, chunked
        ("/v1/models/regressor:evaluate", {**JSON, "Content-Length": "100"}),  # Flask lane, read on the loop
        ("/v1/models/regressor:evaluate", NDJSON),  # Flask lane, streamed through the bridge
    ],
)
def test_a_stalled_body_gets_a_json_408_and_the_connection_closes(
    app: ServingApp, path: str, headers: dict[str, str]
) -> None:
    started = time.perf_counter()
    client = play(app, path, [b'{"instance'], headers, stall=True)
    assert client.status == 408, client.json
    assert "did not arrive within 0.5 seconds" in client.json["error"]
    assert client.headers[b"connection"] == b"close"
    assert time.perf_counter() - started < TIMEOUT + 1.0


def test_gzip_bodies_on_both_lanes(app: ServingApp) -> None:
    predict = gzip.compress(b'{"instances": [1.0, 2.0]}')
    answer = play(app, "/v1/models/regressor:predict", [predict], {**JSON, "Content-Encoding": "gzip"})
    assert (answer.status, answer.json) == (200, {"predictions": [3.5, 4.0]})
    evaluate = gzip.compress(b'{"instances": [1.0, 2.0], "labels": [3.5, 4.0]}')
    scored = play(app, "/v1/models/regressor:evaluate", [evaluate], {**JSON, "Content-Encoding": "gzip"})
    assert scored.status == 200 and scored.json["metrics"]["mse"] == 0.0
    lines = b"".join(b'{"instance": %d, "label": %d}\n' % (x, x / 2 + 3) for x in range(0, 40, 2))
    packed = gzip.compress(lines)
    streamed = play(
        app,
        "/v1/models/regressor:evaluate",
        [packed[:50], packed[50:]],
        {**NDJSON, "Content-Encoding": "gzip"},
    )
    assert streamed.status == 200 and streamed.json["sample_count"] == 20


@pytest.mark.parametrize("path", ["/v1/models/regressor:predict", "/v1/models/regressor:evaluate"])
def test_a_zip_bomb_is_a_413_and_other_encodings_415(app: ServingApp, path: str) -> None:
    bomb = gzip.compress(b" " * 10_000_000)
    refused = play(app, path, [bomb], {**JSON, "Content-Encoding": "gzip"})
    assert refused.status == 413 and "limit of 100000 bytes" in refused.json["error"]
    other = play(app, path, [b"x"], {**JSON, "Content-Encoding": "br"})
    assert other.status == 415 and "Content-Encoding 'br'" in other.json["error"]
