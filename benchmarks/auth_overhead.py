"""Per-request cost of auth: TokenSource.current() + authenticate() + allows(), and the rate limit's take()
(RateLimiter in one process; SharedRateLimiter, what gunicorn's workers use, through its mapped file).

Prints microseconds per call (best of several repeats, so other load on the machine shows less);
no assertions. Compare with the per-request figures in docs/benchmarks.md to judge the share.

    .venv/bin/python benchmarks/auth_overhead.py [--tokens 5] [--number 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path

import yaml

from service.auth.ratelimit import RateLimiter
from service.auth.sharedlimit import SharedRateLimiter
from service.auth.watch import TokenSource
from service.errors import Unauthorized


def token_file(folder: Path, count: int) -> Path:
    entries = [
        {
            "name": f"client-{i}",
            "sha256": hashlib.sha256(f"token-{i}".encode()).hexdigest(),
            "scopes": ["infer:mnist*", "evaluate"],
        }
        for i in range(count)
    ]
    path = folder / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": entries}))
    return path


def best_us(call: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6


def rejected(source: TokenSource) -> Callable[[], None]:
    def call() -> None:
        with contextlib.suppress(Unauthorized):
            source.current().authenticate("Bearer not-a-known-token")

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=5, help="entries in the token file (default 5)")
    parser.add_argument("--number", type=int, default=100_000, help="calls per repeat (default 100000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        # The real poll interval: most calls are the clock check, one in ~a second also stats.
        source = TokenSource(token_file(Path(folder), args.tokens), poll_interval=1.0)
        header = f"Bearer token-{args.tokens - 1}"  # the last entry: no cheaper than any other
        rows = {
            "current()": lambda: source.current(),
            "current()+authenticate()+allows()": lambda: (
                source.current().authenticate(header).allows("infer", "mnist")
            ),
            "  unknown token (401 raised)": rejected(source),
        }
        limiter = RateLimiter.parse("1000000/s")  # never refuses: measures the bookkeeping only
        keys = [f"10.0.0.{i}" for i in range(256)]
        rotating = iter(range(1 << 62))
        rows["take() one key"] = lambda: limiter.take("client-0")
        rows["take() 256 rotating keys"] = lambda: limiter.take(keys[next(rotating) & 255])
        shared = SharedRateLimiter.open(Path(folder) / "ratelimit.table", "1000000/s")
        fresh = iter(range(1 << 62))
        rows["shared take() one key"] = lambda: shared.take("client-0")
        rows["shared take() 256 rotating keys"] = lambda: shared.take(keys[next(rotating) & 255])
        # a new address every call: each one evicts (the table is full after the first 100,000)
        rows["shared take() a new key each call"] = lambda: shared.take(f"10.{next(fresh)}")
        print(f"{args.tokens} token(s), best of 5 x {args.number} calls")
        for label, call in rows.items():
            print(f"{label:<40} {best_us(call, args.number):7.2f} us")
        shared.close()


if __name__ == "__main__":
    main()
