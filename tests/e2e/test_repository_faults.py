"""Over real gunicorn: a broken export and a card-less one dropped beside good models, and a live
version damaged on disk. The server stays ready, serves what loads and reports the rest."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from service.models.repository import Repository
from tests.fixtures.foreign import save_plain
from tests.fixtures.tiny_models import corrupt_version
from tests.server import Server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("faults")
    shutil.copytree(tiny_template, root / "models")
    corrupt_version(Repository(root / "models"), "broken")
    save_plain(root / "models", "scaler")
    with Server(root / "models", root / "server.log", DATA_DIR=root / "var") as running:
        yield running


def test_broken_and_card_less_models_beside_good_ones(server: Server) -> None:
    assert requests.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
    broken = requests.get(f"{server.url}/v1/models/broken", timeout=5).json()["model_version_status"][0]
    assert broken["state"] == "END" and broken["status"]["error_message"]
    answer = requests.post(
        f"{server.url}/v1/models/scaler:predict", json={"instances": [[1, 1, 1, 1]]}, timeout=5
    )
    assert answer.json() == {"predictions": [{"score": 11.0, "doubled": [2.0, 2.0, 2.0, 2.0]}]}
    metadata = requests.get(f"{server.url}/v2/models/scaler", timeout=5).json()
    assert [i["name"] for i in metadata["inputs"]] == ["features"]
    assert "serving_models_unavailable 1.0" in requests.get(f"{server.url}/metrics", timeout=5).text


def test_a_live_version_truncated_on_disk_is_reported_and_keeps_serving(server: Server) -> None:
    pb = Path(server.env["MODEL_REPOSITORY"]) / "binary" / "1" / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:100])
    deadline = time.monotonic() + 10
    status: dict = {}
    while time.monotonic() < deadline:
        status = requests.get(f"{server.url}/v1/models/binary", timeout=5).json()["model_version_status"][0]
        if status["status"]["error_code"] == "DATA_LOSS":
            break
        time.sleep(0.2)
    assert status["state"] == "AVAILABLE" and status["status"]["error_code"] == "DATA_LOSS", status
    answer = requests.post(
        f"{server.url}/v1/models/binary:predict", json={"instances": [[1.0, 1.0]]}, timeout=5
    )
    assert answer.status_code == 200
    assert (
        'serving_model_version_damaged{model="binary",version="1"} 1.0'
        in requests.get(f"{server.url}/metrics", timeout=5).text
    )
    assert requests.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
