"""Hypothesis properties of the pure batching functions: round trips, order, planning."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("hypothesis")  # dev extra; the lead adds it to pyproject's [dev]

from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.batching.arrays import chunks, join, merge, split
from service.batching.policy import plan

from .fakes import Arrays, assert_arrays_equal

TRAILING = st.lists(st.integers(1, 3), max_size=2).map(tuple)
DTYPES = st.sampled_from([np.float32, np.float64, np.int8, np.int64, np.bool_])


@st.composite
def compatible_requests(draw: st.DrawFn, min_size: int = 1) -> list[Arrays]:
    """Requests sharing input names, trailing shapes and dtypes, each with its own row count."""
    specs = {
        name: (draw(TRAILING), draw(DTYPES)) for name in draw(st.sets(st.sampled_from("abc"), min_size=1))
    }
    counts = draw(st.lists(st.integers(0, 5), min_size=min_size, max_size=6))
    return [
        {name: draw(hnp.arrays(dtype, (rows, *shape))) for name, (shape, dtype) in specs.items()}
        for rows in counts
    ]


@given(compatible_requests())
def test_split_of_merge_is_identity(requests: list[Arrays]) -> None:
    merged, sizes = merge(requests)
    assert sizes == [len(next(iter(r.values()))) for r in requests]
    for got, want in zip(split(merged, sizes), requests, strict=True):
        assert_arrays_equal(got, want)


@given(compatible_requests(min_size=1).map(lambda rs: rs[0]), st.integers(1, 7))
def test_chunks_respect_the_limit_and_merge_back_in_order(request: Arrays, max_batch_size: int) -> None:
    pieces = chunks(request, max_batch_size)
    rows = len(next(iter(request.values())))
    assert len(pieces) == max(1, math.ceil(rows / max_batch_size))
    assert all(len(next(iter(p.values()))) <= max_batch_size for p in pieces)
    assert_arrays_equal(merge(pieces)[0], request)
    assert_arrays_equal(join(pieces), request)


SIZES = st.lists(st.integers(0, 40), max_size=30)


@given(SIZES, st.integers(1, 32))
def test_plan_takes_the_longest_fitting_fifo_prefix(sizes: list[int], max_batch_size: int) -> None:
    n = plan(sizes, max_batch_size)
    if not sizes:
        assert n == 0
        return
    assert 1 <= n <= len(sizes)
    assert n == 1 or sum(sizes[:n]) <= max_batch_size  # only a lone head may exceed (it is chunked)
    full = sum(sizes[:n]) >= max_batch_size
    assert n == len(sizes) or full or sum(sizes[: n + 1]) > max_batch_size


@given(SIZES, st.integers(1, 32))
def test_planning_repeatedly_partitions_the_queue_in_order(sizes: list[int], max_batch_size: int) -> None:
    queue, batches = list(enumerate(sizes)), []
    while queue:
        n = plan([size for _, size in queue], max_batch_size)
        batches.append(queue[:n])
        queue = queue[n:]
    assert [item for batch in batches for item in batch] == list(enumerate(sizes))
