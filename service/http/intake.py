"""Request bodies as the event loop reads them: bounded in size and in waiting time, gzip inflated,
and counted against the worker's budget of body bytes in flight.

Both lanes read through :class:`Body`: the ASGI entry reads a whole body (model routes, and JSON
bodies for the Flask lane, so a slow upload never holds a Flask thread), or hands :meth:`Body.receive`
to the WSGI bridge for a streamed NDJSON evaluation. The waiting budget counts only time spent
waiting for the client, in total over the body, so a body trickled a byte at a time ends in a 408
while a fast stream that the server scores as it reads can take as long as scoring takes.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from service.errors import InvalidInput, Overloaded, PayloadTooLarge, RequestTimeout, UnsupportedMediaType

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]

GZIP = frozenset({"gzip", "x-gzip"})
IDENTITY = frozenset({"", "identity"})
# Inflated at most this much per step: a small compressed body never allocates a large one at once.
INFLATE_STEP = 1 << 20
TICK_SECONDS = 0.25  # how late past its deadline a stalled read may be noticed


class ClientGone(Exception):
    """The client disconnected before its request body arrived; there is nobody to answer."""


class Budget:
    """Body bytes one worker holds for requests in progress; past ``limit``, new bytes are refused.

    A request is always let in when nothing else is held, so any body within MAX_BODY_BYTES can be
    served; the limit bounds how many large bodies share a worker's memory at once.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        if self.used and self.used + size > self.limit:
            raise Overloaded(
                f"The server holds {self.used} bytes of request bodies, its limit is {self.limit}; "
                "retry shortly or send smaller requests."
            )
        self.used += size

    def give(self, size: int) -> None:
        self.used -= size


class _Wait:
    __slots__ = ("deadline", "expired", "task")

    def __init__(self, task: asyncio.Task[Any], deadline: float) -> None:
        self.task, self.deadline, self.expired = task, deadline, False


class Deadlines:
    """Cancels body reads that wait past their deadline: one watcher per event loop, ticking, so a
    read costs a dict entry instead of a timer."""

    def __init__(self) -> None:
        self._waits: dict[int, _Wait] = {}
        self._ticker: asyncio.Task[None] | None = None

    def add(self, deadline: float) -> _Wait:
        task = asyncio.current_task()
        assert task is not None
        wait = _Wait(task, deadline)
        self._waits[id(wait)] = wait
        if self._ticker is None or self._ticker.done() or self._ticker.get_loop() is not task.get_loop():
            self._ticker = task.get_loop().create_task(self._tick())
        return wait

    def discard(self, wait: _Wait) -> None:
        self._waits.pop(id(wait), None)

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = loop.time()
            for wait in [w for w in self._waits.values() if w.deadline <= now]:
                self.discard(wait)
                wait.expired = True
                wait.task.cancel()


class Body:
    """One request's body: ``receive`` bounded in waiting time, inflated, size-checked and budgeted.

    ``limit`` bounds the (inflated) body in bytes, None for a stream bounded elsewhere (NDJSON:
    per line and in rows); a stream is not counted in the budget, as it is never held whole.
    """

    def __init__(
        self,
        receive: Receive,
        *,
        encoding: str,
        declared: int | None,
        timeout: float,
        deadlines: Deadlines,
        limit: int | None,
        budget: Budget | None,
    ) -> None:
        if encoding not in GZIP | IDENTITY:
            raise UnsupportedMediaType(
                f"Content-Encoding {encoding!r} is not supported; send the body as is or gzip-compressed."
            )
        self._receive = receive
        self._inflater = _Inflater() if encoding in GZIP else None
        self._left = timeout
        self._timeout = timeout
        self._deadlines = deadlines
        self._limit = limit
        self._budget = budget
        self.size = 0  # bytes handed on (inflated)
        self.held = 0  # bytes taken from the budget
        self._more = self._wire_more = True
        if limit is not None and declared is not None:
            if declared > limit:
                raise too_large(limit)  # before reading a byte (and before any 100 Continue)
            if self._inflater is None:
                self._hold(declared)  # the whole body is coming: refuse it now rather than midway

    @property
    def done(self) -> bool:
        return not self._more

    async def read(self) -> bytes:
        """The whole body (refused with 413 as soon as it passes the limit)."""
        parts = []
        while self._more:
            if self._inflater is not None and self._inflater.pending:
                await asyncio.sleep(0)  # inflating a step at a time: let the loop serve others between
            parts.append(await self.next())
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def receive(self) -> Message:
        """The body as ASGI messages, for the WSGI bridge; a client gone ends it as a disconnect."""
        try:
            piece = await self.next()
        except ClientGone:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": piece, "more_body": self._more}

    async def next(self) -> bytes:
        """The next piece of the body (b"" possible); call while not :attr:`done`."""
        inflater = self._inflater
        if inflater is None or not inflater.pending:
            message = await self._timed_receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            data = message.get("body", b"")
            self._wire_more = bool(message.get("more_body", False))
            if inflater is None:
                self._more = self._wire_more
                self._count(len(data))
                return data
            inflater.push(data)
        data = inflater.step()
        self._more = self._wire_more or inflater.pending
        if not self._more:
            inflater.finish()
        self._count(len(data))
        return data

    def release(self) -> int:
        """Give the budgeted bytes back; returns how many there were."""
        held, self.held = self.held, 0
        if held and self._budget is not None:
            self._budget.give(held)
        return held

    def _count(self, size: int) -> None:
        self.size += size
        if self._limit is not None and self.size > self._limit:
            raise too_large(self._limit)
        if self.size > self.held:
            self._hold(self.size - self.held)

    def _hold(self, size: int) -> None:
        if self._budget is not None and self._limit is not None:
            self._budget.take(size)
            self.held += size

    async def _timed_receive(self) -> Message:
        loop = asyncio.get_running_loop()
        started = loop.time()
        wait = self._deadlines.add(started + self._left)
        try:
            return await self._receive()
        except asyncio.CancelledError:
            if not wait.expired:
                raise
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()  # our own cancellation, answered here: the task goes on (3.11+)
            raise RequestTimeout(
                f"The request body did not arrive within {self._timeout:g} seconds."
            ) from None
        finally:
            self._deadlines.discard(wait)
            self._left -= loop.time() - started


class _Inflater:
    """gzip members inflated one bounded step at a time; corrupt or truncated data is a 400."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._input = b""
        self.pending = False  # more output may come without more input

    def push(self, data: bytes) -> None:
        self._input, self.pending = data, bool(data)

    def step(self) -> bytes:
        try:
            out = self._z.decompress(self._input, INFLATE_STEP)
        except zlib.error as exc:
            raise InvalidInput(f"The gzip-encoded request body is corrupt: {exc}.") from None
        self._input = self._z.unconsumed_tail
        if self._z.eof and self._z.unused_data:  # another gzip member follows
            self._input, self._z = self._z.unused_data, zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        # A full step may leave output inside zlib even when every input byte was used.
        self.pending = bool(self._input) or (len(out) == INFLATE_STEP and not self._z.eof)
        return out

    def finish(self) -> None:
        if not self._z.eof:
            raise InvalidInput("The gzip-encoded request body ends before its gzip stream does.")


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body exceeds the limit of {limit} bytes.")
