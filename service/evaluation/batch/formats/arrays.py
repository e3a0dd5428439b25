"""Rows already in memory as arrays: Keras' mnist.npz (small, loaded as is) and tests' data."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.evaluation.batch.rows import Batch, array_inputs
from service.models.card import TensorSpec


@dataclass(frozen=True)
class ArrayRows:
    features: np.ndarray
    labels: np.ndarray | Sequence[Any]
    divisor: float | None = None  # MNIST pixels to 0..1 exactly as training does: float32(x) / 255

    @property
    def count(self) -> int:
        return len(self.features)

    def read(self, spans: Iterable[range]) -> Iterator[tuple[np.ndarray, Any]]:
        for span in spans:
            yield self.features[span.start : span.stop], self.labels[span.start : span.stop]

    def decode(self, span: range, raw: tuple[np.ndarray, Any], specs: Sequence[TensorSpec]) -> Batch:
        features, labels = raw
        rows = np.arange(span.start, span.stop)
        labels = labels if isinstance(labels, np.ndarray) else list(labels)
        return Batch(rows, array_inputs(features, specs, self.divisor), labels)
