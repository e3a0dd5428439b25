"""A small pool of daemon threads whose results come back one at a time, in the order they finish.

The batch job needs what ``concurrent.futures`` makes awkward: each chunk handled the moment it is
done (so it is checkpointed and counted at once), and a Ctrl-C that ends the job promptly. Executor
threads are joined when the interpreter exits, so one request stuck in a 30 s timeout (or a retry
loop against a dead server) would hold the exit; these threads are daemons, so an interrupted job
abandons its in-flight requests and exits at once.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
_STOP = object()


class Workers(Generic[T]):
    """``count`` daemon threads running submitted calls; :meth:`next_result` yields each outcome."""

    def __init__(self, count: int, name: str = "job-worker") -> None:
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._results: queue.SimpleQueue[tuple[Any, T | None, BaseException | None]] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True) for i in range(max(1, count))
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, key: Any, call: Callable[[], T]) -> None:
        self._tasks.put((key, call))

    def next_result(self, timeout: float | None = None) -> tuple[Any, T]:
        """The key and value of the next call to finish; re-raises what a call raised.

        KeyboardInterrupt included: a scorer interrupted in a thread interrupts the job.
        """
        key, value, error = self._results.get(timeout=timeout)
        if error is not None:
            raise error
        return key, cast(T, value)

    def finished(self) -> list[tuple[Any, T]]:
        """Results already waiting, successes only: saved before a failure ends the job."""
        done: list[tuple[Any, T]] = []
        while True:
            try:
                key, value, error = self._results.get_nowait()
            except queue.Empty:
                return done
            if error is None:
                done.append((key, cast(T, value)))

    def close(self, grace: float = 1.0) -> None:
        """Stop taking work; wait up to ``grace`` seconds in all for calls in progress, then abandon them."""
        self._stopping.set()
        for _ in self._threads:
            self._tasks.put(_STOP)
        deadline = time.monotonic() + grace
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _work(self) -> None:
        while True:
            task = self._tasks.get()
            if task is _STOP or self._stopping.is_set():
                return
            key, call = task
            try:
                self._results.put((key, call(), None))
            except BaseException as exc:  # handed to the main thread, which re-raises it
                self._results.put((key, None, exc))
