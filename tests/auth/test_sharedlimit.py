"""The server-wide rate limit: RateLimiter's answers, one budget across processes, a table that never grows."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.auth.ratelimit import RateLimiter, RateLimitError
from service.auth.sharedlimit import TABLE, SharedRateLimiter, limiter_for
from service.errors import TooManyRequests

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def table(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / TABLE


def opened(path: Path, spec: str, max_keys: int = 1000) -> SharedRateLimiter:
    return SharedRateLimiter.open(path, spec, max_keys)


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.floats(0.0, 2.0, allow_nan=False)),
        max_size=60,
    ),
    spec=st.sampled_from(["2/s,burst=3", "10/s", "1/m,burst=2", "0.5/s"]),
)
def test_it_answers_exactly_as_the_in_process_limiter(
    tmp_path_factory: pytest.TempPathFactory, steps: list[tuple[str, float]], spec: str
) -> None:
    shared, local = opened(tmp_path_factory.mktemp("t") / TABLE, spec), RateLimiter.parse(spec)
    now = 100.0
    for key, step in steps:
        now += step
        assert shared.take(key, now) == pytest.approx(local.take(key, now))
    shared.close()


def test_enforce_raises_the_same_429(table: Path) -> None:
    limiter = opened(table, "6/m,burst=1")
    limiter.enforce("web", 0.0)
    with pytest.raises(TooManyRequests) as caught:
        limiter.enforce("web", 0.25)
    assert caught.value.retry_after == pytest.approx(10 - 0.25)
    assert caught.value.headers["Retry-After"] == "10" and "6/m,burst=1" in caught.value.message


def test_a_clock_stepping_back_neither_crashes_nor_refills(table: Path) -> None:
    limiter = opened(table, "1/s")
    assert limiter.take("k", 10.0) == 0.0
    assert limiter.take("k", 5.0) > 0.0


def _spend(path: str, spec: str, tries: int, start: multiprocessing.synchronize.Barrier) -> int:
    limiter = SharedRateLimiter.open(Path(path), spec, 1000)
    start.wait(30)
    return sum(limiter.take("token web", 0.0) == 0.0 for _ in range(tries))


def test_two_processes_get_one_budget_between_them(table: Path) -> None:
    spec, tries = "1/h,burst=3000", 2500
    SharedRateLimiter.open(table, spec, 1000).close()  # made first, as the gunicorn master does
    with SPAWN.Manager() as manager, SPAWN.Pool(2) as pool:
        start = manager.Barrier(2)  # both start spending together
        allowed = pool.starmap(_spend, [(str(table), spec, tries, start)] * 2)
    assert sum(allowed) == 3000, allowed  # budgets per process would have allowed 5,000
    assert opened(table, spec).take("token web", 0.0) > 0.0  # spent for everyone


def test_a_limiter_inherited_through_fork_still_counts_one_budget(table: Path) -> None:
    limiter = opened(table, "1/h,burst=10")
    assert [limiter.take("k", 0.0) for _ in range(4)] == [0.0] * 4
    pid = os.fork()
    if pid == 0:  # the child: spends the rest, with a lock of its own
        spent = sum(limiter.take("k", 0.0) == 0.0 for _ in range(10))
        os._exit(spent)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 6
    assert limiter.take("k", 0.0) > 0.0


def _hold_the_lock(path: str) -> None:
    limiter = SharedRateLimiter.open(Path(path), "1/s", 1000)
    fcntl.flock(limiter._fd, fcntl.LOCK_EX)
    Path(path + ".held").touch()
    time.sleep(60)


def test_a_worker_killed_while_holding_the_lock_does_not_wedge_the_others(table: Path) -> None:
    holder = SPAWN.Process(target=_hold_the_lock, args=(str(table),))
    holder.start()
    deadline = time.monotonic() + 30
    while not Path(str(table) + ".held").exists():
        assert time.monotonic() < deadline and holder.is_alive()
        time.sleep(0.02)
    assert holder.pid is not None
    os.kill(holder.pid, signal.SIGKILL)
    holder.join(10)
    started = time.monotonic()
    assert opened(table, "1/s").take("k") == 0.0
    assert time.monotonic() - started < 1.0


def test_rotating_keys_never_grow_the_table_and_the_newest_key_is_remembered(table: Path) -> None:
    limiter = opened(table, "1/h", max_keys=64)  # an hour to refill: nothing idles long enough
    size = table.stat().st_size
    for i in range(5000):
        assert limiter.take(f"10.0.{i // 256}.{i % 256}", float(i)) == 0.0
        assert len(limiter) <= limiter.capacity == 64
    assert table.stat().st_size == size
    assert limiter.take("10.0.19.135", 5000.0) > 0.0  # the last key (i = 4999) still has its spent bucket


def test_an_idle_key_evicted_comes_back_as_full_as_if_remembered(table: Path) -> None:
    limiter = opened(table, "10/s,burst=2", max_keys=8)  # one set: every key competes for 8 slots
    assert limiter.take("k", 0.0) == limiter.take("k", 0.0) == 0.0
    later = limiter.full_after
    for i in range(8):
        limiter.take(f"other-{i}", later)  # evicts "k", least recently used
    assert limiter.take("k", later) == limiter.take("k", later) == 0.0
    assert limiter.take("k", later) > 0.0


def test_a_table_of_another_size_is_refused(table: Path) -> None:
    opened(table, "1/s", max_keys=64).close()
    with pytest.raises(RateLimitError, match="not a rate limit table of 128 slots"):
        opened(table, "1/s", max_keys=128)


def test_the_settings_pick_the_limiter(tmp_path: Path) -> None:
    assert limiter_for(None, tmp_path) is None
    assert type(limiter_for("5/s", None)) is RateLimiter  # in-process app: the process is the server
    shared = limiter_for("5/s", tmp_path)
    assert isinstance(shared, SharedRateLimiter) and (tmp_path / TABLE).exists()
    shared.close()
