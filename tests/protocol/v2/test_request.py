"""V2 inference requests: JSON and binary inputs, requested outputs, and every error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from service.errors import InvalidInput
from service.models.card import TensorSpec
from service.protocol.tensors import Limits
from service.protocol.v2.request import InferRequest, RequestedOutput, decode_infer

DATA = Path(__file__).resolve().parents[2] / "testdata" / "protocol"
IMAGES = [TensorSpec("images", "float32", (-1, 2, 2))]
LIMITS = Limits(max_instances=4)
FLAT = [1, 2, 3, 4.5, 5, 6, 7, 8]
EXPECTED = np.array(FLAT, np.float32).reshape(2, 2, 2)


def _input(
    data: Any = FLAT, shape: list[int] | None = None, datatype: str = "FP32", **extra: Any
) -> dict[str, Any]:
    return {"name": "images", "shape": shape or [2, 2, 2], "datatype": datatype, "data": data, **extra}


def _decode(doc: dict[str, Any], binary: bytes = b"", specs: list[TensorSpec] = IMAGES) -> InferRequest:
    header = orjson.dumps(doc)
    return decode_infer(header + binary, len(header) if binary else None, specs, LIMITS)


@pytest.mark.parametrize(
    "data",
    [FLAT, EXPECTED.tolist()],
    ids=["flat", "nested"],
)
def test_json_data_may_be_flat_or_nested(data: Any) -> None:
    request = _decode({"inputs": [_input(data)]})
    assert request.inputs["images"].dtype == np.float32
    assert request.inputs["images"].tolist() == EXPECTED.tolist()
    assert request == InferRequest(None, request.inputs, {}, None, False)


def test_the_spec_example_decodes() -> None:
    specs = [TensorSpec("input0", "uint32", (2, 2)), TensorSpec("input1", "bool", (-1,))]
    body = (DATA / "v2_infer_json.json").read_bytes()
    request = decode_infer(body, None, specs, LIMITS)
    assert request.id == "42"
    assert request.inputs["input0"].dtype == np.uint32 and request.inputs["input0"].tolist() == [
        [1, 2],
        [3, 4],
    ]
    assert request.inputs["input1"].tolist() == [True, False]
    assert request.outputs == [RequestedOutput("output0", None, 0)]


def test_binary_inputs_follow_the_json_header_in_input_order() -> None:
    specs = [*IMAGES, TensorSpec("ids", "int64", (-1,)), TensorSpec("tags", "string", (-1,))]
    ids, tags = np.array([7, -1], np.int64), b"\x01\x00\x00\x00a\x00\x00\x00\x00"
    doc = {
        "inputs": [
            {"name": "ids", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": 16}},
            _input(),
            {
                "name": "tags",
                "shape": [2],
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(tags)},
            },
        ]
    }
    request = _decode(doc, ids.tobytes() + tags, specs)
    assert request.inputs["ids"].tolist() == [7, -1]
    assert request.inputs["images"].tolist() == EXPECTED.tolist()
    assert request.inputs["tags"].tolist() == [b"a", b""]


def test_request_parameters_and_requested_outputs() -> None:
    doc = {
        "id": "req-1",
        "model_name": "mnist",
        "parameters": {"binary_data_output": True, "top_k": 3, "priority": 1},
        "inputs": [_input()],
        "outputs": [
            {"name": "probabilities", "parameters": {"classification": 2}},
            {"name": "label", "parameters": {"binary_data": False}},
            {"name": "class_id"},
        ],
    }
    request = _decode(doc)
    assert request.id == "req-1" and request.binary_output is True
    assert request.parameters == {"binary_data_output": True, "top_k": 3, "priority": 1}
    assert request.outputs == [
        RequestedOutput("probabilities", None, 2),
        RequestedOutput("label", False, 0),
        RequestedOutput("class_id", None, 0),
    ]


@pytest.mark.parametrize(
    ("data", "datatype", "expected"),
    [
        ([1, 2, 3, 4, 5, 6, 7, 8], "INT32", np.arange(1, 9, dtype=np.float32)),
        ([0.5] * 8, "FP64", np.full(8, 0.5, np.float32)),
        ([1, 2, 3, 4, 5, 6, 7, 8], "UINT8", np.arange(1, 9, dtype=np.float32)),
    ],
)
def test_other_datatypes_convert_when_lossless(data: list[Any], datatype: str, expected: np.ndarray) -> None:
    request = _decode({"inputs": [_input(data, datatype=datatype)]})
    assert request.inputs["images"].dtype == np.float32
    assert request.inputs["images"].reshape(-1).tolist() == expected.tolist()


def test_nonfinite_values_need_the_limit() -> None:
    body = b'{"inputs": [{"name": "images", "shape": [1, 2, 2], "datatype": "FP32", "data": [1, NaN, 3, 4]}]}'
    assert np.isnan(decode_infer(body, None, IMAGES, Limits(allow_nonfinite=True)).inputs["images"][0, 0, 1])
    with pytest.raises(InvalidInput, match="must hold finite numbers; got NaN"):
        decode_infer(body, None, IMAGES, LIMITS)
    binary = np.array([1, np.inf, 3, 4], np.float32).tobytes()
    with pytest.raises(InvalidInput, match="its binary data has NaN or Infinity"):
        _decode({"inputs": [_binary_input(16)]}, binary)


def _binary_input(size: int) -> dict[str, Any]:
    return {
        "name": "images",
        "shape": [1, 2, 2],
        "datatype": "FP32",
        "parameters": {"binary_data_size": size},
    }


ERRORS: list[tuple[Any, bytes, str]] = [
    ([1], b"", "The request body must be a JSON object; got a list."),
    ({"inputs": [_input()], "input": []}, b"", "The request body has unknown field 'input'"),
    ({"inputs": []}, b"", "An inference request needs 'inputs', a non-empty list of input tensors."),
    ({}, b"", "An inference request needs 'inputs'"),
    ({"id": 42, "inputs": [_input()]}, b"", "The request 'id' must be a string; got the number 42."),
    (
        {"inputs": [_input()], "parameters": {"binary_data_output": 1}},
        b"",
        "'binary_data_output' must be true or false",
    ),
    (
        {"inputs": [_input()], "parameters": {"top_k": -1}},
        b"",
        "Parameter 'top_k' must be a positive integer",
    ),
    (
        {"inputs": [_input()], "parameters": []},
        b"",
        "The request's 'parameters' must be an object; got a list.",
    ),
    ({"inputs": [[1]]}, b"", "inputs[0] must be a JSON object; got a list."),
    ({"inputs": [_input() | {"extra": 1}]}, b"", "inputs[0] has unknown field 'extra'"),
    ({"inputs": [_input() | {"name": 3}]}, b"", "Every input needs a string 'name'; got the number 3."),
    (
        {"inputs": [_input() | {"name": "image"}]},
        b"",
        "Unknown input 'image'; the model's inputs are 'images'.",
    ),
    ({"inputs": [_input(), _input()]}, b"", "Input 'images' is given twice."),
    ({"inputs": [_input(shape=[2, 4])]}, b"", "Input 'images' must have shape [-1, 2, 2]; got [2, 4]."),
    (
        {"inputs": [_input(shape=[0, 2, 2], data=[])]},
        b"",
        "Input 'images' must hold at least one instance; got none.",
    ),
    (
        {"inputs": [_input(shape=[5, 2, 2], data=[0] * 20)]},
        b"",
        "Input 'images' holds 5 instances; at most 4",
    ),
    (
        {"inputs": [_input() | {"shape": [2, 2, -1]}]},
        b"",
        "'shape' must be a list of non-negative integers; got [2, 2, -1].",
    ),
    ({"inputs": [_input() | {"shape": "2,2,2"}]}, b"", "'shape' must be a list of non-negative integers"),
    ({"inputs": [_input(FLAT[:7])]}, b"", "Input 'images' has 7 values in 'data'; shape [2, 2, 2] needs 8."),
    ({"inputs": [_input([*FLAT, 9])]}, b"", "has 9 values in 'data'; shape [2, 2, 2] needs 8."),
    (
        {"inputs": [_input([[1, 2], [3, 4]])]},
        b"",
        "Input 'images' 'data' must have shape [2, 2, 2]; got [2, 2].",
    ),
    ({"inputs": [_input([[[1, 2], [3, 4]], [[5, 6], [7]]])]}, b"", "Input 'images' 'data' is ragged"),
    (
        {"inputs": [_input([*FLAT[:7], "8"])]},
        b"",
        "Input 'images' 'data' must hold numbers; got the string '8' at [7].",
    ),
    ({"inputs": [_input([*FLAT[:7], None])]}, b"", "got null at [7]"),
    ({"inputs": [_input([*FLAT[:7], True])]}, b"", "got the boolean true at [7]"),
    ({"inputs": [_input(data=5)]}, b"", "Input 'images' 'data' must be a list; got the number 5."),
    ({"inputs": [_input(datatype="FP8")]}, b"", "Unknown datatype 'FP8'; expected one of BOOL, UINT8"),
    (
        {"inputs": [_input(datatype="INT64")]},
        b"",
        "Input 'images' 'data' must hold integers; got the number 4.5 at [3].",
    ),
    (
        {"inputs": [_input([1] * 8, datatype="BOOL")]},
        b"",
        "'data' must hold booleans; got the number 1 at [0].",
    ),
    (
        {"inputs": [_input(["a"] * 8, datatype="BYTES")]},
        b"",
        "Input 'images' is sent as BYTES but the model takes FP32",
    ),
    (
        {"inputs": [_input([2**25] * 8, datatype="INT64")]},
        b"",
        "integer 33554432 at [0, 0, 0] cannot be represented exactly",
    ),
    (
        {"inputs": [{k: v for k, v in _input().items() if k != "data"}]},
        b"",
        "has neither 'data' nor a binary_data_size",
    ),
    (
        {"inputs": [_input() | {"parameters": {"binary_data_size": 32}}]},
        bytes(32),
        "has both 'data' and a binary_data_size",
    ),
    (
        {"inputs": [_binary_input(16)]},
        bytes(12),
        "Input 'images' declares 16 bytes of binary data, but only 12 remain",
    ),
    (
        {"inputs": [_binary_input(16)]},
        bytes(20),
        "The request body has 4 bytes after the binary data of its inputs",
    ),
    (
        {"inputs": [_binary_input(12)]},
        bytes(12),
        "Input 'images' has 12 bytes of binary data; 4 FP32 elements need 16.",
    ),
    (
        {"inputs": [_binary_input(-4)]},
        bytes(4),
        "binary_data_size must be a non-negative integer; got the number -4.",
    ),
    (
        {"inputs": [_binary_input(16) | {"parameters": {"shared_memory_region": "r"}}]},
        b"",
        "uses shared memory",
    ),
    (
        {"inputs": [_input()], "outputs": {"name": "y"}},
        b"",
        "'outputs' must be a list of requested outputs; got an object.",
    ),
    (
        {"inputs": [_input()], "outputs": [{"name": "y"}, {"name": "y"}]},
        b"",
        "'outputs' names the same output twice.",
    ),
    ({"inputs": [_input()], "outputs": [{"nam": "y"}]}, b"", "outputs[0] has unknown field 'nam'"),
    ({"inputs": [_input()], "outputs": [{}]}, b"", "Every requested output needs a string 'name'; got null."),
    (
        {"inputs": [_input()], "outputs": [{"name": "y", "parameters": {"classification": -1}}]},
        b"",
        "'classification' must be a non-negative integer",
    ),
    (
        {"inputs": [_input()], "outputs": [{"name": "y", "parameters": {"binary_data": "yes"}}]},
        b"",
        "'binary_data' must be true or false",
    ),
    (
        {"inputs": [_input()], "outputs": [{"name": "y", "parameters": {"shared_memory_region": "r"}}]},
        b"",
        "asks for shared memory",
    ),
]


@pytest.mark.parametrize(("doc", "binary", "message"), ERRORS)
def test_malformed_requests_are_refused(doc: Any, binary: bytes, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _decode(doc, binary)
    assert message in caught.value.message


def test_binary_data_without_a_header_length_is_refused() -> None:
    header = orjson.dumps({"inputs": [_binary_input(16)]})
    with pytest.raises(InvalidInput, match="no Inference-Header-Content-Length header"):
        decode_infer(header, None, IMAGES, LIMITS)
    with pytest.raises(InvalidInput, match="not valid JSON: unexpected content after document"):
        decode_infer(header + bytes(16), None, IMAGES, LIMITS)


def test_a_header_length_beyond_the_body_is_refused() -> None:
    with pytest.raises(InvalidInput, match="says 100 bytes, but the request body holds"):
        decode_infer(b"{}", 100, IMAGES, LIMITS)


def test_missing_inputs_are_named() -> None:
    specs = [*IMAGES, TensorSpec("ids", "int64", (-1,))]
    with pytest.raises(
        InvalidInput, match=r"Input 'ids' is missing; the model's inputs are 'images', 'ids'\."
    ):
        _decode({"inputs": [_input()]}, specs=specs)
