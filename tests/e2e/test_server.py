"""End to end over real gunicorn: TF Serving clients (requests) and Triton clients (tritonclient)."""

from __future__ import annotations

import re
import socket

import numpy as np
import orjson
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


def _raw_exchange(sock: socket.socket, head: bytes, body: bytes = b"") -> tuple[bytes, bytes]:
    """Send a request; read one response (status line + headers, and its Content-Length body)."""
    sock.sendall(head + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        data += chunk
    header, rest = data.split(b"\r\n\r\n", 1)
    if header.startswith(b"HTTP/1.1 100"):
        return header, rest
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", header)[1])  # type: ignore[index]
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-body"
        rest += chunk
    return header, rest


def _post_head(path: str, length: int, *extra: bytes) -> bytes:
    lines = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: test", b"Content-Type: application/json"]
    lines += [b"Content-Length: %d" % length, *extra]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def test_one_connection_carries_large_bodies_and_errors(server: Server) -> None:
    # gunicorn's optional C parser dropped kept-alive connections after a few 250 kB bodies
    image = np.random.default_rng(5).random((64, 28, 28)).round(6).tolist()
    big = orjson.dumps({"instances": image})
    bad = b'{"instances": "no"}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for body in (big, bad, big, big, big, bad, big):
            header, payload = _raw_exchange(sock, _post_head("/v1/models/digits:predict", len(body)), body)
            status = int(header.split()[1])
            assert status == (200 if body is big else 400), payload[:200]
            if body is big:
                assert len(orjson.loads(payload)["predictions"]) == 64


def test_expect_continue_is_answered_after_the_size_check(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = _post_head("/v1/models/regressor:predict", 3_000_000, b"Expect: 100-continue")
        header, payload = _raw_exchange(sock, head)  # the body is never sent
        assert header.startswith(b"HTTP/1.1 413") and b"exceeds" in payload
    body = b'{"instances": [1.0]}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        header, _ = _raw_exchange(
            sock, _post_head("/v1/models/regressor:predict", len(body), b"Expect: 100-continue")
        )
        assert header.startswith(b"HTTP/1.1 100")
        header, payload = _raw_exchange(sock, b"", body)
        assert header.startswith(b"HTTP/1.1 200") and orjson.loads(payload) == {"predictions": [3.5]}
