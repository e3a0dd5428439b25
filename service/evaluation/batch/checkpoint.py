"""Checkpoints of a batch evaluation, so an interrupted job resumes where it stopped.

Layout of a state folder::

    state.json          {"fingerprint": {...}}: data files + sha256, cut, model, version, chunk size
    chunks/<n>.npz      one per finished chunk: rows, labels, scores, and errors (JSON text)

A chunk file is written atomically once all of its rows are scored or listed as errors, so a chunk
is done exactly when its file exists: a crash or a restarted server can neither lose a row nor
count one twice. A state whose fingerprint differs from the job's is not resumed.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.jobs import JobError
from service.jobs.files import write_atomic


@dataclass
class ChunkResult:
    rows: np.ndarray  # row numbers of the scored rows
    labels: np.ndarray  # their encoded labels (class ids or targets)
    scores: np.ndarray  # their scores
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row, reason) of the others

    @property
    def count(self) -> int:
        return len(self.rows) + len(self.errors)


class Checkpoint:
    def __init__(self, folder: Path, fingerprint: dict[str, Any], resumed: bool) -> None:
        self.folder = folder
        self.fingerprint = fingerprint
        self.resumed = resumed

    @classmethod
    def open(cls, folder: Path, fingerprint: dict[str, Any], resume: bool | None = None) -> Checkpoint:
        """Resume a matching state (``resume`` None: if there is one; True: it must match; False: never)."""
        fingerprint = json.loads(json.dumps(fingerprint))  # as it reads back: lists, not tuples
        saved = _read_fingerprint(folder / "state.json")
        if saved == fingerprint and resume is not False:
            return cls(folder, fingerprint, resumed=True)
        if resume:
            if saved is None:
                raise JobError(f"Cannot resume: {folder} holds no job state.")
            changed = sorted(k for k in {*saved, *fingerprint} if saved.get(k) != fingerprint.get(k))
            raise JobError(
                f"Cannot resume: the state in {folder} is for another job (differs in {', '.join(changed)})."
            )
        shutil.rmtree(folder / "chunks", ignore_errors=True)
        write_atomic(folder / "state.json", json.dumps({"fingerprint": fingerprint}, indent=2).encode())
        return cls(folder, fingerprint, resumed=False)

    def _path(self, index: int) -> Path:
        return self.folder / "chunks" / f"{index:07d}.npz"

    def done(self) -> set[int]:
        chunks = self.folder / "chunks"
        return {int(p.stem) for p in chunks.glob("*.npz")} if chunks.is_dir() else set()

    def save(self, index: int, result: ChunkResult) -> None:
        buffer = io.BytesIO()
        errors = np.array(json.dumps(result.errors))
        np.savez(buffer, rows=result.rows, labels=result.labels, scores=result.scores, errors=errors)
        write_atomic(self._path(index), buffer.getvalue())

    def load(self, index: int) -> ChunkResult:
        try:
            with np.load(self._path(index), allow_pickle=False) as npz:
                errors = [(int(row), str(reason)) for row, reason in json.loads(str(npz["errors"]))]
                return ChunkResult(npz["rows"], npz["labels"], npz["scores"], errors)
        except (OSError, ValueError, KeyError) as exc:
            raise JobError(
                f"Checkpoint {self._path(index)} is unreadable ({exc}); rerun with --fresh."
            ) from None

    def results(self, count: int) -> Iterator[ChunkResult]:
        """The results of chunks 0 .. count-1, in order; all must be done."""
        return (self.load(index) for index in range(count))


def _read_fingerprint(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
