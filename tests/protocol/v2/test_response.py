"""service.protocol.v2.response: infer responses (JSON and binary), classification, metadata documents."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest

from service.errors import InvalidInput
from service.models.card import TensorSpec
from service.protocol.v2.request import InferRequest, RequestedOutput
from service.protocol.v2.response import (
    EXTENSIONS,
    PLATFORM,
    check_requested_outputs,
    classify,
    encode_infer,
    model_metadata,
    server_metadata,
)

PROBS = np.array([[0.25, 0.75], [0.5, 0.5]], np.float32)
OUTPUTS = {
    "probabilities": PROBS,
    "label": np.array(["dog", "cat"], dtype=object),
    "class_id": np.array([1, 0], np.int64),
}


def _request(
    outputs: list[RequestedOutput] | None = None, binary: bool = False, request_id: str | None = None
) -> InferRequest:
    return InferRequest(request_id, {}, {}, outputs, binary)


def _encode(request: InferRequest, outputs: dict[str, np.ndarray] = OUTPUTS) -> tuple[bytes, dict[str, str]]:
    return encode_infer("mnist", "3", outputs, request, ["cat", "dog"], "probabilities")


def test_json_response_holds_every_output_flat() -> None:
    body, headers = _encode(_request())
    assert headers == {"Content-Type": "application/json"}
    assert orjson.loads(body) == {
        "model_name": "mnist",
        "model_version": "3",
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [2, 2], "data": [0.25, 0.75, 0.5, 0.5]},
            {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["dog", "cat"]},
            {"name": "class_id", "datatype": "INT64", "shape": [2], "data": [1, 0]},
        ],
    }


def test_only_requested_outputs_in_the_requested_order_and_the_id_echoed() -> None:
    body, _ = _encode(
        _request([RequestedOutput("class_id"), RequestedOutput("probabilities")], request_id="42")
    )
    doc = orjson.loads(body)
    assert doc["id"] == "42"
    assert [o["name"] for o in doc["outputs"]] == ["class_id", "probabilities"]


def test_binary_outputs_follow_the_json_header() -> None:
    request = _request(
        [
            RequestedOutput("probabilities", True),
            RequestedOutput("label", True),
            RequestedOutput("class_id", False),
        ]
    )
    body, headers = _encode(request)
    assert headers["Content-Type"] == "application/octet-stream"
    length = int(headers["Inference-Header-Content-Length"])
    doc = orjson.loads(body[:length])
    labels = struct.pack("<I", 3) + b"dog" + struct.pack("<I", 3) + b"cat"
    assert doc["outputs"][0] == {
        "name": "probabilities",
        "datatype": "FP32",
        "shape": [2, 2],
        "parameters": {"binary_data_size": 16},
    }
    assert doc["outputs"][1]["parameters"] == {"binary_data_size": len(labels)}
    assert doc["outputs"][2]["data"] == [1, 0]
    assert body[length:] == PROBS.tobytes() + labels


@pytest.mark.parametrize(
    ("request_binary", "output_binary", "binary"),
    [(True, None, True), (True, False, False), (False, True, True), (False, None, False)],
)
def test_an_outputs_binary_data_overrides_binary_data_output(
    request_binary: bool, output_binary: bool | None, binary: bool
) -> None:
    _, headers = _encode(_request([RequestedOutput("class_id", output_binary)], request_binary))
    assert ("Inference-Header-Content-Length" in headers) is binary


def test_classification_replaces_the_output_with_labelled_strings() -> None:
    body, _ = _encode(_request([RequestedOutput("probabilities", False, 1)]))
    (output,) = orjson.loads(body)["outputs"]
    assert output == {
        "name": "probabilities",
        "datatype": "BYTES",
        "shape": [2, 1],
        "data": ["0.750000:1:dog", "0.500000:0:cat"],
    }


def test_classification_of_another_output_has_no_labels() -> None:
    body, _ = _encode(_request([RequestedOutput("class_id", False, 1)]))
    assert orjson.loads(body)["outputs"][0]["data"] == ["1:0", "0:0"]


def test_nonfinite_json_values_are_written_as_tokens() -> None:
    body, _ = _encode(_request(), {"y": np.array([np.nan, 1.0], np.float32)})
    assert b'"data":[NaN,1.0]' in body


def test_unknown_requested_outputs_are_refused() -> None:
    with pytest.raises(
        InvalidInput, match="Unknown output 'probs' requested; the model's outputs are 'probabilities'"
    ):
        _encode(_request([RequestedOutput("probs")]))
    check_requested_outputs(_request([RequestedOutput("label")]), OUTPUTS)


def test_bytes_that_are_not_text_need_binary_data() -> None:
    outputs: dict[str, Any] = {"raw": np.array([b"\xff"], dtype=object)}
    with pytest.raises(InvalidInput, match="Output 'raw' holds bytes that are not UTF-8 text"):
        _encode(_request(), outputs)
    body, _headers = _encode(_request(binary=True), outputs)
    assert body.endswith(b"\x01\x00\x00\x00\xff")


@pytest.mark.parametrize("binary", [True, False])
def test_non_contiguous_outputs_are_written_row_major(binary: bool) -> None:
    transposed = np.arange(6, dtype=np.int32).reshape(3, 2).T
    body, _ = _encode(_request(binary=binary), {"y": transposed})
    if binary:
        assert body.endswith(np.array([0, 2, 4, 1, 3, 5], "<i4").tobytes())
    else:
        assert orjson.loads(body)["outputs"][0]["data"] == [0, 2, 4, 1, 3, 5]


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


def test_server_metadata() -> None:
    assert server_metadata("model-serving", "0.1.0", EXTENSIONS) == {
        "name": "model-serving",
        "version": "0.1.0",
        "extensions": ["binary_tensor_data", "classification"],
    }


def test_model_metadata_uses_v2_datatypes_and_minus_one_for_any_size() -> None:
    doc = model_metadata(
        "mnist",
        ["1", "2"],
        PLATFORM,
        [TensorSpec("images", "float32", (-1, 28, 28))],
        [TensorSpec("label", "string", (-1,)), TensorSpec("class_id", "int64", (-1,))],
    )
    assert doc == {
        "name": "mnist",
        "versions": ["1", "2"],
        "platform": "tensorflow_savedmodel",
        "inputs": [{"name": "images", "datatype": "FP32", "shape": [-1, 28, 28]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "class_id", "datatype": "INT64", "shape": [-1]},
        ],
    }
