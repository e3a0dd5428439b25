"""The compose stack's tokens against the real server: each client's scopes are enough for what it calls.

``make compose-secrets`` makes the token file and one token per client; here a real gunicorn server
reads that file and the real clients use their tokens: the smoke check, the batch evaluation job and
a Prometheus-style scrape. A token with too little scope, or a guarded server reached without one,
fails the way an operator would see it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml

from service.datafiles import write_idx
from service.evaluation.batch import cli
from tests.server import Server, free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("compose") / "secrets"
    subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "compose_secrets.py"), str(folder)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def guarded(secrets: Path, tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("guarded")
    shutil.copytree(tiny_template, root / "models")
    env = {"AUTH_TOKENS_FILE": secrets / "serving" / "tokens.yaml", "DATA_DIR": root / "var"}
    with Server(root / "models", root / "server.log", **env) as server:
        yield server


def smoke(server: Server, *args: object) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        str(ROOT / "deploy" / "smoke_check.py"),
        "--server",
        server.url,
        "--timeout",
        "30",
    ]
    return subprocess.run([*command, *map(str, args)], capture_output=True, text=True, timeout=120)


def test_the_smoke_check_passes_with_its_token_and_sees_auth_on(guarded: Server, secrets: Path) -> None:
    done = smoke(guarded, "--token-file", secrets / "smoke" / "token")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "answered 401 (auth is on)" in done.stdout and "smoke check passed" in done.stdout


@pytest.mark.parametrize(
    ("client", "failure"),
    [(None, "FAIL: 401 from"), ("prometheus", "FAIL: 403 from"), ("missing", "FAIL: --token-file")],
)
def test_the_smoke_check_fails_without_the_right_token(
    guarded: Server, secrets: Path, client: str | None, failure: str
) -> None:
    args = () if client is None else ("--token-file", secrets / client / "token")
    done = smoke(guarded, *args)
    assert done.returncode == 1 and failure in done.stderr


def test_the_smoke_check_fails_an_open_server_when_given_a_token(server: Server, secrets: Path) -> None:
    done = smoke(server, "--token-file", secrets / "smoke" / "token")  # `server`: no AUTH_TOKENS_FILE
    assert done.returncode == 1 and "answered without a token: the server is not guarded" in done.stderr


def test_prometheus_scrapes_with_its_token(guarded: Server, secrets: Path) -> None:
    token = (secrets / "prometheus" / "token").read_text().strip()
    assert requests.get(f"{guarded.url}/metrics", timeout=10).status_code == 401
    scrape = requests.get(f"{guarded.url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert scrape.status_code == 200 and "serving_model_version_state" in scrape.text
    infer = requests.get(f"{guarded.url}/v2/models", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert infer.status_code == 403  # the scraper's token reads metrics, nothing else


def test_the_evaluator_runs_the_batch_job_with_its_token(
    guarded: Server, secrets: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(7)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (40, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 40).astype(np.uint8))
    args = ["--model", "digits", "--data", str(tmp_path), "--server", guarded.url, "--quiet"]
    args += ["--output", str(tmp_path / "report"), "--token-file", str(secrets / "evaluator" / "token")]
    code = cli.main(args)
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "digits v1 on t10k: 40 scored, 0 errors" in out
    token = (secrets / "evaluator" / "token").read_text().strip()
    assert token not in out + err + guarded.log()


@pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="needs the prometheus binary (.ci/run installs it)"
)
def test_real_prometheus_scrapes_with_the_compose_scrape_config(
    guarded: Server, secrets: Path, tmp_path: Path
) -> None:
    """deploy/prometheus/prometheus.yml's serving job, pointed at this server and this token file."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "serving"]
    job["authorization"]["credentials_file"] = str(secrets / "prometheus" / "token")
    job["static_configs"] = [{"targets": [guarded.url.removeprefix("http://")]}]
    job["scrape_interval"], job["scrape_timeout"] = "1s", "1s"
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({"scrape_configs": [job]}))
    port = free_port()
    command = ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}"]
    command += [f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"]
    with open(tmp_path / "prometheus.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            target = _first_scrape(f"http://127.0.0.1:{port}", process)
        finally:
            process.terminate()
            process.wait(timeout=20)
    assert target["health"] == "up", target.get("lastError")


def _first_scrape(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> dict[str, Any]:
    """The serving target once Prometheus has scraped it (up or not)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            targets = requests.get(f"{url}/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
            if targets and targets[0]["health"] != "unknown":
                return dict(targets[0])
        except (requests.RequestException, KeyError, ValueError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"prometheus never scraped the server (exit code {process.poll()}).")
