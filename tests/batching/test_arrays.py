"""merge / split / chunks / join / row_count on hand-picked cases; no threads."""

from __future__ import annotations

import numpy as np
import pytest

from service.batching.arrays import chunks, join, merge, row_count, split
from service.errors import InvalidInput

from .fakes import assert_arrays_equal, request

DTYPE_CASES = {
    "float32": np.arange(12, dtype=np.float32).reshape(4, 3),
    "int64": np.arange(8, dtype=np.int64).reshape(4, 2),
    "bool": np.array([[True], [False], [True], [True]]),
    "uint8-images": np.arange(4 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(4, 28, 28),
    "bytes-objects": np.array([[b"a"], [b""], [b"ccc"], [b"d"]], dtype=object),
}


@pytest.mark.parametrize("array", DTYPE_CASES.values(), ids=DTYPE_CASES.keys())
def test_split_inverts_merge_for_each_dtype(array: np.ndarray) -> None:
    requests = [{"t": array[:1]}, {"t": array[1:3]}, {"t": array[3:]}]
    merged, sizes = merge(requests)
    assert sizes == [1, 2, 1]
    assert_arrays_equal(merged, {"t": array})
    for got, want in zip(split(merged, sizes), requests, strict=True):
        assert_arrays_equal(got, want)


def test_merge_concatenates_every_named_input_in_request_order() -> None:
    merged, sizes = merge([request([1, 2]), request([3]), request([4, 5, 6])])
    assert sizes == [2, 1, 3]
    assert_arrays_equal(merged, request([1, 2, 3, 4, 5, 6]))


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ({"x": np.zeros((1, 3))}, "has inputs"),
        ({"x": np.zeros((1, 4)), "mask": np.zeros((1, 2), np.int64)}, "per row"),
        ({"x": np.zeros((1, 3), np.float32), "mask": np.zeros((1, 2), np.int64)}, "float32"),
    ],
    ids=["names", "trailing-shape", "dtype"],
)
def test_merge_rejects_incompatible_requests_clearly(second: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        merge([request([1]), second])


def test_merge_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        merge([])


def test_zero_row_requests_merge_and_split_to_empty_results() -> None:
    merged, sizes = merge([request([]), request([7]), request([])])
    assert sizes == [0, 1, 0]
    parts = split(merged, sizes)
    assert [len(p["x"]) for p in parts] == [0, 1, 0]
    assert_arrays_equal(parts[1], request([7]))


def test_split_hands_out_disjoint_views() -> None:
    outputs = {"y": np.arange(6.0).reshape(3, 2)}
    first, second = split(outputs, [1, 2])
    first["y"][:] = -1  # a consumer scribbling on its own result
    assert np.shares_memory(first["y"], outputs["y"])
    np.testing.assert_array_equal(second["y"], [[2.0, 3.0], [4.0, 5.0]])


@pytest.mark.parametrize(
    "outputs",
    [{"y": np.zeros((4, 2))}, {"y": np.array(3.0)}],
    ids=["wrong-rows", "scalar"],
)
def test_split_refuses_outputs_that_are_not_batch_major(outputs: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="not batch-major"):
        split(outputs, [1, 2])


def test_row_count_requires_inputs_to_agree() -> None:
    assert row_count(request([1, 2, 3])) == 3
    assert row_count({}) == 0
    with pytest.raises(InvalidInput, match="disagree"):
        row_count({"a": np.zeros((2, 1)), "b": np.zeros((3, 1))})
    with pytest.raises(InvalidInput, match="scalar"):
        row_count({"a": np.array(1.0, dtype=np.float32)})


@pytest.mark.parametrize(
    ("rows", "max_batch_size", "sizes"),
    [(10, 4, [4, 4, 2]), (8, 4, [4, 4]), (3, 4, [3]), (1, 1, [1]), (0, 4, [0])],
)
def test_chunks_cut_in_order_and_join_restores(rows: int, max_batch_size: int, sizes: list[int]) -> None:
    original = request(list(range(rows)))
    pieces = chunks(original, max_batch_size)
    assert [len(p["x"]) for p in pieces] == sizes
    assert_arrays_equal(join(pieces), original)


def test_chunks_rejects_a_nonpositive_limit() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        chunks(request([1]), 0)


def test_join_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        join([])
