"""One request's (or chunk's) place in the batch queue: its inputs and the signal its submitter waits on."""

from __future__ import annotations

import threading
from collections.abc import Callable

from service.batching.arrays import Arrays


class Slot:
    """Resolved exactly once with outputs or an error; the submitter blocks in :meth:`wait` until then."""

    # A pre-acquired bare lock is the cheapest one-shot signal in CPython: an Event is a
    # Condition plus a lock and allocates yet another lock per wait.
    __slots__ = (
        "_signal",
        "arrived",
        "batch_rows",
        "done",
        "error",
        "finished",
        "inputs",
        "on_resolved",
        "outputs",
        "queued",
        "rows",
        "started",
    )

    def __init__(self, inputs: Arrays, rows: int, arrived: float) -> None:
        self.inputs, self.rows, self.arrived = inputs, rows, arrived
        self.outputs: Arrays = {}
        self.error: BaseException | None = None
        self.queued = False  # in the batcher's queue; only changed under the batcher's lock
        self.done = False
        # When its batch's model call started and ended (time.monotonic, like ``arrived``) and how
        # many rows that call ran: queue-wait metrics, traces and the access log read them.
        self.started = self.finished = 0.0
        self.batch_rows = 0
        # Called once resolved, on the resolving thread: how an event-loop submitter gets woken.
        self.on_resolved: Callable[[], None] | None = None
        self._signal = threading.Lock()
        self._signal.acquire()

    def resolve(self, outputs: Arrays | None = None, error: BaseException | None = None) -> None:
        """First call wins; later ones are ignored so a failing worker can sweep up safely."""
        if not self.done:
            self.outputs, self.error, self.done = outputs or {}, error, True
            self._signal.release()
            if self.on_resolved is not None:
                self.on_resolved()

    def wait(self, timeout: float | None) -> bool:
        """True once resolved; False if ``timeout`` seconds passed first (``None``: wait forever)."""
        return self._signal.acquire(timeout=-1 if timeout is None else max(timeout, 0.0))
