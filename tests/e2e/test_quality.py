"""Issue 14's acceptance check, over the real gunicorn server and the committed MNIST models.

With predictions remembered for ``mnist``: held-out digits are sent with request ids and their
true labels fed back; the live accuracy and AUC equal those computed from the responses; the PSI
gauges move after shifted inputs; a version that fails its gate never gets the label; a trace is
exported for one request, with its spans, to an OTLP/HTTP receiver on loopback.
"""

from __future__ import annotations

import itertools
import json
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from sklearn import metrics as skm

from service.datafiles import find_idx_sets, heldout_split, read_idx_set
from tests.e2e.otlp import Receiver
from tests.server import ROOT, Server

pytestmark = pytest.mark.e2e
SENT = 300  # held-out digits sent one request each
CONFIG = """
models:
  mnist:
    version_policy: all
    feedback: {keep: 100000, ttl_s: 86400, drift_window: 300}
    gate:
      label: stable
      reference: card
      require: {accuracy: ">= 0.92"}
      versus_label: {log_loss: 0.01}
    shadow: {fraction: 0.5}
"""


@pytest.fixture(scope="module")
def heldout(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The committed mnist card's held-out split, cut as training cut it (seed 42, 1,500 images)."""
    card = json.loads((ROOT / "models" / "mnist" / "1" / "assets.extra" / "model_card.json").read_text())
    if not find_idx_sets(mnist_dir):
        pytest.skip(f"no MNIST IDX files in {mnist_dir}")
    whole = read_idx_set(*next(iter(find_idx_sets(mnist_dir).values())))
    _, held = heldout_split(len(whole.labels), card["data"]["split"]["test"], card["data"]["seed"])
    return whole.images[held].astype(np.float32) / np.float32(255.0), whole.labels[held]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path, receiver: Receiver) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("quality")
    models = root / "models"
    # Version 1 only: the committed mnist/2 would take the place of the worse version below.
    shutil.copytree(ROOT / "models" / "mnist" / "1", models / "mnist" / "1")
    # Version 2: the committed 784-16-16-10 MLP (held-out accuracy 0.898) as a worse mnist.
    shutil.copytree(ROOT / "models" / "mnist_3b1b" / "1", models / "mnist" / "2")
    card_path = models / "mnist" / "2" / "assets.extra" / "model_card.json"
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps({**card, "name": "mnist", "version": 2}))
    (models / "serving.yaml").write_text(CONFIG)
    env = {
        "MNIST_DIR": mnist_dir, "DATA_DIR": root / "var", "QUALITY_INTERVAL": "0.5",
        "LOG_FORMAT": "json", "ACCESS_LOG": root / "access.log",
        "OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200", "OTEL_SERVICE_NAME": "model-serving-e2e",
    }  # fmt: skip
    with Server(models, root / "server.log", **env) as running:
        yield running


def predict(server: Server, image: np.ndarray, request_id: str, **headers: str) -> requests.Response:
    body = {"instances": image[None].tolist()}
    answer = requests.post(
        f"{server.url}/v1/models/mnist:predict", json=body, headers={"X-Request-Id": request_id, **headers}
    )
    assert answer.status_code == 200, answer.text
    return answer


def gauge(server: Server, name: str, **labels: str) -> float | None:
    text = requests.get(f"{server.url}/metrics").text
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return result


def test_a_version_failing_its_gate_never_gets_the_label(server: Server) -> None:
    status = requests.get(f"{server.url}/v1/models/mnist").json()["model_version_status"]
    gates = {entry["version"]: entry["gate"] for entry in status}
    assert gates["1"]["passed"] and gates["1"]["figures"]["accuracy"] >= 0.92
    assert not gates["2"]["passed"] and "required accuracy >= 0.92" in " ".join(gates["2"]["reasons"])
    stable = requests.get(f"{server.url}/v1/models/mnist/labels/stable").json()["model_version_status"]
    assert [entry["version"] for entry in stable] == ["1"]
    # Unnamed requests follow the label, in both protocols; the verdicts are in the history.
    infer = {"inputs": [{"name": "images", "shape": [1, 28, 28], "datatype": "FP32", "data": [0.0] * 784}]}
    assert requests.post(f"{server.url}/v2/models/mnist/infer", json=infer).json()["model_version"] == "1"
    history = requests.get(f"{server.url}/v1/models/mnist/evaluations?dataset=gate").json()["evaluations"]
    assert {(r["version"], r["gate"]["passed"]) for r in history} == {("1", True), ("2", False)}
    assert len(history) == 2  # judged once, by one of the two workers


def test_live_accuracy_and_auc_equal_those_from_the_responses(
    server: Server, heldout: tuple[np.ndarray, np.ndarray]
) -> None:
    images, labels = heldout[0][:SENT], heldout[1][:SENT]
    ids = [f"digit-{i}-{secrets.token_hex(4)}" for i in range(SENT)]
    answered = [predict(server, image, rid) for image, rid in zip(images, ids, strict=True)]
    assert [a.headers["X-Request-Id"] for a in answered] == ids
    # JSON prints float32 by its shortest repr: read back as float32 the scores are exact.
    proba = np.array([a.json()["predictions"][0]["probabilities"] for a in answered], np.float32)
    feedback = {"feedback": [{"id": rid, "labels": [int(y)]} for rid, y in zip(ids, labels, strict=True)]}
    fed = requests.post(f"{server.url}/v1/models/mnist:feedback", json=feedback).json()
    assert (fed["labelled"], fed["unknown"], fed["expired"], fed["rejected"]) == (SENT, [], [], [])

    live = requests.get(f"{server.url}/v1/models/mnist/versions/1/quality").json()["versions"][0]
    figures = live["quality"]["metrics"]
    p64 = proba.astype(np.float64)
    assert live["quality"]["sample_count"] == SENT
    assert figures["accuracy"] == skm.accuracy_score(labels, p64.argmax(axis=1))
    assert figures["roc_auc"] == pytest.approx(
        skm.roc_auc_score(labels, p64, multi_class="ovr", average="macro"), abs=1e-12
    )

    # The same figures as Prometheus gauges, refreshed by one of the workers every QUALITY_INTERVAL:
    # a refresh may land while the labels are still being joined (the feedback call commits the
    # ids its own worker answered first), so wait for the refresh after the last of them.
    def live_gauge() -> float | None:
        return gauge(server, "serving_model_live_quality", model="mnist", version="1", metric="accuracy")

    eventually(lambda: live_gauge() == pytest.approx(figures["accuracy"], abs=1e-12))
    assert live_gauge() == pytest.approx(figures["accuracy"], abs=1e-12)
    # Beside them the card's held-out figure, which the live-accuracy alert compares with.
    card = json.loads((ROOT / "models" / "mnist" / "1" / "assets.extra" / "model_card.json").read_text())
    held_out = gauge(
        server, "serving_model_evaluation", model="mnist", version="1", dataset="card", metric="accuracy"
    )
    assert held_out == pytest.approx(card["metrics"]["accuracy"], abs=1e-12)


def test_psi_gauges_move_after_shifted_inputs(server: Server, heldout: tuple[np.ndarray, np.ndarray]) -> None:
    drift = requests.get(f"{server.url}/v1/models/mnist/versions/1/quality").json()["versions"][0]["drift"]
    assert drift["sample_count"] >= SENT and max(drift["psi"].values()) < 0.1  # held-out digits: stable
    rng = np.random.default_rng(0)
    for i, image in enumerate(heldout[0][SENT : 2 * SENT]):  # washed-out, noisy digits
        shifted = np.clip(0.35 * image + rng.uniform(0, 0.35, image.shape), 0, 1).astype(np.float32)
        predict(server, shifted, f"shifted-{i}")

    def moved() -> float | None:
        value = gauge(server, "serving_model_drift_psi", model="mnist", version="1", signal="confidence")
        return value if value is not None and value > 0.25 else None

    assert eventually(moved)
    assert gauge(server, "serving_model_drift_psi", model="mnist", version="1", signal="entropy") > 0.25


def test_one_request_s_trace_is_exported_with_its_spans(
    server: Server, receiver: Receiver, heldout: tuple[np.ndarray, np.ndarray]
) -> None:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    predict(server, heldout[0][0], "traced-1", traceparent=f"00-{trace_id}-{parent}-01")
    spans = eventually(lambda: len(receiver.trace(trace_id)) >= 5 and receiver.trace(trace_id))
    assert spans, "no spans exported for the request"
    (root,) = [s for s in spans if s["parent_span_id"] == parent]
    assert root["name"] == "POST /v1/models/<segment:name>:predict" and root["service"] == "model-serving-e2e"
    assert root["attributes"]["request.id"] == "traced-1" and root["attributes"]["model.version"] == "1"
    children = {s["name"]: s for s in spans if s["parent_span_id"] == root["span_id"]}
    assert set(children) == {"decode", "queue wait", "model call", "encode"}
    order = [children[name] for name in ("decode", "queue wait", "model call", "encode")]
    # In sequence, within 1 us: the marks are read from two clocks converted to Unix time.
    assert all(a["end"] <= b["start"] + 1000 for a, b in itertools.pairwise(order))
    assert root["start"] <= order[0]["start"] and order[-1]["end"] <= root["end"]


def test_access_log_lines_are_json_with_the_request_s_identity(server: Server) -> None:
    log = Path(server.env["ACCESS_LOG"])

    def line() -> dict[str, Any] | None:
        for text in log.read_text().splitlines() if log.exists() else []:
            doc = json.loads(text)
            if doc.get("request_id") == "traced-1":
                return doc
        return None

    doc = eventually(line)
    assert doc is not None
    assert {k: doc[k] for k in ("method", "status", "model", "version", "instances")} == {
        "method": "POST", "status": 200, "model": "mnist", "version": "1", "instances": 1,
    }  # fmt: skip
    assert doc["batch_size"] >= 1 and doc["duration_ms"] > 0 and doc["path"] == "/v1/models/mnist:predict"
    app_lines = [json.loads(t) for t in Path(server.log_path).read_text().splitlines() if t.startswith("{")]
    assert any("gate" in entry["message"] for entry in app_lines)  # the app log is JSON too


def test_shadow_traffic_compares_the_candidate(server: Server) -> None:
    doc = eventually(
        lambda: (d := requests.get(f"{server.url}/v1/models/mnist/shadow").json())["pairs"] and d
    )
    (pair,) = doc["pairs"]
    assert (pair["version"], pair["candidate"]) == ("1", "2") and pair["compared"] > 0
    matrix = np.array(pair["matrix"])
    assert matrix.sum() == pair["compared"] and matrix.trace() == pair["agreed"]
    assert 0.5 < pair["agreement"] < 1.0  # two different MLPs mostly agree on digits
