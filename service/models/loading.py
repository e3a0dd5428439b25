"""Turns a version folder into an executor ready for traffic: load, check against the card, warm up.

The registry calls :func:`make_loader`'s result from its poller thread; this is where the runtime
(TensorFlow), the micro-batcher and the batch metrics meet, and :func:`build_registry` wires them
to the repository and the serving config.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from service import metrics
from service.batching.direct import DirectExecutor
from service.batching.scheduler import MicroBatcher
from service.config import Settings
from service.errors import ModelLoadError
from service.models.card import ModelCard, TensorSpec
from service.models.config import BatchingConfig, load_model_config
from service.models.registry import Loader, Registry
from service.models.repository import Repository
from service.models.servable import Arrays, Executor

if TYPE_CHECKING:
    from service.models.runtime import LoadedModel

log = logging.getLogger(__name__)

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


ROW_MULTIPLES = (1, 2, 4, 8, 16, 32, 64)
PROBE_ROWS = 64


def _probe_inputs(card: ModelCard, rows: int) -> Arrays:
    rng = np.random.default_rng(0)
    inputs = {}
    for spec in card.inputs:
        zeros = _zeros(spec, rows)
        inputs[spec.name] = rng.random(zeros.shape).astype(spec.dtype) if zeros.dtype.kind == "f" else zeros
    return inputs


def _batch_independent(model: LoadedModel, sample: Arrays, reference: Arrays) -> bool:
    for rows in range(1, PROBE_ROWS):
        outputs = model({name: value[:rows] for name, value in sample.items()})
        if not all(np.array_equal(outputs[k], reference[k][:rows]) for k in reference):
            return False
    return True


def calibrate_row_multiple(model: LoadedModel, card: ModelCard) -> int:
    """Set and return the smallest row multiple for which answers do not depend on batch size.

    The reference is one call on PROBE_ROWS rows (a multiple of every candidate); each candidate
    must reproduce it bit for bit for every prefix of 1..PROBE_ROWS-1 rows.
    """
    sample = _probe_inputs(card, PROBE_ROWS)
    model.row_multiple = 1
    reference = model(sample)
    for multiple in ROW_MULTIPLES:
        model.row_multiple = multiple
        if _batch_independent(model, sample, reference):
            return multiple
    log.warning(
        "%s v%s: answers depend on batch size at any padding; batching may change the last bit",
        card.name,
        card.version,
    )
    return model.row_multiple


def prepare(card: ModelCard, path: Path) -> LoadedModel:
    """Load a version, check it against its card, warm it up and calibrate its row padding.

    The service's loader and the batch job's offline scorer both go through here, so a model
    answers the same bits online and offline.
    """
    from service.models import runtime  # TensorFlow: imported in the worker, never in the gunicorn master

    model = runtime.load(path, card.signature_name)
    runtime.check_against_card(model, card.inputs, card.outputs)
    try:
        warm_up(model, card)
        multiple = calibrate_row_multiple(model, card)
    except ModelLoadError:
        raise
    except Exception as exc:  # a model that cannot run on valid zeros is broken, whatever TF says
        raise ModelLoadError(f"Warm-up of {card.name!r} version {card.version} failed: {exc}") from exc
    log.info("%s v%s: signature calls padded to multiples of %d rows", card.name, card.version, multiple)
    return model


def make_loader(settings: Settings) -> Loader:
    """The registry's loader: prepare a version, then put it behind a micro-batcher (or call it directly)."""
    from service.models import runtime

    runtime.configure_threads(settings.intra_op_threads, settings.tf_inter_op_threads)

    def load(card: ModelCard, path: Path, batching: BatchingConfig) -> Executor:
        model = prepare(card, path)
        on_batch = partial(metrics.observe_batch, card.name, card.version)
        enabled = settings.batching if batching.enabled is None else batching.enabled
        if not enabled:
            return DirectExecutor(model, on_batch=on_batch)
        timeout = settings.batch_timeout if batching.batch_timeout is None else batching.batch_timeout
        on_wait, on_depth = metrics.queue_reporters(card.name, card.version)
        return MicroBatcher(
            model,
            max_batch_size=batching.max_batch_size or settings.max_batch_size,
            batch_timeout=timeout,
            max_queue=settings.max_queue,
            name=f"{card.name}:{card.version}",
            on_batch=on_batch,
            on_wait=on_wait,
            on_depth=on_depth,
        )

    return load


def build_registry(settings: Settings) -> Registry:
    """A registry over the configured repository and serving config, loading through :func:`make_loader`."""
    return Registry(
        Repository(settings.model_repository),
        make_loader(settings),
        config_source=partial(load_model_config, settings.model_config_path),
        poll_interval=settings.poll_interval,
        unload_timeout=settings.request_timeout,
        explicit=settings.model_control == "explicit",
    )
