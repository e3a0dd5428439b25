"""Admission by bytes through the real app: decoded tensors per request (413), bodies per worker (503)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.config import load_settings
from service.http.asgi import ServingApp, create_app
from service.models.loading import build_registry, rows_per_call

IMAGE_BYTES = 28 * 28 * 4


@pytest.fixture(scope="module")
def app(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingApp]:
    root = tmp_path_factory.mktemp("bounds")
    settings = load_settings(
        {},
        model_repository=tiny_template,
        data_dir=root / "var",
        max_tensor_bytes=3 * IMAGE_BYTES,
        max_inflight_bytes=1_000,
        max_body_bytes=1_000_000,
    )
    registry = build_registry(settings)
    registry.sync()
    yield create_app(settings, registry)
    registry.stop()


async def call(
    app: ServingApp, path: str, body: bytes, hold: asyncio.Event | None = None
) -> tuple[int, Any, dict]:
    """POST ``body``; with ``hold``, the body's last byte waits until the event is set."""
    sent: list[dict[str, Any]] = []
    parts = [body[:-1], body[-1:]] if hold is not None else [body]

    async def receive() -> dict[str, Any]:
        part = parts.pop(0)
        if not parts and hold is not None:
            await hold.wait()
        return {"type": "http.request", "body": part, "more_body": bool(parts)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "path": path,
        "headers": headers,
        "query_string": b"",
    }
    await app(scope, receive, send)
    return sent[0]["status"], orjson.loads(sent[1]["body"]), dict(sent[0]["headers"])


def images(count: int) -> list[list[list[float]]]:
    return [[[0.5] * 28] * 28] * count


@pytest.mark.parametrize(
    ("path", "doc"),
    [
        ("/v1/models/digits:predict", {"instances": images(4)}),
        ("/v2/models/digits/infer", {"inputs": [{"name": "images", "shape": [4, 28, 28], "datatype": "FP32", "data": [0.5] * 4 * 784}]}),
        # refused from the declared shape, before its (missing) data would be decoded
        ("/v2/models/digits/infer", {"inputs": [{"name": "images", "shape": [5000, 28, 28], "datatype": "FP32", "data": [0.5]}]}),
    ],
)  # fmt: skip
def test_decoded_tensors_over_the_cap_are_413s(app: ServingApp, path: str, doc: dict[str, Any]) -> None:
    status, answer, _ = asyncio.run(call(app, path, orjson.dumps(doc)))
    assert status == 413 and f"at most {3 * IMAGE_BYTES} are allowed" in answer["error"]
    status, answer, _ = asyncio.run(
        call(app, "/v1/models/digits:predict", orjson.dumps({"instances": images(3)}))
    )
    assert status == 200 and len(answer["predictions"]) == 3


def test_a_body_that_does_not_fit_beside_the_others_is_a_503_with_retry_after(app: ServingApp) -> None:
    first_body = orjson.dumps({"instances": [1.0] * 200})  # ~815 bytes of the 1,000 allowed
    second_body = orjson.dumps({"instances": [2.0] * 80})  # ~335 bytes

    async def scenario() -> tuple[Any, ...]:
        hold = asyncio.Event()
        first = asyncio.ensure_future(call(app, "/v1/models/regressor:predict", first_body, hold))
        await asyncio.sleep(0.05)  # the first body is arriving, its bytes held
        refused = await call(app, "/v1/models/regressor:predict", second_body)
        hold.set()
        answered = await first
        after = await call(app, "/v1/models/regressor:predict", second_body)  # its bytes were given back
        return refused, answered, after

    refused, answered, after = asyncio.run(scenario())
    assert refused[0] == 503 and refused[2][b"Retry-After"] == b"1" and "limit is 1000" in refused[1]["error"]
    assert answered[0] == 200 and after[0] == 200
    assert app.budget.used == 0


class _Model:
    def __init__(self, bytes_per_row: int, row_multiple: int) -> None:
        self.bytes_per_row, self.row_multiple = bytes_per_row, row_multiple


@pytest.mark.parametrize(
    ("bytes_per_row", "multiple", "rows"),
    [(0, 1, 1024), (226 * 1024, 2, 288), (200 * 1024, 4, 324), (1 << 30, 2, 2), (1000, 1, 1024)],
)
def test_rows_per_call_fit_the_working_memory_cap(bytes_per_row: int, multiple: int, rows: int) -> None:
    assert rows_per_call(_Model(bytes_per_row, multiple), 1024, 64 * 1024 * 1024) == rows  # type: ignore[arg-type]
