"""Classify/Regress over gRPC: tf.Example inputs decode as REST's examples do; results fill TF Serving's messages."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from service.errors import InvalidInput
from service.grpc.examples_codec import decode_input, fill_classifications, fill_regressions
from service.grpc.generated import classification_pb2, input_pb2, regression_pb2
from service.models.card import TensorSpec
from service.models.runtime import tf
from service.protocol.tensors import Limits
from service.protocol.tfserving.examples import decode_examples

LIMITS = Limits()
SPECS = [
    TensorSpec("x", "float32", (-1, 2, 2)),
    TensorSpec("k", "int64", (-1,)),
    TensorSpec("s", "string", (-1,)),
]


def feature(values: list[Any]) -> Any:
    if values and isinstance(values[0], bytes):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if values and isinstance(values[0], float):
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))
    if values:
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Feature()


def example(**features: list[Any]) -> Any:
    return tf.train.Example(features=tf.train.Features(feature={n: feature(v) for n, v in features.items()}))


def example_list(*examples: Any, context: Any = None) -> Any:
    if context is None:
        return input_pb2.Input(example_list=input_pb2.ExampleList(examples=examples))
    listed = input_pb2.ExampleListWithContext(examples=examples, context=context)
    return input_pb2.Input(example_list_with_context=listed)


def rest(body: dict[str, Any]) -> dict[str, np.ndarray]:
    return decode_examples(json.dumps(body).encode(), SPECS, LIMITS)[0]


def test_examples_decode_to_what_rest_decodes() -> None:
    first = example(x=[0.5, 1.0, 1.5, 2.0], k=[7], s=[b"\xffraw"])
    second = example(x=[1, 2, 3, 4], k=[-1], s=[b"text"])  # ints in an int64_list feed a float input
    arrays = decode_input(example_list(first, second), SPECS, LIMITS)
    expected = rest(
        {
            "examples": [
                {"x": [0.5, 1.0, 1.5, 2.0], "k": 7, "s": {"b64": "/3Jhdw=="}},
                {"x": [1, 2, 3, 4], "k": -1, "s": "text"},
            ]
        }
    )
    assert arrays.keys() == expected.keys()
    for name, array in arrays.items():
        assert array.dtype == expected[name].dtype and array.shape == expected[name].shape
        assert array.tolist() == expected[name].tolist()


def test_context_features_join_every_example() -> None:
    listed = example_list(example(x=[0.0] * 4, k=[1]), example(x=[1.0] * 4, k=[2]), context=example(s=[b"c"]))
    arrays = decode_input(listed, SPECS, LIMITS)
    assert arrays["s"].tolist() == [b"c", b"c"]
    assert arrays["k"].tolist() == [1, 2]


def error(request_input: Any) -> str:
    with pytest.raises(InvalidInput) as caught:
        decode_input(request_input, SPECS, LIMITS)
    return caught.value.message


def rest_error(body: dict[str, Any]) -> str:
    with pytest.raises(InvalidInput) as caught:
        decode_examples(json.dumps(body).encode(), SPECS, LIMITS)
    return caught.value.message


def test_errors_say_what_rest_says() -> None:
    good = {"x": [0.0] * 4, "k": [1], "s": [b"a"]}
    plain = {"x": [0.0] * 4, "k": [1], "s": "a"}
    assert error(example_list(example(x=[0.0] * 3, k=[1], s=[b"a"]))) == rest_error(
        {"examples": [{**plain, "x": [0.0] * 3}]}
    )
    assert error(example_list(example(**good, y=[1]))) == rest_error({"examples": [{**plain, "y": [1]}]})
    assert error(example_list(example(x=[0.0] * 4, s=[b"a"]))) == rest_error(
        {"examples": [{"x": [0.0] * 4, "s": "a"}]}
    )
    assert error(example_list(example(**{**good, "k": [1.5]}))) == rest_error(
        {"examples": [{**plain, "k": [1.5]}]}
    )
    assert error(example_list(example(**good), context=example(k=[2]))) == rest_error(
        {"examples": [plain], "context": {"k": [2]}}
    )
    assert error(example_list()) == rest_error({"examples": []})
    assert error(example_list(example(**{**good, "k": []}))) == (
        "Feature 'k' has 0 values in example 0; input shape [-1] needs 1."
    )
    assert error(input_pb2.Input()) == (
        "A classify or regress request needs 'input' holding an example_list or an example_list_with_context."
    )


def test_nan_follows_allow_nonfinite() -> None:
    nan = example_list(example(x=[0.0, float("nan"), 0.0, 0.0], k=[1], s=[b"a"]))
    assert error(nan) == "Feature 'x' must hold finite numbers; got NaN at [0, 1]."
    assert np.isnan(decode_input(nan, SPECS, Limits(allow_nonfinite=True))["x"][0, 0, 1])


def test_classifications_list_every_class_in_order() -> None:
    result = classification_pb2.ClassificationResult()
    fill_classifications(result, np.array([[0.25, 0.75], [1.0, 0.0]], np.float32), ["no", "yes"])
    assert [[(c.label, c.score) for c in row.classes] for row in result.classifications] == [
        [("no", 0.25), ("yes", 0.75)],
        [("no", 1.0), ("yes", 0.0)],
    ]
    unlabelled = classification_pb2.ClassificationResult()
    fill_classifications(unlabelled, np.array([[0.5, 0.5]]), None)
    assert [c.label for c in unlabelled.classifications[0].classes] == ["", ""]
    with pytest.raises(ValueError, match="3 class labels for 2 scores"):
        fill_classifications(unlabelled, np.array([[0.5, 0.5]]), ["a", "b", "c"])


@pytest.mark.parametrize("values", [np.array([1.5, -2.0]), np.array([[1.5], [-2.0]])])
def test_regressions_take_one_value_per_example(values: np.ndarray) -> None:
    result = regression_pb2.RegressionResult()
    fill_regressions(result, values)
    assert [r.value for r in result.regressions] == [1.5, -2.0]
