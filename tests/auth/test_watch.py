"""TokenSource: reload on change, keep the last good tokens on a bad or deleted file, log once."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from service.auth.tokens import TokenFileError
from service.auth.watch import TokenSource
from service.errors import Unauthorized
from tests.auth.tokenfiles import entry, write_tokens

POLL = 1.0
WEB = entry("web", "t-web", ["infer"])
OPS = entry("ops", "t-ops", ["infer", "admin"])


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float = POLL) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return write_tokens(tmp_path / "tokens.yaml", WEB, OPS)


def source(path: Path, clock: Clock) -> TokenSource:
    return TokenSource(path, poll_interval=POLL, clock=clock)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_missing_file_at_start_closes_every_route_until_it_appears(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "not-mounted-yet.yaml"
    tokens = source(path, clock)
    assert len(tokens.current()) == 0 and "every guarded route answers 401" in errors(caplog)[0]
    with pytest.raises(Unauthorized):
        tokens.current().authenticate("Bearer t-web")
    write_tokens(path, WEB)
    clock.tick()
    assert tokens.current().authenticate("Bearer t-web").name == "web"


def test_an_invalid_file_at_start_is_an_error(tmp_path: Path, clock: Clock) -> None:
    bad = tmp_path / "tokens.yaml"
    bad.write_text("tokens: [{name: a}]\n")
    with pytest.raises(TokenFileError, match="tokens\\[0\\] 'a': missing"):
        source(bad, clock)


def test_revoking_a_token_takes_effect_after_the_poll_interval(path: Path, clock: Clock) -> None:
    tokens = source(path, clock)
    assert tokens.current().authenticate("Bearer t-ops").name == "ops"
    write_tokens(path, WEB)
    clock.tick(POLL / 2)
    # Within the interval the file is not looked at: the hot path is a clock comparison.
    assert tokens.current().authenticate("Bearer t-ops").name == "ops"
    clock.tick(POLL / 2)
    with pytest.raises(Unauthorized):
        tokens.current().authenticate("Bearer t-ops")
    assert tokens.current().authenticate("Bearer t-web").name == "web"


def test_an_edit_in_place_is_seen_too(path: Path, clock: Clock) -> None:
    tokens = source(path, clock)
    before = os.stat(path)
    path.write_text(path.read_text().replace("name: ops", "name: opz"))  # same size, same inode
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))  # coarse clocks
    clock.tick()
    assert tokens.current().names == ("web", "opz")


def test_an_invalid_file_keeps_the_last_good_tokens_and_logs_once_per_change(
    path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = source(path, clock)
    good = tokens.current()
    path.write_text("tokens: [{name: web, sha256: nope, scopes: [infer]}]\n")
    for _ in range(3):
        clock.tick()
        assert tokens.current() is good
    assert len(errors(caplog)) == 1
    assert "sha256 must be 64 hex digits" in errors(caplog)[0]
    assert "keeping the last good tokens" in errors(caplog)[0]
    path.write_text("tokens: [{name: web, sha256: still-nope, scopes: [infer]}]\n")
    clock.tick()
    assert tokens.current() is good
    assert len(errors(caplog)) == 2
    write_tokens(path, OPS)
    clock.tick()
    assert tokens.current().names == ("ops",)


def test_a_deleted_file_keeps_the_last_good_tokens_until_it_returns(
    path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = source(path, clock)
    path.unlink()
    for _ in range(3):
        clock.tick()
        assert tokens.current().authenticate("Bearer t-ops").name == "ops"
    assert len(errors(caplog)) == 1
    assert "deleted" in errors(caplog)[0]
    write_tokens(path, WEB)
    clock.tick()
    with pytest.raises(Unauthorized):
        tokens.current().authenticate("Bearer t-ops")


def test_an_unchanged_file_is_not_parsed_again(path: Path, clock: Clock) -> None:
    tokens = source(path, clock)
    first = tokens.current()
    clock.tick()
    assert tokens.current() is first


def test_many_threads_see_one_consistent_reload(path: Path, clock: Clock) -> None:
    tokens = source(path, clock)
    write_tokens(path, WEB)
    clock.tick()
    seen: list[tuple[str, ...]] = []
    threads = [threading.Thread(target=lambda: seen.append(tokens.current().names)) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Threads that lost the race to re-read used the tokens they had; afterwards everyone agrees.
    assert set(seen) <= {("web", "ops"), ("web",)}
    assert tokens.current().names == ("web",)
