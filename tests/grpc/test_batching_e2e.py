"""gRPC calls share the micro-batcher with HTTP: same answers batched or not, merged batches, deadlines.

The server has one worker, so every call meets the same batcher; the ``stall`` model holds that
batcher busy on cue (see stall_model.py), so what queues behind it is known, and so is the number
of signature calls the batcher makes (``serving_batch_size_count``).
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
import requests
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from service.grpc.generated import predict_pb2, prediction_service_pb2_grpc
from service.models.runtime import tf
from tests.server import Server

pytestmark = pytest.mark.e2e
# Matrix products of 512 x 512: 1.2 s of one core here (300 took 0.37 s, close enough to the
# late call's 0.2 s deadline plus its start that the stall sometimes ended first and the call ran).
STALL_WORK = 1000.0


@pytest.fixture(scope="module")
def images(mnist_dir: Path) -> np.ndarray:
    from service.datafiles import find_idx_sets, read_idx_set

    (pair,) = find_idx_sets(mnist_dir).values()
    return (read_idx_set(*pair).images[:64] / 255.0).astype(np.float32)


def predict(
    target: str, model: str, name: str, array: np.ndarray, timeout: float = 60
) -> predict_pb2.PredictResponse:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
    with grpc.insecure_channel(target) as channel:  # a connection per call: truly concurrent clients
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)


def probabilities(target: str, image: np.ndarray) -> bytes:
    return predict(target, "digits", "images", image[None]).outputs["probabilities"].tensor_content


def metric(server: Server, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels`` (in any order)."""
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    total = 0.0
    for found, value in re.findall(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.MULTILINE):
        sample = dict(re.findall(r'(\w+)="([^"]*)"', found))
        total += float(value) if labels.items() <= sample.items() else 0.0
    return total


def batches(server: Server, model: str) -> tuple[float, float]:
    """(signature calls, rows) the batcher of ``model`` has run so far."""
    return (
        metric(server, "serving_batch_size_count", model=model),
        metric(server, "serving_batch_size_sum", model=model),
    )


def test_batched_grpc_answers_equal_unbatched_ones_bit_for_bit(
    grpc_server: Server, images: np.ndarray
) -> None:
    target = grpc_server.grpc_target
    alone = [probabilities(target, image) for image in images]
    calls_before, rows_before = batches(grpc_server, "digits")
    with ThreadPoolExecutor(max_workers=24) as pool:
        together = list(pool.map(lambda image: probabilities(target, image), images))
    calls, rows = batches(grpc_server, "digits")
    assert together == alone
    assert rows - rows_before >= len(images) and calls - calls_before < len(images)  # merged
    whole = predict(target, "digits", "images", images).outputs["probabilities"].tensor_content
    assert whole == b"".join(alone)


def stall(server: Server) -> None:
    """A call that keeps the stall model's batcher busy for STALL_WORK products."""
    answer = predict(server.grpc_target, "stall", "x", np.array([[0.0, STALL_WORK]], np.float32))
    assert tf.make_ndarray(answer.outputs["y"]).tolist() == [0.0]


def until_busy(server: Server, in_flight: float) -> None:
    """Wait until the server holds ``in_flight`` requests (the stalling one, then those queued)."""
    deadline = time.monotonic() + 30
    protocols = ("grpc-tfserving", "tfserving")
    while sum(metric(server, "serving_in_flight_requests", protocol=p) for p in protocols) < in_flight:
        assert time.monotonic() < deadline, "the requests never arrived"
        time.sleep(0.01)


def test_grpc_and_http_requests_merge_into_the_same_batch(grpc_server: Server) -> None:
    calls_before, rows_before = batches(grpc_server, "stall")
    with ThreadPoolExecutor(max_workers=3) as pool:
        blocker = pool.submit(stall, grpc_server)
        until_busy(grpc_server, 1)
        by_grpc = pool.submit(
            predict, grpc_server.grpc_target, "stall", "x", np.array([[1.5, 0]], np.float32)
        )
        by_http = pool.submit(
            requests.post,
            f"{grpc_server.url}/v1/models/stall:predict",
            json={"instances": [[2.5, 0]]},
            timeout=60,
        )
        until_busy(grpc_server, 3)  # both queued behind the stalling call
        blocker.result()
        assert tf.make_ndarray(by_grpc.result().outputs["y"]).tolist() == [3.0]
        assert by_http.result().json() == {"predictions": [5.0]}
    calls, rows = batches(grpc_server, "stall")
    assert (calls - calls_before, rows - rows_before) == (2, 3)  # the stall, then one call for both


def test_a_passed_deadline_withdraws_the_call_from_the_batch_queue(grpc_server: Server) -> None:
    client = triton.InferenceServerClient(grpc_server.grpc_target)
    late = triton.InferInput("x", [1, 2], "FP32")
    late.set_data_from_numpy(np.array([[1.0, 0.0]], np.float32))
    calls_before, _ = batches(grpc_server, "stall")
    # Which side ends the call first is a race: gRPC cancelling the handler at the deadline (counted
    # as a client gone, 499) or the batcher's wait, capped at the same deadline (504).
    labels = {"model": "stall", "protocol": "grpc-v2", "endpoint": "infer"}
    codes = ("499", "504")
    expired_before = sum(metric(grpc_server, "serving_requests_total", code=c, **labels) for c in codes)
    with ThreadPoolExecutor(max_workers=1) as pool:
        blocker = pool.submit(stall, grpc_server)
        until_busy(grpc_server, 1)
        with pytest.raises(InferenceServerException) as expired:  # queued behind the stall: too late
            client.infer("stall", [late], client_timeout=0.2)
        assert expired.value.status() == "StatusCode.DEADLINE_EXCEEDED"
        blocker.result()
    time.sleep(0.5)  # had it stayed queued, it would have run by now
    calls, _ = batches(grpc_server, "stall")
    assert calls - calls_before == 1  # the stall alone
    expired_after = sum(metric(grpc_server, "serving_requests_total", code=c, **labels) for c in codes)
    assert expired_after == expired_before + 1
    client.close()
