"""Turns a version folder into an executor ready for traffic: load, check against the card, warm up.

The registry calls :func:`make_loader`'s result from its poller thread; this is where the runtime
(TensorFlow), the micro-batcher and the inference metrics meet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from service import metrics
from service.config import Settings
from service.errors import ModelLoadError
from service.model_config import BatchingConfig
from service.repository import ModelCard, TensorSpec
from service.servable import Arrays, DirectExecutor, Executor

# Batch sizes run once before a version takes traffic, so the first requests don't pay for
# TensorFlow's lazy initialisation of kernels at each size class.
WARMUP_SIZES = (1, 8, 64)


def _zeros(spec: TensorSpec, rows: int) -> np.ndarray:
    shape = (rows, *(1 if d < 0 else d for d in spec.shape[1:]))
    if spec.dtype == "string":
        return np.full(shape, b"", dtype=object)
    return np.zeros(shape, dtype=spec.dtype)


def warm_up(run: Callable[[Arrays], Arrays], card: ModelCard, sizes: tuple[int, ...] = WARMUP_SIZES) -> None:
    for rows in sizes:
        outputs = run({spec.name: _zeros(spec, rows) for spec in card.inputs})
        missing = {s.name for s in card.outputs} - set(outputs)
        if missing:
            raise ModelLoadError(f"Warm-up call did not return output(s) {sorted(missing)}.")


def _timed(model: Callable[[Arrays], Arrays], card: ModelCard) -> Callable[[Arrays], Arrays]:
    def run(inputs: Arrays) -> Arrays:
        started = time.perf_counter()
        outputs = model(inputs)
        rows = len(next(iter(inputs.values())))
        metrics.observe_batch(card.name, card.version, rows, time.perf_counter() - started)
        return outputs

    return run


def make_loader(settings: Settings) -> Callable[[ModelCard, Path, BatchingConfig], Executor]:
    from service import runtime  # TensorFlow: imported in the worker, never in the gunicorn master
    from service.batching import MicroBatcher

    runtime.configure_threads(settings.intra_op_threads, settings.tf_inter_op_threads)

    def load(card: ModelCard, path: Path, batching: BatchingConfig) -> Executor:
        model = runtime.load(path, card.signature_name)
        runtime.check_against_card(model, card.inputs, card.outputs)
        try:
            warm_up(model, card)
        except ModelLoadError:
            raise
        except Exception as exc:  # a model that cannot run on valid zeros is broken, whatever TF says
            raise ModelLoadError(f"Warm-up of {card.name!r} version {card.version} failed: {exc}") from exc
        run = _timed(model, card)
        enabled = settings.batching if batching.enabled is None else batching.enabled
        if not enabled:
            return DirectExecutor(run)
        return MicroBatcher(
            run,
            max_batch_size=batching.max_batch_size or settings.max_batch_size,
            batch_timeout=settings.batch_timeout
            if batching.batch_timeout is None
            else batching.batch_timeout,
            max_queue=settings.max_queue,
            name=f"{card.name}:{card.version}",
        )

    return load
