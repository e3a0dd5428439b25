"""gunicorn, configured from Settings: bind, workers, the asgi worker class and the process hooks.

The master never imports TensorFlow or the app: each worker builds the app (and loads the models)
after fork, from the Settings object the master read once. Every worker is gunicorn's ``asgi``
worker (with the additions of :mod:`service.http.worker`): one event loop runs
:mod:`service.http.asgi`, whose Flask routes get ``THREADS`` threads.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from service.auth.sharedlimit import TABLE, SharedRateLimiter
from service.config import Settings
from service.logs import gunicorn_logconfig


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "bind": [f"{settings.host}:{settings.port}"],
        "workers": settings.workers,
        "worker_class": "service.http.worker.ServingWorker",  # gunicorn's asgi worker, hardened
        "asgi_loop": "auto",  # uvloop when installed (it is a dependency), else asyncio
        # The optional C parser (gunicorn_h1c 0.6.10) closed kept-alive connections after a couple of
        # 260 KB bodies (wrk: a read error on most 64-image requests); the Python parser does not.
        "http_parser": "python",
        # gunicorn's control socket ($HOME/.gunicorn/gunicorn.ctl) is unused here, and several
        # servers on one machine (tests, benchmarks) would fight over its single path.
        "control_socket_disable": True,
        "timeout": 120,  # initial model loading happens in the worker before it serves its first request
        "graceful_timeout": 30,
        # Idle seconds; also how long a SIGTERM'd worker waits for idle clients (gunicorn's asgi
        # worker waits for connections, not only requests).
        "keepalive": settings.keepalive_timeout,
        "loglevel": settings.log_level,
        "logconfig_dict": gunicorn_logconfig(settings.log_level) if settings.log_format == "json" else {},
        "accesslog": None,  # the app writes the access log itself: it knows each caller's token name
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
        "proc_name": "model-serving",
        "certfile": str(settings.tls_cert) if settings.tls_cert else None,
        "keyfile": str(settings.tls_key) if settings.tls_key else None,
        "on_starting": _starting,
        "child_exit": _forget_worker_metrics,
        "worker_exit": _drain,
    }


class Server(BaseApplication):
    """gunicorn running :func:`service.http.asgi.create_app` in every worker, from one Settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.settings).items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """In each worker, after fork: build the app, then exempt what it holds from the cyclic GC."""
        from service.http.asgi import create_app

        app = create_app(self.settings)
        # TensorFlow and the loaded models leave ~400k objects to the cyclic GC; a full collection
        # of them stalls the event loop for ~140 ms (a p99 spike every few thousand requests).
        # Exempt what exists now; versions loaded later are few objects and stay collectable.
        gc.collect()
        gc.freeze()
        return app


def serve(settings: Settings) -> None:
    """Run gunicorn in this process until it is stopped; workers share ``settings``."""
    if settings.metrics_dir is None:
        settings = dataclasses.replace(
            settings, metrics_dir=Path(tempfile.mkdtemp(prefix="serving-metrics-"))
        )
    # prometheus_client reads this when first imported, which happens in the workers after fork.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(settings.metrics_dir)
    Server(settings).run()


def _starting(server: Any) -> None:
    _fresh_metrics_dir(server)
    settings: Settings = server.app.settings
    if settings.rate_limit:
        assert settings.metrics_dir is not None  # serve() made one
        # Made (and sized) once before any worker forks; each worker opens its own handle on it.
        SharedRateLimiter.open(settings.metrics_dir / TABLE, settings.rate_limit).close()


def _fresh_metrics_dir(server: Any) -> None:
    # Samples of a previous run would otherwise be summed into this one's counters.
    metrics_dir: Path = server.app.settings.metrics_dir
    if metrics_dir.exists():
        shutil.rmtree(metrics_dir)
    metrics_dir.mkdir(parents=True)


def _forget_worker_metrics(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _drain(server: Any, worker: Any) -> None:
    # The app's lifespan shutdown drains too, but gunicorn skips it on a quick exit (SIGINT, SIGQUIT).
    app = getattr(worker, "asgi", None)
    registry = getattr(app, "registry", None)
    if registry is not None:
        registry.stop()  # drain in-flight batches before the process goes
    close = getattr(app, "close_extras", None)
    if close is not None:
        close()  # remembered predictions and buffered spans are written before the process goes
