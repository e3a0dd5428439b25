"""Fixtures for the training tests: a small MNIST folder and a one-call CLI runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from service.datafiles import find_idx_sets, read_idx_set, write_idx

SMALL_MNIST = 2000  # the default hold-out (1,500) plus a little to train on


@pytest.fixture(scope="session")
def small_mnist(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> Path:
    """2,000 digits as one IDX set: real ones from the shared sample, random pixels if it is absent."""
    folder = tmp_path_factory.mktemp("small-mnist")
    sets = find_idx_sets(mnist_dir)
    if sets:
        digits = read_idx_set(*next(iter(sets.values())))
        images, labels = digits.images[:SMALL_MNIST], digits.labels[:SMALL_MNIST].astype(np.uint8)
    else:
        rng = np.random.default_rng(0)
        images = rng.integers(0, 256, (SMALL_MNIST, 28, 28), dtype=np.uint8)
        labels = (np.arange(SMALL_MNIST) % 10).astype(np.uint8)
    write_idx(folder / "small-images-idx3-ubyte.gz", images)
    write_idx(folder / "small-labels-idx1-ubyte.gz", labels)
    return folder


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    """Run ``python -m training`` in-process: (exit code, stdout, stderr)."""
    from training.__main__ import main

    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.delenv("MODEL_REPOSITORY", raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
