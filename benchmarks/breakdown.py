"""Where one request's time goes inside a worker: each stage of the inference lane, timed in-process.

Builds the real app (all models, micro-batching, multiprocess metrics as under gunicorn), then
calls its ASGI entry point on an event loop with one request at a time, the stages wrapped in
timers. No sockets and no gunicorn: what is left of a request's cost over the wire is HTTP
parsing, the gunicorn worker and the kernel. Prints one JSON document.

    .venv/bin/python -m benchmarks.breakdown --model-repository models --body one.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

# Multiprocess metrics, as in a gunicorn worker: prometheus_client decides at import time.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-metrics-"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

STAGES: dict[str, float] = defaultdict(float)  # seconds per stage, summed over the timed requests


def timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            STAGES[stage] += time.perf_counter() - started

    return wrapper


def timed_async(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Times from the call until the awaitable it returns is done (the request's wait included)."""

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            STAGES[stage] += time.perf_counter() - started

    return wrapper


def instrument() -> None:
    """Wrap the stages where the service code looks them up (module attributes)."""
    from service import inference
    from service.metrics import RequestRecord
    from service.models import runtime, servable

    inference.decode_predict = timed("decode", inference.decode_predict)  # type: ignore[assignment]
    inference.encode_predict = timed("encode", inference.encode_predict)  # type: ignore[assignment]
    inference.decode_infer = timed("decode", inference.decode_infer)  # type: ignore[assignment]
    inference.encode_infer = timed("encode", inference.encode_infer)  # type: ignore[assignment]
    inference.derive = timed("postprocess (labels)", inference.derive)  # type: ignore[assignment]
    servable.Servable.predict_async = timed_async("batcher + model", servable.Servable.predict_async)
    runtime.LoadedModel.__call__ = timed("model call (TF)", runtime.LoadedModel.__call__)
    RequestRecord.finish = timed("request metrics", RequestRecord.finish)  # type: ignore[method-assign]


def scope(path: str, body: bytes, header_length: int | None) -> dict[str, Any]:
    headers = [(b"content-length", str(len(body)).encode())]
    if header_length is None:
        headers.append((b"content-type", b"application/json"))
    else:
        headers += [(b"content-type", b"application/octet-stream")]
        headers.append((b"inference-header-content-length", str(header_length).encode()))
    return {"type": "http", "method": "POST", "path": path, "headers": headers, "query_string": b""}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.breakdown", description=__doc__)
    parser.add_argument("--model-repository", type=Path, required=True)
    parser.add_argument("--body", type=Path, required=True, help="a TF Serving :predict body for mnist")
    parser.add_argument(
        "--header-length", type=int, help="V2 binary body: its JSON header's length (posts to :infer)"
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument(
        "--reps", type=int, default=5, help="repetitions; the one with the median total is kept"
    )
    args = parser.parse_args()

    from service.config import load_settings
    from service.http.asgi import create_app

    instrument()
    app = create_app(
        load_settings(
            {
                "MODEL_REPOSITORY": str(args.model_repository),
                "POLL_INTERVAL": "3600",
                "PROMETHEUS_MULTIPROC_DIR": os.environ["PROMETHEUS_MULTIPROC_DIR"],
            }
        )
    )
    body = args.body.read_bytes()
    path = "/v1/models/mnist:predict" if args.header_length is None else "/v2/models/mnist/infer"
    request = scope(path, body, args.header_length)
    loop = asyncio.new_event_loop()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def request_once() -> None:
        sent: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(request, receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"The app answered {sent[0]['status']}: {sent[1]['body'][:200]!r}.")

    def call() -> None:
        loop.run_until_complete(request_once())

    for _ in range(300):
        call()
    reps = []
    for _ in range(args.reps):
        STAGES.clear()
        STAGES["whole request (ASGI)"] = 0.0
        timed_call = timed("whole request (ASGI)", call)
        for _ in range(args.requests):
            timed_call()
        reps.append({k: v / args.requests * 1e6 for k, v in STAGES.items()})
    reps.sort(key=lambda r: r["whole request (ASGI)"])
    chosen = reps[len(reps) // 2]
    chosen["spread of whole (min-max us)"] = [
        round(reps[0]["whole request (ASGI)"]),
        round(reps[-1]["whole request (ASGI)"]),
    ]  # type: ignore[assignment]
    print(orjson.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in chosen.items()}).decode())


if __name__ == "__main__":
    main()
