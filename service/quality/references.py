"""Cards and drift references per model version, cached: the card's own, or one computed from its
held-out split when the card predates drift references (the committed models).

Computing one runs the version on its rebuilt held-out split (1,500 MNIST images: a few tens of
milliseconds) once per worker and version.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.evaluation.options import scores_of
from service.models.card import ModelCard
from service.models.registry import Registry
from service.quality import drift, reference

CHUNK = 1024


class DriftReferences:
    def __init__(self, registry: Registry, search: Sequence[Path], timeout: float = 60.0) -> None:
        self.registry = registry
        self.search = tuple(search)
        self.timeout = timeout
        self._cards: dict[tuple[str, int], ModelCard] = {}
        self._refs: dict[tuple[str, int], dict[str, Any]] = {}
        self._failed: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()

    def card(self, name: str, version: int) -> ModelCard:
        key = (name, version)
        card = self._cards.get(key)
        if card is None:
            card = self._cards[key] = self.registry.repository.read_card(name, version)
        return card

    def drift_reference(self, card: ModelCard) -> dict[str, Any]:
        """The card's ``drift_reference``, or one computed from its held-out split (cached)."""
        recorded = card.raw.get("drift_reference")
        if isinstance(recorded, dict) and "signals" in recorded:
            return recorded
        key = (card.name, card.version)
        with self._lock:
            if key in self._failed:
                raise reference.ReferenceUnavailable(self._failed[key])
            if key not in self._refs:
                try:
                    self._refs[key] = self._compute(card)
                except reference.ReferenceUnavailable as exc:
                    self._failed[key] = str(exc)
                    raise
            return self._refs[key]

    def _compute(self, card: ModelCard) -> dict[str, Any]:
        inputs, _ = reference.heldout(card, self.search)
        count = len(next(iter(inputs.values())))
        with self.registry.acquire(card.name, card.version) as servable:
            parts = [
                scores_of(
                    servable.predict({k: v[i : i + CHUNK] for k, v in inputs.items()}, self.timeout), card
                )
                for i in range(0, count, CHUNK)
            ]
        classes = len(card.class_labels) if card.task == "classification" and card.class_labels else None
        computed = drift.reference(card.task, np.concatenate(parts), classes)
        return {**computed, "split": "test", "computed_by": "service"}
