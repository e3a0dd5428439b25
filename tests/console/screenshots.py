"""Screenshots of every console view, desktop and phone width, for docs/console.md.

    python -m tests.console.screenshots [docs/console]

Starts the real server over a copy of models/ (with a broken linear version), sends some traffic,
runs evaluations (one uploaded from the page as an MNIST IDX pair), draws a real MNIST digit,
then captures each view.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests

from tests.console.browser import (
    DESKTOP,
    PHONE,
    chromium,
    console_errors,
    copy_with_broken_version,
    css,
    draw_runs,
    ink_runs,
    mnist_sample,
    run_evaluation,
    screenshot,
    set_width,
    wait,
    write_idx,
)
from tests.server import ROOT, Server

MNIST = ROOT.parent / "shared" / "data" / "mnist"


def traffic(url: str, images: np.ndarray) -> None:
    for i in range(40):
        requests.post(
            f"{url}/v1/models/mnist:predict",
            json={"instances": (images[i : i + 1] / 255).tolist()},
            timeout=10,
        )
        requests.post(f"{url}/v1/models/linear:predict", json={"instances": [float(i)]}, timeout=10)
    body = {"instances": (images[:64] / 255).tolist()}
    for _ in range(5):
        requests.post(f"{url}/v1/models/mnist_cnn:predict", json=body, timeout=30)


def evaluations(url: str, images: np.ndarray, labels: np.ndarray) -> None:
    """Two evaluations from Python on other slices, so the chart has a line."""
    for name, part in (("slice-a", slice(1000, 1400)), ("slice-b", slice(2000, 2600))):
        body = {"instances": (images[part] / 255).tolist(), "labels": labels[part].tolist(), "dataset": name}
        requests.post(f"{url}/v1/models/mnist:evaluate", json=body, timeout=120).raise_for_status()
        time.sleep(1.5)  # distinct timestamps on the chart


def capture(driver: Any, url: str, view: str, out: Path, ready: str, full: bool = True) -> None:
    driver.get(f"{url}/#{view}")
    driver.refresh()
    css(driver, ready)
    time.sleep(1.5)  # images, second metrics sample
    screenshot(driver, out, full_page=full)
    errors = console_errors(driver)
    if errors:
        raise RuntimeError(f"{view}: {errors}")


def draw(driver: Any, url: str, image: np.ndarray) -> None:
    driver.get(f"{url}/#try/mnist")
    driver.refresh()
    runs = ink_runs(image)
    draw_runs(driver, css(driver, "canvas.pad"), runs)
    wait(driver, lambda d: d.find_elements("css selector", ".try-result[aria-busy=false] [data-top-class]"))


def main(out: Path) -> None:
    images, labels = mnist_sample(MNIST)
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_with_broken_version(ROOT / "models", Path(tmp) / "models")
        with Server(root, Path(tmp) / "server.log", WORKERS=1, DATA_DIR=Path(tmp) / "var") as server:
            traffic(server.url, images)
            evaluations(server.url, images, labels)
            files = write_idx(Path(tmp) / "idx", images[3000:4000], labels[3000:4000])
            with chromium(DESKTOP) as driver:
                driver.get(f"{server.url}/#evaluations/mnist")
                run_evaluation(driver, list(files), "mnist-idx-1000")
                for view, ready, name in (
                    ("models/mnist", ".curves img", "models"),
                    ("models/linear", ".state-error", "models-broken"),
                    ("try/binary", "[data-probability]", "try-binary"),
                    ("evaluations/mnist", "svg.heatmap", "evaluations"),
                    ("server", ".traffic-table", "server"),
                ):
                    capture(driver, server.url, view, out / f"{name}-desktop.png", ready)
                draw(driver, server.url, images[7])
                screenshot(driver, out / "try-digit-desktop.png", full_page=False)
                set_width(driver, PHONE)
                for view, ready, name in (
                    ("models/mnist", ".curves img", "models"),
                    ("evaluations/mnist", "svg.heatmap", "evaluations"),
                    ("server", ".traffic-table", "server"),
                ):
                    capture(driver, server.url, view, out / f"{name}-phone.png", ready, full=False)
                draw(driver, server.url, images[7])
                screenshot(driver, out / "try-digit-phone.png", full_page=True)
    print(json.dumps(sorted(p.name for p in out.glob("*.png"))))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "console")
