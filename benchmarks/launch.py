"""Start what a benchmark run measures: the floor and breakdown subprocesses, and the two servers."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson

from benchmarks.measure import live_workers
from benchmarks.results import Startup
from benchmarks.servers import Server, clean_env, get, rss_mb, start_baseline, start_service

MODEL = "mnist"
WORKERS = 2  # the service's default; the baseline gets as many sync workers
READY_TIMEOUT = 180.0


def run_floor(model_dir: Path, data: Path, seconds: float) -> dict[int, dict[str, float]]:
    command = [sys.executable, "-m", "benchmarks.floor", "--model", str(model_dir), "--data", str(data)]
    command += ["--seconds", f"{seconds:g}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120 + 6 * seconds, check=True)
    rows = [orjson.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return {int(row["instances"]): row for row in rows}


def run_breakdown(repository: Path, body: bytes, logdir: Path) -> dict[str, object]:
    path = logdir / "one-instance.json"
    path.write_bytes(body)
    command = [sys.executable, "-m", "benchmarks.breakdown", "--model-repository", str(repository)]
    command += ["--body", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    return dict(orjson.loads(done.stdout.strip().splitlines()[-1]))


def wait_for_workers(server: Server, count: int, timeout: float, pid_probe: bool) -> float:
    """Seconds from start until all ``count`` workers serve: per the service's metrics, or by pid."""
    seen: set[int] = set()
    while time.perf_counter() - server.started < timeout:
        if pid_probe:
            status, text = get(server.url + "/healthz", timeout=1.0)
            seen |= {orjson.loads(text)["pid"]} if status == 200 else set()
            if len(seen) >= count:
                return time.perf_counter() - server.started
        elif live_workers(server) >= count:
            return time.perf_counter() - server.started
        time.sleep(0.02)
    raise TimeoutError(f"{server.name}: only {len(seen)} of {count} workers became ready in {timeout:g} s.")


def start_ours(
    name: str, repository: Path, logdir: Path, settings: dict[str, str], token: str | None = None
) -> tuple[Server, Startup]:
    """Our server with ``settings`` as env overrides; returns once every worker has loaded everything.

    ``token``: sent with every request the benchmark makes to it (settings name its token file).
    """
    server = start_service(repository, logdir, name, settings)
    server.token = token
    try:
        ready = server.wait_until("/v2/health/ready", timeout=READY_TIMEOUT)
        workers = int(settings.get("WORKERS", WORKERS))
        all_ready = wait_for_workers(server, workers, READY_TIMEOUT, pid_probe=False)
    except BaseException:
        server.stop()
        raise
    time.sleep(1.0)  # let the workers settle (warm-up garbage freed) before reading RSS
    return server, Startup(ready, all_ready, {pid: rss_mb(pid) for pid in server.workers()})


def latest_version(repository: Path) -> Path:
    versions = [p for p in (repository / MODEL).iterdir() if p.name.isdigit()]
    if not versions:
        raise SystemExit(f"error: {repository}/{MODEL} has no version folder.")
    return max(versions, key=lambda p: int(p.name))


def start_unbatched(repository: Path, logdir: Path, intra_op: int) -> tuple[Server, Startup]:
    """The careful unbatched Flask app on the latest mnist version, once both workers answer."""
    model_dir = latest_version(repository)
    server = start_baseline(model_dir, MODEL, WORKERS, intra_op, logdir)
    try:
        ready = server.wait_until("/healthz", timeout=READY_TIMEOUT)
        all_ready = wait_for_workers(server, WORKERS, READY_TIMEOUT, pid_probe=True)
    except BaseException:
        server.stop()
        raise
    return server, Startup(ready, all_ready, {pid: rss_mb(pid) for pid in server.workers()})


def service_defaults() -> dict[str, object]:
    """The settings ``python -m service`` runs with here (no service variables in the environment)."""
    from service.config import load_settings

    s = load_settings(clean_env())
    names = ("workers", "threads", "intra_op_threads", "tf_inter_op_threads", "batching", "max_batch_size")
    return {**{n: getattr(s, n) for n in names}, "batch_timeout": s.batch_timeout, "max_queue": s.max_queue}
