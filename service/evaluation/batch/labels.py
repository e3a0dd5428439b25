"""A chunk's labels encoded for the model: whole arrays at once, row by row only to name bad rows.

``service.evaluation.labels.encode_labels`` checks one label at a time in Python, which costs more than
scoring a row over binary tensors. Numeric labels (IDX, npz, most CSV and Parquet files) are
checked and converted here with array operations; anything else, or a chunk with a bad label, goes
through ``encode_labels`` so each refusal carries its usual message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from service.errors import InvalidInput
from service.evaluation.labels import encode_labels
from service.evaluation.options import class_names
from service.models.card import ModelCard


def encode(
    raw: np.ndarray | list[Any], rows: np.ndarray, card: ModelCard, errors: list[tuple[int, str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the rows whose labels fit the model, and those labels encoded.

    The others are appended to ``errors`` as (row, reason).
    """
    fast = _numeric(raw, card)
    if fast is not None:
        return np.arange(len(fast)), fast
    names = class_names(card)

    def one_by_one(items: list[Any], where: Callable[[int], str]) -> np.ndarray:
        return encode_labels(items, card.task, names, len(items), where)

    items = list(raw)
    try:
        return np.arange(len(items)), one_by_one(items, lambda i: f"on row {rows[i]}")
    except InvalidInput:
        pass
    keep, encoded = [], []
    for i, label in enumerate(items):
        try:
            encoded.append(one_by_one([label], lambda _: f"on row {rows[i]}")[0])  # noqa: B023 - called at once
            keep.append(i)
        except InvalidInput as exc:
            errors.append((int(rows[i]), exc.message))
    dtype = np.float64 if card.task == "regression" else np.int64
    return np.array(keep, dtype=np.int64), np.array(encoded, dtype=dtype)


def _numeric(raw: np.ndarray | list[Any], card: ModelCard) -> np.ndarray | None:
    """All of ``raw`` encoded if it is a numeric array whose every label fits, else None."""
    if not isinstance(raw, np.ndarray) or raw.ndim != 1 or raw.dtype.kind not in "iuf":
        return None
    if card.task == "regression":
        targets = raw.astype(np.float64)
        return targets if np.isfinite(targets).all() else None
    classes = 2 if card.task == "binary" else len(class_names(card) or ())
    with np.errstate(invalid="ignore"):  # NaN compares False: such a chunk takes the slow path
        fits = (raw >= 0) & (raw < classes)
        if raw.dtype.kind == "f":
            fits &= raw == np.floor(raw)
    return raw.astype(np.int64) if fits.all() else None
