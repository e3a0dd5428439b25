"""Start the real server (``python -m service`` -> gunicorn) on a free loopback port for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """A gunicorn server process; ``url`` is its base address. Use as a context manager."""

    def __init__(self, repository: Path, log_path: Path, **env: Any) -> None:
        self.port = free_port()
        # Its own gRPC port too: servers sharing one (SO_REUSEPORT) would quietly split its calls.
        self.grpc_port = free_port()
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.scheme = "https" if env.get("TLS_CERT") else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"
        self.verify: str | bool = str(env["TLS_CERT"]) if env.get("TLS_CERT") else True
        self.log_path = log_path
        self.env = {
            **os.environ,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "GRPC_PORT": str(self.grpc_port),
            "MODEL_REPOSITORY": str(repository),
            "WORKERS": "2",
            "THREADS": "8",
            "POLL_INTERVAL": "0.2",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **{k: str(v) for k, v in env.items()},
        }
        self.env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Server:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the server
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if (
                    requests.get(f"{self.url}/v2/health/ready", timeout=1, verify=self.verify).status_code
                    == 200
                ):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"server not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
