"""service.datafiles: IDX round trips, corrupt files, Keras' npz, and finding IDX sets by name."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from service.datafiles import (
    encode_idx,
    find_idx_sets,
    parse_idx,
    read_idx,
    read_idx_set,
    read_mnist_npz,
    sha256_file,
    write_idx,
)
from service.errors import DataFormatError

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (5, 28, 28), dtype=np.uint8)
LABELS = np.array([0, 3, 9, 1, 7], dtype=np.uint8)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [IMAGES, LABELS, RNG.normal(size=(3, 4)).astype(np.float32), np.arange(6, dtype=np.int32).reshape(2, 3)],
    ids=["uint8-3d", "uint8-1d", "float32", "int32"],
)
def test_idx_round_trip(tmp_path: Path, array: np.ndarray, suffix: str) -> None:
    path = tmp_path / f"data.idx{suffix}"
    write_idx(path, array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    restored = read_idx(path)
    assert restored.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(restored, array)


def test_idx_header_is_the_documented_magic() -> None:
    assert encode_idx(IMAGES)[:4] == bytes([0, 0, 0x08, 3])  # 0x00000803: unsigned bytes, 3 dimensions
    assert encode_idx(LABELS)[:4] == bytes([0, 0, 0x08, 1])


def test_bad_magic_number(tmp_path: Path) -> None:
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x03" + bytes(100))
    with pytest.raises(DataFormatError, match="bad magic number 0x12340803"):
        read_idx(path)


def test_unknown_type_code_is_a_bad_magic_number() -> None:
    with pytest.raises(DataFormatError, match="bad magic"):
        parse_idx(bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]))


def test_truncated_data(tmp_path: Path) -> None:
    path = tmp_path / "short-images-idx3-ubyte"
    path.write_bytes(encode_idx(IMAGES)[:-10])
    with pytest.raises(DataFormatError, match="truncated or corrupt"):
        read_idx(path)


def test_truncated_header() -> None:
    with pytest.raises(DataFormatError, match="truncated inside its IDX header"):
        parse_idx(bytes([0, 0, 0x08, 3, 0, 0, 0, 5]))
    with pytest.raises(DataFormatError, match="too short"):
        parse_idx(b"\x00\x00")


def test_truncated_gzip(tmp_path: Path) -> None:
    path = tmp_path / "cut-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(encode_idx(IMAGES))[:200])
    with pytest.raises(DataFormatError, match="truncated or corrupt gzip"):
        read_idx(path)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="Cannot read"):
        read_idx(tmp_path / "absent")


def write_set(folder: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> None:
    suffix = ".gz" if gz else ""
    write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels)


def test_read_idx_set_pairs_images_and_labels(tmp_path: Path) -> None:
    write_set(tmp_path, "mnist-9k", IMAGES, LABELS)
    images, labels = find_idx_sets(tmp_path)["mnist-9k"]
    pair = read_idx_set(images, labels)
    np.testing.assert_array_equal(pair.images, IMAGES)
    assert pair.labels.dtype == np.int64 and pair.labels.tolist() == LABELS.tolist()
    assert pair.files == (images, labels)


@pytest.mark.parametrize(
    ("images", "labels", "message"),
    [
        (IMAGES.reshape(5, 784), LABELS, "expected N x 28 x 28"),
        (IMAGES[:, :27, :], LABELS, "expected N x 28 x 28"),
        (IMAGES, LABELS[:4], "4 labels for 5 images"),
        (IMAGES, np.array([0, 1, 2, 3, 10], np.uint8), "outside 0..9"),
    ],
    ids=["flat", "27-rows", "count", "label-range"],
)
def test_read_idx_set_rejects_wrong_dimensions(
    tmp_path: Path, images: np.ndarray, labels: np.ndarray, message: str
) -> None:
    write_set(tmp_path, "odd", images, labels)
    with pytest.raises(DataFormatError, match=message):
        read_idx_set(*find_idx_sets(tmp_path)["odd"])


def test_find_idx_sets_with_official_names(tmp_path: Path) -> None:
    write_set(tmp_path, "train", IMAGES, LABELS, gz=False)
    write_set(tmp_path, "t10k", IMAGES, LABELS)
    (tmp_path / "README.md").write_text("not data")
    sets = find_idx_sets(tmp_path)
    assert sorted(sets) == ["t10k", "train"]
    assert sets["train"][0].name == "train-images-idx3-ubyte"
    assert sets["t10k"][1].name == "t10k-labels-idx1-ubyte.gz"


def test_find_idx_sets_with_the_sample_names_and_dotted_variants(tmp_path: Path) -> None:
    write_set(tmp_path, "mnist-9k", IMAGES, LABELS)
    write_idx(tmp_path / "t10k-images.idx3-ubyte", IMAGES)
    write_idx(tmp_path / "t10k-labels.idx1-ubyte", LABELS)
    assert sorted(find_idx_sets(tmp_path)) == ["mnist-9k", "t10k"]


def test_find_idx_sets_skips_unpaired_files_and_missing_folders(tmp_path: Path) -> None:
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", IMAGES)
    assert find_idx_sets(tmp_path) == {}
    assert find_idx_sets(tmp_path / "absent") == {}


def test_read_mnist_npz(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=IMAGES, y_train=LABELS, x_test=IMAGES[:2], y_test=LABELS[:2])
    sets = read_mnist_npz(path)
    assert len(sets["train"].labels) == 5 and len(sets["test"].labels) == 2
    assert sets["test"].files == (path,)
    assert sets["train"].labels.dtype == np.int64


def test_read_mnist_npz_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=IMAGES, y_train=LABELS)
    with pytest.raises(DataFormatError, match="lacks 'x_test', 'y_test';"):
        read_mnist_npz(path)


def test_read_mnist_npz_not_an_npz(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    path.write_bytes(b"definitely not a zip archive")
    with pytest.raises(DataFormatError, match="not a readable npz"):
        read_mnist_npz(path)


def test_sha256_file(tmp_path: Path) -> None:
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    # FIPS 180-2 test vector for "abc"
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
