"""Data files, the service in-process behind ``requests`` (no sockets), and a CLI runner."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests
from requests.structures import CaseInsensitiveDict

from service.config import load_settings
from service.datafiles import write_idx
from service.evaluation.batch import cli, client
from service.http.asgi import create_app
from service.models.loading import build_registry
from tests.http.client import client_for

APP_URL = "http://service.test"
IMAGES = np.random.default_rng(4).integers(0, 256, (300, 28, 28), dtype=np.uint8)
DIGITS = np.random.default_rng(5).integers(0, 10, 300).astype(np.uint8)


@pytest.fixture(scope="session")
def digits_idx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("idx")
    write_idx(folder / "t10k-images-idx3-ubyte.gz", IMAGES)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", DIGITS)
    return folder


class AppAdapter(requests.adapters.BaseAdapter):
    """Sends ``requests`` calls to the app gunicorn runs, in-process, so HTTP scoring needs no server."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app
        self.client = client_for(app)
        self.calls = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.calls += 1
        url = urlsplit(request.url or "")
        path = url.path + (f"?{url.query}" if url.query else "")
        answer = self.client.open(
            path, method=request.method, data=request.body, headers=dict(request.headers)
        )
        response = requests.Response()
        response.status_code, response._content = answer.status_code, answer.data
        response.headers = CaseInsensitiveDict(answer.headers)
        response.url, response.request, response.reason = request.url or "", request, answer.status
        return response

    def close(self) -> None:
        pass


A = TypeVar("A", bound=AppAdapter)


@pytest.fixture(scope="module")
def service_app(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The tiny repository (every version of the regressor) in an app, shared by a module's tests."""
    root = tmp_path_factory.mktemp("served")
    shutil.copytree(tiny_template, root / "models")
    (root / "models" / "serving.yaml").write_text("models:\n  regressor:\n    version_policy: all\n")
    settings = load_settings({}, model_repository=root / "models", data_dir=root / "var")
    registry = build_registry(settings)
    registry.sync()
    yield create_app(settings, registry)
    registry.stop()


@pytest.fixture
def served(service_app: Any, monkeypatch: pytest.MonkeyPatch) -> AppAdapter:
    """The app at APP_URL for every ``requests`` session the job opens."""
    return mount(AppAdapter(service_app), monkeypatch)


def mount(adapter: A, monkeypatch: pytest.MonkeyPatch) -> A:
    """Make every ``requests`` session the job opens reach ``adapter`` at APP_URL."""

    def session(pool_size: int) -> requests.Session:
        s = requests.Session()
        s.mount(APP_URL, adapter)
        return s

    monkeypatch.setattr(client, "_session", session)
    return adapter


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """``evaluate-model`` with these arguments: (exit status, stdout, stderr)."""

    def run(*args: Any) -> tuple[int, str, str]:
        code = cli.main([str(a) for a in (*args, "--quiet")])
        out, err = capsys.readouterr()
        return code, out, err

    return run
