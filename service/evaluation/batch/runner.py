"""Run a batch evaluation: chunks of rows, scored concurrently, checkpointed, every row accounted for.

The main thread reads the chunks still to do, in order, and keeps the scoring threads supplied
(a few chunks ahead, so memory stays bounded); each thread decodes its chunk and scores it. Each
chunk is saved to the checkpoint and counted on the progress bar the moment it is scored, so an
interrupted job loses only the chunks in flight. Ctrl-C abandons those requests and returns at
once.

Each chunk's rows end up scored or listed with a reason: rows that cannot become inputs or whose
label does not fit the model are listed by the source and the label check; a chunk the scorer
rejects is bisected until the rejected rows stand alone, so one bad row never sinks its chunk.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
from tqdm import tqdm

from service.errors import JobError
from service.evaluation.batch.checkpoint import Checkpoint, ChunkResult
from service.evaluation.batch.labels import encode as encode_labels
from service.evaluation.batch.scoring import RowsRejected, Scorer
from service.evaluation.batch.sources import Source
from service.evaluation.batch.workers import Workers
from service.evaluation.options import class_names

READ_AHEAD = 2  # chunks read per scoring thread: each thread finds its next chunk ready


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
    spans = [_span(i, chunk_size, source.count) for i in todo]
    label = f"{scorer.card.name} v{scorer.card.version}"
    initial = source.count - sum(len(s) for s in spans)
    if todo and initial:
        print(f"{label}: resuming, {count - len(todo)} of {count} chunks already scored.", file=sys.stderr)
    with tqdm(
        total=source.count, initial=initial, unit="row", desc=label, file=sys.stderr, disable=quiet
    ) as bar:
        _score_all(source, scorer, checkpoint, dict(zip(todo, spans, strict=True)), concurrency, bar)
    return gather(checkpoint, count, source.count, _score_shape(scorer))


def _span(index: int, size: int, total: int) -> range:
    return range(index * size, min(total, (index + 1) * size))


def _score_all(
    source: Source,
    scorer: Scorer,
    checkpoint: Checkpoint,
    todo: dict[int, range],
    concurrency: int,
    bar: tqdm[Any],
) -> None:
    """Keep ``concurrency`` threads busy on ``todo`` (chunk index -> positions), saving each result."""
    workers: Workers[ChunkResult] = Workers(concurrency)
    chunks = source.chunks(todo.values())
    window, in_flight = max(1, concurrency) * READ_AHEAD, 0
    try:
        for index in todo:
            if in_flight == window:
                in_flight -= _save(checkpoint, bar, workers.next_result())
            rows, raw = next(chunks)
            workers.submit(index, partial(score_chunk, source, scorer, rows, raw))
            in_flight += 1
        while in_flight:
            in_flight -= _save(checkpoint, bar, workers.next_result())
    except BaseException:  # a failed chunk or Ctrl-C: keep what was scored before it, for a resume
        for result in workers.finished():
            _save(checkpoint, bar, result)
        raise
    finally:
        workers.close()
        chunks.close()


def _save(checkpoint: Checkpoint, bar: tqdm[Any], done: tuple[int, ChunkResult]) -> int:
    index, result = done
    checkpoint.save(index, result)
    bar.update(result.count)
    return 1


def score_chunk(source: Source, scorer: Scorer, rows: range, raw: Any) -> ChunkResult:
    """One chunk's rows, each scored or listed with the reason it was not."""
    batch = source.decode(rows, raw, scorer.card.inputs)
    errors = list(batch.errors)
    keep, encoded = encode_labels(batch.labels, batch.rows, scorer.card, errors)
    rows_kept, inputs = batch.rows[keep], {k: v[keep] for k, v in batch.inputs.items()}
    kept, scores = _score(scorer, inputs, np.arange(len(rows_kept)), rows_kept, errors)
    return ChunkResult(rows_kept[kept], encoded[kept], scores, sorted(errors))


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


def gather(checkpoint: Checkpoint, chunks: int, expected: int, score_shape: tuple[int, ...] = ()) -> Gathered:
    """Every chunk's results in row order; refuses a state that does not account for every row.

    Copied into arrays sized for every row as the chunks are read, so memory peaks at the
    results plus one chunk instead of twice the results.
    """
    into: Gathered | None = None
    errors: list[tuple[int, str]] = []
    filled = accounted = 0
    for result in checkpoint.results(chunks):
        accounted += result.count
        n = len(result.rows)
        if accounted > expected:
            break
        if into is None and n:
            into = Gathered(
                np.empty(expected, dtype=np.int64),
                np.empty(expected, dtype=result.labels.dtype),
                np.empty((expected, *result.scores.shape[1:]), dtype=result.scores.dtype),
                errors,
            )
        if into is not None:
            into.rows[filled : filled + n] = result.rows
            into.labels[filled : filled + n] = result.labels
            into.scores[filled : filled + n] = result.scores
        filled += n
        errors += result.errors
    if accounted != expected:
        raise JobError(f"The job state accounts for {accounted} of {expected} rows; rerun with --fresh.")
    if into is None:
        return Gathered(np.empty(0, np.int64), np.empty(0), np.empty((0, *score_shape), np.float32), errors)
    return Gathered(into.rows[:filled], into.labels[:filled], into.scores[:filled], sorted(errors))
