"""JSON parsing with NaN/Infinity tokens, and numpy-aware writing."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from service.errors import InvalidInput
from service.protocol import jsonio


def test_loads_reads_standard_json() -> None:
    assert jsonio.loads(b'{"a": [1, 2.5, "x", true, null]}') == {"a": [1, 2.5, "x", True, None]}


def test_loads_reads_tf_serving_nonfinite_tokens() -> None:
    nan, inf, ninf = jsonio.loads(b"[NaN, Infinity, -Infinity]")
    assert math.isnan(nan) and inf == math.inf and ninf == -math.inf


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "The request body is empty; expected a JSON object."),
        (b"  \n", "The request body is empty"),
        (b'{"a": [1,', "The request body is not valid JSON: unexpected end of data"),
        (b"{'a': 1}", "not valid JSON"),
        (b"[nan]", "not valid JSON"),  # only TF Serving's spelling of the tokens
        (b"\xef\xbb\xbf[NaN]", "byte order mark"),  # the stdlib retry keeps orjson's strictness
        (b'["\xff", NaN]', "not valid JSON"),
        (b"[1] [2]", "unexpected content after document"),
    ],
)
def test_loads_refuses_malformed_bodies(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        jsonio.loads(body)
    assert message in caught.value.message


def test_dumps_serialises_numpy_compactly() -> None:
    doc = {"a": np.array([[0.1, 1.0]], np.float32), "b": np.int64(3), "c": np.array([True])}
    assert jsonio.dumps(doc) == b'{"a":[[0.1,1.0]],"b":3,"c":[true]}'


def test_dumps_writes_nonfinite_tokens_like_tf_serving() -> None:
    doc = {"a": np.array([0.1, np.nan, np.inf, -np.inf], np.float32), "s": ["é"], "n": np.int32(2)}
    body = jsonio.dumps(doc, nonfinite=True)
    assert body == '{"a":[0.1,NaN,Infinity,-Infinity],"s":["é"],"n":2}'.encode()
    assert json.loads(body)["s"] == ["é"]


def test_has_nonfinite_looks_at_float_arrays_only() -> None:
    assert not jsonio.has_nonfinite([np.array([1, 2]), np.array([0.5], np.float32)])
    assert jsonio.has_nonfinite([np.array([1.0, np.nan])])


def test_plain_floats_keep_the_short_form_of_narrow_floats() -> None:
    assert jsonio.plain_floats(np.array([0.1, 1 / 3], np.float32)) == [0.1, 0.33333334]
    assert jsonio.plain_floats(np.array([[0.1]])) == [[0.1]]
