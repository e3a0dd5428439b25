"""Labelled reference data for a model version: its card's held-out split, or a labelled file.

The card records where its training data came from (files with their sha256, the seed and the
split sizes), so for MNIST the held-out images can be rebuilt exactly as training cut them: the
files are looked for where the card says, then by name under ``MNIST_DIR``, and used only if
their sha256 matches. Synthetic training data (the small regressors and the binary model) cannot
be rebuilt here: gate those on a labelled file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from service.datafiles import heldout_split, read_idx_set, read_mnist_npz, sha256_file
from service.errors import JobError, ServiceError
from service.evaluation.batch.sources import open_source
from service.evaluation.labels import encode_labels
from service.evaluation.options import class_names
from service.models.card import ModelCard

Arrays = dict[str, np.ndarray]


class ReferenceUnavailable(Exception):
    """No labelled reference data can be had; the message says why and what to provide."""


def heldout(card: ModelCard, search: Sequence[Path]) -> tuple[Arrays, np.ndarray]:
    """The card's held-out split as model inputs and class ids."""
    data: dict[str, Any] = dict(card.raw.get("data") or {})
    source = data.get("source")
    if source not in ("idx", "npz"):
        raise ReferenceUnavailable(
            f"{card.name} v{card.version} was trained on {source or 'unrecorded'} data, which cannot be "
            "rebuilt here; name a labelled file as the reference."
        )
    files = [_locate(entry, search, card) for entry in data.get("files", [])]
    if source == "npz":
        test = read_mnist_npz(files[0])["test"]
        images, labels = test.images, test.labels
    elif len(files) == 4:  # the official train + t10k pair: the test set is t10k
        t10k = [f for f in files if "t10k" in f.name]
        found = read_idx_set(*sorted(t10k, key=lambda f: "labels" in f.name))
        images, labels = found.images, found.labels
    else:
        whole = read_idx_set(*sorted(files, key=lambda f: "labels" in f.name))
        _, held = heldout_split(len(whole.labels), int(data["split"]["test"]), int(data["seed"]))
        images, labels = whole.images[held], whole.labels[held]
    pixels = images.astype(np.float32) / np.float32(255.0)  # as training scales them
    return {card.inputs[0].name: pixels}, labels.astype(np.int64)


def _locate(entry: dict[str, Any], search: Sequence[Path], card: ModelCard) -> Path:
    recorded = Path(str(entry.get("path", "")))
    candidates = [recorded, *(folder / recorded.name for folder in search)]
    for path in candidates:
        if path.is_file() and sha256_file(path) == entry.get("sha256"):
            return path
    raise ReferenceUnavailable(
        f"{card.name} v{card.version}: its training file {recorded.name} (sha256 {str(entry.get('sha256'))[:12]}...) "
        f"is not at {recorded} nor under {', '.join(map(str, search)) or 'MNIST_DIR'}; set MNIST_DIR."
    )


def labelled_file(path: Path, card: ModelCard) -> tuple[Arrays, np.ndarray]:
    """A labelled file (MNIST IDX folder, mnist.npz, CSV, JSONL) as model inputs and encoded labels."""
    try:
        source = open_source(path)
        batch = source.batch(0, source.count, card.inputs)
        if batch.errors:
            row, reason = batch.errors[0]
            raise ReferenceUnavailable(f"{path}: row {row} cannot be used: {reason}")
        labels = encode_labels(batch.labels, card.task, class_names(card), len(batch.labels))
    except (JobError, ServiceError) as exc:
        raise ReferenceUnavailable(f"Reference file {path}: {exc}") from None
    return batch.inputs, labels


def load(
    reference: str, card: ModelCard, config_dir: Path | None, search: Sequence[Path]
) -> tuple[Arrays, np.ndarray]:
    """``reference`` is ``card`` or a path (relative to the serving config's folder)."""
    if reference == "card":
        return heldout(card, search)
    path = Path(reference)
    if not path.is_absolute() and config_dir is not None:
        path = config_dir / path
    return labelled_file(path, card)
