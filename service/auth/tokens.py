"""The token file (named SHA-256 digests with scopes) and who a request's bearer token belongs to.

    tokens:
      - {name: web-frontend, sha256: 9f86d0..., scopes: [infer]}
      - {name: eval-job,     sha256: 2c26b4..., scopes: [infer, "evaluate:mnist*"]}

A scope is ``infer``, ``evaluate``, ``admin`` or ``metrics``, optionally narrowed to the models
matching a glob after a colon. A narrowed scope never covers a route that names no model (a model
list, ``/metrics``): it grants what its pattern says and nothing wider.
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from service.errors import Forbidden, Unauthorized

SCOPES = ("infer", "evaluate", "admin", "metrics")
ENTRY_KEYS = ("name", "sha256", "scopes")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # names go into every log line: keep them plain
_PATTERN_RE = re.compile(r"[A-Za-z0-9_.\-*?\[\]!]+")  # model-name characters plus glob syntax
_HEX_RE = re.compile(r"[0-9a-fA-F]{64}")
MAX_FILE_BYTES = 1 << 20  # a few hundred tokens fit in a few KiB; anything near this is a wrong file


class TokenFileError(ValueError):
    """The token file is unreadable or invalid; the message names the file and the entry at fault."""


def token_digest(token: str) -> bytes:
    """SHA-256 of the token exactly as sent after ``Bearer ``; the file stores its hex form."""
    # surrogatepass: a header decoded oddly must still hash (and fail to match), not raise.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


@dataclass(frozen=True)
class Scope:
    """One grant: a scope name, and the glob of models it is narrowed to (``None``: every model)."""

    name: str
    models: str | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        """``"infer"`` or ``"infer:mnist*"``; ValueError with a full sentence otherwise."""
        name, colon, models = text.partition(":")
        if name not in SCOPES:
            raise ValueError(
                f"scope {text!r} is not one of {', '.join(SCOPES)} (optionally narrowed, as in 'infer:mnist*')."
            )
        if colon and not _PATTERN_RE.fullmatch(models):
            raise ValueError(
                f"scope {text!r}: the model pattern after ':' may hold only model-name characters"
                " and the glob characters * ? [ ] !."
            )
        return cls(name, models if colon else None)

    def __str__(self) -> str:
        return self.name if self.models is None else f"{self.name}:{self.models}"


ModelMatcher = Callable[[str], Any]


@dataclass(frozen=True)
class Principal:
    """Who sent the request: the token's name (safe to log) and its scopes."""

    name: str
    scopes: tuple[Scope, ...]
    # Per granted scope name: None for every model, or one compiled regex matching any of its
    # globs. Built once at load so a check is a dict look-up and at most one regex match.
    _index: dict[str, ModelMatcher | None] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        for name in SCOPES:
            globs = [s.models for s in self.scopes if s.name == name]
            if None in globs:
                self._index[name] = None
            elif globs:
                either = "|".join(fnmatch.translate(g) for g in globs if g is not None)
                self._index[name] = re.compile(either).match

    def allows(self, scope: str, model: str | None = None) -> bool:
        if scope not in self._index:
            if scope not in SCOPES:
                # A typo in a route table would otherwise deny every request without saying why.
                raise ValueError(f"Unknown scope {scope!r}; expected one of {', '.join(SCOPES)}.")
            return False
        match = self._index[scope]
        if match is None:
            return True
        return model is not None and match(model) is not None

    def require(self, scope: str, model: str | None = None) -> None:
        """Raise Forbidden unless this token may use ``scope`` (on ``model``, when the route names one)."""
        if not self.allows(scope, model):
            target = f" on model {model!r}" if model is not None else ""
            held = ", ".join(map(str, self.scopes))
            why = ""
            if model is None and self._index.get(scope) is not None:
                why = " A scope narrowed to models does not cover routes that name no model."
            raise Forbidden(f"Token {self.name!r} may not use scope {scope!r}{target} (it has: {held}).{why}")


class Tokens:
    """An immutable set of known tokens; ``authenticate`` maps an Authorization header to a Principal."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[tuple[bytes, Principal]]) -> None:
        self._entries = tuple(entries)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for _, p in self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Tokens({', '.join(self.names)})"

    def authenticate(self, header: str | None) -> Principal:
        """The Principal whose token the header carries; Unauthorized when missing, malformed or unknown."""
        digest = token_digest(bearer_token(header))
        found = None
        # Every entry is compared, matched or not, so the time taken says nothing about which
        # entry (if any) matched; compare_digest keeps each comparison constant-time too.
        for known, principal in self._entries:
            if hmac.compare_digest(digest, known):
                found = principal
        if found is None:
            raise Unauthorized(
                "The bearer token is not known here (revoked, mistyped or meant for another server).",
                error="invalid_token",
            )
        return found


def bearer_token(header: str | None) -> str:
    """The token in ``Bearer <token>`` (scheme case-insensitive); Unauthorized otherwise."""
    if not header or not header.strip():
        raise Unauthorized("This route needs a token: send the header 'Authorization: Bearer <token>'.")
    parts = header.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise Unauthorized(
            "The Authorization header must be 'Bearer <token>' with a single token.", error="invalid_request"
        )
    return parts[1]


def read_limited(fh: BinaryIO, where: str) -> str:
    """The file's text, refusing anything larger than a token file can plausibly be."""
    data = fh.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise TokenFileError(f"{where}: larger than {MAX_FILE_BYTES} bytes; is this the token file?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TokenFileError(f"{where}: not UTF-8 text (byte {exc.start}).") from None


def load_tokens(path: Path) -> Tokens:
    """Read and validate the token file at ``path``; TokenFileError (or OSError) if it cannot be used."""
    with open(path, "rb") as fh:
        return parse_tokens(read_limited(fh, str(path)), str(path))


def parse_tokens(text: str, where: str) -> Tokens:
    """Validate the YAML ``text`` of a token file; ``where`` (the path) starts every error message."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TokenFileError(f"{where}: not valid YAML ({_yaml_problem(exc)}).") from None
    return tokens_from_document(doc, where)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    # str(exc) quotes the offending line, which might be a token pasted by mistake: give only
    # the problem and its position.
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem} at line {mark.line + 1}, column {mark.column + 1}"
    return type(exc).__name__


def tokens_from_document(doc: Any, where: str) -> Tokens:
    """Validate a parsed token file: ``{tokens: [{name, sha256, scopes}, ...]}``."""
    if doc is None:
        raise TokenFileError(f"{where}: is empty; expected a mapping with a 'tokens' list.")
    if not isinstance(doc, dict) or "tokens" not in doc:
        raise TokenFileError(f"{where}: expected a mapping with a 'tokens' list.")
    if extra := sorted(map(str, set(doc) - {"tokens"})):
        raise TokenFileError(f"{where}: unknown key(s) {', '.join(extra)}; the only key is 'tokens'.")
    if not isinstance(doc["tokens"], list):
        raise TokenFileError(f"{where}: 'tokens' must be a list of {{name, sha256, scopes}} entries.")
    entries: list[tuple[bytes, Principal]] = []
    by_name: dict[str, int] = {}
    by_digest: dict[bytes, str] = {}
    for i, raw in enumerate(doc["tokens"]):
        digest, principal = _entry(raw, f"{where}: tokens[{i}]")
        at = f"{where}: tokens[{i}] {principal.name!r}"
        if principal.name in by_name:
            raise TokenFileError(f"{at}: the name is already used by tokens[{by_name[principal.name]}].")
        if digest in by_digest:
            raise TokenFileError(f"{at}: the same sha256 as {by_digest[digest]!r}; give each client its own.")
        by_name[principal.name] = i
        by_digest[digest] = principal.name
        entries.append((digest, principal))
    return Tokens(entries)


def _entry(raw: Any, where: str) -> tuple[bytes, Principal]:
    if not isinstance(raw, dict):
        raise TokenFileError(f"{where}: must be a mapping with keys {', '.join(ENTRY_KEYS)}.")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise TokenFileError(
            f"{where}: name must be 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit;"
            f" got {name!r}."
        )
    where = f"{where} {name!r}"
    if extra := sorted(map(str, set(raw) - set(ENTRY_KEYS))):
        raise TokenFileError(f"{where}: unknown key(s) {', '.join(extra)}; expected {', '.join(ENTRY_KEYS)}.")
    if missing := [k for k in ENTRY_KEYS if k not in raw]:
        raise TokenFileError(f"{where}: missing {', '.join(missing)}.")
    return _digest(raw["sha256"], where), Principal(name, _scopes(raw["scopes"], where))


def _digest(raw: Any, where: str) -> bytes:
    # The value is never echoed: whoever gets this wrong may have pasted the token itself.
    if not isinstance(raw, str):
        raise TokenFileError(f"{where}: sha256 must be a quoted string of 64 hex digits.")
    if not _HEX_RE.fullmatch(raw):
        raise TokenFileError(
            f"{where}: sha256 must be 64 hex digits (the token's digest from"
            f" 'python -m service.auth hash', never the token); got {len(raw)} characters."
        )
    return bytes.fromhex(raw)


def _scopes(raw: Any, where: str) -> tuple[Scope, ...]:
    if not isinstance(raw, list) or not raw:
        raise TokenFileError(f"{where}: scopes must be a non-empty list, e.g. [infer, evaluate].")
    parsed: list[Scope] = []
    for item in raw:
        if not isinstance(item, str):
            raise TokenFileError(f"{where}: scope {item!r} is not a string.")
        try:
            scope = Scope.parse(item)
        except ValueError as exc:
            raise TokenFileError(f"{where}: {exc}") from None
        if scope in parsed:
            raise TokenFileError(f"{where}: scope {item!r} is listed twice.")
        parsed.append(scope)
    return tuple(parsed)
