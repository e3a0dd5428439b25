"""The job's data readers: IDX folders, Keras npz, CSV and JSONL, cut by offset and limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.datafiles import sha256_file
from service.errors import JobError
from service.evaluation.batch.sources import detect_format, open_source
from service.models.card import TensorSpec
from tests.evaluation.batch.conftest import DIGITS, IMAGES

IMAGE_SPEC = [TensorSpec("images", "float32", (-1, 28, 28))]
PAIR = [TensorSpec("features", "float32", (-1, 2))]


def test_idx_folder_pixels_scaled_as_in_training(digits_idx: Path) -> None:
    source = open_source(digits_idx, offset=10, limit=5)
    assert (source.kind, source.name, source.count) == ("idx", "t10k", 5)
    assert [Path(p).name for p, _ in source.files] == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    assert source.files[0][1] == sha256_file(digits_idx / "t10k-images-idx3-ubyte.gz")
    batch = source.batch(1, 3, IMAGE_SPEC)
    assert batch.rows.tolist() == [11, 12] and batch.labels == DIGITS[11:13].tolist()
    expected = IMAGES[11:13].astype(np.float32) / np.float32(255.0)  # training/data.py's _pixels
    assert np.array_equal(batch.inputs["images"], expected)
    raw = open_source(digits_idx, raw_pixels=True).batch(0, 1, IMAGE_SPEC)
    assert raw.inputs["images"].max() == IMAGES[0].max()


def test_idx_rows_reshape_to_a_flat_input(digits_idx: Path) -> None:
    flat = [TensorSpec("pixels", "float32", (-1, 784))]
    assert open_source(digits_idx).batch(0, 2, flat).inputs["pixels"].shape == (2, 784)
    with pytest.raises(JobError, match="takes"):
        open_source(digits_idx).batch(0, 2, PAIR)


def test_idx_split_choice(digits_idx: Path, tmp_path: Path) -> None:
    with pytest.raises(JobError, match="no set 'train'"):
        open_source(digits_idx, split="train")
    with pytest.raises(JobError, match="no IDX image/label pair"):
        open_source(tmp_path)


def test_npz_test_split(tmp_path: Path) -> None:
    path = tmp_path / "mnist.npz"
    np.savez(path, x_train=IMAGES[:5], y_train=DIGITS[:5], x_test=IMAGES[5:9], y_test=DIGITS[5:9])
    source = open_source(path)
    assert (source.kind, source.name, source.count) == ("npz", "mnist-test", 4)
    assert source.batch(0, 4, IMAGE_SPEC).labels == DIGITS[5:9].tolist()
    assert open_source(path, split="train").count == 5
    np.savez(path, x_train=IMAGES[:5])
    with pytest.raises(JobError, match="lacks"):
        open_source(path)


def test_csv_features_and_label_column(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("a,target,b\n0.5,1,0.25\n1,0,\n2,positive,3\n")
    source = open_source(path, label_column="target")
    batch = source.batch(0, 3, PAIR)
    assert batch.labels == [1, 0, "positive"]
    assert np.array_equal(batch.inputs["features"][0], np.array([0.5, 0.25], np.float32))
    assert np.isnan(batch.inputs["features"][1, 1])  # missing: the scorer refuses that row
    with pytest.raises(JobError, match="no column 'label'"):
        open_source(path)
    path.write_text("a,label\n1,2,3\n")
    with pytest.raises(JobError, match="data row 0 has 3 fields"):
        open_source(path)


def test_jsonl_rows_and_their_errors(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(
        '{"instance": [1, 2], "label": 1}\n\n'
        '{"instance": [1, 2, 3], "label": 0}\n'
        "not json\n"
        '{"instance": {"features": [3, 4]}, "label": "x"}\n'
    )
    source = open_source(path, offset=0)
    assert source.count == 4
    batch = source.batch(0, 4, PAIR)
    assert batch.rows.tolist() == [0, 3] and batch.labels == [1, "x"]
    assert np.array_equal(batch.inputs["features"], np.array([[1, 2], [3, 4]], np.float32))
    assert [row for row, _ in batch.errors] == [1, 2]
    assert "must have shape" in batch.errors[0][1] and "not valid JSON" in batch.errors[1][1]
    assert open_source(path, offset=2, limit=1).batch(0, 1, PAIR).errors[0][0] == 2


def test_format_detection_and_missing_files(tmp_path: Path) -> None:
    assert [detect_format(Path(n)) for n in ("a.npz", "b.CSV", "c.jsonl", "d.ndjson")] == [
        "npz",
        "csv",
        "jsonl",
        "jsonl",
    ]
    with pytest.raises(JobError, match="--format"):
        detect_format(Path("data.parquet"))
    with pytest.raises(JobError, match="does not exist"):
        open_source(tmp_path / "nothing.csv")
