"""Runs a taken batch through the model and resolves each slot, so one bad request fails only itself."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from service.batching.arrays import Arrays, merge, row_count, split
from service.batching.slot import Slot

log = logging.getLogger(__name__)

Run = Callable[[Arrays], Arrays]
OnBatch = Callable[[int, float], None]


def reporting(run: Run, on_batch: OnBatch | None, label: str) -> Run:
    """``run`` that also reports ``(rows, seconds)`` of each call to ``on_batch``, if given."""
    if on_batch is None:
        return run

    def call(inputs: Arrays) -> Arrays:
        started = time.perf_counter()
        outputs = run(inputs)
        try:
            on_batch(row_count(inputs), time.perf_counter() - started)
        except Exception:  # metrics must never cost a request its result
            log.exception("on_batch callback of %s failed.", label)
        return outputs

    return call


def execute(batch: Sequence[Slot], run: Run) -> None:
    """One call for the whole batch; if it fails, one call per slot so only the culprit gets an error."""
    if len(batch) == 1:
        run_alone(batch[0], run)
        return
    started = time.monotonic()
    try:
        merged, sizes = merge([slot.inputs for slot in batch])
        results = split(run(merged), sizes)
    except BaseException as exc:  # not just Exception: nothing a model raises may kill the worker
        log.debug("Batch of %d failed (%r); re-running its requests one by one.", len(batch), exc)
        for slot in batch:
            run_alone(slot, run)
        return
    finished, rows = time.monotonic(), sum(sizes)
    for slot, result in zip(batch, results, strict=True):
        slot.started, slot.finished, slot.batch_rows = started, finished, rows
        slot.resolve(outputs=result)


def run_alone(slot: Slot, run: Run) -> None:
    slot.started, slot.batch_rows = time.monotonic(), slot.rows
    try:
        outputs = run(slot.inputs)
    except BaseException as exc:  # handed to the submitting thread, which re-raises it
        slot.finished = time.monotonic()
        slot.resolve(error=exc)
    else:
        slot.finished = time.monotonic()
        slot.resolve(outputs=outputs)
