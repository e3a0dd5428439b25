"""Triton's classification extension: an output's top-k entries as ``"value:index[:label]"`` strings.

Per ``extension_classification.md`` and Triton's ``classification.cc``: for each batch item the k
highest values of the output (flattened per item) are returned as a BYTES tensor [batch, k'] with
k' = min(k, classes). The value is printed like C++ ``std::to_string`` (``%f`` for floats, ``%d``
for integers), the index is the class position and the label is appended only when known. Ties
keep the lower index first (Triton's sort leaves ties unspecified).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from service.errors import InvalidInput


def classify(values: np.ndarray, count: int, labels: Sequence[str] | None, where: str) -> np.ndarray:
    """The top ``count`` entries of each batch item of ``values`` as an object array of bytes."""
    if values.dtype.kind not in "iuf" or (values.dtype.itemsize < 4 and values.dtype.kind == "f"):
        raise InvalidInput(f"{where} cannot be classified: only integer, FP32 and FP64 outputs can.")
    if values.ndim == 0:
        raise InvalidInput(f"{where} cannot be classified: it has no batch dimension.")
    rows = values.reshape(values.shape[0], -1)
    top = _top_indices(rows)[:, :count]
    text = "{:f}:{}" if rows.dtype.kind == "f" else "{:d}:{}"
    result = np.empty(top.shape, dtype=object)
    for (i, j), index in np.ndenumerate(top):
        entry = text.format(rows[i, index].item(), index)
        if labels is not None and index < len(labels):
            entry += f":{labels[index]}"
        result[i, j] = entry.encode("utf-8")
    return result


def _top_indices(rows: np.ndarray) -> np.ndarray:
    """Column indices by descending value; a stable sort of the reversed columns keeps ties low-first.

    (Negating the values would overflow unsigned integers.)
    """
    last = rows.shape[1] - 1
    return last - np.argsort(rows[:, ::-1], axis=1, kind="stable")[:, ::-1]
