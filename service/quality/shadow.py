"""Shadow traffic: a share of a model's answered requests also run on a candidate version.

Started on the event loop after the live answer has been sent, so it never delays it: the
candidate's batcher runs the same inputs, and the comparison (predicted class per instance for
classifiers, predictions within ``tolerance`` for regressors) is tallied on the recorder's thread
into the store, where every worker's tallies add up. At most ``MAX_IN_FLIGHT`` shadow runs per
worker at once; past that a shadow run is skipped (and counted as such), never queued.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter as Tally

import numpy as np

from service import metrics
from service.evaluation.options import scores_of
from service.inference import Observation
from service.models.card import ModelCard
from service.models.quality_config import ShadowConfig
from service.models.registry import Registry
from service.models.servable import AVAILABLE, Arrays
from service.quality.recorder import Compared, Recorder
from service.quality.store import ShadowTally

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 32


def candidate_version(registry: Registry, name: str, live: int, config: ShadowConfig) -> int | None:
    """The version to shadow ``live`` with, or None (none available, or it is the live one)."""
    if config.candidate_version is not None:
        chosen: int | None = config.candidate_version
    elif config.candidate_label is not None:
        chosen = registry.labels(name).get(config.candidate_label)
    else:
        newest = [s.version for s in registry.status(name) if s.state == AVAILABLE and s.version != live]
        chosen = newest[0] if newest else None
    return None if chosen == live else chosen


def classes(card: ModelCard, scores: np.ndarray) -> np.ndarray:
    if card.task == "classification":
        return np.asarray(scores).argmax(axis=1)
    return (np.asarray(scores).reshape(-1) >= 0.5).astype(np.int64)


def compare(
    card: ModelCard, live: Arrays, shadow: Arrays, version: int, candidate: int, tolerance: float
) -> ShadowTally:
    """How the candidate's answers to the same instances compare with the live version's."""
    a, b = scores_of(live, card), scores_of(shadow, card)
    if card.task == "regression":
        agreed = int(np.count_nonzero(np.abs(a.reshape(-1) - b.reshape(-1)) <= tolerance))
        return ShadowTally(version, candidate, len(a), agreed, {})
    ours, theirs = classes(card, a), classes(card, b)
    matrix = Tally(zip(ours.tolist(), theirs.tolist(), strict=True))
    return ShadowTally(version, candidate, len(a), int(np.count_nonzero(ours == theirs)), dict(matrix))


class ShadowRunner:
    def __init__(self, registry: Registry, recorder: Recorder, timeout: float) -> None:
        self.registry = registry
        self.recorder = recorder
        self.timeout = timeout
        self._tasks: set[asyncio.Task[None]] = set()

    def maybe_run(self, name: str, observation: Observation, config: ShadowConfig) -> None:
        """On the event loop, after the live answer went out: start a shadow run for a share of requests."""
        if random.random() >= config.fraction:
            return
        candidate = candidate_version(self.registry, name, observation.version, config)
        if candidate is None:
            return
        if len(self._tasks) >= MAX_IN_FLIGHT:
            self._count(name, observation.version, candidate, "skipped")
            return
        task = asyncio.get_running_loop().create_task(self._run(name, observation, candidate, config))
        self._tasks.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._tasks.discard)

    async def _run(self, name: str, observation: Observation, candidate: int, config: ShadowConfig) -> None:
        version = observation.version
        try:
            with self.registry.acquire(name, candidate) as servable:
                outputs = await servable.predict_async(observation.inputs, timeout=self.timeout)
        except Exception as exc:  # a shadow failure is the candidate's problem, never the caller's
            log.debug("Shadow run of %s v%s on v%s failed: %s", name, version, candidate, exc)
            self._count(name, version, candidate, "error")
            return

        def tally() -> ShadowTally:
            result = compare(
                observation.card, observation.outputs, outputs, version, candidate, config.tolerance
            )
            agreed = result.agreed == result.compared
            self._count(name, version, candidate, "agree" if agreed else "disagree")
            return result

        self.recorder.tally(Compared(name, tally))

    @staticmethod
    def _count(name: str, version: int, candidate: int, result: str) -> None:
        metrics.SHADOW_REQUESTS.labels(name, str(version), str(candidate), result).inc()
