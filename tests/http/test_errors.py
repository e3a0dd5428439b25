"""Every kind of bad request gets a JSON error with the right status, never HTML or a 500."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.test import Client

IMAGE = [[0.0] * 28] * 28

# (method, url, body (dict -> JSON, bytes -> raw), headers, status, fragment of the error message)
CASES: list[tuple[str, str, Any, dict[str, str], int, str]] = [
    ("POST", "/v1/models/regressor:predict", b"{not json", {}, 400, "not valid JSON"),
    ("POST", "/v1/models/regressor:predict", b"[1, 2]", {}, 400, "JSON object"),
    ("POST", "/v1/models/regressor:predict", {}, {}, 400, "instances"),
    ("POST", "/v1/models/regressor:predict", {"instances": [1.0], "inputs": [1.0]}, {}, 400, "instances"),
    ("POST", "/v1/models/regressor:predict", {"instances": [1.0], "extra": 1}, {}, 400, "extra"),
    ("POST", "/v1/models/regressor:predict", {"instances": []}, {}, 400, "at least one instance"),
    ("POST", "/v1/models/regressor:predict", {"instances": ["a"]}, {}, 400, "x"),
    ("POST", "/v1/models/regressor:predict", {"instances": [[1.0]]}, {}, 400, "shape"),
    ("POST", "/v1/models/regressor:predict", {"instances": [1.0] * 101}, {}, 400, "100"),
    ("POST", "/v1/models/regressor:predict", b'{"instances": [NaN]}', {}, 400, "NaN"),
    ("POST", "/v1/models/regressor:predict", b'{"instances": [Infinity]}', {}, 400, "finite"),
    ("POST", "/v1/models/regressor:predict", {"instances": [True]}, {}, 400, "x"),
    ("POST", "/v1/models/regressor:predict", {"instances": [None]}, {}, 400, "x"),
    ("POST", "/v1/models/digits:predict", {"instances": [[0.0] * 784]}, {}, 400, "shape"),
    ("POST", "/v1/models/digits:predict", {"instances": [IMAGE, IMAGE[:27]]}, {}, 400, "images"),
    ("POST", "/v1/models/digits:predict", {"instances": [IMAGE], "top_k": 11}, {}, 400, "top_k"),
    ("POST", "/v1/models/regressor:predict", {"instances": [1.0], "top_k": 1}, {}, 400, "top_k"),
    ("POST", "/v1/models/binary:predict", {"instances": [[0, 1]], "threshold": 2}, {}, 400, "threshold"),
    ("POST", "/v1/models/nope:predict", {"instances": [1.0]}, {}, 404, "'nope'"),
    ("POST", "/v1/models/regressor/versions/9:predict", {"instances": [1.0]}, {}, 404, "version 9"),
    ("POST", "/v1/models/regressor/versions/abc:predict", {"instances": [1.0]}, {}, 404, "version 'abc'"),
    ("POST", "/v1/models/regressor/labels/gold:predict", {"instances": [1.0]}, {}, 404, "'gold'"),
    ("POST", "/v1/models/..%2F..%2Fetc:predict", {"instances": [1.0]}, {}, 404, ""),
    ("POST", "/v1/models/../../etc:predict", {"instances": [1.0]}, {}, 404, ""),
    ("GET", "/v1/models/..%2Fmodels", None, {}, 404, ""),
    ("POST", "/v1/models//regressor:predict", {"instances": [1.0]}, {}, 404, "No route"),
    ("GET", "/v2//models", None, {}, 404, "No route"),
    ("GET", "/v2/health/ready/", None, {}, 404, "No route"),
    ("POST", "/v1/models/regressor:explode", {"instances": [1.0]}, {}, 404, ":explode"),
    ("GET", "/v1/models/regressor:predict", None, {}, 405, "POST"),
    ("DELETE", "/v1/models/regressor", None, {}, 405, "DELETE"),
    ("OPTIONS", "/v1/models/regressor:predict", None, {}, 405, "OPTIONS"),
    ("OPTIONS", "/v2/health/ready", None, {}, 405, "OPTIONS"),
    ("PUT", "/v2/models/regressor/infer", None, {}, 405, "PUT"),
    ("POST", "/v1/models/regressor:predict", b"<x/>", {"Content-Type": "application/xml"}, 415, "application/xml"),
    ("POST", "/v2/models/regressor/infer", b"a,b", {"Content-Type": "text/csv"}, 415, "text/csv"),
    ("POST", "/v1/models/regressor:predict", b" " * 1_000_001, {}, 413, "exceeds"),
    ("GET", "/v2/nothing/here", None, {}, 404, "No route"),
    ("POST", "/v2/models/regressor/infer", {"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1]}]}, {}, 400, "x"),
    ("POST", "/v2/models/regressor/infer", {"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}, {}, 400, "BYTES"),
    ("POST", "/v2/models/regressor/infer", {"inputs": [{"name": "q", "shape": [1], "datatype": "FP32", "data": [1]}]}, {}, 400, "q"),
    ("POST", "/v2/models/regressor/infer", {"inputs": []}, {}, 400, "non-empty list"),
    ("POST", "/v2/models/regressor/infer", b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "parameters": {"binary_data_size": 4}}]}', {"Inference-Header-Content-Length": "500"}, 400, "Inference-Header-Content-Length"),
    ("POST", "/v2/models/regressor/infer", b"{}", {"Inference-Header-Content-Length": "abc"}, 400, "Inference-Header-Content-Length"),
    ("POST", "/v2/models/ghost/infer", {"inputs": []}, {}, 404, "'ghost'"),
    ("POST", "/v2/models/regressor/versions/x/infer", {"inputs": []}, {}, 404, "'x'"),
    ("GET", "/v2/models/ghost", None, {}, 404, "'ghost'"),
    # integers from the wire: ASCII digits only, and only a few of them
    ("POST", "/v1/models/regressor/versions/%C2%B2:predict", {"instances": [1.0]}, {}, 404, "positive integers"),
    ("POST", "/v1/models/regressor/versions/%D9%A1:predict", {"instances": [1.0]}, {}, 404, "positive integers"),
    ("GET", "/v1/models/regressor/versions/%C2%B2", None, {}, 404, "positive integers"),
    ("GET", "/v2/models/regressor/versions/%D9%A1/ready", None, {}, 404, "positive integers"),
    ("POST", "/v2/models/regressor/versions/" + "9" * 5000 + "/infer", {"inputs": []}, {}, 404, "positive integers"),
    ("POST", "/v2/models/regressor/infer", b"{}", {"Inference-Header-Content-Length": "9" * 5000}, 400, "Inference-Header-Content-Length"),
    ("POST", "/v2/models/regressor/infer", b"{}", {"Inference-Header-Content-Length": "\xd9\xa2"}, 400, "Inference-Header-Content-Length"),
    ("GET", "/v1/models/regressor/evaluations?limit=%D9%A1", None, {}, 400, "'limit'"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "url", "body", "headers", "status", "fragment"), CASES)
def test_bad_requests(
    client: Client, method: str, url: str, body: Any, headers: dict[str, str], status: int, fragment: str
) -> None:
    kwargs: dict[str, Any] = {"headers": headers}
    if isinstance(body, bytes):
        kwargs["data"] = body
    elif body is not None:
        kwargs["json"] = body
    response = client.open(url, method=method, **kwargs)
    assert response.status_code == status, response.data[:300]
    assert response.mimetype == "application/json"
    doc = response.get_json()
    assert set(doc) == {"error"} and isinstance(doc["error"], str) and doc["error"]
    assert fragment in doc["error"], doc["error"]
    assert "Traceback" not in doc["error"]
