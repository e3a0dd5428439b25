"""The evaluation history: one JSON line per evaluation in ``<root>/<model>.jsonl``, bounded in size.

Several gunicorn workers append to the same file through :func:`service.files.append_line`, so
records never interleave and survive a crash once answered. A line torn by a crash mid-write is
skipped when reading. Once a file passes ``max_bytes`` it is renamed to ``<model>.jsonl.1``
(replacing the previous one) and a new file starts: the newest ``max_bytes`` to ``2 x max_bytes``
of records are kept. Reading goes backwards from the end a block at a time and stops at the
limit, so it never holds a whole file.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from service.files import append_line, fsync_dir
from service.models.repository import is_valid_model_name

log = logging.getLogger(__name__)

BLOCK = 1 << 16
DEFAULT_MAX_BYTES = 16 * 1024 * 1024


class History:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes

    def path(self, model: str) -> Path:
        if not is_valid_model_name(model):
            raise ValueError(f"{model!r} is not a valid model name.")
        return self.root / f"{model}.jsonl"

    def rotated_path(self, model: str) -> Path:
        return self.path(model).with_name(f"{model}.jsonl.1")

    def exists(self, model: str) -> bool:
        return is_valid_model_name(model) and (
            self.path(model).is_file() or self.rotated_path(model).is_file()
        )

    def append(self, model: str, record: Mapping[str, Any]) -> None:
        """Add ``record`` durably; safe against concurrent appends from other processes."""
        path = self.path(model)
        append_line(path, orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY))
        if path.stat().st_size > self.max_bytes:
            self._rotate(model)

    def _rotate(self, model: str) -> None:
        path = self.path(model)
        with open(path, "rb") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # no append in progress on it
            try:
                same = os.fstat(fh.fileno()).st_ino == path.stat().st_ino
            except FileNotFoundError:
                same = False
            if same and os.fstat(fh.fileno()).st_size > self.max_bytes:  # not rotated by another worker
                os.replace(path, self.rotated_path(model))
                fsync_dir(path.parent)
                log.info("Evaluation history of %r passed %d bytes: rotated", model, self.max_bytes)

    def read(
        self, model: str, version: str | None = None, dataset: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Records of ``model`` matching the filters, newest first, at most ``limit``."""
        found: list[dict[str, Any]] = []
        for record in self._newest_first(model):
            if (version is None or record.get("version") == version) and (
                dataset is None or record.get("dataset") == dataset
            ):
                found.append(record)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def _newest_first(self, model: str) -> Iterator[dict[str, Any]]:
        for path in (self.path(model), self.rotated_path(model)):
            try:
                fh = open(path, "rb")  # noqa: SIM115 - closed below, after the lock
            except FileNotFoundError:
                continue
            with fh:
                fcntl.flock(fh, fcntl.LOCK_SH)  # no half-written record from a concurrent append
                for number, line in _lines_backwards(fh):
                    record = _parse(line, number, path)
                    if record is not None:
                        yield record


def _parse(line: bytes, number: int, path: Path) -> dict[str, Any] | None:
    if not line.strip():
        return None
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        log.warning("Skipping torn line %d (from the end) of %s", number, path)
        return None
    return record if isinstance(record, dict) else None


def _lines_backwards(fh: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(1-based number counted from the end, line) from the last line to the first."""
    position = os.fstat(fh.fileno()).st_size
    tail, number = b"", 0
    while position > 0:
        step = min(BLOCK, position)
        position -= step
        fh.seek(position)
        block = fh.read(step) + tail
        lines = block.split(b"\n")
        tail = lines.pop(0)  # may continue in the block before
        for line in reversed(lines):
            number += 1
            yield number, line
    if tail:
        yield number + 1, tail
