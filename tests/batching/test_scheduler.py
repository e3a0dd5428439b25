"""MicroBatcher with a fake numpy model: merging, isolation of failures, timeouts, backpressure, shutdown."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest

from service.batching.scheduler import MicroBatcher
from service.errors import BatchTimeout, InvalidInput, Unavailable

from .fakes import Arrays, FakeModel, assert_arrays_equal, expected, request, wait_until

MakeBatcher = Callable[..., MicroBatcher]


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=32) as executor:
        yield executor


@pytest.fixture
def make_batcher() -> Iterator[MakeBatcher]:
    made: list[MicroBatcher] = []

    def make(model: FakeModel, **options: object) -> MicroBatcher:
        made.append(MicroBatcher(model, name="fake:1", **options))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for batcher in made:
        batcher.close(timeout=5)


def hold_first_call(model: FakeModel, batcher: MicroBatcher, pool: ThreadPoolExecutor) -> Future[Arrays]:
    """Start one request whose model call blocks until :func:`open_gate`, so others queue behind it."""
    model.gate = threading.Semaphore(0)
    first = pool.submit(batcher.submit, request([0]))
    assert model.started.acquire(timeout=5)
    return first


def open_gate(model: FakeModel) -> None:
    gate, model.gate = model.gate, None
    assert gate is not None
    gate.release()


def queue_behind(batcher: MicroBatcher, pool: ThreadPoolExecutor, *inputs: Arrays) -> list[Future[Arrays]]:
    futures = []
    for one in inputs:  # one at a time, so queue order is submission order
        futures.append(pool.submit(batcher.submit, one))
        wait_until(lambda: batcher.queue_depth == len(futures))
    return futures


def batcher_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "batcher:fake:1"]


def test_a_lone_request_is_not_delayed_by_batch_timeout(make_batcher: MakeBatcher) -> None:
    model = FakeModel()
    batcher = make_batcher(model, batch_timeout=0.5)
    started = time.monotonic()
    for i in range(20):
        assert_arrays_equal(batcher.submit(request([i, i + 0.5])), expected(request([i, i + 0.5])))
    assert time.monotonic() - started < 0.5  # one wait would already take 0.5 s
    assert model.sizes == [2] * 20


def test_requests_queued_behind_a_running_batch_form_the_next_batch(
    make_batcher: MakeBatcher, pool: ThreadPoolExecutor
) -> None:
    model = FakeModel()
    batcher = make_batcher(model, batch_timeout=0.0)
    first = hold_first_call(model, batcher, pool)
    rest = queue_behind(batcher, pool, *(request([i]) for i in range(1, 7)))
    open_gate(model)
    assert_arrays_equal(first.result(timeout=5), expected(request([0])))
    for i, future in enumerate(rest, start=1):
        assert_arrays_equal(future.result(timeout=5), expected(request([i])))
    assert model.sizes == [1, 6]


def test_max_batch_size_is_respected_and_requests_never_straddle_batches(
    make_batcher: MakeBatcher, pool: ThreadPoolExecutor
) -> None:
    model = FakeModel()
    batcher = make_batcher(model, max_batch_size=4, batch_timeout=0.0)
    first = hold_first_call(model, batcher, pool)
    rest = queue_behind(batcher, pool, request([1, 2]), request([3]), request([4, 5]), request([6]))
    open_gate(model)
    for future in [first, *rest]:
        future.result(timeout=5)
    assert model.sizes == [1, 3, 3]


def test_concurrent_submitters_each_get_exactly_their_own_rows(
    make_batcher: MakeBatcher, pool: ThreadPoolExecutor
) -> None:
    model = FakeModel(delay=0.0005)
    batcher = make_batcher(model, max_batch_size=16)

    def client(k: int) -> int:
        rng, rows = random.Random(k), 0
        for j in range(25):
            mine = request([k * 1000 + j * 10 + r for r in range(rng.randint(1, 4))])
            assert_arrays_equal(batcher.submit(mine, timeout=5), expected(mine))
            rows += len(mine["x"])
        return rows

    futures = [pool.submit(client, k) for k in range(16)]
    rows = sum(future.result(timeout=30) for future in futures)
    assert sum(model.sizes) == rows  # each row ran exactly once
    assert max(model.sizes) > 1, "concurrent requests were never merged"
    assert max(model.sizes) <= 16
    assert not model.overlapping, "the model was called from two threads at once"


def test_an_oversized_request_runs_as_chunks_and_comes_back_in_order(make_batcher: MakeBatcher) -> None:
    model = FakeModel()
    batcher = make_batcher(model, max_batch_size=4)
    big = request(list(range(10)))
    assert_arrays_equal(batcher.submit(big), expected(big))
    assert model.sizes == [4, 4, 2]


def test_chunks_of_a_failing_oversized_request_fail_it_alone(
    make_batcher: MakeBatcher, pool: ThreadPoolExecutor
) -> None:
    model = FakeModel(poison=5)
    batcher = make_batcher(model, max_batch_size=4, batch_timeout=0.0)
    first = hold_first_call(model, batcher, pool)
    big, small = pool.submit(batcher.submit, request(list(range(1, 11)))), None
    wait_until(lambda: batcher.queue_depth == 3)
    small = pool.submit(batcher.submit, request([42]))
    wait_until(lambda: batcher.queue_depth == 4)
    open_gate(model)
    with pytest.raises(ValueError, match="poisoned row 5"):
        big.result(timeout=5)
    assert_arrays_equal(small.result(timeout=5), expected(request([42])))
    first.result(timeout=5)


def test_a_failing_request_gets_its_own_error_and_its_batch_mates_their_results(
    make_batcher: MakeBatcher, pool: ThreadPoolExecutor
) -> None:
    model = FakeModel(poison=3)
    batcher = make_batcher(model, batch_timeout=0.0)
    first = hold_first_call(model, batcher, pool)
    rest = queue_behind(batcher, pool, *(request([i]) for i in range(1, 6)))
    open_gate(model)
    first.result(timeout=5)
    for i, future in enumerate(rest, start=1):
        if i == 3:
            with pytest.raises(ValueError, match="poisoned row 3"):
                future.result(timeout=5)
        else:
            assert_arrays_equal(future.result(timeout=5), expected(request([i])))
    assert model.sizes == [1, 5, 1, 1, 1, 1, 1]  # the merged call failed; each then ran alone


@pytest.mark.parametrize("error", [RuntimeError("boom"), SystemExit(3)], ids=["Exception", "BaseException"])
def test_the_worker_survives_whatever_the_model_raises(
    make_batcher: MakeBatcher, pool: ThreadPoolExecutor, error: BaseException
) -> None:
    model = FakeModel(poison=1, error=error)
    batcher = make_batcher(model, batch_timeout=0.0)
    first = hold_first_call(model, batcher, pool)
    victim, mate = queue_behind(batcher, pool, request([1]), request([2]))
    open_gate(model)
    with pytest.raises(type(error)):
        victim.result(timeout=5)
    assert_arrays_equal(mate.result(timeout=5), expected(request([2])))
    first.result(timeout=5)
    first = hold_first_call(model, batcher, pool)  # and the worker still takes queued work
    (after,) = queue_behind(batcher, pool, request([3]))
    open_gate(model)
    assert_arrays_equal(after.result(timeout=5), expected(request([3])))
    first.result(timeout=5)
    assert model.sizes == [1, 2, 1, 1, 1, 1]
    assert batcher_threads() == ["batcher:fake:1"]


def test_a_request_that_times_out_in_the_queue_never_runs(
    make_batcher: MakeBatcher, pool: ThreadPoolExecutor
) -> None:
    model = FakeModel()
    batcher = make_batcher(model)
    first = hold_first_call(model, batcher, pool)
    started = time.monotonic()
    with pytest.raises(
        BatchTimeout, match=r"Timed out after 0\.05 s waiting for a batch slot on model fake:1"
    ):
        batcher.submit(request([9]), timeout=0.05)
    assert time.monotonic() - started < 1.0
    assert batcher.queue_depth == 0 and batcher.queued_rows == 0
    open_gate(model)
    first.result(timeout=5)
    assert_arrays_equal(batcher.submit(request([3])), expected(request([3])))
    assert model.sizes == [1, 1]  # the timed-out request's rows never reached the model


def test_a_request_that_times_out_mid_batch_has_its_result_dropped(
    make_batcher: MakeBatcher, pool: ThreadPoolExecutor
) -> None:
    model = FakeModel()
    batcher = make_batcher(model, batch_timeout=0.0)
    model.gate = threading.Semaphore(0)
    first = pool.submit(batcher.submit, request([0]))
    assert model.started.acquire(timeout=5)
    late = pool.submit(batcher.submit, request([1]), timeout=0.2)
    wait_until(lambda: batcher.queue_depth == 1)
    assert model.gate is not None
    model.gate.release()  # lets the first call finish; the worker then starts (and blocks in) the second
    assert model.started.acquire(timeout=5)
    with pytest.raises(BatchTimeout, match="Timed out"):
        late.result(timeout=5)
    open_gate(model)
    first.result(timeout=5)
    assert_arrays_equal(batcher.submit(request([2])), expected(request([2])))


def test_a_full_queue_refuses_at_once(make_batcher: MakeBatcher, pool: ThreadPoolExecutor) -> None:
    model = FakeModel()
    batcher = make_batcher(model, max_queue=3, batch_timeout=0.0)
    first = hold_first_call(model, batcher, pool)
    queued = queue_behind(batcher, pool, request([1, 2]), request([3]))
    started = time.monotonic()
    with pytest.raises(
        Unavailable, match=r"Too many requests queued for model fake:1: 3 rows waiting \(limit 3\)"
    ) as refused:
        batcher.submit(request([4]))
    assert not isinstance(refused.value, BatchTimeout)  # a gRPC caller's deadline did not pass
    assert time.monotonic() - started < 0.5
    open_gate(model)
    for future in [first, *queued]:
        future.result(timeout=5)


def test_a_request_larger_than_max_queue_is_admitted_to_a_shorter_queue(make_batcher: MakeBatcher) -> None:
    model = FakeModel()
    batcher = make_batcher(model, max_queue=2, max_batch_size=2)
    big = request(list(range(5)))
    assert_arrays_equal(batcher.submit(big), expected(big))


def test_overlapping_traffic_makes_the_worker_hold_for_company(
    make_batcher: MakeBatcher, pool: ThreadPoolExecutor
) -> None:
    model = FakeModel()
    batcher = make_batcher(model, batch_timeout=2.0)
    first = hold_first_call(model, batcher, pool)
    queued = queue_behind(batcher, pool, request([1]), request([2]))
    open_gate(model)
    for future in [first, *queued]:
        future.result(timeout=5)
    assert model.sizes == [1, 2]  # evidence: the last batch held two requests
    time.sleep(0.1)  # a pause (shorter than batch_timeout) makes the gap estimate, hence the hold, ~50 ms
    together = threading.Barrier(2)

    def submit_together(inputs: Arrays) -> Arrays:
        together.wait(timeout=5)
        return batcher.submit(inputs)

    started = time.monotonic()
    pair = [pool.submit(submit_together, request([i])) for i in (3, 4)]
    for i, future in zip((3, 4), pair, strict=True):
        assert_arrays_equal(future.result(timeout=5), expected(request([i])))
    assert time.monotonic() - started < 1.0  # far below batch_timeout: the hold ends once arrivals stop
    assert model.sizes[2:] == [2]  # without holding, the idle batcher would have run them one by one


def test_a_hold_that_finds_no_company_ends_quickly_and_switches_holding_off(
    make_batcher: MakeBatcher, pool: ThreadPoolExecutor
) -> None:
    model = FakeModel()
    batcher = make_batcher(model, batch_timeout=2.0)
    first = hold_first_call(model, batcher, pool)
    queued = queue_behind(batcher, pool, request([1]), request([2]))
    open_gate(model)
    for future in [first, *queued]:
        future.result(timeout=5)
    started = time.monotonic()
    for i in range(10):
        batcher.submit(request([i]))
    assert time.monotonic() - started < 0.5


def test_max_batch_size_one_never_merges(make_batcher: MakeBatcher, pool: ThreadPoolExecutor) -> None:
    model = FakeModel(delay=0.0002)
    batcher = make_batcher(model, max_batch_size=1)
    futures = [pool.submit(batcher.submit, request([i])) for i in range(40)]
    for i, future in enumerate(futures):
        assert_arrays_equal(future.result(timeout=5), expected(request([i])))
    assert set(model.sizes) == {1}


def test_on_batch_reports_every_call_and_its_failures_cost_nothing(make_batcher: MakeBatcher) -> None:
    seen: list[tuple[int, float]] = []

    def on_batch(rows: int, seconds: float) -> None:
        seen.append((rows, seconds))
        raise RuntimeError("metrics backend down")

    batcher = make_batcher(FakeModel(), max_batch_size=4, on_batch=on_batch)
    big = request(list(range(6)))
    assert_arrays_equal(batcher.submit(big), expected(big))
    assert [rows for rows, _ in seen] == [4, 2]
    assert all(seconds >= 0 for _, seconds in seen)


def test_inputs_disagreeing_on_rows_are_invalid_input(make_batcher: MakeBatcher) -> None:
    batcher = make_batcher(FakeModel())
    with pytest.raises(InvalidInput):
        batcher.submit({"x": np.zeros((2, 3)), "mask": np.zeros((3, 2), np.int64)})


def test_close_finishes_queued_and_running_work_then_refuses(
    make_batcher: MakeBatcher, pool: ThreadPoolExecutor
) -> None:
    model = FakeModel()
    batcher = make_batcher(model, batch_timeout=0.0)
    first = hold_first_call(model, batcher, pool)
    queued = queue_behind(batcher, pool, request([1]), request([2]))
    closing = pool.submit(batcher.close, 5)
    wait_until(lambda: batcher.closed)
    with pytest.raises(
        Unavailable, match="No new requests are accepted: model fake:1 is shutting down"
    ) as refused:
        batcher.submit(request([3]))
    assert not isinstance(refused.value, BatchTimeout)
    assert not closing.done()  # still draining: the first call is blocked
    open_gate(model)
    closing.result(timeout=5)
    for i, future in enumerate([first, *queued]):
        assert_arrays_equal(future.result(timeout=5), expected(request([i])))
    assert batcher_threads() == []


def test_close_is_idempotent_and_joins_the_worker(make_batcher: MakeBatcher) -> None:
    batcher = make_batcher(FakeModel())
    assert batcher_threads() == ["batcher:fake:1"]
    batcher.close()
    batcher.close(timeout=1)
    assert batcher_threads() == []
    with pytest.raises(Unavailable):
        batcher.submit(request([1]))


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        MicroBatcher(FakeModel(), max_batch_size=0)
    with pytest.raises(ValueError):
        MicroBatcher(FakeModel(), batch_timeout=-1)


def test_async_submitters_are_batched_and_get_their_own_rows(
    make_batcher: MakeBatcher, pool: ThreadPoolExecutor
) -> None:
    model = FakeModel()
    batcher = make_batcher(model, batch_timeout=0.0)
    first = hold_first_call(model, batcher, pool)

    async def together() -> list[Arrays]:
        tasks = [asyncio.ensure_future(batcher.submit_async(request([i]), timeout=5)) for i in range(1, 6)]
        await asyncio.sleep(0.05)  # all five queued behind the held call
        open_gate(model)
        return await asyncio.gather(*tasks)

    results = asyncio.run(together())
    first.result(timeout=5)
    for i, result in enumerate(results, start=1):
        assert_arrays_equal(result, expected(request([i])))
    assert model.sizes == [1, 5]  # never run on the loop's thread, merged into one batch


def test_an_async_submit_that_times_out_is_withdrawn_from_the_queue(
    make_batcher: MakeBatcher, pool: ThreadPoolExecutor
) -> None:
    model = FakeModel()
    batcher = make_batcher(model, batch_timeout=0.0)
    first = hold_first_call(model, batcher, pool)
    with pytest.raises(BatchTimeout, match=r"Timed out after 0\.05 s"):
        asyncio.run(batcher.submit_async(request([7]), timeout=0.05))
    assert batcher.queue_depth == 0 and batcher.queued_rows == 0
    open_gate(model)
    first.result(timeout=5)
    assert model.sizes == [1]  # the withdrawn request never ran


def test_cancelling_an_async_submit_withdraws_it(make_batcher: MakeBatcher, pool: ThreadPoolExecutor) -> None:
    model = FakeModel()
    batcher = make_batcher(model, batch_timeout=0.0)
    first = hold_first_call(model, batcher, pool)

    async def cancel_it() -> None:
        task = asyncio.ensure_future(batcher.submit_async(request([8]), timeout=5))
        await asyncio.sleep(0.05)
        assert batcher.queue_depth == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_it())
    assert batcher.queue_depth == 0
    open_gate(model)
    first.result(timeout=5)
    assert model.sizes == [1]


def test_an_awaited_request_leaves_nothing_for_the_cyclic_gc(make_batcher: MakeBatcher) -> None:
    """Its tensors are freed as soon as the caller drops them, not at the next (rare) GC pass."""
    import gc
    import weakref

    batcher = make_batcher(FakeModel(), max_batch_size=4)
    inputs = request(range(10))  # three chunks
    tensors = [weakref.ref(array) for array in inputs.values()]
    gc.disable()
    try:
        outputs = asyncio.run(batcher.submit_async(inputs, timeout=5))
        assert_arrays_equal(outputs, expected(inputs))
        del inputs, outputs
        assert all(ref() is None for ref in tensors)
    finally:
        gc.enable()


class Marks:
    """What submit_async(timing=) fills in (a RequestRecord in the service)."""

    batch_started = batch_finished = 0.0
    batch_rows = 0


def test_queue_metrics_and_batch_marks(make_batcher: MakeBatcher, pool: ThreadPoolExecutor) -> None:
    waits: list[float] = []
    depths: list[int] = []
    model = FakeModel()
    batcher = make_batcher(model, batch_timeout=0.0, on_wait=waits.extend, on_depth=depths.append)
    first = hold_first_call(model, batcher, pool)  # runs inline: waited for nothing
    rest = queue_behind(batcher, pool, request([1]), request([2, 3]))
    time.sleep(0.05)  # the queued two wait at least this long
    open_gate(model)
    for future in [first, *rest]:
        future.result(timeout=5)
    wait_until(lambda: len(waits) == 3)
    assert waits[0] < 0.05 <= min(waits[1:])
    assert depths == [0]  # the one worker batch took everything that was queued

    async def timed() -> Marks:
        marks = Marks()
        before = time.monotonic()
        await batcher.submit_async(request([7, 8]), timeout=5, timing=marks)
        assert before <= marks.batch_started <= marks.batch_finished <= time.monotonic()
        return marks

    assert asyncio.run(timed()).batch_rows == 2
