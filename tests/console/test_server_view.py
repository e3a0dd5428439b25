"""Server view in headless Chromium: figures read from the live /metrics as Prometheus computes them."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.console.browser import (
    css,
    open_view,
    requires_browser,
    wait,
)
from tests.server import Server

pytestmark = [pytest.mark.e2e, requires_browser]


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
