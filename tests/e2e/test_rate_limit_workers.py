"""RATE_LIMIT over real gunicorn with two workers: one budget per caller for the server, not per worker;
refused requests show in serving_requests_total."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.auth.tokenfiles import entry, write_tokens
from tests.e2e.workers import only, worker_pids
from tests.server import Server

pytestmark = pytest.mark.e2e

BURST = 10  # RATE_LIMIT=1/h,burst=10: nothing refills while the test runs
TOKENS = {"first": "t-first", "second": "t-second", "prometheus": "t-prom"}


@pytest.fixture(scope="module")
def limited(tiny_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("limited")
    shutil.copytree(tiny_template, root / "models")
    tokens = write_tokens(
        root / "tokens.yaml",
        entry("first", TOKENS["first"], ["infer"]),
        entry("second", TOKENS["second"], ["infer"]),
        entry("prometheus", TOKENS["prometheus"], ["metrics"]),
    )
    env = {"AUTH_TOKENS_FILE": tokens, "RATE_LIMIT": f"1/h,burst={BURST}", "DATA_DIR": root / "var"}
    with Server(root / "models", root / "server.log", **env) as server:
        yield server


def predict(server: Server, token: str | None) -> int:
    """A :predict on a new connection: the status code."""
    headers = {"Connection": "close"} | ({"Authorization": f"Bearer {token}"} if token else {})
    url = f"{server.url}/v1/models/regressor:predict"
    return requests.post(url, json={"instances": [1.0]}, headers=headers, timeout=30).status_code


def test_a_caller_spends_one_budget_whichever_worker_answers(limited: Server) -> None:
    first, second = worker_pids(limited)
    with only(limited, first):
        on_first = [predict(limited, TOKENS["first"]) for _ in range(6)]
    with only(limited, second):
        on_second = [predict(limited, TOKENS["first"]) for _ in range(6)]
    assert on_first == [200] * 6
    assert on_second == [200] * (BURST - 6) + [429] * (12 - BURST)  # a budget per worker: six 200s


def test_many_fresh_connections_at_once_get_the_budget_and_no_more(limited: Server) -> None:
    with ThreadPoolExecutor(8) as pool:
        codes = Counter(pool.map(lambda _: predict(limited, TOKENS["second"]), range(4 * BURST)))
    assert codes == {200: BURST, 429: 3 * BURST}


def test_refused_requests_are_counted_in_serving_requests_total(limited: Server) -> None:
    for _ in range(3):
        assert predict(limited, None) == 401
    scrape = requests.get(
        f"{limited.url}/metrics", headers={"Authorization": f"Bearer {TOKENS['prometheus']}"}, timeout=30
    )
    assert scrape.status_code == 200
    counts = {
        (s.labels["model"], s.labels["code"]): s.value
        for family in text_string_to_metric_families(scrape.text)
        if family.name == "serving_requests"
        for s in family.samples
        if s.name == "serving_requests_total" and s.labels["endpoint"] == "predict"
    }
    # The two tests above, summed over both workers; answered requests name their model.
    assert counts[("", "429")] == (12 - BURST) + 3 * BURST and counts[("", "401")] == 3
    assert counts[("regressor", "200")] == 2 * BURST
