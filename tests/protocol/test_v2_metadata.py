"""V2 server and model metadata documents."""

from __future__ import annotations

from service.models.card import TensorSpec
from service.protocol.v2 import EXTENSIONS, PLATFORM, model_metadata, server_metadata


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
