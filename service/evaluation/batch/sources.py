"""Labelled data for the batch evaluation job: MNIST IDX folders, Keras' mnist.npz, CSV and JSONL.

A source is read once into memory (arrays, or raw lines for JSONL), cut by ``offset``/``limit``,
and handed to the job a slice at a time as model inputs (``Batch``). Rows that cannot become
inputs are returned as errors with their reason instead of failing the slice. Row numbers are
0-based positions in the file's rows (data lines for CSV and JSONL), offset included.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.datafiles import LabelledSet, find_idx_sets, read_idx_set, read_mnist_npz, sha256_file
from service.errors import DataFormatError, InvalidInput, JobError
from service.evaluation import wire
from service.models.card import TensorSpec
from service.protocol.tensors import Limits

FORMATS = ("idx", "npz", "csv", "jsonl")
_UNBOUNDED = Limits(max_instances=1 << 62, allow_nonfinite=True)  # the scorer applies the value policy


@dataclass
class Batch:
    rows: np.ndarray  # row numbers of the rows that became inputs
    inputs: dict[str, np.ndarray]
    labels: list[Any]  # raw labels of those rows
    errors: list[tuple[int, str]] = field(default_factory=list)  # (row, reason) of the rest


@dataclass(frozen=True)
class Source:
    """``features`` (arrays) or ``lines`` (JSONL) for rows ``offset .. offset + count``."""

    kind: str
    name: str  # the default dataset name in reports: the set's or the file's
    description: str
    files: tuple[tuple[str, str], ...]  # (path, sha256)
    offset: int
    labels: Sequence[Any] | np.ndarray
    features: np.ndarray | None = None
    lines: Sequence[bytes] = ()
    divisor: float | None = None  # MNIST pixels to 0..1 exactly as training does: float32(x) / 255

    @property
    def count(self) -> int:
        return len(self.lines) if self.kind == "jsonl" else len(self.labels)

    def batch(self, start: int, stop: int, specs: Sequence[TensorSpec]) -> Batch:
        """Rows ``start .. stop`` (positions in this source) as inputs for ``specs``."""
        if self.kind == "jsonl":
            return _jsonl_batch(self.lines[start:stop], self.offset + start, specs)
        assert self.features is not None
        rows = np.arange(self.offset + start, self.offset + stop)
        features = self.features[start:stop]
        return Batch(rows, _array_inputs(features, specs, self.divisor), list(self.labels[start:stop]))


def detect_format(path: Path) -> str:
    if path.is_dir():
        return "idx"
    suffix = path.suffix.lower()
    kinds = {".npz": "npz", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
    if suffix not in kinds:
        raise JobError(f"Cannot tell the format of {path}; pass --format ({', '.join(FORMATS)}).")
    return kinds[suffix]


def open_source(
    path: Path,
    kind: str | None = None,
    *,
    split: str | None = None,
    label_column: str = "label",
    offset: int = 0,
    limit: int | None = None,
    raw_pixels: bool = False,
) -> Source:
    """Read ``path`` (a folder of IDX files, an npz, a CSV or a JSONL file) and cut it."""
    if not path.exists():
        raise JobError(f"Data path {path} does not exist.")
    kind = kind or detect_format(path)
    cut = slice(offset, None if limit is None else offset + limit)
    try:
        if kind in ("idx", "npz"):
            found, name = _mnist(path, kind, split)
            return Source(
                kind,
                name if kind == "idx" else f"{path.stem}-{name}",
                f"{kind.upper()} set {name!r} at {path}",
                tuple((str(f), sha256_file(f)) for f in found.files),
                offset,
                found.labels[cut],
                features=found.images[cut],
                divisor=None if raw_pixels else 255.0,
            )
        files = ((str(path), sha256_file(path)),)
        if kind == "csv":
            features, labels = _read_csv(path, label_column)
            return Source(kind, path.stem, f"CSV {path}", files, offset, labels[cut], features=features[cut])
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
        return Source(kind, path.stem, f"JSONL {path}", files, offset, [], lines=lines[cut])
    except DataFormatError as exc:
        raise JobError(str(exc)) from None
    except OSError as exc:
        raise JobError(f"Cannot read {path}: {exc.strerror or exc}.") from None


def _mnist(path: Path, kind: str, split: str | None) -> tuple[LabelledSet, str]:
    if kind == "npz":
        sets = read_mnist_npz(path)
        name = split or "test"
    else:
        pairs = find_idx_sets(path)
        if not pairs:
            raise JobError(f"{path} holds no IDX image/label pair (like t10k-images-idx3-ubyte.gz).")
        name = split or ("t10k" if "t10k" in pairs else next(iter(pairs)) if len(pairs) == 1 else "")
        sets = {p: read_idx_set(*files) for p, files in pairs.items() if p == name}
        if not name:
            raise JobError(f"{path} holds several IDX sets ({', '.join(pairs)}); pick one with --split.")
    if name not in sets:
        raise JobError(f"{path} has no set {name!r}; choose --split from {', '.join(sets) or 'none'}.")
    return sets[name], name


def _read_csv(path: Path, label_column: str) -> tuple[np.ndarray, list[Any]]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header or label_column not in header:
            raise JobError(
                f"{path} has no column {label_column!r}; name the label column with --label-column."
            )
        at = header.index(label_column)
        rows = [row for row in reader if row]
    if any(len(row) != len(header) for row in rows):
        bad = next(i for i, row in enumerate(rows) if len(row) != len(header))
        raise JobError(f"{path} data row {bad} has {len(rows[bad])} fields; the header has {len(header)}.")
    features = np.array([[_number(v) for j, v in enumerate(row) if j != at] for row in rows], np.float64)
    return features.reshape(len(rows), len(header) - 1), [_label(row[at]) for row in rows]


def _number(text: str) -> float:
    """A feature cell; an empty one is missing (NaN), which the scorer refuses for that row."""
    try:
        return float(text) if text.strip() else float("nan")
    except ValueError:
        return float("nan")


def _label(text: str) -> Any:
    """``3`` -> 3, ``0.5`` -> 0.5, anything else stays text (a class label name)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _array_inputs(
    features: np.ndarray, specs: Sequence[TensorSpec], divisor: float | None
) -> dict[str, np.ndarray]:
    if len(specs) != 1:
        raise JobError(f"The model has {len(specs)} inputs; array data (IDX, npz, CSV) feeds one. Use JSONL.")
    spec = specs[0]
    inner = tuple(features.shape[1:])
    wanted = tuple(spec.shape[1:])
    values = features.astype(spec.dtype)
    if divisor is not None:
        values = values / np.asarray(divisor, dtype=spec.dtype)
    if inner != wanted:
        size = int(np.prod(inner, dtype=np.int64))
        if -1 in wanted or size != int(np.prod(wanted, dtype=np.int64)):
            raise JobError(
                f"Data rows have shape {list(inner)}; input {spec.name!r} takes {list(spec.shape)}."
            )
        values = values.reshape((len(values), *wanted))
    return {spec.name: values}


def _jsonl_batch(lines: Sequence[bytes], first: int, specs: Sequence[TensorSpec]) -> Batch:
    parsed: list[tuple[int, Any, Any]] = []
    errors: list[tuple[int, str]] = []
    for row, line in enumerate(lines, first):
        try:
            parsed.append((row, *wire.parse_row(row, line)))
        except InvalidInput as exc:
            errors.append((row, exc.message))
    kept, inputs = _decodable(parsed, specs, errors)
    rows = np.array([row for row, _, _ in kept], dtype=np.int64)
    return Batch(rows, inputs, [label for _, _, label in kept], sorted(errors))


def _decodable(
    parsed: list[tuple[int, Any, Any]], specs: Sequence[TensorSpec], errors: list[tuple[int, str]]
) -> tuple[list[tuple[int, Any, Any]], dict[str, np.ndarray]]:
    """The rows whose instances decode (all at once when they all do), and their inputs."""
    try:
        return parsed, wire.decode_instances([i for _, i, _ in parsed], specs, _UNBOUNDED) if parsed else {}
    except InvalidInput:
        pass  # find the culprits row by row (rows may also just mix plain and named instances)
    kept, parts = [], []
    for row, instance, label in parsed:
        try:
            parts.append(wire.decode_instances([instance], specs, _UNBOUNDED))
            kept.append((row, instance, label))
        except InvalidInput as exc:
            errors.append((row, exc.message))
    try:
        return kept, {
            s.name: np.concatenate([part[s.name] for part in parts]) for s in specs
        } if parts else {}
    except ValueError as exc:
        raise JobError(
            f"JSONL rows {kept[0][0]}..{kept[-1][0]} have inputs of different shapes: {exc}"
        ) from None
