"""The admin API over real gunicorn with two workers: a load or unload is in force on every worker when
it answers, whichever worker took it. Each check runs once per worker, the other one stopped, on fresh
connections (tests/e2e/workers.py), so no worker can hide behind the other."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests

from service.models.control import decode_state
from tests.e2e.workers import only, worker_pids
from tests.server import Server

pytestmark = pytest.mark.e2e

FRESH = 8  # fresh connections per check and worker


def fresh(method: str, url: str, **kwargs: object) -> requests.Response:
    """One request on its own new connection (requests.request makes and closes a session)."""
    return requests.request(method, url, headers={"Connection": "close"}, timeout=30, **kwargs)  # type: ignore[arg-type]


def ready_codes(server: Server, model: str) -> list[int]:
    """Readiness of ``model`` as each worker answers it, FRESH times per worker."""
    codes = []
    for pid in worker_pids(server):
        with only(server, pid):
            codes += [fresh("GET", f"{server.url}/v2/models/{model}/ready").status_code for _ in range(FRESH)]
    return codes


def admin(server: Server, action: str, model: str, body: object | None = None) -> requests.Response:
    return fresh("POST", f"{server.url}/v2/repository/models/{model}/{action}", json=body or {})


def acks(data_dir: Path) -> dict[int, int]:
    """Worker pid -> the generation it acknowledged."""
    found = (orjson.loads(p.read_bytes()) for p in (data_dir / "control" / "workers").glob("*.json"))
    return {ack["pid"]: ack["generation"] for ack in found}


def generation(data_dir: Path) -> int:
    return decode_state((data_dir / "control" / "state.json").read_bytes()).generation


def audit_lines(data_dir: Path) -> list[dict[str, str]]:
    path = data_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(scope="module")
def root(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workers")
    shutil.copytree(tiny_template, root / "models")
    return root


@pytest.fixture(scope="module")
def polling(root: Path) -> Iterator[Server]:
    # A short REQUEST_TIMEOUT bounds how long an admin call waits for a lagging worker.
    env = {"DATA_DIR": root / "var", "REQUEST_TIMEOUT": "3"}
    with Server(root / "models", root / "polling.log", **env) as server:
        yield server


def test_an_unload_and_a_load_are_in_force_on_every_worker_when_they_answer(
    polling: Server, root: Path
) -> None:
    data_dir = root / "var"
    assert ready_codes(polling, "digits") == [200] * 2 * FRESH
    before = len(audit_lines(data_dir))
    assert admin(polling, "unload", "digits").status_code == 200
    assert ready_codes(polling, "digits") == [404] * 2 * FRESH
    workers = acks(data_dir)
    assert len(workers) == 2 and set(workers.values()) == {generation(data_dir)}  # both applied it
    assert admin(polling, "load", "digits").status_code == 200
    assert ready_codes(polling, "digits") == [200] * 2 * FRESH
    assert set(acks(data_dir).values()) == {generation(data_dir)}
    logged = audit_lines(data_dir)[before:]  # once per call, by the worker that took it
    assert [(a["action"], a["model"], a["outcome"]) for a in logged] == [
        ("unload", "digits", "ok"),
        ("load", "digits", "ok"),
    ]


def test_a_load_with_a_config_override_is_in_force_on_every_worker(polling: Server) -> None:
    config = json.dumps({"version_policy": "all", "labels": {"first": 1}})
    assert admin(polling, "load", "regressor", {"parameters": {"config": config}}).status_code == 200
    url = f"{polling.url}/v1/models/regressor/labels/first:predict"
    for pid in worker_pids(polling):
        with only(polling, pid):
            answers = [fresh("POST", url, json={"instances": [1.0]}).json() for _ in range(FRESH)]
        assert answers == [{"predictions": [2.5]}] * FRESH  # version 1: 0.5 x + 2
    assert admin(polling, "load", "regressor").status_code == 200  # back to serving.yaml's settings
    for pid in worker_pids(polling):
        with only(polling, pid):
            assert fresh("POST", url, json={"instances": [1.0]}).status_code == 404  # no such label now


def test_a_worker_that_cannot_follow_is_named_in_a_504_and_catches_up_later(
    polling: Server, root: Path
) -> None:
    stopped, taker = worker_pids(polling)
    with only(polling, taker):  # the other worker is alive but stopped: it cannot poll
        answer = admin(polling, "unload", "binary")
    assert answer.status_code == 504, answer.text
    assert f"worker(s) {stopped} (at generation" in answer.json()["error"]
    assert audit_lines(root / "var")[-1]["outcome"] == "failed"
    # The change stands, and the stopped worker applies it at its next poll (POLL_INTERVAL=0.2).
    deadline = time.monotonic() + 10
    while acks(root / "var").get(stopped) != generation(root / "var"):
        assert time.monotonic() < deadline, "the resumed worker never applied the unload"
        time.sleep(0.05)
    assert ready_codes(polling, "binary") == [404] * 2 * FRESH
    assert admin(polling, "load", "binary").status_code == 200


@pytest.mark.slow  # two more server starts
def test_explicit_loads_reach_every_worker_and_survive_a_restart(root: Path) -> None:
    env = {"DATA_DIR": root / "explicit-var", "MODEL_CONTROL": "explicit"}
    with Server(root / "models", root / "explicit.log", **env) as server:
        assert ready_codes(server, "regressor") == [404] * 2 * FRESH  # explicit: nothing until loaded
        assert admin(server, "load", "regressor").status_code == 200
        assert ready_codes(server, "regressor") == [200] * 2 * FRESH
        assert admin(server, "load", "binary").status_code == 200
        assert admin(server, "unload", "binary").status_code == 200
        assert ready_codes(server, "binary") == [404] * 2 * FRESH
    with Server(root / "models", root / "explicit.log", **env) as restarted:
        # What the operator loaded is served again (and readiness waited for it); the unload held.
        assert ready_codes(restarted, "regressor") == [200] * 2 * FRESH
        assert ready_codes(restarted, "binary") == [404] * 2 * FRESH
