"""The micro-batcher: merges concurrent requests for one model version into single calls of its model.

Batches run one at a time, normally on a background worker thread. A request that finds the
batcher idle, with the policy (:mod:`service.batching.policy`) seeing no reason to wait for
company, runs on its own request thread instead: a lone request then costs two lock round-trips
rather than two thread hand-offs (tens of microseconds on a busy 2-core box).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from service.batching.arrays import Arrays, chunks, join, row_count
from service.batching.policy import Traffic, plan, wait_time
from service.batching.runner import OnBatch, Run, execute, reporting
from service.batching.slot import Slot
from service.errors import BatchTimeout, Overloaded, Unavailable

log = logging.getLogger(__name__)


OnWait = Callable[[Sequence[float]], None]  # seconds each slot of a batch waited in the queue
OnDepth = Callable[[int], None]  # requests left queued when a batch starts


class Timing(Protocol):
    """Where a request wants its batch's marks (``service.metrics.RequestRecord`` is one)."""

    batch_started: float
    batch_finished: float
    batch_rows: int


def note_timing(timing: Timing, slots: Sequence[Slot]) -> None:
    """A request's batch marks (time.monotonic): the first chunk's start, the last chunk's end."""
    timing.batch_started, timing.batch_finished = slots[0].started, slots[-1].finished
    timing.batch_rows = max(slot.batch_rows for slot in slots)


class MicroBatcher:
    """Merges concurrent :meth:`submit` calls into calls of ``run``, one call at a time.

    ``max_queue`` counts rows: a submit is refused while the queue already holds that many, so
    a single request larger than the limit still gets into a shorter queue (the bound is soft by
    at most one request). ``on_batch(rows, seconds)`` is called after every call of ``run``, from
    whichever thread made it, for metrics; it must be thread-safe and quick.
    """

    def __init__(
        self,
        run: Run,
        *,
        max_batch_size: int = 256,
        batch_timeout: float = 0.002,
        max_queue: int = 4096,
        name: str = "",
        on_batch: OnBatch | None = None,
        on_wait: OnWait | None = None,
        on_depth: OnDepth | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or batch_timeout < 0:
            raise ValueError("max_batch_size and max_queue must be >= 1 and batch_timeout >= 0.")
        self._max_batch, self._timeout, self._max_queue = max_batch_size, batch_timeout, max_queue
        self._label = f"model {name}" if name else "the micro-batcher"
        self._run = reporting(run, on_batch, self._label)
        self._on_wait, self._on_depth = on_wait, on_depth
        self._left = 0  # requests still queued after the last take (reported outside the lock)
        self._queue: deque[Slot] = deque()
        self._queued_rows = 0
        self._busy = False  # a batch is running, on the worker or inline on a request thread
        self._closing = False
        self._holding = False  # the worker is holding a non-full batch back for more requests
        self._traffic = Traffic()
        self._cond = threading.Condition(threading.Lock())
        self._thread = threading.Thread(target=self._work, name=f"batcher:{name or id(self)}", daemon=True)
        self._thread.start()

    @property
    def queue_depth(self) -> int:
        """Requests (chunks, for oversized ones) waiting for a batch; the running batch excluded."""
        return len(self._queue)

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    @property
    def closed(self) -> bool:
        return self._closing

    def submit(self, inputs: Arrays, timeout: float | None = None) -> Arrays:
        """Run ``inputs`` as part of a batch; block until done and return only this request's rows.

        Raises the model's own exception if ``run`` fails on these inputs, ``Unavailable`` if the
        queue is full or the batcher is closed, and ``BatchTimeout`` (an ``Unavailable``) if
        ``timeout`` seconds pass first.
        """
        slots = self._slots(inputs)
        if self._admit(slots):
            self._run_inline(slots[0])
        return self._collect(slots, timeout)

    async def submit_async(
        self, inputs: Arrays, timeout: float | None = None, timing: Timing | None = None
    ) -> Arrays:
        """:meth:`submit` for an event loop: the model never runs on the loop's thread; awaits instead.

        Cancelling the awaiting task withdraws the request's slots that have not started running.
        ``timing``, if given, receives when its batch ran and how many rows it held.
        """
        slots = self._slots(inputs)
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def resolved() -> None:  # on the worker thread, after each slot of this request
            if all(slot.done for slot in slots):
                loop.call_soon_threadsafe(_settle, done)

        for slot in slots:
            slot.on_resolved = resolved
        # Never inline on the loop: measured, it serialises every request (batches of 1, half the
        # throughput at 16 clients) and gains nothing on a single connection.
        self._admit(slots, inline=False)
        timer = None if timeout is None else loop.call_later(timeout, _settle, done)
        finished = False
        try:
            await done
            finished = all(slot.done for slot in slots)  # False: the timer settled it
        finally:
            if timer is not None:
                timer.cancel()
            if not finished:  # timed out, or the task was cancelled
                self._abandon(slots)
            # Slot -> callback -> slots is a reference cycle: left to the cyclic GC, which runs
            # rarely, each request's tensors outlived it (64 MB a request at 21,000 images).
            for slot in slots:
                slot.on_resolved = None
        if not finished:
            raise self._timed_out(timeout)
        if timing is not None:
            note_timing(timing, slots)
        return self._outputs(slots)

    def close(self, timeout: float | None = None) -> None:
        """Refuse new work, finish what is queued or running, then stop the worker. Idempotent.

        Returns after ``timeout`` even if work remains; the worker then keeps draining in the background.
        """
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:  # close() from inside run() can't join itself
            self._thread.join(timeout)

    # -- request threads

    def _slots(self, inputs: Arrays) -> list[Slot]:
        now, rows = time.monotonic(), row_count(inputs)
        if rows <= self._max_batch:
            return [Slot(inputs, rows, now)]
        return [Slot(piece, row_count(piece), now) for piece in chunks(inputs, self._max_batch)]

    def _admit(self, slots: list[Slot], inline: bool = True) -> bool:
        """Queue ``slots`` for the worker, or claim the idle batcher to run the lone slot inline (True)."""
        with self._cond:
            if self._closing:
                raise Unavailable(f"No new requests are accepted: {self._label} is shutting down.")
            if self._queued_rows >= self._max_queue:
                raise Overloaded(
                    f"Too many requests queued for {self._label}: {self._queued_rows} rows waiting (limit {self._max_queue})."
                )
            self._traffic.arrived(slots[0].arrived)
            if inline and self._may_run_inline(slots):
                self._busy = True
                self._traffic.launched(1)
                return True
            for slot in slots:
                slot.queued = True
            self._queue.extend(slots)
            self._queued_rows += sum(slot.rows for slot in slots)
            if not self._holding or self._queued_rows >= self._max_batch:
                # A holding worker re-checks when its wait ends; waking it per arrival would make
                # every request pay two extra GIL hand-offs just to be told "not yet".
                self._cond.notify()
            return False

    def _may_run_inline(self, slots: list[Slot]) -> bool:
        lone = len(slots) == 1 and not (self._busy or self._queue)
        return lone and self._wait_time(slots[0].arrived, slots[0].rows) <= 0

    def _run_inline(self, slot: Slot) -> None:
        try:
            execute([slot], self._run)
        finally:
            self._finished()
        self._report([slot])

    def _report(self, batch: Sequence[Slot], depth: int | None = None) -> None:
        """Queue metrics of a batch that ran, from the thread that ran it; never fails the batch."""
        try:
            if self._on_wait is not None:
                self._on_wait([max(0.0, slot.started - slot.arrived) for slot in batch])
            if self._on_depth is not None and depth is not None:
                self._on_depth(depth)
        except Exception:  # metrics must never cost a request its result
            log.exception("Queue metrics of %s failed.", self._label)

    def _collect(self, slots: list[Slot], timeout: float | None) -> Arrays:
        deadline = None if timeout is None else time.monotonic() + timeout
        for slot in slots:
            if not slot.wait(None if deadline is None else deadline - time.monotonic()):
                self._abandon(slots)
                raise self._timed_out(timeout)
            if slot.error is not None:
                break  # the other chunks of a failed request need not run
        return self._outputs(slots)

    def _outputs(self, slots: list[Slot]) -> Arrays:
        for slot in slots:
            if slot.error is not None:
                self._abandon(slots)
                raise slot.error
        return slots[0].outputs if len(slots) == 1 else join([slot.outputs for slot in slots])

    def _timed_out(self, timeout: float | None) -> BatchTimeout:
        return BatchTimeout(
            f"Timed out after {timeout:g} s waiting for a batch slot on {self._label}; the server is busy."
        )

    def _abandon(self, slots: Iterable[Slot]) -> None:
        # Slots still queued are withdrawn so they never run; running ones finish and are dropped.
        with self._cond:
            for slot in slots:
                if slot.queued:
                    slot.queued = False
                    self._queue.remove(slot)
                    self._queued_rows -= slot.rows

    # -- the worker thread

    def _work(self) -> None:
        batch: list[Slot] = []
        try:
            while batch := self._next_batch():
                try:
                    execute(batch, self._run)
                finally:
                    self._finished()
                self._report(batch, self._left)
                batch = []  # waiting for the next batch, hold nothing (no tensors) of this one
        finally:  # only reached with work left if something escaped execute(): never leave waiters hanging
            self._fail_all(batch)

    def _next_batch(self) -> list[Slot]:
        with self._cond:
            while True:
                if self._busy or not self._queue:
                    if self._closing and not (self._busy or self._queue):
                        return []
                    self._cond.wait()
                elif (delay := self._hold_time()) > 0:
                    self._holding = True
                    self._cond.wait(delay)
                    self._holding = False
                else:
                    self._busy = True
                    return self._take()

    def _hold_time(self) -> float:
        return 0.0 if self._closing else self._wait_time(self._queue[0].arrived, self._queued_rows)

    def _wait_time(self, oldest: float, rows: int) -> float:
        return wait_time(
            self._traffic,
            now=time.monotonic(),
            oldest=oldest,
            queued_rows=rows,
            max_batch_size=self._max_batch,
            batch_timeout=self._timeout,
        )

    def _take(self) -> list[Slot]:
        count = plan((slot.rows for slot in self._queue), self._max_batch)
        batch = [self._queue.popleft() for _ in range(count)]
        for slot in batch:
            slot.queued = False
            self._queued_rows -= slot.rows
        self._traffic.launched(count)
        self._left = len(self._queue)
        return batch

    def _finished(self) -> None:
        with self._cond:
            self._busy = False
            if self._queue or self._closing:  # a worker waiting out an inline run must hear it ended
                self._cond.notify()

    def _fail_all(self, batch: list[Slot]) -> None:
        with self._cond:
            self._closing = True
            leftovers = [*batch, *self._queue]
            self._queue.clear()
            self._queued_rows = 0
        for slot in leftovers:
            slot.resolve(error=Unavailable(f"The batching worker of {self._label} stopped unexpectedly."))


def _settle(done: asyncio.Future[None]) -> None:
    if not done.done():
        done.set_result(None)
