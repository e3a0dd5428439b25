"""Shards plus ``evaluate-model merge`` give the report one unsharded run gives, field by field."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.evaluation.batch.shards import ShardSpec
from tests.evaluation.batch.conftest import APP_URL, AppAdapter

Run = Callable[..., tuple[int, str, str]]
METRICS = "accuracy,top_k_accuracy,roc_auc,roc_auc_micro,log_loss,per_class,confusion_matrix,roc_curve"


def report(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "metrics.json").read_text())


def assert_same_report(merged: Path, whole: Path) -> None:
    mine, theirs = report(merged), report(whole)
    shards = mine.pop("shards")
    assert [s["shard"][0] for s in shards] == list(range(len(shards))) and "shards" not in theirs
    for doc in (mine, theirs):
        doc.pop("duration_seconds")
    assert mine.keys() == theirs.keys()
    for field in mine:
        assert mine[field] == theirs[field], field
    for name in ("errors.jsonl", "summary.md"):
        text = [(folder / name).read_text() for folder in (merged, whole)]
        if name == "summary.md":  # the duration line differs
            text = ["\n".join(line for line in t.splitlines() if "Duration" not in line) for t in text]
        assert text[0] == text[1], name
    assert sorted(p.name for p in merged.glob("*.png")) == sorted(p.name for p in whole.glob("*.png")) != []


@pytest.mark.parametrize("where", ["offline", "http"])
def test_shards_merged_equal_the_unsharded_run(
    run_cli: Run, served: AppAdapter, digits_idx: Path, tiny_template: Path, tmp_path: Path, where: str
) -> None:
    scoring = (
        ["--offline", "--model-repository", tiny_template] if where == "offline" else ["--server", APP_URL]
    )
    common = [
        "--model",
        "digits",
        "--data",
        digits_idx,
        "--offset",
        7,
        "--limit",
        280,
        "--metrics",
        METRICS,
        *scoring,
    ]
    assert run_cli(*common, "--chunk-size", 64, "--output", tmp_path / "whole")[0] == 0
    for i in (2, 0, 1):  # any order, any chunk size
        code, out, err = run_cli(
            *common, "--chunk-size", 10 + i, "--shard", f"{i}/3", "--output", tmp_path / f"s{i}"
        )
        assert code == 0, err
        first, stop = 7 + 280 * i // 3, 7 + 280 * (i + 1) // 3
        assert out.startswith(f"shard {i}/3: rows {first}..{stop - 1}, {stop - first} scored, 0 errors")
        assert not (tmp_path / f"s{i}" / ".state").exists()
    shards = [tmp_path / f"s{i}" for i in (1, 2, 0)]
    code, out, err = run_cli("merge", *shards, "--output", tmp_path / "all")
    assert code == 0, err
    assert out.startswith("digits v1 on t10k: 280 scored, 0 errors; accuracy=")
    assert_same_report(tmp_path / "all", tmp_path / "whole")
    merged = report(tmp_path / "all")
    assert sum(map(sum, merged["metrics"]["confusion_matrix"])) == 280
    assert [s["rows"] for s in merged["shards"]] == [[7, 100], [100, 193], [193, 287]]


def test_bad_rows_and_an_empty_shard(run_cli: Run, tiny_template: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    rows = ["a,b,label", *(f"{a:.3f},{b:.3f},{int(a + b > 1)}" for a, b in rng.random((9, 2)))]
    rows[2], rows[7] = "0.5,,1", "0.1,0.2,2"
    data = tmp_path / "pairs.csv"
    data.write_text("\n".join(rows) + "\n")
    common = ["--model", "binary", "--data", data, "--offline", "--model-repository", tiny_template]
    common += ["--threshold", 0.4, "--chunk-size", 2]
    assert run_cli(*common, "--output", tmp_path / "whole")[0] == 0
    for i in range(10):  # 9 rows in 10 shards: one is empty
        assert run_cli(*common, "--shard", f"{i}/10", "--output", tmp_path / f"s{i}")[0] == 0
    code, _, err = run_cli("merge", *(tmp_path / f"s{i}" for i in range(10)), "--output", tmp_path / "all")
    assert code == 0, err
    assert_same_report(tmp_path / "all", tmp_path / "whole")
    assert report(tmp_path / "all")["error_count"] == 2


@pytest.fixture(scope="module")
def two_shards(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory, digits_idx: Path) -> Path:
    from service.evaluation.batch import cli as evaluate

    root = tmp_path_factory.mktemp("shards")
    common = [
        "--model",
        "digits",
        "--data",
        str(digits_idx),
        "--offline",
        "--model-repository",
        str(tiny_template),
    ]
    for i in range(2):
        assert evaluate.main([*common, "--quiet", "--shard", f"{i}/2", "--output", str(root / f"s{i}")]) == 0
    assert evaluate.main([*common, "--quiet", "--shard", "1/3", "--output", str(root / "third")]) == 0
    assert (
        evaluate.main([*common, "--quiet", "--shard", "1/2", "--limit", "200", "--output", str(root / "cut")])
        == 0
    )
    return root


def edited(root: Path, tmp_path: Path, change: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of shard s1 whose shard.json ``change`` edits."""
    import shutil

    copy = tmp_path / "edited"
    shutil.copytree(root / "s1", copy)
    doc = json.loads((copy / "shard.json").read_text())
    change(doc)
    (copy / "shard.json").write_text(json.dumps(doc))
    return copy


@pytest.mark.parametrize(
    ("shards", "message"),
    [
        (["s0"], "Shard(s) 1/2 are missing; merge needs all 2."),
        (["s0", "s1", "s1"], "Shard 1/2 is given twice"),
        (["s0", "third"], "is a shard of 2, "),
        (["s0", "cut"], "parts of different evaluations (they differ in data, rows)"),
        (["s0", "nowhere"], "is not a finished shard (no shard.json)"),
    ],
)
def test_merge_refuses_what_does_not_make_one_evaluation(
    run_cli: Run, two_shards: Path, tmp_path: Path, shards: list[str], message: str
) -> None:
    code, _, err = run_cli("merge", *(two_shards / s for s in shards), "--output", tmp_path / "all")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "all").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d.update(rows=[140, 300]),
            "starts at row 140; the rows before it end at 150 (overlap or gap)",
        ),
        (lambda d: d["job"]["card"].update(version=2), "they differ in card"),
        (lambda d: d.update(sample_count=d["sample_count"] - 1), "its files disagree with shard.json"),
        (lambda d: d.update(format="other/9"), "is not a shard result of this version"),
    ],
)
def test_merge_refuses_tampered_shards(
    run_cli: Run, two_shards: Path, tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    code, _, err = run_cli(
        "merge", two_shards / "s0", edited(two_shards, tmp_path, change), "--output", tmp_path / "all"
    )
    assert code == 2 and message in err, err


def test_gates_are_checked_by_merge(run_cli: Run, two_shards: Path, tmp_path: Path) -> None:
    shards = [two_shards / "s0", two_shards / "s1"]
    code, _, err = run_cli("merge", *shards, "--output", tmp_path / "a", "--min-accuracy", 0.99)
    assert code == 3 and err.startswith("gate failed: accuracy")
    code, _, err = run_cli("merge", *shards, "--output", tmp_path / "b", "--max-mse", 1)
    assert code == 2 and "--max-mse does not apply to a classification model" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--shard", "2/2"), "--shard takes i/n with 0 <= i < n"),
        (("--shard", "one/2"), "--shard takes i/n"),
        (("--shard", "0/2", "--compare-version", 1), "--compare-version does not combine with --shard"),
        (("--shard", "0/2", "--min-accuracy", 0.5), "give them to `evaluate-model merge`"),
    ],
)
def test_shard_options(
    run_cli: Run, digits_idx: Path, tiny_template: Path, tmp_path: Path, args: tuple[Any, ...], message: str
) -> None:
    common = ("--model", "digits", "--data", digits_idx, "--offline", "--model-repository", tiny_template)
    code, _, err = run_cli(*common, *args, "--output", tmp_path)
    assert code == 2 and message in err


def test_shard_ranges_tile_the_rows() -> None:
    for total in (0, 1, 7, 280, 1001):
        for count in (1, 2, 3, 10):
            ranges = [ShardSpec(i, count).positions(total) for i in range(count)]
            assert [r for part in ranges for r in part] == list(range(total))
            assert max(map(len, ranges)) - min(map(len, ranges)) <= 1
