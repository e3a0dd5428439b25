"""The executor for a model with batching switched off: each request is one call of the model."""

from __future__ import annotations

import asyncio

from service.batching.arrays import Arrays
from service.batching.runner import OnBatch, Run, reporting
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

    async def submit_async(self, inputs: Arrays, timeout: float | None = None) -> Arrays:
        # Off the event loop: a model call would otherwise stall every other connection.
        return await asyncio.get_running_loop().run_in_executor(None, self.submit, inputs, timeout)

    def close(self, timeout: float | None = None) -> None:
        self._closed = True
