"""Ctrl-C during a batch job: exit 130 at once, keep every scored chunk, and the same command finishes.

The resumed run scores only the chunks that were missing and writes the report an uninterrupted
run writes, field by field (the duration aside).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.datafiles import write_idx
from service.evaluation.batch.scoring import OfflineScorer
from tests.evaluation.batch.test_restart import wait_for_chunks
from tests.server import ROOT, Server

Run = Callable[..., tuple[int, str, str]]


def same_report(a: Path, b: Path) -> None:
    first, second = (json.loads((folder / "metrics.json").read_text()) for folder in (a, b))
    assert first.pop("duration_seconds") >= 0 and second.pop("duration_seconds") >= 0
    assert first.keys() == second.keys()
    for field in first:
        assert first[field] == second[field], field
    assert (a / "errors.jsonl").read_text() == (b / "errors.jsonl").read_text()


def test_interrupt_then_the_same_command_resumes(
    run_cli: Run, digits_idx: Path, tiny_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    command = ["--model", "digits", "--data", digits_idx, "--offline", "--model-repository", tiny_template]
    command += [
        "--chunk-size",
        20,
        "--concurrency",
        2,
        "--metrics",
        "accuracy,log_loss,roc_auc,confusion_matrix",
    ]
    real, calls = OfflineScorer.score, {"n": 0}

    def interrupted(self: OfflineScorer, inputs: dict[str, np.ndarray]) -> Any:
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return real(self, inputs)

    monkeypatch.setattr(OfflineScorer, "score", interrupted)
    code, _, err = run_cli(*command, "--output", tmp_path / "job")
    assert code == 130 and "interrupted: run the same command again to resume." in err
    saved = len(list((tmp_path / "job" / ".state" / "digits-v1" / "chunks").glob("*.npz")))
    assert 5 <= saved < 15  # the 7 scored before, and any the other thread finished meanwhile
    monkeypatch.setattr(OfflineScorer, "score", real)
    calls["n"] = 0
    code, _, err = run_cli(*command, "--output", tmp_path / "job")
    assert code == 0, err
    assert f"resuming, {saved} of 15 chunks already scored" in err
    assert run_cli(*command, "--output", tmp_path / "whole")[0] == 0
    same_report(tmp_path / "job", tmp_path / "whole")


@pytest.mark.e2e
@pytest.mark.slow
def test_sigint_abandons_requests_in_flight(tiny_repo: Path, tmp_path: Path) -> None:
    """A real SIGINT while the server is frozen mid-request: the job does not wait for the 30 s timeout."""
    rng = np.random.default_rng(9)
    data = tmp_path / "data"
    data.mkdir()
    write_idx(data / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (3000, 28, 28), dtype=np.uint8))
    write_idx(data / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, 3000).astype(np.uint8))
    for other in ("regressor", "binary"):
        shutil.rmtree(tiny_repo / other)
    server = Server(tiny_repo, tmp_path / "server.log", WORKERS=1).start()
    command = [sys.executable, "-m", "service.evaluation.batch", "--model", "digits", "--data", str(data)]
    command += ["--server", server.url, "--chunk-size", "50", "--concurrency", "2", "--quiet"]
    chunks = tmp_path / "job" / ".state" / "digits-v1" / "chunks"
    assert server.process is not None
    frozen = [server.process.pid, *_children(server.process.pid)]
    job = subprocess.Popen([*command, "--output", str(tmp_path / "job")], cwd=ROOT, stderr=subprocess.PIPE)
    try:
        wait_for_chunks(chunks, job)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)  # the gunicorn master and its worker: requests in flight hang
        time.sleep(0.5)
        saved = len(list(chunks.glob("*.npz")))
        started = time.monotonic()
        job.send_signal(signal.SIGINT)
        _, stderr = job.communicate(timeout=20)
        assert job.returncode == 130, stderr.decode()
        assert time.monotonic() - started < 5, "the job waited for its requests instead of abandoning them"
        assert len(list(chunks.glob("*.npz"))) == saved < 60
    finally:
        if job.poll() is None:
            job.kill()
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    try:
        resumed = subprocess.run(
            [*command, "--output", str(tmp_path / "job")], cwd=ROOT, capture_output=True, timeout=120
        )
        assert resumed.returncode == 0, resumed.stderr.decode()
        assert re.search(rf"resuming, {saved} of 60 chunks already scored", resumed.stderr.decode())
        whole = subprocess.run(
            [*command, "--output", str(tmp_path / "whole")], cwd=ROOT, capture_output=True, timeout=120
        )
        assert whole.returncode == 0, whole.stderr.decode()
    finally:
        server.stop()
    same_report(tmp_path / "job", tmp_path / "whole")


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
