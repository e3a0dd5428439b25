"""The job's data readers: IDX, Keras npz, CSV, JSONL and Parquet, cut by offset, limit and shard."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.datafiles import sha256_file, write_idx
from service.errors import JobError
from service.evaluation.batch.locations import Location
from service.evaluation.batch.sources import Source, detect_format, open_source
from service.models.card import TensorSpec
from tests.evaluation.batch.conftest import DIGITS, IMAGES

IMAGE_SPEC = [TensorSpec("images", "float32", (-1, 28, 28))]
PAIR = [TensorSpec("features", "float32", (-1, 2))]


def read_all(source: Source, specs: list[TensorSpec], size: int) -> list:
    """Every chunk of ``size`` rows, read in one pass as the job reads them."""
    spans = [range(i, min(source.count, i + size)) for i in range(0, source.count, size)]
    return [source.decode(rows, raw, specs) for rows, raw in source.chunks(spans)]


def test_idx_folder_pixels_scaled_as_in_training(digits_idx: Path) -> None:
    source = open_source(digits_idx, offset=10, limit=5)
    assert (source.kind, source.name, source.count) == ("idx", "t10k", 5)
    assert [Path(f.path).name for f in source.files] == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    assert source.files[0].sha256 == sha256_file(digits_idx / "t10k-images-idx3-ubyte.gz")
    batch = source.batch(1, 3, IMAGE_SPEC)
    assert batch.rows.tolist() == [11, 12] and batch.labels.tolist() == DIGITS[11:13].tolist()
    expected = IMAGES[11:13].astype(np.float32) / np.float32(255.0)  # training/data.py's _pixels
    assert np.array_equal(batch.inputs["images"], expected)
    raw = open_source(digits_idx, raw_pixels=True).batch(0, 1, IMAGE_SPEC)
    assert raw.inputs["images"].max() == IMAGES[0].max()


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_streams_any_range_raw_or_gzip(tmp_path: Path, suffix: str) -> None:
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", IMAGES)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", DIGITS)
    source = open_source(tmp_path)
    batches = read_all(source.cut(37, 290), IMAGE_SPEC, 64)
    assert np.concatenate([b.rows for b in batches]).tolist() == list(range(37, 290))
    images = np.concatenate([b.inputs["images"] for b in batches])
    assert np.array_equal(images, IMAGES[37:290] / np.float32(255.0))
    assert np.concatenate([b.labels for b in batches]).tolist() == DIGITS[37:290].tolist()


def test_truncated_idx_is_refused_before_scoring(tmp_path: Path) -> None:
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", DIGITS)
    images = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(images, IMAGES)
    images.write_bytes(images.read_bytes()[:-100])
    with pytest.raises(JobError, match="truncated or corrupt"):
        open_source(tmp_path)
    write_idx(images.with_suffix(".gz"), IMAGES)
    images.unlink()
    zipped = images.with_suffix(".gz")
    zipped.rename(tmp_path / "t10k-images-idx3-ubyte.gz")
    cut = (tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes()[:-2000]
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(cut)
    with pytest.raises(JobError, match="truncated or corrupt"):
        open_source(tmp_path)


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
    assert source.batch(0, 4, IMAGE_SPEC).labels.tolist() == DIGITS[5:9].tolist()
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
    assert source.files[0].sha256 == sha256_file(path)
    with pytest.raises(JobError, match="no column 'label'"):
        open_source(path)


def test_csv_rows_with_the_wrong_field_count_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("a,b,label\n1,2,0\n1,2,3,1\n3,4,1\n5\n")
    batch = open_source(path).batch(0, 4, PAIR)
    assert batch.rows.tolist() == [0, 2] and batch.labels == [0, 1]
    assert batch.errors == [
        (1, "Row 1 has 4 fields; the header has 3."),
        (3, "Row 3 has 1 fields; the header has 3."),
    ]


def test_csv_columnar_and_row_by_row_parsing_agree(tmp_path: Path) -> None:
    """Chunks pyarrow parses and chunks Python parses (one odd cell) give the same values, bit for bit."""
    rng = np.random.default_rng(3)
    values = rng.normal(0, 1e3, (200, 2))
    lines = [f"{a!r},{b!r},{int(a > b)}" for a, b in values.tolist()]
    lines[150] = f"{values[150, 0].item()!r},oops,1"
    path = tmp_path / "numbers.csv"
    path.write_text("x,y,label\n" + "\n".join(lines) + "\n")
    features = np.concatenate([b.inputs["features"] for b in read_all(open_source(path), PAIR, 100)])
    assert np.array_equal(features[:150], values[:150].astype(np.float32))
    assert np.array_equal(features[151:], values[151:].astype(np.float32))
    assert np.isnan(features[150, 1]) and features[150, 0] == np.float32(values[150, 0])


def test_text_rows_skip_blank_lines_crlf_and_a_missing_last_newline(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    body = ["a,b,label", "", "0,1,0", "  ", "2,3,1", "\t", "", "4,5,0", "6,7,1"]
    path.write_bytes("\r\n".join(body).encode())  # no newline after the last row
    source = open_source(path)
    assert source.count == 4
    for size in (1, 2, 3, 4):
        batches = read_all(source, PAIR, size)
        assert np.concatenate([b.rows for b in batches]).tolist() == [0, 1, 2, 3]
        firsts = np.concatenate([b.inputs["features"][:, 0] for b in batches])
        assert firsts.tolist() == [0, 2, 4, 6]
    assert open_source(path, offset=3).batch(0, 1, PAIR).inputs["features"].tolist() == [[6, 7]]


def test_text_rows_are_found_past_many_index_marks(tmp_path: Path) -> None:
    """Rows reached by seeking (resume, shards) match rows reached by reading from the start."""
    path = tmp_path / "rows.csv"
    lines = ["a,b,label"] + [("\n" if i % 7 == 0 else "") + f"{i},{i + 1},{i % 2}" for i in range(1000)]
    path.write_text("\n".join(lines) + "\n")
    source = open_source(path)
    assert source.count == 1000
    for start in (0, 1, 63, 64, 65, 500, 999):
        batch = source.batch(start, min(1000, start + 3), PAIR)
        assert batch.inputs["features"][:, 0].tolist() == list(range(start, min(1000, start + 3)))


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


@pytest.mark.parametrize("layout", ["columns", "list"])
def test_parquet_columns_or_one_list_column(tmp_path: Path, layout: str) -> None:
    flat = IMAGES.reshape(len(IMAGES), -1)
    if layout == "columns":
        table = pa.table({**{f"p{i}": flat[:, i] for i in range(784)}, "label": DIGITS})
    else:
        table = pa.table({"image": pa.array(list(flat), pa.list_(pa.uint8())), "label": DIGITS})
    path = tmp_path / "digits.parquet"
    pq.write_table(table, path, row_group_size=50)  # ranges cross row groups
    source = open_source(path)
    assert (source.kind, source.count) == ("parquet", len(IMAGES))
    flat_spec = [TensorSpec("pixels", "float32", (-1, 784))]
    part = source.cut(120, 245)
    batches = read_all(part, flat_spec, 40)
    assert np.concatenate([b.rows for b in batches]).tolist() == list(range(120, 245))
    assert np.array_equal(
        np.concatenate([b.inputs["pixels"] for b in batches]), flat[120:245].astype(np.float32)
    )
    assert np.concatenate([b.labels for b in batches]).tolist() == DIGITS[120:245].tolist()
    later = part.cut(100, 125)  # a range in a later row group than the cursor: read from there
    spans = [range(0, 5), range(20, 25)]
    got = [part.decode(rows, raw, flat_spec).rows.tolist() for rows, raw in later.chunks(spans)]
    assert got == [list(range(220, 225)), list(range(240, 245))]


def test_parquet_refuses_text_features(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"name": ["a", "b"], "label": [0, 1]}), path)
    with pytest.raises(JobError, match="feature columns must be numbers"):
        open_source(path)


def test_local_files_may_be_given_as_file_urls(tmp_path: Path, digits_idx: Path) -> None:
    copy = tmp_path / "idx"
    shutil.copytree(digits_idx, copy)
    source = open_source(f"file://{copy}", limit=3)
    assert source.local and source.batch(0, 3, IMAGE_SPEC).labels.tolist() == DIGITS[:3].tolist()


def test_format_detection_and_missing_files(tmp_path: Path) -> None:
    names = ("a.npz", "b.CSV", "c.jsonl", "d.ndjson", "e.parquet")
    assert [detect_format(Location(str(tmp_path / n))) for n in names] == [
        "npz",
        "csv",
        "jsonl",
        "jsonl",
        "parquet",
    ]
    with pytest.raises(JobError, match="--format"):
        detect_format(Location(str(tmp_path / "data.feather")))
    with pytest.raises(JobError, match="does not exist"):
        open_source(tmp_path / "nothing.csv")
    zipped = tmp_path / "t.jsonl.gz"
    zipped.write_bytes(gzip.compress(b'{"instance": 1, "label": 2}\n'))
    with pytest.raises(JobError, match="--format"):
        open_source(zipped)
