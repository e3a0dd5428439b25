"""``make compose-secrets`` (deploy/compose_secrets.py): one working token per client, kept across runs."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.auth.tokens import load_tokens

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "compose_secrets.py"
CLIENTS = {"prometheus": ["metrics"], "evaluator": ["infer"], "smoke": ["infer", "metrics"]}


def generate(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(folder)], capture_output=True, text=True, cwd=ROOT, timeout=60
    )


def tokens(folder: Path) -> dict[str, str]:
    return {name: (folder / name / "token").read_text().strip() for name in CLIENTS}


def entries(folder: Path) -> dict[str, dict[str, object]]:
    doc = yaml.safe_load((folder / "serving" / "tokens.yaml").read_text())
    return {entry["name"]: entry for entry in doc["tokens"]}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    folder = tmp_path_factory.mktemp("compose") / "secrets"
    return folder, generate(folder)


def test_each_client_gets_a_token_the_file_knows_with_its_scopes(made: tuple[Path, Any]) -> None:
    folder, done = made
    assert done.returncode == 0, done.stderr
    known = load_tokens(folder / "serving" / "tokens.yaml")
    for name, token in tokens(folder).items():
        principal = known.authenticate(f"Bearer {token}")
        assert (principal.name, [str(s) for s in principal.scopes]) == (name, CLIENTS[name])
    assert set(entries(folder)) == {*CLIENTS, "ops"}


def test_the_ops_token_is_printed_once_and_stored_nowhere(made: tuple[Path, Any]) -> None:
    folder, done = made
    (ops,) = [line for line in done.stdout.splitlines() if line.startswith("ms_")]
    principal = load_tokens(folder / "serving" / "tokens.yaml").authenticate(f"Bearer {ops}")
    assert principal.name == "ops" and {str(s) for s in principal.scopes} == {
        "infer",
        "evaluate",
        "admin",
        "metrics",
    }
    stored = [p.read_text() for p in folder.rglob("*") if p.is_file()]
    assert not any(ops in text for text in stored)
    assert "shown only this once" in done.stderr


def test_modes_keep_the_folder_private_but_readable_through_the_mounts(made: tuple[Path, Any]) -> None:
    folder, _ = made
    assert mode(folder) == 0o700  # other host users cannot reach the tokens...
    for sub in ("serving", *CLIENTS):
        assert mode(folder / sub) == 0o755  # ...but a container's uid reaches its mount
    assert mode(folder / "serving" / "tokens.yaml") == 0o644
    assert all(mode(folder / name / "token") == 0o644 for name in CLIENTS)


def test_a_second_run_keeps_every_working_token(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    assert generate(folder).returncode == 0
    before, file_before = tokens(folder), (folder / "serving" / "tokens.yaml").read_text()
    again = generate(folder)
    assert again.returncode == 0, again.stderr
    assert tokens(folder) == before
    assert (folder / "serving" / "tokens.yaml").read_text() == file_before
    assert "made nothing" in again.stdout and "ms_" not in again.stdout  # no second ops token


def test_a_lost_or_stale_token_is_replaced_and_its_old_entry_removed(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    assert generate(folder).returncode == 0
    before, old = tokens(folder), entries(folder)
    (folder / "smoke" / "token").unlink()
    (folder / "evaluator" / "token").write_text("ms_a-token-nobody-registered\n")
    again = generate(folder)
    assert again.returncode == 0, again.stderr
    assert "made evaluator, smoke" in again.stdout
    now = tokens(folder)
    assert now["prometheus"] == before["prometheus"]
    assert now["smoke"] != before["smoke"] and now["evaluator"] != "ms_a-token-nobody-registered"
    after = entries(folder)
    assert sorted(after) == sorted(old)  # one entry per name: the stale ones were replaced
    assert after["ops"] == old["ops"] and after["smoke"]["sha256"] != old["smoke"]["sha256"]
    known = load_tokens(folder / "serving" / "tokens.yaml")
    assert known.authenticate(f"Bearer {now['smoke']}").name == "smoke"


def test_an_invalid_token_file_is_reported_not_overwritten(tmp_path: Path) -> None:
    folder = tmp_path / "secrets"
    (folder / "serving").mkdir(parents=True)
    (folder / "serving" / "tokens.yaml").write_text("tokens: [{name: x}]\n")
    done = generate(folder)
    assert done.returncode == 1 and "tokens.yaml" in done.stderr and "Traceback" not in done.stderr
    assert (folder / "serving" / "tokens.yaml").read_text() == "tokens: [{name: x}]\n"


def test_the_secrets_folder_is_never_committed_nor_sent_to_the_image() -> None:
    assert "/secrets/" in (ROOT / ".gitignore").read_text().split()
    # .dockerignore is an allow-list: "secrets" must not be re-included by a "!" line.
    included = [line for line in (ROOT / ".dockerignore").read_text().split() if line.startswith("!")]
    assert not any("secrets" in line for line in included)
