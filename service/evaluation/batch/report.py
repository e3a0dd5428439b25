"""The report folder of a batch evaluation: metrics.json, summary.md, errors.jsonl and PNG plots.

Every file is written atomically. ``metrics.json``::

    {"model", "version", "task", "dataset", "scored_with", "data": {"source", "format", "files":
     [{"path", "sha256"} or {"path", "size", "etag"}], "offset", "limit"}, "sample_count",
     "error_count", "duration_seconds", "metrics": {...}, "plots": [...],
     "comparison": {"version", "metrics", "deltas", "report"}, "shards": [...] (merged reports)}

``deltas`` are this version's figures minus the compared version's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from service.evaluation.batch import plots
from service.evaluation.batch.runner import Gathered
from service.evaluation.batch.sources import Source
from service.evaluation.figures import compute, scalars
from service.evaluation.options import Options, class_names
from service.files import write_atomic
from service.models.card import ModelCard


@dataclass(frozen=True)
class Outcome:
    """One version's evaluation: what scored it, the rows gathered and the figures."""

    card: ModelCard
    scored_with: str
    gathered: Gathered
    options: Options
    metrics: dict[str, Any]
    duration: float


def data_block(source: Source, offset: int, limit: int | None) -> dict[str, Any]:
    """metrics.json's ``data``: the file(s) and the cut; a shard's report names the whole cut."""
    return {
        "source": source.description,
        "format": source.kind,
        "files": [file.report() for file in source.files],
        "offset": offset,
        "limit": limit,
    }


def document(outcome: Outcome, data: dict[str, Any]) -> dict[str, Any]:
    card = outcome.card
    return {
        "model": card.name,
        "version": str(card.version),
        "task": card.task,
        "dataset": outcome.options.dataset,
        "scored_with": outcome.scored_with,
        "data": data,
        "sample_count": len(outcome.gathered.rows),
        "error_count": len(outcome.gathered.errors),
        "duration_seconds": round(outcome.duration, 3),
        "metrics": outcome.metrics,
    }


def comparison(outcome: Outcome, other: Outcome, folder: str) -> dict[str, Any]:
    mine, theirs = scalars(outcome.metrics), scalars(other.metrics)
    deltas = {name: _delta(value, theirs.get(name)) for name, value in mine.items()}
    return {"version": str(other.card.version), "metrics": theirs, "deltas": deltas, "report": folder}


def write(folder: Path, doc: dict[str, Any], outcome: Outcome) -> None:
    """All report files of one version into ``folder``; ``doc`` is its metrics.json."""
    doc["plots"] = draw(folder, outcome)
    lines = [json.dumps({"row": row, "reason": reason}) for row, reason in outcome.gathered.errors]
    write_atomic(folder / "errors.jsonl", "".join(f"{line}\n" for line in lines).encode())
    write_atomic(folder / "metrics.json", json.dumps(doc, indent=2).encode())
    write_atomic(folder / "summary.md", summary(doc).encode())


def draw(folder: Path, outcome: Outcome) -> list[str]:
    card, y, scores = outcome.card, outcome.gathered.labels, outcome.gathered.scores
    title = f"{card.name} v{card.version}"
    if len(y) == 0:
        return []
    if card.task == "regression":
        plots.predicted_vs_true(y, scores, title, folder / plots.PREDICTED)
        plots.residuals(y, scores, title, folder / plots.RESIDUALS)
        return [plots.PREDICTED, plots.RESIDUALS]
    names = list(class_names(card) or ("0", "1"))
    figures = compute(
        card.task,
        y,
        scores,
        class_labels=names,
        metrics=["confusion_matrix", "roc_curve"],
        threshold=outcome.options.threshold,
    )
    plots.confusion_matrix(
        figures["confusion_matrix"], names, f"{title}: confusion matrix", folder / plots.CONFUSION
    )
    plots.roc_curves(figures["roc_curve"], f"{title}: ROC (one-vs-rest)", folder / plots.ROC)
    return [plots.CONFUSION, plots.ROC]


def summary(doc: dict[str, Any]) -> str:
    """summary.md: what was evaluated on what, the figures, per-class table, plots, comparison."""
    rows = [
        ("Model", f"{doc['model']} version {doc['version']} ({doc['task']})"),
        ("Scored with", f"`{doc['scored_with']}`"),
        (
            "Data",
            f"{doc['data']['source']} (offset {doc['data']['offset']}, limit {doc['data']['limit'] or 'none'})",
        ),
        *(_file_row(f) for f in doc["data"]["files"]),
        ("Dataset name", doc["dataset"]),
        ("Samples scored", str(doc["sample_count"])),
        ("Rows not scored", f"{doc['error_count']} (see [errors.jsonl](errors.jsonl))"),
        ("Duration", f"{doc['duration_seconds']} s"),
    ]
    parts = [f"# Evaluation of {doc['model']} version {doc['version']}", "", _table(("", ""), rows)]
    figures = scalars(doc["metrics"])
    parts += [
        "",
        "## Metrics",
        "",
        _table(("metric", "value"), [(k, _number(v)) for k, v in figures.items()]),
    ]
    if "per_class" in doc["metrics"]:
        per_class = [(name, *(_number(c[k]) for k in ("precision", "recall", "f1")), str(c["support"]))
                     for name, c in doc["metrics"]["per_class"].items()]  # fmt: skip
        parts += [
            "",
            "## Per class",
            "",
            _table(("class", "precision", "recall", "F1", "support"), per_class),
        ]
    if doc.get("plots"):
        parts += ["", "## Plots", "", *(f"![{p[:-4].replace('_', ' ')}]({p})" for p in doc["plots"])]
    for warning in doc["metrics"].get("warnings", []):
        parts += ["", f"> {warning}"]
    if "comparison" in doc:
        parts += ["", *_comparison(doc)]
    return "\n".join(parts) + "\n"


def _comparison(doc: dict[str, Any]) -> list[str]:
    other = doc["comparison"]
    header = (
        "metric",
        f"v{doc['version']}",
        f"v{other['version']}",
        f"delta (v{doc['version']} - v{other['version']})",
    )
    mine = scalars(doc["metrics"])
    rows = [
        (k, _number(v), _number(other["metrics"].get(k)), _number(other["deltas"][k], signed=True))
        for k, v in mine.items()
    ]
    link = f"[its report]({other['report']}summary.md)"
    return [
        f"## Compared with version {other['version']}",
        "",
        _table(header, rows),
        "",
        f"Version {other['version']}: {link}.",
    ]


def _file_row(file: dict[str, Any]) -> tuple[str, str]:
    name = Path(file["path"]).name
    if "sha256" in file:
        return f"sha256 of `{name}`", f"`{file['sha256']}`"
    return f"`{name}`", f"{file.get('size')} bytes, ETag or mtime `{file.get('etag')}`"


def _delta(mine: float | None, theirs: float | None) -> float | None:
    return None if mine is None or theirs is None else mine - theirs


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in rows)])


def _number(value: Any, signed: bool = False) -> str:
    if value is None:
        return "undefined"
    if isinstance(value, (float, np.floating)):
        return f"{value:+.4f}" if signed else f"{value:.4f}"
    return str(value)
