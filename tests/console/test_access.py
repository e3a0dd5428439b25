"""Access in headless Chromium: the token prompt on a 401, phone width, named controls, the keyboard."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.auth.tokenfiles import entry, write_tokens
from tests.console.browser import (
    PHONE,
    chromium,
    css,
    model_names,
    open_view,
    requires_browser,
    set_width,
    wait,
)
from tests.server import Server

pytestmark = [pytest.mark.e2e, requires_browser]
TOKEN = "console-token-123"


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


@pytest.fixture(scope="module")
def authed(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The same repository behind a real server with auth on: one token for the console's user."""
    root = tmp_path_factory.mktemp("console-auth")
    tokens = write_tokens(
        root / "tokens.yaml", entry("console-user", TOKEN, ["infer", "evaluate", "metrics"])
    )
    env = {
        "WORKERS": 1,
        "DATA_DIR": root / "var",
        "AUTH_TOKENS_FILE": tokens,
        "ACCESS_LOG": root / "access.log",
    }
    with Server(repository, root / "server.log", **env) as running:
        yield running


def test_a_401_prompts_for_a_token_once_and_every_call_then_carries_it(
    authed: Server, repository: Path
) -> None:
    with chromium() as driver:
        driver.get(f"{authed.url}/#models")
        answer_prompt(driver, "asks for an access token: This route needs a token", "wrong")
        answer_prompt(driver, "The token was refused: The bearer token is not known here", TOKEN)
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
        assert driver.execute_script("return sessionStorage.getItem('model-serving.token')") == TOKEN
        assert not driver.find_elements("css selector", "#token-dialog[open]")
        driver.refresh()  # the token lives for the tab's session: no new prompt
        wait(driver, lambda d: d.find_elements("css selector", ".model-item"))
        assert not driver.find_elements("css selector", "#token-dialog[open]")
    lines = (Path(authed.env["ACCESS_LOG"])).read_text().splitlines()
    entered = next(i for i, line in enumerate(lines) if " console-user " in line)
    api_calls = [line for line in lines[entered:] if '"GET /v1/' in line or '"GET /v2/models' in line]
    assert api_calls and all(" console-user " in line for line in api_calls)  # every call carried it
    assert TOKEN not in "\n".join(lines)


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
