"""gRPC with tokens, TLS, rate limits and the admin API on real gunicorn, with two workers sharing the port."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

from service.grpc.generated import predict_pb2, prediction_service_pb2_grpc
from tests.auth.tokenfiles import entry, write_tokens
from tests.e2e.test_security import self_signed
from tests.server import Server

pytestmark = pytest.mark.e2e

INFER, ADMIN, BURST = "t-infer-grpc", "t-admin-grpc", "t-burst-grpc"
RATE = 10  # requests per second per token, and as many in a burst


@pytest.fixture(scope="module")
def secured(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a throwaway certificate")
    root = tmp_path_factory.mktemp("grpc-secured")
    shutil.copytree(tiny_template, root / "models")
    tokens = write_tokens(
        root / "tokens.yaml",
        entry("web", INFER, ["infer"]),
        entry("ops", ADMIN, ["infer", "admin"]),
        entry("burst", BURST, ["infer"]),
    )
    cert, key = self_signed(root)
    env = {
        "AUTH_TOKENS_FILE": tokens, "TLS_CERT": cert, "TLS_KEY": key, "DATA_DIR": root / "var",
        "MODEL_CONTROL": "explicit", "RATE_LIMIT": f"{RATE}/s,burst={RATE}",
    }  # fmt: skip
    with Server(root / "models", root / "server.log", **env) as server:  # two workers
        yield server


def client(server: Server) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.grpc_target, ssl=True, root_certificates=str(server.verify))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def secure_channel(server: Server) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(Path(str(server.verify)).read_bytes())
    return grpc.secure_channel(server.grpc_target, credentials)


def test_the_admin_rpcs_need_the_admin_scope_and_are_audited(secured: Server) -> None:
    triton_client = client(secured)
    with pytest.raises(InferenceServerException) as anonymous:
        triton_client.load_model("regressor")
    assert anonymous.value.status() == "StatusCode.UNAUTHENTICATED"
    assert (
        anonymous.value.message()
        == "This route needs a token: send the header 'Authorization: Bearer <token>'."
    )
    with pytest.raises(InferenceServerException) as wrong_scope:
        triton_client.load_model("regressor", headers=bearer(INFER))
    assert wrong_scope.value.status() == "StatusCode.PERMISSION_DENIED"
    assert "may not use scope 'admin'" in wrong_scope.value.message()
    triton_client.load_model("regressor", headers=bearer(ADMIN), config=json.dumps({"labels": {"now": 2}}))
    assert triton_client.is_model_ready("regressor", headers=bearer(INFER))
    x = triton.InferInput("x", [2], "FP32")
    x.set_data_from_numpy(np.array([1.0, 2.0], np.float32))
    assert triton_client.infer("regressor", [x], headers=bearer(INFER)).as_numpy("y").tolist() == [3.5, 4.0]
    triton_client.unload_model("regressor", headers=bearer(ADMIN))
    with pytest.raises(InferenceServerException) as gone:
        triton_client.is_model_ready("regressor", headers=bearer(INFER))
    assert gone.value.status() == "StatusCode.NOT_FOUND"
    audit = [
        json.loads(line) for line in (Path(secured.env["DATA_DIR"]) / "audit.jsonl").read_text().splitlines()
    ]
    outcomes = [(a["caller"], a["action"], a["model"], a["outcome"]) for a in audit]
    assert outcomes == [
        ("-", "load", "regressor", "refused"),
        ("web", "load", "regressor", "refused"),
        ("ops", "load", "regressor", "ok"),
        ("ops", "unload", "regressor", "ok"),
    ]
    assert all(a["client"] == "127.0.0.1" for a in audit)


def test_a_tf_serving_stub_sends_its_token_as_metadata_over_tls(secured: Server) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "binary"
    request.inputs["features"].dtype = 1  # DT_FLOAT
    request.inputs["features"].tensor_shape.dim.add(size=1)
    request.inputs["features"].tensor_shape.dim.add(size=2)
    request.inputs["features"].float_val.extend([0.9, 0.8])
    with secure_channel(secured) as channel:  # one connection: one worker, whose registry we load
        load = triton.service_pb2.RepositoryModelLoadRequest(model_name="binary")
        triton.service_pb2_grpc.GRPCInferenceServiceStub(channel).RepositoryModelLoad(
            load, metadata=list(bearer(ADMIN).items()), timeout=60
        )
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as unknown:
            stub.Predict(request, metadata=[("authorization", "Bearer not-a-token")], timeout=30)
        assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED
        trailers = dict(unknown.value.trailing_metadata())
        assert trailers["www-authenticate"] == 'Bearer realm="model-serving", error="invalid_token"'
        answer = stub.Predict(request, metadata=list(bearer(INFER).items()), timeout=30)
        assert answer.outputs["label"].string_val == [b"positive"]


def test_the_rate_limit_answers_resource_exhausted_with_retry_after(secured: Server) -> None:
    with secure_channel(secured) as channel:
        stub = triton.service_pb2_grpc.GRPCInferenceServiceStub(channel)
        codes: list[Any] = []
        for _ in range(3 * RATE):  # far more than the burst, far faster than the rate refills it
            try:
                stub.ServerMetadata(
                    triton.service_pb2.ServerMetadataRequest(), metadata=list(bearer(BURST).items())
                )
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as refused:
                codes.append(refused.code())
                retry_after = dict(refused.trailing_metadata())["retry-after"]
        assert codes[:RATE] == [grpc.StatusCode.OK] * RATE
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes and int(retry_after) >= 1
        ready = stub.ServerLive(triton.service_pb2.ServerLiveRequest())  # health is never limited nor closed
        assert ready.live


def listening_sockets(port: int) -> set[str]:
    """Inodes of the sockets listening on ``port``; gRPC binds 127.0.0.1 as a v4-mapped IPv6 socket."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                found.add(fields[9])
    return found


def sockets_of(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def test_each_worker_listens_on_the_grpc_port_and_reports_its_health(secured: Server) -> None:
    assert secured.process is not None
    workers = [
        int(p)
        for p in Path(f"/proc/{secured.process.pid}/task/{secured.process.pid}/children").read_text().split()
    ]
    assert len(workers) == 2
    deadline = time.monotonic() + 60  # the second worker may still be loading when HTTP is ready
    while True:
        listeners = listening_sockets(secured.grpc_port)
        owners = [pid for pid in workers if sockets_of(pid) & listeners]
        if (len(listeners) == 2 and len(owners) == 2) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(listeners) == 2 and sorted(owners) == sorted(workers)  # one SO_REUSEPORT listener each
    assert not sockets_of(secured.process.pid) & listeners  # the master never opens it
    for _ in range(4):  # fresh connections, spread over both workers by the kernel
        with secure_channel(secured) as channel:
            check = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=10
            )
            assert check.status == health_pb2.HealthCheckResponse.SERVING
