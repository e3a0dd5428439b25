"""``make soak``: the fault suite. A bounded run of the real server (``python -m service``, gunicorn)
under valid traffic from several clients mixed with slow uploads, oversized and malformed bodies, a
worker SIGKILL, a corrupt new version and finally a SIGTERM; prints a table and exits 1 on any 5xx
other than a JSON 503, any probe slower than 1 s, a reset after SIGTERM, or a worker over its
memory budget. Everything targets loopback and stops by itself.

    python -m benchmarks.soak --seconds 180 --model-repository models
"""

from __future__ import annotations

import argparse
import collections
import gzip
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import requests

from benchmarks.servers import clean_env, free_port

IMAGE = np.random.default_rng(3).random((28, 28)).round(4).tolist()
LARGE_IMAGES = 5_000  # 16 MB of V2 binary tensors for mnist_cnn: large, within every limit


def _v2_binary(count: int) -> tuple[bytes, dict[str, str]]:
    images = np.random.default_rng(count).random((count, 28, 28)).astype(np.float32)
    tensor = {
        "name": "images",
        "shape": [count, 28, 28],
        "datatype": "FP32",
        "parameters": {"binary_data_size": images.nbytes},
    }
    header = orjson.dumps({"inputs": [tensor]})
    headers = {
        "Inference-Header-Content-Length": str(len(header)),
        "Content-Type": "application/octet-stream",
    }
    return header + images.tobytes(), headers


# Built once: compressing 200 MB in a client thread would stall the client's own probes (the GIL).
PAYLOADS: dict[str, tuple[bytes, dict[str, str]]] = {}


def payloads() -> dict[str, tuple[bytes, dict[str, str]]]:
    if not PAYLOADS:
        PAYLOADS["small"] = _v2_binary(64)
        PAYLOADS["large"] = _v2_binary(LARGE_IMAGES)
        PAYLOADS["too large"] = (b"[" * (70 << 20), {})  # past MAX_BODY_BYTES
        PAYLOADS["bomb"] = (gzip.compress(b" " * (200 << 20)), {"Content-Encoding": "gzip"})
    return PAYLOADS


class Run:
    """What the clients saw, counted under one lock; the timeline of the faults."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()
        self.statuses: collections.Counter[str] = collections.Counter()
        self.bad_5xx: list[str] = []
        self.samples: dict[str, str] = {}  # one answer per non-2xx status, to show what they were
        self.broken: collections.Counter[str] = collections.Counter()  # connection errors, by phase
        self.probe_max = 0.0
        self.probe_failures: list[str] = []
        self.stop = threading.Event()
        self.phase = "running"  # -> "killed" (a few seconds after SIGKILL) -> "terminating"

    def answered(self, response: requests.Response, what: str) -> None:
        with self.lock:
            self.statuses[str(response.status_code)] += 1
            if response.status_code >= 300:
                self.samples.setdefault(f"{response.status_code} {what}", response.text[:100])
            json_503 = response.status_code == 503 and response.headers.get("Content-Type", "").startswith(
                "application/json"
            )
            if response.status_code >= 500 and not json_503:
                self.bad_5xx.append(f"{what}: {response.status_code} {response.text[:120]}")

    def failed(self, exc: BaseException) -> None:
        refused = "refused" in str(exc).lower() and self.phase == "terminating"
        with self.lock:
            if refused:
                self.broken["refused after SIGTERM"] += 1
            else:
                self.broken[f"broken while {self.phase}"] += 1
                self.samples.setdefault(f"broken while {self.phase}", repr(exc)[:160])


def loop(run: Run, work: Any, pause: float = 0.0) -> None:
    session = requests.Session()
    while not run.stop.is_set():
        try:
            work(run, session)
        except (requests.RequestException, OSError) as exc:
            run.failed(exc)
            time.sleep(0.05)
        if pause:
            run.stop.wait(pause)


def valid_mnist(run: Run, session: requests.Session) -> None:
    body = {"instances": [IMAGE] * 4}
    run.answered(session.post(f"{run.url}/v1/models/mnist:predict", json=body, timeout=30), "mnist predict")


def valid_cnn_binary(run: Run, session: requests.Session) -> None:
    body, headers = payloads()["small"]
    run.answered(
        session.post(f"{run.url}/v2/models/mnist_cnn/infer", data=body, headers=headers, timeout=30),
        "mnist_cnn infer",
    )


def valid_linear_and_evaluate(run: Run, session: requests.Session) -> None:
    run.answered(
        session.post(f"{run.url}/v1/models/linear:predict", json={"instances": [1.0, 2.0]}, timeout=30),
        "linear",
    )
    evaluation = {"instances": [0.0, 1.0, 2.0], "labels": [3.0, 8.1, 12.9], "dataset": "soak"}
    run.answered(
        session.post(f"{run.url}/v1/models/regression:evaluate", json=evaluation, timeout=30), "evaluate"
    )


def oversized(run: Run, session: requests.Session) -> None:
    for name in ("too large", "bomb"):
        body, headers = payloads()[name]
        run.answered(
            session.post(f"{run.url}/v1/models/mnist:predict", data=body, headers=headers, timeout=60), name
        )
    body, headers = payloads()["large"]
    run.answered(
        session.post(f"{run.url}/v2/models/mnist_cnn/infer", data=body, headers=headers, timeout=120),
        "large infer",
    )


def malformed(run: Run, session: requests.Session) -> None:
    for path, body, headers in (
        ("/v1/models/mnist:predict", b"{not json", {}),
        ("/v1/models/mnist/versions/%C2%B2:predict", b"{}", {}),
        ("/v2/models/mnist/infer", b"{}", {"Inference-Header-Content-Length": "9" * 5000}),
        ("/v2/models/mnist/infer", b"\x00" * 100, {"Content-Encoding": "br"}),
    ):
        run.answered(
            session.post(run.url + path, data=body, headers=headers, timeout=30), f"malformed {path}"
        )
    host, port = run.url.removeprefix("http://").split(":")
    for raw in (
        b"POST /v1/models/mnist:predict HTTP/1.1\r\nContent-Length: " + b"9" * 5000 + b"\r\n\r\n",
        b"GET /v2/hea",
    ):
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(raw)
            answer = sock.recv(4096)
            status = int(answer.split()[1]) if answer.startswith(b"HTTP/") else 0
            with run.lock:
                run.statuses[str(status or "closed")] += 1


def slow_upload(run: Run, session: requests.Session) -> None:
    try:
        _slow_upload(run)
    except OSError:  # cut off: answered 408 and closed between two bytes, or refused after SIGTERM
        with run.lock:
            run.statuses["slow upload cut off"] += 1
        run.stop.wait(0.5)


def _slow_upload(run: Run) -> None:
    host, port = run.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(
            b"POST /v1/models/mnist:evaluate HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
        )
        answer = b""
        while not run.stop.is_set() and not answer:
            sock.sendall(b" ")
            sock.settimeout(1.0)
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                continue
        if answer:
            with run.lock:
                run.statuses[answer.split()[1].decode()] += 1


def probe_process(url: str, stop: Any, results: Any) -> None:
    """Probes from a process of their own, so the clients' threads cannot delay them (GIL)."""
    worst, failures = 0.0, []
    while not stop.is_set():
        for path in ("/v2/health/live", "/v2/health/ready", "/metrics"):
            started = time.perf_counter()
            try:
                status = requests.get(url + path, timeout=10).status_code
            except requests.RequestException as exc:
                failures.append((time.time(), f"{path}: {exc!r}"[:160]))
                continue
            seconds = time.perf_counter() - started
            worst = max(worst, seconds)
            if status != 200:
                failures.append((time.time(), f"{path}: {status}"))
            if seconds > 1.0:
                failures.append((time.time(), f"{path}: {seconds:.2f} s"))
        stop.wait(0.25)
    results.put((worst, failures))


def workers_of(master: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == master:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


def sample_rss(run: Run, master: int, peaks: dict[int, float]) -> None:
    while not run.stop.is_set():
        for pid in workers_of(master):
            try:
                pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            except (OSError, ValueError):
                continue
            peaks[pid] = max(peaks.get(pid, 0.0), pages * os.sysconf("SC_PAGE_SIZE") / 2**20)
        run.stop.wait(0.2)


def corrupt_new_version(repository: Path) -> None:
    """A new version of ``linear`` whose SavedModel is cut short: the server must keep serving v1."""
    target = repository / "linear" / "2"
    shutil.copytree(repository / "linear" / "1", target)
    pb = target / "saved_model.pb"
    pb.write_bytes(pb.read_bytes()[:200])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 180)))
    parser.add_argument("--model-repository", type=Path, default=Path("models"))
    parser.add_argument("--budget-mib", type=float, default=1024.0, help="RSS allowed per worker")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    repository = workdir / "models"
    shutil.copytree(args.model_repository, repository)
    port = free_port()
    env = clean_env(
        HOST="127.0.0.1", PORT=str(port), MODEL_REPOSITORY=str(repository), DATA_DIR=str(workdir / "var")
    )
    log = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed at the end
    server = subprocess.Popen(
        [sys.executable, "-m", "service"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    run = Run(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if (
                requests.get(run.url + "/v2/health/ready", timeout=1).status_code == 200
                and len(workers_of(server.pid)) >= 2
            ):
                break
        except requests.RequestException:
            pass
        time.sleep(0.2)
    else:
        print((workdir / "server.log").read_text()[-3000:])
        server.kill()
        return 2
    peaks: dict[int, float] = {}
    payloads()
    context = multiprocessing.get_context("spawn")
    probes_stop, probe_results = context.Event(), context.Queue()
    prober = context.Process(target=probe_process, args=(run.url, probes_stop, probe_results))
    prober.start()
    work = [valid_mnist] * 3 + [valid_cnn_binary] * 2 + [valid_linear_and_evaluate]
    threads = [threading.Thread(target=loop, args=(run, w)) for w in work]
    threads += [
        threading.Thread(target=loop, args=(run, oversized, 3.0)),
        threading.Thread(target=loop, args=(run, malformed, 1.0)),
    ]
    threads += [threading.Thread(target=loop, args=(run, slow_upload)) for _ in range(24)]
    threads.append(threading.Thread(target=sample_rss, args=(run, server.pid, peaks)))
    for thread in threads:
        thread.start()
    started = time.monotonic()
    events = []

    def at(fraction: float) -> None:
        run.stop.wait(max(0.0, started + fraction * args.seconds - time.monotonic()))

    at(0.3)
    victim = workers_of(server.pid)[0]
    os.kill(victim, signal.SIGKILL)
    killed_at = time.time()
    run.phase = "killed"
    events.append(f"SIGKILL worker {victim} at {time.monotonic() - started:.0f} s")
    run.stop.wait(5.0)
    run.phase = "running"
    at(0.55)
    corrupt_new_version(repository)
    events.append(f"corrupt linear v2 at {time.monotonic() - started:.0f} s")
    at(1.0)
    probes_stop.set()
    run.probe_max, probe_failures = probe_results.get(timeout=60)
    prober.join(30)
    # A probe in flight on the worker that was SIGKILLed dies with it: not the server's doing.
    run.probe_failures = [
        f"{text} (at {at_ - killed_at:+.1f} s from the SIGKILL)"
        for at_, text in probe_failures
        if not killed_at <= at_ <= killed_at + 2
    ]
    run.phase = "terminating"
    server.send_signal(signal.SIGTERM)
    events.append(f"SIGTERM at {time.monotonic() - started:.0f} s")
    code = server.wait(60)
    run.stop.set()
    for thread in threads:
        thread.join(60)
    log.close()
    return report(run, peaks, events, code, args.budget_mib, workdir)


def report(
    run: Run, peaks: dict[int, float], events: list[str], code: int, budget: float, workdir: Path
) -> int:
    total = sum(run.statuses.values())
    non_2xx = {k: v for k, v in sorted(run.statuses.items()) if not k.startswith("2")}
    resets_after_term = run.broken["broken while terminating"]
    rows = [
        ("requests answered", f"{total}"),
        ("non-2xx by status", ", ".join(f"{k}: {v}" for k, v in non_2xx.items()) or "none"),
        ("5xx other than JSON 503", f"{len(run.bad_5xx)}"),
        ("connection errors", ", ".join(f"{k}: {v}" for k, v in sorted(run.broken.items())) or "none"),
        ("max probe latency", f"{run.probe_max * 1000:.0f} ms"),
        ("probe failures (outside the SIGKILL window)", f"{len(run.probe_failures)}"),
        ("peak RSS per worker", ", ".join(f"{pid}: {mib:.0f} MiB" for pid, mib in sorted(peaks.items()))),
        ("server exit code after SIGTERM", f"{code}"),
        ("events", "; ".join(events)),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"{'':-<{width}}  soak ({workdir})")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    failures = run.bad_5xx[:5] + run.probe_failures[:5]
    failures += [f"a probe took {run.probe_max:.2f} s"] if run.probe_max > 1.0 else []
    failures += [f"worker {pid} peaked at {mib:.0f} MiB" for pid, mib in peaks.items() if mib > budget]
    failures += [f"{resets_after_term} connection(s) reset after SIGTERM"] if resets_after_term else []
    failures += [f"the server exited with {code}"] if code != 0 else []
    for sample, text in sorted(run.samples.items()):
        print(f"  e.g. {sample}: {text}")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
