"""``evaluate-model`` end to end (service in-process): offline == HTTP, reports, compare, gates, exits."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from service.datafiles import sha256_file
from tests.evaluation.batch.conftest import APP_URL, DIGITS, AppAdapter
from tests.server import free_port

Run = Callable[..., tuple[int, str, str]]


def report(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def errors(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "errors.jsonl").read_text().splitlines()]


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_digits_offline_and_over_http_give_identical_figures(
    run_cli: Run, served: AppAdapter, digits_idx: Path, tiny_template: Path, tmp_path: Path
) -> None:
    common = (
        "--model",
        "digits",
        "--data",
        digits_idx,
        "--chunk-size",
        64,
        "--metrics",
        "accuracy,roc_auc,log_loss,per_class,confusion_matrix",
    )
    code, out, err = run_cli(
        *common, "--offline", "--model-repository", tiny_template, "--output", tmp_path / "offline"
    )
    assert code == 0, err
    code, out, err = run_cli(*common, "--server", APP_URL, "--output", tmp_path / "http", "--concurrency", 3)
    assert code == 0, err
    offline, online = report(tmp_path / "offline"), report(tmp_path / "http")
    assert online["metrics"] == offline["metrics"]
    assert online["sample_count"] == offline["sample_count"] == len(DIGITS) and online["error_count"] == 0
    assert sum(map(sum, online["metrics"]["confusion_matrix"])) == len(DIGITS)
    assert online["scored_with"] == APP_URL and offline["scored_with"].endswith("digits/1")
    assert online["data"]["files"][1]["sha256"] == sha256_file(digits_idx / "t10k-labels-idx1-ubyte.gz")
    assert "digits v1 on t10k: 300 scored, 0 errors; accuracy=" in out
    for name in ("summary.md", "errors.jsonl", "confusion_matrix.png", "roc_curves.png"):
        assert (tmp_path / "http" / name).is_file()
    assert_png(tmp_path / "http" / "confusion_matrix.png")
    assert_png(tmp_path / "http" / "roc_curves.png")
    summary = (tmp_path / "http" / "summary.md").read_text()
    assert "# Evaluation of digits version 1" in summary and "| 9 |" in summary
    assert "![confusion matrix](confusion_matrix.png)" in summary
    assert not (tmp_path / "http" / ".state").exists()  # finished: no checkpoint left


def test_bad_rows_are_listed_the_same_way_offline_and_over_http(
    run_cli: Run, served: AppAdapter, tiny_template: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(8)
    rows = ["a,b,label", *(f"{a:.3f},{b:.3f},{int(a + b > 1)}" for a, b in rng.random((120, 2)))]
    rows[5], rows[77], rows[90] = (
        "0.5,,1",
        "0.1,0.2,2",
        "0.3,0.9,positive",
    )  # missing value; label out of range
    data = tmp_path / "pairs.csv"
    data.write_text("\n".join(rows) + "\n")
    # Concurrent requests get merged into batches of other sizes than the job's chunks; this tiny
    # model's sigmoid rounds by batch size unless calls are padded (service.models.loading calibrates that),
    # so equality here also checks that offline and online pad alike.
    common = ("--model", "binary", "--data", data, "--chunk-size", 32, "--threshold", 0.4, "--concurrency", 3)
    assert (
        run_cli(*common, "--offline", "--model-repository", tiny_template, "--output", tmp_path / "off")[0]
        == 0
    )
    assert run_cli(*common, "--server", APP_URL, "--output", tmp_path / "on")[0] == 0
    offline, online = report(tmp_path / "off"), report(tmp_path / "on")
    assert online["metrics"] == offline["metrics"] and online["metrics"]["threshold"] == 0.4
    assert online["sample_count"] == 118 and online["error_count"] == 2
    listed = errors(tmp_path / "on")
    assert [e["row"] for e in listed] == [4, 76] == [e["row"] for e in errors(tmp_path / "off")]
    assert "finite" in listed[0]["reason"] and "outside the classes 0..1" in listed[1]["reason"]
    assert (tmp_path / "on" / "summary.md").read_text().count("| positive |") == 1


def test_regressor_report_with_a_comparison(run_cli: Run, tiny_template: Path, tmp_path: Path) -> None:
    data = tmp_path / "line.jsonl"
    xs = np.linspace(-2, 2, 50)
    lines = [json.dumps({"instance": float(x), "label": 0.5 * x + 2.8}) for x in xs]
    lines[10] = '{"instance": "ten", "label": 1}'
    data.write_text("\n".join(lines) + "\n")
    code, _, err = run_cli(
        "--model", "regressor", "--data", data, "--offline", "--model-repository", tiny_template,
        "--version", 2, "--compare-version", 1, "--output", tmp_path / "r", "--max-mse", 1.0,
    )  # fmt: skip
    assert code == 0, err
    doc = report(tmp_path / "r")
    assert doc["version"] == "2" and doc["task"] == "regression" and doc["error_count"] == 1
    other = report(tmp_path / "r" / "version-1")
    assert doc["comparison"]["version"] == "1" and doc["comparison"]["report"] == "version-1/"
    for metric in ("mse", "r2", "mae"):
        assert doc["comparison"]["deltas"][metric] == pytest.approx(
            doc["metrics"][metric] - other["metrics"][metric], abs=1e-12
        )
    assert doc["metrics"]["mse"] == pytest.approx(
        0.04, abs=1e-6
    )  # v2 predicts 0.5x + 3, the labels 0.5x + 2.8
    assert "## Compared with version 1" in (tmp_path / "r" / "summary.md").read_text()
    for name in ("predicted_vs_true.png", "residuals.png"):
        assert_png(tmp_path / "r" / name)
        assert_png(tmp_path / "r" / "version-1" / name)
    assert errors(tmp_path / "r")[0]["row"] == 10


@pytest.mark.parametrize(
    ("gate", "code", "message"),
    [
        (("--min-accuracy", 0.99), 3, "gate failed: accuracy"),
        (("--min-auc", 0.01), 0, ""),
        (("--min-auc", 0.99), 3, "gate failed: roc_auc"),
        (("--max-mse", 1), 2, "error: --max-mse does not apply to a classification model"),
    ],
)
def test_quality_gates(
    run_cli: Run,
    digits_idx: Path,
    tiny_template: Path,
    tmp_path: Path,
    gate: tuple[str, float],
    code: int,
    message: str,
) -> None:
    result = run_cli(
        "--model", "digits", "--data", digits_idx, "--limit", 100, "--offline",
        "--model-repository", tiny_template, "--output", tmp_path, *gate,
    )  # fmt: skip
    assert result[0] == code
    assert result[2].strip().startswith(message) and len(result[2].strip().splitlines()) <= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--data", "missing.csv", "--offline"), "error: Data path missing.csv does not exist."),
        (("--offline", "--version", 9), "has no version 9"),
        (("--offline", "--compare-version", 1), "--compare-version 1 is the version being evaluated"),
        (("--offline", "--chunk-size", 0), "--chunk-size must be positive"),
        (("--offline", "--metrics", "mse"), "do not apply to a classification model"),
        (("--offline", "--offset", 300), "has no rows to evaluate"),
        (
            ("--server", "http://127.0.0.1:{port}", "--retries", 1),
            "failed after 1 retries; last: ConnectionError",
        ),
    ],
)
def test_failures_exit_2_with_one_line(
    run_cli: Run,
    digits_idx: Path,
    tiny_template: Path,
    tmp_path: Path,
    args: tuple[object, ...],
    message: str,
) -> None:
    args = tuple(str(a).format(port=free_port()) for a in args)
    defaults = ("--model", "digits", "--model-repository", tiny_template, "--output", tmp_path)
    data = () if "--data" in args else ("--data", digits_idx)
    code, _, err = run_cli(*defaults, *data, *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_version_gone_mid_job_fails_clearly(
    run_cli: Run, served: AppAdapter, digits_idx: Path, tmp_path: Path
) -> None:
    registry = served.app.registry
    real = registry.acquire
    calls = {"n": 0}

    def acquire(name: str, version: int | None = None, label: str | None = None):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] > 5:  # metadata twice, the classify probe, two chunks... then the version is gone
            from service.errors import NotFound

            raise NotFound(f"Model {name!r} has no version {version}.")
        return real(name, version, label)

    registry.acquire = acquire
    try:
        code, _, err = run_cli(
            "--model",
            "digits",
            "--data",
            digits_idx,
            "--server",
            APP_URL,
            "--chunk-size",
            50,
            "--concurrency",
            1,
            "--output",
            tmp_path,
        )
    finally:
        del registry.acquire
    assert code == 2 and "no longer serves model 'digits' version 1" in err
    assert len(list((tmp_path / ".state" / "digits-v1" / "chunks").glob("*.npz"))) == 2  # kept for a resume


def test_every_format_of_the_same_digits_gives_the_same_figures(
    run_cli: Run, served: AppAdapter, digits_idx: Path, tmp_path: Path
) -> None:
    """IDX (pixels / 255 by default), and CSV and Parquet of the raw pixels with --scale 255."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.evaluation.batch.conftest import IMAGES

    flat = IMAGES.reshape(len(IMAGES), -1)
    columns = [f"p{i}" for i in range(784)]
    csv = tmp_path / "digits.csv"
    lines = (",".join(map(str, row)) + f",{d}" for row, d in zip(flat.tolist(), DIGITS.tolist(), strict=True))
    csv.write_text(",".join(columns) + ",label\n" + "\n".join(lines) + "\n")
    parquet = tmp_path / "digits.parquet"
    pq.write_table(
        pa.table({**dict(zip(columns, flat.T, strict=True)), "label": DIGITS}), parquet, row_group_size=70
    )
    common = (
        "--model",
        "digits",
        "--server",
        APP_URL,
        "--chunk-size",
        40,
        "--metrics",
        "accuracy,log_loss,roc_auc",
    )
    for name, data in (
        ("idx", (digits_idx,)),
        ("csv", (csv, "--scale", 255)),
        ("pq", (parquet, "--scale", 255)),
    ):
        code, _, err = run_cli(*common, "--data", *data, "--output", tmp_path / name)
        assert code == 0, err
    idx, table, columnar = (report(tmp_path / name) for name in ("idx", "csv", "pq"))
    assert idx["metrics"] == table["metrics"] == columnar["metrics"]
    assert idx["sample_count"] == table["sample_count"] == columnar["sample_count"] == len(DIGITS)
    assert (table["data"]["format"], columnar["data"]["format"]) == ("csv", "parquet")
