"""The runtime calls signatures with numpy; padding makes each row's answer independent of its batch."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from service.batching.scheduler import MicroBatcher
from service.errors import ModelLoadError
from service.models.loading import calibrate_row_multiple
from service.models.repository import Repository
from service.models.runtime import check_against_card, load

INPUTS = {"regressor": ("x", ()), "digits": ("images", (28, 28)), "binary": ("features", (2,))}


def _model(repo: Path, name: str):  # type: ignore[no-untyped-def]
    repository = Repository(repo)
    version = repository.versions(name)[-1]
    return load(repository.version_dir(name, version)), repository.read_card(name, version)


def _rows(name: str, count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((count, *INPUTS[name][1])).astype(np.float32)


def test_signature_specs_and_card_check(tiny_template: Path) -> None:
    model, card = _model(tiny_template, "digits")
    assert [s.name for s in model.inputs] == ["images"] and model.inputs[0].shape == (-1, 28, 28)
    check_against_card(model, card.inputs, card.outputs)
    with pytest.raises(ModelLoadError, match="do not match the model card"):
        check_against_card(model, card.outputs, card.outputs)


def test_missing_saved_model_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="Cannot load the SavedModel"):
        load(tmp_path)


@pytest.mark.parametrize("name", ["regressor", "digits", "binary"])
def test_calibrated_rows_do_not_depend_on_the_batch(tiny_template: Path, name: str) -> None:
    model, card = _model(tiny_template, name)
    multiple = calibrate_row_multiple(model, card)
    assert model.row_multiple == multiple
    data = _rows(name, 300, seed=2)  # not the calibration data
    whole = model({INPUTS[name][0]: data})
    for start, size in [(0, 1), (5, 3), (17, 7), (40, 13), (100, 64), (170, 129)]:
        part = model({INPUTS[name][0]: data[start : start + size]})
        for key, value in part.items():
            assert np.array_equal(value, whole[key][start : start + size]), (name, start, size, key)


def test_binary_model_needs_padding(tiny_template: Path) -> None:
    """Its element-wise sigmoid rounds SIMD-tail rows differently: the probe must notice."""
    model, card = _model(tiny_template, "binary")
    assert calibrate_row_multiple(model, card) > 1


def test_micro_batched_answers_equal_one_at_a_time(tiny_template: Path) -> None:
    model, card = _model(tiny_template, "binary")
    calibrate_row_multiple(model, card)
    data = _rows("binary", 200, seed=3)
    alone = [model({"features": data[i : i + 1]})["probability"] for i in range(len(data))]
    batcher = MicroBatcher(model, max_batch_size=64, batch_timeout=0.002)
    merged: list[np.ndarray | None] = [None] * len(data)

    def client(offset: int) -> None:
        for i in range(offset, len(data), 8):
            merged[i] = batcher.submit({"features": data[i : i + 1]})["probability"]

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    batcher.close()
    assert all(np.array_equal(a, m) for a, m in zip(alone, merged, strict=True))
