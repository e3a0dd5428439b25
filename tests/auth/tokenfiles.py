"""Helpers for the auth tests: token files written from (name, token, scopes) triples."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

import yaml


def entry(name: str, token: str, scopes: Iterable[str]) -> dict[str, object]:
    return {"name": name, "sha256": hashlib.sha256(token.encode()).hexdigest(), "scopes": list(scopes)}


def write_tokens(path: Path, *entries: dict[str, object]) -> Path:
    """Replace the file by rename, as an operator's tooling (or a Kubernetes secret update) would."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump({"tokens": list(entries)}, sort_keys=False))
    os.replace(tmp, path)
    return path
