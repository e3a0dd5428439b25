"""End to end over real gunicorn: TF Serving clients (requests) and Triton clients (tritonclient)."""

from __future__ import annotations

import numpy as np
import pytest
import requests
import tritonclient.http as triton

from tests.server import Server

pytestmark = pytest.mark.e2e


def test_health_and_status(server: Server) -> None:
    assert requests.get(f"{server.url}/v2/health/live", timeout=5).json() == {"live": True}
    assert requests.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
    status = requests.get(f"{server.url}/v1/models/regressor", timeout=5).json()
    assert status["model_version_status"][0] == {
        "version": "2",
        "state": "AVAILABLE",
        "status": {"error_code": "OK", "error_message": ""},
    }


def test_tf_serving_predict(server: Server) -> None:
    response = requests.post(f"{server.url}/v1/models/regressor:predict", json={"instances": [1.0, 2.0, 5.0]})
    assert response.status_code == 200
    assert response.json() == {"predictions": [3.5, 4.0, 5.5]}


@pytest.mark.parametrize("binary", [True, False])
def test_tritonclient(server: Server, binary: bool) -> None:
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("digits")
    meta = client.get_model_metadata("digits")
    assert meta["inputs"][0]["name"] == "images"
    images = np.random.default_rng(5).random((8, 28, 28)).astype(np.float32)
    infer_input = triton.InferInput("images", list(images.shape), "FP32")
    infer_input.set_data_from_numpy(images, binary_data=binary)
    outputs = [
        triton.InferRequestedOutput("probabilities", binary_data=binary),
        triton.InferRequestedOutput("class_id", binary_data=binary),
        triton.InferRequestedOutput("label", binary_data=binary),
    ]
    result = client.infer("digits", [infer_input], outputs=outputs, request_id="abc")
    assert result.get_response()["id"] == "abc"
    proba, ids = result.as_numpy("probabilities"), result.as_numpy("class_id")
    assert proba.shape == (8, 10) and ids.tolist() == np.argmax(proba, axis=1).tolist()
    # tritonclient returns BYTES as bytes from the binary section and as str from JSON
    labels = [s.decode() if isinstance(s, bytes) else s for s in result.as_numpy("label")]
    assert labels == [str(i) for i in ids]
    # the classification extension: top-3 "score:index:label" strings
    top = client.infer(
        "digits", [infer_input], outputs=[triton.InferRequestedOutput("probabilities", binary, class_count=3)]
    ).as_numpy("probabilities")
    assert top.shape == (8, 3)
    best = [s.decode() if isinstance(s, bytes) else s for s in top[:, 0]]
    assert [int(s.split(":")[1]) for s in best] == ids.tolist()


def test_tritonclient_errors_are_reported(server: Server) -> None:
    client = triton.InferenceServerClient(server.url.removeprefix("http://"))
    bad = triton.InferInput("images", [1, 784], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 784), np.float32))
    with pytest.raises(triton.InferenceServerException, match="shape"):
        client.infer("digits", [bad])
    assert not client.is_model_ready("ghost")


def test_oversized_body_is_refused_without_reading_it(server: Server) -> None:
    big = b'{"instances": [' + b"1.0, " * 600_000 + b"1.0]}"
    response = requests.post(f"{server.url}/v1/models/regressor:predict", data=big, timeout=30)
    assert response.status_code == 413 and "exceeds" in response.json()["error"]

    def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(100):
            yield b" " * 50_000

    chunked = requests.post(f"{server.url}/v1/models/regressor:predict", data=chunks(), timeout=30)
    assert chunked.status_code == 413 and "exceeds" in chunked.json()["error"]
    # a chunked body under the limit is read whole
    small = requests.post(
        f"{server.url}/v1/models/regressor:predict", data=iter([b'{"instances": ', b"[1.0]}"])
    )
    assert small.json() == {"predictions": [3.5]}


def test_metrics_endpoint(server: Server) -> None:
    requests.post(f"{server.url}/v1/models/regressor:predict", json={"instances": [1.0]})
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    assert 'serving_requests_total{code="200",endpoint="predict",model="regressor"' in text
    assert requests.get(f"{server.url}/monitoring/prometheus/metrics", timeout=5).status_code == 200
