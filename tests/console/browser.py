"""Headless Debian Chromium driven by Selenium, and the console interactions the tests share."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Debian's packages by default; CHROMIUM / CHROMEDRIVER point elsewhere (a matching pair).
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
DESKTOP = (1280, 900)
PHONE = (375, 812)


def missing() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
        return "Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[dev]')"
    return None


requires_browser = pytest.mark.skipif(missing() is not None, reason=missing() or "")


@contextmanager
def chromium(size: tuple[int, int] = DESKTOP) -> Iterator[Any]:
    """A fresh headless Chromium (own profile, nothing fetched from the network) at ``size``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
        f"--window-size={size[0]},{size[1]}",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_window_size(*size)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def set_width(driver: Any, size: tuple[int, int]) -> None:
    """Resize the viewport (not the window) to ``size``, phone widths included."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": size[0] < 600},
    )


def wait(driver: Any, condition: Any, timeout: float = 20.0) -> Any:
    """``condition(driver)`` once truthy. An element the page re-rendered between finding it and
    reading it (a stale reference) means "not yet": the condition is asked again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    waiting = WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    )
    return waiting.until(condition)


def css(driver: Any, selector: str, timeout: float = 20.0) -> Any:
    """The first element matching ``selector`` once it is displayed."""
    from selenium.webdriver.common.by import By

    def found(d: Any) -> Any:
        elements = [e for e in d.find_elements(By.CSS_SELECTOR, selector) if e.is_displayed()]
        return elements[0] if elements else False

    return wait(driver, found, timeout)


def console_errors(driver: Any) -> list[str]:
    """Severe browser-console messages (script errors, CSP violations, failed loads)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def copy_with_broken_version(models: Path, root: Path) -> Path:
    """A copy of the repository ``models`` at ``root`` plus a version of ``linear`` whose SavedModel
    is corrupt (next to its good one): it ends in END with the loader's error."""
    shutil.copytree(models, root)
    good = max(int(p.name) for p in (root / "linear").iterdir() if p.name.isdigit())
    broken = root / "linear" / str(good + 1)
    (broken / "assets.extra").mkdir(parents=True)
    card = json.loads((root / "linear" / str(good) / "assets.extra" / "model_card.json").read_text())
    (broken / "assets.extra" / "model_card.json").write_text(json.dumps({**card, "version": good + 1}))
    (broken / "saved_model.pb").write_bytes(b"not a protobuf")
    return root


# ---- MNIST digits as strokes ------------------------------------------------------------------
def mnist_sample(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (uint8, N x 28 x 28) and labels of the shared MNIST sample."""
    images = gzip.decompress((folder / "mnist-9k-images-idx3-ubyte.gz").read_bytes())
    labels = gzip.decompress((folder / "mnist-9k-labels-idx1-ubyte.gz").read_bytes())
    return np.frombuffer(images, np.uint8, offset=16).reshape(-1, 28, 28), np.frombuffer(
        labels, np.uint8, offset=8
    )


def ink_runs(image: np.ndarray, threshold: int = 100) -> list[tuple[int, int, int]]:
    """The image's ink as horizontal strokes, row by row: (row, first column, last column)."""
    runs = []
    for row, values in enumerate(image):
        inked = np.flatnonzero(values > threshold)
        if not len(inked):
            continue
        breaks = np.flatnonzero(np.diff(inked) > 1)
        starts = np.concatenate([[inked[0]], inked[breaks + 1]])
        ends = np.concatenate([inked[breaks], [inked[-1]]])
        runs.extend((row, int(a), int(b)) for a, b in zip(starts, ends, strict=True))
    return runs


def draw_runs(driver: Any, canvas: Any, runs: list[tuple[int, int, int]], pointer: str = "mouse") -> None:
    """Replay ``runs`` (in 28x28 pixel units) as strokes on ``canvas`` with a mouse, pen or touch."""
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    size = canvas.size["width"]
    cell = size / 28
    kinds = {
        "mouse": interaction.POINTER_MOUSE,
        "pen": interaction.POINTER_PEN,
        "touch": interaction.POINTER_TOUCH,
    }
    # duration=0: Selenium would otherwise spend 250 ms on every move.
    actions = ActionBuilder(driver, mouse=PointerInput(kinds[pointer], pointer), duration=0)

    def at(col: float, row: float) -> tuple[int, int]:
        # Selenium offsets are from the element's centre.
        return round((col + 0.5) * cell - size / 2), round((row + 0.5) * cell - size / 2)

    for row, first, last in runs:
        actions.pointer_action.move_to(canvas, *at(first, row))
        actions.pointer_action.pointer_down()
        actions.pointer_action.move_to(canvas, *at(last, row))
        actions.pointer_action.pointer_up()
    actions.perform()


def screenshot(driver: Any, path: Path, full_page: bool = True) -> None:
    """A PNG of the page (the whole scrollable height when ``full_page``)."""
    import base64

    width = driver.execute_script("return document.documentElement.clientWidth")
    height = driver.execute_script(
        "return document.documentElement.scrollHeight" if full_page else "return innerHeight"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "captureBeyondViewport": full_page,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))


# ---- console interactions ---------------------------------------------------------------------
def open_view(driver: Any, base: str, view: str) -> None:
    driver.get(f"{base}/#{view}")
    driver.refresh()  # a new document: same-page hash changes would keep the previous view's state


def model_names(repository: Path) -> list[str]:
    return sorted(p.name for p in repository.iterdir() if p.is_dir())


def write_idx(folder: Path, images: np.ndarray, labels: np.ndarray) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    image_path, label_path = folder / "sample-images-idx3-ubyte.gz", folder / "sample-labels-idx1-ubyte.gz"
    header = b"\x00\x00\x08\x03" + b"".join(int(n).to_bytes(4, "big") for n in images.shape)
    image_path.write_bytes(gzip.compress(header + images.tobytes()))
    label_path.write_bytes(
        gzip.compress(b"\x00\x00\x08\x01" + len(labels).to_bytes(4, "big") + labels.tobytes())
    )
    return image_path, label_path


def run_evaluation(driver: Any, files: list[Path], dataset: str) -> None:
    chooser = css(driver, ".run-form input[type=file]")
    chooser.send_keys("\n".join(str(f) for f in files))
    name = css(driver, ".run-form input[pattern]")
    name.clear()
    name.send_keys(dataset)
    css(driver, ".run-form button[type=submit]").click()
    wait(driver, lambda d: d.find_elements("css selector", ".run-done") or _failed_in_page(d), timeout=120)


def _failed_in_page(driver: Any) -> bool:
    errors = driver.find_elements("css selector", ".run-status .error")
    if errors:
        raise AssertionError(f"the evaluation failed in the page: {errors[0].text}")
    return False
