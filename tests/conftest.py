"""Shared fixtures: tiny SavedModel repositories, settings, and apps built by the real factory."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    import os

    return Path(os.environ.get("MNIST_DIR", ROOT.parent / "shared" / "data" / "mnist")).resolve()


@pytest.fixture(scope="session")
def tiny_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built once per session; tests get copies they may change."""
    from tests.fixtures.tiny_models import build_repository

    root = tmp_path_factory.mktemp("tiny-template") / "models"
    build_repository(root)
    return root


@pytest.fixture
def tiny_repo(tiny_template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "models"
    shutil.copytree(tiny_template, root)
    return root


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Any]:
    from service.config import load_settings

    def make(repository: Path, **overrides: Any) -> Any:
        base = {"model_repository": repository, "data_dir": tmp_path / "var", "poll_interval": 0.2}
        return load_settings({}, **{**base, **overrides})

    return make


@pytest.fixture
def make_app(make_settings: Callable[..., Any]) -> Iterator[Callable[..., Any]]:
    """create_app() with a registry synced once (no poller): deterministic for route tests."""
    from service.http.asgi import create_app
    from service.models.loading import build_registry

    registries = []

    def make(repository: Path, **overrides: Any) -> Any:
        settings = make_settings(repository, **overrides)
        registry = build_registry(settings)
        registry.sync()
        registries.append(registry)
        return create_app(settings, registry)

    yield make
    for registry in registries:
        registry.stop()
