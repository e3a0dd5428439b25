"""A real gunicorn server over a private copy of the tiny repository, shared by a module's tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import Server


@pytest.fixture(scope="module")
def server_repo(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e") / "models"
    shutil.copytree(tiny_template, root)
    return root


@pytest.fixture(scope="module")
def server(server_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("logs") / "server.log"
    with Server(server_repo, log, MAX_BODY_BYTES=2_000_000, DATA_DIR=server_repo.parent / "var") as running:
        yield running
