"""Tokens, scopes, revocation, browsers on other origins, CORS and rate limits, through the app gunicorn runs.

Every route of the table is tried with no token (401), a token without its scope (403) and one
with it (answered), so a route added without thinking about its scope shows up here.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from service.config import load_settings
from service.http import routes
from service.http.asgi import create_app
from service.models.loading import build_registry
from tests.auth.tokenfiles import entry, write_tokens
from tests.http.client import client_for

IMAGE = [[0.0] * 28] * 28
TOKENS = {
    "infer": ("reader", "t-infer"),
    "evaluate": ("evaluator", "t-evaluate"),
    "admin": ("operator", "t-admin"),
    "metrics": ("prometheus", "t-metrics"),
}
# One request per endpoint: (method, url, JSON body) answered 200 by a caller with the scope.
REQUESTS: dict[str, tuple[str, str, Any]] = {
    "tfs_predict": ("POST", "/v1/models/regressor:predict", {"instances": [1.0]}),
    "tfs_classify": ("POST", "/v1/models/binary:classify", {"examples": [{"features": [0.1, 0.2]}]}),
    "tfs_regress": ("POST", "/v1/models/regressor:regress", {"examples": [{"x": 1.0}]}),
    "v2_infer": ("POST", "/v2/models/regressor/infer", {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}),
    "tfs_status": ("GET", "/v1/models/regressor", None),
    "tfs_metadata": ("GET", "/v1/models/regressor/metadata", None),
    "tfs_evaluate": ("POST", "/v1/models/regressor:evaluate", {"instances": [1.0, 2.0], "labels": [2.4, 3.1]}),
    "tfs_evaluations": ("GET", "/v1/models/regressor/evaluations", None),
    "tfs_unknown_verb": ("POST", "/v1/models/regressor:explain", {}),
    "v2_server_metadata": ("GET", "/v2", None),
    "live": ("GET", "/v2/health/live", None),
    "ready": ("GET", "/v2/health/ready", None),
    "v2_models": ("GET", "/v2/models", None),
    "v2_model_metadata": ("GET", "/v2/models/regressor", None),
    "v2_model_ready": ("GET", "/v2/models/regressor/ready", None),
    "v2_evaluate": ("POST", "/v2/models/regressor/evaluate", {"instances": [1.0, 2.0], "labels": [2.4, 3.1]}),
    "v2_repository_index": ("POST", "/v2/repository/index", {}),
    "v2_repository_load": ("POST", "/v2/repository/models/binary/load", {}),
    "v2_repository_unload": ("POST", "/v2/repository/models/digits/unload", {}),
    "metrics": ("GET", "/metrics", None),
    "tfs_feedback": ("POST", "/v1/models/regressor:feedback", {"feedback": [{"id": "r1", "labels": [1.0]}]}),
    "v2_feedback": ("POST", "/v2/models/regressor/feedback", {"feedback": [{"id": "r1", "labels": [1.0]}]}),
    "tfs_quality": ("GET", "/v1/models/regressor/quality", None),
    "tfs_shadow": ("GET", "/v1/models/regressor/shadow", None),
    "tfs_card": ("GET", "/v1/models/regressor/card", None),
    "tfs_training_curves": ("GET", "/v1/models/regressor/card/training_curves.png", None),
    "console_index": ("GET", "/", None),
    "console_file": ("GET", "/console/console.css", None),
    "openapi": ("GET", "/openapi.json", None),
    "api_docs": ("GET", "/docs", None),
    "api_docs_file": ("GET", "/docs/start.js", None),
}  # fmt: skip
# Answered, but the route's own answer is a 404 (the tiny test models have no training curves).
EXPECTED = {"tfs_unknown_verb": 404, "tfs_training_curves": 404}


def bearer(scope: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[scope][1]}"}


@pytest.fixture
def root(tiny_template: Path, tmp_path: Path) -> Path:
    shutil.copytree(tiny_template, tmp_path / "models")
    entries = [entry(name, token, [scope]) for scope, (name, token) in TOKENS.items()]
    write_tokens(tmp_path / "tokens.yaml", *entries, entry("digits-only", "t-digits", ["infer:dig*"]))
    # Remembered predictions and shadow traffic for one model, so their routes answer 200.
    (tmp_path / "models" / "serving.yaml").write_text(
        "models: {regressor: {feedback: {}, shadow: {fraction: 0.5}}}\n"
    )
    return tmp_path


@pytest.fixture
def make_client(root: Path) -> Iterator[Any]:
    registries = []

    def make(**overrides: Any) -> Client:
        settings = load_settings(
            {}, model_repository=root / "models", data_dir=root / "var", poll_interval=0.1,
            auth_tokens_file=root / "tokens.yaml", **overrides,
        )  # fmt: skip
        registry = build_registry(settings)
        registry.sync()
        registries.append(registry)
        return client_for(create_app(settings, registry))

    yield make
    for registry in registries:
        registry.stop()


def call(client: Client, endpoint: str, headers: dict[str, str]) -> Any:
    method, url, body = REQUESTS[endpoint]
    return client.open(url, method=method, json=body, headers=headers)


def test_every_route_is_in_the_table_of_requests() -> None:
    assert set(REQUESTS) == set(routes.BY_ENDPOINT)


@pytest.mark.parametrize("endpoint", sorted(REQUESTS))
def test_each_route_needs_its_scope(make_client: Any, endpoint: str) -> None:
    client, route = make_client(), routes.BY_ENDPOINT[endpoint]
    if route.scope is None:
        assert call(client, endpoint, {}).status_code == 200
        return
    anonymous = call(client, endpoint, {})
    assert anonymous.status_code == 401 and anonymous.mimetype == "application/json"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    other = next(s for s in TOKENS if s != route.scope)
    refused = call(client, endpoint, bearer(other))
    assert refused.status_code == 403 and f"scope {route.scope!r}" in refused.get_json()["error"]
    allowed = call(client, endpoint, bearer(route.scope))
    assert allowed.status_code == EXPECTED.get(endpoint, 200), allowed.get_data()[:300]


def test_a_narrowed_scope_reaches_only_its_models(make_client: Any) -> None:
    client, headers = make_client(), {"Authorization": "Bearer t-digits"}
    assert (
        client.post("/v1/models/digits:predict", json={"instances": [IMAGE]}, headers=headers).status_code
        == 200
    )
    refused = client.post("/v1/models/regressor:predict", json={"instances": [1.0]}, headers=headers)
    assert refused.status_code == 403 and "'regressor'" in refused.get_json()["error"]
    assert client.get("/v2/models", headers=headers).status_code == 403  # a list names no model


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer t-infer extra", "Bearer wrong-token", "t-infer"]
)
def test_malformed_or_unknown_tokens_are_401(make_client: Any, header: str) -> None:
    response = make_client().get("/v2/models", headers={"Authorization": header})
    assert response.status_code == 401 and "t-infer" not in response.get_json()["error"]


def test_editing_the_file_revokes_a_token_without_a_restart(make_client: Any, root: Path) -> None:
    client = make_client()
    assert client.get("/v2/models", headers=bearer("infer")).status_code == 200
    write_tokens(root / "tokens.yaml", entry("operator", "t-admin", ["admin"]))
    deadline = time.monotonic() + 5
    while client.get("/v2/models", headers=bearer("infer")).status_code != 401:
        assert time.monotonic() < deadline, "the revoked token still works"
        time.sleep(0.05)
    assert client.post("/v2/repository/index", headers=bearer("admin")).status_code == 200


def test_an_invalid_edit_keeps_the_last_good_tokens(make_client: Any, root: Path) -> None:
    client = make_client()
    (root / "tokens.yaml").write_text("tokens: [{name: broken}]\n")
    time.sleep(0.3)
    assert client.get("/v2/models", headers=bearer("infer")).status_code == 200


def test_a_cross_origin_form_post_is_refused(make_client: Any) -> None:
    client = make_client()
    form = {"Origin": "http://evil.example", "Content-Type": "text/plain", **bearer("evaluate")}
    body = b'{"instances": [1.0], "labels": [2.5]}'
    response = client.post("/v1/models/regressor:evaluate", data=body, headers=form)
    assert response.status_code == 403 and "http://evil.example" in response.get_json()["error"]
    assert client.get("/v1/models/regressor/evaluations", headers=bearer("evaluate")).get_json() == {
        "evaluations": []
    }  # nothing was recorded
    same_site = {**form, "Origin": "http://localhost"}
    assert client.post("/v1/models/regressor:evaluate", data=body, headers=same_site).status_code == 415
    as_json = {**same_site, "Content-Type": "application/json"}
    assert client.post("/v1/models/regressor:evaluate", data=body, headers=as_json).status_code == 200


def test_cors_is_off_unless_an_origin_is_allowed(make_client: Any) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    closed = make_client().options("/v1/models/regressor:predict", headers=preflight)
    assert closed.status_code == 403 and "Access-Control-Allow-Origin" not in closed.headers
    client = make_client(cors_origins=("https://app.example",))
    opened = client.options("/v1/models/regressor:predict", headers=preflight)
    assert opened.status_code == 204
    assert opened.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Authorization" in opened.headers["Access-Control-Allow-Headers"]
    answer = client.post(
        "/v1/models/regressor:predict",
        json={"instances": [1.0]},
        headers={"Origin": "https://app.example", **bearer("infer")},
    )
    assert (
        answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == "https://app.example"
    )
    other = client.get("/v2/models", headers={"Origin": "https://other.example", **bearer("infer")})
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers
    assert client.options("/v2/models").status_code == 405  # not a preflight: no Origin


def test_the_rate_limit_answers_429_with_retry_after(make_client: Any) -> None:
    from prometheus_client import REGISTRY

    def limited() -> float:
        return REGISTRY.get_sample_value("serving_rate_limited_total", {"token": "reader"}) or 0.0

    client, before = make_client(rate_limit="1/s,burst=2"), limited()
    answers = [client.get("/v2/models", headers=bearer("infer")).status_code for _ in range(3)]
    assert answers == [200, 200, 429]
    refused = client.get("/v2/models", headers=bearer("infer"))
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.mimetype == "application/json" and limited() == before + 2
    assert client.get("/v2/models", headers=bearer("admin")).status_code == 403  # its own budget
    assert client.get("/v2/health/ready").status_code == 200  # health is never limited


def test_guessing_tokens_spends_the_address_budget(make_client: Any) -> None:
    client = make_client(rate_limit="1/s,burst=2")
    guesses = [
        client.get("/v2/models", headers={"Authorization": f"Bearer g{i}"}).status_code for i in range(3)
    ]
    assert guesses == [401, 401, 429]


@pytest.mark.parametrize("url", ["/v2/models", "/v1/models/regressor:predict", "/nowhere"])
def test_answers_carry_security_headers_and_no_server_software(make_client: Any, url: str) -> None:
    response = make_client().post(url, json={"instances": [1.0]}, headers=bearer("infer"))
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Server"] == "model-serving"


def test_without_a_token_file_everything_is_open(tiny_template: Path, tmp_path: Path) -> None:
    settings = load_settings({}, model_repository=tiny_template, data_dir=tmp_path / "var")
    registry = build_registry(settings)
    registry.sync()
    try:
        client = client_for(create_app(settings, registry))
        assert client.get("/v2/models").status_code == 200
        assert client.post("/v2/repository/index").status_code == 200
    finally:
        registry.stop()


def test_a_token_file_not_there_yet_closes_every_guarded_route(tiny_template: Path, tmp_path: Path) -> None:
    settings = load_settings(
        {},
        model_repository=tiny_template,
        data_dir=tmp_path / "var",
        auth_tokens_file=tmp_path / "later.yaml",
    )
    registry = build_registry(settings)
    registry.sync()
    try:
        client = client_for(create_app(settings, registry))
        assert client.get("/v2/models").status_code == 401
        assert client.get("/v2/health/ready").status_code == 200
    finally:
        registry.stop()
