"""What the batch job scores with: one pinned model version, offline (a SavedModel) or over HTTP.

A scorer has the version's ``card`` and turns model inputs into the scores
``service.evaluation.compute`` takes. It refuses rows the service would refuse by raising
:class:`RowsRejected`, which the job answers by bisecting the chunk down to the bad rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from service.errors import CardError, ModelLoadError
from service.evaluation_options import scores_of
from service.jobs import JobError
from service.repository import ModelCard, Repository


class RowsRejected(Exception):
    """The rows sent cannot be scored as they are (HTTP 400, 413 or 422); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Scorer(Protocol):
    card: ModelCard  # of the pinned version
    where: str  # the server's URL or the version's folder, for reports

    def score(self, inputs: dict[str, np.ndarray]) -> np.ndarray: ...

    def close(self) -> None: ...


class OfflineScorer:
    """Scores with the SavedModel of one version in a model repository, through ``service.runtime``."""

    def __init__(self, repository: Path, name: str, version: int | None = None) -> None:
        repo = Repository(repository)
        versions = repo.versions(name) if repository.is_dir() else []
        if not versions:
            raise JobError(f"Model repository {repository} has no versions of model {name!r}.")
        version = max(versions) if version is None else version
        if version not in versions:
            raise JobError(f"Model {name!r} has no version {version} in {repository} (it has {versions}).")
        from service.loading import prepare  # TensorFlow, only for offline runs

        try:
            self.card = repo.read_card(name, version)
            self._model = prepare(self.card, repo.version_dir(name, version))
        except (CardError, ModelLoadError) as exc:
            raise JobError(str(exc)) from None
        self.where = str(repo.version_dir(name, version))

    def score(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        check_finite(inputs)
        return scores_of(self._model(inputs), self.card)

    def close(self) -> None:
        pass


def check_finite(inputs: dict[str, np.ndarray]) -> None:
    """Refuse NaN and infinities as the service does by default (``ALLOW_NONFINITE`` off)."""
    for name, array in inputs.items():
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise RowsRejected(f"Input {name!r} must hold finite numbers; got NaN or Infinity.")
