"""TF Serving REST predict: every request form to arrays, every malformed one to a clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from service.errors import InvalidInput
from service.models.card import TensorSpec
from service.protocol.tensors import Limits
from service.protocol.tfserving.predict import PredictRequest, decode_predict, encode_predict

DATA = Path(__file__).resolve().parents[2] / "testdata" / "protocol"
IMAGES = [TensorSpec("images", "float32", (-1, 2, 2))]
MULTI = [
    TensorSpec("tag", "string", (-1,)),
    TensorSpec("signal", "float32", (-1, 5)),
    TensorSpec("sensor", "int64", (-1, 2, 2)),
]
TEXT = [TensorSpec("text", "string", (-1,))]
LIMITS = Limits(max_instances=8)
IMG = [[[1, 2], [3, 4.5]], [[5, 6], [7, 8]]]
IMG_ARRAY = np.array(IMG, np.float32)
MULTI_ARRAYS = {
    "tag": np.array([b"foo", b"bar"], dtype=object),
    "signal": np.array([[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]], np.float32),
    "sensor": np.array([[[1, 2], [3, 4]], [[4, 5], [6, 8]]], np.int64),
}


def _decode(doc: Any, specs: list[TensorSpec] = IMAGES, limits: Limits = LIMITS) -> PredictRequest:
    return decode_predict(doc if isinstance(doc, bytes) else orjson.dumps(doc), specs, limits)


def _assert_arrays(actual: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    assert actual.keys() == expected.keys()
    for name, array in expected.items():
        assert actual[name].dtype == array.dtype, name
        assert actual[name].shape == array.shape, name
        assert actual[name].tolist() == array.tolist(), name


@pytest.mark.parametrize(
    ("doc", "specs", "expected", "columnar"),
    [
        ({"instances": IMG}, IMAGES, {"images": IMG_ARRAY}, False),
        ({"instances": [{"images": IMG[0]}, {"images": IMG[1]}]}, IMAGES, {"images": IMG_ARRAY}, False),
        ({"inputs": IMG}, IMAGES, {"images": IMG_ARRAY}, True),
        ({"inputs": {"images": IMG}}, IMAGES, {"images": IMG_ARRAY}, True),
        ((DATA / "tfs_predict_row_named.json").read_bytes(), MULTI, MULTI_ARRAYS, False),
        ((DATA / "tfs_predict_columnar_named.json").read_bytes(), MULTI, MULTI_ARRAYS, True),
        (
            {"instances": [{"b64": "aGk="}, "there"]},
            TEXT,
            {"text": np.array([b"hi", b"there"], dtype=object)},
            False,
        ),
        ({"inputs": [{"b64": "aGk="}]}, TEXT, {"text": np.array([b"hi"], dtype=object)}, True),
        ({"instances": [{"text": {"b64": "aGk="}}]}, TEXT, {"text": np.array([b"hi"], dtype=object)}, False),
        ({"instances": [1, 2]}, [TensorSpec("x", "int32", (-1,))], {"x": np.array([1, 2], np.int32)}, False),
        (
            {"instances": [{"x": 1}, {"x": 2}]},
            [TensorSpec("x", "uint8", (-1,))],
            {"x": np.array([1, 2], np.uint8)},
            False,
        ),
        (
            {"instances": [[True], [False]]},
            [TensorSpec("m", "bool", (-1, 1))],
            {"m": np.array([[True], [False]])},
            False,
        ),
        (
            {"inputs": [[1, 2, 3], [4, 5, 6]]},
            [TensorSpec("v", "float64", (-1, -1))],
            {"v": np.arange(1, 7.0).reshape(2, 3)},
            True,
        ),
    ],
)
def test_valid_requests_decode_to_the_expected_arrays(
    doc: Any, specs: list[TensorSpec], expected: dict[str, np.ndarray], columnar: bool
) -> None:
    request = _decode(doc, specs)
    _assert_arrays(request.inputs, expected)
    assert request.columnar is columnar
    assert request.signature_name is None and request.parameters == {}


def test_signature_and_extension_parameters_are_read() -> None:
    doc = {
        "signature_name": "serving_default",
        "instances": IMG,
        "top_k": 3,
        "parameters": {"threshold": 0.5},
    }
    request = _decode(doc)
    assert request.signature_name == "serving_default"
    assert request.parameters == {"threshold": 0.5, "top_k": 3}


def test_nonfinite_tokens_are_accepted_only_when_allowed() -> None:
    body = b'{"instances": [[[1, 2], [3, NaN]], [[Infinity, 6], [7, -Infinity]]]}'
    request = _decode(body, limits=Limits(allow_nonfinite=True))
    assert np.isnan(request.inputs["images"][0, 1, 1]) and np.isneginf(request.inputs["images"][1, 1, 1])
    with pytest.raises(
        InvalidInput, match=r"Input 'images' must hold finite numbers; got NaN at \[0, 1, 1\]"
    ):
        _decode(body)


IMAGE_ERRORS = [
    (b'{"instances": [1, 2', "The request body is not valid JSON"),
    (b"", "The request body is empty"),
    (b"[1, 2]", "The request body must be a JSON object; got a list."),
    (b'"instances"', "must be a JSON object; got the string 'instances'."),
    (
        {"instances": IMG, "inputs": IMG},
        "needs exactly one of 'instances' (row format) or 'inputs' (columnar format); got both.",
    ),
    ({"signature_name": "x"}, "got neither."),
    ({"instances": IMG, "extra": 1}, "Unknown field(s) 'extra' in the request body"),
    ({"instances": IMG, "signature_name": 3}, "'signature_name' must be a string; got the number 3."),
    ({"instances": {"images": IMG}}, "'instances' must be a list; got an object."),
    ({"instances": []}, "'instances' must hold at least one instance; got none."),
    ({"instances": [IMG[0]] * 9}, "'instances' holds 9 instances; at most 8 are allowed per request."),
    ({"inputs": [IMG[0]] * 9}, "Input 'images' holds 9 instances; at most 8"),
    ({"inputs": []}, "Input 'images' must hold at least one instance"),
    ({"instances": [[1, 2, 3, 4]]}, "Input 'images' must have shape [-1, 2, 2]; got [1, 4]."),
    ({"instances": [[[1, 2]]]}, "Input 'images' must have shape [-1, 2, 2]; got [1, 1, 2]."),
    (
        {"instances": [[[1, 2], [3, 4]], [[1, 2], [3]]]},
        "Input 'images' is ragged: the list at [1, 1] has 1 items",
    ),
    ({"instances": [[[1, 2], [3, 4]], [[1, 2]]]}, "Input 'images' is ragged: the list at [1] has 1 items"),
    ({"instances": [[[1, 2], [[3], 4]]]}, "mixes nesting depths: a list at [0, 1, 0]"),
    ({"instances": [[[1, 2], [[3, 4]]]]}, "Input 'images' is ragged: the list at [0, 1] has 1 items"),
    ({"instances": [[[1, 2], 3]]}, "mixes nesting depths: the number 3 at [0, 1]"),
    (
        {"instances": [[[1, 2], [3, "4"]]]},
        "Input 'images' must hold numbers; got the string '4' at [0, 1, 1].",
    ),
    ({"instances": [[[1, 2], [3, True]]]}, "got the boolean true at [0, 1, 1]"),
    ({"instances": [[[1, 2], [3, None]]]}, "got null at [0, 1, 1]"),
    ({"instances": [[[1, 2], [3, {"b64": "AA=="}]]]}, "base64 is only for string inputs"),
    ({"instances": [[[1, 2], [3, 1e39]]]}, "value 1e+39 at [0, 1, 1] is out of range for float32"),
    ({"instances": [[[1, 2], [3, 16777217]]]}, "integer 16777217 at [0, 1, 1] cannot be represented exactly"),
    (
        {"instances": [{"images": IMG[0]}, IMG[1]]},
        "Instance 1 must be an object keyed by input name, like the first; got a list.",
    ),
    (
        {"instances": [{"images": IMG[0], "other": 1}]},
        "Unknown input 'other' in instance 0; the model's inputs are 'images'.",
    ),
    ({"instances": [{"image": IMG[0]}]}, "Unknown input 'image' in instance 0"),
    ({"instances": [{}]}, "Input 'images' is missing in instance 0"),
    ({"inputs": {"image": IMG}}, "Unknown input 'image' in 'inputs'; the model's inputs are 'images'."),
    ({"inputs": 3}, "Input 'images' must have shape [-1, 2, 2]; got []."),
    ({"instances": IMG, "top_k": 0}, "Parameter 'top_k' must be a positive integer"),
    ({"instances": IMG, "threshold": 2}, "Parameter 'threshold' must be a number from 0 to 1"),
    (
        {"instances": IMG, "top_k": 2, "parameters": {"top_k": 3}},
        "'top_k' is given both at the top level and in 'parameters'",
    ),
    ({"instances": IMG, "parameters": [1]}, "'parameters' must be an object; got a list."),
]


@pytest.mark.parametrize(("doc", "message"), IMAGE_ERRORS)
def test_malformed_requests_are_refused_with_a_clear_message(doc: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _decode(doc)
    assert message in caught.value.message


MULTI_ERRORS = [
    (
        {"instances": ["foo", "bar"]},
        "'instances' holds plain values, but the model has 3 inputs ('tag', 'signal', 'sensor')",
    ),
    ({"inputs": ["foo"]}, "'inputs' holds a plain value, but the model has 3 inputs"),
    (
        {"inputs": {"tag": ["a"], "signal": [[1, 2, 3, 4, 5]] * 2, "sensor": [[[1, 2], [3, 4]]]}},
        "All inputs must have the same batch size; 'tag' has 1, 'signal' has 2, 'sensor' has 1.",
    ),
    ({"inputs": {"tag": ["a"], "signal": [[1, 2, 3, 4, 5]]}}, "Input 'sensor' is missing in 'inputs'"),
    (
        {"instances": [{"tag": "a", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4.5]]}]},
        "Input 'sensor' must hold integers; got the number 4.5 at [0, 1, 1].",
    ),
    (
        {"instances": [{"tag": 1, "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]}]},
        "Input 'tag' must hold strings; got the number 1 at [0].",
    ),
    (
        {"instances": [{"tag": {"b64": "!!"}, "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]}]},
        "Input 'tag' has a 'b64' value that is not valid base64 at [0].",
    ),
]


@pytest.mark.parametrize(("doc", "message"), MULTI_ERRORS)
def test_multi_input_errors(doc: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _decode(doc, MULTI)
    assert message in caught.value.message


PROBS = np.array([[0.1, 0.9], [0.75, 0.25]], np.float32)
LABELS = np.array(["b", "a"], dtype=object)


@pytest.mark.parametrize(
    ("outputs", "columnar", "expected"),
    [
        ({"probabilities": PROBS}, False, {"predictions": [[0.1, 0.9], [0.75, 0.25]]}),
        ({"probabilities": PROBS}, True, {"outputs": [[0.1, 0.9], [0.75, 0.25]]}),
        (
            {"probabilities": PROBS, "label": LABELS},
            False,
            {
                "predictions": [
                    {"probabilities": [0.1, 0.9], "label": "b"},
                    {"probabilities": [0.75, 0.25], "label": "a"},
                ]
            },
        ),
        (
            {"probabilities": PROBS, "label": LABELS},
            True,
            {"outputs": {"probabilities": [[0.1, 0.9], [0.75, 0.25]], "label": ["b", "a"]}},
        ),
        ({"class_id": np.array([1, 0], np.int64)}, False, {"predictions": [1, 0]}),
        ({"raw_bytes": np.array([b"\x00\xff"], dtype=object)}, True, {"outputs": [{"b64": "AP8="}]}),
        (
            {"word": np.array([b"\xff", b"ok"], dtype=object)},
            False,
            {"predictions": [{"b64": "/w=="}, {"b64": "b2s="}]},
        ),
        ({"word": np.array(["é"])}, True, {"outputs": ["é"]}),
        ({"flag": np.array([[True]])}, False, {"predictions": [[True]]}),
    ],
)
def test_encode_predict_follows_tf_serving_shapes(
    outputs: dict[str, np.ndarray], columnar: bool, expected: Any
) -> None:
    assert orjson.loads(encode_predict(outputs, columnar)) == expected


def test_encode_predict_writes_nonfinite_tokens() -> None:
    body = encode_predict({"y": np.array([np.nan, np.inf], np.float32)}, False)
    assert body == b'{"predictions":[NaN,Infinity]}'


def test_encode_predict_writes_float32_in_its_short_form() -> None:
    assert encode_predict({"y": np.array([0.1], np.float32)}, False) == b'{"predictions":[0.1]}'


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        (
            {"a": np.zeros(2), "b": np.zeros(3)},
            "The outputs have different batch sizes ('a' has 2, 'b' has 3)",
        ),
        ({"a": np.zeros(2), "b": np.float32(1)}, "Output 'b' is a scalar"),
    ],
)
def test_row_format_needs_one_batch_size(outputs: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        encode_predict(outputs, False)
    assert message in caught.value.message
    encode_predict(outputs, True)  # the columnar format has no such constraint


def test_encode_predict_needs_an_output() -> None:
    with pytest.raises(ValueError):
        encode_predict({}, False)


def test_encode_predict_accepts_non_contiguous_arrays() -> None:
    transposed = np.arange(6, dtype=np.float32).reshape(3, 2).T
    assert orjson.loads(encode_predict({"y": transposed}, True)) == {"outputs": [[0, 2, 4], [1, 3, 5]]}
