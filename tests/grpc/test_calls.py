"""The gRPC door's policy comes from the HTTP route table, and every error carries a real gRPC code."""

from __future__ import annotations

import grpc
import pytest

from service import errors
from service.grpc import generated
from service.grpc.calls import MODELS, ROUTES, TFS, V2, client_address, rpc
from service.grpc.tfserving import ModelService, PredictionService
from service.grpc.v2 import InferenceService
from service.http import routes

SERVICERS = {TFS: PredictionService, MODELS: ModelService, V2: InferenceService}
DESCRIPTORS = {
    TFS: generated.prediction_service_pb2.DESCRIPTOR.services_by_name["PredictionService"],
    MODELS: generated.model_service_pb2.DESCRIPTOR.services_by_name["ModelService"],
    V2: generated.v2_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"],
}


def service_errors() -> list[type[errors.ServiceError]]:
    found, todo = [], [errors.ServiceError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return found


@pytest.mark.parametrize("error", service_errors(), ids=lambda cls: cls.__name__)
def test_every_service_error_names_a_grpc_status_code(error: type[errors.ServiceError]) -> None:
    assert error.grpc_status in grpc.StatusCode.__members__, error.grpc_status
    assert error.grpc_status != "OK"


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (errors.InvalidInput, "INVALID_ARGUMENT", 400),
        (errors.NotFound, "NOT_FOUND", 404),
        (errors.Unavailable, "UNAVAILABLE", 503),
        (errors.PayloadTooLarge, "RESOURCE_EXHAUSTED", 413),
        (errors.TooManyRequests, "RESOURCE_EXHAUSTED", 429),
        (errors.Unauthorized, "UNAUTHENTICATED", 401),
        (errors.Forbidden, "PERMISSION_DENIED", 403),
        (errors.UnprocessableRequest, "FAILED_PRECONDITION", 422),
        (errors.DeadlineExceeded, "DEADLINE_EXCEEDED", 504),
        (errors.ModelLoadError, "INTERNAL", 500),
    ],
)
def test_errors_map_as_tf_serving_maps_them(error: type[errors.ServiceError], code: str, status: int) -> None:
    assert (error.grpc_status, error.status) == (code, status)


@pytest.mark.parametrize("service", SERVICERS)
def test_every_method_served_is_in_the_table_and_in_the_service(service: str) -> None:
    servicer = SERVICERS[service]
    ours = {name for name in vars(servicer) if name[0].isupper()}
    assert ours == {method.split("/")[1] for method in ROUTES if method.startswith(service + "/")}
    assert ours <= {method.name for method in DESCRIPTORS[service].methods}


@pytest.mark.parametrize("method", ROUTES)
def test_each_method_takes_the_policy_of_its_http_route(method: str) -> None:
    route, policy = routes.BY_ENDPOINT[ROUTES[method]], rpc(method)
    assert policy.scope == route.scope
    if route.metric is None:
        assert policy.metric is None
    else:
        assert policy.metric == (f"grpc-{route.metric[0]}", route.metric[1])
    assert (policy.action is not None) == route.writes


def test_health_is_open_and_the_repository_needs_admin() -> None:
    assert rpc(f"{V2}/ServerLive").scope is None and rpc(f"{V2}/ServerReady").scope is None
    assert {
        rpc(f"{V2}/{m}").scope for m in ("RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload")
    } == {"admin"}
    assert rpc(f"{TFS}/Predict").metric == ("grpc-tfserving", "predict")
    assert rpc(f"{V2}/ModelInfer").metric == ("grpc-v2", "infer")


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:127.0.0.1:51234", "127.0.0.1"),
        ("ipv6:[::1]:51234", "::1"),
        ("ipv6:%5B::ffff:10.0.0.7%5D:443", "::ffff:10.0.0.7"),
        ("unix:/run/serving.sock", "unix:/run/serving.sock"),
        ("", "-"),
    ],
)
def test_client_address_from_grpcs_peer_string(peer: str, address: str) -> None:
    assert client_address(peer) == address
