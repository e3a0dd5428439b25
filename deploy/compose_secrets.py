"""Make the compose stack's token file and one token per client, keeping the tokens that still work.

    python deploy/compose_secrets.py [FOLDER]      # `make compose-secrets`; FOLDER defaults to secrets

Writes, with ``python -m service.auth new`` (the project's token CLI):

    FOLDER/serving/tokens.yaml     the server's token file: names, SHA-256 digests and scopes only
    FOLDER/prometheus/token        scope metrics          (Prometheus' credentials_file)
    FOLDER/evaluator/token         scope infer            (the batch job's --token-file)
    FOLDER/smoke/token             scopes infer, metrics  (deploy/smoke_check.py --token-file)

plus an ``ops`` token (infer, evaluate, admin, metrics) that is printed once and stored nowhere.
docker-compose.yml mounts each subfolder read-only at /run/secrets/model-serving in its service
(a folder, not a file, so a token file replaced by rename is seen inside the container).

Run it again at any time: a client whose token file still matches its entry keeps it; one whose
file is gone, no longer matches or needs other scopes gets a new token (its old entry removed);
``ops`` is made only when the token file has no ``ops`` entry. FOLDER itself is private (0700);
its subfolders and files must be readable by the containers' users (uid 10001, Prometheus'
nobody), which reach them through their mounts without passing through FOLDER.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from service.auth.tokens import TokenFileError, Tokens, load_tokens
from service.errors import Unauthorized
from service.files import write_atomic

CLIENTS = {"prometheus": ("metrics",), "evaluator": ("infer",), "smoke": ("infer", "metrics")}
OPS = ("ops", ("infer", "evaluate", "admin", "metrics"))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0] if args else "secrets")
    try:
        made = generate(folder)
    except (TokenFileError, subprocess.CalledProcessError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    kept = [name for name in (*CLIENTS, OPS[0]) if name not in made]
    print(f"{folder}: made {', '.join(made) or 'nothing'}; kept {', '.join(kept) or 'nothing'}.")
    return 0


def generate(folder: Path) -> list[str]:
    """Bring ``folder`` up to date; return the names of the tokens made this time."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    tokens_file = folder / "serving" / "tokens.yaml"
    made = []
    for name, scopes in CLIENTS.items():
        token_path = folder / name / "token"
        if _works(tokens_file, token_path, name, scopes):
            continue
        _forget(tokens_file, name)
        token_path.parent.mkdir(mode=0o755, exist_ok=True)
        write_atomic(token_path, _new_token(tokens_file, name, scopes, show=False).encode() + b"\n")
        token_path.chmod(0o644)
        made.append(name)
    name, scopes = OPS
    if name not in _load(tokens_file).names:
        _new_token(tokens_file, name, scopes, show=True)
        made.append(name)
    tokens_file.parent.chmod(0o755)
    tokens_file.chmod(0o644)  # digests only: nothing here lets anyone call the server
    return made


def _load(tokens_file: Path) -> Tokens:
    return load_tokens(tokens_file) if tokens_file.exists() else Tokens(())


def _works(tokens_file: Path, token_path: Path, name: str, scopes: tuple[str, ...]) -> bool:
    """Whether the stored token is the one the file knows as ``name``, with exactly ``scopes``."""
    if not token_path.exists():
        return False
    try:
        principal = _load(tokens_file).authenticate(f"Bearer {token_path.read_text().strip()}")
    except Unauthorized:
        return False
    return principal.name == name and tuple(map(str, principal.scopes)) == scopes


def _forget(tokens_file: Path, name: str) -> None:
    """Remove ``name``'s entry (a token nobody holds any more) so the CLI can add a new one."""
    if name not in _load(tokens_file).names:
        return
    doc = yaml.safe_load(tokens_file.read_text())
    doc["tokens"] = [entry for entry in doc["tokens"] if entry.get("name") != name]
    text = yaml.safe_dump(doc, sort_keys=False, width=10_000, default_flow_style=None)
    write_atomic(tokens_file, text.encode())


def _new_token(tokens_file: Path, name: str, scopes: tuple[str, ...], show: bool) -> str:
    """``python -m service.auth new``, appending to the token file. ``show``: the CLI prints the token
    to the terminal (once, kept nowhere); otherwise it is captured and returned, to be stored."""
    tokens_file.parent.mkdir(mode=0o755, exist_ok=True)
    command = [sys.executable, "-m", "service.auth", "new", name, "--scopes", ",".join(scopes)]
    command += ["--file", str(tokens_file)]
    if show:
        subprocess.run(command, check=True)
        return ""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"python -m service.auth new {name} failed: {done.stderr.strip()}")
    return done.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
