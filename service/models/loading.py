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
from service.models.config import BatchingConfig, ModelEntry, load_model_config
from service.models.control import ControlStore
from service.models.foreign import signature_card
from service.models.registry import Loader, Registry
from service.models.repository import ASSETS_EXTRA_DIR, Repository
from service.models.servable import Arrays, Executor
from service.models.warmup import WARMUP_FILE, WarmupError, read_warmup

if TYPE_CHECKING:
    from service.models.runtime import LoadedModel

log = logging.getLogger(__name__)

# Batch sizes run once before a version takes traffic, so the first requests don't pay for
# TensorFlow's lazy initialisation of kernels at each size class.
WARMUP_SIZES = (1, 8, 64)
SIGNATURE = "serving_default"  # TF Serving's default, the one a card-less version is served with


def _zeros(spec: TensorSpec, rows: int) -> np.ndarray:
    """Zeros fitting ``spec`` with ``rows`` rows (0: the spec's own shape, any size as 1)."""
    dims = spec.shape if rows == 0 else (rows, *spec.shape[1:])
    shape = tuple(1 if d < 0 else d for d in dims)
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
    return _ready(model, card, path)


def load_version(
    name: str, version: int, path: Path, card: ModelCard | None, entry: ModelEntry
) -> tuple[ModelCard, LoadedModel]:
    """:func:`prepare` for the registry: a version without a card gets one from its signature."""
    from service.models import runtime

    if card is not None:
        return card, prepare(card, path)
    model = runtime.load(path, SIGNATURE)
    card = signature_card(
        name, version, SIGNATURE, model.inputs, model.outputs, entry.task, entry.class_labels
    )
    return card, _ready(model, card, path)


def _ready(model: LoadedModel, card: ModelCard, path: Path) -> LoadedModel:
    from service.models import runtime

    runtime.check_against_card(model, card.inputs, card.outputs)
    multiple = 1
    try:
        if batchable(card):
            warm_up(model, card)
            multiple = calibrate_row_multiple(model, card)
        else:
            warm_up(model, card, sizes=(0,))  # the exact shapes, once
        replay_warmup(model, card, path)
    except ModelLoadError:
        raise
    except Exception as exc:  # a model that cannot run on valid zeros is broken, whatever TF says
        raise ModelLoadError(f"Warm-up of {card.name!r} version {card.version} failed: {exc}") from exc
    if batchable(card):
        model.bytes_per_row = runtime.working_bytes_per_row(model, _probe_inputs(card, PROBE_ROWS))
    log.info(
        "%s v%s (%s): signature calls padded to multiples of %d rows; %d KiB of working memory per row",
        card.name,
        card.version,
        card.task,
        multiple,
        model.bytes_per_row // 1024,
    )
    return model


def batchable(card: ModelCard) -> bool:
    """True if every signature tensor has a leading batch dimension of any size (rows can merge)."""
    return all(spec.shape[:1] == (-1,) for spec in (*card.inputs, *card.outputs))


def replay_warmup(model: LoadedModel, card: ModelCard, path: Path) -> None:
    """Run TF Serving's warm-up records (assets.extra/tf_serving_warmup_requests), if there are any."""
    from service.models import runtime

    warmup = path / ASSETS_EXTRA_DIR / WARMUP_FILE
    if not warmup.is_file():
        return
    try:
        found = read_warmup(warmup)
    except WarmupError as exc:
        raise ModelLoadError(f"The warm-up file {warmup} is unreadable: {exc}") from exc
    expected = sorted(spec.name for spec in card.inputs)
    for number, record in enumerate(found.requests, 1):
        inputs = {name: runtime.tensor_from_proto(raw) for name, raw in record.items()}
        if sorted(inputs) != expected:
            raise ModelLoadError(
                f"Warm-up record {number} gives inputs {sorted(inputs)}; the signature takes {expected}."
            )
        model(inputs)
    log.info(
        "%s v%s: replayed %d warm-up request(s)%s",
        card.name,
        card.version,
        len(found.requests),
        f"; skipped {found.skipped} classify/regress/multi-inference log(s), which need tf.Example"
        if found.skipped
        else "",
    )


def rows_per_call(model: LoadedModel, configured: int, max_call_bytes: int) -> int:
    """``configured`` rows per call, fewer if one call's working memory would pass ``max_call_bytes``.

    TensorFlow keeps the largest call's working set for good (see runtime.working_bytes_per_row),
    so this bounds what a large request leaves behind; answers do not change, as calls stay a
    multiple of the row padding.
    """
    if model.bytes_per_row <= 0:
        return configured
    fitting = max_call_bytes // model.bytes_per_row
    fitting -= fitting % model.row_multiple
    return max(model.row_multiple, min(configured, fitting))


def make_loader(settings: Settings) -> Loader:
    """The registry's loader: prepare a version, then put it behind a micro-batcher (or call it directly)."""
    from service.models import runtime

    runtime.configure_threads(settings.intra_op_threads, settings.tf_inter_op_threads)

    def load(
        name: str, version: int, path: Path, card: ModelCard | None, entry: ModelEntry
    ) -> tuple[ModelCard, Executor]:
        card, model = load_version(name, version, path, card, entry)
        return card, _executor(model, card, entry.batching)

    def _executor(model: LoadedModel, card: ModelCard, batching: BatchingConfig) -> Executor:
        on_batch = partial(metrics.observe_batch, card.name, card.version)
        enabled = settings.batching if batching.enabled is None else batching.enabled
        if not enabled or not batchable(card):  # fixed leading dimensions: rows cannot merge
            return DirectExecutor(model, on_batch=on_batch)
        timeout = settings.batch_timeout if batching.batch_timeout is None else batching.batch_timeout
        rows = rows_per_call(
            model, batching.max_batch_size or settings.max_batch_size, settings.max_call_bytes
        )
        on_wait, on_depth = metrics.queue_reporters(card.name, card.version)
        return MicroBatcher(
            model,
            max_batch_size=rows,
            batch_timeout=timeout,
            max_queue=settings.max_queue,
            name=f"{card.name}:{card.version}",
            on_batch=on_batch,
            on_wait=on_wait,
            on_depth=on_depth,
        )

    return load


def build_registry(settings: Settings) -> Registry:
    """A registry over the configured repository and serving config, loading through :func:`make_loader`,
    sharing the admin API's loads and unloads with the other workers through ``<DATA_DIR>/control``."""
    return Registry(
        Repository(settings.model_repository),
        make_loader(settings),
        config_source=partial(load_model_config, settings.model_config_path),
        poll_interval=settings.poll_interval,
        unload_timeout=settings.request_timeout,
        explicit=settings.model_control == "explicit",
        verify=_verify_files,
        strict_readiness=settings.strict_readiness,
        control=ControlStore(settings.data_dir / "control"),
    )


def _verify_files(path: Path) -> None:
    from service.models import runtime

    runtime.verify_files(path)
