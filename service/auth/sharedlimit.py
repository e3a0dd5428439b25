"""Server-wide rate limits: the token buckets live in one file every gunicorn worker maps into memory.

Each worker counting its own buckets let a caller spend WORKERS times the budget. Here the buckets
are a fixed-size, set-associative table in ``<metrics dir>/ratelimit.table`` (created by the gunicorn
master before it forks; the metrics folder is emptied at each start), read and written under an
``flock``, which the kernel drops if its holder dies, so a killed worker can never wedge the others.
A key's set has ``WAYS`` slots; a new key takes an empty slot or the one used longest ago, whose
bucket is full again if it idled ``burst / rate`` seconds (nothing lost) and is otherwise handed a
fresh one early, as ``RateLimiter``'s ``max_keys`` does. Rotating client addresses therefore
cannot grow the table. Keys are hashed with a random key kept in the file's header, so callers
cannot pick addresses that crowd one set.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import secrets
import struct
import threading
import time
import weakref
from pathlib import Path

from service.auth.ratelimit import DEFAULT_MAX_KEYS, Limiter, RateLimiter, RateLimitError, too_many

TABLE = "ratelimit.table"  # its name in the metrics folder
WAYS = 8  # slots per set: one 64-byte cache line of tags
_MAGIC = b"RLTABLE1"
_HEADER = struct.Struct("=8sII16s")  # magic, sets, ways, hash key
_HEADER_SIZE = 64
_TAG_CACHE = 4096  # recent keys' hashes kept per process: keyed BLAKE2 costs more than the rest of take()


def _layout(max_keys: int) -> tuple[int, int]:
    """(sets, file size) for a table of at least ``max_keys`` slots."""
    sets = max(1, -(-max_keys // WAYS))
    return sets, _HEADER_SIZE + sets * WAYS * 24  # a tag, a level and a time per slot, 8 bytes each


class SharedRateLimiter:
    """``RateLimiter``'s budgets (same spec, same ``take``/``enforce``) counted once for all processes
    that open the same file, or inherit it through a fork (the child then opens a lock of its own)."""

    def __init__(self, path: Path, limits: RateLimiter) -> None:
        self.path = path
        self.rate, self.burst, self.spec = limits.rate, limits.burst, limits.spec
        self.full_after = limits.full_after
        self._sets, size = _layout(limits.max_keys)
        self.capacity = self._sets * WAYS
        self._thread_lock = threading.Lock()  # flock excludes other processes, not this one's threads
        self._fd = _open_table(path, self._sets, size)
        self._map = mmap.mmap(self._fd, size)
        self._tag_cache: dict[str, int] = {}
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(ref()))
        header = _HEADER.unpack_from(self._map)
        self._hash_key = header[3]
        slots = memoryview(self._map)[_HEADER_SIZE:]
        n = self.capacity
        self._tags = slots[: 8 * n].cast("Q")  # 0: an empty slot
        self._levels = slots[8 * n : 16 * n].cast("d")
        self._lasts = slots[16 * n : 24 * n].cast("d")

    @classmethod
    def open(cls, path: Path, spec: str, max_keys: int = DEFAULT_MAX_KEYS) -> SharedRateLimiter:
        return cls(path, RateLimiter.parse(spec, max_keys))

    def close(self) -> None:
        for view in (self._tags, self._levels, self._lasts):
            view.release()
        self._map.close()
        os.close(self._fd)

    def __len__(self) -> int:
        """Keys remembered (slots in use), for tests and curiosity: O(capacity)."""
        return self.capacity - self._tags.tolist().count(0)

    def take(self, key: str, now: float | None = None) -> float:
        """Spend one request for ``key``: 0.0 if allowed, else the seconds until one would be."""
        now = time.monotonic() if now is None else now
        tag = self._tag_cache.get(key) or self._tag(key)
        first = (tag % self._sets) * WAYS
        with self._thread_lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                return self._spend(first, tag, now)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _tag(self, key: str) -> int:
        digest = hashlib.blake2b(key.encode(), digest_size=8, key=self._hash_key).digest()
        tag = int.from_bytes(digest, "little") or 1  # 0 marks an empty slot
        if len(self._tag_cache) >= _TAG_CACHE:
            self._tag_cache.clear()  # rotating callers: start over rather than track recency
        self._tag_cache[key] = tag
        return tag

    def _reopen(self) -> None:
        """In a forked child: a lock of its own (an inherited descriptor shares the parent's flock)."""
        if self._map.closed:
            return
        inherited, self._fd = self._fd, os.open(self.path, os.O_RDWR)
        os.close(inherited)
        self._thread_lock = threading.Lock()  # another thread may have held it at the fork

    def enforce(self, key: str, now: float | None = None) -> None:
        """``take``, raising TooManyRequests (with Retry-After) when the budget is spent."""
        wait = self.take(key, now)
        if wait > 0.0:
            raise too_many(key, self.spec, wait)

    def _spend(self, first: int, tag: int, now: float) -> float:
        tags, levels, lasts = self._tags, self._levels, self._lasts
        ways = tags[first : first + WAYS].tolist()
        if tag in ways:
            slot = first + ways.index(tag)
            idle = now - lasts[slot]
            level = levels[slot] + idle * self.rate if idle > 0.0 else levels[slot]  # a clock stepping back
            if level > self.burst:  # must neither drain the bucket nor overfill it
                level = self.burst
        else:
            slot = first + self._victim(first, ways)
            tags[slot], level = tag, self.burst
        lasts[slot] = now
        if level >= 1.0:
            levels[slot] = level - 1.0
            return 0.0
        levels[slot] = level
        return (1.0 - level) / self.rate

    def _victim(self, first: int, ways: list[int]) -> int:
        """The way a new key takes: an empty one, else the one used longest ago."""
        if 0 in ways:
            return ways.index(0)
        used = self._lasts[first : first + WAYS].tolist()
        return used.index(min(used))


def _open_table(path: Path, sets: int, size: int) -> int:
    """Open (creating and sizing it if new) the table file; check an existing one has this layout."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        current = os.fstat(fd).st_size
        if current == 0:  # new: zeros are empty slots
            os.ftruncate(fd, size)
            os.pwrite(fd, _HEADER.pack(_MAGIC, sets, WAYS, secrets.token_bytes(16)), 0)
        else:
            magic, found_sets, ways, _ = _HEADER.unpack(os.pread(fd, _HEADER.size, 0))
            if (magic, found_sets, ways, current) != (_MAGIC, sets, WAYS, size):
                raise RateLimitError(f"{path} is not a rate limit table of {sets * WAYS} slots; remove it.")
        fcntl.flock(fd, fcntl.LOCK_UN)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _after_fork(limiter: SharedRateLimiter | None) -> None:
    if limiter is not None:
        limiter._reopen()


def limiter_for(spec: str | None, metrics_dir: Path | None) -> Limiter | None:
    """The rate limiter the settings ask for: shared through ``metrics_dir`` under gunicorn, else this
    process's own (the app built in-process, as tests do, is the whole server)."""
    if not spec:
        return None
    if metrics_dir is None:
        return RateLimiter.parse(spec)
    return SharedRateLimiter.open(metrics_dir / TABLE, spec)
