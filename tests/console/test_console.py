"""The console in headless Chromium against the real gunicorn server over a copy of the committed models.

One server and one browser for the module. The digits drawn are real MNIST images replayed as
strokes; evaluations uploaded from the page are checked against the same data scored from Python.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from tests.console.authproxy import AuthProxy
from tests.console.browser import (
    PHONE,
    chromium,
    console_errors,
    copy_with_broken_version,
    css,
    draw_runs,
    ink_runs,
    mnist_sample,
    requires_browser,
    set_width,
    wait,
)
from tests.server import Server

pytestmark = [pytest.mark.e2e, requires_browser]


@pytest.fixture(scope="module")
def repository(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed models, plus a version of ``linear`` whose SavedModel is corrupt."""
    return copy_with_broken_version(repo_root / "models", tmp_path_factory.mktemp("console") / "models")


@pytest.fixture(scope="module")
def server(repository: Path) -> Iterator[Server]:
    log = repository.parent / "server.log"
    with Server(repository, log, WORKERS=1, DATA_DIR=repository.parent / "var") as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def mnist(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    if not (mnist_dir / "mnist-9k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"no MNIST sample in {mnist_dir}")
    return mnist_sample(mnist_dir)


def open_view(driver: Any, base: str, view: str) -> None:
    driver.get(f"{base}/#{view}")
    driver.refresh()  # a new document: same-page hash changes would keep the previous view's state


def model_names(repository: Path) -> list[str]:
    return sorted(p.name for p in repository.iterdir() if p.is_dir())


# ---- Models ------------------------------------------------------------------------------------
def test_lists_every_model_in_the_repository(browser: Any, server: Server, repository: Path) -> None:
    open_view(browser, server.url, "models")
    expected = model_names(repository)
    items = wait(
        browser,
        lambda d: (e := d.find_elements("css selector", ".model-item")) and len(e) == len(expected) and e,
    )
    assert [item.get_attribute("data-model") for item in items] == expected
    assert console_errors(browser) == []


def test_broken_version_shows_end_with_its_error(browser: Any, server: Server) -> None:
    index = requests.get(f"{server.url}/v2/models", timeout=10).json()["models"]
    [broken] = [m for m in index if m["name"] == "linear" and m["state"] == "END"]
    open_view(browser, server.url, "models/linear")
    article = css(browser, f'article[data-version="{broken["version"]}"]')
    assert article.find_element("css selector", ".version-head .badge").text == "END"
    assert broken["reason"] in article.find_element("css selector", ".state-error").text
    good = css(browser, 'article[data-version="1"]')
    assert good.find_element("css selector", ".version-head .badge").text == "AVAILABLE"


def test_card_shows_signature_held_out_metrics_and_training_curves(
    browser: Any, server: Server, repository: Path
) -> None:
    card = json.loads((repository / "mnist" / "1" / "assets.extra" / "model_card.json").read_text())
    open_view(browser, server.url, "models/mnist")
    article = css(browser, 'article[data-version="1"]')
    image = wait(browser, lambda d: article.find_elements("css selector", ".curves img"))[0]
    width = wait(
        browser,
        lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image),
    )
    png = (repository / "mnist" / "1" / "assets.extra" / "training_curves.png").read_bytes()
    assert width == int.from_bytes(png[16:20], "big")  # the PNG's IHDR width: the card's image arrived whole
    tensors = [row.text.split()[0] for row in article.find_elements("css selector", ".panel table tbody tr")]
    for spec in card["inputs"] + card["outputs"]:
        assert spec["name"] in tensors
    shown = {
        row.find_element("css selector", "th").text: row.find_element(
            "css selector", "td span"
        ).get_attribute("title")
        for row in article.find_elements("css selector", "table[aria-label], .panel tbody tr")
        if row.find_elements("css selector", "td span[title]")
    }
    assert shown["accuracy"] == repr(card["metrics"]["accuracy"])
    assert card["config"]["training"]["optimizer"] in article.text


# ---- Try it ------------------------------------------------------------------------------------
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


# ---- Evaluations -------------------------------------------------------------------------------
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
    wait(driver, lambda d: d.find_elements("css selector", ".run-done") or _failed(d), timeout=120)


def _failed(driver: Any) -> bool:
    errors = driver.find_elements("css selector", ".run-status .error")
    if errors:
        raise AssertionError(f"the evaluation failed in the page: {errors[0].text}")
    return False


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


# ---- Server ------------------------------------------------------------------------------------
def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' algorithm, written independently of the page's."""
    buckets = sorted(buckets)
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return buckets[-2][0]
            return lower + (le - lower) * (rank - below) / (count - below) if count > below else le
        lower, below = le, count
    return None


def test_server_view_reads_rates_and_percentiles_from_metrics(browser: Any, server: Server) -> None:
    for x in range(30):
        requests.post(
            f"{server.url}/v1/models/regression:predict", json={"instances": [float(x)]}, timeout=10
        )
    open_view(browser, server.url, "server")
    wait(browser, lambda d: d.find_elements("css selector", "[data-ready=true]"))
    row = wait(
        browser,
        lambda d: [
            r
            for r in d.find_elements("css selector", ".traffic-table tbody tr")
            if r.text.startswith("regression")
        ],
    )[0]
    assert "ms" in row.find_element("css selector", "[data-quantile='0.5']").text
    css(browser, '.batch-figure[data-model="regression"] svg .bar')

    text = requests.get(f"{server.url}/metrics", timeout=10).text
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if (
            line.startswith("serving_request_duration_seconds_bucket{")
            and 'model="regression"' in line
            and 'endpoint="predict"' in line
        ):
            le = line.split('le="')[1].split('"')[0]
            buckets[float(le)] = buckets.get(float(le), 0.0) + float(line.rsplit(" ", 1)[1])
    expected = [histogram_quantile(q, list(buckets.items())) for q in (0.5, 0.9, 0.99)]
    computed = browser.execute_async_script(
        """const [text, done] = [arguments[0], arguments[arguments.length - 1]];
        import('/console/prometheus.js').then((p) => {
          const samples = p.parse(text).filter((s) => s.labels.endpoint === 'predict');
          const buckets = p.bucketsBy(samples, 'serving_request_duration_seconds', 'model').get('regression');
          done([0.5, 0.9, 0.99].map((q) => p.quantile(q, buckets)));
        }, (e) => done(String(e)));""",
        text,
    )
    assert computed == pytest.approx(expected, rel=1e-12)


# ---- Auth, layout and keyboard -----------------------------------------------------------------
def answer_prompt(driver: Any, expected_reason: str, token: str) -> None:
    """Wait for the token dialog saying ``expected_reason`` and submit ``token`` in it."""

    def prompting(d: Any) -> Any:
        dialog = d.find_element("css selector", "#token-dialog")
        reason = d.find_element("css selector", "#token-reason").text
        return dialog if dialog.get_attribute("open") is not None and expected_reason in reason else False

    dialog = wait(driver, prompting)
    field = dialog.find_element("css selector", "#token-input")
    field.clear()
    field.send_keys(token)
    dialog.find_element("css selector", "#token-submit").click()


def test_a_401_prompts_for_a_token_once_and_every_call_then_carries_it(
    server: Server, repository: Path
) -> None:
    with AuthProxy(server.url, token="s3cret-token") as proxy, chromium() as driver:
        driver.get(f"{proxy.url}/#models")
        answer_prompt(driver, "asks for an access token: A valid bearer token is required.", "wrong")
        answer_prompt(driver, "The token was refused: A valid bearer token is required.", "s3cret-token")
        items = wait(
            driver,
            lambda d: (
                (e := d.find_elements("css selector", ".model-item"))
                and len(e) == len(model_names(repository))
                and e
            ),
        )
        assert items
        css(driver, ".curves img")  # fetched with the token too (as a blob)
        assert driver.execute_script("return sessionStorage.getItem('model-serving.token')") == "s3cret-token"
        assert not driver.find_elements("css selector", "#token-dialog[open]")
        entered = next(i for i, (_, auth) in enumerate(proxy.seen) if auth == "Bearer s3cret-token")
        api_calls = [
            (path, auth) for path, auth in proxy.seen[entered:] if path.startswith(("/v1/", "/v2/models"))
        ]
        assert api_calls and all(auth == "Bearer s3cret-token" for _, auth in api_calls)
        driver.refresh()  # the token lives for the tab's session: no new prompt
        wait(driver, lambda d: d.find_elements("css selector", ".model-item"))
        assert not driver.find_elements("css selector", "#token-dialog[open]")


VIEWS = ["models", "try/mnist", "try/binary", "evaluations/mnist", "server"]


@pytest.mark.parametrize("view", VIEWS)
def test_phone_width_has_no_horizontal_scrolling(browser: Any, server: Server, view: str) -> None:
    set_width(browser, PHONE)
    try:
        open_view(browser, server.url, view)
        css(browser, "main h1")
        wait(
            browser,
            lambda d: (
                not d.find_elements("css selector", "main .muted")
                or d.find_elements("css selector", "main section, main canvas, main form")
            ),
        )
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.mark.parametrize("view", VIEWS)
def test_every_control_is_named(browser: Any, server: Server, view: str) -> None:
    open_view(browser, server.url, view)
    css(browser, "main h1")
    wait(browser, lambda d: d.find_elements("css selector", "main select, main button"))
    unnamed = browser.execute_script(
        """return [...document.querySelectorAll('input, select, button, textarea, canvas[tabindex], a[href]')]
          .filter((e) => e.offsetParent !== null)
          .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
          .map((e) => e.outerHTML.slice(0, 80));"""
    )
    assert unnamed == []


def test_the_keyboard_reaches_and_switches_views(browser: Any, server: Server) -> None:
    from selenium.webdriver.common.keys import Keys

    open_view(browser, server.url, "models")
    css(browser, ".model-item")
    body = browser.find_element("css selector", "body")
    body.send_keys(Keys.TAB)  # the skip link comes first
    assert browser.switch_to.active_element.get_attribute("class") == "skip-link"
    for _ in range(10):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        if browser.switch_to.active_element.get_attribute("data-view") == "evaluations":
            break
    link = browser.switch_to.active_element
    assert link.get_attribute("data-view") == "evaluations"
    outline = browser.execute_script("return getComputedStyle(arguments[0]).outlineStyle", link)
    assert outline != "none"  # a visible focus ring
    link.send_keys(Keys.ENTER)
    wait(
        browser,
        lambda d: (
            d.find_element("css selector", '.tabs a[aria-current="page"]').get_attribute("data-view")
            == "evaluations"
        ),
    )
