"""Labelled data for the batch evaluation job: MNIST IDX, Keras' mnist.npz, CSV, JSONL and Parquet.

A source is a range of a file's rows (``--offset``/``--limit``, then a shard's part of that),
read a chunk at a time: memory depends on the chunk size, not on the file's size (npz excepted:
Keras' mnist.npz is small and read whole). The data may be a local path or any URL fsspec opens
(``s3://``, ``gs://``, ``https://``). Rows that cannot become inputs are returned as errors with
their reason instead of failing the chunk. Row numbers are 0-based positions among the file's
rows (data lines for CSV and JSONL), offset included.
"""

from __future__ import annotations

import tempfile
from collections.abc import Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from service.datafiles import idx_set_names, read_mnist_npz
from service.errors import DataFormatError, JobError
from service.evaluation.batch.formats.arrays import ArrayRows
from service.evaluation.batch.formats.csvfile import CsvRows
from service.evaluation.batch.formats.idx import IdxRows
from service.evaluation.batch.formats.jsonl import JsonlRows
from service.evaluation.batch.formats.parquet import ParquetRows
from service.evaluation.batch.locations import FileId, Location
from service.evaluation.batch.rows import Batch, Rows
from service.models.card import TensorSpec

FORMATS = ("idx", "npz", "csv", "jsonl", "parquet")
_SUFFIXES = {
    ".npz": "npz",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


@dataclass(frozen=True)
class Source:
    """Rows ``offset .. offset + count`` of a data file, read through its format's ``rows``."""

    kind: str
    name: str  # the default dataset name in reports: the set's or the file's
    description: str
    files: tuple[FileId, ...]
    local: bool
    rows: Rows
    offset: int
    count: int

    def chunks(self, spans: Iterable[range]) -> Generator[tuple[range, Any], None, None]:
        """Each span (positions in this source, ascending) as (its rows in the file, raw data)."""
        absolute = [range(self.offset + s.start, self.offset + s.stop) for s in spans]
        raws = self.rows.read(absolute)
        try:
            yield from zip(absolute, raws, strict=True)
        finally:
            getattr(raws, "close", lambda: None)()  # the format's open files, when the job stops early

    def decode(self, rows: range, raw: Any, specs: Sequence[TensorSpec]) -> Batch:
        return self.rows.decode(rows, raw, specs)

    def batch(self, start: int, stop: int, specs: Sequence[TensorSpec]) -> Batch:
        """Positions ``start .. stop`` as inputs for ``specs`` (read and decoded at once)."""
        ((rows, raw),) = self.chunks([range(start, stop)])
        return self.decode(rows, raw, specs)

    def cut(self, start: int, stop: int) -> Source:
        """Positions ``start .. stop`` of this source as a source of its own (a shard)."""
        return replace(self, offset=self.offset + start, count=max(0, stop - start))


def detect_format(location: Location) -> str:
    if location.isdir():
        return "idx"
    if location.suffix not in _SUFFIXES:
        raise JobError(f"Cannot tell the format of {location.url}; pass --format ({', '.join(FORMATS)}).")
    return _SUFFIXES[location.suffix]


def open_source(
    path: str | Path,
    kind: str | None = None,
    *,
    split: str | None = None,
    label_column: str = "label",
    offset: int = 0,
    limit: int | None = None,
    raw_pixels: bool = False,
    scale: float | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Source:
    """Open ``path`` (a folder of IDX files, an npz, CSV, JSONL or Parquet file) and cut it.

    Array features are divided by ``scale``; by default MNIST pixels (IDX, npz) by 255, as
    training does, unless ``raw_pixels``, and other formats' features not at all.
    """
    location = Location(str(path), storage_options)
    if not location.exists():
        raise JobError(f"Data path {path} does not exist.")
    kind = kind or detect_format(location)
    if scale is not None and kind == "jsonl":
        raise JobError("--scale applies to array data (IDX, npz, CSV, Parquet), not to JSONL instances.")
    divisor = scale if scale is not None else None if raw_pixels or kind not in ("idx", "npz") else 255.0
    try:
        source = _open(location, kind, split, label_column, divisor)
    except DataFormatError as exc:
        raise JobError(str(exc)) from None
    total = source.count
    stop = total if limit is None else min(total, offset + limit)
    return source.cut(min(offset, total), stop)


def _open(
    location: Location, kind: str, split: str | None, label_column: str, divisor: float | None
) -> Source:
    url, local = location.url, location.local
    if kind == "idx":
        name, images, labels = _idx_pair(location, split)
        rows: Any = IdxRows(images, labels, divisor)
        files: tuple[FileId, ...] = (images.identity(), labels.identity())
        return Source(kind, name, f"IDX set {name!r} at {url}", files, local, rows, 0, rows.count)
    if kind == "npz":
        name = split or "test"
        rows = ArrayRows(*_npz_set(location, name), divisor=divisor)
        files = (location.identity(),)
        return Source(
            kind, f"{location.stem}-{name}", f"NPZ set {name!r} at {url}", files, local, rows, 0, rows.count
        )
    if kind == "parquet":
        rows = ParquetRows(location, label_column, divisor)
        return Source(
            kind, location.stem, f"Parquet {url}", (location.identity(),), local, rows, 0, rows.count
        )
    rows = CsvRows(location, label_column, divisor) if kind == "csv" else JsonlRows(location)
    description = f"{'CSV' if kind == 'csv' else 'JSONL'} {url}"
    return Source(kind, location.stem, description, (rows.identity(),), local, rows, 0, rows.count)


def _idx_pair(folder: Location, split: str | None) -> tuple[str, Location, Location]:
    pairs = idx_set_names(folder.listdir())
    if not pairs:
        raise JobError(f"{folder.url} holds no IDX image/label pair (like t10k-images-idx3-ubyte.gz).")
    name = split or ("t10k" if "t10k" in pairs else next(iter(pairs)) if len(pairs) == 1 else "")
    if not name:
        raise JobError(f"{folder.url} holds several IDX sets ({', '.join(pairs)}); pick one with --split.")
    if name not in pairs:
        raise JobError(f"{folder.url} has no set {name!r}; choose --split from {', '.join(pairs)}.")
    images, labels = pairs[name]
    return name, folder.child(images), folder.child(labels)


def _npz_set(location: Location, split: str) -> tuple[Any, Any]:
    if location.local:
        sets = read_mnist_npz(location.path)
    else:  # np.load needs a seekable file; Keras' mnist.npz is small enough to fetch first
        with tempfile.TemporaryDirectory() as folder, location.open() as remote:
            local = Path(folder) / location.name
            local.write_bytes(remote.read())
            sets = read_mnist_npz(local)
    if split not in sets:
        raise JobError(f"{location.url} has no set {split!r}; choose --split from {', '.join(sets)}.")
    return sets[split].images, sets[split].labels
