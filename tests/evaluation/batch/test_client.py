"""Scoring over HTTP: the model learnt from the server, binary tensors, retries and clear failures."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import requests

from service.errors import JobError
from service.evaluation.batch.client import Backoff, HttpScorer
from service.evaluation.batch.scoring import RowsRejected
from tests.evaluation.batch.conftest import APP_URL, AppAdapter

NO_WAIT = Backoff(retries=3, base=0.0)


class Flaky(requests.adapters.BaseAdapter):
    """Fails the first ``failures`` requests (connection refused, or this status), then passes on."""

    def __init__(self, inner: AppAdapter, failures: int, status: int | None = None) -> None:
        super().__init__()
        self.inner, self.failures, self.status, self.seen = inner, failures, status, 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.seen += 1
        if self.seen > self.failures:
            return self.inner.send(request, **kwargs)
        if self.status is None:
            raise requests.ConnectionError("connection refused")
        response = requests.Response()
        response.status_code, response._content = self.status, b'{"error": "busy"}'
        return response

    def close(self) -> None:
        pass


def session(adapter: requests.adapters.BaseAdapter) -> requests.Session:
    s = requests.Session()
    s.mount(APP_URL, adapter)
    return s


@pytest.mark.parametrize(
    ("model", "task", "labels", "output"),
    [
        ("digits", "classification", tuple(str(i) for i in range(10)), "probabilities"),
        ("binary", "binary", ("negative", "positive"), "probability"),
        ("regressor", "regression", None, "y"),
    ],
)
def test_the_model_is_learnt_from_the_server(
    served: AppAdapter, model: str, task: str, labels: tuple[str, ...] | None, output: str
) -> None:
    scorer = HttpScorer(APP_URL, model, session=session(served))
    assert (scorer.card.task, scorer.card.class_labels) == (task, labels)
    assert [s.name for s in scorer.card.outputs] == [output]


def test_version_is_pinned_at_start(served: AppAdapter) -> None:
    assert HttpScorer(APP_URL, "regressor", session=session(served)).card.version == 2  # the latest
    pinned = HttpScorer(APP_URL, "regressor", 1, session=session(served))
    assert pinned.score({"x": np.array([2.0], np.float32)}).tolist() == [3.0]  # v1: 0.5x + 2
    with pytest.raises(
        JobError, match="does not serve model 'regressor' version 7 \\(it serves \\[1, 2\\]\\)"
    ):
        HttpScorer(APP_URL, "regressor", 7, session=session(served))
    with pytest.raises(JobError, match="404"):
        HttpScorer(APP_URL, "ghost", session=session(served))


def test_binary_tensors_carry_exact_float32_scores(served: AppAdapter) -> None:
    images = np.random.default_rng(2).random((5, 28, 28)).astype(np.float32)
    scorer = HttpScorer(APP_URL, "digits", session=session(served))
    scores = scorer.score({"images": images})
    assert scores.dtype == np.float32 and scores.shape == (5, 10)
    from tests.http.test_tfserving_routes import digits_probabilities

    np.testing.assert_allclose(scores, digits_probabilities(images), atol=1e-6)


def test_rejected_rows(served: AppAdapter) -> None:
    scorer = HttpScorer(APP_URL, "regressor", session=session(served))
    with pytest.raises(RowsRejected, match="finite"):
        scorer.score({"x": np.array([1.0, np.nan], np.float32)})


@pytest.mark.parametrize("status", [None, 503, 429, 504, 408])
def test_transient_failures_are_retried(served: AppAdapter, status: int | None) -> None:
    flaky = Flaky(served, failures=2, status=status)
    scorer = HttpScorer(APP_URL, "regressor", backoff=NO_WAIT, session=session(flaky))
    assert scorer.score({"x": np.array([2.0], np.float32)}).tolist() == [4.0]
    assert flaky.seen == 2 + 2 + 1  # two failures, metadata twice (list, version), one infer


def test_giving_up_names_the_last_problem(served: AppAdapter) -> None:
    with pytest.raises(JobError, match="failed after 3 retries; last: HTTP 503: busy"):
        HttpScorer(APP_URL, "regressor", backoff=NO_WAIT, session=session(Flaky(served, 99, 503)))


def test_backoff_grows_with_jitter_up_to_the_cap() -> None:
    delays = list(Backoff(retries=6, base=0.5, cap=4.0).delays())
    ceilings = [0.5, 1, 2, 4, 4, 4]
    assert len(delays) == 6 and all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
