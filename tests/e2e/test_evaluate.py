"""End to end over real gunicorn: :evaluate equals sklearn on :predict, chunked NDJSON, gauges, history."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import orjson
import pytest
import requests
from sklearn import metrics as skm

from tests.server import Server

pytestmark = pytest.mark.e2e

RNG = np.random.default_rng(33)
IMAGES = RNG.random((200, 28, 28)).astype(np.float32)
LABELS = RNG.integers(0, 10, 200)


def post(server: Server, path: str, doc: dict) -> dict:
    body = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    response = requests.post(
        server.url + path, data=body, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_evaluate_equals_sklearn_on_predicts_outputs(server: Server) -> None:
    predicted = post(server, "/v1/models/digits:predict", {"instances": IMAGES})["predictions"]
    proba = np.array([p["probabilities"] for p in predicted], np.float32).astype(np.float64)
    ids = np.array([p["class_id"] for p in predicted])
    doc = post(
        server, "/v1/models/digits:evaluate", {"instances": IMAGES, "labels": LABELS, "dataset": "e2e-json"}
    )
    assert doc["sample_count"] == 200 and doc["version"] == "1"
    assert abs(doc["metrics"]["accuracy"] - skm.accuracy_score(LABELS, ids)) <= 1e-9
    assert (
        abs(doc["metrics"]["roc_auc"] - skm.roc_auc_score(LABELS, proba, multi_class="ovr", labels=range(10)))
        <= 1e-9
    )
    assert (
        abs(
            doc["metrics"]["log_loss"]
            - skm.log_loss(LABELS, proba / proba.sum(axis=1, keepdims=True), labels=range(10))
        )
        <= 1e-9
    )


def test_chunked_ndjson_stream_equals_the_json_body(server: Server) -> None:
    reference = post(server, "/v2/models/digits/evaluate", {"instances": IMAGES, "labels": LABELS})["metrics"]

    def lines() -> Iterator[bytes]:  # a generator body: requests sends it with chunked transfer encoding
        for image, label in zip(IMAGES, LABELS, strict=True):
            yield orjson.dumps({"instance": image, "label": label}, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"

    response = requests.post(
        f"{server.url}/v1/models/digits:evaluate?dataset=e2e-stream&metrics=accuracy,roc_auc,log_loss",
        data=lines(), headers={"Content-Type": "application/x-ndjson"}, timeout=60,
    )  # fmt: skip
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["sample_count"] == 200 and doc["dataset"] == "e2e-stream"
    assert doc["metrics"] == {k: reference[k] for k in ("accuracy", "roc_auc", "log_loss")}
    bad = requests.post(
        f"{server.url}/v1/models/digits:evaluate", data=iter([b'{"instance": 1, "label": 0}\n']),
        headers={"Content-Type": "application/x-ndjson"}, timeout=30,
    )  # fmt: skip
    assert bad.status_code == 400 and "Line 1:" in bad.json()["error"]


def test_gauges_and_history_across_workers(server: Server) -> None:
    for _ in range(4):  # with two workers, both most likely record one
        post(
            server,
            "/v1/models/binary:evaluate",
            {"instances": [[0, 0], [1, 1], [0.2, 0.9]], "labels": [0, 1, 1], "dataset": "e2e-hist"},
        )
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    assert (
        'serving_model_evaluation{dataset="e2e-hist",metric="roc_auc",model="binary",version="1"} 1.0' in text
    )
    history = requests.get(f"{server.url}/v1/models/binary/evaluations?dataset=e2e-hist", timeout=10).json()
    assert len(history["evaluations"]) == 4 and {r["sample_count"] for r in history["evaluations"]} == {3}
