"""gunicorn settings, evaluated in the master: sizes, bind, and the multiprocess-metrics hooks.

Nothing here imports TensorFlow or the app; workers build the app (and load models) after fork.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from service.config import load_settings

_settings = load_settings()

# prometheus_client reads this when first imported, which happens in the workers after fork.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="serving-metrics-")
_metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])

bind = [f"{_settings.host}:{_settings.port}"]
workers = _settings.workers
worker_class = "gthread"
threads = _settings.threads
timeout = 120  # initial model loading happens in the worker before it serves its first request
graceful_timeout = 30
keepalive = 15
loglevel = _settings.log_level
accesslog = os.environ.get("ACCESS_LOG") or None
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
proc_name = "model-serving"


def on_starting(server: Any) -> None:
    # Samples of a previous run would otherwise be summed into this one's counters.
    if _metrics_dir.exists():
        shutil.rmtree(_metrics_dir)
    _metrics_dir.mkdir(parents=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def worker_exit(server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    registry = getattr(app, "extensions", {}).get("registry") if app is not None else None
    if registry is not None:
        registry.stop()  # drain in-flight batches before the process goes
