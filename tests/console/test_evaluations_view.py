"""Evaluations view in headless Chromium: files uploaded from the page are scored like the same data from Python."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tests.console.browser import (
    open_view,
    requires_browser,
    run_evaluation,
    wait,
    write_idx,
)
from tests.server import Server

pytestmark = [pytest.mark.e2e, requires_browser]


def latest(server: Server, model: str, dataset: str) -> dict[str, Any]:
    url = f"{server.url}/v1/models/{model}/evaluations?dataset={dataset}&limit=1"
    return requests.get(url, timeout=10).json()["evaluations"][0]


def test_idx_upload_is_evaluated_and_charted(
    browser: Any, server: Server, mnist: Any, tmp_path: Path
) -> None:
    images, labels = mnist[0][:300], mnist[1][:300]
    files = write_idx(tmp_path, images, labels)
    open_view(browser, server.url, "evaluations/mnist")
    run_evaluation(browser, list(files), "console-idx")
    progress = browser.find_element("css selector", ".run-panel progress")
    assert progress.is_displayed() and progress.get_attribute("value") == "1"  # shown, and ran to the end
    record = latest(server, "mnist", "console-idx")
    assert record["sample_count"] == len(labels)
    # The same images scaled as training does, sent from Python: the page converted them exactly.
    lines = [
        json.dumps({"instance": (im.astype(np.float32) / 255).tolist(), "label": int(y)})
        for im, y in zip(images, labels, strict=True)
    ]
    reference = requests.post(
        f"{server.url}/v1/models/mnist:evaluate?dataset=python-idx",
        data="\n".join(lines),
        headers={"Content-Type": "application/x-ndjson"},
        timeout=120,
    ).json()
    assert record["metrics"]["confusion_matrix"] == reference["metrics"]["confusion_matrix"]
    assert record["metrics"]["log_loss"] == pytest.approx(reference["metrics"]["log_loss"], abs=1e-12)

    points = wait(
        browser, lambda d: d.find_elements("css selector", 'figure[data-metric="accuracy"] svg circle.point')
    )
    assert len(points) >= 1
    cells = browser.find_elements("css selector", "svg.heatmap .cell")
    assert len(cells) == len(record["metrics"]["confusion_matrix"]) ** 2
    assert sum(int(c.get_attribute("data-count")) for c in cells) == len(labels)
    first_row = browser.find_element("css selector", ".history-table tbody tr")
    assert "console-idx" in first_row.text


def test_csv_upload_for_a_regressor(browser: Any, server: Server, tmp_path: Path) -> None:
    rows = [(x, 5 * x + 3) for x in np.linspace(-2, 2, 41).round(2)]
    path = tmp_path / "line.csv"
    path.write_text("x,label\n" + "".join(f"{x},{y}\n" for x, y in rows))
    open_view(browser, server.url, "evaluations/regression")
    run_evaluation(browser, [path], "console-csv")
    record = latest(server, "regression", "console-csv")
    reference = requests.post(
        f"{server.url}/v1/models/regression:evaluate",
        json={"instances": [x for x, _ in rows], "labels": [y for _, y in rows], "dataset": "python-csv"},
        timeout=30,
    ).json()
    assert record["sample_count"] == len(rows)
    assert record["metrics"]["mse"] == pytest.approx(reference["metrics"]["mse"], rel=1e-12)
    wait(browser, lambda d: d.find_elements("css selector", 'figure[data-metric="mse"] svg circle.point'))
