"""service.evaluation.history: append-only JSONL per model, concurrent appends, torn lines, filters, restarts."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from service.evaluation.history import History


def record(i: int, version: str = "1", dataset: str = "holdout") -> dict[str, object]:
    return {"model": "m", "version": version, "dataset": dataset, "sample_count": i, "metrics": {"r2": 0.5}}


def test_append_and_read_newest_first(tmp_path: Path) -> None:
    history = History(tmp_path / "evaluations")
    assert history.read("m") == [] and not history.exists("m")
    for i in range(3):
        history.append("m", record(i))
    assert [r["sample_count"] for r in history.read("m")] == [2, 1, 0]
    assert (tmp_path / "evaluations" / "m.jsonl").read_text().count("\n") == 3


def test_filters_and_limit(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.append("m", record(0, "1", "a"))
    history.append("m", record(1, "2", "a"))
    history.append("m", record(2, "2", "b"))
    assert [r["sample_count"] for r in history.read("m", version="2")] == [2, 1]
    assert [r["sample_count"] for r in history.read("m", dataset="a")] == [1, 0]
    assert [r["sample_count"] for r in history.read("m", limit=1)] == [2]


def test_a_torn_last_line_is_skipped_and_does_not_swallow_the_next(tmp_path: Path) -> None:
    history = History(tmp_path)
    history.append("m", record(0))
    with open(history.path("m"), "ab") as fh:
        fh.write(b'{"model": "m", "version": "1", "samp')  # a crash mid-write
    assert [r["sample_count"] for r in history.read("m")] == [0]
    history.append("m", record(1))
    assert [r["sample_count"] for r in history.read("m")] == [1, 0]


def test_survives_a_new_instance(tmp_path: Path) -> None:
    History(tmp_path).append("m", record(7))
    assert History(tmp_path).read("m")[0]["sample_count"] == 7


def _append_many(root: str, worker: int) -> None:
    history = History(Path(root))
    for i in range(50):
        history.append("m", {**record(i), "worker": worker, "padding": "x" * 5000})


def test_concurrent_appends_from_processes_never_interleave(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")  # no fork of a process with threads
    workers = [context.Process(target=_append_many, args=(str(tmp_path), w)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(30)
    records = History(tmp_path).read("m")
    assert len(records) == 200
    assert sorted((r["worker"], r["sample_count"]) for r in records) == [
        (w, i) for w in range(4) for i in range(50)
    ]


def test_a_file_past_its_size_is_rotated_keeping_the_newest(tmp_path: Path) -> None:
    history = History(tmp_path, max_bytes=2_000)
    for i in range(100):
        history.append("m", {**record(i), "padding": "x" * 100})  # ~190 bytes a record
    current, rotated = history.path("m"), history.rotated_path("m")
    assert rotated.is_file() and current.stat().st_size <= 2_000 + 200
    kept = [r["sample_count"] for r in history.read("m")]
    assert kept == list(range(99, 99 - len(kept), -1))  # the newest, in order, nothing missing
    assert 10 <= len(kept) <= 22  # between one and two files' worth
    assert history.read("m", limit=3) == history.read("m")[:3]


def test_reading_the_newest_records_reads_only_the_end_of_the_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import io

    from service.evaluation import history as module

    history = History(tmp_path)
    for i in range(1_200):
        history.append("m", {**record(i), "padding": "y" * 1_000})
    size = history.path("m").stat().st_size
    read_bytes = []

    class Counting(io.FileIO):
        def read(self, n: int = -1) -> bytes:  # type: ignore[override]
            data = super().read(n)
            read_bytes.append(len(data))
            return data

    monkeypatch.setattr(module, "open", lambda path, mode: Counting(path, "r"), raising=False)
    assert [r["sample_count"] for r in history.read("m", limit=5)] == [1199, 1198, 1197, 1196, 1195]
    assert sum(read_bytes) <= module.BLOCK < size / 10
    assert [r["sample_count"] for r in history.read("m", dataset="holdout", limit=2)] == [1199, 1198]
