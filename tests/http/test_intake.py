"""service.http.intake: bodies bounded in size and waiting time, gzip inflated, budgeted per worker."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from service.errors import InvalidInput, Overloaded, PayloadTooLarge, RequestTimeout, UnsupportedMediaType
from service.http.intake import INFLATE_STEP, Body, Budget, ClientGone, Deadlines

Message = dict[str, Any]


def chunks_of(
    *chunks: bytes, pause: float = 0.0, then_wait: bool = False
) -> Callable[[], Awaitable[Message]]:
    """An ASGI ``receive`` giving ``chunks`` (each after ``pause`` seconds), then hanging if asked."""
    pending = list(chunks)

    async def receive() -> Message:
        if not pending:
            await asyncio.sleep(3600)  # a client that stopped sending
        await asyncio.sleep(pause)
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending) or then_wait}

    return receive


def body(receive: Callable[[], Awaitable[Message]], **kw: Any) -> Body:
    options: dict[str, Any] = {
        "encoding": "",
        "declared": None,
        "timeout": 5.0,
        "deadlines": Deadlines(),
        "limit": 1000,
        "budget": None,
    }
    return Body(receive, **{**options, **kw})


def read(receive: Callable[[], Awaitable[Message]], **kw: Any) -> bytes:
    async def go() -> bytes:
        return await body(receive, **kw).read()

    return asyncio.run(go())


def test_a_body_in_pieces_is_joined() -> None:
    assert read(chunks_of(b"ab", b"", b"cd")) == b"abcd"


def test_gzip_bodies_are_inflated_member_by_member() -> None:
    packed = gzip.compress(b"hello ") + gzip.compress(b"world")
    assert read(chunks_of(packed[:7], packed[7:]), encoding="gzip") == b"hello world"
    assert read(chunks_of(gzip.compress(b"x" * 900)), encoding="x-gzip") == b"x" * 900


def test_a_zip_bomb_stops_at_the_limit_without_inflating_it_all() -> None:
    bomb = gzip.compress(bytes(200 * INFLATE_STEP))  # 200 MiB of zeros in ~200 kB
    started = time.perf_counter()
    with pytest.raises(PayloadTooLarge, match="limit of 1000 bytes"):
        read(chunks_of(bomb), encoding="gzip")
    assert time.perf_counter() - started < 1.0  # one step inflated, not two hundred


def test_an_inflated_stream_without_a_limit_comes_in_bounded_steps() -> None:
    async def go() -> list[int]:
        stream = body(chunks_of(gzip.compress(bytes(3 * INFLATE_STEP + 5))), encoding="gzip", limit=None)
        sizes = []
        while not stream.done:
            sizes.append(len(await stream.next()))
        return sizes

    sizes = asyncio.run(go())
    assert max(sizes) <= INFLATE_STEP and sum(sizes) == 3 * INFLATE_STEP + 5


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"not gzip at all", "corrupt"), (gzip.compress(b"x" * 100)[:-12], "ends before its gzip stream")],
)
def test_corrupt_and_truncated_gzip_are_400s(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        read(chunks_of(data), encoding="gzip")


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, br", "compress"])
def test_other_encodings_are_415s(encoding: str) -> None:
    with pytest.raises(UnsupportedMediaType, match="Content-Encoding"):
        read(chunks_of(b"x"), encoding=encoding)


def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    with pytest.raises(PayloadTooLarge):
        read(chunks_of(), declared=1001)


def test_a_stalled_body_times_out_in_about_its_budget() -> None:
    started = time.perf_counter()
    with pytest.raises(RequestTimeout, match=r"within 0\.5 seconds"):
        read(chunks_of(b"{", then_wait=True), timeout=0.5)
    assert 0.5 <= time.perf_counter() - started < 1.2


def test_a_trickled_body_times_out_on_its_total_wait() -> None:
    started = time.perf_counter()
    with pytest.raises(RequestTimeout):
        read(chunks_of(*[b"x"] * 100, pause=0.1), timeout=0.6)  # each wait is short, all of them are not
    assert time.perf_counter() - started < 1.5


def test_time_spent_between_reads_does_not_count() -> None:
    async def go() -> bytes:
        stream = body(chunks_of(b"a", b"b", b"c", pause=0.05), timeout=0.4, limit=None)
        parts = []
        while not stream.done:
            parts.append(await stream.next())
            await asyncio.sleep(0.3)  # the server scoring a chunk: 0.9 s in all, more than the budget
        return b"".join(parts)

    assert asyncio.run(go()) == b"abc"


def test_a_client_that_leaves_is_client_gone_or_a_disconnect_for_the_bridge() -> None:
    async def gone() -> Message:
        return {"type": "http.disconnect"}

    with pytest.raises(ClientGone):
        read(gone)
    assert asyncio.run(body(gone).receive()) == {"type": "http.disconnect"}


def test_the_budget_refuses_a_second_body_that_does_not_fit_and_gets_its_bytes_back() -> None:
    budget = Budget(1500)
    first = body(chunks_of(b"x" * 1000), declared=1000, budget=budget)
    assert budget.used == 1000
    with pytest.raises(Overloaded) as refused:
        body(chunks_of(b"y" * 600), declared=600, budget=budget)
    assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "1"}
    assert first.release() == 1000 and budget.used == 0
    lone = body(chunks_of(b"z" * 900), declared=900, budget=Budget(100))  # alone, anything in the limit fits
    assert lone.held == 900


def test_a_chunked_body_is_budgeted_as_it_arrives() -> None:
    budget = Budget(1500)
    budget.take(1000)  # another request's body

    async def go() -> None:
        await body(chunks_of(b"a" * 300, b"b" * 300), budget=budget).read()

    with pytest.raises(Overloaded):
        asyncio.run(go())
