"""Writes what the event loop hands over (answered predictions, shadow comparisons) to the store.

The loop only puts an item on a queue (one ``SimpleQueue.put``, no I/O, no numpy): a background
thread takes whatever has accumulated, turns it into rows and writes them in one transaction per
model, waiting ``GATHER`` (50 ms) after the first item so a busy server writes hundreds of
predictions per commit. The same thread enforces each model's ``keep``/``ttl_s`` bounds every few
seconds. :meth:`flush` waits until everything put so
far is written (a feedback request calls it so a just-answered prediction is already known).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from service.evaluation.options import scores_of
from service.inference import Observation
from service.models.quality_config import FeedbackConfig
from service.quality.store import PredictionStore, Row, ShadowTally, encode_scores

log = logging.getLogger(__name__)

MAX_ITEMS = 4096  # items per write; the rest wait for the next round
PURGE_EVERY = 5.0  # seconds between bound checks of one model
GATHER = 0.05  # seconds the writer waits after the first of a batch of items


@dataclass(frozen=True)
class Remembered:
    model: str
    request_id: str
    observation: Observation
    created: float


@dataclass(frozen=True)
class Compared:
    """A shadow run to tally: ``compare`` turns it into a ShadowTally, on the recorder's thread."""

    model: str
    compare: Callable[[], ShadowTally | None]


class Recorder:
    def __init__(self, store: PredictionStore) -> None:
        self.store = store
        self._bounds: Mapping[str, FeedbackConfig] = {}
        self._purged: dict[str, float] = {}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="quality-recorder", daemon=True)
        self._started = False
        self._closed = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def configure(self, bounds: Mapping[str, FeedbackConfig]) -> None:
        """The feedback settings of the models whose predictions are remembered."""
        self._bounds = dict(bounds)

    def remember(self, model: str, request_id: str, observation: Observation) -> None:
        """Called on the event loop once a watched request is answered: queue it, nothing more."""
        self._queue.put(Remembered(model, request_id, observation, time.time()))

    def tally(self, item: Compared) -> None:
        self._queue.put(item)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until what was queued before this call is written (False: timed out or stopped)."""
        if not self._started or self._closed:
            return False
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        if self._started and not self._closed:
            self.flush(timeout)
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout)

    # ---- the recorder thread ----------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            if isinstance(items[0], (Remembered, Compared)):
                # Let a busy loop's answers pile up: one wake-up and one commit per ~GATHER seconds
                # instead of per request (measured: per-request commits cost ~0.3 ms of CPU each
                # at 2,000 req/s per worker, mostly GIL hand-offs and WAL writes).
                time.sleep(GATHER)
            while len(items) < MAX_ITEMS:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write(items)
            except Exception:  # a full disk or a locked file must not kill the thread
                log.exception("Could not write %d remembered prediction(s)", len(items))
            for item in items:
                if isinstance(item, threading.Event):
                    item.set()
            if any(item is None for item in items):
                self.store.close()
                return

    def _write(self, items: list[Any]) -> None:
        rows: dict[str, list[Row]] = {}
        tallies: dict[str, list[ShadowTally]] = {}
        for item in items:
            if isinstance(item, Remembered):
                rows.setdefault(item.model, []).extend(_rows(item))
            elif isinstance(item, Compared):
                try:
                    tally = item.compare()
                except Exception:  # e.g. a candidate whose outputs differ in kind: skip that one
                    log.exception("Could not compare a shadow run of %s", item.model)
                    continue
                if tally is not None:
                    tallies.setdefault(item.model, []).append(tally)
        for model, model_rows in rows.items():
            self.store.insert(model, model_rows)
            self._bound(model)
        for model, model_tallies in tallies.items():
            self.store.add_shadow(model, model_tallies)

    def _bound(self, model: str) -> None:
        bounds, now = self._bounds.get(model), time.monotonic()
        if bounds is None or now - self._purged.get(model, 0.0) < PURGE_EVERY:
            return
        self._purged[model] = now
        self.store.purge(model, bounds.keep, time.time() - bounds.ttl_s)


def _rows(item: Remembered) -> list[Row]:
    observation = item.observation
    blobs = encode_scores(scores_of(observation.outputs, observation.card))
    return [
        (item.request_id, position, observation.version, item.created, blob)
        for position, blob in enumerate(blobs)
    ]
