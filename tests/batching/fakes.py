"""Stand-ins for a model signature and a few helpers for the batcher's threaded tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

Arrays = dict[str, np.ndarray]


def request(ids: Sequence[float], width: int = 3) -> Arrays:
    """One request whose row ``i`` starts with ``ids[i]``, so every row is recognisable in a result."""
    ids_col = np.asarray(ids, dtype=np.float64).reshape(-1, 1)
    x = ids_col + np.arange(width, dtype=np.float64) / 8
    return {"x": x, "mask": (ids_col.astype(np.int64) % 3).repeat(2, axis=1)}


def expected(inputs: Arrays) -> Arrays:
    return {"y": inputs["x"] * 2 + 1, "ids": inputs["x"][:, 0].copy(), "mask": inputs["mask"] + 1}


class FakeModel:
    """Row-wise numpy model recording each call's rows; can be slowed, gated or poisoned.

    ``poison``: a call containing a row whose id equals it raises ``error``, by default a
    ``ValueError`` naming that id.
    ``gate``: when set, every call first acquires it, so a test decides when each call may proceed.
    """

    def __init__(
        self, delay: float = 0.0, poison: float | None = None, error: BaseException | None = None
    ) -> None:
        self.delay, self.poison, self.error = delay, poison, error
        self.gate: threading.Semaphore | None = None
        self.sizes: list[int] = []
        self.started = threading.Semaphore(0)  # released once per call, as it begins
        self.overlapping = False  # set if two calls ever ran at once: the batcher must serialise
        self._active = 0
        self._lock = threading.Lock()

    def __call__(self, inputs: Arrays) -> Arrays:
        with self._lock:
            self.sizes.append(len(inputs["x"]))
            self._active += 1
            self.overlapping |= self._active > 1
        try:
            return self._compute(inputs)
        finally:
            with self._lock:
                self._active -= 1

    def _compute(self, inputs: Arrays) -> Arrays:
        self.started.release()
        if self.gate is not None and not self.gate.acquire(timeout=5):
            raise RuntimeError("FakeModel gate was never opened.")
        if self.delay:
            time.sleep(self.delay)
        ids = inputs["x"][:, 0]
        if self.poison is not None and (ids == self.poison).any():
            raise self.error or ValueError(f"poisoned row {self.poison:g}")
        return expected(inputs)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.001)


def assert_arrays_equal(got: Arrays, want: Arrays) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
