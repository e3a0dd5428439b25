"""training.data: MNIST source selection, the deterministic hold-out split, the no-data error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.datafiles import write_idx
from service.errors import DataFormatError
from training import data
from training.errors import ConfigError, DataUnavailable


def digits(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, 28, 28), dtype=np.uint8), (np.arange(count) % 10).astype(np.uint8)


def write_set(folder: Path, prefix: str, count: int, seed: int = 0) -> None:
    images, labels = digits(count, seed)
    write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)


def test_single_set_is_split_into_train_validation_and_held_out_test(tmp_path: Path) -> None:
    write_set(tmp_path, "mnist-9k", 300)
    splits = data.load("mnist", {"test_size": 50}, 42, 0.2, str(tmp_path))
    assert splits.sizes() == {"train": 200, "validation": 50, "test": 50}
    x, _ = splits.train
    assert x.dtype == np.float32 and x.shape[1:] == (28, 28) and x.min() >= 0 and x.max() <= 1
    assert splits.provenance["source"] == "idx"
    assert [Path(f["path"]).name for f in splits.provenance["files"]] == [
        "mnist-9k-images-idx3-ubyte.gz",
        "mnist-9k-labels-idx1-ubyte.gz",
    ]
    assert all(len(f["sha256"]) == 64 for f in splits.provenance["files"])
    assert "50 images held out" in splits.provenance["test_from"]


def test_holdout_is_deterministic_and_disjoint() -> None:
    train, test = data.holdout_indices(9000, 1500, 42)
    again_train, again_test = data.holdout_indices(9000, 1500, 42)
    np.testing.assert_array_equal(test, again_test)
    np.testing.assert_array_equal(train, again_train)
    assert len(test) == 1500 and len(train) == 7500
    assert not set(train) & set(test) and set(train) | set(test) == set(range(9000))
    assert not np.array_equal(test, data.holdout_indices(9000, 1500, 43)[1])


def test_same_seed_same_mnist_split(tmp_path: Path) -> None:
    write_set(tmp_path, "sample", 200)
    first, second = (data.load("mnist", {"test_size": 40}, 3, 0.25, str(tmp_path)) for _ in range(2))
    for a, b in [
        (first.train, second.train),
        (first.validation, second.validation),
        (first.test, second.test),
    ]:
        assert a is not None and b is not None
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_test_images_never_appear_in_training_or_validation(tmp_path: Path) -> None:
    write_set(tmp_path, "sample", 200)  # random images: every one is unique
    splits = data.load("mnist", {"test_size": 40}, 3, 0.25, str(tmp_path))
    assert splits.validation is not None
    seen = {img.tobytes() for img in np.concatenate([splits.train[0], splits.validation[0]])}
    assert not any(img.tobytes() in seen for img in splits.test[0])


def test_official_set_uses_t10k_as_the_test_set(tmp_path: Path) -> None:
    write_set(tmp_path, "train", 100, seed=1)
    write_set(tmp_path, "t10k", 30, seed=2)
    splits = data.load("mnist", {"test_size": 1500}, 0, 0.2, str(tmp_path))
    assert splits.sizes() == {"train": 80, "validation": 20, "test": 30}
    np.testing.assert_array_equal(splits.test[0], digits(30, seed=2)[0] / np.float32(255))
    assert len(splits.provenance["files"]) == 4 and "own test set" in splits.provenance["test_from"]


def test_keras_npz(tmp_path: Path) -> None:
    (x_train, y_train), (x_test, y_test) = digits(50, 1), digits(20, 2)
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    splits = data.load("mnist", {"test_size": 1500}, 0, None, str(path))
    assert splits.sizes() == {"train": 50, "validation": 0, "test": 20}
    assert splits.provenance["source"] == "npz"


def test_missing_path_names_what_to_provide(tmp_path: Path) -> None:
    with pytest.raises(
        DataUnavailable, match=r"no such file or folder; pass --data DIR_OR_NPZ .* or set MNIST_DIR"
    ):
        data.find_mnist(str(tmp_path / "absent"))


def test_folder_without_idx_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("nothing here")
    with pytest.raises(DataUnavailable, match="holds no MNIST IDX"):
        data.find_mnist(str(tmp_path))


def test_folder_with_several_unofficial_sets_is_ambiguous(tmp_path: Path) -> None:
    write_set(tmp_path, "a", 10)
    write_set(tmp_path, "b", 10)
    with pytest.raises(DataUnavailable, match="several IDX sets \\(a, b\\)"):
        data.find_mnist(str(tmp_path))


def test_corrupt_files_surface_the_format_error(tmp_path: Path) -> None:
    write_set(tmp_path, "sample", 10)
    (tmp_path / "sample-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bgarbage")
    with pytest.raises(DataFormatError, match="corrupt gzip"):
        data.find_mnist(str(tmp_path))


def test_without_a_path_keras_download_is_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    (x_train, y_train), (x_test, y_test) = digits(30, 1), digits(10, 2)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: ((x_train, y_train), (x_test, y_test)))
    source = data.find_mnist(None)
    assert source.kind == "keras-download" and source.test is not None and len(source.test.labels) == 10


def test_without_a_path_or_network_the_error_says_what_to_provide(monkeypatch: pytest.MonkeyPatch) -> None:
    import keras

    def offline() -> None:
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataUnavailable, match=r"download failed; pass --data DIR_OR_NPZ .* or set MNIST_DIR"):
        data.find_mnist(None)


@pytest.mark.parametrize(("test_size", "count"), [(0, 100), (100, 100)])
def test_holdout_size_must_leave_training_data(test_size: int, count: int) -> None:
    with pytest.raises(ConfigError, match=r"data\.params\.test_size must be between 1 and 99"):
        data.holdout_indices(count, test_size, 0)


def test_validation_split_takes_the_tail() -> None:
    x, y = np.arange(10), np.arange(10) * 2
    (train_x, _), validation = data.split_validation(x, y, 0.3)
    assert train_x.tolist() == list(range(7))
    assert (
        validation is not None
        and validation[0].tolist() == [7, 8, 9]
        and validation[1].tolist() == [14, 16, 18]
    )
    assert data.split_validation(x, y, None)[1] is None


def test_validation_split_keeps_at_least_one_point_on_each_side() -> None:
    x = np.arange(6)
    assert len(data.split_validation(x, x, 0.01)[1][0]) == 1  # type: ignore[index]
    assert len(data.split_validation(x, x, 0.99)[0][0]) == 1


def test_synthetic_provenance_records_the_generator() -> None:
    splits = data.load("noisy_line", {"n": 100, "test_size": 20}, 9, 0.25, None)
    assert splits.sizes() == {"train": 60, "validation": 20, "test": 20}
    assert splits.provenance["generator"] == "noisy_line"
    assert splits.provenance["params"]["n"] == 100 and splits.provenance["params"]["slope"] == 5.0
