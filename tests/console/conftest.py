"""One real server (over a copy of models/ with a broken version) and one headless browser for all browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.console.browser import chromium, copy_with_broken_version, mnist_sample
from tests.server import Server


@pytest.fixture(scope="package")
def repository(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed models, plus a version of ``linear`` whose SavedModel is corrupt."""
    return copy_with_broken_version(repo_root / "models", tmp_path_factory.mktemp("console") / "models")


@pytest.fixture(scope="package")
def server(repository: Path) -> Iterator[Server]:
    log = repository.parent / "server.log"
    with Server(repository, log, WORKERS=1, DATA_DIR=repository.parent / "var") as running:
        yield running


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="package")
def mnist(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    if not (mnist_dir / "mnist-9k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"no MNIST sample in {mnist_dir}")
    return mnist_sample(mnist_dir)
