"""The append-only evaluation history: one JSON line per evaluation in ``<root>/<model>.jsonl``.

Several gunicorn workers append to the same file through :func:`service.files.append_line`, so
records never interleave and survive a crash once answered. A line torn by a crash mid-write is
skipped when reading.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from service.files import append_line
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
        append_line(self.path(model), orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY))

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
