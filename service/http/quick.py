"""The route table's QUICK lane: liveness, readiness, model status and /metrics, on the event loop.

They read a few fields of the registry under its lock, so they are answered where the request is
parsed, never queued behind uploads and evaluations in the Flask pool: a Kubernetes probe gets its
answer however busy the worker is. /metrics reads every worker's sample files (multiprocess mode),
which takes milliseconds to tens of them with many series, so it renders on a thread of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service import metrics
from service.http import routes
from service.http.responses import JSON, json_body
from service.inference import Inference

if TYPE_CHECKING:
    from service.quality.monitor import Quality

Answer = tuple[int, bytes, dict[str, str]]
JSON_HEADERS = {"Content-Type": JSON}


class Quick:
    """Answers the QUICK routes of one worker."""

    def __init__(
        self, inference: Inference, metrics_dir: Path | None, quality: Quality | None = None
    ) -> None:
        self.inference = inference
        self.metrics_dir = metrics_dir
        self.quality = quality
        # One thread: scrapes come every few seconds; a second one would only wait for the first.
        self._render = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics")

    async def answer(self, endpoint: str, values: Mapping[str, str]) -> Answer:
        return await HANDLERS[endpoint](self, values)

    async def live(self, values: Mapping[str, str]) -> Answer:
        return _json({"live": True})

    async def ready(self, values: Mapping[str, str]) -> Answer:
        waiting = self.inference.registry.not_ready()
        if waiting:
            error = f"Waiting for a version of: {', '.join(waiting)} to become AVAILABLE."
            return _json({"ready": False, "error": error}, 503)
        return _json({"ready": True})

    async def tfs_status(self, values: Mapping[str, str]) -> Answer:
        ref = routes.model_ref(values)
        doc = self.inference.tfs_status(ref)
        verdicts = self.quality.gate_status(ref.name) if self.quality is not None else {}
        for entry in doc["model_version_status"]:  # a gated model's versions carry their gate verdict
            if int(entry["version"]) in verdicts:
                entry["gate"] = verdicts[int(entry["version"])]
        return _json(doc)

    async def v2_model_ready(self, values: Mapping[str, str]) -> Answer:
        ready = self.inference.v2_ready(routes.model_ref(values))
        doc: dict[str, Any] = {"name": values["name"], "ready": ready}
        if "version" in values:
            doc["version"] = values["version"]
        return _json(doc, 200 if ready else 503)

    async def metrics(self, values: Mapping[str, str]) -> Answer:
        loop = asyncio.get_running_loop()
        payload, content_type = await loop.run_in_executor(self._render, metrics.render, self.metrics_dir)
        return 200, payload, {"Content-Type": content_type}


def _json(doc: Any, status: int = 200) -> Answer:
    return status, json_body(doc), JSON_HEADERS


HANDLERS: dict[str, Callable[[Quick, Mapping[str, str]], Awaitable[Answer]]] = {
    "live": Quick.live,
    "ready": Quick.ready,
    "tfs_status": Quick.tfs_status,
    "v2_model_ready": Quick.v2_model_ready,
    "metrics": Quick.metrics,
}
