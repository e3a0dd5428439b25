"""Try-it view in headless Chromium: real MNIST digits drawn as strokes, the preprocessing, the number forms."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import requests

from tests.console.browser import (
    css,
    draw_runs,
    ink_runs,
    open_view,
    requires_browser,
    wait,
)
from tests.server import Server

pytestmark = [pytest.mark.e2e, requires_browser]


def settle(driver: Any, strokes: int) -> Any:
    """The result panel once the answer to the final drawing is shown."""

    def settled(d: Any) -> Any:
        canvas = d.find_element("css selector", "canvas.pad")
        result = d.find_element("css selector", ".try-result")
        done = (
            canvas.get_attribute("data-strokes") == str(strokes)
            and result.get_attribute("aria-busy") == "false"
            and result.get_attribute("data-answered") == result.get_attribute("data-sent")
        )
        return result if done else False

    return wait(driver, settled)


@pytest.mark.parametrize(("index", "pointer"), [(0, "mouse"), (1, "pen"), (2, "touch")])
def test_a_drawn_mnist_digit_is_classified(
    browser: Any, server: Server, mnist: Any, index: int, pointer: str
) -> None:
    images, labels = mnist
    open_view(browser, server.url, "try/mnist")
    canvas = css(browser, "canvas.pad")
    runs = ink_runs(images[index])
    draw_runs(browser, canvas, runs, pointer)
    result = settle(browser, len(runs))
    assert canvas.get_attribute("data-pointer") == pointer
    assert result.find_element("css selector", "[data-top-class]").get_attribute("data-top-class") == str(
        labels[index]
    )
    bars = result.find_elements("css selector", "svg .bar")
    assert len(bars) == 10
    [top] = [bar for bar in bars if "bar-top" in bar.get_attribute("class")]
    assert top.get_attribute("data-label") == str(labels[index])
    assert float(top.get_attribute("data-value")) == max(float(b.get_attribute("data-value")) for b in bars)


def test_preprocessing_reproduces_mnist_digits(browser: Any, server: Server, mnist: Any) -> None:
    """A real digit blown up 10x and preprocessed comes back as the original 28x28 image: crop to
    the ink, fit in 20x20 keeping the aspect, centre of mass in the middle, as MNIST was made."""
    images, _ = mnist
    open_view(browser, server.url, "try/mnist")
    css(browser, "canvas.pad")
    for image in images[:12]:
        big = np.kron(image, np.ones((10, 10), np.uint8)).astype(np.float64) / 255
        out = browser.execute_async_script(
            """const [ink, done] = [arguments[0], arguments[arguments.length - 1]];
            import('/console/digit.js').then(
              (m) => done(Array.from(m.preprocess(Float32Array.from(ink), 280, 280))), (e) => done(String(e)));""",
            big.ravel().tolist(),
        )
        np.testing.assert_allclose(np.array(out).reshape(28, 28), image / 255, atol=1e-6)


def shown_value(driver: Any, attribute: str) -> float | None:
    found = driver.find_elements("css selector", f".try-result [{attribute}]")
    return float(found[0].get_attribute(attribute)) if found else None


@pytest.mark.parametrize(
    ("name", "values", "attribute"),
    [("linear", ["10"], "data-prediction"), ("binary", ["0.45", "0.6"], "data-probability")],
)
def test_number_forms_answer_what_the_api_answers(
    browser: Any, server: Server, name: str, values: list[str], attribute: str
) -> None:
    open_view(browser, server.url, f"try/{name}")
    inputs = wait(browser, lambda d: d.find_elements("css selector", ".number-form input[type=number]"))
    for element, value in zip(inputs, values, strict=False):
        element.clear()
        element.send_keys(value)
    css(browser, ".number-form button[type=submit]").click()
    instance = float(values[0]) if len(values) == 1 else [float(v) for v in values]
    answer = requests.post(
        f"{server.url}/v1/models/{name}:predict", json={"instances": [instance]}, timeout=10
    )
    prediction = answer.json()["predictions"][0]
    expected = prediction if name == "linear" else prediction["probability"]
    wait(browser, lambda d: shown_value(d, attribute) == expected)
