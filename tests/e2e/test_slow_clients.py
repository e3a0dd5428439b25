"""Hostile and slow clients against the real gunicorn server: probes keep answering, every wait is
bounded and every refusal is JSON, SIGTERM resets nobody."""

from __future__ import annotations

import collections
import gzip
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests

from tests.server import Server

pytestmark = pytest.mark.e2e

THREADS = 4  # the Flask pool: a handful of slow uploads would fill it if they held threads
PROBES = (
    "/v2/health/live",
    "/v2/health/ready",
    "/v1/models/regressor",
    "/v2/models/regressor/ready",
    "/metrics",
)


@pytest.fixture(scope="module")
def server(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("slow-clients")
    shutil.copytree(tiny_template, root / "models")
    env = {"THREADS": THREADS, "HEADER_TIMEOUT": 1, "BODY_TIMEOUT": 1.5, "DATA_DIR": root / "var"}
    with Server(root / "models", root / "server.log", **env) as running:
        yield running


def talk(server: Server, data: bytes, wait: float = 10.0) -> tuple[float, bytes]:
    """Send ``data`` on a fresh connection; (seconds until the server closed it, what it answered)."""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(data)
        sock.settimeout(wait)
        started, answer = time.perf_counter(), b""
        while chunk := sock.recv(65536):
            answer += chunk
        return time.perf_counter() - started, answer


def status_and_json(answer: bytes) -> tuple[int, dict[str, str]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    return int(head.split()[1]), orjson.loads(body)


def slow_upload(server: Server, stop: threading.Event) -> None:
    """An :evaluate upload that sends its headers, then a byte a second (the issue's attack)."""
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(
            b"POST /v1/models/regressor:evaluate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n{"
        )
        while not stop.wait(0.5):
            try:
                sock.sendall(b" ")
            except OSError:
                return  # answered (408) and closed


def test_probes_answer_while_slow_uploads_outnumber_the_flask_threads(server: Server) -> None:
    stop = threading.Event()
    uploads = [threading.Thread(target=slow_upload, args=(server, stop)) for _ in range(5 * THREADS)]
    for thread in uploads:
        thread.start()
    try:
        time.sleep(0.5)
        slowest = 0.0
        for _ in range(5):
            for path in PROBES:
                started = time.perf_counter()
                assert requests.get(server.url + path, timeout=5).status_code == 200, path
                slowest = max(slowest, time.perf_counter() - started)
        # Queued behind the uploads they would wait for the body timeout (1.5 s here, 15 s by default).
        assert slowest < 1.0, slowest
        evaluation = {"instances": [1.0, 2.0], "labels": [3.5, 4.0]}
        assert requests.post(f"{server.url}/v1/models/regressor:evaluate", json=evaluation, timeout=10).ok
    finally:
        stop.set()
        for thread in uploads:
            thread.join()


def test_a_silent_connection_is_closed_after_the_header_timeout(server: Server) -> None:
    seconds, answer = talk(server, b"")
    assert answer == b"" and 0.9 < seconds < 3


def test_half_sent_headers_get_a_json_408(server: Server) -> None:
    seconds, answer = talk(server, b"GET /v2/health/li")
    assert status_and_json(answer) == (408, {"error": "The request headers did not arrive within 1 seconds."})
    assert seconds < 3


@pytest.mark.parametrize(
    "path", ["/v1/models/regressor:predict", "/v2/models/regressor/infer", "/v1/models/regressor:evaluate"]
)
def test_a_body_shorter_than_its_content_length_gets_a_json_408(server: Server, path: str) -> None:
    request = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n".encode() + b'{"instances": ['
    seconds, answer = talk(server, request)
    status, doc = status_and_json(answer)
    assert status == 408 and "did not arrive within 1.5 seconds" in doc["error"]
    assert seconds < 4


@pytest.mark.parametrize(
    ("headers", "status", "fragment"),
    [
        (b"Content-Length: " + b"9" * 5000, 400, "cannot be read"),
        (b"Content-Length: \xd9\xa1", 400, "Content-Length"),
        (b"Content-Length: 1\r\nContent-Length: 2", 400, "Content-Length"),
        (b"Inference-Header-Content-Length: " + b"9" * 5000 + b"\r\nContent-Length: 2", 400, "non-negative"),
        (b"Content-Encoding: br\r\nContent-Length: 2", 415, "Content-Encoding 'br'"),
    ],
)
def test_unreadable_headers_are_json_errors(
    server: Server, headers: bytes, status: int, fragment: str
) -> None:
    request = b"POST /v2/models/regressor/infer HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n\r\n{}"
    _, answer = talk(server, request)
    got, doc = status_and_json(answer)
    assert got == status and fragment in doc["error"], doc


@pytest.mark.parametrize(
    "path", ["/v1/models/regressor/versions/%C2%B2", "/v1/models/regressor/versions/%D9%A1"]
)
def test_versions_in_other_scripts_are_404s(server: Server, path: str) -> None:
    response = requests.get(server.url + path, timeout=5)
    assert response.status_code == 404 and "positive integers" in response.json()["error"]


def test_gzip_bodies_are_inflated_and_a_zip_bomb_is_a_413(server: Server) -> None:
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    body = gzip.compress(b'{"instances": [1.0, 2.0]}')
    response = requests.post(
        f"{server.url}/v1/models/regressor:predict", data=body, headers=headers, timeout=5
    )
    assert response.json() == {"predictions": [3.5, 4.0]}
    bomb = gzip.compress(b"[" * 200_000_000)  # 200 MB of brackets in ~200 kB
    response = requests.post(
        f"{server.url}/v1/models/regressor:predict", data=bomb, headers=headers, timeout=10
    )
    assert response.status_code == 413 and "exceeds the limit" in response.json()["error"]


def test_sigterm_under_load_finishes_in_flight_requests_and_resets_nobody(
    tiny_template: Path, tmp_path: Path
) -> None:
    shutil.copytree(tiny_template, tmp_path / "models")
    server = Server(tmp_path / "models", tmp_path / "server.log").start()
    outcomes: collections.Counter[str] = collections.Counter()
    stop, stopping = threading.Event(), threading.Event()

    def client(keep_alive: bool) -> None:
        session = requests.Session() if keep_alive else None
        while not stop.is_set():
            try:
                post = session.post if session else requests.post
                response = post(
                    f"{server.url}/v1/models/digits:predict", json={"instances": [[[0.5] * 28] * 28] * 4}
                )
                outcomes[str(response.status_code)] += 1
            except requests.ConnectionError as exc:
                refused = "refused" in str(exc).lower() and stopping.is_set()
                outcomes["refused after SIGTERM" if refused else f"broken: {exc!r}"[:160]] += 1
                time.sleep(0.02)

    clients = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(12)]
    for thread in clients:
        thread.start()
    time.sleep(2)
    stopping.set()
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(30)
    stop.set()
    for thread in clients:
        thread.join()
    server.stop()
    broken = {k: v for k, v in outcomes.items() if k not in ("200", "refused after SIGTERM")}
    assert not broken and outcomes["200"] > 100, outcomes
    assert server.process.returncode == 0, server.log()
