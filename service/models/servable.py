"""One loaded model version: its card, its executor (micro-batcher or direct call) and in-flight count."""

from __future__ import annotations

import threading
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from service.errors import Unavailable
from service.models.card import ModelCard

Arrays = dict[str, np.ndarray]

# TF Serving's ModelVersionStatus states.
START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"
STATES = (START, LOADING, AVAILABLE, UNLOADING, END)


@dataclass(frozen=True)
class VersionStatus:
    """One version's state as TF Serving reports it (``STATES``); ``error`` set for a failed load.

    ``error_code`` is the canonical status code name reported with ``error`` (TF Serving passes
    the load error's own code through; the registry may not know it, hence ``UNKNOWN``).
    """

    version: int
    state: str
    error: str | None = None
    error_code: str = "UNKNOWN"


class Executor(Protocol):
    def submit(self, inputs: Arrays, timeout: float | None = None) -> Arrays: ...

    # ``timing`` (service.batching.scheduler.Timing) receives when the batch ran and its rows.
    def submit_async(
        self, inputs: Arrays, timeout: float | None = None, timing: Any = None
    ) -> Awaitable[Arrays]: ...

    def close(self, timeout: float | None = None) -> None: ...


class Servable:
    """A version as the data plane sees it. ``state`` and ``error`` feed the status endpoints."""

    def __init__(self, name: str, version: int, fingerprint: tuple[Any, ...] = ()) -> None:
        self.name = name
        self.version = version
        self.fingerprint = fingerprint
        self.state = START
        self.error: str | None = None
        self.damage: str | None = None  # set while its files on disk no longer load (it keeps serving)
        self.card: ModelCard | None = None
        self.executor: Executor | None = None
        self._inflight = 0
        self._idle = threading.Condition()

    def activate(self, card: ModelCard, executor: Executor) -> None:
        self.card, self.executor = card, executor
        self.state = AVAILABLE

    def fail(self, error: str) -> None:
        self.state, self.error = END, error

    def enter(self) -> None:
        """Register a request that will call :meth:`leave`; used by the registry under its lock."""
        with self._idle:
            self._inflight += 1

    def leave(self) -> None:
        with self._idle:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.notify_all()

    def _ready_executor(self) -> Executor:
        if self.executor is None or self.state not in (AVAILABLE, UNLOADING):
            raise Unavailable(f"Model {self.name!r} version {self.version} is not available ({self.state}).")
        return self.executor

    def predict(self, inputs: Arrays, timeout: float | None = None) -> Arrays:
        return self._ready_executor().submit(inputs, timeout=timeout)

    def predict_async(
        self, inputs: Arrays, timeout: float | None = None, timing: Any = None
    ) -> Awaitable[Arrays]:
        """:meth:`predict` for the event loop: awaitable, never blocks the calling thread.

        ``timing`` (e.g. the request's RequestRecord) receives the batch's marks.
        """
        return self._ready_executor().submit_async(inputs, timeout=timeout, timing=timing)

    def unload(self, timeout: float) -> None:
        """Wait for in-flight requests (bounded), then release the executor and the model."""
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout=timeout)
        if self.executor is not None:
            self.executor.close(timeout=timeout)
        self.executor = None
        self.state = END
