"""Evaluate bodies: the decoders' ``extra`` fields, and both JSON forms of an evaluate request."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from service.errors import InvalidInput
from service.evaluation import wire
from service.models.card import TensorSpec
from service.protocol.jsonio import SlowReader, decode_fast
from service.protocol.tensors import Limits
from service.protocol.tfserving.predict import decode_predict, read_predict
from service.protocol.v2.request import decode_infer

IMAGES = [TensorSpec("images", "float32", (-1, 2))]
LIMITS = Limits(max_instances=8)
ROWS = [[1.0, 2.0], [3.0, 4.5]]
EXPECTED = np.array(ROWS, np.float32)
EXTRA = ("labels", "dataset")


def test_predict_extra_fields_come_back_plain_on_both_readers() -> None:
    body = orjson.dumps({"instances": ROWS, "labels": [[0], 1], "dataset": "x"})
    fast = decode_fast(body, lambda r: read_predict(r, IMAGES, LIMITS, EXTRA))
    slow = read_predict(SlowReader(body), IMAGES, LIMITS, EXTRA)
    for request in (fast, slow):
        assert request.extra == {"labels": [[0], 1], "dataset": "x"}
        np.testing.assert_array_equal(request.inputs["images"], EXPECTED)


def test_predict_without_extra_is_unchanged() -> None:
    request = decode_predict(orjson.dumps({"instances": ROWS}), IMAGES, LIMITS)
    assert request.extra == {}
    with pytest.raises(InvalidInput, match=r"Unknown field.*'labels'"):
        decode_predict(orjson.dumps({"instances": ROWS, "labels": [0, 1]}), IMAGES, LIMITS)


def test_predict_unknown_fields_name_the_extra_ones_allowed() -> None:
    with pytest.raises(InvalidInput, match=r"'label'.*This endpoint also takes 'labels', 'dataset'"):
        decode_predict(orjson.dumps({"instances": ROWS, "label": 1}), IMAGES, LIMITS, EXTRA)


def test_infer_extra_fields() -> None:
    doc = {
        "inputs": [{"name": "images", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4.5]}],
        "labels": [1, 0],
    }
    request = decode_infer(orjson.dumps(doc), None, IMAGES, LIMITS, EXTRA)
    assert request.extra == {"labels": [1, 0]}
    np.testing.assert_array_equal(request.inputs["images"], EXPECTED)
    with pytest.raises(InvalidInput, match="unknown field 'labels'"):
        decode_infer(orjson.dumps(doc), None, IMAGES, LIMITS)


V2_TENSOR = {"name": "images", "shape": [2, 2], "datatype": "FP32", "data": [1, 2, 3, 4.5]}


@pytest.mark.parametrize(
    ("doc", "options"),
    [
        ({"instances": ROWS, "labels": [0, 1]}, {}),
        (
            {"inputs": ROWS, "labels": [0, 1], "metrics": ["f1"], "threshold": 0.7},
            {"metrics": ["f1"], "threshold": 0.7},
        ),
        (
            {"instances": ROWS, "labels": [0, 1], "parameters": {"top_k": 2}, "dataset": "d"},
            {"top_k": 2, "dataset": "d"},
        ),
    ],
)
def test_tfserving_form(doc: dict[str, Any], options: dict[str, Any]) -> None:
    for decode in (
        lambda b: wire.decode_tfserving(b, IMAGES, LIMITS),
        lambda b: wire.decode_v2(b, None, IMAGES, LIMITS),
    ):
        request = decode(orjson.dumps(doc))
        np.testing.assert_array_equal(request.inputs["images"], EXPECTED)
        assert request.labels == [0, 1] and request.options == options


def test_v2_typed_tensors_with_options_in_parameters() -> None:
    doc = {
        "inputs": [V2_TENSOR],
        "labels": [1, 0],
        "parameters": {"metrics": "accuracy,f1", "dataset": "d", "threshold": 0.4, "sequence_id": 3},
    }
    request = wire.decode_v2(orjson.dumps(doc), None, IMAGES, LIMITS)
    np.testing.assert_array_equal(request.inputs["images"], EXPECTED)
    assert request.labels == [1, 0]
    assert request.options == {"metrics": "accuracy,f1", "dataset": "d", "threshold": 0.4}


def test_v2_binary_tensors() -> None:
    tensor = {"name": "images", "shape": [2, 2], "datatype": "FP32", "parameters": {"binary_data_size": 16}}
    header = orjson.dumps({"inputs": [tensor], "labels": [0, 1], "metrics": ["accuracy"]})
    request = wire.decode_v2(header + EXPECTED.tobytes(), len(header), IMAGES, LIMITS)
    np.testing.assert_array_equal(request.inputs["images"], EXPECTED)
    assert request.options == {"metrics": ["accuracy"]}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"instances": ROWS}, "needs 'labels'"),
        ({"inputs": [V2_TENSOR]}, "needs 'labels'"),
        (
            {"instances": ROWS, "labels": [0, 1], "metrics": ["f1"], "parameters": {"metrics": "f1"}},
            "'metrics' is given both",
        ),
        (
            {"instances": ROWS, "labels": [0, 1], "top_k": 1, "parameters": {"top_k": 1}},
            "'top_k' is given both",
        ),
        ({"instances": ROWS, "labels": [0, 1], "threshold": 2}, "threshold"),
    ],
)
def test_malformed_evaluate_bodies(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        wire.decode_v2(orjson.dumps(doc), None, IMAGES, LIMITS)
