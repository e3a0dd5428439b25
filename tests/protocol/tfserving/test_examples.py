"""TF Serving classify/regress: examples to inputs, and results to JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from service.errors import InvalidInput
from service.models.card import TensorSpec
from service.protocol.tensors import Limits
from service.protocol.tfserving.examples import decode_examples, encode_classify, encode_regress

DATA = Path(__file__).resolve().parents[2] / "testdata" / "protocol"
IMAGES = [TensorSpec("images", "float32", (-1, 2, 2))]
LIMITS = Limits(max_instances=4)


def _decode(
    doc: Any, specs: list[TensorSpec] = IMAGES
) -> tuple[dict[str, np.ndarray], str | None, dict[str, Any]]:
    return decode_examples(doc if isinstance(doc, bytes) else orjson.dumps(doc), specs, LIMITS)


def test_flat_features_are_reshaped_to_the_input_shape() -> None:
    inputs, signature, parameters = _decode(
        {"examples": [{"images": [1, 2, 3, 4]}, {"images": [5, 6, 7, 8.5]}]}
    )
    assert inputs["images"].dtype == np.float32
    assert inputs["images"].tolist() == [[[1, 2], [3, 4]], [[5, 6], [7, 8.5]]]
    assert signature is None and parameters == {}


def test_context_features_join_every_example() -> None:
    specs = [TensorSpec("x", "float32", (-1, 2)), TensorSpec("k", "int64", (-1,))]
    doc = {"signature_name": "s", "context": {"k": 7}, "examples": [{"x": [1, 2]}, {"x": [3, 4]}], "top_k": 2}
    inputs, signature, parameters = _decode(doc, specs)
    assert inputs["x"].tolist() == [[1, 2], [3, 4]] and inputs["k"].tolist() == [7, 7]
    assert inputs["k"].dtype == np.int64
    assert signature == "s" and parameters == {"top_k": 2}


def test_tf_serving_documented_b64_example() -> None:
    specs = [TensorSpec("image", "string", (-1,)), TensorSpec("caption", "string", (-1,))]
    inputs, signature, _ = _decode((DATA / "tfs_classify_b64.json").read_bytes(), specs)
    assert inputs["image"].tolist() == [b"image bytes", b"awesome image bytes"]
    assert inputs["caption"].tolist() == [b"seaside", b"mountains"]
    assert signature == "classify_objects"


def test_one_unknown_size_is_solved_from_the_lengths() -> None:
    inputs, _, _ = _decode(
        {"examples": [{"v": [1, 2, 3, 4]}, {"v": [5, 6, 7, 8]}]}, [TensorSpec("v", "int32", (-1, 2, -1))]
    )
    assert inputs["v"].shape == (2, 2, 2)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"examples": []}, "'examples' must hold at least one instance; got none."),
        ({"examples": [{"images": [1, 2, 3, 4]}] * 5}, "'examples' holds 5 instances; at most 4"),
        ({"instances": [[1]]}, "Unknown field(s) 'instances' in the request body"),
        ({}, "A classify or regress request needs 'examples', a list of objects; got null."),
        ({"examples": [[1, 2, 3, 4]]}, "Example 0 must be an object of features; got a list."),
        (
            {"examples": [{"images": [1, 2, 3]}]},
            "Feature 'images' has 3 values in example 0; input shape [-1, 2, 2] needs 4.",
        ),
        ({"examples": [{"images": [1, 2, 3, 4]}, {"images": [1, 2, 3, 4, 5]}]}, "has 5 values in example 1"),
        ({"examples": [{"images": [[1, 2], [3, 4]]}]}, "Feature 'images' has 2 values in example 0"),
        (
            {"examples": [{"images": [1, 2, 3, "4"]}]},
            "Feature 'images' must hold numbers; got the string '4' at [0, 3].",
        ),
        (
            {"examples": [{"images": [1, 2, 3, 4], "other": 1}]},
            "Unknown input 'other' among the features of example 0",
        ),
        ({"examples": [{}]}, "Input 'images' is missing among the features of example 0"),
        (
            {"context": {"images": [1, 2, 3, 4]}, "examples": [{"images": [1, 2, 3, 4]}]},
            "Feature 'images' is in both 'context' and example 0",
        ),
        (
            {"context": [1], "examples": [{"images": [1, 2, 3, 4]}]},
            "'context' must be an object of features; got a list.",
        ),
        (
            {"examples": [{"images": [1, 2, 3, 4]}], "threshold": -1},
            "Parameter 'threshold' must be a number from 0 to 1",
        ),
    ],
)
def test_malformed_examples_are_refused(doc: Any, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        _decode(doc)
    assert message in caught.value.message


def test_several_unknown_sizes_cannot_be_read_from_a_flat_list() -> None:
    with pytest.raises(InvalidInput, match="has several unknown sizes"):
        _decode({"examples": [{"v": [1, 2]}]}, [TensorSpec("v", "float32", (-1, -1, -1))])


def test_encode_classify_lists_every_class_with_its_label() -> None:
    body = encode_classify(np.array([[0.25, 0.75], [0.1, 0.9]], np.float32), ["cat", "dog"])
    assert orjson.loads(body) == {"results": [[["cat", 0.25], ["dog", 0.75]], [["cat", 0.1], ["dog", 0.9]]]}


@pytest.mark.parametrize("labels", [None, ()])
def test_encode_classify_uses_empty_labels_without_class_names(labels: Any) -> None:
    body = encode_classify(np.array([[0.5, 0.5]]), labels)
    assert orjson.loads(body) == {"results": [[["", 0.5], ["", 0.5]]]}


def test_encode_classify_writes_nonfinite_scores_as_tokens() -> None:
    assert encode_classify(np.array([[np.nan]], np.float32), ["a"]) == b'{"results":[[["a",NaN]]]}'


@pytest.mark.parametrize(("scores", "labels"), [(np.zeros(3), None), (np.zeros((2, 3)), ["a", "b"])])
def test_encode_classify_checks_its_arguments(scores: np.ndarray, labels: Any) -> None:
    with pytest.raises(ValueError):
        encode_classify(scores, labels)


@pytest.mark.parametrize("values", [np.array([3.5, 4.0], np.float32), np.array([[3.5], [4.0]], np.float32)])
def test_encode_regress_gives_one_value_per_example(values: np.ndarray) -> None:
    assert encode_regress(values) == b'{"results":[3.5,4.0]}'


def test_encode_regress_refuses_several_values_per_example() -> None:
    with pytest.raises(ValueError):
        encode_regress(np.zeros((2, 2)))
