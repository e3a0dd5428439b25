"""The adaptive policy as pure functions of time and traffic: when to hold a batch, what it holds."""

from __future__ import annotations

import math
from typing import Any

import pytest

from service.batching.policy import ALPHA, MAX_GAP, PATIENCE, Traffic, plan, wait_time


@pytest.mark.parametrize(
    ("sizes", "limit", "count"),
    [
        ([], 4, 0),
        ([1], 4, 1),
        ([1, 1, 1, 1, 1], 4, 4),
        ([2, 3], 4, 1),  # the 3 would overflow: never split a request across batches
        ([3, 1, 5], 4, 2),
        ([9, 1], 4, 1),  # an oversized head runs alone (the batcher chunks it first)
        ([1, 3, 1], 1, 1),  # max_batch_size=1 disables merging
    ],
)
def test_plan(sizes: list[int], limit: int, count: int) -> None:
    assert plan(sizes, limit) == count


def test_plan_stops_reading_once_the_batch_is_full() -> None:
    def sizes():  # a long queue is not walked past the batch
        yield from (2, 2)
        raise AssertionError("read past a full batch")

    assert plan(sizes(), 4) == 2


def test_traffic_smooths_gaps_and_clamps_idle_spells() -> None:
    traffic = Traffic()
    traffic.arrived(10.0)
    assert math.isinf(traffic.gap)
    traffic.arrived(10.001)
    assert traffic.gap == pytest.approx(0.001) and traffic.recent == pytest.approx(0.001)
    traffic.arrived(20.0)  # ten idle seconds count as MAX_GAP
    assert traffic.recent == MAX_GAP
    assert traffic.gap == pytest.approx(0.001 + ALPHA * (MAX_GAP - 0.001))
    traffic.launched(3)
    assert traffic.batch == 3


def busy(gap: float = 0.0002, last_arrival: float = 1.0, batch: int = 8) -> Traffic:
    """Traffic seen under load: overlapping requests arriving ``gap`` apart, the last at 1.0 s."""
    return Traffic(gap=gap, recent=gap, last_arrival=last_arrival, batch=batch)


def hold(
    traffic: Traffic, now: float = 1.0, oldest: float = 1.0, rows: int = 1, timeout: float = 0.002
) -> float:
    return wait_time(
        traffic, now=now, oldest=oldest, queued_rows=rows, max_batch_size=64, batch_timeout=timeout
    )


def test_overlapping_dense_traffic_holds_until_the_next_arrival_is_overdue() -> None:
    assert hold(busy()) == pytest.approx(PATIENCE * 0.0002)


def test_a_hold_never_passes_the_oldest_requests_deadline() -> None:
    assert hold(busy(gap=0.0015), oldest=0.9995) == pytest.approx(0.0015)


@pytest.mark.parametrize(
    ("traffic", "kwargs"),
    [
        (Traffic(), {}),  # nothing known yet: a first request never waits
        (busy(batch=1), {}),  # a single closed-loop client only ever makes batches of one
        (busy(), {"timeout": 0.0}),  # batch_timeout=0 disables waiting
        (busy(), {"rows": 64}),  # full
        (busy(gap=0.003), {}),  # the next request is not expected before the deadline
        (Traffic(gap=0.0002, recent=0.5, last_arrival=1.0, batch=8), {}),  # arrived after a pause
        (busy(), {"now": 1.0 + PATIENCE * 0.0002 + 1e-6}),  # next arrival overdue
        (busy(last_arrival=1.0017), {"now": 1.00205}),  # the oldest request's deadline has passed
    ],
    ids=["unknown", "single-client", "timeout-0", "full", "sparse", "after-pause", "overdue", "deadline"],
)
def test_no_hold_without_evidence_or_room(traffic: Traffic, kwargs: dict[str, Any]) -> None:
    assert hold(traffic, **kwargs) == 0.0
