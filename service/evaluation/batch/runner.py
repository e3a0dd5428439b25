"""Run a batch evaluation: chunks of rows, scored concurrently, checkpointed, every row accounted for.

Each chunk's rows end up scored or listed with a reason: rows that cannot become inputs or whose
label does not fit the model are listed by the source and the label check; a chunk the scorer
rejects is bisected until the rejected rows stand alone, so one bad row never sinks its chunk.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from service.errors import InvalidInput, JobError
from service.evaluation.batch.checkpoint import Checkpoint, ChunkResult
from service.evaluation.batch.scoring import RowsRejected, Scorer
from service.evaluation.batch.sources import Source
from service.evaluation.labels import encode_labels
from service.evaluation.options import class_names


@dataclass(frozen=True)
class Gathered:
    rows: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    errors: list[tuple[int, str]]


def run(
    source: Source, scorer: Scorer, checkpoint: Checkpoint, chunk_size: int, concurrency: int, quiet: bool
) -> Gathered:
    """Score every chunk not yet in ``checkpoint``; then gather all chunks in row order."""
    count = math.ceil(source.count / chunk_size)
    todo = sorted(set(range(count)) - checkpoint.done())
    done_rows = source.count - sum(len(_span(i, chunk_size, source.count)) for i in todo)
    label = f"{scorer.card.name} v{scorer.card.version}"
    with (
        tqdm(
            total=source.count, initial=done_rows, unit="row", desc=label, file=sys.stderr, disable=quiet
        ) as bar,
        ThreadPoolExecutor(max(1, concurrency)) as pool,
    ):
        futures = {
            pool.submit(score_chunk, source, scorer, _span(i, chunk_size, source.count)): i for i in todo
        }
        try:
            _collect(futures, checkpoint, bar.update)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return gather(checkpoint, count, source.count)


def _span(index: int, size: int, total: int) -> range:
    return range(index * size, min(total, (index + 1) * size))


def _collect(
    futures: dict[Future[ChunkResult], int], checkpoint: Checkpoint, progress: Callable[[int], Any]
) -> None:
    pending = set(futures)
    while pending:
        finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
        for future in sorted(finished, key=lambda f: f.exception() is not None):
            result = future.result()  # a failed chunk stops the job, after saving the finished ones
            checkpoint.save(futures[future], result)
            progress(result.count)


def score_chunk(source: Source, scorer: Scorer, span: range) -> ChunkResult:
    """One chunk's rows, each scored or listed with the reason it was not."""
    batch = source.batch(span.start, span.stop, scorer.card.inputs)
    errors = list(batch.errors)
    keep, labels = _labels(batch.labels, batch.rows, scorer, errors)
    rows, inputs = batch.rows[keep], {k: v[keep] for k, v in batch.inputs.items()}
    kept, scores = _score(scorer, inputs, np.arange(len(rows)), rows, errors)
    return ChunkResult(rows[kept], labels[kept], scores, sorted(errors))


def _labels(
    raw: list[Any], rows: np.ndarray, scorer: Scorer, errors: list[tuple[int, str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the rows whose labels fit the model, and those labels encoded."""
    card = scorer.card

    def encode(items: list[Any], where: Callable[[int], str]) -> np.ndarray:
        return encode_labels(items, card.task, class_names(card), len(items), where)

    try:
        return np.arange(len(raw)), encode(raw, lambda i: f"on row {rows[i]}")
    except InvalidInput:
        pass
    keep, encoded = [], []
    for i, label in enumerate(raw):
        try:
            encoded.append(encode([label], lambda _: f"on row {rows[i]}")[0])  # noqa: B023 - called at once
            keep.append(i)
        except InvalidInput as exc:
            errors.append((int(rows[i]), exc.message))
    dtype = np.float64 if card.task == "regression" else np.int64
    return np.array(keep, dtype=np.int64), np.array(encoded, dtype=dtype)


def _score(
    scorer: Scorer,
    inputs: dict[str, np.ndarray],
    positions: np.ndarray,
    rows: np.ndarray,
    errors: list[tuple[int, str]],
) -> tuple[np.ndarray, np.ndarray]:
    """(``positions`` scored, their scores): ``inputs`` holds the rows at ``positions`` of ``rows``.

    A rejected set is halved until each rejected row stands alone and is listed in ``errors``.
    """
    if len(positions) == 0:
        return positions, np.empty((0, *_score_shape(scorer)))
    try:
        return positions, scorer.score(inputs)
    except RowsRejected as exc:
        if len(positions) == 1:
            errors.append((int(rows[positions[0]]), exc.reason))
            return positions[:0], np.empty((0, *_score_shape(scorer)))
    half = len(positions) // 2
    parts = [
        _score(scorer, {k: v[part] for k, v in inputs.items()}, positions[part], rows, errors)
        for part in (slice(None, half), slice(half, None))
    ]
    return np.concatenate([p for p, _ in parts]), np.concatenate([s for _, s in parts])


def _score_shape(scorer: Scorer) -> tuple[int, ...]:
    if scorer.card.task != "classification":
        return ()
    return (len(class_names(scorer.card) or ()),)


def gather(checkpoint: Checkpoint, chunks: int, expected: int) -> Gathered:
    """Every chunk's results in row order; refuses a state that does not account for every row."""
    results = list(checkpoint.results(chunks))
    accounted = sum(r.count for r in results)
    if accounted != expected:
        raise JobError(f"The job state accounts for {accounted} of {expected} rows; rerun with --fresh.")
    errors = sorted(e for r in results for e in r.errors)
    return Gathered(
        np.concatenate([r.rows for r in results]),
        np.concatenate([r.labels for r in results]),
        np.concatenate([r.scores for r in results]),
        errors,
    )
