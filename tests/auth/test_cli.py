"""``python -m service.auth``: new (printed or appended atomically), hash and check."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from service.auth.__main__ import TOKEN_PREFIX, main
from service.auth.tokens import load_tokens, parse_tokens, token_digest
from tests.auth.tokenfiles import entry, write_tokens

ROOT = Path(__file__).resolve().parents[2]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_new_prints_the_token_alone_on_stdout_and_an_entry_that_admits_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "new", "web-frontend", "--scopes", "infer, evaluate:mnist*")
    assert code == 0
    token = out.strip()
    assert out.count("\n") == 1 and token.startswith(TOKEN_PREFIX)
    assert len(token) > len(TOKEN_PREFIX) + 40  # 32 random bytes, base64url
    assert token not in err
    line = next(line for line in err.splitlines() if line.lstrip().startswith("- {"))
    tokens = parse_tokens(f"tokens:\n{line}\n", "printed entry")
    principal = tokens.authenticate(f"Bearer {token}")
    assert principal.name == "web-frontend"
    assert [str(s) for s in principal.scopes] == ["infer", "evaluate:mnist*"]


def test_each_new_token_is_different(capsys: pytest.CaptureFixture[str]) -> None:
    first = run(capsys, "new", "a", "--scopes", "infer")[1]
    second = run(capsys, "new", "a", "--scopes", "infer")[1]
    assert first != second


def test_new_with_file_creates_it_owner_only_and_the_token_authenticates(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "tokens.yaml"
    code, out, _ = run(capsys, "new", "ops", "--scopes", "infer,admin", "--file", str(path))
    assert code == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_tokens(path).authenticate(f"Bearer {out.strip()}").name == "ops"
    assert out.strip() not in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["tokens.yaml"]  # no temp file left behind


def test_appending_keeps_comments_layout_mode_and_the_other_tokens(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "tokens.yaml"
    digest = entry("a", "t-a", ["metrics"])["sha256"]
    original = f'# prometheus scrapes with this one\ntokens:\n    - {{name: a, sha256: "{digest}", scopes: [metrics]}}\n'
    path.write_text(original)
    path.chmod(0o640)
    code, out, _ = run(capsys, "new", "b", "--scopes", "infer", "--file", str(path))
    assert code == 0
    text = path.read_text()
    assert text.startswith(original)
    assert text.splitlines()[-1].startswith("    - {name: b, ")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    tokens = load_tokens(path)
    assert tokens.names == ("a", "b")
    assert tokens.authenticate("Bearer t-a").name == "a"
    assert tokens.authenticate(f"Bearer {out.strip()}").name == "b"


def test_a_flow_style_list_is_rewritten_with_a_note(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text("tokens: []  # none yet\n")
    code, out, err = run(capsys, "new", "c", "--scopes", "metrics", "--file", str(path))
    assert code == 0
    assert "comments were not kept" in err
    assert load_tokens(path).authenticate(f"Bearer {out.strip()}").name == "c"


@pytest.mark.parametrize(
    ("existing", "message"),
    [
        ("duplicate", "a token named 'a' exists already"),
        ("invalid", "sha256 must be 64 hex digits"),
    ],
)
def test_new_refuses_a_duplicate_name_or_an_invalid_file_and_leaves_it_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, existing: str, message: str
) -> None:
    path = tmp_path / "tokens.yaml"
    if existing == "duplicate":
        write_tokens(path, entry("a", "t-a", ["infer"]))
    else:
        path.write_text("tokens: [{name: z, sha256: abc, scopes: [infer]}]\n")
    before = path.read_bytes()
    code, out, err = run(capsys, "new", "a", "--scopes", "infer", "--file", str(path))
    assert code == 1
    assert out == ""  # no token was shown for an entry that was never stored
    assert message in err and err.count("\n") == 1
    assert path.read_bytes() == before


def test_new_reports_an_unwritable_folder_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run(
        capsys, "new", "a", "--scopes", "infer", "--file", str(tmp_path / "missing" / "t.yaml")
    )
    assert (code, out) == (1, "")
    assert "cannot write it" in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "required: command"),
        (["new", "a"], "required: --scopes"),
        (["new", "a b", "--scopes", "infer"], "name 'a b' must be"),
        (["new", "a", "--scopes", "infr"], "'infr' is not one of"),
        (["new", "a", "--scopes", "infer,"], "'' is not one of"),
        (["new", "a", "--scopes", "infer,infer"], "lists a scope twice"),
        (["new", "a", "--scopes", "infer:a/b"], "model pattern"),
        (["check"], "required: file"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_argument_errors_exit_2_on_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert message in err and err.count("\n") == 1 and err.startswith("python -m service.auth")


@pytest.mark.parametrize("stdin", ["ms_abc\n", "  ms_abc  ", "ms_abc"])
def test_hash_prints_the_digest_of_the_token_read_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stdin: str
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code, out, _ = run(capsys, "hash")
    assert code == 0
    assert out == token_digest("ms_abc").hex() + "\n"


@pytest.mark.parametrize(("stdin", "message"), [("", "no token"), ("\n", "no token"), ("a b", "whitespace")])
def test_hash_refuses_an_empty_or_unsendable_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stdin: str, message: str
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code, out, err = run(capsys, "hash")
    assert (code, out) == (1, "")
    assert message in err


def test_check_accepts_a_valid_file_and_names_its_tokens(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write_tokens(tmp_path / "t.yaml", entry("a", "t-a", ["infer"]), entry("b", "t-b", ["admin"]))
    code, out, _ = run(capsys, "check", str(path))
    assert code == 0
    assert "2 valid token(s): a, b." in out


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read it"), ("tokens: [{name: a, sha256: x, scopes: [infer]}]\n", "tokens[0] 'a'")],
)
def test_check_rejects_a_missing_or_invalid_file_with_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "t.yaml"
    if content is not None:
        path.write_text(content)
    code, _, err = run(capsys, "check", str(path))
    assert code == 1
    assert message in err and err.count("\n") == 1


def test_the_module_runs_as_a_command_and_hash_agrees_with_new(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "service.auth"]
    made = subprocess.run(
        [*command, "new", "job", "--scopes", "evaluate", "--file", str(path)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    token = made.stdout.strip()
    hashed = subprocess.run(
        [*command, "hash"], input=token, capture_output=True, text=True, env=env, check=True
    )
    assert yaml.safe_load(path.read_text())["tokens"][0]["sha256"] == hashed.stdout.strip()
    checked = subprocess.run([*command, "check", str(path)], capture_output=True, text=True, env=env)
    assert checked.returncode == 0
