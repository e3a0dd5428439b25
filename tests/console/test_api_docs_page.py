"""The /docs page in headless Chromium: Swagger UI from the installed package renders every operation."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.console.browser import console_errors, requires_browser, wait
from tests.server import Server

pytestmark = [pytest.mark.e2e, requires_browser]


def test_swagger_ui_renders_the_document_without_the_network(browser: Any, server: Server) -> None:
    document = requests.get(f"{server.url}/openapi.json", timeout=10).json()
    count = sum(len(operations) for operations in document["paths"].values())
    browser.get(f"{server.url}/docs")
    blocks = wait(
        browser, lambda d: (b := d.find_elements("css selector", ".opblock")) and len(b) == count and b
    )
    summaries = {b.find_element("css selector", ".opblock-summary-path").text for b in blocks}
    assert "/v1/models/{name}:predict" in {s.replace("\u200b", "") for s in summaries}
    assert console_errors(browser) == []  # nothing blocked by the CSP, nothing fetched from elsewhere
