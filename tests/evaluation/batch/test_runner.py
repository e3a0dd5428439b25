"""The job's chunk runner: bisecting rejected chunks, label errors, checkpoints and resuming."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.errors import JobError
from service.evaluation.batch import runner
from service.evaluation.batch.checkpoint import Checkpoint
from service.evaluation.batch.formats.arrays import ArrayRows
from service.evaluation.batch.locations import FileId
from service.evaluation.batch.runner import gather, run
from service.evaluation.batch.scoring import RowsRejected
from service.evaluation.batch.sources import Source
from service.models.card import ModelCard, TensorSpec

CARD = ModelCard(
    "fake", 1, "regression", "serving_default",
    (TensorSpec("x", "float32", (-1,)),), (TensorSpec("y", "float32", (-1,)),),
)  # fmt: skip
N = 100
XS = np.arange(N, dtype=np.float64).reshape(N, 1)
BAD_ROWS = (7, 8, 61)


class FakeScorer:
    """y = 2x; refuses NaN like the service; fails for good on rows from ``fail_from`` on."""

    card = CARD
    where = "fake"

    def __init__(self, fail_from: int | None = None) -> None:
        self.calls = 0
        self.rows = 0
        self.fail_from = fail_from

    def score(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        self.calls += 1
        x = inputs["x"]
        if self.fail_from is not None and (x >= self.fail_from).any():
            raise JobError("server gone")
        if np.isnan(x).any():
            raise RowsRejected("Input 'x' must hold finite numbers.")
        self.rows += len(x)
        return 2 * x

    def close(self) -> None:
        pass


def source(bad: tuple[int, ...] = BAD_ROWS, labels: list[object] | None = None) -> Source:
    features = XS.copy()
    features[list(bad)] = np.nan
    labels = labels if labels is not None else (2 * XS[:, 0] + 1).tolist()
    rows = ArrayRows(features, labels)
    return Source("csv", "fake", "fake rows", (FileId("fake.csv", "0" * 64),), True, rows, 0, N)


def checkpoint(folder: Path, resume: bool | None = None) -> Checkpoint:
    return Checkpoint.open(folder, {"model": "fake", "version": 1, "chunk_size": 16}, resume)


def test_rejected_rows_are_bisected_out_and_every_row_is_accounted(tmp_path: Path) -> None:
    scorer = FakeScorer()
    gathered = run(source(), scorer, checkpoint(tmp_path), chunk_size=16, concurrency=3, quiet=True)
    assert [row for row, _ in gathered.errors] == list(BAD_ROWS)
    assert "finite" in gathered.errors[0][1]
    assert sorted(gathered.rows.tolist()) == sorted(set(range(N)) - set(BAD_ROWS))
    assert np.array_equal(gathered.scores, 2 * gathered.rows)
    assert np.array_equal(gathered.labels, 2 * gathered.rows + 1)
    assert scorer.rows == N - len(BAD_ROWS)
    assert scorer.calls < 5 + 2 * (1 + 16)  # clean chunks once; the two bad ones bisected, not row by row


def test_labels_that_do_not_fit_are_listed(tmp_path: Path) -> None:
    labels: list[object] = [1.0] * N
    labels[3], labels[40] = "three", None
    gathered = run(source((), labels), FakeScorer(), checkpoint(tmp_path), 16, 1, True)
    assert [(row, "not a finite number" in reason) for row, reason in gathered.errors] == [
        (3, True),
        (40, True),
    ]
    assert "on row 40" in gathered.errors[1][1]
    assert len(gathered.rows) == N - 2


def test_an_interrupted_run_resumes_without_losing_or_repeating_rows(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="server gone"):
        run(source(), FakeScorer(fail_from=32), checkpoint(tmp_path), 16, 1, True)
    state = checkpoint(tmp_path)
    assert state.resumed and state.done() == {0, 1}  # chunk 2 (rows 32-47) failed the job
    rescorer = FakeScorer()
    resumed = run(source(), rescorer, state, 16, 2, True)
    whole = run(source(), FakeScorer(), checkpoint(tmp_path / "other"), 16, 2, True)
    assert rescorer.rows == N - 32 - 1  # only the chunks not done (row 61 is bad)
    for name in ("rows", "labels", "scores"):
        assert np.array_equal(getattr(resumed, name), getattr(whole, name))
    assert resumed.errors == whole.errors


def test_checkpoint_fingerprints(tmp_path: Path) -> None:
    run(source(), FakeScorer(), checkpoint(tmp_path), 16, 1, True)
    assert checkpoint(tmp_path).done() == set(range(7))
    assert checkpoint(tmp_path, resume=False).done() == set()  # --fresh
    other = Checkpoint.open(tmp_path, {"model": "fake", "version": 2, "chunk_size": 16})
    assert not other.resumed and other.done() == set()
    with pytest.raises(JobError, match=r"another job .*differs in version"):
        checkpoint(tmp_path, resume=True)
    with pytest.raises(JobError, match="no job state"):
        checkpoint(tmp_path / "empty", resume=True)


def test_gather_refuses_an_incomplete_state(tmp_path: Path) -> None:
    state = checkpoint(tmp_path)
    run(source(), FakeScorer(), state, 16, 1, True)
    with pytest.raises(JobError, match="accounts for 100 of 101 rows"):
        gather(state, 7, N + 1)


class Watching(FakeScorer):
    """Notes how many chunks the checkpoint holds each time it is asked to score."""

    def __init__(self, state: Checkpoint, interrupt_at: int | None = None) -> None:
        super().__init__()
        self.state, self.interrupt_at, self.saved_when_called = state, interrupt_at, []

    def score(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        self.saved_when_called.append(len(self.state.done()))
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        return super().score(inputs)


def test_each_chunk_is_saved_as_soon_as_it_is_scored(tmp_path: Path) -> None:
    state = checkpoint(tmp_path)
    scorer = Watching(state)
    run(source(()), scorer, state, chunk_size=10, concurrency=1, quiet=True)
    # One thread, READ_AHEAD chunks handed out: chunk k is read only once chunk k - 2 is saved.
    assert len(scorer.saved_when_called) == 10
    assert all(saved >= k - runner.READ_AHEAD for k, saved in enumerate(scorer.saved_when_called))


def test_progress_advances_chunk_by_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    real = runner.tqdm.update
    monkeypatch.setattr(runner.tqdm, "update", lambda bar, n=1: (seen.append(n), real(bar, n))[1])
    run(source(), FakeScorer(), checkpoint(tmp_path), chunk_size=16, concurrency=2, quiet=True)
    assert sorted(seen) == sorted([16] * 6 + [4]) and sum(seen) == N


def test_interrupted_by_ctrl_c_keeps_the_scored_chunks_and_resumes_the_rest(tmp_path: Path) -> None:
    state = checkpoint(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run(source(()), Watching(state, interrupt_at=6), state, 10, 2, True)
    saved = checkpoint(tmp_path).done()
    assert 4 <= len(saved) <= 6  # the chunks scored before the interrupt, less at most one in flight
    rescorer = FakeScorer()
    resumed = run(source(()), rescorer, checkpoint(tmp_path), 10, 2, True)
    whole = run(source(()), FakeScorer(), checkpoint(tmp_path / "whole"), 10, 2, True)
    assert rescorer.calls == 10 - len(saved) and rescorer.rows == 10 * rescorer.calls
    for name in ("rows", "labels", "scores"):
        assert np.array_equal(getattr(resumed, name), getattr(whole, name))
    assert resumed.errors == whole.errors == []
