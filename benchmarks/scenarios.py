"""The scenarios, their request bodies, and a one-off check that each body gets a correct answer."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass

import numpy as np
import orjson

from benchmarks import grpcload
from benchmarks.loadgen import Body
from benchmarks.payloads import BINARY_HEADER, tfs_rows, v2_binary


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    instances: int
    connections: int
    binary: bool = False  # V2 with binary tensors; otherwise TF Serving row JSON
    baseline: bool = True  # the unbatched Flask app speaks this protocol
    grpc: bool = False  # over gRPC (h2load): V2 ModelInfer when binary, else TF Serving Predict

    def body(self, images: np.ndarray, model: str) -> Body:
        batch = images[: self.instances]
        if self.grpc:
            return (
                grpcload.v2_infer_body(batch, model)
                if self.binary
                else grpcload.tfs_predict_body(batch, model)
            )
        if not self.binary:
            return Body(f"/v1/models/{model}:predict", tfs_rows(batch))
        data, header_length = v2_binary(batch)
        return Body(f"/v2/models/{model}/infer", data, "application/octet-stream", header_length)


SCENARIOS = (
    Scenario("json1-c1", "One instance per request, TF Serving JSON, 1 connection", 1, 1),
    Scenario("json1-c16", "One instance per request, TF Serving JSON, 16 connections", 1, 16),
    Scenario(
        "grpc1-c16",
        "One instance per request, TF Serving gRPC Predict, 16 connections",
        1,
        16,
        baseline=False,
        grpc=True,
    ),
    Scenario("json1-c64", "One instance per request, TF Serving JSON, 64 connections", 1, 64),
    Scenario("json64-c16", "64 instances per request, TF Serving JSON, 16 connections", 64, 16),
    Scenario(
        "v2bin1024-c8",
        "1,024 instances per request, V2 binary tensors, 8 connections",
        1024,
        8,
        binary=True,
        baseline=False,
    ),
    Scenario(
        "grpc1024-c8",
        "1,024 instances per request, V2 gRPC ModelInfer (raw tensors), 8 connections",
        1024,
        8,
        binary=True,
        baseline=False,
        grpc=True,
    ),
)


def post(
    url: str, body: Body, timeout: float = 30.0, token: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": body.content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body.header_length is not None:
        headers[BINARY_HEADER] = str(body.header_length)
    request = urllib.request.Request(url + body.path, data=body.data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, dict(response.headers), response.read()


def predicted_classes(scenario: Scenario, headers: dict[str, str], payload: bytes) -> np.ndarray:
    """The class of each instance in a response; raises if the response is not what was asked."""
    if not scenario.binary:
        rows = orjson.loads(payload)["predictions"]
        return np.array([row["class_id"] for row in rows])
    length = int(headers[BINARY_HEADER])
    (output,) = orjson.loads(payload[:length])["outputs"]
    if output["name"] != "probabilities" or output["shape"] != [scenario.instances, 10]:
        raise ValueError(f"Unexpected V2 output {output}.")
    probabilities = np.frombuffer(payload[length:], dtype="<f4").reshape(output["shape"])
    return probabilities.argmax(axis=1)


def check_answer(
    url: str,
    grpc_target: str | None,
    scenario: Scenario,
    body: Body,
    labels: np.ndarray,
    token: str | None = None,
) -> float:
    """Send the scenario's body once; return the accuracy of the answer (raises on a wrong shape)."""
    if scenario.grpc:
        if grpc_target is None:
            raise ValueError(f"{url} serves no gRPC for scenario {scenario.key}.")
        classes = grpcload.predicted_classes(grpc_target, body, scenario.instances, token)
        return float((classes == labels[: scenario.instances]).mean())
    status, headers, payload = post(url, body, token=token)
    if status != 200:
        raise RuntimeError(f"{url}{body.path} answered {status}: {payload[:200]!r}")
    classes = predicted_classes(scenario, headers, payload)
    if classes.shape != (scenario.instances,):
        raise ValueError(f"{url}{body.path} returned {classes.shape[0]} answers for {scenario.instances}.")
    return float((classes == labels[: scenario.instances]).mean())
