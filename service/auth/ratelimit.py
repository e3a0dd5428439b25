"""Per-caller token buckets (``RATE_LIMIT=200/s,burst=400``) with memory bounded by recent callers."""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from typing import Protocol

from service.errors import TooManyRequests

_SPEC_RE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*([smh])\s*(?:,\s*burst\s*=\s*(\d+)\s*)?")
_PER_SECOND = {"s": 1.0, "m": 60.0, "h": 3600.0}
DEFAULT_MAX_KEYS = 100_000  # ~220 bytes a key (measured with tracemalloc): a ceiling of ~22 MB


class RateLimitError(ValueError):
    """A rate limit spec that does not parse; the message shows the accepted forms."""


class Limiter(Protocol):
    """What the guard needs: RateLimiter (one process) or sharedlimit.SharedRateLimiter (all workers)."""

    def take(self, key: str, now: float | None = None) -> float: ...

    def enforce(self, key: str, now: float | None = None) -> None: ...


def too_many(key: str, spec: str, wait: float) -> TooManyRequests:
    """The 429 for ``key`` under the limit ``spec``, ``wait`` seconds before a request would fit."""
    seconds = max(1, math.ceil(wait))  # what Retry-After will say
    return TooManyRequests(
        f"Too many requests from {key!r}: the limit is {spec}; retry in {seconds} s.", wait
    )


class _Bucket:
    __slots__ = ("last", "level")

    def __init__(self, level: float, last: float) -> None:
        self.level = level  # requests that may be made right now (fractional while refilling)
        self.last = last


class RateLimiter:
    """``rate`` requests per second per key on average, up to ``burst`` at once after a quiet spell.

    A key idle for ``burst / rate`` seconds has a full bucket again, the same as a key never seen,
    so it is forgotten: memory follows the callers active in that window, and ``max_keys`` caps
    it even when an attacker rotates addresses faster than that (evicting the least recently
    seen keys, which at worst hands one of them a fresh bucket early).
    """

    def __init__(
        self, rate: float, burst: float | None = None, spec: str = "", max_keys: int = DEFAULT_MAX_KEYS
    ) -> None:
        if rate <= 0:
            raise RateLimitError(f"Rate limit {spec or rate!r}: the rate must be above zero.")
        self.rate = rate
        self.burst = max(1.0, rate) if burst is None else float(burst)
        if self.burst < 1:
            raise RateLimitError(f"Rate limit {spec or rate!r}: the burst must be at least 1.")
        self.spec = spec or f"{rate:g}/s,burst={self.burst:g}"
        if max_keys < 1:
            raise RateLimitError(f"Rate limit {self.spec!r}: max_keys must be at least 1.")
        self.max_keys = max_keys
        self.full_after = self.burst / rate  # seconds for an empty bucket to fill
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, spec: str, max_keys: int = DEFAULT_MAX_KEYS) -> RateLimiter:
        """``"200/s"``, ``"1000/m"``, ``"50/h"``, each optionally followed by ``",burst=N"``."""
        match = _SPEC_RE.fullmatch(spec)
        if match is None:
            raise RateLimitError(
                f"Rate limit {spec!r} is not of the form N/s, N/m or N/h, optionally with ',burst=N'"
                " (e.g. '200/s,burst=400')."
            )
        count, unit, burst = match.groups()
        rate = float(count) / _PER_SECOND[unit]
        return cls(rate, None if burst is None else float(burst), spec.strip(), max_keys)

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one request for ``key``: 0.0 if allowed, else the seconds until one would be."""
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self.burst, now)
            else:
                self._buckets.move_to_end(key)
                # max(): a clock that steps back must not drain the bucket.
                bucket.level = min(self.burst, bucket.level + max(0.0, now - bucket.last) * self.rate)
                bucket.last = now
            self._forget(now)
            if bucket.level >= 1.0:
                bucket.level -= 1.0
                return 0.0
            return (1.0 - bucket.level) / self.rate

    def enforce(self, key: str, now: float | None = None) -> None:
        """``take``, raising TooManyRequests (with Retry-After) when the budget is spent."""
        wait = self.take(key, now)
        if wait > 0.0:
            raise too_many(key, self.spec, wait)

    def _forget(self, now: float) -> None:
        # The dict is in last-use order, so the idle keys are at the front: this loop stops at the
        # first recent one and costs O(1) per request on average.
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if now - oldest.last < self.full_after and len(buckets) <= self.max_keys:
                return
            buckets.popitem(last=False)
