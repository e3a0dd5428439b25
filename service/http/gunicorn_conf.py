"""gunicorn settings, evaluated in the master: sizes, bind, and the multiprocess-metrics hooks.

Nothing here imports TensorFlow or the app; workers build the app (and load models) after fork.
Workers are gunicorn's ``asgi`` workers: one event loop each runs :mod:`service.asgi`, whose
Flask routes get a pool of ``THREADS`` threads.
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
worker_class = "asgi"
asgi_loop = "auto"  # uvloop when installed (it is a dependency), else asyncio
# The optional C parser (gunicorn_h1c 0.6.10) closed kept-alive connections after a couple of
# 260 KB request bodies (wrk: a read error on most 64-image requests); the Python parser does not.
http_parser = "python"
# gunicorn's control socket ($HOME/.gunicorn/gunicorn.ctl) is unused here, and several servers on
# one machine (tests, benchmarks) would fight over its single path.
control_socket_disable = True
timeout = 120  # initial model loading happens in the worker before it serves its first request
graceful_timeout = 30
keepalive = 5  # idle seconds; also how long a SIGTERM'd worker waits for idle clients (gunicorn's asgi worker waits for connections, not only requests)
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
    # The app's lifespan shutdown drains too, but gunicorn skips it on a quick exit (SIGINT, SIGQUIT).
    registry = getattr(getattr(worker, "asgi", None), "registry", None)
    if registry is not None:
        registry.stop()  # drain in-flight batches before the process goes
