"""tritonclient.grpc against the real server: the V2 gRPC service answers what the /v2 routes answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as triton
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from service.grpc.generated import v2_pb2, v2_pb2_grpc
from tests.server import Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client(grpc_server: Server) -> Iterator[triton.InferenceServerClient]:
    opened = triton.InferenceServerClient(grpc_server.grpc_target)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def http_client(grpc_server: Server) -> triton_http.InferenceServerClient:
    return triton_http.InferenceServerClient(f"127.0.0.1:{grpc_server.port}")


@pytest.fixture(scope="module")
def digits(mnist_dir: Path) -> np.ndarray:
    from service.datafiles import find_idx_sets, read_idx_set

    (pair,) = find_idx_sets(mnist_dir).values()
    return (read_idx_set(*pair).images[:16] / 255.0).astype(np.float32)


def images_input(module: Any, images: np.ndarray) -> Any:
    item = module.InferInput("images", list(images.shape), "FP32")
    item.set_data_from_numpy(images)
    return item


def test_infer_with_raw_contents_equals_http_infer_bit_for_bit(
    client: triton.InferenceServerClient, http_client: triton_http.InferenceServerClient, digits: np.ndarray
) -> None:
    result = client.infer("digits", [images_input(triton, digits)], request_id="r-7")
    http = http_client.infer("digits", [images_input(triton_http, digits)])
    response = result.get_response()
    assert (response.model_name, response.model_version, response.id) == ("digits", "1", "r-7")
    assert {o.name for o in response.outputs} == {"probabilities", "class_id", "label"}
    assert len(response.raw_output_contents) == 3  # every output as raw contents, as Triton answers
    for name in ("probabilities", "class_id", "label"):
        got, expected = result.as_numpy(name), http.as_numpy(name)
        assert got.dtype == expected.dtype and got.tobytes() == expected.tobytes(), name


def test_typed_contents_answer_like_raw_contents(grpc_server: Server, digits: np.ndarray) -> None:
    tensor = v2_pb2.ModelInferRequest.InferInputTensor(name="images", datatype="FP32", shape=[2, 28, 28])
    tensor.contents.fp32_contents.extend(digits[:2].reshape(-1).tolist())
    request = v2_pb2.ModelInferRequest(model_name="digits", inputs=[tensor])
    request.outputs.add(name="probabilities")
    with grpc.insecure_channel(grpc_server.grpc_target) as channel:
        response = v2_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    raw = triton.InferResult(response).as_numpy("probabilities")
    http = requests.post(
        f"{grpc_server.url}/v2/models/digits/infer",
        json={
            "inputs": [
                {"name": "images", "shape": [2, 28, 28], "datatype": "FP32", "data": digits[:2].tolist()}
            ],
            "outputs": [{"name": "probabilities"}],
        },
        timeout=30,
    ).json()
    assert raw.tobytes() == np.array(http["outputs"][0]["data"], np.float32).reshape(2, 10).tobytes()


def test_requested_outputs_parameters_and_classification(
    client: triton.InferenceServerClient, http_client: triton_http.InferenceServerClient, digits: np.ndarray
) -> None:
    outputs = [
        triton.InferRequestedOutput("top_k_labels"),
        triton.InferRequestedOutput("probabilities", class_count=2),
    ]
    result = client.infer(
        "digits", [images_input(triton, digits[:3])], outputs=outputs, parameters={"top_k": 3}
    )
    assert [o.name for o in result.get_response().outputs] == ["top_k_labels", "probabilities"]
    http = http_client.infer(
        "digits",
        [images_input(triton_http, digits[:3])],
        outputs=[
            triton_http.InferRequestedOutput("top_k_labels"),
            triton_http.InferRequestedOutput("probabilities", class_count=2),
        ],
        parameters={"top_k": 3},
    )
    assert result.as_numpy("top_k_labels").shape == (3, 3)
    assert result.as_numpy("top_k_labels").tolist() == http.as_numpy("top_k_labels").tolist()
    assert (
        result.as_numpy("probabilities").tolist() == http.as_numpy("probabilities").tolist()
    )  # "score:index:label"
    binary = client.infer(
        "binary",
        [_features([[0.45, 0.6]])],
        outputs=[triton.InferRequestedOutput("class_id")],
        parameters={"threshold": 0.7},
    )
    assert binary.as_numpy("class_id").tolist() == [0]  # sigmoid(4 * 1.05 - 4) = 0.55 < 0.7


def _features(rows: list[list[float]]) -> triton.InferInput:
    item = triton.InferInput("features", [len(rows), 2], "FP32")
    item.set_data_from_numpy(np.array(rows, np.float32))
    return item


def test_health_metadata_and_readiness(grpc_server: Server, client: triton.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits") and client.is_model_ready("regressor", "1")
    metadata = client.get_model_metadata("digits", as_json=True)
    expected = requests.get(f"{grpc_server.url}/v2/models/digits", timeout=30).json()
    for tensors in ("inputs", "outputs"):
        for tensor in metadata[tensors]:
            tensor["shape"] = [int(d) for d in tensor["shape"]]  # protobuf's JSON writes int64 as text
    assert metadata == expected
    server = client.get_server_metadata(as_json=True)
    assert server["name"] == "model-serving"
    assert set(server["extensions"]) >= {"binary_tensor_data", "classification", "model_repository"}
    with pytest.raises(InferenceServerException) as unknown:
        client.is_model_ready("nope")
    assert "StatusCode.NOT_FOUND" in str(unknown.value.status())


def test_errors_carry_the_rest_message(grpc_server: Server, client: triton.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException) as refused:
        client.infer("binary", [_features([[0.1, 0.2]])], outputs=[triton.InferRequestedOutput("nope")])
    body = {"inputs": [{"name": "features", "shape": [1, 2], "datatype": "FP32", "data": [0.1, 0.2]}]}
    answer = requests.post(
        f"{grpc_server.url}/v2/models/binary/infer", json={**body, "outputs": [{"name": "nope"}]}, timeout=30
    )
    assert answer.status_code == 400
    assert refused.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert refused.value.message() == answer.json()["error"]
    with pytest.raises(InferenceServerException) as top_k:
        client.infer("binary", [_features([[0.1, 0.2]])], parameters={"top_k": 2})
    assert top_k.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "top_k applies to classifiers" in top_k.value.message()


def test_repository_index_lists_every_version(
    grpc_server: Server, client: triton.InferenceServerClient
) -> None:
    index = client.get_model_repository_index(as_json=True)["models"]
    expected = requests.post(f"{grpc_server.url}/v2/repository/index", json={}, timeout=30).json()
    assert sorted((m["name"], m["version"], m["state"]) for m in index) == sorted(
        (m["name"], m["version"], m["state"]) for m in expected
    )
    assert ("regressor", "1", "READY") in {(m["name"], m["version"], m["state"]) for m in index}


def test_reflection_describes_every_service_as_grpcurl_asks(grpc_server: Server) -> None:
    """grpcurl's `list` and `describe`: services, methods, and message types resolved with their imports."""
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

    with grpc.insecure_channel(grpc_server.grpc_target) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        assert set(database.get_services()) == {
            "tensorflow.serving.PredictionService",
            "tensorflow.serving.ModelService",
            "inference.GRPCInferenceService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }
        pool = DescriptorPool(database)
        predict = pool.FindServiceByName("tensorflow.serving.PredictionService").FindMethodByName("Predict")
        tensor = predict.input_type.fields_by_name["inputs"].message_type.fields_by_name["value"].message_type
        assert tensor.full_name == "tensorflow.TensorProto"  # from tensor.proto, an import of predict.proto
        infer = pool.FindServiceByName("inference.GRPCInferenceService").FindMethodByName("ModelInfer")
        assert "raw_input_contents" in infer.input_type.fields_by_name


def test_health_reports_serving_for_the_server_and_each_service(grpc_server: Server) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(grpc_server.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "tensorflow.serving.PredictionService", "inference.GRPCInferenceService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
        with pytest.raises(grpc.RpcError) as unknown:
            health.Check(health_pb2.HealthCheckRequest(service="nope.Service"), timeout=10)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
