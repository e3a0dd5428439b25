"""One real gunicorn server for the gRPC end-to-end tests: the tiny models, a stalling one, labels."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import Server

SERVING_YAML = """\
models:
  regressor:
    version_policy: all
    labels: {stable: 1, canary: 2}
  digits:
    feedback: {}
"""
MAX_BODY_BYTES = 2_000_000


@pytest.fixture(scope="package")
def grpc_server(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One worker, so every call (gRPC or HTTP) meets the same batchers: batching is observable."""
    from service.models.repository import Repository
    from tests.grpc.stall_model import export_stall

    root = tmp_path_factory.mktemp("grpc-e2e")
    shutil.copytree(tiny_template, root / "models")
    export_stall(Repository(root / "models"))
    (root / "models" / "serving.yaml").write_text(SERVING_YAML)
    env = {"WORKERS": 1, "MAX_BODY_BYTES": MAX_BODY_BYTES, "DATA_DIR": root / "var"}
    with Server(root / "models", root / "server.log", **env) as server:
        yield server
