"""Shards of a batch evaluation: shard ``i`` of ``n`` scores one row range and writes a partial result.

The rows after ``--offset``/``--limit`` are split into ``n`` consecutive ranges, shard ``i`` taking
rows ``N*i//n .. N*(i+1)//n`` (sizes differ by at most one). A partial result folder holds::

    scores.npz     rows (int64), labels (class ids or targets), scores (as the model returned them)
    errors.jsonl   {"row", "reason"} per row not scored
    shard.json     {"format", "shard": [i, n], "rows": [start, stop], "job": {...}, "scored_with",
                    "sample_count", "error_count", "duration_seconds"}

``job`` is everything the shards of one evaluation share (model card, options, data files and
cut); ``evaluate-model merge`` refuses shards whose ``job`` differs. Every file is written
atomically and ``shard.json`` last, so a folder with a ``shard.json`` is a complete shard.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.errors import JobError
from service.evaluation.batch.runner import Gathered
from service.evaluation.options import Options
from service.files import write_atomic
from service.models.card import ModelCard

FORMAT = "evaluate-model-shard/1"
SHARD_FILE, SCORES_FILE, ERRORS_FILE = "shard.json", "scores.npz", "errors.jsonl"


@dataclass(frozen=True)
class ShardSpec:
    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> ShardSpec:
        match = re.fullmatch(r"([0-9]{1,6})/([0-9]{1,6})", text.strip())
        if not match or not 0 <= int(match[1]) < int(match[2]):
            raise JobError(f"--shard takes i/n with 0 <= i < n (e.g. 0/4); got {text!r}.")
        return cls(int(match[1]), int(match[2]))

    def positions(self, total: int) -> range:
        """This shard's positions among ``total`` rows."""
        return range(total * self.index // self.count, total * (self.index + 1) // self.count)


@dataclass(frozen=True)
class Partial:
    folder: Path
    doc: dict[str, Any]
    gathered: Gathered

    @property
    def spec(self) -> ShardSpec:
        return ShardSpec(*self.doc["shard"])

    @property
    def rows(self) -> range:
        return range(*self.doc["rows"])


def job_identity(
    card: ModelCard, options: Options, data: dict[str, Any], total: int, **extra: Any
) -> dict[str, Any]:
    """What the shards of one evaluation share, as JSON."""
    fields = ("name", "version", "task", "signature_name", "inputs", "outputs", "class_labels")
    whole = card.to_dict()
    return {
        "card": {k: whole[k] for k in fields},
        "options": {
            "metrics": list(options.metrics),
            "dataset": options.dataset,
            "top_k": options.top_k,
            "threshold": options.threshold,
        },
        "data": data,
        "rows": total,
        **extra,
    }


def write_partial(
    folder: Path,
    spec: ShardSpec,
    rows: range,
    job: dict[str, Any],
    scored_with: str,
    gathered: Gathered,
    duration: float,
) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, rows=gathered.rows, labels=gathered.labels, scores=gathered.scores)
    write_atomic(folder / SCORES_FILE, buffer.getvalue())
    lines = "".join(json.dumps({"row": r, "reason": why}) + "\n" for r, why in gathered.errors)
    write_atomic(folder / ERRORS_FILE, lines.encode())
    doc = {
        "format": FORMAT,
        "shard": [spec.index, spec.count],
        "rows": [rows.start, rows.stop],
        "job": job,
        "scored_with": scored_with,
        "sample_count": len(gathered.rows),
        "error_count": len(gathered.errors),
        "duration_seconds": round(duration, 3),
    }
    write_atomic(folder / SHARD_FILE, json.dumps(doc, indent=2).encode())


def read_partial(folder: Path) -> Partial:
    """A shard's partial result, checked for completeness and internal consistency."""
    try:
        doc = json.loads((folder / SHARD_FILE).read_text())
    except FileNotFoundError:
        raise JobError(f"{folder} is not a finished shard (no {SHARD_FILE}).") from None
    except (OSError, ValueError) as exc:
        raise JobError(f"{folder / SHARD_FILE} is unreadable: {exc}.") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise JobError(f"{folder / SHARD_FILE} is not a shard result of this version ({FORMAT}).")
    try:
        with np.load(folder / SCORES_FILE, allow_pickle=False) as npz:
            rows, labels, scores = npz["rows"], npz["labels"], npz["scores"]
        errors = [(int(e["row"]), str(e["reason"])) for e in map(json.loads, _lines(folder / ERRORS_FILE))]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise JobError(f"The shard in {folder} is unreadable ({exc}).") from None
    if (len(rows), len(errors)) != (doc["sample_count"], doc["error_count"]):
        raise JobError(f"The shard in {folder} is inconsistent: its files disagree with {SHARD_FILE}.")
    return Partial(folder, doc, Gathered(rows, labels, scores, errors))


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]
