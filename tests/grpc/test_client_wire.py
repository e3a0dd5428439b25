"""What the clients our users run put on the wire: method paths, metadata, deadlines, message sizes.

A recording gRPC server (raw bytes, any method) stands in for ours, so these facts hold whatever the
servicers become: the servicers must read tokens from the ``authorization`` metadata, honour the
deadline both clients send, and accept messages a little over the HTTP body limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from service.grpc.generated import predict_pb2, prediction_service_pb2_grpc
from service.grpc.tfserving_codec import array_to_tensor

MIB = 1024 * 1024
SLACK = 0.05  # seconds a deadline may gain on the wire (gRPC core rounds grpc-timeout up)


@dataclass
class Call:
    method: str
    metadata: dict[str, str]
    time_remaining: float | None
    size: int


class Recorder(grpc.GenericRpcHandler):
    """Answers every unary method with an empty message (valid for any response type), noting the call."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.reply = b""

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        def answer(request: bytes, context: grpc.ServicerContext) -> bytes:
            metadata = {key: value for key, value in context.invocation_metadata()}
            remaining = context.time_remaining()  # ~2**63 ns when the call has no deadline
            deadline = remaining if remaining < 1e9 else None
            self.calls.append(Call(details.method, metadata, deadline, len(request)))
            return self.reply

        return grpc.unary_unary_rpc_method_handler(answer)


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, str, Any]]:
    """(recorder, target, start) where ``start(options)`` serves on a fresh port with those options."""
    handler, servers = Recorder(), []

    def start(options: list[tuple[str, Any]] | None = None) -> str:
        server = grpc.server(ThreadPoolExecutor(2), handlers=[handler], options=options or [])
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield handler, start(), start
    for server in servers:
        server.stop(None)


def infer_input(shape: list[int]) -> triton.InferInput:
    item = triton.InferInput("images", shape, "FP32")
    item.set_data_from_numpy(np.zeros(shape, np.float32))
    return item


def test_tritonclient_sends_headers_as_metadata_and_its_timeout_as_a_deadline(recorder: Any) -> None:
    handler, target, _ = recorder
    client = triton.InferenceServerClient(target)
    client.infer(
        "mnist", [infer_input([1, 28, 28])], headers={"authorization": "Bearer t0k"}, client_timeout=2.5
    )
    call = handler.calls[-1]
    assert call.method == "/inference.GRPCInferenceService/ModelInfer"
    assert call.metadata["authorization"] == "Bearer t0k"
    # gRPC core rounds the grpc-timeout header up to a coarser value (HPACK-friendly): ms over is the wire's.
    assert call.time_remaining is not None and 1.5 < call.time_remaining <= 2.5 + SLACK
    assert set(call.metadata) == {"authorization", "user-agent"}  # nothing of tritonclient's own
    assert call.metadata["user-agent"].startswith("grpc-python/")
    client.is_server_live()
    assert handler.calls[-1].method == "/inference.GRPCInferenceService/ServerLive"
    assert handler.calls[-1].time_remaining is None  # no client_timeout: no deadline at all


def test_a_tf_serving_stub_sends_what_its_caller_passes(recorder: Any) -> None:
    handler, target, _ = recorder
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs["images"].CopyFrom(array_to_tensor(np.zeros((1, 28, 28), np.float32)))
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        stub.Predict(request, timeout=3.0, metadata=[("authorization", "Bearer abc")])
    call = handler.calls[-1]
    assert call.method == "/tensorflow.serving.PredictionService/Predict"
    assert call.metadata["authorization"] == "Bearer abc"
    assert call.time_remaining is not None and 2.0 < call.time_remaining <= 3.0 + SLACK
    assert call.size == request.ByteSize()


def test_a_64_mib_request_needs_the_servers_receive_limit_raised(recorder: Any) -> None:
    handler, default_target, start = recorder
    images = infer_input([64 * MIB // (28 * 28 * 4) + 1, 28, 28])  # a little over 64 MiB of pixels
    with pytest.raises(InferenceServerException, match="RESOURCE_EXHAUSTED"):
        triton.InferenceServerClient(default_target).infer("mnist", [images])  # gRPC's default: 4 MiB
    assert not handler.calls
    raised = start([("grpc.max_receive_message_length", 65 * MIB)])
    triton.InferenceServerClient(raised).infer("mnist", [images])  # tritonclient's own limits: 2 GiB
    assert 64 * MIB < handler.calls[-1].size < 65 * MIB


def test_a_tf_serving_client_needs_its_receive_limit_raised_for_large_answers(recorder: Any) -> None:
    handler, target, _ = recorder
    response = predict_pb2.PredictResponse()
    response.outputs["probabilities"].CopyFrom(array_to_tensor(np.zeros((131072, 10), np.float32)))  # 5 MiB
    handler.reply = response.SerializeToString()
    request = predict_pb2.PredictRequest()
    with grpc.insecure_channel(target) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # the client's default: 4 MiB
    with grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", -1)]) as channel:
        answer = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=10)
        assert answer == response
