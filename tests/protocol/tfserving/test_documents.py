"""TF Serving model status and metadata documents."""

from __future__ import annotations

import pytest

from service.models.card import TensorSpec
from service.models.servable import VersionStatus
from service.protocol.tfserving.documents import STATES, model_metadata, model_status


def test_model_status_matches_tf_serving() -> None:
    doc = model_status(
        [VersionStatus(3, "AVAILABLE"), VersionStatus(2, "END", "SavedModel not found", "NOT_FOUND")]
    )
    assert doc == {
        "model_version_status": [
            {"version": "3", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
            {
                "version": "2",
                "state": "END",
                "status": {"error_code": "NOT_FOUND", "error_message": "SavedModel not found"},
            },
        ]
    }


def test_a_failed_load_without_a_code_reports_unknown() -> None:
    (status,) = model_status([VersionStatus(1, "END", "boom")])["model_version_status"]
    assert status["status"] == {"error_code": "UNKNOWN", "error_message": "boom"}


@pytest.mark.parametrize("state", ["UNKNOWN", "START", "LOADING", "AVAILABLE", "UNLOADING", "END"])
def test_every_tf_serving_state_is_accepted(state: str) -> None:
    assert model_status([VersionStatus(1, state)])["model_version_status"][0]["state"] == state


def test_an_unknown_state_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        model_status([VersionStatus(1, "READY")])


def test_model_metadata_matches_tf_serving() -> None:
    doc = model_metadata(
        "mnist",
        2,
        "serving_default",
        [TensorSpec("images", "float32", (-1, 28, 28))],
        [TensorSpec("probabilities", "float32", (-1, 10)), TensorSpec("class_id", "int64", (-1,))],
    )
    assert doc["model_spec"] == {"name": "mnist", "signature_name": "", "version": "2"}
    signature = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"] == {
        "images": {
            "dtype": "DT_FLOAT",
            "tensor_shape": {
                "dim": [{"size": "-1", "name": ""}, {"size": "28", "name": ""}, {"size": "28", "name": ""}],
                "unknown_rank": False,
            },
            "name": "serving_default_images:0",
        }
    }
    outputs = signature["outputs"]
    assert outputs["class_id"]["name"] == "StatefulPartitionedCall:0"
    assert outputs["probabilities"]["name"] == "StatefulPartitionedCall:1"
    assert outputs["class_id"]["dtype"] == "DT_INT64"


@pytest.mark.parametrize(
    ("dtype", "name"),
    [
        ("bool", "DT_BOOL"),
        ("string", "DT_STRING"),
        ("float64", "DT_DOUBLE"),
        ("float16", "DT_HALF"),
        ("uint8", "DT_UINT8"),
    ],
)
def test_dtype_names(dtype: str, name: str) -> None:
    doc = model_metadata("m", 1, "s", [TensorSpec("x", dtype, (-1,))], [])
    assert doc["metadata"]["signature_def"]["signature_def"]["s"]["inputs"]["x"]["dtype"] == name


def test_version_states_and_status_defaults() -> None:
    assert VersionStatus(3, "AVAILABLE") == VersionStatus(3, "AVAILABLE", None, "UNKNOWN")
    assert STATES == ("UNKNOWN", "START", "LOADING", "AVAILABLE", "UNLOADING", "END")
