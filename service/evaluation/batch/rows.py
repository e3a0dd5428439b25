"""What every data format gives the batch job: row ranges read as raw chunks, decoded into a Batch.

Reading (``Rows.read``) is sequential I/O done by the job's main thread, in ascending row order;
decoding (``Rows.decode``) is CPU work done by the scoring threads, so parsing a chunk overlaps
with other chunks' requests. Row numbers are 0-based positions among the file's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from service.errors import JobError
from service.models.card import TensorSpec


@dataclass
class Batch:
    rows: np.ndarray  # row numbers of the rows that became inputs
    inputs: dict[str, np.ndarray]
    labels: np.ndarray | list[Any]  # raw labels of those rows (an array when they are all numbers)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row, reason) of the rest


class Rows(Protocol):
    """A data file's rows: ``count`` of them, read by range and decoded into model inputs."""

    count: int

    def read(self, spans: Iterable[range]) -> Iterator[Any]:
        """The raw data of each row range, in the order given (ascending), one item per range."""
        ...

    def decode(self, span: range, raw: Any, specs: Sequence[TensorSpec]) -> Batch: ...


def array_inputs(
    features: np.ndarray, specs: Sequence[TensorSpec], divisor: float | None
) -> dict[str, np.ndarray]:
    """Rows of numbers (any trailing shape) as the one input of ``specs``, reshaped to fit it."""
    if len(specs) != 1:
        raise JobError(
            f"The model has {len(specs)} inputs; array data (IDX, npz, CSV, Parquet) feeds one. Use JSONL."
        )
    spec = specs[0]
    inner = tuple(features.shape[1:])
    wanted = tuple(spec.shape[1:])
    values = features.astype(spec.dtype)
    if divisor is not None and values.dtype.kind == "f":  # a fresh array: divided in place
        values = np.divide(values, np.asarray(divisor, dtype=spec.dtype), out=values)
    elif divisor is not None:
        values = values / np.asarray(divisor, dtype=spec.dtype)
    if inner != wanted:
        size = int(np.prod(inner, dtype=np.int64))
        if -1 in wanted or size != int(np.prod(wanted, dtype=np.int64)):
            raise JobError(
                f"Data rows have shape {list(inner)}; input {spec.name!r} takes {list(spec.shape)}."
            )
        values = values.reshape((len(values), *wanted))
    return {spec.name: values}


def parse_label(text: str) -> Any:
    """``3`` -> 3, ``0.5`` -> 0.5, anything else stays text (a class label name)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_number(text: str) -> float:
    """A feature cell; an empty or non-numeric one is missing (NaN), which the scorer refuses."""
    try:
        return float(text) if text.strip() else float("nan")
    except ValueError:
        return float("nan")
