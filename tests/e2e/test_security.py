"""Auth, TLS and the admin API over the real gunicorn server, with requests and tritonclient."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from service.__main__ import _loopback, with_token_file
from service.config import load_settings
from tests.auth.tokenfiles import entry, write_tokens
from tests.server import Server

tritonclient_http = pytest.importorskip("tritonclient.http")
pytestmark = pytest.mark.e2e

INFER, ADMIN = "t-infer-e2e", "t-admin-e2e"


def self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def secured(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a throwaway certificate")
    root = tmp_path_factory.mktemp("secured")
    shutil.copytree(tiny_template, root / "models")
    tokens = write_tokens(
        root / "tokens.yaml", entry("web", INFER, ["infer"]), entry("ops", ADMIN, ["infer", "admin"])
    )
    cert, key = self_signed(root)
    env = {
        "AUTH_TOKENS_FILE": tokens, "TLS_CERT": cert, "TLS_KEY": key, "DATA_DIR": root / "var",
        "ACCESS_LOG": root / "access.log", "MODEL_CONTROL": "explicit",
    }  # fmt: skip
    # Explicit control: nothing is served until loaded through the admin API.
    with Server(root / "models", root / "server.log", **env) as server:
        yield server


def client(server: Server) -> tritonclient_http.InferenceServerClient:
    return tritonclient_http.InferenceServerClient(
        f"127.0.0.1:{server.port}", ssl=True, ssl_options={"ca_certs": str(server.verify)}
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_https_answers_with_the_certificate_and_plain_http_gets_nothing(secured: Server) -> None:
    assert requests.get(f"{secured.url}/v2/health/live", verify=secured.verify).json() == {"live": True}
    with pytest.raises(requests.RequestException):
        requests.get(f"http://127.0.0.1:{secured.port}/v2/health/live", timeout=5)
    with pytest.raises(requests.exceptions.SSLError):  # a client that checks certificates refuses it
        requests.get(f"{secured.url}/v2/health/live", timeout=5, verify=True)


def test_tritonclient_loads_and_unloads_only_with_the_admin_scope(secured: Server) -> None:
    triton = client(secured)
    with pytest.raises(tritonclient_http.InferenceServerException, match=r"401|token"):
        triton.load_model("regressor")
    with pytest.raises(tritonclient_http.InferenceServerException, match=r"403|admin"):
        triton.load_model("regressor", headers=bearer(INFER))
    assert not triton.is_model_ready("regressor", headers=bearer(INFER))
    triton.load_model("regressor", headers=bearer(ADMIN))
    assert triton.is_model_ready("regressor", headers=bearer(INFER))
    x = tritonclient_http.InferInput("x", [2], "FP32")
    x.set_data_from_numpy(np.array([1.0, 2.0], np.float32))
    answer = triton.infer("regressor", [x], headers=bearer(INFER))
    assert answer.as_numpy("y").tolist() == [3.5, 4.0]
    index = triton.get_model_repository_index(headers=bearer(ADMIN))
    assert {(m["name"], m["state"]) for m in index} == {("regressor", "READY")}
    triton.unload_model("regressor", headers=bearer(ADMIN))
    assert not triton.is_model_ready("regressor", headers=bearer(INFER))


def test_a_load_with_a_config_override(secured: Server) -> None:
    triton = client(secured)
    config = json.dumps({"version_policy": "all", "labels": {"first": 1}})
    triton.load_model("regressor", config=config, headers=bearer(ADMIN))
    answer = requests.post(
        f"{secured.url}/v1/models/regressor/labels/first:predict",
        json={"instances": [1.0]}, headers=bearer(INFER), verify=secured.verify,
    )  # fmt: skip
    assert answer.json() == {"predictions": [2.5]}  # version 1: 0.5x + 2
    bad = requests.post(
        f"{secured.url}/v2/repository/models/regressor/load",
        json={"parameters": {"config": "{not json"}}, headers=bearer(ADMIN), verify=secured.verify,
    )  # fmt: skip
    assert bad.status_code == 400 and "not JSON" in bad.json()["error"]


def test_the_logs_name_the_caller_never_the_token(secured: Server, tmp_path: Path) -> None:
    requests.get(f"{secured.url}/v2/models", headers=bearer(INFER), verify=secured.verify)
    root = Path(secured.env["DATA_DIR"]).parent
    deadline = time.monotonic() + 5  # the line is written once the answer has gone out
    while ' web "GET /v2/models HTTP/1.1" 200 ' not in (access := (root / "access.log").read_text()):
        assert time.monotonic() < deadline, access[-500:]
        time.sleep(0.05)
    audit = [
        json.loads(line) for line in (Path(secured.env["DATA_DIR"]) / "audit.jsonl").read_text().splitlines()
    ]
    done = {"caller": "ops", "action": "load", "model": "regressor", "outcome": "ok"}
    assert any(done.items() <= a.items() for a in audit) and all(a["at"] and a["client"] for a in audit)
    refused = [(a["caller"], a["action"]) for a in audit if a["outcome"] == "refused"]
    assert ("-", "load") in refused and ("web", "load") in refused  # no token, and the wrong scope
    everything = access + secured.log() + (root / "var" / "audit.jsonl").read_text()
    assert INFER not in everything and ADMIN not in everything


def test_only_loopback_binds_go_without_a_warning() -> None:
    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("localhost")
    assert not _loopback("0.0.0.0") and not _loopback("192.168.1.4")


def test_serving_yaml_may_name_the_token_file_and_a_bad_one_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "serving.yaml").write_text("auth_tokens_file: secrets/tokens.yaml\n")
    settings = load_settings({}, model_repository=tmp_path)
    assert with_token_file(settings).auth_tokens_file == tmp_path / "secrets" / "tokens.yaml"  # not there yet
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "tokens.yaml").write_text("tokens: [{name: x}]\n")
    with pytest.raises(ValueError, match="missing"):
        with_token_file(settings)
