"""Hot reload over real gunicorn while clients keep sending requests: no request may fail."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from service.models.repository import Repository
from tests.fixtures.tiny_models import corrupt_version, export
from tests.server import Server

pytestmark = pytest.mark.e2e


def _served_offset(server: Server, session: requests.Session) -> float:
    response = session.post(
        f"{server.url}/v1/models/regressor:predict", json={"instances": [0.0]}, timeout=10
    )
    response.raise_for_status()
    return float(response.json()["predictions"][0])


def _wait_for(server: Server, offset: float, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    with requests.Session() as session:
        while time.monotonic() < deadline:
            # every worker must have switched: ask several times in a row
            if all(_served_offset(server, session) == offset for _ in range(10)):
                return
            time.sleep(0.05)
    raise AssertionError(f"offset {offset} not served after {timeout}s")


def test_new_and_corrupt_versions_while_clients_loop(server: Server, server_repo: Path) -> None:
    repo = Repository(server_repo)
    results: Counter[float] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                try:
                    results[_served_offset(server, session)] += 1
                except requests.RequestException as exc:
                    failures.append(repr(exc))

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    try:
        time.sleep(0.5)
        new = export(repo, "regressor", "regressor", offset=42.0)
        _wait_for(server, 42.0)
        bad = corrupt_version(repo, "regressor")
        time.sleep(1.5)  # several poll intervals: the corrupt version must not take over
        assert _served_offset(server, requests.Session()) == 42.0
    finally:
        stop.set()
        for thread in clients:
            thread.join()

    assert failures == []
    assert results[3.0] > 0 and results[42.0] > 0  # v2 (offset 3) before, the new version after
    statuses = {
        s["version"]: s
        for s in requests.get(f"{server.url}/v1/models/regressor", timeout=5).json()["model_version_status"]
    }
    assert statuses[str(new)]["state"] == "AVAILABLE"
    assert statuses[str(bad)]["state"] == "END"
    assert "Cannot load the SavedModel" in statuses[str(bad)]["status"]["error_message"]
    assert requests.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 200
