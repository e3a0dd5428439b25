"""One app over a private copy of the tiny repository per test module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from service.config import load_settings
from service.http.asgi import create_app
from service.models.loading import build_registry
from tests.http.client import client_for


@pytest.fixture(scope="module")
def client(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    import shutil

    root = tmp_path_factory.mktemp("api") / "models"
    shutil.copytree(tiny_template, root)
    (root / "serving.yaml").write_text(
        "models:\n  regressor:\n    version_policy: all\n    labels: {stable: 1, canary: 2}\n"
    )
    settings = load_settings({}, model_repository=root, max_body_bytes=1_000_000, max_instances=100)
    registry = build_registry(settings)
    registry.sync()
    app = create_app(settings, registry)
    yield client_for(app)
    registry.stop()


@pytest.fixture
def post_json(client: Client) -> Callable[..., Any]:
    def post(url: str, doc: Any, **kwargs: Any) -> Any:
        return client.post(url, json=doc, **kwargs)

    return post
