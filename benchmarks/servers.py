"""Start, probe and stop the servers under test: only on 127.0.0.1, always bounded, always cleaned up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from service.config import ENV as SERVICE_ENV

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def get(url: str, timeout: float = 2.0, token: str | None = None) -> tuple[int, bytes]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        ) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (OSError, urllib.error.URLError):
        return 0, b""


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any service setting, so the server runs on its defaults."""
    env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV and k != "ACCESS_LOG"}
    env.update(extra)
    return env


class Server:
    """A gunicorn master in its own session; ``stop()`` ends it and its workers, nothing else."""

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        port: int,
        log: Path,
        grpc_port: int | None = None,
    ) -> None:
        self.name, self.port, self.log = name, port, log
        self.url = f"http://{HOST}:{port}"
        self.grpc_target = f"{HOST}:{grpc_port}" if grpc_port else None
        self.token: str | None = None  # a bearer token for every request to it (wrk's, /metrics probes)
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_until(self, probe_path: str, timeout: float) -> float:
        """Seconds from process start until ``probe_path`` answers 200."""
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}.")
            if get(self.url + probe_path, timeout=1.0)[0] == 200:
                return time.perf_counter() - self.started
            time.sleep(0.02)
        raise TimeoutError(
            f"{self.name} did not answer 200 on {probe_path} within {timeout:g} s; see {self.log}."
        )

    def workers(self) -> list[int]:
        """PIDs of the gunicorn master's child processes (its workers)."""
        pid = self.process.pid
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def stop(self, timeout: float = 30.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # gunicorn: graceful stop of master and workers
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the group this Popen created, only
                self.process.wait(5)
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_service(
    repository: Path, logdir: Path, name: str = "ours", settings: dict[str, str] | None = None
) -> Server:
    """``python -m service`` on its default settings (or with ``settings`` as env overrides)."""
    port, grpc_port = free_port(), free_port()  # a private gRPC port: SO_REUSEPORT would share 8500
    metrics_dir = tempfile.mkdtemp(prefix="metrics-", dir=logdir)
    env = clean_env(HOST=HOST, PORT=str(port), GRPC_PORT=str(grpc_port), MODEL_REPOSITORY=str(repository))
    env.update(settings or {})
    env["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    env["DATA_DIR"] = str(logdir / "var")
    command = [sys.executable, "-m", "service"]
    return Server(name, command, env, port, logdir / f"service-{port}.log", int(env["GRPC_PORT"]) or None)


def start_baseline(model_dir: Path, name: str, workers: int, intra_op: int, logdir: Path) -> Server:
    """The unbatched Flask app under gunicorn's sync workers (see ``benchmarks.baseline_app``)."""
    port = free_port()
    env = clean_env(BASELINE_MODEL=str(model_dir), BASELINE_NAME=name, BASELINE_INTRA_OP=str(intra_op))
    command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "sync", "-b", f"{HOST}:{port}"]
    command += ["--timeout", "120", "--log-level", "warning", "benchmarks.baseline_app:create_app()"]
    return Server("baseline", command, env, port, logdir / f"baseline-{port}.log")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """``field`` of /proc/<pid>/status in MiB: VmRSS now, or VmHWM, its high-water mark."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by ``pids`` (threads included)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / tick
