"""TF Serving REST v1 routes: status, metadata, predict (row/columnar), classify, regress."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from werkzeug.test import Client

from tests.fixtures.tiny_models import digits_weights


def digits_probabilities(images: np.ndarray) -> np.ndarray:
    w, b = digits_weights()
    logits = images.reshape(len(images), -1) @ w + b
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("url", "versions"),
    [
        ("/v1/models/regressor", ["2", "1"]),
        ("/v1/models/regressor/versions/1", ["1"]),
        ("/v1/models/regressor/labels/canary", ["2"]),
        ("/v1/models/digits", ["1"]),
    ],
)
def test_model_status(client: Client, url: str, versions: list[str]) -> None:
    response = client.get(url)
    assert response.status_code == 200
    statuses = response.get_json()["model_version_status"]
    assert [s["version"] for s in statuses] == versions
    assert all(s["state"] == "AVAILABLE" and s["status"]["error_code"] == "OK" for s in statuses)


def test_metadata(client: Client) -> None:
    doc = client.get("/v1/models/digits/metadata").get_json()
    assert doc["model_spec"] == {"name": "digits", "signature_name": "", "version": "1"}
    signature = doc["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["inputs"]["images"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in signature["inputs"]["images"]["tensor_shape"]["dim"]] == ["-1", "28", "28"]
    assert set(signature["outputs"]) == {"probabilities", "class_id"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/v1/models/regressor:predict", [3.5, 4.0]),
        ("/v1/models/regressor/versions/1:predict", [2.5, 3.0]),
        ("/v1/models/regressor/labels/stable:predict", [2.5, 3.0]),
        ("/v1/models/regressor/labels/canary:predict", [3.5, 4.0]),
    ],
)
def test_predict_routes_to_versions_and_labels(
    post_json: Callable[..., Any], url: str, expected: list[float]
) -> None:
    response = post_json(url, {"instances": [1.0, 2.0]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"predictions": expected}


def test_predict_columnar(post_json: Callable[..., Any]) -> None:
    assert post_json("/v1/models/regressor:predict", {"inputs": [1.0, 2.0]}).get_json() == {
        "outputs": [3.5, 4.0]
    }
    assert post_json("/v1/models/regressor:predict", {"inputs": {"x": [4.0]}}).get_json() == {
        "outputs": [5.0]
    }


def test_classifier_probabilities_labels_and_top_k(post_json: Callable[..., Any]) -> None:
    images = np.random.default_rng(1).random((3, 28, 28)).astype(np.float32)
    doc = post_json("/v1/models/digits:predict", {"instances": images.tolist(), "top_k": 3}).get_json()
    expected = digits_probabilities(images)
    for row, proba in zip(doc["predictions"], expected, strict=True):
        np.testing.assert_allclose(row["probabilities"], proba, rtol=1e-5)
        assert row["class_id"] == int(np.argmax(proba)) and row["label"] == str(np.argmax(proba))
        assert row["top_k_class_ids"] == list(np.argsort(-proba)[:3])
        assert row["top_k_labels"] == [str(i) for i in np.argsort(-proba)[:3]]
        assert len(row["top_k_probabilities"]) == 3


def test_binary_threshold_parameter(post_json: Callable[..., Any]) -> None:
    body = {"instances": [[0.5, 0.55]], "parameters": {"threshold": 0.9}}
    low = post_json("/v1/models/binary:predict", {"instances": [[0.5, 0.55]]}).get_json()["predictions"][0]
    high = post_json("/v1/models/binary:predict", body).get_json()["predictions"][0]
    assert 0.5 < low["probability"] < 0.9
    assert (low["class_id"], low["label"]) == (1, "positive")
    assert (high["class_id"], high["label"]) == (0, "negative")


def test_classify_and_regress(post_json: Callable[..., Any]) -> None:
    regress = post_json("/v1/models/regressor:regress", {"examples": [{"x": 2.0}, {"x": 4.0}]})
    assert regress.get_json() == {"results": [4.0, 5.0]}
    classify = post_json("/v1/models/binary:classify", {"examples": [{"features": [0.9, 0.9]}]}).get_json()
    (pairs,) = classify["results"]
    assert [label for label, _ in pairs] == ["negative", "positive"]
    assert pairs[1][1] > 0.9 and abs(pairs[0][1] + pairs[1][1] - 1) < 1e-6
    digits = post_json("/v1/models/digits:classify", {"examples": [{"images": [0.5] * 784}]}).get_json()
    assert len(digits["results"][0]) == 10


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("/v1/models/regressor:classify", "regression model; use :regress"),
        ("/v1/models/digits:regress", "classification model; use :classify"),
    ],
)
def test_classify_regress_on_the_wrong_task(post_json: Callable[..., Any], url: str, fragment: str) -> None:
    response = post_json(url, {"examples": [{"x": 1.0}]})
    assert response.status_code == 400 and fragment in response.get_json()["error"]


def test_signature_name(post_json: Callable[..., Any]) -> None:
    ok = post_json("/v1/models/regressor:predict", {"signature_name": "serving_default", "instances": [1.0]})
    assert ok.status_code == 200
    bad = post_json("/v1/models/regressor:predict", {"signature_name": "other", "instances": [1.0]})
    assert bad.status_code == 400 and "'other' not found" in bad.get_json()["error"]


def test_curl_default_content_type_is_accepted(client: Client) -> None:
    """curl -d sends application/x-www-form-urlencoded; TF Serving accepts it, so do we."""
    response = client.post(
        "/v1/models/regressor:predict",
        data=b'{"instances": [1.0]}',
        content_type="application/x-www-form-urlencoded",
    )
    assert response.get_json() == {"predictions": [3.5]}
