"""Training data: find MNIST (IDX folder, Keras npz, Keras download) or generate a synthetic set, then split it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from service.datafiles import (
    LabelledSet,
    find_idx_sets,
    heldout_split,
    read_idx_set,
    read_mnist_npz,
    sha256_file,
)
from training import synthetic
from training.errors import ConfigError, DataUnavailable

Arrays = tuple[np.ndarray, np.ndarray]
MNIST = "mnist"
KINDS = (MNIST, *synthetic.GENERATORS)
NO_DATA_HINT = "pass --data DIR_OR_NPZ (a folder of MNIST IDX files or Keras' mnist.npz) or set MNIST_DIR"


@dataclass(frozen=True)
class Splits:
    """Train, optional validation and held-out test arrays, with where they came from."""

    train: Arrays
    validation: Arrays | None
    test: Arrays
    provenance: Mapping[str, Any] = field(default_factory=dict)
    metrics_split: str = "test"

    def sizes(self) -> dict[str, int]:
        val = 0 if self.validation is None else len(self.validation[0])
        return {"train": len(self.train[0]), "validation": val, "test": len(self.test[0])}


@dataclass(frozen=True)
class MnistSource:
    """MNIST as found: a training set, and a separate test set unless one must be held out of it."""

    train: LabelledSet
    test: LabelledSet | None
    kind: str

    def describe(self) -> dict[str, Any]:
        files = dict.fromkeys([*self.train.files, *(self.test.files if self.test else ())])
        return {"source": self.kind, "files": [{"path": str(p), "sha256": sha256_file(p)} for p in files]}


def parameters(kind: str) -> dict[str, Any]:
    """The parameters a data kind accepts, with their defaults."""
    return {"test_size": 1500} if kind == MNIST else synthetic.parameters(kind)


def load(
    kind: str, params: Mapping[str, Any], seed: int, validation_split: float | None, path: str | None
) -> Splits:
    """The splits a config asks for; ``path`` only matters for MNIST."""
    if kind == MNIST:
        return split_mnist(find_mnist(path), seed=seed, validation_split=validation_split, **params)
    generated = synthetic.generate(kind, seed, params)
    train, validation = split_validation(*generated.train, validation_split)
    provenance = {
        "source": "synthetic",
        "generator": kind,
        "params": {**synthetic.parameters(kind), **params},
        "test_from": generated.test_note,
    }
    return Splits(train, validation, generated.test, provenance, generated.metrics_split)


def find_mnist(path: str | None) -> MnistSource:
    """Read MNIST from a folder of IDX files or an npz file; with no path, try Keras' download."""
    if path is None:
        return _download()
    location = Path(path)
    if location.is_dir():
        return _from_folder(location)
    if location.is_file():
        sets = read_mnist_npz(location)
        return MnistSource(sets["train"], sets["test"], "npz")
    raise DataUnavailable(f"MNIST data {path!r}: no such file or folder; {NO_DATA_HINT}.")


def _from_folder(folder: Path) -> MnistSource:
    sets = find_idx_sets(folder)
    if "train" in sets and "t10k" in sets:
        return MnistSource(read_idx_set(*sets["train"]), read_idx_set(*sets["t10k"]), "idx")
    if len(sets) == 1:
        return MnistSource(read_idx_set(*next(iter(sets.values()))), None, "idx")
    if not sets:
        raise DataUnavailable(f"{folder} holds no MNIST IDX image + label files; {NO_DATA_HINT}.")
    raise DataUnavailable(
        f"{folder} holds several IDX sets ({', '.join(sorted(sets))}) but not the official train + t10k "
        "pair; point --data at a folder with one set."
    )


def _download() -> MnistSource:
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as exc:  # offline: Keras surfaces URL, socket and SSL errors of many types
        raise DataUnavailable(f"No MNIST data found and Keras' download failed; {NO_DATA_HINT}.") from exc
    train = LabelledSet(x_train, y_train.astype(np.int64), ())
    return MnistSource(train, LabelledSet(x_test, y_test.astype(np.int64), ()), "keras-download")


def split_mnist(source: MnistSource, *, test_size: int, seed: int, validation_split: float | None) -> Splits:
    """Shuffle with ``seed``; hold out ``test_size`` images unless the source has its own test set."""
    if source.test is not None:
        order, test = np.random.default_rng(seed).permutation(len(source.train.labels)), source.test
        note = "The source's own test set, never used for training."
    else:
        order, held = holdout_indices(len(source.train.labels), test_size, seed)
        test = LabelledSet(source.train.images[held], source.train.labels[held], source.train.files)
        note = f"{test_size} images held out of the {len(order) + test_size} by a shuffle seeded with {seed}."
    train, validation = split_validation(
        _pixels(source.train.images[order]), source.train.labels[order], validation_split
    )
    provenance = {**source.describe(), "test_from": note}
    return Splits(train, validation, (_pixels(test.images), test.labels), provenance)


def holdout_indices(count: int, test_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded permutation of ``range(count)`` cut into (training indices, held-out indices)."""
    if not 0 < test_size < count:
        raise ConfigError(f"data.params.test_size must be between 1 and {count - 1}, got {test_size}.")
    return heldout_split(count, test_size, seed)  # one definition: the service rebuilds it from cards


def split_validation(x: np.ndarray, y: np.ndarray, fraction: float | None) -> tuple[Arrays, Arrays | None]:
    """Keep the tail ``fraction`` of (already shuffled) data for validation, as Keras would."""
    if fraction is None:
        return (x, y), None
    count = min(max(1, round(len(x) * fraction)), len(x) - 1)
    if count < 1:
        raise ConfigError(f"A validation split of {fraction} needs more than {len(x)} training points.")
    return (x[:-count], y[:-count]), (x[-count:], y[-count:])


def _pixels(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / np.float32(255.0)
