"""The application factory: wiring only. gunicorn calls ``create_app()`` in each worker after fork."""

from __future__ import annotations

import logging
from functools import partial

from flask import Flask

from service import api, console, metrics
from service.config import Settings, load_settings
from service.evaluating import Evaluator, StreamLimits
from service.history import History
from service.inference import Inference
from service.loading import make_loader
from service.model_config import load_model_config
from service.protocol.common import Limits
from service.registry import Registry
from service.repository import Repository


def build_registry(settings: Settings) -> Registry:
    """A registry over the configured repository, loading through the TensorFlow runtime."""
    return Registry(
        Repository(settings.model_repository),
        make_loader(settings),
        config_source=partial(load_model_config, settings.model_config_path),
        poll_interval=settings.poll_interval,
        unload_timeout=settings.request_timeout,
    )


def create_app(settings: Settings | None = None, registry: Registry | None = None) -> Flask:
    """Build the Flask app. Without a registry, one is built and started (initial load + poller)."""
    settings = settings or load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if registry is None:
        registry = build_registry(settings)
        registry.start()
    app = Flask(__name__)
    # werkzeug would answer '//' in a path with an HTML 308 redirect; here it is a JSON 404.
    app.url_map.merge_slashes = False
    # Flask would answer OPTIONS itself with an empty text/html 200; here it gets the JSON 405.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["settings"] = settings
    app.extensions["registry"] = registry
    limits = Limits(max_instances=settings.max_instances, allow_nonfinite=settings.allow_nonfinite)
    app.extensions["inference"] = Inference(registry, limits, settings.request_timeout)
    stream = StreamLimits(settings.max_evaluation_rows, settings.max_line_bytes)
    history = History(settings.data_dir / "evaluations")
    app.extensions["evaluator"] = Evaluator(registry, history, limits, settings.request_timeout, stream)
    app.extensions["console"] = console.load_assets()
    api.register(app)
    metrics.worker_started()
    return app
