"""python -m training.origins: a published model's held-out accuracy by source position."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from service.models.repository import Repository
from training.origins import main, parts, report

ROOT = Path(__file__).resolve().parents[2]
REPO = Repository(ROOT / "models")


def test_parts_tally_each_range_between_cuts() -> None:
    positions = np.array([0, 4, 5, 9, 2])
    correct = np.array([True, False, True, True, True])
    found = parts(positions, correct, [5, 5], total=10)  # a repeated cut is one cut
    assert [(p.start, p.stop, p.count, p.correct) for p in found] == [(0, 5, 3, 2), (5, 10, 2, 2)]
    assert found[0].accuracy == pytest.approx(2 / 3)
    assert found[0].margin == pytest.approx(1.96 * math.sqrt(2 / 3 * 1 / 3 / 3))
    assert found[1].margin == 0.0


def test_an_empty_range_has_no_accuracy() -> None:
    (empty,) = parts(np.array([], dtype=np.int64), np.array([], dtype=bool), [], total=3)
    assert empty.count == 0 and math.isnan(empty.accuracy)


def test_the_parts_add_up_to_the_cards_held_out_accuracy(mnist_dir: Path) -> None:
    if 1 not in REPO.versions("mnist") or not any(mnist_dir.glob("*idx3*")):
        pytest.skip("needs the committed mnist version 1 and the shared MNIST sample")
    card = json.loads(REPO.card_path("mnist", 1).read_text())
    found = report(REPO, "mnist", 1, str(mnist_dir), [5000])
    assert [p.stop for p in found] == [5000, 9000]
    assert sum(p.count for p in found) == card["data"]["split"]["test"]
    assert sum(p.correct for p in found) / sum(p.count for p in found) == card["metrics"]["accuracy"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mnist", "--version", "99"], "has no version 99 of 'mnist'"),
        (["nomodel", "--version", "1"], "has no version 1 of 'nomodel'"),
        (["mnist", "--version", "1"], "Pass --data"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MNIST_DIR", raising=False)
    assert main([*args, "--model-repository", str(REPO.root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m training.origins: error: ") and message in err and err.count("\n") == 1


def test_other_data_than_the_card_names_is_refused(
    small_mnist: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if 1 not in REPO.versions("mnist"):
        pytest.skip("needs the committed mnist version 1")
    assert (
        main(["mnist", "--version", "1", "--model-repository", str(REPO.root), "--data", str(small_mnist)])
        == 2
    )
    assert "holds other files than mnist was trained on" in capsys.readouterr().err
