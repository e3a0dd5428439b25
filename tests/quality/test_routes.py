"""Feedback, live quality, gates and shadow traffic through the app gunicorn runs (in-process, tiny models)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from werkzeug.test import Client

from service.config import load_settings
from service.http.asgi import ServingApp, create_app
from service.models.loading import build_registry
from service.models.repository import Repository
from tests.fixtures.tiny_models import export
from tests.http.client import client_for

RNG = np.random.default_rng(14)
IMAGES = RNG.random((40, 28, 28)).astype(np.float32)
DIGITS = RNG.integers(0, 10, 40)
XS = np.linspace(-2, 2, 30).astype(np.float32)
CONFIG = """
models:
  digits:
    version_policy: all
    feedback: {keep: 1000, ttl_s: 3600}
    shadow: {fraction: 1.0, candidate: {version: 2}}
  regressor:
    version_policy: {latest: 2}
    feedback: {}
    gate: {reference: reference.jsonl, require: {mae: "<= 0.5"}}
    shadow: {fraction: 1.0, tolerance: 0.01}
"""


def post(client: Client, url: str, doc: Any, headers: dict[str, str] | None = None) -> Any:
    body = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    answer = client.post(url, data=body, content_type="application/json", headers=headers or {})
    answer.get_data()  # read to the end: the app's after-the-answer work runs before the bridge closes
    return answer


@pytest.fixture(scope="module")
def app(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServingApp]:
    root = tmp_path_factory.mktemp("quality")
    shutil.copytree(tiny_template, root / "models")
    export(Repository(root / "models"), "digits", "digits")  # v2: the same weights, a shadow candidate
    (root / "models" / "serving.yaml").write_text(CONFIG)
    # regressor v1 is y = 0.5x + 2 and v2 is 0.5x + 3: this reference set passes v1 only.
    lines = [orjson.dumps({"instance": float(x), "label": float(0.5 * x + 2)}) for x in XS]
    (root / "models" / "reference.jsonl").write_bytes(b"\n".join(lines))
    settings = load_settings(
        {}, model_repository=root / "models", data_dir=root / "var", poll_interval=0.2, quality_interval=0.2
    )
    registry = build_registry(settings)
    registry.sync()
    app = create_app(settings, registry)
    yield app
    app.close_extras()
    registry.stop()


@pytest.fixture(scope="module")
def client(app: ServingApp) -> Client:
    return client_for(app)


def test_every_answer_names_its_request(client: Client) -> None:
    mine = post(client, "/v1/models/digits:predict", {"instances": IMAGES[:1]}, {"X-Request-Id": "abc-1"})
    assert mine.status_code == 200 and mine.headers["X-Request-Id"] == "abc-1"
    made = post(client, "/v1/models/digits:predict", {"instances": IMAGES[:1]}, {"X-Request-Id": "bad id"})
    assert made.headers["X-Request-Id"] not in ("", "bad id")
    error = post(client, "/v1/models/nothing:predict", {"instances": [1.0]})
    assert error.status_code == 404 and error.headers["X-Request-Id"]
    v2 = post(
        client,
        "/v2/models/digits/infer",
        {
            "id": "mine",
            "inputs": [
                {
                    "name": "images",
                    "shape": [1, 28, 28],
                    "datatype": "FP32",
                    "data": IMAGES[0].ravel().tolist(),
                }
            ],
        },
    )
    assert v2.json["id"] == "mine" and v2.headers["X-Request-Id"]  # the V2 id is echoed as before


def test_live_quality_equals_evaluate_on_the_same_instances(client: Client) -> None:
    ids = []
    for image in IMAGES:  # one request per image, as live traffic comes
        answer = post(client, "/v1/models/digits/versions/1:predict", {"instances": image[None]})
        assert answer.status_code == 200
        ids.append(answer.headers["X-Request-Id"])
    feedback = [{"id": rid, "labels": [int(d)]} for rid, d in zip(ids, DIGITS, strict=True)]
    result = post(client, "/v1/models/digits:feedback", {"feedback": feedback}).json
    assert result["labelled"] == len(IMAGES) and result["unknown"] == [] == result["rejected"]

    live = client.get("/v1/models/digits/versions/1/quality").json["versions"][0]
    evaluated = post(
        client, "/v1/models/digits/versions/1:evaluate", {"instances": IMAGES, "labels": DIGITS}
    ).json
    assert live["quality"]["sample_count"] == len(IMAGES) == evaluated["sample_count"]
    assert live["quality"]["metrics"] == evaluated["metrics"]  # exactly: same scores, same code
    assert set(live["quality"]["metrics"]) >= {"accuracy", "roc_auc", "log_loss", "ece"}


def test_feedback_reports_what_it_could_not_join(client: Client) -> None:
    answer = post(client, "/v1/models/digits/versions/1:predict", {"instances": IMAGES[:2]})
    rid = answer.headers["X-Request-Id"]
    body = {"feedback": [{"id": "never-seen", "labels": [1]}, {"id": rid, "labels": [1]}]}
    result = post(client, "/v2/models/digits/feedback", body).json
    assert result["unknown"] == ["never-seen"] and result["labelled"] == 0
    assert "2 instances" in result["rejected"][0]["error"]
    labels = post(client, "/v1/models/digits:feedback", {"feedback": [{"id": rid, "labels": [11, "3"]}]}).json
    assert "outside the classes" in labels["rejected"][0]["error"]


@pytest.mark.parametrize(
    ("url", "body", "status"),
    [
        ("/v1/models/binary:feedback", {"feedback": [{"id": "x", "labels": [1]}]}, 404),
        ("/v1/models/nothing:feedback", {"feedback": [{"id": "x", "labels": [1]}]}, 404),
        ("/v1/models/digits:feedback", {"labels": [1]}, 400),
        ("/v1/models/digits:feedback", [1, 2], 400),
    ],
)
def test_feedback_errors_are_json(client: Client, url: str, body: Any, status: int) -> None:
    answer = post(client, url, body)
    assert answer.status_code == status and answer.json["error"]


def test_quality_of_an_unwatched_model_is_a_404(client: Client) -> None:
    answer = client.get("/v1/models/binary/quality")
    assert answer.status_code == 404 and "feedback" in answer.json["error"]
    assert client.get("/v1/models/digits/quality?window=0").status_code == 400


def test_a_version_failing_its_gate_never_gets_the_label(client: Client) -> None:
    status = client.get("/v1/models/regressor").json["model_version_status"]
    gates = {entry["version"]: entry["gate"] for entry in status}
    assert gates["1"]["passed"] is True and gates["1"]["figures"]["mae"] < 1e-6
    assert gates["2"]["passed"] is False and "mae = 1, required mae <= 0.5" in gates["2"]["reasons"][0]
    assert client.get("/v1/models/regressor/labels/stable").json["model_version_status"][0]["version"] == "1"
    # Unnamed requests follow the gated label; v2 stays reachable by its number.
    assert post(client, "/v1/models/regressor:predict", {"instances": [2.0]}).json == {"predictions": [3.0]}
    assert post(client, "/v1/models/regressor/versions/2:predict", {"instances": [2.0]}).json == {
        "predictions": [4.0]
    }


def wait_for(client: Client, url: str, done: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        doc = client.get(url).json
        if done(doc) or time.monotonic() > deadline:
            return doc


def test_shadow_runs_on_the_candidate_and_tallies_agreement(client: Client) -> None:
    for image in IMAGES[:10]:
        assert (
            post(client, "/v1/models/digits/versions/1:predict", {"instances": image[None]}).status_code
            == 200
        )
    doc = wait_for(
        client, "/v1/models/digits/shadow", lambda d: d["pairs"] and d["pairs"][0]["compared"] >= 10
    )
    (pair,) = doc["pairs"]
    assert (pair["version"], pair["candidate"], pair["agreement"]) == ("1", "2", 1.0)  # identical weights
    matrix = np.array(pair["matrix"])
    assert matrix.trace() == matrix.sum() == pair["compared"]

    def compared(doc: dict[str, Any]) -> int:  # of the pair (v1 live, v2 candidate)
        return sum(p["compared"] for p in doc["pairs"] if p["version"] == "1")

    before = compared(client.get("/v1/models/regressor/shadow").json)  # earlier tests' requests count too
    for x in XS[:5]:  # regressor: live v1 (the gated label), candidate the newest other one, v2
        post(client, "/v1/models/regressor:predict", {"instances": [float(x)]})
    doc = wait_for(client, "/v1/models/regressor/shadow", lambda d: compared(d) >= before + 5)
    (pair,) = [p for p in doc["pairs"] if p["version"] == "1"]
    assert (pair["candidate"], pair["compared"]) == ("2", before + 5)
    assert pair["agreed"] == 0 and pair["agreement"] == 0.0 and pair["matrix"] == []  # v2 answers 1.0 higher


def test_gauges_follow_the_store(client: Client) -> None:
    """The refresher thread (every 0.2 s here) publishes what the store holds."""
    expected = (
        'serving_model_live_quality{metric="accuracy",model="digits",version="1"}',
        'serving_shadow_agreement_ratio{candidate="2",model="digits",version="1"} 1.0',
        'serving_model_gate_passed{model="regressor",version="2"} 0.0',
        'serving_batch_queue_wait_seconds_count{model="digits",version="1"}',
    )
    deadline = time.monotonic() + 10
    while (missing := [line for line in expected if line not in client.get("/metrics").data.decode()]) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert missing == []
