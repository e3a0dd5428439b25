"""Requests the guard refuses (401, 403, 429) are counted in serving_requests_total, without a model."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from werkzeug.test import Client

from service.config import load_settings
from service.http.asgi import create_app
from service.models.loading import build_registry
from tests.auth.tokenfiles import entry, write_tokens
from tests.http.client import client_for

READER, OPERATOR = {"Authorization": "Bearer t-read"}, {"Authorization": "Bearer t-ops"}


@pytest.fixture
def client(tiny_template: Path, tmp_path: Path) -> Iterator[Client]:
    shutil.copytree(tiny_template, tmp_path / "models")
    tokens = write_tokens(
        tmp_path / "tokens.yaml", entry("reader", "t-read", ["infer"]), entry("ops", "t-ops", ["admin"])
    )
    settings = load_settings(
        {}, model_repository=tmp_path / "models", data_dir=tmp_path / "var",
        auth_tokens_file=tokens, rate_limit="1/h,burst=3",
    )  # fmt: skip
    registry = build_registry(settings)
    registry.sync()
    yield client_for(create_app(settings, registry))
    registry.stop()


def counted(protocol: str, endpoint: str, code: int, model: str = "") -> float:
    labels = {"model": model, "version": "", "protocol": protocol, "endpoint": endpoint, "code": str(code)}
    if model:
        labels["version"] = "2"
    return REGISTRY.get_sample_value("serving_requests_total", labels) or 0.0


def test_refusals_are_counted_with_the_route_labels_and_no_model(client: Client) -> None:
    cases: list[tuple[tuple[str, str, int], Any]] = [
        (("tfserving", "predict", 401), lambda: client.post("/v1/models/regressor:predict", json={})),
        (("v2", "infer", 403), lambda: client.post("/v2/models/regressor/infer", json={}, headers=OPERATOR)),
        # Routes without metric labels of their own get them from the table.
        (
            ("v2", "repository_load", 403),
            lambda: client.post("/v2/repository/models/binary/load", headers=READER),
        ),
        (("http", "metrics", 403), lambda: client.get("/metrics", headers=READER)),
    ]
    for labels, call in cases:
        before = counted(*labels)
        assert call().status_code == labels[2]
        assert counted(*labels) == before + 1, labels


def test_rate_limited_requests_are_counted_as_429(client: Client) -> None:
    url, body = "/v1/models/regressor:predict", {"instances": [1.0]}
    limited, unresolved = counted("tfserving", "predict", 429), counted("tfserving", "predict", 200)
    codes = [client.post(url, json=body, headers=READER).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    assert counted("tfserving", "predict", 429) == limited + 2
    assert counted("tfserving", "predict", 200) == unresolved  # answered ones name their model as before
