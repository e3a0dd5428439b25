"""Token buckets: spec parsing, refill and Retry-After with an injected clock, bounded key memory."""

from __future__ import annotations

import math
import threading

import pytest

from service.auth.ratelimit import RateLimiter, RateLimitError
from service.errors import TooManyRequests


@pytest.mark.parametrize(
    ("spec", "rate", "burst"),
    [
        ("200/s", 200.0, 200.0),
        ("1000/m", 1000 / 60, 1000 / 60),
        ("90/h", 90 / 3600, 1.0),  # slower than one a second: a burst of one
        ("0.5/s", 0.5, 1.0),
        ("200/s,burst=400", 200.0, 400.0),
        (" 5 / s , burst = 7 ", 5.0, 7.0),
        ("10/m,burst=1", 10 / 60, 1.0),
    ],
)
def test_specs_parse_to_a_rate_per_second_and_a_burst(spec: str, rate: float, burst: float) -> None:
    limiter = RateLimiter.parse(spec)
    assert limiter.rate == pytest.approx(rate)
    assert limiter.burst == pytest.approx(burst)


@pytest.mark.parametrize(
    "spec", ["", "200", "200/x", "200/sec", "-1/s", "0/s", "200/s,burst=0", "200/s,burst=x", "200/s,", "abc"]
)
def test_bad_specs_are_refused_with_the_accepted_forms(spec: str) -> None:
    with pytest.raises(RateLimitError, match="Rate limit"):
        RateLimiter.parse(spec)


def test_a_burst_is_allowed_then_requests_wait_for_the_refill() -> None:
    limiter = RateLimiter.parse("2/s,burst=3")
    now = 50.0
    assert [limiter.take("k", now) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k", now) == pytest.approx(1 / limiter.rate)
    # Half a token has come back: half the wait is left.
    assert limiter.take("k", now + 0.5 / limiter.rate) == pytest.approx(0.5 / limiter.rate)
    assert limiter.take("k", now + 1 / limiter.rate) == 0.0
    assert limiter.take("k", now + 1 / limiter.rate) > 0.0


def test_the_long_run_rate_is_the_configured_one() -> None:
    limiter = RateLimiter.parse("20/s,burst=5")
    step = 0.001
    allowed = sum(limiter.take("k", i * step) == 0.0 for i in range(10_000))  # 10 s at 1000 req/s
    assert allowed == pytest.approx(limiter.burst + limiter.rate * 10_000 * step, abs=1)


def test_keys_have_separate_budgets() -> None:
    limiter = RateLimiter.parse("1/s")
    assert limiter.take("a", 0.0) == 0.0
    assert limiter.take("a", 0.0) > 0.0
    assert limiter.take("b", 0.0) == 0.0


def test_a_clock_stepping_back_neither_crashes_nor_refills() -> None:
    limiter = RateLimiter.parse("1/s")
    assert limiter.take("k", 10.0) == 0.0
    assert limiter.take("k", 5.0) > 0.0


@pytest.mark.parametrize(
    ("retry_after", "header"), [(0.001, "1"), (0.999, "1"), (1.0, "1"), (1.01, "2"), (59.5, "60")]
)
def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one(retry_after: float, header: str) -> None:
    error = TooManyRequests("Slow down.", retry_after)
    assert error.status == 429
    assert error.retry_after == retry_after
    assert error.headers == {"Retry-After": header}


def test_enforce_raises_429_with_the_wait_and_the_limit() -> None:
    limiter = RateLimiter.parse("6/m,burst=1")
    limiter.enforce("web", 0.0)
    with pytest.raises(TooManyRequests) as caught:
        limiter.enforce("web", 0.25)
    wait = 1 / limiter.rate - 0.25
    assert caught.value.retry_after == pytest.approx(wait)
    assert caught.value.headers["Retry-After"] == str(math.ceil(wait))
    assert "'web'" in caught.value.message and "6/m,burst=1" in caught.value.message


def test_keys_idle_until_full_are_forgotten_so_rotating_addresses_cannot_grow_memory() -> None:
    limiter = RateLimiter.parse("100/s,burst=50")
    new_keys_per_second = 1000
    for i in range(20_000):  # 20 s of a fresh address every millisecond
        limiter.take(f"10.0.{i // 256}.{i % 256}", i / new_keys_per_second)
        assert len(limiter) <= new_keys_per_second * limiter.full_after + 1


def test_a_forgotten_key_comes_back_with_a_full_bucket_as_if_remembered() -> None:
    limiter = RateLimiter.parse("10/s,burst=2")
    assert limiter.take("k", 0.0) == limiter.take("k", 0.0) == 0.0
    limiter.take("other", limiter.full_after)  # sweeps "k", which would be full by now
    assert len(limiter) == 1
    assert limiter.take("k", limiter.full_after) == limiter.take("k", limiter.full_after) == 0.0
    assert limiter.take("k", limiter.full_after) > 0.0


def test_max_keys_caps_memory_even_within_the_refill_window_and_keeps_the_current_key() -> None:
    limiter = RateLimiter.parse("1/h", max_keys=100)  # an hour to refill: nothing is idle long enough
    for i in range(1000):
        assert limiter.take(f"k{i}", float(i)) == 0.0
        assert len(limiter) <= 100
    assert limiter.take("k999", 1000.0) > 0.0  # the newest key is still remembered


def test_concurrent_takes_never_hand_out_more_than_the_burst() -> None:
    limiter = RateLimiter.parse("1/h,burst=1000")
    allowed: list[int] = []

    def hammer() -> None:
        allowed.append(sum(limiter.take("shared", 0.0) == 0.0 for _ in range(500)))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == limiter.burst
