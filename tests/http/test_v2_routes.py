"""Open Inference Protocol (V2) routes: server/model metadata, readiness, infer (JSON and binary)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from werkzeug.test import Client


def test_server_metadata_and_health(client: Client) -> None:
    meta = client.get("/v2").get_json()
    assert meta["name"] and "binary_tensor_data" in meta["extensions"]
    for url in ("/v2/health/live", "/v2/health/ready", "/healthz", "/readyz"):
        assert client.get(url).status_code == 200


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/v2/models/regressor/ready", 200),
        ("/v2/models/regressor/versions/1/ready", 200),
        ("/v2/models/regressor/versions/7/ready", 404),
        ("/v2/models/ghost/ready", 404),
    ],
)
def test_model_ready(client: Client, url: str, status: int) -> None:
    assert client.get(url).status_code == status


def test_model_metadata_lists_versions_and_derived_outputs(client: Client) -> None:
    doc = client.get("/v2/models/regressor").get_json()
    assert doc["name"] == "regressor" and sorted(doc["versions"]) == ["1", "2"]
    assert doc["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1]}]
    digits = client.get("/v2/models/digits/versions/1").get_json()
    assert {o["name"] for o in digits["outputs"]} == {"probabilities", "class_id", "label"}
    assert digits["versions"] == ["1"]


def test_model_index(client: Client) -> None:
    models = client.get("/v2/models").get_json()["models"]
    assert {(m["name"], m["version"], m["state"]) for m in models} >= {("regressor", "1", "AVAILABLE")}
    index = client.post("/v2/repository/index").get_json()
    assert {"name": "digits", "version": "1", "state": "READY", "reason": ""} in index


def test_infer_json(post_json: Callable[..., Any]) -> None:
    body = {"id": "req-7", "inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1, 2, 3]}]}
    doc = post_json("/v2/models/regressor/versions/1/infer", body).get_json()
    assert doc["id"] == "req-7" and doc["model_name"] == "regressor" and doc["model_version"] == "1"
    assert doc["outputs"] == [{"name": "y", "datatype": "FP32", "shape": [3], "data": [2.5, 3.0, 3.5]}]


def test_infer_top_k_and_requested_outputs(post_json: Callable[..., Any]) -> None:
    body = {
        "inputs": [{"name": "images", "shape": [2, 28, 28], "datatype": "FP32", "data": [0.25] * (2 * 784)}],
        "parameters": {"top_k": 2},
        "outputs": [{"name": "label"}, {"name": "top_k_labels"}],
    }
    doc = post_json("/v2/models/digits/infer", body).get_json()
    outputs = {o["name"]: o for o in doc["outputs"]}
    assert set(outputs) == {"label", "top_k_labels"}
    assert outputs["top_k_labels"]["shape"] == [2, 2] and outputs["label"]["datatype"] == "BYTES"


def test_infer_unknown_output_is_refused(post_json: Callable[..., Any]) -> None:
    body = {
        "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}],
        "outputs": [{"name": "z"}],
    }
    response = post_json("/v2/models/regressor/infer", body)
    assert response.status_code == 400 and "Unknown output 'z'" in response.get_json()["error"]


@pytest.mark.parametrize("binary", [True, False])
def test_infer_with_tritonclient_encoding(client: Client, binary: bool) -> None:
    images = np.random.default_rng(3).random((4, 28, 28)).astype(np.float32)
    infer_input = triton.InferInput("images", list(images.shape), "FP32")
    infer_input.set_data_from_numpy(images, binary_data=binary)
    outputs = [triton.InferRequestedOutput("probabilities", binary_data=binary, class_count=0)]
    body, json_size = triton.InferenceServerClient.generate_request_body([infer_input], outputs=outputs)
    headers = {"Inference-Header-Content-Length": str(json_size)} if json_size is not None else {}
    response = client.post("/v2/models/digits/infer", data=body, headers=headers)
    assert response.status_code == 200, response.data[:300]
    header_length = response.headers.get("Inference-Header-Content-Length")
    result = triton.InferenceServerClient.parse_response_body(
        response.data, header_length=int(header_length) if header_length else None
    )
    proba = result.as_numpy("probabilities")
    assert proba.shape == (4, 10) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
