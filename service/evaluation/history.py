"""The append-only evaluation history: one JSON line per evaluation in ``<root>/<model>.jsonl``.

Several gunicorn workers append to the same file: each record is one ``write`` on an
``O_APPEND`` descriptor under an exclusive ``flock``, then ``fsync``ed, so records never
interleave and survive a crash once answered. A line torn by a crash mid-write is skipped when
reading, and the next append starts on a fresh line so the torn one cannot swallow it.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from service.files import fsync_dir
from service.models.repository import is_valid_model_name

log = logging.getLogger(__name__)


class History:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, model: str) -> Path:
        if not is_valid_model_name(model):
            raise ValueError(f"{model!r} is not a valid model name.")
        return self.root / f"{model}.jsonl"

    def exists(self, model: str) -> bool:
        return is_valid_model_name(model) and self.path(model).is_file()

    def append(self, model: str, record: Mapping[str, Any]) -> None:
        """Add ``record`` durably; safe against concurrent appends from other processes."""
        line = orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
        path = self.path(model)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        size = -1
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # end a line torn by a crash, or this record would join it
            _write_all(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)  # releases the lock
        if size == 0:
            fsync_dir(path.parent)  # the new file's directory entry must survive a crash too

    def read(
        self, model: str, version: str | None = None, dataset: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Records of ``model`` matching the filters, newest first, at most ``limit``."""
        matching = [
            record
            for record in self._records(model)
            if (version is None or record.get("version") == version)
            and (dataset is None or record.get("dataset") == dataset)
        ]
        matching.reverse()
        return matching if limit is None else matching[:limit]

    def _records(self, model: str) -> Iterator[dict[str, Any]]:
        try:
            with open(self.path(model), "rb") as fh:
                fcntl.flock(fh, fcntl.LOCK_SH)  # no half-written record from a concurrent append
                data = fh.read()
        except FileNotFoundError:
            return
        for number, line in enumerate(data.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                log.warning("Skipping torn line %d of %s", number, self.path(model))
                continue
            if isinstance(record, dict):
                yield record


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
