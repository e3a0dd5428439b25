"""Pure batch arithmetic: merge requests into one batch, split outputs back, chunk and re-join."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import accumulate, pairwise

import numpy as np

from service.errors import InvalidInput

Arrays = dict[str, np.ndarray]


def row_count(request: Mapping[str, np.ndarray]) -> int:
    """Rows along axis 0, which every input of one request must agree on; 0 for no inputs."""
    counts: dict[str, int] = {}
    for name, array in request.items():
        if array.ndim == 0:
            raise InvalidInput(f"Input {name!r} is a scalar; batched inputs need a leading batch dimension.")
        counts[name] = array.shape[0]
    if len(set(counts.values())) > 1:
        raise InvalidInput(f"Inputs disagree on the batch dimension (rows per input: {counts}).")
    return next(iter(counts.values()), 0)


def _check_compatible(requests: Sequence[Mapping[str, np.ndarray]]) -> None:
    # Upstream validation guarantees this; a violation is a bug, so fail loudly rather than let
    # numpy broadcast or upcast one request's rows into another's dtype.
    first = requests[0]
    for index, request in enumerate(requests[1:], start=1):
        if request.keys() != first.keys():
            raise ValueError(f"Request {index} has inputs {sorted(request)}, request 0 has {sorted(first)}.")
        for name, array in request.items():
            ref = first[name]
            if array.shape[1:] != ref.shape[1:] or array.dtype != ref.dtype:
                raise ValueError(
                    f"Input {name!r} of request {index} is {array.dtype}{list(array.shape[1:])} per row, "
                    f"request 0 has {ref.dtype}{list(ref.shape[1:])}."
                )


def merge(requests: Sequence[Mapping[str, np.ndarray]]) -> tuple[Arrays, list[int]]:
    """Concatenate each named input along axis 0; also return each request's row count."""
    if not requests:
        raise ValueError("Cannot merge an empty list of requests.")
    _check_compatible(requests)
    sizes = [row_count(request) for request in requests]
    merged = {name: np.concatenate([r[name] for r in requests], axis=0) for name in requests[0]}
    return merged, sizes


def split(outputs: Mapping[str, np.ndarray], sizes: Sequence[int]) -> list[Arrays]:
    """Inverse of :func:`merge` for the model's outputs: one dict per request, in order.

    The arrays are views into ``outputs``. Each request's rows are disjoint from every other's,
    so a consumer mutating its own result in place cannot corrupt another request; the view
    only keeps the whole batch's buffer alive until all of the batch's results are dropped.
    """
    total = sum(sizes)
    for name, array in outputs.items():
        if array.ndim == 0 or array.shape[0] != total:
            got = array.shape[0] if array.ndim else "a scalar"
            raise ValueError(f"Output {name!r} has {got} rows for a batch of {total}; it is not batch-major.")
    bounds = [0, *accumulate(sizes)]
    return [{name: a[lo:hi] for name, a in outputs.items()} for lo, hi in pairwise(bounds)]


def chunks(request: Mapping[str, np.ndarray], max_batch_size: int) -> list[Arrays]:
    """Cut a request into consecutive pieces of at most ``max_batch_size`` rows (views, in order)."""
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be at least 1; got {max_batch_size}.")
    rows = row_count(request)
    starts = range(0, rows, max_batch_size) if rows else range(1)  # zero rows: one empty piece
    return [{name: a[start : start + max_batch_size] for name, a in request.items()} for start in starts]


def join(parts: Sequence[Mapping[str, np.ndarray]]) -> Arrays:
    """Concatenate the chunk results of one request back into a single result."""
    if not parts:
        raise ValueError("Cannot join an empty list of results.")
    if len(parts) == 1:
        return dict(parts[0])
    return {name: np.concatenate([part[name] for part in parts], axis=0) for name in parts[0]}
