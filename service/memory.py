"""Heap memory handed back to the system after large requests (glibc's ``malloc_trim``).

A large request leaves megabytes of freed blocks in malloc's arenas (request bodies arrive in
chunks, TensorFlow's intra-op threads each allocate from their own arena); glibc keeps them, so a
worker's resident memory would stay at its peak. ``malloc_trim(0)`` returns every free page of every
arena. It runs on a thread of its own, at most one at a time, so the event loop never waits for it.
Elsewhere than glibc (musl, macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time

log = logging.getLogger(__name__)


def _libc_trim() -> object | None:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


_trim = _libc_trim()
_pending = threading.Event()
_lock = threading.Lock()


def trim() -> float:
    """Return free heap pages to the system now; the seconds it took (0 where unsupported)."""
    if _trim is None:
        return 0.0
    started = time.perf_counter()
    with _lock:
        _trim(0)  # type: ignore[operator]
    return time.perf_counter() - started


def trim_soon() -> None:
    """:func:`trim` on a background thread, unless one is already waiting to run."""
    if _trim is None or _pending.is_set():
        return
    _pending.set()
    threading.Thread(target=_trim_pending, name="malloc-trim", daemon=True).start()


def _trim_pending() -> None:
    _pending.clear()
    seconds = trim()
    log.debug("malloc_trim took %.1f ms", seconds * 1000)
