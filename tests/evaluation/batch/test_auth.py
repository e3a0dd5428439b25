"""The batch job against a server with auth on: the token from --token-file on every request, 401/403 fatal."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from service.config import load_settings
from service.errors import JobError
from service.evaluation.batch.client import Backoff, HttpScorer, read_token_file
from service.http.asgi import create_app
from service.models.loading import build_registry
from tests.auth.tokenfiles import entry, write_tokens
from tests.evaluation.batch.conftest import APP_URL, DIGITS, AppAdapter, mount

Run = Callable[..., tuple[int, str, str]]
EVAL_TOKEN = "ms_eval-job-token-for-the-tests"
METRICS_TOKEN = "ms_prometheus-token-for-the-tests"
TOKENS = {"eval-job": (EVAL_TOKEN, ["infer"]), "prometheus": (METRICS_TOKEN, ["metrics"])}


class Recording(AppAdapter):
    """The in-process app, remembering the Authorization header of every request it was sent."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.authorization: list[str | None] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.authorization.append(request.headers.get("Authorization"))
        return super().send(request, **kwargs)


@pytest.fixture(scope="module")
def guarded_app(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("guarded")
    shutil.copytree(tiny_template, root / "models")
    tokens = write_tokens(root / "tokens.yaml", *(entry(n, t, s) for n, (t, s) in TOKENS.items()))
    settings = load_settings(
        {}, model_repository=root / "models", data_dir=root / "var", auth_tokens_file=tokens
    )
    registry = build_registry(settings)
    registry.sync()
    yield create_app(settings, registry)
    registry.stop()


@pytest.fixture
def guarded(guarded_app: Any, monkeypatch: pytest.MonkeyPatch) -> Recording:
    """The guarded app at APP_URL for every ``requests`` session the job opens."""
    return mount(Recording(guarded_app), monkeypatch)


def token_file(folder: Path, token: str, name: str = "job.token") -> Path:
    path = folder / name
    path.write_text(token + "\n")  # as `python -m service.auth new ... > job.token` leaves it
    return path


def job(digits_idx: Path, output: Path, *extra: object) -> tuple[object, ...]:
    common = ("--model", "digits", "--data", digits_idx, "--server", APP_URL, "--chunk-size", 100)
    return (*common, "--output", output, "--retries", 3, *extra)


def test_the_job_sends_its_token_on_every_request(
    run_cli: Run, guarded: Recording, digits_idx: Path, tmp_path: Path
) -> None:
    secret = token_file(tmp_path, EVAL_TOKEN)
    code, out, err = run_cli(*job(digits_idx, tmp_path / "report", "--token-file", secret))
    assert code == 0, err
    assert f"digits v1 on t10k: {len(DIGITS)} scored, 0 errors" in out
    # metadata (list, version), the classify probe, then 3 chunks of 100 rows
    assert guarded.authorization == [f"Bearer {EVAL_TOKEN}"] * 6
    written = [p.read_bytes() for p in (tmp_path / "report").rglob("*") if p.is_file()]
    assert written and not any(EVAL_TOKEN.encode() in content for content in written)
    assert EVAL_TOKEN not in out + err


@pytest.mark.parametrize(
    ("token", "status", "message"),
    [
        (None, 401, "This route needs a token"),
        ("ms_not-a-known-token", 401, "not known here"),
        (METRICS_TOKEN, 403, "may not use scope 'infer'"),
    ],
)
def test_a_refused_token_stops_the_job_at_once(
    run_cli: Run,
    guarded: Recording,
    digits_idx: Path,
    tmp_path: Path,
    token: str | None,
    status: int,
    message: str,
) -> None:
    extra = () if token is None else ("--token-file", token_file(tmp_path, token))
    code, out, err = run_cli(*job(digits_idx, tmp_path / "report", *extra))
    assert code == 2
    assert f"refused the job (HTTP {status}): " in err and message in err
    assert ("Pass --token-file" in err) == (token is None)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert len(guarded.authorization) == 1, "a refused credential is not retried"
    assert token is None or token not in out + err


def test_a_revoked_token_fails_the_scorer_without_retrying(guarded: Recording, tmp_path: Path) -> None:
    session = requests.Session()
    session.mount(APP_URL, guarded)
    scorer = HttpScorer(APP_URL, "regressor", backoff=Backoff(3, base=0.0), session=session, token=EVAL_TOKEN)
    assert scorer.score({"x": np.array([2.0], np.float32)}).tolist() == [4.0]
    sent = len(guarded.authorization)
    scorer.session.headers["Authorization"] = "Bearer ms_revoked"  # what a revocation looks like
    with pytest.raises(JobError, match=r"/v2/models/regressor/versions/2/infer refused the job \(HTTP 401\)"):
        scorer.score({"x": np.array([2.0], np.float32)})
    assert len(guarded.authorization) == sent + 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "does not exist"),
        ("", "is empty"),
        ("  \n", "is empty"),
        ("ms_one ms_two\n", "holds more than one word"),
    ],
)
def test_unusable_token_files_exit_2_naming_the_file_only(
    run_cli: Run, guarded: Recording, digits_idx: Path, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "job.token"
    if content is not None:
        path.write_text(content)
    code, out, err = run_cli(*job(digits_idx, tmp_path / "report", "--token-file", path))
    assert code == 2 and f"--token-file {path} {message}" in err
    assert guarded.authorization == [], "nothing is sent without a usable token"
    assert "ms_one" not in out + err


def test_token_file_is_for_server_runs(
    run_cli: Run, digits_idx: Path, tiny_template: Path, tmp_path: Path
) -> None:
    args = ("--model", "digits", "--data", digits_idx, "--offline", "--model-repository", tiny_template)
    code, _, err = run_cli(*args, "--output", tmp_path, "--token-file", token_file(tmp_path, EVAL_TOKEN))
    assert code == 2 and "--token-file is for --server" in err


def test_read_token_file_strips_the_newline(tmp_path: Path) -> None:
    assert read_token_file(token_file(tmp_path, EVAL_TOKEN)) == EVAL_TOKEN
