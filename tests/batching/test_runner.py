"""Running a taken batch: one merged call, and per-request re-runs that isolate a failing request. No threads."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from service.batching.runner import execute, reporting
from service.batching.slot import Slot

from .fakes import Arrays, FakeModel, assert_arrays_equal, expected, request


def slots(*ids: float) -> list[Slot]:
    return [Slot(request([i]), 1, 0.0) for i in ids]


def test_a_batch_is_one_call_and_each_slot_gets_its_rows() -> None:
    model, batch = FakeModel(), slots(1, 2, 3)
    execute(batch, model)
    assert model.sizes == [3]
    for i, slot in zip((1, 2, 3), batch, strict=True):
        assert slot.done and slot.error is None
        assert_arrays_equal(slot.outputs, expected(request([i])))


def test_a_failing_batch_is_rerun_one_by_one_and_only_the_culprit_fails() -> None:
    model, batch = FakeModel(poison=2), slots(1, 2, 3)
    execute(batch, model)
    assert model.sizes == [3, 1, 1, 1]
    assert isinstance(batch[1].error, ValueError) and "poisoned row 2" in str(batch[1].error)
    assert batch[0].error is None and batch[2].error is None
    assert_arrays_equal(batch[2].outputs, expected(request([3])))


def test_outputs_that_are_not_batch_major_fall_back_to_per_request_calls() -> None:
    def summing(inputs: Arrays) -> Arrays:
        return {"total": np.asarray([inputs["x"].sum()])}  # one row whatever the batch

    batch = slots(1, 2)
    execute(batch, summing)
    assert [slot.outputs["total"].tolist() for slot in batch] == [
        [request([1])["x"].sum()],
        [request([2])["x"].sum()],
    ]


def test_a_resolved_slot_ignores_later_resolutions() -> None:
    (slot,) = slots(1)
    slot.resolve(outputs={"y": np.ones(1)})
    slot.resolve(error=RuntimeError("late"))
    assert slot.error is None and slot.wait(0)


def test_reporting_passes_rows_and_seconds_and_survives_a_broken_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = FakeModel()
    assert reporting(model, None, "m") is model
    seen: list[tuple[int, float]] = []

    def broken(rows: int, seconds: float) -> None:
        seen.append((rows, seconds))
        raise RuntimeError("metrics backend down")

    with caplog.at_level(logging.ERROR):
        out = reporting(model, broken, "model fake:1")(request([1, 2]))
    assert_arrays_equal(out, expected(request([1, 2])))
    assert seen[0][0] == 2 and seen[0][1] >= 0
    assert "on_batch callback of model fake:1 failed" in caplog.text
