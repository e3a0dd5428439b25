"""A property-based fuzzer driven by /openapi.json against the real gunicorn server.

Every operation of the document gets a bounded number of generated requests (about half of them
naming a model the server really has, so they reach past the 404); every answer must be no 5xx,
carry a documented status code and content type, and match the documented schema.
"""

from __future__ import annotations

import shutil
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.server import Server

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import checks  # noqa: E402

pytestmark = pytest.mark.e2e

MODELS = ("regressor", "digits", "binary")
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def fuzzed(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(tiny_template, root / "models")
    # Remembered predictions and shadow traffic for one model: its quality routes answer past the 404.
    (root / "models" / "serving.yaml").write_text(
        "models: {digits: {feedback: {}, shadow: {fraction: 0.5}}}\n"
    )
    env = {"WORKERS": 1, "DATA_DIR": root / "var", "MAX_BODY_BYTES": 200_000, "REQUEST_TIMEOUT": 5}
    with Server(root / "models", root / "server.log", **env) as server:
        yield server


def test_every_answer_matches_the_document(fuzzed: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    session, failures = requests.Session(), []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def run(case: Any) -> None:
            parameters = case.path_parameters or {}
            if "name" in parameters and zlib.crc32(repr(sorted(parameters.items())).encode()) % 2:
                parameters["name"] = MODELS[zlib.crc32(str(parameters["name"]).encode()) % len(MODELS)]
            case.call_and_validate(checks=CHECKS, session=session, timeout=30)

        try:
            run()
        except Exception as exc:  # every operation is fuzzed; all failures are reported together
            failures.append(f"{operation.label}: {exc}"[:2000])
    assert not failures, "\n\n".join(failures)


def test_the_document_describes_every_route_with_a_summary(fuzzed: Server) -> None:
    from service.http import routes

    document = requests.get(f"{fuzzed.url}/openapi.json", timeout=10).json()
    operations = {
        op["operationId"].split("__")[0] for path in document["paths"].values() for op in path.values()
    }
    assert operations == set(routes.BY_ENDPOINT)
    assert all(op["summary"] for path in document["paths"].values() for op in path.values())
