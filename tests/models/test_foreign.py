"""Any SavedModel: served from its signature without a card, warm-up records replayed, damage reported."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service import metrics
from service.models.registry import Registry
from service.models.warmup import WarmupError, predict_inputs, tfrecords
from tests.fixtures.foreign import classify_log, predict_log, save_plain, write_warmup
from tests.http.client import client_for


@pytest.fixture
def registry_for(make_settings: Callable[..., Any]) -> Any:
    from service.models.loading import build_registry

    made: list[Registry] = []

    def make(root: Path, config: str | None = None) -> Registry:
        if config is not None:
            (root / "serving.yaml").write_text(config)
        registry = build_registry(make_settings(root))
        registry.sync()
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.stop()


def test_a_plain_tf_module_export_is_served_raw_from_its_signature(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    save_plain(tiny_repo, "scaler")
    registry = registry_for(tiny_repo)
    assert registry.status("scaler")[0].state == "AVAILABLE" and registry.not_ready() == []
    with registry.acquire("scaler") as servable:
        assert servable.card is not None and servable.card.task == "raw"
        assert [(s.name, s.dtype, s.shape) for s in servable.card.inputs] == [
            ("features", "float32", (-1, 4))
        ]
        outputs = servable.predict({"features": np.array([[1, 1, 1, 1], [0, 0, 0, 0]], np.float32)})
    assert outputs["score"].tolist() == [11.0, -1.0] and outputs["doubled"].shape == (2, 4)


def test_a_card_less_copy_of_a_classifier_is_raw_until_serving_yaml_names_its_task(
    tiny_repo: Path, registry_for: Callable[..., Registry], make_settings: Callable[..., Any]
) -> None:
    from service.http.asgi import create_app

    copy = tiny_repo / "digits_copy" / "1"
    shutil.copytree(tiny_repo / "digits" / "1", copy)
    (copy / "assets.extra" / "model_card.json").unlink()
    image = {"instances": [[[0.0] * 28] * 28]}
    raw = client_for(create_app(make_settings(tiny_repo), registry_for(tiny_repo)))
    prediction = raw.post("/v1/models/digits_copy:predict", json=image).get_json()["predictions"][0]
    assert sorted(prediction) == ["class_id", "probabilities"]  # no label: nothing derived
    assert raw.post("/v1/models/digits_copy:classify", json={"examples": [{}]}).status_code == 400
    evaluation = raw.post("/v1/models/digits_copy:evaluate", json={**image, "labels": [0]})
    assert evaluation.status_code == 422 and "serving.yaml" in evaluation.get_json()["error"]
    config = (
        "models:\n  digits_copy:\n    task: classification\n    class_labels: ["
        + ", ".join(f"d{i}" for i in range(10))
        + "]\n"
    )
    named = client_for(create_app(make_settings(tiny_repo), registry_for(tiny_repo, config)))
    prediction = named.post("/v1/models/digits_copy:predict", json={**image, "top_k": 2}).get_json()[
        "predictions"
    ][0]
    assert prediction["label"].startswith("d") and len(prediction["top_k_labels"]) == 2
    assert named.post("/v1/models/digits_copy:evaluate", json={**image, "labels": ["d3"]}).status_code == 200


def test_a_task_the_signature_cannot_serve_is_a_load_error(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    save_plain(tiny_repo, "scaler")
    registry = registry_for(tiny_repo, "models:\n  scaler:\n    task: classification\n")
    status = registry.status("scaler")[0]
    assert status.state == "END" and "needs an output 'probabilities'" in (status.error or "")


def test_warmup_records_are_replayed_before_available(
    tiny_repo: Path, registry_for: Callable[..., Registry], caplog: pytest.LogCaptureFixture
) -> None:
    path = save_plain(tiny_repo, "scaler")
    good = np.ones((3, 4), np.float32)
    write_warmup(path, [predict_log({"features": good}), classify_log(), predict_log({"features": good[:1]})])
    with caplog.at_level(logging.INFO, logger="service.models.loading"):
        registry = registry_for(tiny_repo)
    assert registry.status("scaler")[0].state == "AVAILABLE"
    assert "replayed 2 warm-up request(s); skipped 1" in caplog.text


def test_a_warmup_record_the_model_cannot_run_fails_the_load(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    path = save_plain(tiny_repo, "scaler")
    write_warmup(path, [predict_log({"features": np.ones((2, 5), np.float32)})])  # 5 columns, not 4
    status = registry_for(tiny_repo).status("scaler")[0]
    assert status.state == "END" and "Warm-up of 'scaler' version 1 failed" in (status.error or "")
    path = save_plain(tiny_repo, "named", 1)
    write_warmup(path, [predict_log({"images": np.ones((1, 4), np.float32)})])
    status = registry_for(tiny_repo).status("named")[0]
    assert status.state == "END" and "gives inputs ['images']" in (status.error or "")


def test_the_tfrecord_reader_checks_its_framing(tmp_path: Path) -> None:
    path = write_warmup(tmp_path, [predict_log({"x": np.zeros(2, np.float32)})])
    data = path.read_bytes()
    (record,) = tfrecords(data)
    assert set(predict_inputs(record) or {}) == {"x"}
    for damaged in (data[:-1], data[:5], data[:20] + bytes([data[20] ^ 1]) + data[21:]):
        with pytest.raises(WarmupError):
            list(tfrecords(damaged))


def test_a_live_version_damaged_on_disk_is_reported_and_keeps_serving(
    tiny_repo: Path, registry_for: Callable[..., Registry]
) -> None:
    registry = registry_for(tiny_repo)
    pb = tiny_repo / "binary" / "1" / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[: pb.stat().st_size // 2])  # truncated in place
    registry.sync()
    status = registry.status("binary")[0]
    assert status.state == "AVAILABLE" and status.error_code == "DATA_LOSS"
    assert "damaged" in (status.error or "") and "keeps serving" in (status.error or "")
    assert metrics.VERSION_DAMAGED.labels("binary", "1")._value.get() == 1
    with registry.acquire("binary") as servable:
        assert servable.predict({"features": np.array([[1.0, 1.0]], np.float32)})["probability"].shape == (1,)
    assert registry.not_ready() == []
