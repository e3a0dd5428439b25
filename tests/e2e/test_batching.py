"""Micro-batching over real gunicorn: concurrent answers equal one-at-a-time answers exactly."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.server import Server

pytestmark = pytest.mark.e2e


def _predict(url: str, image: np.ndarray) -> list[float]:
    response = requests.post(url, json={"instances": [image.tolist()]}, timeout=30)
    response.raise_for_status()
    return response.json()["predictions"][0]["probabilities"]


@pytest.fixture(scope="module")
def images(mnist_dir: Path) -> np.ndarray:
    from service.datafiles import find_idx_sets, read_idx_set

    (pair,) = find_idx_sets(mnist_dir).values()
    return (read_idx_set(*pair).images[:96] / 255.0).astype(np.float32)


def _batch_sizes(server: Server) -> float:
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    count = sum(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("serving_batch_size_count")
    )
    total = sum(
        float(line.split()[-1]) for line in text.splitlines() if line.startswith("serving_batch_size_sum")
    )
    return total / count if count else 0.0


def test_batched_results_equal_unbatched(server: Server, images: np.ndarray) -> None:
    url = f"{server.url}/v1/models/digits:predict"
    sequential = [_predict(url, image) for image in images]
    mean_before = _batch_sizes(server)
    with ThreadPoolExecutor(max_workers=24) as pool:
        concurrent = list(pool.map(lambda image: _predict(url, image), images))
    # the JSON floats are the float32 outputs' shortest repr: equal lists mean equal bits
    assert concurrent == sequential
    assert _batch_sizes(server) > mean_before  # concurrency did merge requests
    whole = requests.post(url, json={"instances": images.tolist()}, timeout=30).json()["predictions"]
    assert [row["probabilities"] for row in whole] == sequential
