"""Access in headless Chromium: the token prompt on a 401, phone width, named controls, the keyboard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.console.authproxy import AuthProxy
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
