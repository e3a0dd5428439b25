"""Triton's classification extension strings."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import InvalidInput
from service.protocol.v2_classification import classify


def test_top_k_entries_follow_tritons_format() -> None:
    out = classify(np.array([[1.1, 3.3, 0.5, 2.4]], np.float32), 2, None, "Output 'y'")
    assert out.shape == (1, 2)
    assert out.tolist() == [[b"3.300000:1", b"2.400000:3"]]


def test_labels_are_appended_when_known() -> None:
    out = classify(np.array([[0.1, 0.7, 0.2]], np.float64), 3, ["a", "b"], "y")
    assert out.tolist() == [[b"0.700000:1:b", b"0.200000:2", b"0.100000:0:a"]]


def test_integers_print_without_decimals_and_unsigned_values_sort_right() -> None:
    out = classify(np.array([[1, 3, 2], [9, 7, 8]], np.uint8), 2, None, "y")
    assert out.tolist() == [[b"3:1", b"2:2"], [b"9:0", b"8:2"]]


def test_the_count_is_capped_by_the_classes_and_ties_keep_the_lower_index() -> None:
    out = classify(np.array([[0.5, 0.5]], np.float32), 5, None, "y")
    assert out.tolist() == [[b"0.500000:0", b"0.500000:1"]]


def test_items_are_flattened_per_batch_element() -> None:
    out = classify(np.arange(8, dtype=np.int32).reshape(2, 2, 2), 1, None, "y")
    assert out.tolist() == [[b"3:3"], [b"7:3"]]


@pytest.mark.parametrize(
    "values",
    [np.array([[True]]), np.array([[b"a"]], dtype=object), np.array([[1]], np.float16), np.float32(1)],
)
def test_unclassifiable_outputs_are_refused(values: np.ndarray) -> None:
    with pytest.raises(InvalidInput, match="Output 'y' cannot be classified"):
        classify(np.asarray(values), 1, None, "Output 'y'")
