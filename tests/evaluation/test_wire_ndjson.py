"""Streamed NDJSON evaluation bodies: lines, chunks, and faults traced to their line numbers."""

from __future__ import annotations

import io

import numpy as np
import pytest

from service.errors import InvalidInput, PayloadTooLarge
from service.evaluation import wire
from service.models.card import TensorSpec
from service.protocol.tensors import Limits

SPECS = [TensorSpec("x", "float32", (-1, 2))]
LIMITS = Limits(max_instances=100)


def stream(*lines: str) -> io.BytesIO:
    return io.BytesIO("".join(f"{line}\n" for line in lines).encode())


def test_chunks_of_rows_with_line_numbers() -> None:
    body = stream(*(f'{{"instance": [{i}, {i}.5], "label": {i % 2}}}' for i in range(5)))
    chunks = list(wire.chunks(body, SPECS, LIMITS, rows=2, max_line_bytes=100))
    assert [c.lines for c in chunks] == [[1, 2], [3, 4], [5]]
    assert [c.labels for c in chunks] == [[0, 1], [0, 1], [0]]
    np.testing.assert_array_equal(chunks[1].inputs["x"], np.array([[2, 2.5], [3, 3.5]], np.float32))


def test_blank_lines_are_skipped_but_counted() -> None:
    body = io.BytesIO(b'{"instance": [1, 2], "label": 0}\n\n  \n{"instance": [3, 4], "label": 1}')
    (chunk,) = wire.chunks(body, SPECS, LIMITS, rows=10, max_line_bytes=100)
    assert chunk.lines == [1, 4]


def test_named_instances() -> None:
    body = stream('{"instance": {"x": [1, 2]}, "label": 0}')
    (chunk,) = wire.chunks(body, SPECS, LIMITS, rows=10, max_line_bytes=100)
    np.testing.assert_array_equal(chunk.inputs["x"], np.array([[1, 2]], np.float32))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "Line 3 is not valid JSON"),
        ("[1, 2]", "Line 3 must be an object"),
        ('{"instance": [1, 2]}', "Line 3 must be an object .* got fields \\['instance'\\]"),
        ('{"instance": [1, 2], "label": 0, "x": 1}', "Line 3 must be an object"),
        ('{"instance": [1, "a"], "label": 0}', "Line 3: Input 'x' must hold numbers"),
        ('{"instance": [1, 2, 3], "label": 0}', "Line 3: Input 'x' must have shape"),
    ],
)
def test_a_bad_line_is_named(bad: str, message: str) -> None:
    good = '{"instance": [1, 2], "label": 0}'
    with pytest.raises(InvalidInput, match=message):
        list(wire.chunks(stream(good, good, bad, good), SPECS, LIMITS, rows=10, max_line_bytes=100))


def test_line_length_is_bounded() -> None:
    long = '{"instance": [1, 2], "label": 0}' + " " * 100
    with pytest.raises(PayloadTooLarge, match="Line 2 is longer than the limit of 50 bytes"):
        list(wire.lines(stream('{"instance": [1, 2], "label": 0}', long), 50))
    exactly = "x" * 50
    assert list(wire.lines(stream(exactly), 50)) == [(1, exactly.encode() + b"\n")]
