"""``python -m service.auth``: make a token, hash one, or check a token file.

    python -m service.auth new NAME --scopes infer,evaluate [--file tokens.yaml]
    python -m service.auth hash < token.txt
    python -m service.auth check tokens.yaml

``new`` writes the token alone on stdout (``TOKEN=$(python -m service.auth new ...)`` works) and
the explanation and YAML entry on stderr. Exit status: 0 done, 1 the file is invalid or refuses
the change (one line says why), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import errno
import getpass
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NoReturn

import yaml

from service.auth.tokens import (
    NAME_RE,
    Scope,
    TokenFileError,
    Tokens,
    load_tokens,
    parse_tokens,
    token_digest,
)
from service.files import write_atomic

TOKEN_PREFIX = "ms_"  # recognisable in a leaked-secret scan or a misplaced paste


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")  # one line, no usage dump


class Refused(Exception):
    """The command cannot do what was asked; the message is the one line shown."""


def parser() -> _Parser:
    p = _Parser(prog="python -m service.auth", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    new = sub.add_parser("new", help="make a token; print it once with its YAML entry")
    new.add_argument("name", help="who holds it (logged with each request), e.g. web-frontend")
    new.add_argument("--scopes", required=True, help="comma-separated: infer,evaluate,admin,metrics[:glob]")
    new.add_argument("--file", type=Path, help="append the entry to this token file (created 0600)")
    sub.add_parser("hash", help="read a token on stdin, print its sha256 for the token file")
    check = sub.add_parser("check", help="validate a token file")
    check.add_argument("file", type=Path)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        if args.command == "new":
            return _new(p, args.name, args.scopes, args.file)
        if args.command == "hash":
            return _hash()
        return _check(args.file)
    except (Refused, TokenFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _new(p: _Parser, name: str, scopes_arg: str, file: Path | None) -> int:
    if not NAME_RE.fullmatch(name):
        p.error(
            f"name {name!r} must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit."
        )
    try:
        scopes = [str(Scope.parse(s.strip())) for s in scopes_arg.split(",")]
    except ValueError as exc:
        p.error(str(exc))
    if len(set(scopes)) != len(scopes):
        p.error(f"--scopes {scopes_arg!r} lists a scope twice.")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    entry = {"name": name, "sha256": token_digest(token).hex(), "scopes": scopes}
    line = yaml.safe_dump(entry, default_flow_style=True, sort_keys=False, width=10_000).strip()
    if file is not None:
        append_entry(file, entry, line)
        note = f"Added {name!r} to {file}; it takes effect when the server next reads the file."
    else:
        note = f"Add this entry under 'tokens:' in the token file:\n  - {line}"
    print(f"New token for {name!r}, shown only this once (the file keeps its sha256):", file=sys.stderr)
    print(token, flush=True)
    print(note, file=sys.stderr)
    return 0


def _hash() -> int:
    # From a terminal, read without echo so the token stays off the screen and out of scrollback.
    text = getpass.getpass("Token: ") if sys.stdin.isatty() else sys.stdin.read()
    token = text.strip()
    if not token:
        raise Refused("no token on stdin.")
    if len(token.split()) != 1:
        raise Refused("a token cannot contain whitespace: it would not survive 'Authorization: Bearer'.")
    print(token_digest(token).hex())
    return 0


def _check(file: Path) -> int:
    try:
        tokens = load_tokens(file)
    except OSError as exc:
        raise Refused(f"{file}: cannot read it ({exc.strerror}).") from None
    print(f"{file}: {len(tokens)} valid token(s): {', '.join(tokens.names) or 'none'}.")
    return 0


def append_entry(path: Path, entry: Mapping[str, object], line: str) -> None:
    """Add ``entry`` (``line`` is its YAML) to the token file at ``path``, atomically and validated.

    The line is appended to the text so an operator's comments and layout survive; if that does
    not parse back to the old tokens plus this one, the document is re-dumped instead.
    """
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode & 0o777
        old = parse_tokens(text, where)
    except FileNotFoundError:
        text, mode, old = "tokens:\n", 0o600, Tokens(())  # 0600: owner-only, like any secret store
    except (OSError, UnicodeDecodeError) as exc:
        raise Refused(f"{where}: cannot read it ({exc}).") from None
    if entry["name"] in old.names:
        raise Refused(f"{where}: a token named {entry['name']!r} exists already; choose another name.")
    updated = _appended(text, line)
    expected = (*old.names, entry["name"])
    if _names(updated, where) != expected:
        doc = yaml.safe_load(text) or {"tokens": []}
        doc["tokens"] = [*(doc.get("tokens") or []), entry]
        updated = yaml.safe_dump(doc, sort_keys=False, width=10_000)
        print(f"note: rewrote {where} as plain YAML; its comments were not kept.", file=sys.stderr)
        if _names(updated, where) != expected:
            raise Refused(f"{where}: could not add the entry without changing other tokens; add it by hand.")
    try:
        _write_text(path, updated, mode)
    except OSError as exc:
        raise Refused(f"{where}: cannot write it ({exc.strerror}).") from None


def _appended(text: str, line: str) -> str:
    found = re.search(r"^([ \t]*)- ", text, re.MULTILINE)  # the first list item sets the indent
    indent = found.group(1) if found else "  "
    if not text.endswith("\n"):
        text += "\n"
    return f"{text}{indent}- {line}\n"


def _write_text(path: Path, text: str, mode: int) -> None:
    """Readers (the server polling the file) see the old file or the new one, never half of one."""
    if not path.parent.is_dir():  # a mistyped folder is an error, not a new folder full of secrets
        raise FileNotFoundError(errno.ENOENT, "No such directory", str(path.parent))
    write_atomic(path, text.encode("utf-8"), mode)


def _names(text: str, where: str) -> tuple[str, ...] | None:
    try:
        return parse_tokens(text, where).names
    except TokenFileError:
        return None


if __name__ == "__main__":
    sys.exit(main())
