"""A batch job survives a server restart: no row lost or counted twice, figures equal an offline run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from service.datafiles import write_idx
from service.jobs import evaluate
from tests.server import ROOT, Server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROWS = 3000


def restarted(old: Server, log: Path) -> Server:
    """A new server on the old one's port (Server picks a free port itself)."""
    new = Server(Path(old.env["MODEL_REPOSITORY"]), log)
    new.port, new.url, new.env = old.port, old.url, old.env
    return new.start()


def wait_for_chunks(folder: Path, job: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 60
    while job.poll() is None and time.monotonic() < deadline:
        if folder.is_dir() and any(folder.glob("*.npz")):
            return len(list(folder.glob("*.npz")))
        time.sleep(0.005)
    raise AssertionError(f"no chunk was scored (job exit {job.poll()})")


def test_restarting_the_server_under_a_running_job(tiny_repo: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    data = tmp_path / "data"
    data.mkdir()
    write_idx(data / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (ROWS, 28, 28), dtype=np.uint8))
    write_idx(data / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, ROWS).astype(np.uint8))
    common = ["--model", "digits", "--data", str(data), "--chunk-size", "10", "--quiet"]
    for other in ("regressor", "binary"):  # only digits is needed: quicker (re)starts
        shutil.rmtree(tiny_repo / other)
    server = Server(tiny_repo, tmp_path / "server.log", WORKERS=1).start()
    command = [
        *common,
        "--server",
        server.url,
        "--concurrency",
        "2",
        "--retries",
        "120",
        "--max-backoff",
        "0.5",
        "--output",
        str(tmp_path / "http"),
    ]
    job = subprocess.Popen(
        [sys.executable, "-m", "service.jobs.evaluate", *command], cwd=ROOT, stderr=subprocess.PIPE
    )
    try:
        done_before = wait_for_chunks(tmp_path / "http" / ".state" / "digits-v1" / "chunks", job)
        # Pause the job so the server, not the job, decides when the restart happens; then let the
        # job run into a server that is gone (connection refused) until the new one is up.
        os.kill(job.pid, signal.SIGSTOP)
        server.stop()  # SIGTERM: gunicorn finishes in-flight requests, then exits
        os.kill(job.pid, signal.SIGCONT)
        time.sleep(0.5)
        assert job.poll() is None, "the job should be retrying against the stopped server"
        server = restarted(server, tmp_path / "server2.log")
        _, stderr = job.communicate(timeout=120)
    finally:
        if job.poll() is None:
            job.kill()
        server.stop()
    assert job.returncode == 0, stderr.decode()
    assert done_before < ROWS // 10  # the restart happened in the middle of the job
    assert (
        evaluate.main(
            [*common, "--offline", "--model-repository", str(tiny_repo), "--output", str(tmp_path / "off")]
        )
        == 0
    )
    online = json.loads((tmp_path / "http" / "metrics.json").read_text())
    offline = json.loads((tmp_path / "off" / "metrics.json").read_text())
    assert online["sample_count"] == ROWS and online["error_count"] == 0  # every row counted once
    assert sum(map(sum, online["metrics"]["confusion_matrix"])) == ROWS
    assert online["metrics"] == offline["metrics"]
