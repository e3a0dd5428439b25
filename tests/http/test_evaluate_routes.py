"""``:evaluate`` and ``/evaluate``: figures equal scikit-learn's and :predict's, every form, errors, records."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from sklearn import metrics as skm
from werkzeug.test import Client

from service.config import Settings, load_settings
from service.http.asgi import ServingApp, create_app
from service.models.loading import build_registry
from service.models.registry import Registry
from tests.http.client import client_for

RNG = np.random.default_rng(21)
IMAGES = RNG.random((60, 28, 28)).astype(np.float32)
DIGITS = RNG.integers(0, 10, 60)
FEATURES = RNG.random((80, 2)).astype(np.float32)
BINARY = (FEATURES.sum(axis=1) + RNG.normal(0, 0.3, 80) > 1).astype(int)
XS = np.linspace(-3, 3, 40).astype(np.float32)
TARGETS = 0.5 * XS + 3 + RNG.normal(0, 0.2, 40)


def build(root: Path) -> tuple[ServingApp, Registry, Settings]:
    settings = load_settings(
        {}, model_repository=root / "models", data_dir=root / "var", max_body_bytes=1_500_000,
        max_instances=100, max_line_bytes=20_000, max_evaluation_rows=300,
    )  # fmt: skip
    registry = build_registry(settings)
    registry.sync()
    return create_app(settings, registry), registry, settings


@pytest.fixture(scope="module")
def root(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evaluate")  # its own evaluation history
    shutil.copytree(tiny_template, root / "models")
    (root / "models" / "serving.yaml").write_text(
        "models:\n  regressor:\n    version_policy: all\n    labels: {stable: 1, canary: 2}\n"
    )
    return root


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[Client]:
    app, registry, _ = build(root)
    yield client_for(app)
    registry.stop()


def evaluate(client: Client, url: str, doc: dict[str, Any], status: int = 200) -> dict[str, Any]:
    body = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    response = client.post(url, data=body, content_type="application/json")
    assert response.status_code == status, response.get_json()
    return response.get_json()


def ndjson(instances: Any, labels: Any) -> bytes:
    return b"".join(
        orjson.dumps({"instance": i, "label": y}, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
        for i, y in zip(instances, labels, strict=True)
    )


def near(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9


def test_classifier_figures_equal_sklearn_and_predict(client: Client) -> None:
    predicted = evaluate(client, "/v1/models/digits:predict", {"instances": IMAGES, "top_k": 3})[
        "predictions"
    ]
    # JSON prints float32 outputs by their shortest repr; read back as float32 they are exact
    proba = np.array([p["probabilities"] for p in predicted], np.float32).astype(np.float64)
    ids = np.array([p["class_id"] for p in predicted])
    metrics = [
        "accuracy",
        "top_k_accuracy",
        "roc_auc",
        "roc_auc_ovr_weighted",
        "roc_auc_micro",
        "log_loss",
        "per_class",
        "confusion_matrix",
        "roc_curve",
    ]
    doc = evaluate(
        client,
        "/v1/models/digits:evaluate",
        {"instances": IMAGES, "labels": DIGITS, "metrics": metrics, "top_k": 3, "dataset": "unit-digits"},
    )
    assert {k: doc[k] for k in ("model", "version", "dataset", "task", "sample_count")} == {
        "model": "digits", "version": "1", "dataset": "unit-digits", "task": "classification", "sample_count": 60,
    }  # fmt: skip
    assert doc["duration_seconds"] >= 0
    figures = doc["metrics"]
    assert near(figures["accuracy"], skm.accuracy_score(DIGITS, ids))
    assert near(figures["top_k_accuracy"], skm.top_k_accuracy_score(DIGITS, proba, k=3, labels=range(10)))
    assert near(figures["roc_auc"], skm.roc_auc_score(DIGITS, proba, multi_class="ovr", labels=range(10)))
    assert near(
        figures["roc_auc_ovr_weighted"],
        skm.roc_auc_score(DIGITS, proba, multi_class="ovr", average="weighted", labels=range(10)),
    )
    assert near(figures["roc_auc_micro"], skm.roc_auc_score(np.eye(10)[DIGITS], proba, average="micro"))
    assert near(
        figures["log_loss"], skm.log_loss(DIGITS, proba / proba.sum(axis=1, keepdims=True), labels=range(10))
    )
    assert figures["confusion_matrix"] == skm.confusion_matrix(DIGITS, ids, labels=range(10)).tolist()
    assert figures["per_class"]["3"]["support"] == int((DIGITS == 3).sum())
    fpr, _, _ = skm.roc_curve(DIGITS == 4, proba[:, 4])
    assert figures["roc_curve"]["4"]["fpr"] == fpr.tolist()


def test_binary_figures_at_the_threshold_equal_predict(client: Client) -> None:
    predicted = evaluate(client, "/v1/models/binary:predict", {"instances": FEATURES, "threshold": 0.6})[
        "predictions"
    ]
    probability = np.array([p["probability"] for p in predicted], np.float32).astype(np.float64)
    ids = np.array([p["class_id"] for p in predicted])
    doc = evaluate(
        client, "/v1/models/binary:evaluate", {"instances": FEATURES, "labels": BINARY, "threshold": 0.6}
    )
    figures = doc["metrics"]
    assert figures["threshold"] == 0.6
    assert near(figures["accuracy"], skm.accuracy_score(BINARY, ids))
    assert near(figures["f1"], skm.f1_score(BINARY, ids))
    assert near(figures["roc_auc"], skm.roc_auc_score(BINARY, probability))
    assert near(figures["log_loss"], skm.log_loss(BINARY, probability))
    assert list(figures["per_class"]) == ["negative", "positive"]


def test_regressor_figures_and_label_routing(client: Client) -> None:
    stable = evaluate(client, "/v1/models/regressor/labels/stable:predict", {"instances": XS})["predictions"]
    predictions = np.array(stable, np.float32).astype(np.float64)
    doc = evaluate(client, "/v1/models/regressor/labels/stable:evaluate", {"inputs": XS, "labels": TARGETS})
    assert doc["version"] == "1" and doc["task"] == "regression"
    figures = doc["metrics"]
    assert near(figures["mse"], skm.mean_squared_error(TARGETS, predictions))
    assert near(figures["mae"], skm.mean_absolute_error(TARGETS, predictions))
    assert near(figures["r2"], skm.r2_score(TARGETS, predictions))
    assert near(figures["max_error"], skm.max_error(TARGETS, predictions))


def test_every_form_gives_the_same_figures(client: Client) -> None:
    reference = evaluate(client, "/v1/models/digits:evaluate", {"instances": IMAGES, "labels": DIGITS})[
        "metrics"
    ]
    tensor = {"name": "images", "shape": list(IMAGES.shape), "datatype": "FP32"}
    forms = [
        ("/v2/models/digits/evaluate", {"json": {"inputs": IMAGES, "labels": DIGITS}}),
        (
            "/v2/models/digits/versions/1/evaluate",
            {"json": {"inputs": [{**tensor, "data": IMAGES.ravel()}], "labels": DIGITS}},
        ),
        (
            "/v1/models/digits/versions/1:evaluate",
            {"json": {"inputs": {"images": IMAGES}, "labels": [str(d) for d in DIGITS]}},
        ),
    ]
    header = orjson.dumps(
        {"inputs": [{**tensor, "parameters": {"binary_data_size": IMAGES.nbytes}}], "labels": DIGITS},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    binary = {
        "data": header + IMAGES.tobytes(),
        "headers": {"Inference-Header-Content-Length": str(len(header))},
        "content_type": "application/octet-stream",
    }
    stream = {"data": ndjson(IMAGES, DIGITS), "content_type": "application/x-ndjson"}
    forms += [
        ("/v2/models/digits/evaluate", binary),
        ("/v1/models/digits:evaluate", stream),
        ("/v2/models/digits/evaluate", stream),
    ]
    for url, kwargs in forms:
        if "json" in kwargs:
            kwargs = {
                "data": orjson.dumps(kwargs["json"], option=orjson.OPT_SERIALIZE_NUMPY),
                "content_type": "application/json",
            }
        response = client.post(url, **kwargs)
        assert response.status_code == 200, (url, response.get_json())
        assert response.get_json()["metrics"] == reference, url


def test_streamed_rows_run_in_chunks_and_take_query_options(client: Client) -> None:
    xs = np.tile(XS, 6)[:230]  # more rows than max_instances (100): three chunks
    targets = 0.5 * xs.astype(np.float64) + 3.1
    predictions = np.concatenate(
        [
            evaluate(client, "/v1/models/regressor:predict", {"instances": xs[i : i + 100]})["predictions"]
            for i in (0, 100, 200)
        ]
    ).astype(np.float32)
    url = "/v1/models/regressor:evaluate?dataset=stream-unit&metrics=mse,r2"
    response = client.post(url, data=ndjson(xs, targets), content_type="application/x-ndjson")
    doc = response.get_json()
    assert response.status_code == 200, doc
    assert (
        doc["sample_count"] == 230
        and doc["dataset"] == "stream-unit"
        and set(doc["metrics"]) == {"mse", "r2"}
    )
    assert near(doc["metrics"]["mse"], skm.mean_squared_error(targets, predictions))


IMAGE = np.zeros((28, 28)).tolist()
CASES: list[tuple[str, Any, str, int, str]] = [
    ("/v1/models/digits:evaluate", {"instances": [IMAGE, IMAGE], "labels": [1]}, "", 400, "Got 1 labels for 2 instances"),
    ("/v1/models/digits:evaluate", {"instances": [IMAGE], "labels": [10]}, "", 400, "outside the classes 0..9"),
    ("/v1/models/digits:evaluate", {"instances": [IMAGE], "labels": ["seven"]}, "", 400, "not a class id"),
    ("/v1/models/digits:evaluate", {"instances": [IMAGE], "labels": 3}, "", 400, "must be a list"),
    ("/v1/models/digits:evaluate", {"instances": [IMAGE]}, "", 400, "needs 'labels'"),
    ("/v1/models/regressor:evaluate", {"instances": [1.0], "labels": ["a"]}, "", 400, "not a finite number"),
    ("/v1/models/regressor:evaluate", {"instances": [1.0], "labels": [1.0], "metrics": ["accuracy"]}, "", 422, "do not apply to a regression model"),
    ("/v1/models/binary:evaluate", {"instances": [[0, 1]], "labels": [1], "metrics": ["top_k_accuracy"]}, "", 422, "top_k_accuracy"),
    ("/v1/models/regressor:evaluate", {"instances": [1.0], "labels": [1.0], "metrics": []}, "", 400, "names no metric"),
    ("/v1/models/regressor:evaluate", {"instances": [1.0], "labels": [1.0], "metrics": [1]}, "", 400, "list of metric names"),
    ("/v1/models/regressor:evaluate", {"instances": [1.0], "labels": [1.0], "top_k": 2}, "", 400, "top_k applies to classifiers"),
    ("/v1/models/regressor:evaluate", {"instances": [1.0], "labels": [1.0], "dataset": "a b"}, "", 400, "'dataset' must be a name"),
    ("/v1/models/regressor:evaluate", {"instances": [1.0], "labels": [1.0], "extra": 1}, "", 400, "'extra'"),
    ("/v1/models/ghost:evaluate", {"instances": [1.0], "labels": [1.0]}, "", 404, "'ghost'"),
    ("/v2/models/regressor/evaluate", {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}], "labels": [1, 2]}, "", 400, "Got 2 labels for 1"),
    ("/v1/models/regressor:evaluate", b'{"instance": 1, "label": 1}\n{"instance": [1], "label": 1}\n', "", 400, "Line 2: Input 'x' must have shape"),
    ("/v1/models/regressor:evaluate", b'{"instance": 1, "label": 1}\n{"instance": 1, "label": "x"}\n', "", 400, "Regression label 'x' on line 2"),
    ("/v1/models/digits:evaluate", b'{"instance": ' + json.dumps(IMAGE).encode() + b', "label": 12}\n', "", 400, "Label 12 on line 1"),
    ("/v1/models/regressor:evaluate", b"{oops\n", "", 400, "Line 1 is not valid JSON"),
    ("/v1/models/regressor:evaluate", b"\n\n", "", 400, "zero instances"),
    ("/v1/models/regressor:evaluate", b'{"instance": 1, "label": 1}' + b" " * 20_000 + b"\n", "", 413, "Line 1 is longer than the limit of 20000 bytes"),
    ("/v1/models/regressor:evaluate", b'{"instance": 1, "label": 1}\n' * 301, "", 413, "more than 300 rows"),
    ("/v1/models/regressor:evaluate", b'{"instance": 1, "label": 1}\n', "?metric=mse", 400, "Unknown query parameter(s) ['metric']"),
    ("/v1/models/binary:evaluate", b'{"instance": [1, 1], "label": 1}\n', "?threshold=high", 400, "threshold='high' is not a number"),
    ("/v1/models/binary:evaluate", b'{"instance": [1, 1], "label": 1}\n', "?metrics=mse", 422, "do not apply to a binary model"),
    ("/v1/models/regressor:evaluate", {"instances": [1.0] * 200_000, "labels": [1.0] * 200_000}, "", 413, "exceeds"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "body", "query", "status", "fragment"), CASES)
def test_bad_evaluations(client: Client, url: str, body: Any, query: str, status: int, fragment: str) -> None:
    if isinstance(body, bytes):
        response = client.post(url + query, data=body, content_type="application/x-ndjson")
    else:
        response = client.post(url + query, json=body)
    assert response.status_code == status, response.get_json()
    assert fragment in response.get_json()["error"]


def test_evaluations_become_gauges(client: Client) -> None:
    evaluate(
        client,
        "/v1/models/binary:evaluate",
        {"instances": FEATURES, "labels": BINARY, "dataset": "gauge-unit"},
    )
    text = client.get("/metrics").get_data(as_text=True)
    for metric in ("roc_auc", "accuracy", "log_loss", "sample_count"):
        assert (
            f'serving_model_evaluation{{dataset="gauge-unit",metric="{metric}",model="binary",version="1"}}'
            in text
        )
    assert 'endpoint="evaluate"' in text


def test_history_filters_and_survives_a_new_app(client: Client, root: Path) -> None:
    for version, dataset in (("1", "hist-a"), ("2", "hist-a"), ("2", "hist-b")):
        evaluate(
            client,
            f"/v1/models/regressor/versions/{version}:evaluate",
            {"instances": XS, "labels": TARGETS, "dataset": dataset},
        )
    every = client.get("/v1/models/regressor/evaluations").get_json()["evaluations"]
    assert [(r["version"], r["dataset"]) for r in every[:3]] == [
        ("2", "hist-b"),
        ("2", "hist-a"),
        ("1", "hist-a"),
    ]
    assert "evaluated_at" in every[0] and "roc_curve" not in every[0]["metrics"]
    by_query = client.get("/v1/models/regressor/evaluations?version=2&dataset=hist-a").get_json()[
        "evaluations"
    ]
    assert [(r["version"], r["dataset"]) for r in by_query] == [("2", "hist-a")]
    assert len(client.get("/v1/models/regressor/evaluations?limit=1").get_json()["evaluations"]) == 1
    by_label = client.get("/v1/models/regressor/labels/canary/evaluations").get_json()["evaluations"]
    assert {r["version"] for r in by_label} == {"2"}
    app, registry, _ = build(root)  # a restart: a new app over the same data_dir
    try:
        again = client_for(app).get("/v1/models/regressor/evaluations").get_json()["evaluations"]
    finally:
        registry.stop()
    assert again[:3] == every[:3]


@pytest.mark.parametrize(
    ("url", "status", "fragment"),
    [
        ("/v1/models/ghost/evaluations", 404, "no evaluation history"),
        ("/v1/models/regressor/evaluations?limit=0", 400, "'limit'"),
        ("/v1/models/regressor/evaluations?model=x", 400, "Unknown query parameter"),
    ],
)
def test_bad_history_requests(client: Client, url: str, status: int, fragment: str) -> None:
    response = client.get(url)
    assert response.status_code == status and fragment in response.get_json()["error"]


@pytest.mark.parametrize("extreme", [1e308, -1e308])
def test_figures_that_overflow_are_refused_before_anything_is_stored(client: Client, extreme: float) -> None:
    labels = [extreme, -extreme] * 20
    before = client.get("/v1/models/regressor/evaluations?dataset=overflow").get_json()["evaluations"]
    answer = evaluate(
        client,
        "/v1/models/regressor:evaluate",
        {"instances": XS, "labels": labels, "dataset": "overflow"},
        400,
    )
    assert "non-finite figures (mse=inf" in answer["error"] and "Nothing was recorded" in answer["error"]
    after = client.get("/v1/models/regressor/evaluations?dataset=overflow").get_json()["evaluations"]
    assert after == before == []
    assert 'dataset="overflow"' not in client.get("/metrics").get_data(as_text=True)


def test_dataset_label_values_per_model_are_bounded(tiny_template: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_template, tmp_path / "models")
    settings = load_settings(
        {}, model_repository=tmp_path / "models", data_dir=tmp_path / "var", max_datasets=3
    )
    registry = build_registry(settings)
    registry.sync()
    try:
        client = client_for(create_app(settings, registry))
        for i in range(8):
            evaluate(
                client,
                "/v1/models/binary:evaluate",
                {"instances": FEATURES, "labels": BINARY, "dataset": f"set-{i}"},
            )
        text = client.get("/metrics").get_data(as_text=True)
        history = client.get("/v1/models/binary/evaluations").get_json()["evaluations"]
    finally:
        registry.stop()
    labelled = {
        line.split('dataset="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("serving_model_evaluation{")
    }
    # (the in-process registry is shared with this module's other tests: only these names matter)
    assert {name for name in labelled if name.startswith("set-") or name == "_other"} == {
        "set-0",
        "set-1",
        "set-2",
        "_other",
    }
    assert [r["dataset"] for r in history] == [
        f"set-{i}" for i in range(7, -1, -1)
    ]  # the history keeps every name
