"""Batch evaluation of a model version on a labelled data file, through the service or offline.

    python -m service.evaluation.batch --model mnist --data ../shared/data/mnist \\
        --server http://127.0.0.1:8501 --output reports/mnist [--compare-version 1] [--min-accuracy 0.9] \\
        [--token-file eval.token]
    python -m service.evaluation.batch --model mnist --data mnist.npz --offline --model-repository models ...
    python -m service.evaluation.batch ... --shard 0/4 --output out/s0      (then 1/4, 2/4, 3/4, anywhere)
    python -m service.evaluation.batch merge out/s0 out/s1 out/s2 out/s3 --output out/all

Exit status: 0 done; 3 a quality gate failed (one line says which); 2 the job could not run
(bad arguments or data, server unreachable after retries; one line says why); 130 interrupted
(run the same command again to resume).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from service.errors import JobError, ServiceError
from service.evaluation.batch import gates, merge, report, runner, shards
from service.evaluation.batch.checkpoint import Checkpoint
from service.evaluation.batch.client import Backoff, HttpScorer, read_token_file
from service.evaluation.batch.scoring import OfflineScorer, Scorer
from service.evaluation.batch.shards import ShardSpec
from service.evaluation.batch.sources import FORMATS, Source, open_source
from service.evaluation.figures import scalars, select_metrics
from service.evaluation.options import measure, parse_options

EXIT_ERROR, EXIT_GATE, EXIT_INTERRUPTED = 2, 3, 130
# One request per chunk, sized to the server's default MAX_BATCH_SIZE so a chunk is one model call;
# four in flight keep both of a 2-core server's workers busy while the job encodes the next ones.
CHUNK_SIZE, CONCURRENCY = 1024, 4


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate-model", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="model name")
    p.add_argument("--version", type=int, help="version to evaluate (default: the latest served/exported)")
    p.add_argument("--compare-version", type=int, help="also evaluate this version; report the deltas")
    data = p.add_argument_group("data")
    data.add_argument(
        "--data",
        required=True,
        help="IDX folder, mnist.npz, .csv, .jsonl or .parquet; a path or an fsspec URL",
    )
    data.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fsspec option for a URL's store, e.g. endpoint_url=http://127.0.0.1:9000 (repeatable)",
    )
    data.add_argument("--format", choices=FORMATS, help="default: from the path")
    data.add_argument("--split", help="IDX set prefix (t10k, mnist-9k...) or npz split (test, train)")
    data.add_argument("--label-column", default="label", help="CSV label column (default: label)")
    data.add_argument("--offset", type=int, default=0, help="skip this many rows first")
    data.add_argument("--limit", type=int, help="evaluate at most this many rows")
    data.add_argument("--raw-pixels", action="store_true", help="do not scale IDX/npz pixels to 0..1")
    data.add_argument(
        "--scale", type=float, help="divide array features by this (e.g. 255 for a CSV of MNIST pixels)"
    )
    data.add_argument("--dataset", help="name recorded with the figures (default: from the data)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", help="base URL of the service, e.g. http://127.0.0.1:8501")
    where.add_argument("--offline", action="store_true", help="score the SavedModel directly")
    p.add_argument(
        "--token-file",
        type=Path,
        help="file holding the bearer token for --server (a token with the 'infer' scope)",
    )
    p.add_argument("--model-repository", type=Path, default=Path("models"), help="for --offline")
    run = p.add_argument_group("running")
    run.add_argument(
        "--chunk-size", type=int, default=CHUNK_SIZE, help=f"rows per request (default {CHUNK_SIZE})"
    )
    run.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help=f"requests in flight (default {CONCURRENCY})"
    )
    run.add_argument("--shard", help="i/n: score only shard i of n (a row range) into a partial result")
    run.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    run.add_argument("--retries", type=int, default=8, help="retries per request, backing off (default 8)")
    run.add_argument(
        "--max-backoff", type=float, default=8.0, help="longest wait between retries (default 8 s)"
    )
    run.add_argument("--output", type=Path, required=True, help="report folder")
    run.add_argument("--state-dir", type=Path, help="checkpoints (default: <output>/.state)")
    resume = run.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="require resuming a matching checkpoint")
    resume.add_argument("--fresh", action="store_true", help="ignore any checkpoint and start over")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    figures = p.add_argument_group("metrics and gates")
    figures.add_argument("--metrics", help="comma-separated metric names (default: the task's)")
    figures.add_argument("--threshold", type=float, help="decision threshold of a binary model")
    figures.add_argument("--top-k", type=int, help="k of top-k accuracy")
    for option in gates.GATES:
        figures.add_argument(
            f"--{option.replace('_', '-')}", type=float, help=f"gate: {option.replace('_', ' ')}"
        )
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    merging = bool(argv) and argv[0] == "merge"
    args = (merge.parser() if merging else parser()).parse_args(argv[1:] if merging else argv)
    try:
        return run_merge(args) if merging else run_job(args)
    except (JobError, ServiceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:  # the output or state folder cannot be written
        print(f"error: cannot write {exc.filename}: {exc.strerror or exc}.", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume.", file=sys.stderr)
        return EXIT_INTERRUPTED


def run_job(args: argparse.Namespace) -> int:
    _check_numbers(args)
    if args.offline and args.token_file is not None:
        raise JobError("--token-file is for --server; an --offline run calls no server.")
    shard = ShardSpec.parse(args.shard) if args.shard is not None else None
    if shard is not None:
        _check_shard_options(args)
    whole = open_source(
        args.data, args.format, split=args.split, label_column=args.label_column,
        offset=args.offset, limit=args.limit, raw_pixels=args.raw_pixels, scale=args.scale,
        storage_options=_storage_options(args.storage_option),
    )  # fmt: skip
    if whole.count == 0:
        raise JobError(f"{whole.description} has no rows to evaluate (offset {args.offset}).")
    state = args.state_dir or args.output / ".state"
    data = report.data_block(whole, args.offset, args.limit)
    if shard is not None:
        return _run_shard(args, whole, shard, data, state)
    outcome = evaluate_version(args, whole, args.version, state)
    doc = report.document(outcome, data)
    if args.compare_version is not None:
        if args.compare_version == outcome.card.version:
            raise JobError(f"--compare-version {args.compare_version} is the version being evaluated.")
        other = evaluate_version(args, whole, args.compare_version, state)
        folder = f"version-{other.card.version}/"
        report.write(args.output / folder, report.document(other, data), other)
        doc["comparison"] = report.comparison(outcome, other, folder)
    report.write(args.output, doc, outcome)
    shutil.rmtree(state, ignore_errors=True)  # finished: nothing left to resume
    print(_headline(doc, args.output))
    return _gate(scalars(outcome.metrics), _gate_limits(args))


def _run_shard(
    args: argparse.Namespace, whole: Source, shard: ShardSpec, data: dict[str, Any], state: Path
) -> int:
    """Score shard ``shard`` of ``whole`` and write its partial result (no figures: merge computes them)."""
    part = shard.positions(whole.count)
    source = whole.cut(part.start, part.stop)
    outcome = evaluate_version(args, source, args.version, state, compute=False)
    extra = {"label_column": args.label_column, "raw_pixels": args.raw_pixels, "scale": args.scale}
    job = shards.job_identity(outcome.card, outcome.options, data, whole.count, **extra)
    rows, gathered = range(source.offset, source.offset + source.count), outcome.gathered
    shards.write_partial(args.output, shard, rows, job, outcome.scored_with, gathered, outcome.duration)
    shutil.rmtree(state, ignore_errors=True)
    print(
        f"shard {shard.index}/{shard.count}: rows {rows.start}..{rows.stop - 1}, {len(gathered.rows)} scored, "
        f"{len(gathered.errors)} errors -> {args.output}"
    )
    return 0


def run_merge(args: argparse.Namespace) -> int:
    doc = merge.run_merge(args)
    print(_headline(doc, args.output))
    return _gate(scalars(doc["metrics"]), _gate_limits(args))


def _gate(figures: dict[str, float | None], limits: dict[str, float | None]) -> int:
    reason = gates.failure(figures, limits)
    if reason is not None:
        print(f"gate failed: {reason}", file=sys.stderr)
        return EXIT_GATE
    return 0


def evaluate_version(
    args: argparse.Namespace, source: Source, version: int | None, state: Path, compute: bool = True
) -> report.Outcome:
    """Pin the version, score every row (resuming a matching checkpoint), and compute the figures."""
    scorer = _scorer(args, version)
    try:
        card = scorer.card
        options = parse_options(_raw_options(args, source, card.task), card)
        started = time.perf_counter()
        checkpoint = Checkpoint.open(
            state / f"{card.name}-v{card.version}", _fingerprint(args, source, card.name, card.version),
            resume=True if args.resume else False if args.fresh else None,
        )  # fmt: skip
        gathered = runner.run(source, scorer, checkpoint, args.chunk_size, args.concurrency, args.quiet)
    finally:
        scorer.close()
    duration = time.perf_counter() - started
    figures = measure(card, gathered.labels, gathered.scores, options) if compute else {}
    return report.Outcome(card, scorer.where, gathered, options, figures, duration)


def _scorer(args: argparse.Namespace, version: int | None) -> Scorer:
    if args.offline:
        return OfflineScorer(args.model_repository, args.model, version)
    backoff = Backoff(retries=args.retries, cap=args.max_backoff)
    token = None if args.token_file is None else read_token_file(args.token_file)
    return HttpScorer(
        args.server, args.model, version, timeout=args.timeout, backoff=backoff,
        pool_size=args.concurrency, token=token,
    )  # fmt: skip


def _raw_options(args: argparse.Namespace, source: Source, task: str) -> dict[str, Any]:
    chosen = args.metrics.split(",") if args.metrics else list(select_metrics(task, None))
    chosen += [m for m in gates.required_metrics(task, _gate_limits(args)) if m not in chosen]
    dataset = args.dataset or re.sub(r"[^A-Za-z0-9_.:-]", "-", source.name)[:64]
    raw = {"metrics": chosen, "dataset": dataset, "top_k": args.top_k, "threshold": args.threshold}
    return {k: v for k, v in raw.items() if v is not None}


def _fingerprint(args: argparse.Namespace, source: Source, name: str, version: int) -> dict[str, Any]:
    """What must match for a checkpoint to be resumed: the same rows, scored by the same version."""
    return {
        "files": [file.fingerprint(source.local) for file in source.files],
        "format": source.kind,
        "set": source.name,
        "offset": args.offset,
        "limit": args.limit,
        "shard": args.shard,
        "label_column": args.label_column if source.kind in ("csv", "parquet") else None,
        "raw_pixels": args.raw_pixels,
        "scale": args.scale,
        "model": name,
        "version": version,
        "chunk_size": args.chunk_size,
    }


def _storage_options(pairs: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise JobError(f"--storage-option takes KEY=VALUE; got {pair!r}.")
        options[key] = value
    return options


def _check_shard_options(args: argparse.Namespace) -> None:
    if args.compare_version is not None:
        raise JobError("--compare-version does not combine with --shard: merge each version's shards apart.")
    if any(limit is not None for limit in _gate_limits(args).values()):
        raise JobError("Quality gates apply to the whole evaluation: give them to `evaluate-model merge`.")


def _gate_limits(args: argparse.Namespace) -> dict[str, float | None]:
    return {option: getattr(args, option) for option in gates.GATES}


def _check_numbers(args: argparse.Namespace) -> None:
    for name in ("chunk_size", "concurrency", "timeout", "max_backoff"):
        if getattr(args, name) <= 0:
            raise JobError(f"--{name.replace('_', '-')} must be positive.")
    for name in ("offset", "retries"):
        if getattr(args, name) < 0:
            raise JobError(f"--{name} must not be negative.")
    if args.limit is not None and args.limit <= 0:
        raise JobError("--limit must be positive.")
    if args.scale is not None and not (0 < args.scale < float("inf")):
        raise JobError("--scale must be a positive number.")


def _headline(doc: dict[str, Any], output: Path) -> str:
    shown = ", ".join(f"{k}={v:.4f}" for k, v in scalars(doc["metrics"]).items() if v is not None)
    return (
        f"{doc['model']} v{doc['version']} on {doc['dataset']}: {doc['sample_count']} scored, "
        f"{doc['error_count']} errors; {shown} -> {output}"
    )
