"""The report computes its figures once: plots draw the tables of the same computation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
from sklearn import metrics as skm

from service.evaluation import figures
from service.evaluation.batch import plots
from tests.evaluation.batch.conftest import DIGITS

Run = Callable[..., tuple[int, str, str]]


def test_plots_reuse_the_one_computation_and_unrequested_tables_stay_out(
    run_cli: Run, digits_idx: Path, tiny_template: Path, tmp_path: Path
) -> None:
    drawn: dict[str, Any] = {}

    def confusion(matrix: Any, *args: Any) -> None:
        drawn["confusion"] = matrix
        real_confusion(matrix, *args)

    def curves(tables: Any, *args: Any) -> None:
        drawn["curves"] = tables
        real_curves(tables, *args)

    real_confusion, real_curves = plots.confusion_matrix, plots.roc_curves
    with (
        mock.patch.object(figures, "_classification", wraps=figures._classification) as compute,
        mock.patch.object(plots, "confusion_matrix", confusion),
        mock.patch.object(plots, "roc_curves", curves),
    ):
        code, _, err = run_cli(
            "--model", "digits", "--data", digits_idx, "--chunk-size", 64, "--metrics", "accuracy",
            "--offline", "--model-repository", tiny_template, "--output", tmp_path / "out",
        )  # fmt: skip
    assert code == 0, err
    assert compute.call_count == 1  # every row's scores are ranked once, not again for the plots
    labels, scores = compute.call_args.args[0], compute.call_args.args[1]
    doc = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(doc["metrics"]) == {"accuracy"}  # the plots' tables are not reported unasked
    assert doc["plots"] == [plots.CONFUSION, plots.ROC]
    assert np.array_equal(labels, DIGITS)
    assert (
        drawn["confusion"] == skm.confusion_matrix(DIGITS, scores.argmax(axis=1), labels=range(10)).tolist()
    )
    fpr, tpr, _ = skm.roc_curve(DIGITS == 3, scores[:, 3])
    assert drawn["curves"]["3"]["fpr"] == fpr.tolist() and drawn["curves"]["3"]["tpr"] == tpr.tolist()
