"""The console's server side: model cards, training-curve images and the static files."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.test import Client

from service.config import load_settings
from service.http.asgi import create_app
from service.models.loading import build_registry
from service.models.repository import Repository
from tests.http.client import client_for

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "service" / "http" / "console"
REAL_CURVES = ROOT / "models" / "mnist" / "1" / "assets.extra" / "training_curves.png"


@pytest.fixture(scope="module")
def repo(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny repository plus: labels on regressor, a broken binary v2 next to the good v1, a model
    whose only version is broken, and a real training-curve image on digits."""
    from tests.fixtures.tiny_models import corrupt_version

    root = tmp_path_factory.mktemp("console-routes") / "models"
    shutil.copytree(tiny_template, root)
    (root / "serving.yaml").write_text(
        "models:\n  regressor:\n    version_policy: all\n    labels: {stable: 1, canary: 2}\n"
    )
    corrupt_version(Repository(root), "binary")
    corrupt_version(Repository(root), "broken")
    shutil.copy(REAL_CURVES, root / "digits" / "1" / "assets.extra" / "training_curves.png")
    return root


@pytest.fixture(scope="module")
def client(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    settings = load_settings({}, model_repository=repo, data_dir=tmp_path_factory.mktemp("var"))
    registry = build_registry(settings)
    registry.sync()
    yield client_for(create_app(settings, registry))
    registry.stop()


def stored_card(repo: Path, name: str, version: int) -> dict:
    return Repository(repo).read_card(name, version).to_dict()


def reasons(client: Client) -> dict[tuple[str, str], tuple[str, str]]:
    return {
        (m["name"], m["version"]): (m["state"], m["reason"])
        for m in client.get("/v2/models").get_json()["models"]
    }


# ---- cards ---------------------------------------------------------------------------------------
def test_every_version_has_its_card_with_state_and_error(client: Client, repo: Path) -> None:
    index = reasons(client)
    assert ("binary", "2") in index and index[("binary", "2")][0] == "END"
    for (name, version), (state, reason) in index.items():
        response = client.get(f"/v1/models/{name}/versions/{version}/card")
        assert response.status_code == 200, response.get_json()
        doc = response.get_json()
        assert (doc["name"], doc["version"], doc["state"], doc["error"]) == (name, version, state, reason)
        assert doc["card"] == stored_card(repo, name, int(version))


def test_labels_of_a_version_and_label_routes(client: Client) -> None:
    assert client.get("/v1/models/regressor/versions/1/card").get_json()["labels"] == ["stable"]
    assert client.get("/v1/models/regressor/versions/2/card").get_json()["labels"] == ["canary"]
    assert client.get("/v1/models/digits/versions/1/card").get_json()["labels"] == []
    assert client.get("/v1/models/regressor/labels/stable/card").get_json()["version"] == "1"


def test_without_a_version_the_card_is_of_the_version_predict_uses(client: Client) -> None:
    body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    served = client.post("/v2/models/regressor/infer", json=body).get_json()["model_version"]
    assert client.get("/v1/models/regressor/card").get_json()["version"] == served
    # binary v2 is broken: the card without a version is v1's, the one that answers.
    assert client.get("/v1/models/binary/card").get_json()["version"] == "1"


def test_a_model_with_no_available_version_has_no_default_card(client: Client) -> None:
    response = client.get("/v1/models/broken/card")
    assert response.status_code == 503
    assert "broken" in response.get_json()["error"]
    assert client.get("/v1/models/broken/versions/1/card").get_json()["state"] == "END"


def test_training_curves_image(client: Client, repo: Path) -> None:
    doc = client.get("/v1/models/digits/versions/1/card").get_json()
    assert doc["training_curves"] == "/v1/models/digits/versions/1/card/training_curves.png"
    response = client.get(doc["training_curves"])
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.data == REAL_CURVES.read_bytes()
    again = client.get(doc["training_curves"], headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/v1/models/digits/card/training_curves.png").data == response.data


def test_training_curves_absent_is_a_json_404(client: Client) -> None:
    assert client.get("/v1/models/regressor/versions/1/card").get_json()["training_curves"] is None
    response = client.get("/v1/models/regressor/versions/1/card/training_curves.png")
    assert response.status_code == 404
    assert "training-curve" in response.get_json()["error"]


@pytest.mark.parametrize(
    ("method", "url", "status", "names"),
    [
        ("GET", "/v1/models/nope/card", 404, "nope"),
        ("GET", "/v1/models/regressor/versions/9/card", 404, "9"),
        ("GET", "/v1/models/regressor/versions/abc/card", 404, "abc"),
        ("GET", "/v1/models/regressor/labels/gold/card", 404, "gold"),
        ("GET", "/v1/models/nope/versions/1/card/training_curves.png", 404, "nope"),
        ("GET", "/v1/models/..%2f..%2fetc/card", 404, "etc"),
        ("POST", "/v1/models/regressor/card", 405, "GET"),
        ("POST", "/v1/models/digits/versions/1/card/training_curves.png", 405, "GET"),
        ("PUT", "/v1/models/regressor/card", 405, "PUT"),
    ],
)
def test_card_errors_are_json(client: Client, method: str, url: str, status: int, names: str) -> None:
    response = client.open(url, method=method)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert names in response.get_json()["error"]


# ---- static files ---------------------------------------------------------------------------------
TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


def test_index_and_everything_it_loads_are_served_with_their_types(client: Client) -> None:
    index = client.get("/")
    assert index.status_code == 200
    assert index.mimetype == "text/html"
    assert index.data == (CONSOLE / "index.html").read_bytes()
    referenced = re.findall(r'(?:src|href)="(console/[^"]+)"', index.get_data(as_text=True))
    assert referenced, "index.html loads nothing from console/"
    for path in referenced:
        response = client.get(f"/{path}")
        assert response.status_code == 200, path
        assert response.mimetype == TYPES[Path(path).suffix], path


def test_every_module_import_resolves_to_a_served_file(client: Client) -> None:
    for module in CONSOLE.glob("*.js"):
        for imported in re.findall(r"from '\./([^']+)'", module.read_text()):
            response = client.get(f"/console/{imported}")
            assert response.status_code == 200, f"{module.name} imports {imported}"
            assert response.mimetype == "text/javascript"


def test_security_headers_and_revalidation(client: Client) -> None:
    response = client.get("/console/main.js")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "connect-src 'self'" in policy
    cached = client.get("/console/main.js", headers={"If-None-Match": response.headers["ETag"]})
    assert cached.status_code == 304
    assert client.head("/").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/console/nope.js",
        "/console/__init__.py",
        "/console/../service/api.py",
        "/console/%2e%2e/app.py",
        "/console/..%2f..%2fpyproject.toml",
        "/console/",
        "/console/sub/index.html",
        "/console/INDEX.HTML",
    ],
)
def test_unknown_console_files_are_a_json_404(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert json.loads(response.data)["error"]


def test_only_get_on_the_console(client: Client) -> None:
    response = client.post("/", data=b"{}")
    assert response.status_code == 405
    assert response.get_json()["error"]
