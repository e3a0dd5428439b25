"""The OpenAPI description: generated from the route table, valid OpenAPI 3.1, served with its docs page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openapi_spec_validator import validate
from werkzeug.test import Client

from service.config import load_settings
from service.http import openapi, routes
from service.http.asgi import create_app
from service.models.loading import build_registry
from tests.http.client import client_for


@pytest.fixture(scope="module")
def client(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    settings = load_settings({}, model_repository=tiny_template, data_dir=tmp_path_factory.mktemp("var"))
    registry = build_registry(settings)
    registry.sync()
    yield client_for(create_app(settings, registry))
    registry.stop()


def test_every_route_has_a_description_and_nothing_else_does() -> None:
    assert set(openapi.DOCS) == set(routes.BY_ENDPOINT)


def test_a_route_without_a_description_fails_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = dict(openapi.DOCS)
    del docs["tfs_predict"]
    monkeypatch.setattr(openapi, "DOCS", docs)
    with pytest.raises(KeyError, match="tfs_predict"):
        openapi.build("0")


def test_the_document_is_valid_openapi_3_1_with_every_rule_and_method() -> None:
    document = openapi.build("0.1.0")
    validate(document)
    operations = {(path, method) for path, ops in document["paths"].items() for method in ops}
    expected = {
        (openapi._path(rule), method.lower())
        for route in routes.ROUTES
        for rule in route.rules
        for method in route.methods
    }
    assert operations == expected


def test_scopes_and_errors_follow_the_table() -> None:
    paths = openapi.build("0")["paths"]
    predict = paths["/v1/models/{name}:predict"]["post"]
    assert predict["security"] == [{"bearer": []}] and "`infer`" in predict["description"]
    assert {"400", "401", "403", "404", "413", "415", "429", "503"} <= set(predict["responses"])
    assert "Retry-After" in predict["responses"]["429"]["headers"]
    live = paths["/v2/health/live"]["get"]
    assert live["security"] == [] and "401" not in live["responses"]
    infer = paths["/v2/models/{name}/infer"]["post"]
    assert {"application/json", "application/octet-stream"} <= set(infer["requestBody"]["content"])
    assert any(p["name"] == routes.BINARY_HEADER for p in infer["parameters"])


def test_the_document_and_its_page_are_served(client: Client) -> None:
    document = client.get("/openapi.json")
    assert document.status_code == 200 and document.get_json()["openapi"] == "3.1.0"
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for asset in ("/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css", "/docs/start.js"):
        answer = client.get(asset)
        assert answer.status_code == 200 and answer.data, asset
    assert client.get("/docs/../openapi.json").status_code == 404
    assert client.get("/docs/nothing.js").status_code == 404
