"""TF Serving's own gRPC stubs against the real server: the same answers, codes and messages as REST."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests
from google.protobuf import json_format

from service.grpc.generated import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)
from service.models.runtime import tf
from tests.grpc.conftest import MAX_BODY_BYTES
from tests.server import Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def channel(grpc_server: Server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(grpc_server.grpc_target) as opened:
        yield opened


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> Any:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def digits(mnist_dir: Path) -> np.ndarray:
    from service.datafiles import find_idx_sets, read_idx_set

    (pair,) = find_idx_sets(mnist_dir).values()
    return (read_idx_set(*pair).images[:8] / 255.0).astype(np.float32)


def predict_request(model: str, inputs: dict[str, np.ndarray], **spec: Any) -> Any:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    for name, array in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
    return request


def arrays(response: Any) -> dict[str, np.ndarray]:
    return {name: tf.make_ndarray(tensor) for name, tensor in response.outputs.items()}


def rest(server: Server, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    if body is None:
        return requests.get(server.url + path, timeout=30)
    return requests.post(server.url + path, json=body, timeout=30)


def test_predict_answers_what_rest_predict_answers_bit_for_bit(
    grpc_server: Server, stub: Any, digits: np.ndarray
) -> None:
    response = stub.Predict(predict_request("digits", {"images": digits}), timeout=30)
    got = arrays(response)
    expected = rest(grpc_server, "/v1/models/digits:predict", {"inputs": {"images": digits.tolist()}}).json()
    assert set(got) == set(expected["outputs"]) == {"probabilities", "class_id", "label"}
    # REST writes each float32 as its shortest repr, so equal float32 values mean equal bits.
    assert got["probabilities"].dtype == np.float32
    assert (
        got["probabilities"].tobytes() == np.array(expected["outputs"]["probabilities"], np.float32).tobytes()
    )
    assert got["class_id"].tolist() == expected["outputs"]["class_id"]
    assert [label.decode() for label in got["label"]] == expected["outputs"]["label"]
    spec = response.model_spec
    assert (spec.name, spec.version.value, spec.signature_name) == ("digits", 1, "serving_default")


@pytest.mark.parametrize(
    ("spec", "answer", "version"),
    [
        ({}, 8.0, 2),  # the newest version: 0.5 x + 3
        ({"version": 1}, 7.0, 1),  # 0.5 x + 2
        ({"version_label": "stable"}, 7.0, 1),
        ({"version_label": "canary"}, 8.0, 2),
    ],
)
def test_predict_by_version_and_by_label(
    stub: Any, spec: dict[str, Any], answer: float, version: int
) -> None:
    response = stub.Predict(
        predict_request("regressor", {"x": np.array([10.0], np.float32)}, **spec), timeout=30
    )
    assert arrays(response)["y"].tolist() == [answer]
    assert response.model_spec.version.value == version


def test_output_filter_answers_only_the_outputs_named(stub: Any, digits: np.ndarray) -> None:
    request = predict_request("digits", {"images": digits[:2]})
    request.output_filter.extend(["label", "class_id"])
    assert set(stub.Predict(request, timeout=30).outputs) == {"label", "class_id"}


def test_a_float64_tensor_is_accepted_for_a_float32_input_when_no_value_changes(stub: Any) -> None:
    """numpy's default dtype, as a careless client sends it; TF Serving itself would refuse it."""
    response = stub.Predict(predict_request("regressor", {"x": np.array([1.0, 2.0])}), timeout=30)
    assert arrays(response)["y"].tolist() == [3.5, 4.0]


def test_classify_answers_what_rest_classify_answers(grpc_server: Server, stub: Any) -> None:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "binary"
    for row in ([0.2, 0.3], [0.9, 0.8]):
        request.input.example_list.examples.add().features.feature["features"].float_list.value.extend(row)
    response = stub.Classify(request, timeout=30)
    got = [[[c.label, c.score] for c in item.classes] for item in response.result.classifications]
    body = {"examples": [{"features": [0.2, 0.3]}, {"features": [0.9, 0.8]}]}
    expected = rest(grpc_server, "/v1/models/binary:classify", body).json()["results"]
    assert [[label for label, _ in row] for row in got] == [["negative", "positive"]] * 2
    assert np.array(got, dtype=object)[:, :, 1].astype(np.float32).tolist() == [
        [np.float32(score) for _, score in row] for row in expected
    ]


def test_regress_answers_what_rest_regress_answers(grpc_server: Server, stub: Any) -> None:
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "regressor"
    request.model_spec.version.value = 1
    context = request.input.example_list_with_context
    for value in (1.0, 4.0):
        context.examples.add().features.feature["x"].float_list.value.append(value)
    values = [r.value for r in stub.Regress(request, timeout=30).result.regressions]
    body = {"examples": [{"x": 1.0}, {"x": 4.0}]}
    assert (
        values
        == rest(grpc_server, "/v1/models/regressor/versions/1:regress", body).json()["results"]
        == [2.5, 4.0]
    )


def as_json(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def test_metadata_and_status_are_the_rest_documents(
    grpc_server: Server, stub: Any, channel: grpc.Channel
) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "digits"
    metadata = stub.GetModelMetadata(request, timeout=30)
    expected = rest(grpc_server, "/v1/models/digits/metadata").json()
    assert as_json(metadata.model_spec) == expected["model_spec"]
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert metadata.metadata["signature_def"].Unpack(signatures)
    assert as_json(signatures) == expected["metadata"]["signature_def"]
    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "regressor"
    status = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_request, timeout=30)
    assert as_json(status) == rest(grpc_server, "/v1/models/regressor").json()
    assert [v.version for v in status.model_version_status] == [2, 1]


def test_metadata_needs_the_signature_def_field(stub: Any) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "digits"
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetModelMetadata(request, timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "metadata_field ['signature_def']" in refused.value.details()


def _predict(model: str, inputs: dict[str, np.ndarray], **spec: Any) -> Callable[[Any], Any]:
    return lambda stub: stub.Predict(predict_request(model, inputs, **spec), timeout=30)


def _classify_regressor(stub: Any) -> Any:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "regressor"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.append(1.0)
    return stub.Classify(request, timeout=30)


FEATURES = np.array([[0.2, 0.3]], np.float32)
# (gRPC call, the same request over REST, gRPC code, HTTP status)
ERRORS = {
    "unknown model": (
        _predict("nope", {"x": FEATURES}),
        ("/v1/models/nope:predict", {"inputs": {"x": FEATURES.tolist()}}),
        grpc.StatusCode.NOT_FOUND,
        404,
    ),
    "unknown version": (
        _predict("binary", {"features": FEATURES}, version=9),
        ("/v1/models/binary/versions/9:predict", {"inputs": {"features": FEATURES.tolist()}}),
        grpc.StatusCode.NOT_FOUND,
        404,
    ),
    "unknown label": (
        _predict("regressor", {"x": np.ones(1, np.float32)}, version_label="beta"),
        ("/v1/models/regressor/labels/beta:predict", {"inputs": {"x": [1.0]}}),
        grpc.StatusCode.NOT_FOUND,
        404,
    ),
    "wrong shape": (
        _predict("binary", {"features": np.ones((2, 3), np.float32)}),
        ("/v1/models/binary:predict", {"inputs": {"features": np.ones((2, 3)).tolist()}}),
        grpc.StatusCode.INVALID_ARGUMENT,
        400,
    ),
    "unknown input": (
        _predict("binary", {"features": FEATURES, "extra": FEATURES}),
        (
            "/v1/models/binary:predict",
            {"inputs": {"features": FEATURES.tolist(), "extra": FEATURES.tolist()}},
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        400,
    ),
    "not finite": (
        _predict("regressor", {"x": np.array([np.nan], np.float32)}),
        ("/v1/models/regressor:predict", {"inputs": {"x": [float("nan")]}}),
        grpc.StatusCode.INVALID_ARGUMENT,
        400,
    ),
    "unknown signature": (
        _predict("binary", {"features": FEATURES}, signature_name="other"),
        ("/v1/models/binary:predict", {"signature_name": "other", "inputs": {"features": FEATURES.tolist()}}),
        grpc.StatusCode.INVALID_ARGUMENT,
        400,
    ),
    "classify a regressor": (
        _classify_regressor,
        ("/v1/models/regressor:classify", {"examples": [{"x": 1.0}]}),
        grpc.StatusCode.INVALID_ARGUMENT,
        400,
    ),
}


@pytest.mark.parametrize("case", ERRORS)
def test_errors_have_tf_servings_codes_and_the_rest_message(
    grpc_server: Server, stub: Any, case: str
) -> None:
    call, (path, body), code, status = ERRORS[case]
    with pytest.raises(grpc.RpcError) as refused:
        call(stub)
    answer = requests.post(grpc_server.url + path, data=_json(body), timeout=30)
    assert (refused.value.code(), answer.status_code) == (code, status)
    assert refused.value.details() == answer.json()["error"]


def _json(body: dict[str, Any]) -> bytes:
    import json

    return json.dumps(body).encode()  # allow_nan: TF Serving's NaN token, which REST reads and refuses


def test_a_message_over_max_body_bytes_is_resource_exhausted(stub: Any) -> None:
    x = np.zeros(MAX_BODY_BYTES // 4 + 1024, np.float32)  # a little over the limit, as tensor_content
    with pytest.raises(grpc.RpcError) as refused:
        stub.Predict(predict_request("regressor", {"x": x}), timeout=30)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_every_call_names_its_request_in_the_trailers(stub: Any) -> None:
    request = predict_request("regressor", {"x": np.ones(1, np.float32)})
    _, mine = stub.Predict.with_call(request, metadata=[("x-request-id", "abc-12")], timeout=30)
    assert dict(mine.trailing_metadata())["x-request-id"] == "abc-12"
    _, made = stub.Predict.with_call(request, metadata=[("x-request-id", "bad id")], timeout=30)
    assert dict(made.trailing_metadata())["x-request-id"] not in ("", "bad id")
    with pytest.raises(grpc.RpcError) as refused:
        stub.Predict(predict_request("nope", {"x": np.ones(1, np.float32)}), timeout=30)
    assert dict(refused.value.trailing_metadata())["x-request-id"]


def test_grpc_predictions_take_feedback_by_request_id(
    grpc_server: Server, stub: Any, digits: np.ndarray
) -> None:
    """The watched model keeps gRPC calls as it keeps HTTP ones: feedback joins them by request id."""
    ids = []
    for image in digits[:4]:
        _, call = stub.Predict.with_call(predict_request("digits", {"images": image[None]}), timeout=30)
        ids.append(dict(call.trailing_metadata())["x-request-id"])
    feedback = {"feedback": [{"id": rid, "labels": [3]} for rid in ids]}
    result = rest(grpc_server, "/v1/models/digits:feedback", feedback).json()
    assert result["labelled"] == 4 and result["unknown"] == [] == result["rejected"]
