"""Data at s3:// URLs, read from a local S3-compatible server (moto's) that the test starts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.datafiles import sha256_file, write_idx
from service.evaluation.batch.scoring import OfflineScorer
from tests.evaluation.batch.conftest import DIGITS, IMAGES
from tests.server import free_port

moto_server = pytest.importorskip(
    "moto.server", reason="moto[server] is not installed (pip install 'moto[server]')"
)
boto3 = pytest.importorskip("boto3", reason="boto3 is not installed (it comes with moto)")
pytest.importorskip("s3fs", reason="s3fs is not installed (pip install s3fs)")

Run = Callable[..., tuple[int, str, str]]
BUCKET = "evaluation-data"


@pytest.fixture(scope="module")
def s3() -> Iterator[tuple[str, Any]]:
    """(endpoint URL, boto3 client) of a moto S3 server on 127.0.0.1 with an empty bucket."""
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            env.setenv(name, value)
        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client
    server.stop()


def metrics(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "metrics.json").read_text())


def test_idx_and_csv_from_s3_score_as_the_local_files_do(
    run_cli: Run, s3: tuple[str, Any], digits_idx: Path, tiny_template: Path, tmp_path: Path
) -> None:
    endpoint, client = s3
    write_idx(tmp_path / "t10k-images-idx3-ubyte", IMAGES)  # raw IDX: read by range requests
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", DIGITS)
    csv = tmp_path / "digits.csv"
    flat = IMAGES.reshape(len(IMAGES), -1)
    header = ",".join(f"p{i}" for i in range(784)) + ",label"
    csv.write_text(
        header
        + "\n"
        + "\n".join(
            ",".join(map(str, r)) + f",{d}" for r, d in zip(flat.tolist(), DIGITS.tolist(), strict=True)
        )
        + "\n"
    )
    for path in (tmp_path / "t10k-images-idx3-ubyte", tmp_path / "t10k-labels-idx1-ubyte.gz"):
        client.upload_file(str(path), BUCKET, f"mnist/{path.name}")
    client.upload_file(str(csv), BUCKET, "tables/digits.csv")
    common = ["--model", "digits", "--offline", "--model-repository", tiny_template, "--chunk-size", 64]
    remote = ["--storage-option", f"endpoint_url={endpoint}"]
    runs = {
        "idx-local": ["--data", tmp_path, "--raw-pixels"],
        "idx-s3": ["--data", f"s3://{BUCKET}/mnist/", "--raw-pixels", *remote],
        "csv-s3": ["--data", f"s3://{BUCKET}/tables/digits.csv", *remote],
    }
    for name, args in runs.items():
        code, _, err = run_cli(*common, *args, "--offset", 5, "--output", tmp_path / name)
        assert code == 0, err
    local, idx, table = (metrics(tmp_path / name) for name in runs)
    assert idx["metrics"] == local["metrics"] == table["metrics"] and idx["sample_count"] == 295
    images = idx["data"]["files"][0]
    assert images["path"] == f"s3://{BUCKET}/mnist/t10k-images-idx3-ubyte" and "sha256" not in images
    assert images["size"] == (tmp_path / "t10k-images-idx3-ubyte").stat().st_size and images["etag"]
    assert table["data"]["files"] == [
        {
            "path": f"s3://{BUCKET}/tables/digits.csv",
            "sha256": sha256_file(csv),
            "size": csv.stat().st_size,
            "etag": table["data"]["files"][0]["etag"],
        }
    ]


def test_a_rewritten_object_is_not_resumed(
    run_cli: Run, s3: tuple[str, Any], tiny_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Parquet object's size and ETag identify it: rewritten, its checkpoint no longer applies."""
    endpoint, client = s3
    rows = np.random.default_rng(1).random((40, 2))
    table = pa.table({"a": rows[:, 0], "b": rows[:, 1], "label": (rows.sum(axis=1) > 1).astype(np.int64)})
    pq.write_table(table, tmp_path / "pairs.parquet", row_group_size=16)
    client.upload_file(str(tmp_path / "pairs.parquet"), BUCKET, "pairs.parquet")
    command = ["--model", "binary", "--data", f"s3://{BUCKET}/pairs.parquet"]
    command += [
        "--storage-option",
        f"endpoint_url={endpoint}",
        "--offline",
        "--model-repository",
        tiny_template,
    ]
    command += ["--chunk-size", 8, "--concurrency", 1, "--output", tmp_path / "out"]
    real = OfflineScorer.score
    calls = iter(range(100))

    def interrupted(self: OfflineScorer, inputs: dict[str, np.ndarray]) -> Any:
        if next(calls) == 2:
            raise KeyboardInterrupt
        return real(self, inputs)

    monkeypatch.setattr(OfflineScorer, "score", interrupted)
    assert run_cli(*command)[0] == 130
    monkeypatch.setattr(OfflineScorer, "score", real)
    pq.write_table(table.slice(0, 30), tmp_path / "pairs.parquet", row_group_size=16)
    client.upload_file(str(tmp_path / "pairs.parquet"), BUCKET, "pairs.parquet")
    code, _, err = run_cli(*command, "--resume")
    assert code == 2 and "Cannot resume" in err and "differs in files" in err
    code, _, err = run_cli(*command)  # not --resume: starts over on the new object
    assert code == 0 and "resuming" not in err
    assert metrics(tmp_path / "out")["sample_count"] == 30
