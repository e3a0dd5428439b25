"""Models view in headless Chromium: every model listed, a broken version in END with its error, a full card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.console.browser import (
    console_errors,
    css,
    model_names,
    open_view,
    requires_browser,
    wait,
)
from tests.server import Server

pytestmark = [pytest.mark.e2e, requires_browser]


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
    # The default policy serves the newest version only
    version = max((p.name for p in (repository / "mnist").iterdir() if p.name.isdigit()), key=int)
    extra = repository / "mnist" / version / "assets.extra"
    card = json.loads((extra / "model_card.json").read_text())
    open_view(browser, server.url, "models/mnist")
    article = css(browser, f'article[data-version="{version}"]')
    image = wait(browser, lambda d: article.find_elements("css selector", ".curves img"))[0]
    width = wait(
        browser,
        lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image),
    )
    png = (extra / "training_curves.png").read_bytes()
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
