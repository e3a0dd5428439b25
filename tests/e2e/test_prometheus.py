"""A real Prometheus scrapes a real gunicorn server; its rate() and histogram_quantile() match the traffic."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest
import requests

from tests.server import Server, free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("prometheus") is None, reason="needs the prometheus binary (.ci/run installs it)"
    ),
]

SCRAPE_INTERVAL = 1.0


@pytest.fixture(scope="module")
def prometheus(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("prometheus")
    target = server.url.removeprefix("http://")
    (work / "prometheus.yml").write_text(
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL:g}s\n"
        f"scrape_configs:\n  - job_name: serving\n    static_configs:\n      - targets: ['{target}']\n"
    )
    port = free_port()
    log = open(work / "prometheus.log", "wb")  # noqa: SIM115 - closed in teardown
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_target(url, process, work / "prometheus.log")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _wait_for_target(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {log.read_text()[-2000:]}")
        try:
            targets = requests.get(f"{url}/api/v1/targets", timeout=2).json()["data"]["activeTargets"]
            if targets and targets[0]["health"] == "up":
                return
        except (requests.RequestException, KeyError, ValueError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"prometheus never scraped the server: {log.read_text()[-2000:]}")


def _query(url: str, expr: str, at: float | None = None) -> float:
    params = {"query": expr} | ({"time": f"{at:.3f}"} if at is not None else {})
    doc = requests.get(f"{url}/api/v1/query", params=params, timeout=5).json()
    assert doc["status"] == "success", doc
    result = doc["data"]["result"]
    assert len(result) == 1, (expr, result)
    return float(result[0]["value"][1])


def _send(url: str, body: bytes, rate: float, seconds: float) -> list[float]:
    """Requests at a fixed rate for a fixed time; returns client-side latencies."""
    latencies = []
    headers = {"Content-Type": "application/json"}
    with requests.Session() as session:
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            sent = time.perf_counter()
            response = session.post(url, data=body, headers=headers, timeout=10)
            latencies.append(time.perf_counter() - sent)
            assert response.status_code == 200, response.text
    return latencies


def _scraped_total(url: str, expr: str, expected: float, timeout: float = 15) -> float:
    deadline = time.monotonic() + timeout
    value = -1.0
    while time.monotonic() < deadline:
        value = _query(url, expr)
        if value >= expected:
            return value
        time.sleep(SCRAPE_INTERVAL / 2)
    return value


def test_request_rate_and_latency_quantile(server: Server, prometheus: str) -> None:
    images = np.random.default_rng(0).random((128, 28, 28)).round(3)  # ~0.8 MB of JSON per request
    body = orjson.dumps({"instances": images.tolist()})
    rate, seconds = 20.0, 12.0
    started = time.time()
    latencies = _send(f"{server.url}/v1/models/digits:predict", body, rate, seconds)
    finished = time.time()
    sent = len(latencies)
    achieved = sent / (finished - started)  # below `rate` if the client could not keep up

    selector = 'model="digits",protocol="tfserving",endpoint="predict",code="200"'
    total = _scraped_total(prometheus, f"sum(serving_requests_total{{{selector}}})", sent)
    assert total == sent  # every worker's samples are summed, none lost, none doubled

    # an 8 s window in the middle of the traffic: the rate Prometheus computes is the client's pace
    middle = (started + finished) / 2 + 4
    measured_rate = _query(prometheus, f"sum(rate(serving_requests_total{{{selector}}}[8s]))", at=middle)
    print(f"client pace {achieved:.2f} req/s, Prometheus rate() {measured_rate:.2f} req/s")
    assert achieved * 0.8 <= measured_rate <= achieved * 1.2, (measured_rate, achieved)

    p50 = _query(
        prometheus,
        f"histogram_quantile(0.5, sum by (le) (rate(serving_request_duration_seconds_bucket{{{selector}}}[30s])))",
    )
    client_p50 = statistics.median(latencies)
    # server time is part of what the client measured; bucket interpolation adds some slack
    print(f"client p50 {client_p50 * 1e3:.2f} ms, histogram_quantile(0.5) {p50 * 1e3:.2f} ms")
    assert 0.3 * client_p50 <= p50 <= 1.3 * client_p50, (p50, client_p50)

    instances = _query(prometheus, 'sum(serving_request_instances_sum{model="digits",endpoint="predict"})')
    assert instances == 128 * sent
