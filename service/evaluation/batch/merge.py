"""``evaluate-model merge``: the shards of one evaluation into the report an unsharded run writes.

The shards' rows, labels and scores are joined in row order, exactly the arrays one job would
have gathered, and the figures are computed from them (confusion matrices therefore add up, and
AUC and log-loss come from all the scores, not from averaging shards). ``metrics.json`` has the
same fields as an unsharded run's, with ``duration_seconds`` the shards' added and a ``shards``
list. Shards of different jobs, shards given twice, missing or overlapping ones are refused.

    evaluate-model merge out/s0 out/s1 ... --output out/all [--min-accuracy 0.95] [--wait 600]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from service.errors import JobError
from service.evaluation.batch import gates, report
from service.evaluation.batch.runner import Gathered
from service.evaluation.batch.shards import SHARD_FILE, Partial, read_partial
from service.evaluation.options import Options, measure
from service.models.card import ModelCard


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate-model merge", description=__doc__.split("\n")[0])
    p.add_argument("shards", nargs="+", type=Path, help="the shards' --output folders, any order")
    p.add_argument("--output", type=Path, required=True, help="report folder of the whole evaluation")
    p.add_argument(
        "--wait", type=float, default=0.0, help="wait up to this many seconds for unfinished shards"
    )
    p.add_argument("--quiet", action="store_true", help="accepted as the job accepts it (merge shows no bar)")
    for option in gates.GATES:
        p.add_argument(f"--{option.replace('_', '-')}", type=float, help=f"gate: {option.replace('_', ' ')}")
    return p


def run_merge(args: argparse.Namespace) -> dict[str, Any]:
    """Write the merged report; return its metrics.json."""
    _wait_for(args.shards, args.wait)
    partials = sorted((read_partial(folder) for folder in args.shards), key=lambda p: p.spec.index)
    job = _check_same_job(partials)
    _check_cover(partials, job)
    card = ModelCard.from_dict(job["card"])
    gated = gates.required_metrics(card.task, {option: getattr(args, option) for option in gates.GATES})
    chosen = job["options"]["metrics"]  # plus what the gates need, as an unsharded run adds them
    raw = job["options"]
    options = Options(tuple(dict.fromkeys([*chosen, *gated])), raw["dataset"], raw["top_k"], raw["threshold"])
    gathered = _joined(partials)
    figures = measure(card, gathered.labels, gathered.scores, options)
    duration = sum(p.doc["duration_seconds"] for p in partials)
    outcome = report.Outcome(card, _scored_with(partials), gathered, options, figures, duration)
    doc = report.document(outcome, job["data"])
    doc["shards"] = [_summary(p) for p in partials]
    report.write(args.output, doc, outcome)
    return doc


def _wait_for(folders: list[Path], seconds: float) -> None:
    """Until every folder holds a finished shard, or ``seconds`` have passed (then merging says which lacks)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all((f / SHARD_FILE).is_file() for f in folders):
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


def _check_same_job(partials: list[Partial]) -> dict[str, Any]:
    first = partials[0]
    for other in partials[1:]:
        if other.doc["job"] != first.doc["job"]:
            theirs, mine = other.doc["job"], first.doc["job"]
            differ = sorted(k for k in {*theirs, *mine} if theirs.get(k) != mine.get(k))
            raise JobError(
                f"Shards {first.folder} and {other.folder} are parts of different evaluations "
                f"(they differ in {', '.join(differ)})."
            )
        if other.spec.count != first.spec.count:
            raise JobError(
                f"{first.folder} is a shard of {first.spec.count}, {other.folder} one of {other.spec.count}."
            )
    return dict(first.doc["job"])


def _check_cover(partials: list[Partial], job: dict[str, Any]) -> None:
    """Shards 0..n-1, each once, whose row ranges tile the evaluated rows, every row accounted for."""
    count = partials[0].spec.count
    seen: dict[int, Path] = {}
    for partial in partials:
        if partial.spec.index in seen:
            raise JobError(
                f"Shard {partial.spec.index}/{count} is given twice: {seen[partial.spec.index]} and {partial.folder}."
            )
        seen[partial.spec.index] = partial.folder
    missing = [f"{i}/{count}" for i in range(count) if i not in seen]
    if missing:
        raise JobError(f"Shard(s) {', '.join(missing)} are missing; merge needs all {count}.")
    at = job["data"]["offset"]
    for partial in partials:
        if partial.rows.start != at:
            raise JobError(
                f"Shard {partial.folder} starts at row {partial.rows.start}; the rows before it end at {at} (overlap or gap)."
            )
        if partial.doc["sample_count"] + partial.doc["error_count"] != len(partial.rows):
            raise JobError(
                f"Shard {partial.folder} does not account for every row of {partial.rows.start}..{partial.rows.stop - 1}."
            )
        at = partial.rows.stop
    if at != job["data"]["offset"] + job["rows"]:
        raise JobError(
            f"The shards cover rows up to {at}; the evaluation has {job['rows']} from {job['data']['offset']}."
        )


def _joined(partials: list[Partial]) -> Gathered:
    parts = [p.gathered for p in partials if len(p.gathered.rows)] or [partials[0].gathered]
    return Gathered(
        np.concatenate([g.rows for g in parts]),
        np.concatenate([g.labels for g in parts]),
        np.concatenate([g.scores for g in parts]),
        sorted(e for p in partials for e in p.gathered.errors),
    )


def _scored_with(partials: list[Partial]) -> str:
    return ", ".join(dict.fromkeys(p.doc["scored_with"] for p in partials))


def _summary(partial: Partial) -> dict[str, Any]:
    keys = ("shard", "rows", "scored_with", "sample_count", "error_count", "duration_seconds")
    return {"folder": str(partial.folder), **{k: partial.doc[k] for k in keys}}
