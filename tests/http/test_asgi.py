"""service.http.asgi on an event loop: body limits and streaming, disconnects, headers, lifespan, batching.

The route and error tables run through this app in the other ``tests/http`` modules; these are the cases only
raw ASGI messages can express (how much of a body is read, a client that goes away) and the
event loop's own job: many requests in flight on one thread, merged into batches.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from service.config import Settings, load_settings
from service.http.asgi import ServingApp, create_app
from service.models.loading import build_registry
from service.models.servable import END

LIMIT = 10_000


@pytest.fixture(scope="module")
def settings(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("asgi")
    return load_settings(
        {}, model_repository=tiny_template, data_dir=root / "var", max_body_bytes=LIMIT, batch_timeout=0.002
    )


@pytest.fixture(scope="module")
def app(settings: Settings) -> Iterator[ServingApp]:
    registry = build_registry(settings)
    registry.sync()
    yield create_app(settings, registry)
    registry.stop()


class Exchange:
    """One request played against the app: the body arrives in ``chunks``, then maybe a disconnect."""

    def __init__(self, chunks: list[bytes], disconnect: bool = False) -> None:
        self.chunks, self.disconnect = list(chunks), disconnect
        self.reads = 0
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        self.reads += 1
        if self.chunks:
            chunk = self.chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks) or self.disconnect}
        if self.disconnect:
            return {"type": "http.disconnect"}
        raise AssertionError("The app read past the end of the body.")

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])

    @property
    def json(self) -> Any:
        return orjson.loads(self.sent[1]["body"])


def scope(path: str, headers: list[tuple[bytes, bytes]], method: str = "POST") -> dict[str, Any]:
    return {
        "type": "http", "http_version": "1.1", "method": method, "path": path, "headers": headers,
        "query_string": b"", "server": ("127.0.0.1", 8501),
    }  # fmt: skip


def play(
    app: ServingApp, path: str, chunks: list[bytes], headers: list[tuple[bytes, bytes]], **kw: Any
) -> Exchange:
    exchange = Exchange(chunks, **kw)
    asyncio.run(app(scope(path, headers), exchange.receive, exchange.send))
    return exchange


def json_headers(length: int | None) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json")]
    return headers + ([] if length is None else [(b"content-length", str(length).encode())])


def test_a_declared_length_over_the_limit_is_refused_without_reading(app: ServingApp) -> None:
    exchange = play(app, "/v1/models/regressor:predict", [b"x" * 100], json_headers(LIMIT + 1))
    assert exchange.status == 413 and "exceeds the limit of 10000 bytes" in exchange.json["error"]
    assert exchange.reads == 0  # not a byte read (nor a 100 Continue sent)


def test_a_chunked_body_is_refused_once_it_passes_the_limit(app: ServingApp) -> None:
    chunks = [b" " * 4_000] * 10  # 40 kB without a Content-Length
    exchange = play(app, "/v2/models/regressor/infer", chunks, json_headers(None))
    assert exchange.status == 413 and exchange.reads == 3  # stopped at the chunk that crossed 10 kB


def test_a_body_in_many_chunks_is_joined(app: ServingApp) -> None:
    body = orjson.dumps({"instances": [1.0, 2.0, 3.0]})
    chunks = [body[i : i + 5] for i in range(0, len(body), 5)]
    exchange = play(app, "/v1/models/regressor/versions/2:predict", chunks, json_headers(None))
    assert (exchange.status, exchange.json) == (200, {"predictions": [3.5, 4.0, 4.5]})


def test_a_client_that_leaves_mid_body_gets_nothing_and_breaks_nothing(app: ServingApp) -> None:
    exchange = play(
        app, "/v1/models/regressor:predict", [b'{"instances": ['], json_headers(None), disconnect=True
    )
    assert exchange.sent == []
    again = play(app, "/v1/models/regressor:predict", [b'{"instances": [2.0]}'], json_headers(20))
    assert again.status == 200


def test_headers_keep_their_usual_casing_and_binary_answers_carry_the_header_length(
    app: ServingApp,
) -> None:
    body = orjson.dumps({"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2]}]})
    exchange = play(app, "/v2/models/regressor/versions/2/infer", [body], json_headers(len(body)))
    assert exchange.headers[b"Content-Type"] == b"application/json"
    assert exchange.headers[b"Content-Length"] == str(len(exchange.sent[1]["body"])).encode()
    binary = orjson.dumps(
        {
            "inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2]}],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
        }
    )
    exchange = play(app, "/v2/models/regressor/versions/2/infer", [binary], json_headers(len(binary)))
    header_length = int(exchange.headers[b"Inference-Header-Content-Length"])
    payload = exchange.sent[1]["body"]
    assert exchange.headers[b"Content-Type"] == b"application/octet-stream"
    assert np.frombuffer(payload[header_length:], "<f4").tolist() == [3.5, 4.0]


def test_other_methods_and_routes_go_to_flask(app: ServingApp) -> None:
    exchange = Exchange([b""])
    asyncio.run(app(scope("/v1/models/regressor:predict", [], "GET"), exchange.receive, exchange.send))
    assert exchange.status == 405 and exchange.json == {"error": ":predict takes POST, not GET."}
    exchange = Exchange([b""])
    asyncio.run(app(scope("/v1/models/regressor", [], "GET"), exchange.receive, exchange.send))
    assert exchange.status == 200 and exchange.json["model_version_status"][0]["state"] == "AVAILABLE"


def test_concurrent_requests_on_one_loop_are_batched_and_answered_exactly(app: ServingApp) -> None:
    rng = np.random.default_rng(3)
    images = rng.random((48, 28, 28)).astype(np.float32)
    bodies = [orjson.dumps({"instances": image[None]}, option=orjson.OPT_SERIALIZE_NUMPY) for image in images]
    batcher = app.registry._models["digits"].servables[1].executor  # type: ignore[union-attr]
    calls: list[int] = []
    run = batcher._run  # type: ignore[union-attr]
    batcher._run = lambda inputs: calls.append(len(inputs["images"])) or run(inputs)  # type: ignore[union-attr]

    async def one(body: bytes) -> Exchange:
        exchange = Exchange([body])
        await app(
            scope("/v1/models/digits:predict", json_headers(len(body))), exchange.receive, exchange.send
        )
        return exchange

    async def together() -> list[Exchange]:
        return await asyncio.gather(*(one(body) for body in bodies))

    try:
        batched = asyncio.run(together())
        calls_together = list(calls)
        alone = [asyncio.run(one(body)) for body in bodies]
    finally:
        batcher._run = run  # type: ignore[union-attr]
    assert max(calls_together) > 1 and len(calls_together) < len(bodies)  # merged into batches
    assert [e.status for e in batched] == [200] * len(bodies)
    assert [e.json for e in batched] == [e.json for e in alone]  # bit for bit, as JSON numbers


def test_lifespan_startup_and_a_shutdown_that_drains_the_registry(settings: Settings) -> None:
    registry = build_registry(settings)
    registry.sync()
    app = create_app(settings, registry)
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert {s.state for s in registry.status("regressor")} == {END}


def test_in_flight_gauge_counts_requests_being_answered(app: ServingApp) -> None:
    from prometheus_client import REGISTRY

    def in_flight() -> float:
        return REGISTRY.get_sample_value("serving_in_flight_requests", {"protocol": "tfserving"}) or 0.0

    batcher = app.registry._models["regressor"].servables[2].executor  # type: ignore[union-attr]
    run, seen = batcher._run, []  # type: ignore[union-attr]
    batcher._run = lambda inputs: seen.append(in_flight()) or run(inputs)  # type: ignore[union-attr]
    try:
        before = in_flight()
        exchange = play(app, "/v1/models/regressor:predict", [b'{"instances": [1.0]}'], json_headers(20))
    finally:
        batcher._run = run  # type: ignore[union-attr]
    assert exchange.status == 200
    assert seen == [before + 1] and in_flight() == before


def test_with_batching_off_the_model_still_runs_off_the_loop(tiny_template: Path, tmp_path: Path) -> None:
    settings = load_settings({}, model_repository=tiny_template, data_dir=tmp_path / "var", batching=False)
    registry = build_registry(settings)
    registry.sync()
    try:
        app = create_app(settings, registry)
        threads: list[str] = []
        servable = registry._models["regressor"].servables[2]
        run = servable.executor._run  # type: ignore[union-attr]
        servable.executor._run = lambda inputs: threads.append(threading.current_thread().name) or run(inputs)  # type: ignore[union-attr]
        exchange = play(app, "/v1/models/regressor:predict", [b'{"instances": [1.0]}'], json_headers(20))
    finally:
        registry.stop()
    assert (exchange.status, exchange.json) == (200, {"predictions": [3.5]})
    assert threads and threads[0] != threading.main_thread().name
