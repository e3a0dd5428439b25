"""The on-disk model repository contract, shared by training (writer) and the service (reader).

Layout, as TF Serving expects it::

    <root>/<model name>/<int version>/saved_model.pb
                                      variables/
                                      assets.extra/model_card.json
                                      assets.extra/training_curves.png

A version becomes visible only by an atomic rename of a fully written staging folder
(``<root>/<name>/.staging-*``), so a crash mid-export never leaves a folder that looks like a
version. This module never imports TensorFlow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from service.errors import CardError
from service.files import current_umask, fsync_dir, write_atomic
from service.models.card import ModelCard
from service.protocol.numbers import parse_count

SAVED_MODEL_FILE = "saved_model.pb"
VARIABLES_DIR = "variables"
ASSETS_EXTRA_DIR = "assets.extra"
CARD_FILE = "model_card.json"
CURVES_FILE = "training_curves.png"
STAGING_PREFIX = ".staging-"
# Names become path components: no separators, no dot-only names, nothing hidden.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def is_valid_model_name(name: str) -> bool:
    """True if ``name`` is safe to use as a folder name inside the repository."""
    return bool(_NAME_RE.match(name)) and ".." not in name


def card_json(doc: Mapping[str, Any]) -> bytes:
    """A card as the JSON text stored in a version (indented for people reading it)."""
    return (json.dumps(doc, indent=2, default=_json_default) + "\n").encode("utf-8")


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays end up in cards (metrics, weights); keep this module numpy-free.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class StagedVersion:
    """A version being written; invisible to readers until :meth:`commit` renames it into place."""

    def __init__(self, model_dir: Path, name: str) -> None:
        self.name = name
        self._model_dir = model_dir
        self.path = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=model_dir))
        self.version: int | None = None

    @property
    def assets_extra(self) -> Path:
        path = self.path / ASSETS_EXTRA_DIR
        path.mkdir(exist_ok=True)
        return path

    def commit(self, card: Mapping[str, Any]) -> int:
        """Write the card, then rename the folder to the next free version number; return it."""
        if not (self.path / SAVED_MODEL_FILE).is_file():
            raise CardError(f"Nothing was exported for {self.name!r}: {SAVED_MODEL_FILE} is missing.")
        while True:
            version = _next_version(self._model_dir)
            doc = dict(card)
            doc.update(name=self.name, version=version)
            ModelCard.from_dict(doc)  # refuse to publish a card the service could not read
            write_atomic(self.assets_extra / CARD_FILE, card_json(doc))
            _publishable(self.path)
            _fsync_tree(self.path)
            try:
                # rename() refuses a non-empty target, so a concurrent export cannot be overwritten.
                os.rename(self.path, self._model_dir / str(version))
            except OSError:
                if (self._model_dir / str(version)).exists():
                    continue  # another exporter took this number; take the next one
                raise
            fsync_dir(self._model_dir)
            self.version = version
            return version

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _publishable(root: Path) -> None:
    """Give the staged tree the umask's modes: mkdtemp/mkstemp make it private (0700/0600), but a
    server running as another user (a container, a Kubernetes volume) must be able to read it."""
    umask = current_umask()
    for dirpath, _, files in os.walk(root):
        os.chmod(dirpath, 0o777 & ~umask)
        for name in files:
            os.chmod(os.path.join(dirpath, name), 0o666 & ~umask)


def _next_version(model_dir: Path) -> int:
    numbers = [n for p in model_dir.iterdir() if (n := version_number(p.name)) is not None]
    return max(numbers, default=0) + 1


def version_number(folder: str) -> int | None:
    """The version a folder name spells (ASCII digits only: superscripts or Arabic-Indic digits are not), else None."""
    return parse_count(folder)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(Path(dirpath))


class Repository:
    """Read and write access to one repository root. Knows files, not loaded models."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def model_names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_valid_model_name(p.name))

    def versions(self, name: str) -> list[int]:
        """Published versions of ``name`` (integer folders holding a SavedModel), ascending."""
        model_dir = self.model_dir(name)
        if not model_dir.is_dir():
            return []
        found = [
            n
            for p in model_dir.iterdir()
            if (n := version_number(p.name)) is not None and (p / SAVED_MODEL_FILE).is_file()
        ]
        return sorted(found)

    def model_dir(self, name: str) -> Path:
        if not is_valid_model_name(name):
            raise ValueError(f"{name!r} is not a valid model name.")
        return self.root / name

    def version_dir(self, name: str, version: int) -> Path:
        return self.model_dir(name) / str(int(version))

    def card_path(self, name: str, version: int) -> Path:
        return self.version_dir(name, version) / ASSETS_EXTRA_DIR / CARD_FILE

    def read_card(self, name: str, version: int) -> ModelCard:
        path = self.card_path(name, version)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise CardError(f"Model {name!r} version {version} has no card at {path}.") from exc
        except (OSError, ValueError) as exc:
            raise CardError(f"Model {name!r} version {version} has an unreadable card: {exc}.") from exc
        if not isinstance(doc, dict):
            raise CardError(f"Model {name!r} version {version}: the card is not a JSON object.")
        card = ModelCard.from_dict(doc)
        if card.name != name or card.version != version:
            raise CardError(
                f"Model {name!r} version {version}: the card describes {card.name!r} version {card.version}."
            )
        return card

    def card_or_none(self, name: str, version: int) -> ModelCard | None:
        """The version's card; None when it has none (a SavedModel exported elsewhere)."""
        if not self.card_path(name, version).exists():
            return None
        return self.read_card(name, version)

    def fingerprint(self, name: str, version: int) -> tuple[float, ...]:
        """Changes when the version's files are replaced or rewritten; lets a poller retry a fixed
        version and notice a live one damaged in place (modification time and size of each file)."""
        vdir = self.version_dir(name, version)
        paths = [vdir / SAVED_MODEL_FILE, vdir / ASSETS_EXTRA_DIR / CARD_FILE, vdir / VARIABLES_DIR]
        if (vdir / VARIABLES_DIR).is_dir():
            paths += sorted((vdir / VARIABLES_DIR).iterdir())
        stamps: list[float] = []
        for path in paths:
            try:
                stat = path.stat()
                stamps += [float(stat.st_mtime_ns), float(stat.st_size)]
            except OSError:
                stamps += [-1.0, -1.0]
        return tuple(stamps)

    @contextmanager
    def stage(self, name: str) -> Iterator[StagedVersion]:
        """Yield a staging folder for a new version of ``name``; discard it unless committed."""
        model_dir = self.model_dir(name)
        model_dir.mkdir(parents=True, exist_ok=True)
        staged = StagedVersion(model_dir, name)
        try:
            yield staged
        finally:
            if staged.version is None:
                staged.discard()
