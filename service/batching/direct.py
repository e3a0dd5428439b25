"""The executor for a model with batching switched off: each request is one call of the model."""

from __future__ import annotations

import asyncio
import time

from service.batching.arrays import Arrays, row_count
from service.batching.runner import OnBatch, Run, reporting
from service.batching.scheduler import Timing
from service.errors import Unavailable


class DirectExecutor:
    """Calls the model on the request thread: batching switched off for this model."""

    def __init__(self, run: Run, on_batch: OnBatch | None = None) -> None:
        self._run = reporting(run, on_batch, "a model without batching")
        self._closed = False

    def submit(self, inputs: Arrays, timeout: float | None = None) -> Arrays:
        if self._closed:
            raise Unavailable("The model version is shutting down.")
        return self._run(inputs)

    async def submit_async(
        self, inputs: Arrays, timeout: float | None = None, timing: Timing | None = None
    ) -> Arrays:
        # Off the event loop: a model call would otherwise stall every other connection.
        return await asyncio.get_running_loop().run_in_executor(None, self._timed, inputs, timing)

    def _timed(self, inputs: Arrays, timing: Timing | None) -> Arrays:
        started = time.monotonic()
        outputs = self.submit(inputs)
        if timing is not None:
            timing.batch_started, timing.batch_finished = started, time.monotonic()
            timing.batch_rows = row_count(inputs)
        return outputs

    def close(self, timeout: float | None = None) -> None:
        self._closed = True
