"""gunicorn, configured from Settings: bind, workers, the asgi worker class and the process hooks.

The master never imports TensorFlow or the app: each worker builds the app (and loads the models)
after fork, from the Settings object the master read once. Every worker is gunicorn's ``asgi``
worker: one event loop runs :mod:`service.http.asgi`, whose Flask routes get ``THREADS`` threads.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from service.config import Settings


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "bind": [f"{settings.host}:{settings.port}"],
        "workers": settings.workers,
        "worker_class": "asgi",
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
        "keepalive": 5,
        "loglevel": settings.log_level,
        "accesslog": None,  # the app writes the access log itself: it knows each caller's token name
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
        "proc_name": "model-serving",
        "certfile": str(settings.tls_cert) if settings.tls_cert else None,
        "keyfile": str(settings.tls_key) if settings.tls_key else None,
        "on_starting": _fresh_metrics_dir,
        "child_exit": _forget_worker_metrics,
        "post_worker_init": _stop_grpc_on_sigterm,
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


def _fresh_metrics_dir(server: Any) -> None:
    # Samples of a previous run would otherwise be summed into this one's counters.
    metrics_dir: Path = server.app.settings.metrics_dir
    if metrics_dir.exists():
        shutil.rmtree(metrics_dir)
    metrics_dir.mkdir(parents=True)


def _forget_worker_metrics(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def _stop_grpc_on_sigterm(worker: Any) -> None:
    """On SIGTERM, begin the gRPC stop at once. gunicorn's asgi worker drains HTTP connections first
    (up to keepalive, or graceful_timeout for busy ones) and only then runs the lifespan shutdown,
    meanwhile taking new gRPC calls that the master's SIGKILL may cut at graceful_timeout."""
    app: Any = getattr(worker, "asgi", None)
    loop = getattr(worker, "loop", None)
    if loop is None or not hasattr(app, "begin_shutdown"):
        return

    def on_sigterm() -> None:
        worker.handle_exit_signal()  # gunicorn's own handler: stop the worker gracefully
        app.begin_shutdown()

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)


def _drain(server: Any, worker: Any) -> None:
    # The app's lifespan shutdown drains too, but gunicorn skips it on a quick exit (SIGINT, SIGQUIT).
    registry = getattr(getattr(worker, "asgi", None), "registry", None)
    if registry is not None:
        registry.stop()  # drain in-flight batches before the process goes
